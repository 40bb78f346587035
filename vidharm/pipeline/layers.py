"""Layers: harmonize a foreground element over its background plate instead of a flattened composite.

With ``--fg FG --bg BG`` the foreground's alpha ``a`` is its own alpha channel (or ``--alpha`` masks). Analysis
sees the composite ``over(fg, bg)`` with ``a`` as its mask, exactly as it sees a flattened clip. Render then
grades the foreground element itself and composites it over the untouched background::

    out = f(fg) * a + bg * (1 - a)        (straight colour; f: the filters with the frame's row and statistics)

whereas a flattened composite ``c = fg * a + bg * (1 - a)`` renders as ``f(c) * a + c * (1 - a)``. The two
agree where ``a`` is 0 (the background) or 1 (the foreground's core); at soft edges the flattened render
grades colour that is partly background and then mixes in background again, so the background at the edge
is graded once through ``f(c)`` and shows as a halo. The layered render grades only the foreground's own
colour, and the background's share of an edge pixel is the background as it came.

Premultiplied foregrounds (``premultiplied=True``: EXR renders, Nuke's default) are unpremultiplied before
grading, ``fg / a`` where ``a > 0``; pixels with ``a == 0`` carry no colour (0), which cannot matter since their
weight is 0. There is no detection: straight is the default (PNG and TIFF store straight colour by their
specification); :func:`check_premultiplied` warns when a frame contradicts the flag. ``--write-fg`` writes the
graded element premultiplied, ``f(fg) * a``, with its alpha, for the comp.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from vidharm.errors import InputError, UsageError
from vidharm.io import (
    ColorManagement,
    SequenceWriter,
    VideoFrame,
    VideoWriter,
    is_sequence_pattern,
    prefetch,
)
from vidharm.pipeline.analyze import frame_histogram, stats_from_histograms
from vidharm.pipeline.inputs import ClipInput, alpha_levels, fingerprint_file, flatten_layers, iter_layers
from vidharm.pipeline.methods import Method
from vidharm.pipeline.params import ParamsTrack
from vidharm.pipeline.render import check_mix, render_frame, track_color_management
from vidharm.pipeline.segments import write_segment_info
from vidharm.pipeline.settings import ProcessConfig, resolve_device

__all__ = [
    "unpremultiply",
    "premultiply",
    "check_premultiplied",
    "render_layer_frame",
    "render_layers",
    "check_layers_source",
]

log = logging.getLogger(__name__)

_FILTERS = Method("filters")
_QUEUE_FRAMES = 4


def _peak(image: np.ndarray) -> np.float32:
    return np.float32(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else np.float32(1)


def unpremultiply(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight colour from premultiplied colour: ``color / alpha`` where ``alpha > 0``, 0 where it is 0.

    Integer frames are rounded to their levels and clipped (a premultiplied value above its alpha is invalid);
    float frames keep their values (scene-linear colour may exceed 1).

    Args:
        color: (H, W, 3) premultiplied colour, uint8, uint16 or float.
        alpha: (H, W) float32 alpha in [0, 1].

    Returns:
        (H, W, 3) straight colour of ``color``'s dtype.

    Example:
        >>> c = np.array([[[100, 50, 0], [0, 0, 0]]], np.uint8)
        >>> unpremultiply(c, np.array([[0.5, 0.0]], np.float32))[0].tolist()
        [[200, 100, 0], [0, 0, 0]]
    """
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    values = color.astype(np.float32)
    straight = np.divide(values, a, out=np.zeros_like(values), where=a > 0)
    if color.dtype.kind == "f":
        return straight.astype(color.dtype, copy=False)
    return np.clip(np.rint(straight), 0, _peak(color)).astype(color.dtype)


