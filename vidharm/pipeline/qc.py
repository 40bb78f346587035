"""Quality checks of a parameter track, and a small before/after proxy clip for review.

:func:`check_track` flags, per argument, runs of frames whose applied value sits at the filters' clamp limits
(the filter saturates there: the model wanted more than it can give), jumps between consecutive frames
larger than a threshold (flicker or a pop the smoothing did not absorb; jumps at a scene cut are expected
and not flagged), frames whose mask is empty (nothing is harmonized) or tiny (the network sees almost no
foreground, so its arguments are unreliable), and the scene cuts themselves, for information. Mask areas
come from the sidecar rows (``mask_area``, written by analyze) or from :func:`measure_mask_areas`.

Flags name frames by their source numbers (``header.first_frame`` + row position: 1001.. for an image sequence
numbered from 1001, see :mod:`vidharm.pipeline.params`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidharm.errors import InputError, UsageError
from vidharm.filters import FILTER_NAMES
from vidharm.io import VideoFrame, VideoWriter, prefetch
from vidharm.pipeline.inputs import ClipInput, iter_frames_and_masks
from vidharm.pipeline.params import ParamsTrack
from vidharm.pipeline.render import check_mix, render_frame, track_color_management
from vidharm.pipeline.settings import ProcessConfig
from vidharm.temporal import detect_scene_cuts

__all__ = [
    "QC_KINDS",
    "QCFlag",
    "check_track",
    "format_flags",
    "measure_mask_areas",
    "write_proxy",
]

log = logging.getLogger(__name__)

QC_KINDS: tuple[str, ...] = ("clamp", "jump", "empty_mask", "tiny_mask", "cut")
"""The kinds of flag :func:`check_track` raises."""


@dataclass(frozen=True)
class QCFlag:
    """One finding over a run of frames.

    Attributes:
        kind: one of :data:`QC_KINDS`.
        severity: ``warning`` (look at it) or ``info``.
        first: first source frame of the run.
        last: last source frame of the run (inclusive; equal to ``first`` for one frame).
        arg: the argument concerned, or None.
        value: the worst value in the run (the argument, the jump, or the mask area), or None.
        message: one line for a person.
    """

    kind: str
    severity: str
    first: int
    last: int
    arg: str | None
    value: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The flag as a JSON-ready dict."""
        return dataclasses.asdict(self)


