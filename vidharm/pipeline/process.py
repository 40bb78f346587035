"""Process: analyze, smooth and render on one machine; and the same for a single still image."""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidharm.config import dump_config
from vidharm.errors import InputError, OutputError, UsageError
from vidharm.filters import FILTER_NAMES, NUM_ARGS, measure_filter_stats
from vidharm.io import atomic_path, is_sequence_pattern, parse_sequence_pattern, prefetch, read_image, write_image
from vidharm.masks import ClipAlpha, MaskFolder, PropagatedMasks, fit_mask, to_alpha, write_masks
from vidharm.models import get_model_config
from vidharm.pipeline.analyze import (
    analysis_frame,
    analysis_track,
    analyze,
    analyze_stream,
    config_stride,
    load_model,
    network_runtime,
    to_model_input,
)
from vidharm.pipeline.inputs import ClipInput, iter_frames_masks_alpha, iter_stats_masks, open_clip, open_layers
from vidharm.pipeline.layers import render_layers
from vidharm.pipeline.methods import Method, method_for_model
from vidharm.pipeline.params import FrameParams, ParamsTrack, write_params
from vidharm.pipeline.render import (
    check_mix,
    render_frame,
    render_output,
    render_stream,
    track_color_management,
    yuv_render,
)
from vidharm.pipeline.settings import ProcessConfig, color_management, resolve_device
from vidharm.pipeline.smooth import CAUSAL_MODES, CausalSmoother, smooth

__all__ = ["process_video", "process_layers", "harmonize_image", "check_output_path", "config_path_for", "one_pass"]

log = logging.getLogger(__name__)

Progress = Callable[[str, int], Callable[[int], None]]

# Decoded frames (colour and float32 mask) a one-pass run may hold while their rows wait for the next key frame:
# 1080p 8-bit up to analyze_stride 18, 4K 8-bit up to 4; beyond, two passes hold less.
_ONE_PASS_HELD_BYTES = 256 << 20


def check_output_path(output: Path, *inputs: Path) -> None:
    """Refuse an output that would overwrite an input or lands in a missing folder.

    An image-sequence pattern's folder may be missing: the sequence writer creates it.

    Raises:
        UsageError: the output is one of the inputs.
        OutputError: the output's folder does not exist.
    """
    for path in inputs:
        if output.resolve() == path.resolve():
            raise UsageError(f"{output}: the output would overwrite the input; choose another output path")
    if not output.parent.is_dir() and not is_sequence_pattern(output):
        raise OutputError(f"{output}: the output folder {output.parent} does not exist; create it first")


def config_path_for(output: Path) -> Path:
    """Where a run's resolved config is written: beside the output, ``<stem>.vidharm.yaml``.

    For an image-sequence pattern the name is the part before the frame number (``out/shot.%04d.png`` ->
    ``out/shot.vidharm.yaml``).

    Example:
        >>> config_path_for(Path("out/shot.%04d.png")).as_posix(), config_path_for(Path("a.mp4")).as_posix()
        ('out/shot.vidharm.yaml', 'a.vidharm.yaml')
    """
    if is_sequence_pattern(output):
        pattern = parse_sequence_pattern(output)
        return pattern.folder / ((pattern.prefix.rstrip("._-") or "sequence") + ".vidharm.yaml")
    return output.with_name(output.stem + ".vidharm.yaml")


def process_video(
    clip: Path,
    masks: Path | None,
    output: Path,
    config: ProcessConfig,
    *,
    params_out: Path | None = None,
    progress: Progress | None = None,
    fps: Fraction | float | str | None = None,
    mask_from_alpha: bool = False,
    stats_mask: Path | None = None,
) -> ParamsTrack:
    """Harmonize a clip: analyze every frame, smooth the track, render and encode.

    With causal smoothing (``ema``, the default, or ``off``) the three run in one decode of the clip and masks
    (:func:`one_pass`), with the same pixels and sidecar as analysing the whole clip first; ``zero_lag`` (and
    inputs :func:`one_pass` names) analyse the whole clip, smooth the whole track, then decode again to render.

    Args:
        clip: the input video or image-sequence pattern.
        masks: folder of numbered mask images (for every frame, or keyframes to propagate) or a mask video;
            None with ``mask_from_alpha``.
        output: the output video (written atomically, with the source's audio and colour tags), or an image
            sequence pattern (``out.####.exr``; every frame rewritten, numbered as the source's).
        config: model, smoothing and encoder settings.
        params_out: where to write the parameter sidecar, or None.
        progress: ``progress(stage, total)`` returns a per-frame callback, for progress bars.
        fps: the frame rate of an image-sequence ``clip`` (default 24); None for a video.
        mask_from_alpha: the clip's own alpha channel is the mask (``masks`` None).
        stats_mask: where the background may be measured (1) and not (0): a mask image for every frame, a
            folder or a mask video (see :func:`~vidharm.pipeline.inputs.open_stats_mask`); None for everywhere.

    Returns:
        The smoothed parameter track that was rendered.

    Raises:
        VidharmError: any bad input, model or output problem, before anything is left at ``output``.
    """
    check_output_path(output, clip, *(p for p in (masks, stats_mask) if p is not None))
    inp: ClipInput = open_clip(
        clip,
        masks,
        decoder=config.decoder,
        fps=fps,
        mask_from_alpha=mask_from_alpha,
        stats_mask=stats_mask,
    )
    return _process(inp, output, config, params_out=params_out, progress=progress)


