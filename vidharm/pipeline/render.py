"""Render: a frame, its mask and a parameter row in, harmonized pixels out, to the encoder.

Rendering is a pure function of (frame, mask, row): it never smooths and never runs a network.

**Where the filters act.** Without colour management (``ProcessConfig.colorspace`` None) the filters act on
the frame's code values scaled to [0, 1] (``level / 255``, ``level / 65535``, or a float frame's values as
they are), as in Harmonizer. With colour management the frame ``x`` (in its colour space, e.g. scene-linear
ACEScg) is converted to the analysis space, ``a = to_analysis(x)`` (the OCIO config's sRGB texture space, see
:mod:`vidharm.io`), where the model and the statistics saw it; the filters act there, and only their
*change* is converted back and blended in the input space::

    out = x + mask * (from_analysis(f(a)) - from_analysis(a))

So the OCIO round-trip error (about 3e-6) cancels instead of reaching the pixels, where the mask is 0 every
value is kept exactly (scene-linear values above 1 and below 0 included), and a row of zero arguments gives
back ``x`` itself (the filters' 1e-6 guards make them no exact identity, so that row is not filtered).
Values of ``a`` outside [0, 1] follow the filters' extension rule
(:func:`~vidharm.filters.apply_filters_unbounded`): the filters see ``clamp(a, 0, 1)`` and the excess is
carried over unchanged, so highlights above the analysis white move with the graded white instead of
clipping. A pixel whose change is not finite (NaN or inf in the input) is left as it is. Integer frames are
rounded back to their own depth (uint16 stays 16-bit); float frames come back float32.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidharm.errors import InputError, UsageError
from vidharm.filters import (
    apply_filter_luts,
    apply_filter_luts_yuv420,
    build_filter_luts,
    carry_excess,
    composite,
    lut_backend,
    yuv_matrix,
)
from vidharm.io import (
    PLANE_FORMATS,
    ColorManagement,
    SequenceWriter,
    VideoFrame,
    VideoWriter,
    is_sequence_pattern,
    open_color_management,
    prefetch,
)
from vidharm.pipeline.analyze import frame_histogram, stats_from_histograms
from vidharm.pipeline.inputs import ClipInput, iter_frames_masks_alpha
from vidharm.pipeline.methods import Method
from vidharm.pipeline.params import FrameParams, ParamsTrack
from vidharm.pipeline.segments import write_segment_info
from vidharm.pipeline.settings import ProcessConfig, color_management, resolve_device

__all__ = [
    "render_frame",
    "render_video",
    "render_stream",
    "yuv_render",
    "check_mix",
    "render_sequence",
    "render_output",
    "is_sequence_pattern",
    "track_color_management",
]

log = logging.getLogger(__name__)

_FILTERS = Method("filters")
_QUEUE_FRAMES = 4  # frames each pipeline queue holds: enough to even out per-frame jitter, little memory
# (frame, pts, image, mask, alpha, planes) as iter_frames_masks_alpha yields them
_Decoded = tuple[int, int | None, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]


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


def track_color_management(track: ParamsTrack, config: ProcessConfig) -> ColorManagement | None:
    """The colour management to render ``track`` with: the one its analysis used.

    A track records its analysis' colour handling in ``header["color"]`` (absent or None: none). With
    ``config.colorspace`` unset the track's is used (its OCIO config as recorded, unless ``config.ocio`` is
    set); with it set, it must name the track's colour space, since the statistics were measured there.

    Raises:
        UsageError: ``config.colorspace`` differs from the track's, or the track has none and it is set.
        InputError: the recorded OCIO config is gone (pass ``--ocio``), or its colour space is not in it.
    """
    recorded = track.header.get("color") or None
    given = color_management(config)
    if recorded is None:
        if given is not None:
            raise UsageError(
                f"--colorspace {config.colorspace}: the parameter file was analysed without colour management, "
                "so its statistics are code values; render without --colorspace, or analyze again with it"
            )
        return None
    if not isinstance(recorded, dict) or not isinstance(recorded.get("colorspace"), str):
        raise InputError(f"the parameter file's header.color {recorded!r} is not a colour record vidharm wrote")
    if given is None:
        color = open_color_management(recorded["colorspace"], config.ocio or recorded.get("config"))
        if recorded.get("config_name") and color.config_name != recorded["config_name"]:
            log.warning(
                "the parameter file was analysed with OCIO config %s, this render uses %s (%s)",
                recorded["config_name"],
                color.config_name,
                color.config,
            )
        return color
    mine = (given.colorspace, given.analysis_space, given.config_name)
    theirs = (recorded["colorspace"], recorded.get("analysis_space"), recorded.get("config_name"))
    if mine != theirs:
        raise UsageError(
            f"--colorspace {config.colorspace}: the parameter file was analysed in colour space {theirs[0]!r} "
            f"(analysis space {theirs[1]!r}, OCIO config {theirs[2]}), this render would use {mine[0]!r} "
            f"({mine[1]!r}, {mine[2]}); render with the same --colorspace and --ocio, or without them"
        )
    return given


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
    color: ColorManagement | None = None,
) -> np.ndarray:
    """Apply a parameter row to ``image`` and blend with ``mask``, at full resolution.

    Where the mask is 0 the result equals ``image`` exactly; elsewhere it is
    ``filtered * mask * mix + image * (1 - mask * mix)``, rounded to the image's integer levels: ``mix`` is
    the strength of the harmonization (``image + mix * (harmonized - image)``), 1 leaves the blend unchanged
    and 0 returns ``image``. With ``color`` the filters act in the analysis space and their change is blended
    in the frame's own space (see the module docstring); float frames keep every value, also outside [0, 1].

    The six filters on a CPU, on uint8/uint16 frames without colour management, run through per-frame lookup
    tables (:func:`~vidharm.filters.apply_filter_luts`, one compiled pass, within one level of the torch
    arithmetic and tens of times faster); ``exact=True``, other methods, other devices, float frames and
    colour-managed frames run the torch arithmetic (:func:`~vidharm.filters.apply_filters`).

    Args:
        image: (H, W, 3) RGB: uint8 [0, 255] or uint16 [0, 65535] (native bit depth kept), or float32
            (unbounded, e.g. scene-linear EXR values).
        mask: (H, W) float32 alpha in [0, 1].
        args: the row: 6 raw arguments in filter order (clamped to [-1, 1] by the filters), or the
            coefficients of ``method``'s colour transform.
        stats: 4 global statistics (mean_r, mean_g, mean_b, contrast_pivot) of the frame as analysis saw it,
            or None/empty to measure them on ``image`` (filters only).
        device: where the filter arithmetic runs (colour conversions run on the CPU).
        mix: strength in [0, 1]; scales the mask.
        method: how the row is applied (:class:`~vidharm.pipeline.methods.Method`); the six filters by default.
        exact: use the torch arithmetic even where the lookup tables apply (the reference path: ``vidharm
            image`` and parity checks).
        color: the frame's colour management (:func:`~vidharm.pipeline.settings.color_management`), or None
            for code values as they are.

    Returns:
        (H, W, 3) array of ``image``'s dtype.

    Raises:
        UsageError: ``mix`` is not a number in [0, 1].
        InputError: ``image`` is neither uint8, uint16 nor float.

    Example:
        >>> im = np.full((4, 4, 3), 100, np.uint8); m = np.zeros((4, 4), np.float32); m[:2] = 1
        >>> out = render_frame(im, m, [0, 0.3, 0, 0, 0, 0])
        >>> int(out[0, 0, 0]), int(out[3, 3, 0])
        (143, 100)
        >>> int(render_frame(im, m, [0, 0.3, 0, 0, 0, 0], mix=0.5)[0, 0, 0])
        121
        >>> int(render_frame(im, m, [0, 0.3, 0, 0, 0, 0], exact=True)[0, 0, 0])
        143
        >>> hdr = np.full((4, 4, 3), 4.0, np.float32)  # scene-linear, above the analysis white
        >>> out = render_frame(hdr, m, [0, -0.3, 0, 0, 0, 0])
        >>> float(out[0, 0, 0]) < 4.0, float(out[3, 3, 0])
        (True, 4.0)
    """
    check_mix(mix)
    if image.dtype not in (np.uint8, np.uint16) and image.dtype.kind != "f":
        raise InputError(f"image: expected an RGB frame of uint8, uint16 or float32, got {image.dtype}")
    if mix != 1.0:
        mask = np.asarray(mask, dtype=np.float32) * np.float32(mix)
    if color is not None and color.is_identity:
        color = None  # the input is the analysis space: the code-value paths below are exactly right
    if image.dtype.kind == "f" or color is not None:
        return _render_unbounded(image, mask, args, stats, device, method, color)
    if not exact and method.kind == "filters" and torch.device(device).type == "cpu":
        depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}[np.dtype(image.dtype)]
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


def _render_unbounded(
    image: np.ndarray,
    mask: np.ndarray,
    args: Sequence[float],
    stats: Sequence[float] | None,
    device: torch.device | str,
    method: Method,
    color: ColorManagement | None,
) -> np.ndarray:
    """Float frames and colour-managed frames: ``x + mask * (from(f(a)) - from(a))``, ``a = to(x)``."""
    if method.kind == "filters" and all(min(max(float(v), -1.0), 1.0) == 0.0 for v in args):
        # No harmonization. The filters' 1e-6 guards (brightness 1 / (1 + 1e-6) at amount 0) are no exact
        # identity, and converting back to a log or wide-gamut space can magnify such a change for colours far
        # outside the analysis gamut; zero arguments give back the frame itself.
        return image.copy()
    integer = image.dtype.kind in "ui"
    scale = np.float32(np.iinfo(image.dtype).max) if integer else np.float32(1)
    x = image.astype(np.float32) / scale if integer else np.ascontiguousarray(image, dtype=np.float32)
    m = np.clip(np.asarray(mask, dtype=np.float32), 0, 1)
    # Given the statistics the filters act on each pixel alone: only the foreground's pixels are converted and
    # filtered, as an (N, 1) image (the same numbers as the whole frame's, at the foreground's cost).
    gather = method.kind == "filters" and bool(stats)
    where: Any = np.nonzero(m > 0) if gather else None
    pixels, weight = (x[where][:, None, :], m[where][:, None]) if gather else (x, m)
    out = x.copy() if gather else x
    if pixels.size:
        delta = _filter_change(pixels, args, stats, device, method, color)
        with np.errstate(invalid="ignore", over="ignore"):
            changed = pixels + weight[..., None] * delta
        # A pixel with NaN or inf (in the input, in the analysis space or in its change) keeps its value.
        finite = np.isfinite(pixels).all(axis=-1, keepdims=True) & np.isfinite(delta).all(axis=-1, keepdims=True)
        changed = np.where(finite & (weight > 0)[..., None], changed, pixels)
        if gather:
            out[where] = changed[:, 0, :]
        else:
            out = changed
    if not integer:
        return out.astype(image.dtype, copy=False)
    levels = np.clip(np.rint(out * scale), 0, scale).astype(image.dtype)
    return np.where((m == 0)[..., None], image, levels)


def _filter_change(
    pixels: np.ndarray,
    args: Sequence[float],
    stats: Sequence[float] | None,
    device: torch.device | str,
    method: Method,
    color: ColorManagement | None,
) -> np.ndarray:
    """``from(f(a)) - from(a)`` for ``a = to(pixels)``, (H, W, 3) float32; f is extended beyond [0, 1]."""
    a = color.to_analysis(pixels) if color is not None else pixels
    # The filters see finite values only (NaN and inf pixels keep their input: their change is not finite).
    t = torch.from_numpy(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0)).to(device).permute(2, 0, 1)[None]
    row = torch.tensor([list(args)], dtype=torch.float32, device=device)
    s = torch.tensor([list(stats)], dtype=torch.float32, device=device) if stats else None
    with torch.inference_mode():
        filtered = carry_excess(method.apply(t.clamp(0, 1), row, s), t)
        g = np.ascontiguousarray(filtered[0].permute(1, 2, 0).cpu().numpy(), dtype=np.float32)
    delta = g - a if color is None else color.from_analysis(g) - color.from_analysis(a)
    # OCIO may map NaN to a number on the way back: the change of a pixel that was not finite is not one.
    delta[~np.isfinite(a).all(axis=-1)] = np.nan
    return delta


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

    The encoder is ``config.codec``, or with None the one :class:`~vidharm.io.VideoWriter` picks from the
    source (a ProRes master stays ProRes, a clip with alpha gets ProRes 4444 in .mov or ffv1 in .mkv, else
    libx264). A clip with an alpha channel keeps it, as decoded, where the codec can store it (whatever the
    masks; a warning names the codecs that can where it cannot). The whole clip gets the source's audio (if it
    has any); a part of it (a farm segment, ``--frames``) gets none, and its timecode starts at its first frame.

    Raises:
        InputError: the track has no row for a frame, or was made for a clip of another size.
        UsageError: ``mix`` is outside [0, 1].
        VidharmError: decode, mask or encode failures.
    """
    check_mix(mix)
    _check_track_size(inp, track)
    rows = [track.row(f) for f in inp.frames]
    color = track_color_management(track, config)

    def decoded() -> Iterator[tuple[FrameParams, _Decoded]]:
        planes = yuv_render(inp, config, track.method, color, exact) is not None
        frames = prefetch(iter_frames_masks_alpha(inp, config.decoder, planes=planes), maxsize=_QUEUE_FRAMES)
        yield from zip(rows, frames, strict=False)

    render_stream(
        inp, decoded(), output, config, method=track.method, color=color, on_frame=on_frame, mix=mix, exact=exact
    )


