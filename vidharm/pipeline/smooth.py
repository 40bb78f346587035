"""Smooth: the argument track (and the filters' statistics), scene-cut aware: whole, or row by row for causal modes."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from vidharm.errors import InputError, UsageError
from vidharm.pipeline.params import FrameParams, ParamsTrack, round_args
from vidharm.temporal import detect_scene_cuts, smooth_track

__all__ = ["smooth", "join_tracks", "CausalSmoother", "CAUSAL_MODES"]

log = logging.getLogger(__name__)

_SMOOTHED_DECIMALS = 6


_SAME_SOURCE = ("clip_fingerprint", "masks_fingerprint", "model", "weights_sha256", "method", "width", "height", "fps")


def join_tracks(tracks: list[ParamsTrack], names: list[str] | None = None) -> ParamsTrack:
    """Join the sidecars of frame-range chunks into one track covering their frames without gaps.

    Rows stay clip positions; messages name frames by their source numbers (``header.first_frame`` + position:
    1001.. for an image sequence numbered from 1001).

    Args:
        tracks: sidecars from ``analyze`` of the same clip, masks and model, in any order.
        names: what to call each sidecar in messages (file names), parallel to ``tracks``.

    Returns:
        One track, rows in frame order, header from the first chunk with ``frames`` spanning all.

    Raises:
        InputError: no tracks, chunks from another clip, masks, model, method or first frame number, overlapping
            frames, or a gap between chunks (each named precisely, in source frame numbers).

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> h = {"fps": "24/1", "clip_fingerprint": "a"}
        >>> parts = [ParamsTrack(dict(h), [FrameParams(i, i, [0.0] * 6, [0.5] * 4)]) for i in (1, 0)]
        >>> [f.frame for f in join_tracks(parts).frames]
        [0, 1]
    """
    if not tracks:
        raise InputError("no analyze sidecars to join; run vidharm analyze first")
    names = names or [f"sidecar {i}" for i in range(len(tracks))]
    first = tracks[0].header
    for track, name in zip(tracks[1:], names[1:], strict=True):
        for key in _SAME_SOURCE:
            if track.header.get(key) != first.get(key):
                raise InputError(
                    f"{name}: its {key} differs from {names[0]}'s; every chunk must come from the same clip, "
                    f"masks and model (re-run analyze for that chunk)"
                )
        if track.header.get("runtime") != first.get("runtime"):
            log.warning(
                "%s: its network ran in %s, %s's in %s; their arguments can differ by a rounding step, so the "
                "joined track is not exactly what one run would give",
                name,
                track.header.get("runtime"),
                names[0],
                first.get("runtime"),
            )
        if track.first_frame != tracks[0].first_frame:
            raise InputError(
                f"{name}: its first_frame {track.first_frame} differs from {names[0]}'s {tracks[0].first_frame}; "
                "every chunk must number the clip's frames alike (re-run analyze for that chunk)"
            )
    source = tracks[0].source_frame
    owner: dict[int, str] = {}
    rows = []
    for track, name in zip(tracks, names, strict=True):
        for row in track.frames:
            if row.frame in owner:
                raise InputError(
                    f"frame {source(row.frame)} is in both {owner[row.frame]} and {name}; chunks must not overlap"
                )
            owner[row.frame] = name
            rows.append(row)
    rows.sort(key=lambda r: r.frame)
    missing = [f for f in range(rows[0].frame, rows[-1].frame + 1) if f not in owner]
    if missing:
        raise InputError(
            f"frames {source(missing[0])}-{source(_run_end(missing))} are in no chunk "
            f"({len(missing)} missing in all); analyze them before smoothing"
        )
    header = {**first, "frames": [rows[0].frame, rows[-1].frame]}
    return ParamsTrack(header=header, frames=rows)


def _run_end(missing: list[int]) -> int:
    end = missing[0]
    for f in missing[1:]:
        if f != end + 1:
            break
        end = f
    return end


def smooth(track: ParamsTrack, *, mode: str, half_life_s: float) -> ParamsTrack:
    """Fill ``smoothed`` and ``smoothed_stats`` of every row.

    The statistics (per-channel means, contrast pivot) are smoothed with the same settings as the
    arguments, so a flickering background cannot bring back through the filters the flicker that argument
    smoothing removed. Scene cuts, found from the rows' background signatures, restart the smoothing.

    Args:
        track: rows in frame order with ``raw`` and ``stats`` (a whole clip, or all chunks joined).
        mode: ``ema``, ``zero_lag`` or ``off`` (smoothed = raw).
        half_life_s: half-life in seconds; 0 is the same as ``off``.

    Returns:
        A new track; the header records the smoothing settings and the cuts.

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> rows = [FrameParams(i, i, [float(i % 2)] * 6, [0.5] * 4) for i in range(4)]
        >>> out = smooth(ParamsTrack({"fps": "1/1", "time_base": "1/1"}, rows), mode="ema", half_life_s=1.0)
        >>> out.frames[1].smoothed[0]
        0.5
    """
    times = track.times_s()
    signatures = [f.signature for f in track.frames]
    cuts: list[int] = []
    if mode != "off" and half_life_s > 0 and signatures and all(s is not None for s in signatures):
        cuts = [track.frames[i].frame for i in detect_scene_cuts(np.array(signatures, dtype=np.float64))]
    if mode == "off" or half_life_s == 0:
        args, stats = track.raw_array(), track.stats_array()
    else:
        index_cuts = [i for i, f in enumerate(track.frames) if f.frame in set(cuts)]
        args = smooth_track(track.raw_array(), times, half_life_s=half_life_s, mode=mode, cuts=index_cuts)
        stats = track.stats_array()
        if stats.shape[1]:
            stats = smooth_track(stats, times, half_life_s=half_life_s, mode=mode, cuts=index_cuts)
    frames = [
        dataclasses.replace(
            row, smoothed=round_args(a, _SMOOTHED_DECIMALS), smoothed_stats=round_args(s, _SMOOTHED_DECIMALS)
        )
        for row, a, s in zip(track.frames, args, stats, strict=True)
    ]
    header = {**track.header, "smoothing": {"mode": mode, "half_life_s": half_life_s, "cuts": cuts}}
    return ParamsTrack(header=header, frames=frames)


CAUSAL_MODES: tuple[str, ...] = ("ema", "off")
"""Smoothing modes whose value at a frame depends on that frame and earlier ones only (:class:`CausalSmoother`)."""


class CausalSmoother:
    """:func:`smooth` one row at a time, for a causal mode: each row's smoothed values as soon as it comes.

    Fed the rows of a track in frame order, it gives each exactly the ``smoothed`` and ``smoothed_stats`` that
    :func:`smooth` gives it on the whole track (the same float arithmetic, step by step: scene cuts from
    consecutive background signatures, the EMA over arguments and statistics with the time-aware step weight
    of each pair of timestamps), so a clip can be analysed, smoothed and rendered in one decode.

    Args:
        header: the track's header (``fps``, ``time_base``, ``method``), as :func:`analysis_track` writes it.
        mode: ``ema`` or ``off`` (see :data:`CAUSAL_MODES`).
        half_life_s: half-life in seconds; 0 is the same as ``off``.

    Raises:
        UsageError: a mode that is not causal (``zero_lag`` needs the whole track).

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> smoother = CausalSmoother({"fps": "1/1", "time_base": "1/1"}, mode="ema", half_life_s=1.0)
        >>> [smoother.push(FrameParams(i, i, [float(i % 2)] * 6, [0.5] * 4)).smoothed[0] for i in range(3)]
        [0.0, 0.5, 0.25]
        >>> smoother.smoothing_header()
        {'mode': 'ema', 'half_life_s': 1.0, 'cuts': []}
    """

    def __init__(self, header: dict[str, Any], *, mode: str, half_life_s: float) -> None:
        if mode not in CAUSAL_MODES:
            raise UsageError(
                f"smoothing {mode!r} is not causal (it needs the whole track); use smooth(), or one of "
                f"{', '.join(CAUSAL_MODES)}"
            )
        self.mode = mode
        self.half_life_s = half_life_s
        self.header = header
        self.cuts: list[int] = []
        self._on = mode != "off" and half_life_s != 0
        self._previous: FrameParams | None = None
        self._time: float | None = None
        self._state: tuple[np.ndarray, np.ndarray] | None = None
        self._rows = 0
        self._probe = ParamsTrack(header=header)  # one row at a time, to take its time exactly as times_s() does

    def push(self, row: FrameParams) -> FrameParams:
        """The next row (in frame order) with ``smoothed`` and ``smoothed_stats`` filled.

        Raises:
            InputError: a value that is not finite, or a timestamp not after the previous row's (as :func:`smooth`
                refuses them); smoothing on and a row with a background signature after one without, or the
                reverse.
        """
        self._probe.frames = [row]
        time = float(self._probe.times_s()[0])
        args = self._probe.raw_array()[0]
        stats = self._probe.stats_array()[0]
        index, self._rows = self._rows, self._rows + 1
        if not self._on:
            return self._emit(row, args, stats)
        if not np.isfinite(args).all() or not np.isfinite(stats).all():
            raise InputError(
                f"track: row {index} holds NaN or inf; every value must be finite (fix the analysis output)"
            )
        if not np.isfinite(time):
            raise InputError("times_s: holds NaN or inf; every timestamp must be a finite number of seconds")
        previous, self._previous = self._previous, row
        if previous is not None and (previous.signature is None) != (row.signature is None):
            # smooth() finds no cuts at all when some row lacks its signature, which shows only at the track's end.
            raise InputError(
                f"frame {row.frame}: some rows have a background signature and some not; a causal smoother needs "
                "all or none (smooth the whole track with smooth() instead)"
            )
        cut = False
        if previous is not None and previous.signature is not None and row.signature is not None:
            pair = np.array([previous.signature, row.signature], dtype=np.float64)
            cut = bool(detect_scene_cuts(pair))
        if cut:
            self.cuts.append(row.frame)
        if self._time is not None and not time > self._time:
            raise InputError(
                f"times_s: expected strictly increasing times, got {time} after {self._time} at row {index}; "
                "drop duplicated frames or fix their timestamps"
            )
        if self._state is None or cut:
            self._state = (args.copy(), stats.copy())
        else:
            # smooth_track's EMA step, in its arithmetic: keep = exp2(-diff(t) / half_life).
            step = np.array([time], np.float64) - np.array([self._time], np.float64)
            keep = np.exp2(-step / self.half_life_s)[0]
            state_args, state_stats = self._state
            self._state = (
                state_args + (1.0 - keep) * (args - state_args),
                state_stats + (1.0 - keep) * (stats - state_stats),
            )
        self._time = time
        return self._emit(row, *self._state)

    def _emit(self, row: FrameParams, args: np.ndarray, stats: np.ndarray) -> FrameParams:
        return dataclasses.replace(
            row,
            smoothed=round_args(args, _SMOOTHED_DECIMALS),
            smoothed_stats=round_args(stats, _SMOOTHED_DECIMALS),
        )

    def smoothing_header(self) -> dict[str, Any]:
        """The ``smoothing`` record :func:`smooth` writes in the header, for the rows pushed so far."""
        cuts = list(self.cuts) if self._on else []
        return {"mode": self.mode, "half_life_s": self.half_life_s, "cuts": cuts}