def process_layers(
    foreground: Path,
    background: Path,
    output: Path,
    config: ProcessConfig,
    *,
    alpha: Path | None = None,
    premultiplied: bool = False,
    stats_mask: Path | None = None,
    write_fg: Path | None = None,
    params_out: Path | None = None,
    progress: Progress | None = None,
    fps: Fraction | float | str | None = None,
) -> ParamsTrack:
    """Harmonize a foreground layer over a background plate (see :mod:`vidharm.pipeline.layers`).

    Analysis sees ``over(fg, bg)`` with the foreground's alpha as mask; render grades the foreground element
    and composites it over the untouched background, so soft edges are not graded twice.

    Args:
        foreground: the foreground element (clip or image-sequence pattern) with its own alpha, or with ``alpha``.
        background: the background plate, same size and length; the output takes its timing, tags and audio.
        output: the output video or image-sequence pattern.
        config: model, smoothing and encoder settings.
        alpha: the foreground's alpha as masks (a folder with every frame, or a mask video); None for its own.
        premultiplied: the foreground's colour is premultiplied by its alpha (default straight).
        stats_mask: where the background may be measured (see :func:`process_video`).
        write_fg: also write the graded foreground element, premultiplied with alpha: an RGBA image-sequence
            pattern (``elem.%04d.png``) or a ``.mov`` (ProRes 4444).
        params_out: where to write the parameter sidecar, or None.
        progress: ``progress(stage, total)`` returns a per-frame callback, for progress bars.
        fps: the frame rate of image-sequence layers (default 24); None for videos.

    Returns:
        The smoothed parameter track that was rendered.

    Raises:
        UsageError: ``write_fg`` is ``output`` or an input.
        VidharmError: any bad input, model or output problem.
    """
    inputs = [p for p in (foreground, background, alpha, stats_mask) if p is not None]
    check_output_path(output, *inputs)
    if write_fg is not None:
        if Path(write_fg).resolve() == Path(output).resolve():
            raise UsageError(f"{write_fg}: --write-fg and the output are the same path; give the element its own")
        check_output_path(Path(write_fg), *inputs)
    inp = open_layers(
        foreground,
        background,
        alpha,
        premultiplied=premultiplied,
        stats_mask=stats_mask,
        decoder=config.decoder,
        fps=fps,
    )
    return _process(inp, output, config, params_out=params_out, progress=progress, write_fg=write_fg)


def _process(
    inp: ClipInput,
    output: Path,
    config: ProcessConfig,
    *,
    params_out: Path | None,
    progress: Progress | None,
    write_fg: Path | None = None,
) -> ParamsTrack:
    """Analyze, smooth and render opened inputs; write the sidecar and the resolved config."""
    model = load_model(config, resolve_device(config.device))
    with tempfile.TemporaryDirectory(prefix="vidharm-masks-") as tmp:
        if isinstance(inp.masks, PropagatedMasks):
            # Propagate once for both passes; the sidecar still names the keyframe folder.
            on_mask = progress("masks", len(inp.frames)) if progress else None
            write_masks(inp.masks, inp.frames, inp.info.width, inp.info.height, Path(tmp), on_frame=on_mask)
            keyframes = inp.masks
            inp = dataclasses.replace(inp, masks=MaskFolder(tmp))
        else:
            keyframes = None
        if one_pass(inp, output, config):
            # One bar for both stages (the frames are analysed and rendered in the same pass).
            on_frame = progress("analyze+render", len(inp.frames)) if progress else None
            track = _process_one_pass(inp, output, config, model, on_frame)
            if keyframes is not None:
                track.header.update(masks=str(keyframes.path), masks_fingerprint=keyframes.fingerprint())
        else:
            on_analyze = progress("analyze", len(inp.frames)) if progress else None
            track = analyze(inp, config, model=model, on_frame=on_analyze)
            if keyframes is not None:
                track.header.update(masks=str(keyframes.path), masks_fingerprint=keyframes.fingerprint())
            track = smooth(track, mode=config.smoothing, half_life_s=config.half_life_s)
            on_render = progress("render", len(inp.frames)) if progress else None
            if inp.foreground is not None:
                render_layers(inp, track, output, config, on_frame=on_render, force=True, write_fg=write_fg)
            else:
                render_output(inp, track, output, config, on_frame=on_render, force=True)
    if params_out is not None:
        write_params(track, params_out)
    with atomic_path(config_path_for(output)) as tmp:
        tmp.write_text(dump_config(config))
    return track


