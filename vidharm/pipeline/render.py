"""Render: a frame, its mask and a parameter row in, harmonized pixels out, to the encoder.

Rendering is a pure function of (frame, mask, row): it never smooths and never runs a network.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from vidharm.errors import InputError, UsageError
from vidharm.filters import apply_filter_luts, build_filter_luts, composite
from vidharm.io import SequenceWriter, VideoFrame, VideoWriter, is_sequence_pattern, prefetch
from vidharm.pipeline.analyze import frame_histogram, stats_from_histograms
from vidharm.pipeline.inputs import ClipInput, iter_frames_and_masks
from vidharm.pipeline.methods import Method
from vidharm.pipeline.params import ParamsTrack
from vidharm.pipeline.segments import write_segment_info
from vidharm.pipeline.settings import ProcessConfig, resolve_device

__all__ = ["render_frame", "render_video", "check_mix", "render_sequence", "render_output", "is_sequence_pattern"]

log = logging.getLogger(__name__)

_FILTERS = Method("filters")
_QUEUE_FRAMES = 4  # frames each pipeline queue holds: enough to even out per-frame jitter, little memory


def check_mix(mix: float) -> float:
    """Check a harmonization strength and return it as a float.

    Raises:
        UsageError: ``mix`` is not a finite number in [0, 1].

    Example:
        >>> check_mix(0.5)
        0.5
    """
    if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not 0.0 <= mix <= 1.0:
        raise UsageError(f"mix: expected a strength between 0 and 1 (1 = full harmonization), got {mix!r}")
    return float(mix)


def render_frame(
    image: np.ndarray,
    mask: np.ndarray,
    args: Sequence[float],
    stats: Sequence[float] | None = None,
    device: torch.device | str = "cpu",
    mix: float = 1.0,
    method: Method = _FILTERS,
    *,
    exact: bool = False,
) -> np.ndarray:
    """Apply a parameter row to ``image`` and blend with ``mask``, at full resolution.

    Where the mask is 0 the result equals ``image`` exactly; elsewhere it is
    ``filtered * mask * mix + image * (1 - mask * mix)``, rounded to the image's integer levels: ``mix`` is
    the strength of the harmonization (``image + mix * (harmonized - image)``), 1 leaves the blend unchanged
    and 0 returns ``image``.

    The six filters on a CPU run through per-frame lookup tables (:func:`~vidharm.filters.apply_filter_luts`,
    one compiled pass, within one level of the torch arithmetic and tens of times faster); ``exact=True``, other
    methods and other devices run the torch arithmetic (:func:`~vidharm.filters.apply_filters`).

    Args:
        image: (H, W, 3) RGB, uint8 or uint16 (native bit depth kept).
        mask: (H, W) float32 alpha in [0, 1].
        args: the row: 6 raw arguments in filter order (clamped to [-1, 1] by the filters), or the
            coefficients of ``method``'s colour transform.
        stats: 4 global statistics (mean_r, mean_g, mean_b, contrast_pivot), or None/empty to measure them
            on ``image`` (filters only).
        device: where the arithmetic runs.
        mix: strength in [0, 1]; scales the mask.
        method: how the row is applied (:class:`~vidharm.pipeline.methods.Method`); the six filters by default.
        exact: use the torch arithmetic even where the lookup tables apply (the reference path: ``vidharm
            image`` and parity checks).

    Returns:
        (H, W, 3) array of ``image``'s dtype.

    Raises:
        UsageError: ``mix`` is not a number in [0, 1].

    Example:
        >>> im = np.full((4, 4, 3), 100, np.uint8); m = np.zeros((4, 4), np.float32); m[:2] = 1
        >>> out = render_frame(im, m, [0, 0.3, 0, 0, 0, 0])
        >>> int(out[0, 0, 0]), int(out[3, 3, 0])
        (143, 100)
        >>> int(render_frame(im, m, [0, 0.3, 0, 0, 0, 0], mix=0.5)[0, 0, 0])
        121
        >>> int(render_frame(im, m, [0, 0.3, 0, 0, 0, 0], exact=True)[0, 0, 0])
        143
    """
    check_mix(mix)
    if mix != 1.0:
        mask = np.asarray(mask, dtype=np.float32) * np.float32(mix)
    if not exact and method.kind == "filters" and torch.device(device).type == "cpu":
        depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(np.dtype(image.dtype))
        if depth is not None:
            if not stats:
                hist = torch.from_numpy(frame_histogram(image))[None]
                stats = stats_from_histograms(hist, torch.tensor([list(args)], dtype=torch.float64))[0].tolist()
            return apply_filter_luts(image, build_filter_luts(args, stats, depth), mask)
    scale = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div(scale)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)[None, None]
    a = torch.tensor([list(args)], dtype=torch.float32, device=device)
    s = torch.tensor([list(stats)], dtype=torch.float32, device=device) if stats else None
    with torch.inference_mode():
        out = composite(method.apply(x, a, s), x, m)
        levels = out[0].permute(1, 2, 0).mul(scale).round_().clamp_(0, scale).cpu().numpy().astype(image.dtype)
    # composite() keeps the background exactly; this makes it independent of float rounding all the same.
    return np.where((mask == 0)[..., None], image, levels)


def render_video(
    inp: ClipInput,
    track: ParamsTrack,
    output: Path,
    config: ProcessConfig,
    *,
    on_frame: Callable[[int], None] | None = None,
    mix: float = 1.0,
    exact: bool = False,
) -> None:
    """Render ``inp.frames`` with the rows of ``track`` and encode them to ``output``, with the source audio.

    The output is written to a temporary name and renamed when complete. ``mix`` in [0, 1] is the strength
    of the harmonization and ``exact`` picks the torch arithmetic over the lookup tables (see
    :func:`render_frame`). Decoding, rendering and encoding run in three threads joined by queues of four
    frames, so a 1080p render holds about a dozen frames in memory whatever the clip's length.

    Raises:
        InputError: the track has no row for a frame, or was made for a clip of another size.
        UsageError: ``mix`` is outside [0, 1].
        VidharmError: decode, mask or encode failures.
    """
    check_mix(mix)
    if (track.header.get("width"), track.header.get("height")) != (inp.info.width, inp.info.height):
        raise InputError(
            f"the parameter file was made for a {track.header.get('width')}x{track.header.get('height')} clip, "
            f"but {inp.clip.name} is {inp.info.width}x{inp.info.height}; analyze this clip again"
        )
    rows = [track.row(f) for f in inp.frames]
    method = track.method
    device = resolve_device(config.device)
    whole = inp.frames == range(inp.num_frames)
    with VideoWriter(
        output,
        inp.info,
        codec=config.codec,
        crf=config.crf,
        preset=config.preset,
        pix_fmt=config.pix_fmt,
        audio_from=inp.clip if whole else None,
    ) as writer:

        def rendered() -> Iterator[VideoFrame]:
            decoded = prefetch(iter_frames_and_masks(inp, config.decoder), maxsize=_QUEUE_FRAMES)
            for row, (frame, pts, image, mask) in zip(rows, decoded, strict=False):
                args, stats = row.applied()
                pixels = render_frame(image, mask, args, stats, device, mix, method, exact=exact)
                yield VideoFrame(index=frame, pts=pts, time_base=inp.info.time_base, image=pixels)

        written = 0
        # Encoding stays in this thread: x264 runs its own threads, and the writer is not shared.
        for video_frame in prefetch(rendered(), maxsize=_QUEUE_FRAMES):
            writer.write(video_frame)
            written += 1
            if on_frame is not None:
                on_frame(1)
        if written != len(rows):
            raise InputError(f"{inp.clip}: decoded {written} frames but expected {len(rows)}; the clip may be damaged")


def _check_track_size(inp: ClipInput, track: ParamsTrack) -> None:
    if (track.header.get("width"), track.header.get("height")) != (inp.info.width, inp.info.height):
        raise InputError(
            f"the parameter file was made for a {track.header.get('width')}x{track.header.get('height')} clip, "
            f"but {inp.clip.name} is {inp.info.width}x{inp.info.height}; analyze this clip again"
        )


def render_sequence(
    inp: ClipInput,
    track: ParamsTrack,
    pattern: str | Path,
    config: ProcessConfig,
    *,
    on_frame: Callable[[int], None] | None = None,
    mix: float = 1.0,
    force: bool = False,
    exact: bool = False,
) -> list[int]:
    """Render ``inp.frames`` as numbered images, one file per source frame, each written atomically.

    Frames whose file exists are finished and skipped (``on_frame`` is told about them first), unless
    ``force``; only the span from the first to the last missing frame is decoded. So a task killed half way
    and run again writes exactly the missing files, and the result equals an uninterrupted run's. Temp files
    that a killed run left for these frames are removed.

    Args:
        inp: the checked clip and masks; ``inp.frames`` are the frames to render.
        track: the parameters (rows for every frame of ``inp.frames``).
        pattern: ``out/frame.%05d.png``, ``out/frame.####.exr`` ... (see :class:`~vidharm.io.SequenceWriter`);
            PNG/TIFF keep the frame's bit depth (8 or 16), EXR holds float32 code values in [0, 1].
        config: device and decoder.
        on_frame: called with the number of frames done (skipped ones included), for progress.
        mix: strength in [0, 1] (see :func:`render_frame`).
        force: rewrite frames whose file exists.
        exact: the torch arithmetic instead of the lookup tables (see :func:`render_frame`).

    Returns:
        The frames written (not those skipped).

    Raises:
        InputError: the track has no row for a frame, or was made for a clip of another size.
        UsageError: a bad pattern, ``mix`` outside [0, 1], EXR without a library that writes it.
        VidharmError: decode, mask or write failures (files already written stay: they are complete).
    """
    check_mix(mix)
    _check_track_size(inp, track)
    writer = SequenceWriter(pattern, force=force)
    todo = writer.pending(inp.frames)
    rows = {f: track.row(f) for f in todo}
    if on_frame is not None and len(todo) < len(inp.frames):
        on_frame(len(inp.frames) - len(todo))
    if not todo:
        return []
    writer.remove_stale_temps(todo)
    span = dataclasses.replace(inp, frames=range(todo[0], todo[-1] + 1))
    method = track.method
    device = resolve_device(config.device)
    written: list[int] = []
    for frame, _pts, image, mask in prefetch(iter_frames_and_masks(span, config.decoder), maxsize=4):
        row = rows.get(frame)
        if row is None:
            continue
        args, stats = row.applied()
        writer.write(frame, render_frame(image, mask, args, stats, device, mix, method, exact=exact))
        written.append(frame)
        if on_frame is not None:
            on_frame(1)
    if len(written) != len(todo):
        raise InputError(
            f"{inp.clip}: decoded {len(written)} of the {len(todo)} frames to render; the clip may be damaged"
        )
    return written


def render_output(
    inp: ClipInput,
    track: ParamsTrack,
    output: str | Path,
    config: ProcessConfig,
    *,
    on_frame: Callable[[int], None] | None = None,
    mix: float = 1.0,
    force: bool = False,
    segment_info: bool = False,
    exact: bool = False,
) -> int:
    """Render to an image sequence (``output`` holds a frame-number field) or to a video file.

    Image sequences: see :func:`render_sequence` (finished frames skipped unless ``force``). Video: see
    :func:`render_video`; the file is always rewritten, atomically, so running the same render twice gives
    the same file; with ``segment_info`` the frame-range file that ``vidharm concat`` needs is written beside
    it (:func:`~vidharm.pipeline.segments.write_segment_info`).

    Args:
        inp: the checked clip and masks; ``inp.frames`` are the frames to render.
        track: the parameters.
        output: ``out/frame.%05d.png`` (also ``####``), or ``out.mp4``/``.mkv``/``.mov``.
        config: device, decoder and encoder settings.
        on_frame: progress callback (frames done).
        mix: strength in [0, 1].
        force: image sequences: rewrite existing frames.
        segment_info: videos: write ``<stem>.segment.json`` beside the video.
        exact: the torch arithmetic instead of the lookup tables (see :func:`render_frame`).

    Returns:
        The number of frames rendered (skipped frames not counted).

    Raises:
        VidharmError: as :func:`render_sequence` and :func:`render_video`.
    """
    if is_sequence_pattern(output):
        return len(render_sequence(inp, track, output, config, on_frame=on_frame, mix=mix, force=force, exact=exact))
    render_video(inp, track, Path(output), config, on_frame=on_frame, mix=mix, exact=exact)
    if segment_info:
        write_segment_info(Path(output), inp, track, mix=mix)
    return len(inp.frames)