def yuv_render(
    inp: ClipInput, config: ProcessConfig, method: Method, color: ColorManagement | None, exact: bool
) -> tuple[str, bool] | None:
    """The matrix and full-range flag of a render in the clip's own 8-bit 4:2:0, or None where it renders in RGB.

    The six filters' tables apply in the clip's YUV (:func:`~vidharm.filters.apply_filter_luts_yuv420`: no RGB
    round trip, the background kept bit for bit) when the clip decodes to 8-bit 4:2:0 at an even size with a
    matrix the tables know, on the CPU through the compiled kernel, without colour management, and when the
    output takes the same planes (:attr:`~vidharm.io.VideoWriter.planes_format`: checked by the render).
    """
    info = inp.info
    if color is not None and not color.is_identity:
        return None
    if exact or method.kind != "filters" or inp.foreground is not None or info.has_alpha:
        return None
    if info.pix_fmt not in PLANE_FORMATS or info.width % 2 or info.height % 2 or is_sequence_pattern(inp.clip):
        return None
    if config.decoder != "pyav" or resolve_device(config.device).type != "cpu" or lut_backend() != "numba":
        return None
    matrix = yuv_matrix(info.color.matrix)
    if matrix is None:
        return None
    return matrix, info.color.range == "pc" or (info.color.range is None and info.pix_fmt.startswith("yuvj"))