def _runs(frames: list[int], hit: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) row index runs where ``hit`` holds and frame numbers are consecutive."""
    runs: list[tuple[int, int]] = []
    start = None
    for i, h in enumerate(hit):
        if h and start is not None and frames[i] != frames[i - 1] + 1:
            runs.append((start, i))
            start = None
        if h and start is None:
            start = i
        if not h and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(hit)))
    return runs


def _span(first: int, last: int) -> str:
    return f"frame {first}" if first == last else f"frames {first}-{last}"


def _cut_frames(track: ParamsTrack) -> list[int]:
    smoothing = track.header.get("smoothing")
    if isinstance(smoothing, dict) and smoothing.get("cuts"):
        return [int(c) for c in smoothing["cuts"]]
    signatures = [r.signature for r in track.frames]
    if len(signatures) >= 2 and all(s is not None for s in signatures):
        return [track.frames[i].frame for i in detect_scene_cuts(np.array(signatures, dtype=np.float64))]
    return []


def check_track(
    track: ParamsTrack,
    *,
    mask_areas: Mapping[int, float] | None = None,
    clamp_margin: float = 0.01,
    max_jump: float = 0.1,
    min_mask_area: float = 0.001,
) -> list[QCFlag]:
    """Flag clamped arguments, jumps, empty or tiny masks, and scene cuts.

    Args:
        track: the sidecar; the applied (smoothed) arguments are checked.
        mask_areas: row frame (clip position, as :func:`measure_mask_areas` keys it) -> foreground fraction in
            [0, 1], for rows without ``mask_area``.
        clamp_margin: an argument with ``|value| >= 1 - clamp_margin`` is at its clamp limit; in [0, 1).
        max_jump: the largest accepted change of an argument between consecutive frames, > 0.
        min_mask_area: a mask covering less than this fraction of the frame (but more than 0) is tiny.

    Returns:
        Flags sorted by first frame, then kind, their frames in source numbers (``track.first_frame`` +
        position). Consecutive frames with the same finding are one flag.

    Raises:
        UsageError: a threshold out of range.
        InputError: the track has no rows.

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> rows = [FrameParams(i, None, [0.0, 1.2 if i > 2 else 0.0, 0, 0, 0, 0], [0.5] * 4) for i in range(5)]
        >>> [(f.kind, f.first, f.last, f.arg) for f in check_track(ParamsTrack({"fps": "25/1"}, rows))]
        [('clamp', 3, 4, 'brightness'), ('jump', 3, 3, 'brightness')]
    """
    if not 0.0 <= clamp_margin < 1.0:
        raise UsageError(f"clamp_margin: expected a number in [0, 1), got {clamp_margin!r}")
    if not max_jump > 0.0:
        raise UsageError(f"max_jump: expected a positive number, got {max_jump!r}")
    if not 0.0 <= min_mask_area <= 1.0:
        raise UsageError(f"min_mask_area: expected a fraction in [0, 1], got {min_mask_area!r}")
    if not track.frames:
        raise InputError("the parameter track has no rows to check")
    frames = [r.frame for r in track.frames]  # clip positions; flags and messages use ``source``
    source = track.source_frame
    method = track.method
    args = np.array([r.applied()[0] for r in track.frames], dtype=np.float64).reshape(len(frames), method.num_args)
    flags: list[QCFlag] = []
    limit = 1.0 - clamp_margin
    # Only the filters clamp their arguments; colour-transform coefficients have no limits.
    for i, name in enumerate(FILTER_NAMES if method.kind == "filters" else ()):
        for start, stop in _runs(frames, np.abs(args[:, i]) >= limit):
            worst = float(args[start:stop, i][np.argmax(np.abs(args[start:stop, i]))])
            first, last = source(frames[start]), source(frames[stop - 1])
            flags.append(
                QCFlag(
                    "clamp",
                    "warning",
                    first,
                    last,
                    name,
                    worst,
                    f"{_span(first, last)}: {name} at its clamp limit ({worst:+.2f}; the filter stops at "
                    f"{1.0 if worst > 0 else -1.0:+.0f}): the look asks for more than the filter gives; check the "
                    "matte and the plate, or lock/keyframe it",
                )
            )
    cuts = set(_cut_frames(track))
    if len(frames) > 1:
        steps = np.abs(np.diff(args, axis=0))
        names: list[str] = method.arg_names
        if method.kind != "filters":  # one track of the largest coefficient change, not hundreds
            steps, names = steps.max(axis=1, keepdims=True), ["coefficients"]
        pair_ok = np.array([frames[t] == frames[t - 1] + 1 and frames[t] not in cuts for t in range(1, len(frames))])
        for i, name in enumerate(names):
            hit = np.concatenate([[False], (steps[:, i] > max_jump) & pair_ok])
            for start, stop in _runs(frames, hit):
                worst = float(steps[start - 1 : stop - 1, i].max())
                first, last = source(frames[start]), source(frames[stop - 1])
                flags.append(
                    QCFlag(
                        "jump",
                        "warning",
                        first,
                        last,
                        name,
                        worst,
                        f"{_span(first, last)}: {name} jumps by up to {worst:.3f} from the previous frame "
                        f"(> {max_jump:g}); look for a pop, raise the smoothing half-life or keyframe it",
                    )
                )
    areas = np.array(
        [r.mask_area if r.mask_area is not None else (mask_areas or {}).get(r.frame, np.nan) for r in track.frames],
        dtype=np.float64,
    )
    for kind, hit in (("empty_mask", areas == 0), ("tiny_mask", (areas > 0) & (areas < min_mask_area))):
        for start, stop in _runs(frames, hit):
            first, last = source(frames[start]), source(frames[stop - 1])
            worst = float(areas[start:stop].min())
            text = (
                "the mask is empty: nothing is harmonized there"
                if kind == "empty_mask"
                else f"the mask covers only {100 * worst:.3f}% of the frame (< {100 * min_mask_area:g}%): the "
                "arguments rest on very few pixels; check the matte or lock the arguments"
            )
            flags.append(QCFlag(kind, "warning", first, last, None, worst, f"{_span(first, last)}: {text}"))
    if np.isnan(areas).any():
        log.info("%d rows have no mask area; empty/tiny masks are not checked there", int(np.isnan(areas).sum()))
    for frame in map(source, sorted(cuts)):
        flags.append(
            QCFlag("cut", "info", frame, frame, None, None, f"frame {frame}: scene cut; the smoothing restarts here")
        )
    return sorted(flags, key=lambda f: (f.first, QC_KINDS.index(f.kind), f.arg or ""))


def format_flags(flags: list[QCFlag]) -> str:
    """The flags as text for a terminal, one per line, with a summary line.

    Example:
        >>> format_flags([QCFlag("cut", "info", 40, 40, None, None, "frame 40: scene cut")])
        'info     cut         frame 40: scene cut\\n0 warnings, 1 info'
    """
    lines = [f"{f.severity:<8} {f.kind:<11} {f.message}" for f in flags]
    warnings = sum(f.severity == "warning" for f in flags)
    lines.append(f"{warnings} warning{'s' * (warnings != 1)}, {len(flags) - warnings} info")
    return "\n".join(lines)


def measure_mask_areas(inp: ClipInput) -> dict[int, float]:
    """Foreground fraction of each frame's mask (for sidecars written before rows carried ``mask_area``).

    Reads only the masks, at the clip's size (as render sees them).

    Args:
        inp: the checked clip and masks.

    Returns:
        Clip position (the sidecar rows' ``frame``) -> mean of the mask in [0, 1].

    Raises:
        MaskError: unreadable masks.
    """
    masks = inp.masks.iter_masks(inp.frames, inp.info.width, inp.info.height)
    return {f: float(m.mean(dtype=np.float64)) for f, m in zip(inp.frames, masks, strict=False)}


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def write_proxy(
    inp: ClipInput,
    track: ParamsTrack,
    output: str | Path,
    *,
    max_width: int = 960,
    mix: float = 1.0,
    codec: str = "libx264",
    crf: int = 23,
    preset: str = "veryfast",
    decoder: str = "pyav",
    labels: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> Path:
    """Write a small side-by-side clip, input on the left and harmonized on the right, for review.

    Each frame and its mask are downscaled first and rendered at the small size with the row's stored
    statistics (global, so valid at any size): the right half matches a downscaled full render to within
    the resampling, at a fraction of the cost. 8-bit opaque output with the source's timing and audio (float
    frames show their code values clipped to [0, 1]); a colour-managed track is applied with the colour
    management its analysis recorded, as render applies it.

    Args:
        inp: the checked clip and masks.
        track: the sidecar to preview (its applied values, as render).
        output: the proxy video (.mp4, .mov, .mkv); its folder must exist.
        max_width: width of the whole side-by-side frame at most, in pixels (>= 4); never upscaled.
        mix: strength in [0, 1].
        codec: encoder for the proxy.
        crf: quality for x264/x265.
        preset: encoder speed preset.
        decoder: ``pyav`` or ``decord``.
        labels: write "before" and "after" in the corners.
        on_frame: called with 1 after each frame, for progress bars.

    Returns:
        ``output`` as a Path.

    Raises:
        UsageError: a bad ``max_width`` or ``mix``.
        InputError: the track lacks a row for a frame or was made for another clip size, or its recorded OCIO
            config is gone.
        VidharmError: decode, mask or encode failures.
    """
    if isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 4:
        raise UsageError(f"max_width: expected a width of at least 4 pixels, got {max_width!r}")
    check_mix(mix)
    info = inp.info
    if (track.header.get("width"), track.header.get("height")) != (info.width, info.height):
        raise InputError(
            f"the parameter file was made for a {track.header.get('width')}x{track.header.get('height')} clip, "
            f"but {inp.clip.name} is {info.width}x{info.height}"
        )
    rows = [track.row(f) for f in inp.frames]
    method = track.method
    color = track_color_management(track, ProcessConfig())  # the analysis' own, as render uses it
    scale = min(1.0, max_width / (2 * info.width))
    width, height = _even(info.width * scale), _even(info.height * scale)
    # An 8-bit opaque proxy: the source's depth, alpha and profile are not the proxy's business.
    like = dataclasses.replace(info, width=2 * width, height=height, bit_depth=8, pix_fmt="yuv420p", has_alpha=False)
    out = Path(output)
    whole = inp.frames == range(inp.num_frames)
    audio = inp.clip if whole and info.has_audio else None  # an image sequence has no audio (and is no file)
    with VideoWriter(out, like, codec=codec, crf=crf, preset=preset, audio_from=audio) as writer:
        stream = prefetch(iter_frames_and_masks(inp, decoder), maxsize=4)
        for row, (frame, pts, image, mask) in zip(rows, stream, strict=False):
            small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            small_mask = np.clip(cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA), 0.0, 1.0)
            args, stats = row.applied()
            after = render_frame(small, small_mask, args, stats, "cpu", mix, method, color=color)
            pair = np.concatenate([small, after], axis=1)
            if pair.dtype.kind == "f":  # float frames show their code values in [0, 1]
                pair = np.round(np.clip(np.nan_to_num(pair), 0.0, 1.0) * 255.0).astype(np.uint8)
            elif pair.dtype != np.uint8:
                pair = np.round(pair / 257.0).astype(np.uint8)
            if labels:
                pair = np.ascontiguousarray(pair)
                for text, x in (("before", 4), ("after", width + 4)):
                    _label(pair, text, x)
            writer.write(VideoFrame(index=frame, pts=pts, time_base=info.time_base, image=pair))
            if on_frame is not None:
                on_frame(1)
    return out


def _label(image: np.ndarray, text: str, x: int) -> None:
    size = max(0.3, image.shape[0] / 400)
    y = int(14 * size / 0.4)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), 1, cv2.LINE_AA)