def one_pass(inp: ClipInput, output: str | Path, config: ProcessConfig) -> bool:
    """Whether :func:`process_video` analyses, smooths and renders ``inp`` in one decode.

    It does when the smoothing is causal (``ema`` or ``off``: each row's smoothed value is known once its
    frame, and with ``analyze_stride`` k the next analysed frame, is analysed), the input is no pair of layers,
    analysis and render decode the clip alike (no alpha channel, or the alpha is the mask), and the k decoded
    frames held meanwhile fit in 256 MiB (at 1080p 8-bit, k <= 18). The result is the two-pass result exactly
    (pixels and sidecar); ``zero_lag`` needs the whole track before the first frame is rendered, so it keeps two
    passes. One difference: a clip or mask source that ends early is found at its end,
    so an image-sequence output keeps the frames rendered until then (a video output is never left half-written).

    Example:
        >>> from vidharm.io._synth import write_test_clip
        >>> folder = Path(tempfile.mkdtemp())
        >>> clip = write_test_clip(folder / "clip.mp4", num_frames=2)
        >>> write_image(folder / "mask.png", np.full((48, 64), 255, np.uint8))
        >>> inp = open_clip(clip, folder / "mask.png")
        >>> one_pass(inp, "out.mp4", ProcessConfig()), one_pass(inp, "out.mp4", ProcessConfig(smoothing="zero_lag"))
        (True, False)
        >>> one_pass(inp, "out.%04d.png", ProcessConfig(smoothing="off"))
        True
        >>> one_pass(inp, "out.mp4", ProcessConfig(analyze_stride=20000))  # 20000 frames of 64x48 held: too many
        False
    """
    if config.smoothing not in CAUSAL_MODES or inp.foreground is not None:
        return False
    if inp.info.has_alpha and not isinstance(inp.masks, ClipAlpha):
        return False
    # A row waits for the next key frame (a whole batch of them off the CPU), and so does its decoded frame.
    held = config_stride(config, inp) * (1 if resolve_device(config.device).type == "cpu" else config.batch_size)
    sample = 1 if inp.info.bit_depth <= 8 else 2 if inp.info.bit_depth <= 16 else 4
    return held * inp.info.width * inp.info.height * (3 * sample + 4) <= _ONE_PASS_HELD_BYTES


def _process_one_pass(
    inp: ClipInput, output: Path, config: ProcessConfig, model: torch.nn.Module, on_frame: Callable[[int], None] | None
) -> ParamsTrack:
    """Analyze, smooth (causally) and render in one decode; the track equals :func:`analyze` then :func:`smooth`'s."""
    method = method_for_model(config.model, config.transfer)
    color = color_management(config)
    # The header fields the smoother and the render read, as analysis_track writes them (so parsed alike).
    early = ParamsTrack(
        header={
            "fps": str(inp.info.fps),
            "time_base": str(inp.info.time_base),
            "method": method.to_header(),
            "color": color.describe() if color is not None else None,
        }
    )
    smoother = CausalSmoother(early.header, mode=config.smoothing, half_life_s=config.half_life_s)
    rows: list[FrameParams] = []
    header: dict[str, Any] = {}

    def stream() -> Iterator[tuple[FrameParams, Any]]:
        planes = yuv_render(inp, config, early.method, track_color_management(early, config), exact=False) is not None
        items = zip(iter_frames_masks_alpha(inp, config.decoder, planes=planes), iter_stats_masks(inp), strict=False)
        for row, item in analyze_stream(inp, config, model, items, carry=True):
            smoothed = smoother.push(row)
            rows.append(smoothed)
            yield smoothed, item
        # Checks the count (a short clip or mask source raises here, before the output is kept).
        header.update(analysis_track(inp, config, rows, runtime=network_runtime(config, model)).header)

    # The network runs in a thread of its own, a frame ahead of the render (every frame queued is full-size).
    render_stream(
        inp,
        prefetch(stream(), maxsize=1),
        output,
        config,
        method=early.method,
        color=track_color_management(early, config),
        on_frame=on_frame,
    )
    return ParamsTrack(header={**header, "smoothing": smoother.smoothing_header()}, frames=rows)