def render_stream(
    inp: ClipInput,
    stream: Iterable[tuple[FrameParams, _Decoded]],
    output: Path,
    config: ProcessConfig,
    *,
    method: Method = _FILTERS,
    color: ColorManagement | None = None,
    on_frame: Callable[[int], None] | None = None,
    mix: float = 1.0,
    exact: bool = False,
) -> int:
    """Render and encode ``inp.frames`` from a stream of (row, decoded frame) pairs: :func:`render_video`'s back half.

    Each row is applied to its frame (:func:`render_frame`) in a thread of its own, and the frames are encoded in
    the caller's thread, exactly as :func:`render_video` does; the stream may come from a decode of the clip
    zipped with a track's rows, or from a one-pass analysis (its rows smoothed as they come). An image-sequence
    ``output`` gets every frame written, as :func:`render_sequence` with ``force`` writes them (frames written
    before an error stay: each is complete).

    Args:
        inp: the checked clip and masks; ``inp.frames`` are the frames the stream holds, in order.
        stream: per frame, its row (``applied()`` is rendered) and ``(frame, pts, image, mask, alpha, planes)`` as
            :func:`~vidharm.pipeline.inputs.iter_frames_masks_alpha` yields it; where ``planes`` are given and
            :func:`yuv_render` allows, the frame is rendered and encoded in its own YUV.
        output: the video file (written atomically, with the source's audio for the whole clip), or an
            image-sequence pattern.
        config: device and encoder settings.
        method: how the rows are applied.
        color: the frames' colour management (as :func:`track_color_management` resolves it), or None.
        on_frame: called with 1 after each frame is encoded.
        mix: strength in [0, 1].
        exact: the torch arithmetic instead of the lookup tables.

    Returns:
        The number of frames written, ``len(inp.frames)``.

    Raises:
        InputError: the stream ends before ``inp.frames`` does (nothing is left at a video ``output``).
        VidharmError: whatever the stream raises, and encode failures (nothing is left at a video ``output``).
    """
    device = resolve_device(config.device)
    if is_sequence_pattern(output):
        files = SequenceWriter(output, force=True, like=inp.info)
        files.remove_stale_temps(inp.frames)
        return len(
            _write_sequence(inp, stream, files, output, len(inp.frames), device, method, color, on_frame, mix, exact)
        )
    whole = inp.frames == range(inp.num_frames)
    with VideoWriter(
        output,
        inp.info,
        codec=config.codec,
        crf=config.crf,
        preset=config.preset,
        pix_fmt=config.pix_fmt,
        # An image sequence has no audio, and is no file VideoWriter could read any from.
        audio_from=inp.clip if whole and inp.info.has_audio else None,
        # A part of the clip: its timecode starts at the first frame rendered.
        frames=None if whole else (inp.frames[0], inp.frames[-1]),
    ) as writer:
        yuv = yuv_render(inp, config, method, color, exact) if writer.planes_format is not None else None

        def rendered() -> Iterator[tuple[VideoFrame, np.ndarray | None]]:
            for row, (frame, pts, image, mask, alpha, planes) in stream:
                args, stats = row.applied()
                if yuv is not None and planes is not None and stats:
                    weight = mask if mix == 1.0 else np.asarray(mask, dtype=np.float32) * np.float32(mix)
                    luts = build_filter_luts(args, stats, 8)
                    out = apply_filter_luts_yuv420(planes, image, luts, weight, matrix=yuv[0], full_range=yuv[1])
                    yield VideoFrame(index=frame, pts=pts, time_base=inp.info.time_base, image=image), out
                    continue
                pixels = render_frame(image, mask, args, stats, device, mix, method, exact=exact, color=color)
                yield VideoFrame(index=frame, pts=pts, time_base=inp.info.time_base, image=pixels, alpha=alpha), None

        written = 0
        # Encoding stays in this thread: x264 runs its own threads, and the writer is not shared.
        for video_frame, planes in prefetch(rendered(), maxsize=_QUEUE_FRAMES):
            if planes is not None:
                writer.write_planes(video_frame, planes)
            else:
                writer.write(video_frame)
            written += 1
            if on_frame is not None:
                on_frame(1)
        if written != len(inp.frames):
            raise InputError(
                f"{inp.clip}: decoded {written} frames but expected {len(inp.frames)}; the clip may be damaged"
            )
    return written