def premultiply(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Premultiplied colour from straight colour: ``color * alpha`` (integer frames rounded to their levels).

    Args:
        color: (H, W, 3) straight colour, uint8, uint16 or float.
        alpha: (H, W) float32 alpha in [0, 1].

    Returns:
        (H, W, 3) premultiplied colour of ``color``'s dtype.

    Example:
        >>> premultiply(np.array([[[200, 101, 3]]], np.uint8), np.array([[0.5]], np.float32))[0, 0].tolist()
        [100, 50, 2]
    """
    values = color.astype(np.float32) * np.asarray(alpha, dtype=np.float32)[..., None]
    if color.dtype.kind == "f":
        return values.astype(color.dtype, copy=False)
    return np.clip(np.rint(values), 0, _peak(color)).astype(color.dtype)


def check_premultiplied(color: np.ndarray, alpha: np.ndarray, premultiplied: bool, name: str = "foreground") -> None:
    """Warn when a foreground frame contradicts how its colour is said to be stored (no detection, a check).

    Premultiplied colour never exceeds its alpha; straight colour where the alpha is soft usually does (a
    straight foreground's edge pixels hold the full colour of the element). So: with ``premultiplied`` a frame
    whose colour exceeds its alpha by more than one level anywhere is warned about; without it, a frame
    whose soft-edge pixels (at least 64, some not dark) all stay within their alpha is warned about as
    probably premultiplied.

    Args:
        color: (H, W, 3) colour as stored, uint8, uint16 or float.
        alpha: (H, W) float32 alpha in [0, 1].
        premultiplied: how the colour is said to be stored.
        name: what to call the layer in the warning.
    """
    peak = float(_peak(color))
    top = color.max(axis=2).astype(np.float32) / np.float32(peak)
    slack = 1.0 / peak if color.dtype.kind in "ui" else 1e-4
    a = np.asarray(alpha, dtype=np.float32)
    if premultiplied:
        over = top > a + slack
        if over.any():
            log.warning(
                "%s: %d pixels have colour above their alpha, which premultiplied colour cannot have; if the "
                "foreground is straight, drop --premultiplied",
                name,
                int(over.sum()),
            )
        return
    edge = (a > 0.05) & (a < 0.95)
    if int(edge.sum()) >= 64 and float(top[edge].max()) > 0.2 and bool((top[edge] <= a[edge] + slack).all()):
        log.warning(
            "%s: every soft-edge pixel's colour stays within its alpha, as premultiplied colour does; if the "
            "foreground is premultiplied (EXR renders usually are), add --premultiplied",
            name,
        )


def render_layer_frame(
    fg: np.ndarray,
    alpha: np.ndarray,
    bg: np.ndarray,
    args: Sequence[float],
    stats: Sequence[float] | None = None,
    device: torch.device | str = "cpu",
    mix: float = 1.0,
    method: Method = _FILTERS,
    *,
    premultiplied: bool = False,
    exact: bool = False,
    color: ColorManagement | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grade the foreground element and composite it over the untouched background.

    ``out = g * a + bg * (1 - a)`` with ``g = fg + mix * (f(fg) - fg)`` the graded straight colour (``f``
    applied by :func:`~vidharm.pipeline.render.render_frame` at full strength where ``a > 0``). Where ``a`` is
    0 the result is ``bg`` exactly; where it is 1, ``g``.

    Args:
        fg: (H, W, 3) foreground colour as stored (uint8, uint16 or float, same dtype as ``bg``).
        alpha: (H, W) float32 foreground alpha in [0, 1].
        bg: (H, W, 3) background plate.
        args: the row (see :func:`~vidharm.pipeline.render.render_frame`).
        stats: the filter statistics of the *composite* as analysis measured them; None/empty measures them
            on ``over(fg, bg)`` here.
        device: where the filter arithmetic runs.
        mix: strength in [0, 1].
        method: how the row is applied; the six filters by default.
        premultiplied: ``fg`` is premultiplied by ``alpha`` (it is unpremultiplied before grading).
        exact: the torch arithmetic instead of the lookup tables.
        color: the frames' colour management, or None for code values.

    Returns:
        The composite (H, W, 3) and the graded straight foreground (H, W, 3), both of ``fg``'s dtype.

    Raises:
        UsageError: ``mix`` outside [0, 1].
        ShapeError: layers of different shapes or dtypes.

    Example:
        >>> fg, bg = np.full((1, 3, 3), 100, np.uint8), np.full((1, 3, 3), 60, np.uint8)
        >>> a = np.array([[0.0, 0.5, 1.0]], np.float32)
        >>> out, graded = render_layer_frame(fg, a, bg, [0, 0.3, 0, 0, 0, 0], [0.3, 0.3, 0.3, 0.5])
        >>> out[0, :, 0].tolist(), int(graded[0, 2, 0])
        ([60, 102, 143], 143)
    """
    check_mix(mix)
    straight = unpremultiply(fg, alpha) if premultiplied else fg
    if method.kind == "filters" and not stats:
        composite = flatten_layers(straight, alpha, bg)
        hist = torch.from_numpy(frame_histogram(composite))[None]
        stats = stats_from_histograms(hist, torch.tensor([list(args)], dtype=torch.float64))[0].tolist()
    where = (np.asarray(alpha) > 0).astype(np.float32)
    graded = render_frame(straight, where, args, stats, device, mix, method, exact=exact, color=color)
    return flatten_layers(graded, alpha, bg), graded


def check_layers_source(track: ParamsTrack, inp: ClipInput, *, name: str = "the parameter file") -> None:
    """Refuse to render ``track`` on layers other than those it was analyzed from.

    Raises:
        UsageError: ``inp`` has no foreground layer.
        InputError: the track was analyzed from a flattened clip, from another foreground, or with another
            premultiplication.
    """
    layer = inp.foreground
    if layer is None:
        raise UsageError(f"{inp.clip}: not a layered input; give --fg and --bg")
    header = track.header
    expected = header.get("foreground_fingerprint")
    if "clip_fingerprint" in header and "foreground" not in header:
        raise InputError(
            f"{name} was analyzed from a flattened clip ({header.get('clip')}), not from layers; analyze the "
            f"layers (--fg {layer.path.name} --bg {inp.clip.name}) and render with that"
        )
    if expected and expected != fingerprint_file(layer.path):
        raise InputError(
            f"{name} was analyzed with another foreground ({header.get('foreground')}) than {layer.path}; its "
            f"fingerprint differs, so analyze these layers again"
        )
    if "premultiplied" in header and bool(header["premultiplied"]) != layer.premultiplied:
        raise InputError(
            f"{name} was analyzed with the foreground taken as {_storage(bool(header['premultiplied']))}, but this "
            f"render takes it as {_storage(layer.premultiplied)}; use the same --premultiplied setting"
        )


def _storage(premultiplied: bool) -> str:
    return "premultiplied" if premultiplied else "straight"


def render_layers(
    inp: ClipInput,
    track: ParamsTrack,
    output: str | Path,
    config: ProcessConfig,
    *,
    on_frame: Callable[[int], None] | None = None,
    mix: float = 1.0,
    force: bool = False,
    exact: bool = False,
    write_fg: str | Path | None = None,
    segment_info: bool = False,
) -> int:
    """Render layered input: grade the foreground element, composite it over the background, encode.

    ``output`` is a video (rewritten atomically, with the background's timing, tags and audio) or an
    image-sequence pattern (finished frames skipped unless ``force``, as
    :func:`~vidharm.pipeline.render.render_sequence`). ``write_fg`` also writes the graded foreground element,
    premultiplied, with its alpha: an image-sequence pattern (RGBA PNG or TIFF, 8/16-bit as the layers;
    numbered like the foreground) or a ``.mov`` (ProRes 4444 with alpha). Decoding, rendering and writing run
    in three threads joined by queues of four frames.

    Args:
        inp: layered input (:func:`~vidharm.pipeline.inputs.open_layers`); ``inp.frames`` are rendered.
        track: the parameters, analyzed from these layers.
        output: ``out.mov``/``.mp4``/``.mkv``, or ``out/frame.%05d.png`` (also ``####``).
        config: device, decoder and encoder settings.
        on_frame: progress callback (frames done).
        mix: strength in [0, 1].
        force: image sequences: rewrite existing frames.
        exact: the torch arithmetic instead of the lookup tables.
        write_fg: where to write the graded element, or None.
        segment_info: videos: write ``<stem>.segment.json`` beside the video (farm segments).

    Returns:
        The number of frames rendered.

    Raises:
        UsageError: not a layered input, ``mix`` outside [0, 1], ``write_fg`` neither a pattern nor a .mov.
        InputError: the track has no row for a frame, or was made for other layers or another size.
        VidharmError: decode, mask or write failures.
    """
    check_mix(mix)
    check_layers_source(track, inp)
    layer = inp.foreground
    if layer is None:  # for the type checker; check_layers_source has refused it
        raise UsageError(f"{inp.clip}: not a layered input")
    if (track.header.get("width"), track.header.get("height")) != (inp.info.width, inp.info.height):
        raise InputError(
            f"the parameter file was made for a {track.header.get('width')}x{track.header.get('height')} clip, "
            f"but {inp.clip.name} is {inp.info.width}x{inp.info.height}; analyze these layers again"
        )
    element: Path | None = Path(write_fg) if write_fg is not None else None
    if element is not None and not is_sequence_pattern(element) and element.suffix.lower() != ".mov":
        raise UsageError(
            f"{element}: the foreground element is written as an image sequence (elem.%04d.png, .tif) or a .mov "
            f"(ProRes 4444 with alpha); choose one of those"
        )
    sequence = is_sequence_pattern(output)
    writer = SequenceWriter(output, force=force, like=inp.info) if sequence else None
    elem_seq = (
        SequenceWriter(element, force=force, like=layer.info) if element and is_sequence_pattern(element) else None
    )
    todo = list(inp.frames)
    if writer is not None:
        todo = sorted(set(writer.pending(inp.frames)) | set(elem_seq.pending(inp.frames) if elem_seq else []))
        if on_frame is not None and len(todo) < len(inp.frames):
            on_frame(len(inp.frames) - len(todo))
        if not todo:
            return 0
        writer.remove_stale_temps(todo)
        if elem_seq is not None:
            elem_seq.remove_stale_temps(todo)
    span = ClipInput(
        clip=inp.clip,
        info=inp.info,
        num_frames=inp.num_frames,
        masks=inp.masks,
        frames=range(todo[0], todo[-1] + 1),
        stats_mask=None,
        foreground=layer,
    )
    rows = {f: track.row(f) for f in todo}
    method = track.method
    device = resolve_device(config.device)
    color = track_color_management(track, config)
    checked = False

    def rendered() -> Iterator[tuple[int, int | None, np.ndarray, np.ndarray, np.ndarray]]:
        nonlocal checked
        for frame, pts, fg, alpha, bg in prefetch(iter_layers(span, config.decoder), maxsize=_QUEUE_FRAMES):
            row = rows.get(frame)
            if row is None:
                continue
            if not checked:
                check_premultiplied(fg, alpha, layer.premultiplied, str(layer.path))
                checked = True
            args, stats = row.applied()
            out, graded = render_layer_frame(
                fg,
                alpha,
                bg,
                args,
                stats,
                device,
                mix,
                method,
                premultiplied=layer.premultiplied,
                exact=exact,
                color=color,
            )
            yield frame, pts, out, graded, alpha

    whole = inp.frames == range(inp.num_frames)
    written = 0
    with ExitStack() as stack:
        video = None
        if writer is None:
            video = stack.enter_context(
                VideoWriter(
                    Path(output),
                    inp.info,
                    codec=config.codec,
                    crf=config.crf,
                    preset=config.preset,
                    pix_fmt=config.pix_fmt,
                    audio_from=inp.clip if whole and inp.info.has_audio else None,
                    frames=None if whole else (inp.frames[0], inp.frames[-1]),
                    alpha=False,  # the composite is opaque, whatever the plate carries
                )
            )
        elem_video = None
        if element is not None and elem_seq is None:
            elem_video = stack.enter_context(VideoWriter(element, layer.info, codec=None, alpha=True))
        for frame, pts, out, graded, alpha in prefetch(rendered(), maxsize=_QUEUE_FRAMES):
            if video is not None:
                video.write(VideoFrame(index=frame, pts=pts, time_base=inp.info.time_base, image=out))
            elif writer is not None and (force or not writer.path(frame).is_file()):
                writer.write(frame, out)
            if elem_video is not None or elem_seq is not None:
                colour, opacity = premultiply(graded, alpha), alpha_levels(alpha, graded)
                if elem_video is not None:
                    elem_video.write(VideoFrame(frame, pts, inp.info.time_base, colour, opacity))
                elif elem_seq is not None and (force or not elem_seq.path(frame).is_file()):
                    elem_seq.write(frame, np.dstack([colour, opacity]))
            written += 1
            if on_frame is not None:
                on_frame(1)
        if written != len(todo):
            raise InputError(
                f"{inp.clip}: decoded {written} of the {len(todo)} layered frames to render; a layer may be damaged"
            )
    if segment_info and writer is None:
        write_segment_info(Path(output), inp, track, mix=mix)
    return written
