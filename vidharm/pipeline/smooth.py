"""Smooth: the whole argument track (and the filters' statistics) smoothed once, scene-cut aware."""

from __future__ import annotations

import dataclasses

import numpy as np

from vidharm.errors import InputError
from vidharm.pipeline.params import ParamsTrack, round_args
from vidharm.temporal import detect_scene_cuts, smooth_track

__all__ = ["smooth", "join_tracks"]

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