def _write_sequence(
    inp: ClipInput,
    stream: Iterable[tuple[FrameParams, _Decoded]],
    writer: SequenceWriter,
    pattern: str | Path,
    expected: int,
    device: torch.device,
    method: Method,
    color: ColorManagement | None,
    on_frame: Callable[[int], None] | None,
    mix: float,
    exact: bool,
) -> list[int]:
    """Render each (row, decoded frame) of ``stream`` into ``writer``'s files; ``expected`` of them must come."""
    keeps_alpha = writer.pattern.extension not in (".jpg", ".jpeg")
    if inp.info.has_alpha and inp.foreground is None and not keeps_alpha:
        log.warning("%s: JPEG has no alpha channel; the clip's alpha is not written (use .png, .tif or .exr)", pattern)
    written: list[int] = []
    for row, (frame, _pts, image, mask, alpha, _planes) in stream:
        args, stats = row.applied()
        pixels = render_frame(image, mask, args, stats, device, mix, method, exact=exact, color=color)
        writer.write(frame, pixels, alpha=alpha if keeps_alpha else None)
        written.append(frame)
        if on_frame is not None:
            on_frame(1)
    if len(written) != expected:
        raise InputError(
            f"{inp.clip}: decoded {len(written)} of the {expected} frames to render; the clip may be damaged"
        )
    return written


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
            PNG/TIFF keep the frame's bit depth (8 or 16), EXR holds float32 code values in [0, 1]. A clip with
            an alpha channel keeps it as a fourth channel (not in JPEG, which has none: a warning says so).
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
    color = track_color_management(track, config)
    writer = SequenceWriter(pattern, force=force, like=inp.info)
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
    decoded = prefetch(iter_frames_masks_alpha(span, config.decoder), maxsize=4)
    stream = ((rows[item[0]], item) for item in decoded if item[0] in rows)
    return _write_sequence(inp, stream, writer, pattern, len(todo), device, method, color, on_frame, mix, exact)


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