def harmonize_image(
    composite: Path,
    mask: Path,
    output: Path | None,
    config: ProcessConfig,
    *,
    args: Sequence[float] | None = None,
    mix: float = 1.0,
) -> dict[str, float]:
    """Harmonize one still image at full resolution (``vidharm image``).

    The network sees the image resized to its input size; the filters run on the full image with
    statistics measured on it, exactly as the reference image demo, except that the result is rounded
    (the demo truncates) and the native bit depth is kept. With ``args`` given, no network runs: those six
    filter arguments are applied instead (so a still can be tuned by hand).

    With colour management (``config.colorspace``, e.g. an ACEScg EXR) the network and the statistics see the
    image in the analysis space and only the filters' change comes back to the image's space, exactly as
    :func:`~vidharm.pipeline.render.render_frame` renders video frames: the background is kept bit for bit and
    scene-linear values above 1 are carried. Float images without it are taken as code values (the network
    and the statistics see them clipped to [0, 1]; the filters extend beyond, see ``render_frame``).

    Args:
        composite: RGB image: 8- or 16-bit PNG/TIFF/JPEG/DPX, or float (half/float EXR, float TIFF; unbounded).
        mask: foreground mask image, same size or same aspect.
        output: where to write (by extension, atomically: PNG/TIFF/JPEG/DPX for integer images, EXR or TIFF for
            float ones, which come back float32), or None to only predict.
        config: model, weights, transfer, device, and ``colorspace``/``ocio`` for colour management.
        args: six raw filter arguments to apply instead of predicting, or None.
        mix: harmonization strength in [0, 1].

    Returns:
        The row that was (or would be) applied, by name: the six raw filter arguments, or a colour
        transform's coefficients for image models.

    Raises:
        UsageError: ``args`` not six finite numbers, ``args`` with an image model, ``mix`` outside [0, 1], an
            unknown colour space, a float image to a PNG/JPEG output.
        VidharmError: unreadable inputs, mismatched aspect, model or output problems.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> image = np.full((8, 8, 3), 0.25, np.float32); image[0, 0] = 4.0  # scene-linear, one highlight
        >>> write_image(folder / "comp.exr", image); write_image(folder / "mask.png", np.full((8, 8), 255, np.uint8))
        >>> row = harmonize_image(folder / "comp.exr", folder / "mask.png", folder / "out.exr",
        ...                       ProcessConfig(colorspace="ACEScg"), args=[0, -0.2, 0, 0, 0, 0])
        >>> out = read_image(folder / "out.exr")  # darker, and the highlight moves with the white, unclipped
        >>> out.dtype.name, bool(out[1, 1, 0] < 0.25), bool(1.0 < out[0, 0, 0] < 4.0)
        ('float32', True, True)
    """
    check_mix(mix)
    if output is not None:
        check_output_path(output, composite, mask)
    image = read_image(composite)
    if image.ndim != 3:
        raise InputError(f"{composite}: expected an RGB image, got a single-channel one")
    alpha = fit_mask(to_alpha(read_image(mask, keep_alpha=True), str(mask)), image.shape[1], image.shape[0], str(mask))
    color = color_management(config)
    seen = analysis_frame(image, color)  # the image as the model and the statistics see it: uint8 or uint16
    device = resolve_device(config.device)
    method = method_for_model(config.model, config.transfer) if args is None else Method("filters")
    scale = float(np.iinfo(seen.dtype).max)
    x = torch.from_numpy(np.ascontiguousarray(seen)).to(device).permute(2, 0, 1)[None].float().div(scale)
    stats: list[float] | None = None
    with torch.inference_mode():
        if args is not None:
            values = [float(a) for a in args]
            if len(values) != NUM_ARGS or not all(math.isfinite(v) for v in values):
                raise UsageError(f"args: expected {NUM_ARGS} finite numbers ({', '.join(FILTER_NAMES)}), got {args}")
            row = torch.tensor([values], dtype=torch.float32, device=device)
        elif method.kind == "filters":
            # The reference path: the model resizes the full-resolution tensor itself.
            row = load_model(config, device)(x, torch.from_numpy(alpha).to(device)[None, None]).float()
        else:
            small, small_mask = to_model_input(seen, alpha, get_model_config(config.model).input_size, device)
            row = method.predict(load_model(config, device), small, small_mask)
        if method.kind == "filters":
            stats = measure_filter_stats(x, row)[0].tolist()
    raw = row[0].tolist()
    if output is not None:
        write_image(output, render_frame(image, alpha, raw, stats, device, mix, method, exact=True, color=color))
    return dict(zip(method.arg_names, raw, strict=True))
