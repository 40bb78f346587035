"""The inputs of a run: a clip (or a foreground layer over a background) and its masks, opened and checked.

Three kinds of foreground mask: a folder of numbered images or a mask video (every frame, or keyframes that
are propagated); the clip's own alpha channel (``mask_from_alpha``: ProRes 4444, QuickTime Animation, RGBA
PNG sequences); and, for layers (:func:`open_layers`), the foreground element's alpha. A separate optional
*statistics mask* marks where the background may be measured (1) and where not (0: letterbox bars, sky,
garbage); see :mod:`vidharm.pipeline.analyze` for how analysis honours it.

Frame numbers. What a user sees and gives is the SOURCE frame number: a video counts from 0, an image sequence
from its first file (``VideoInfo.first_frame``: 1001 for ``plate.1001.exr``). Mask, keyframe, statistics-mask
and ``--alpha`` folders are numbered that way (``matte.1001.png`` is the mask of ``plate.1001.exr``), and
``frames`` given to :func:`open_clip` and :func:`open_layers` (``--frames 1001-1050``) are source numbers.
Inside the pipeline a frame is its *position* in the clip (0 = first frame, as
:func:`~vidharm.io.read_frames` counts): :attr:`ClipInput.frames`, the ``frame`` of sidecar rows and of
:func:`iter_frames_and_masks`, and the ``iter_masks`` argument of every mask source. Source number =
``ClipInput.first_frame`` + position; for a video the two are the same. Outputs convert back: image sequences
are written as ``first_frame + position``, segment files (:mod:`vidharm.pipeline.segments`), farm chunks and the
names of analyze sidecars use source numbers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidharm.errors import InputError, MaskError, ShapeError, UsageError
from vidharm.io import (
    DEFAULT_SEQUENCE_FPS,
    VideoFrame,
    VideoInfo,
    count_frames,
    find_sequence,
    fingerprint_sequence,
    is_sequence_source,
    probe_video,
    read_frames,
)
from vidharm.masks import MASK_IMAGE_SUFFIXES, ClipAlpha, MaskFolder, MaskVideo, PropagatedMasks, StillMask, open_masks

__all__ = [
    "ClipInput",
    "ForegroundLayer",
    "MaskSource",
    "open_clip",
    "open_layers",
    "open_stats_mask",
    "iter_frames_and_masks",
    "iter_frames_masks_alpha",
    "iter_layers",
    "iter_stats_masks",
    "flatten_layers",
    "match_depth",
    "alpha_levels",
    "fingerprint_file",
    "describe_ranges",
    "first_frame_of",
    "frame_positions",
    "DEFAULT_SEQUENCE_FPS",  # re-exported from vidharm.io for the command line (which may not import io)
    "is_sequence_source",
]

log = logging.getLogger(__name__)

#: Anything that yields a float32 (H, W) mask in [0, 1] per frame (``iter_masks``) and has a ``fingerprint``.
MaskSource = MaskFolder | MaskVideo | PropagatedMasks | ClipAlpha | StillMask


@dataclass(frozen=True)
class ForegroundLayer:
    """The foreground element of a layered input (``--fg``): its clip, and whether its colour is premultiplied.

    Attributes:
        path: the foreground clip or image-sequence pattern.
        info: its :class:`~vidharm.io.VideoInfo` (same size and length as the background).
        premultiplied: its colour is premultiplied by its alpha (else straight, as PNG and TIFF store it).
    """

    path: Path
    info: VideoInfo
    premultiplied: bool = False


@dataclass(frozen=True)
class ClipInput:
    """A clip, its masks and the frames to work on, checked against each other.

    Attributes:
        clip: the plate: the clip, or with layers the background (its timing, tags and audio go to the output).
        info: the plate's :class:`~vidharm.io.VideoInfo`.
        num_frames: the plate's frame count.
        masks: the foreground mask; with layers, the foreground's alpha.
        frames: the frames to work on as clip positions (0 = the clip's first frame, step 1); see
            :attr:`source_frames` for their source numbers.
        stats_mask: where the background may be measured (1) or not (0), or None for everywhere.
        foreground: the foreground layer, or None when ``clip`` is a flattened composite.
    """

    clip: Path
    info: VideoInfo
    num_frames: int
    masks: MaskSource
    frames: range
    stats_mask: MaskSource | None = None
    foreground: ForegroundLayer | None = None

    @property
    def first_frame(self) -> int:
        """The source number of the plate's first frame (an image sequence's first file number, 0 for a video)."""
        return self.info.first_frame

    @property
    def source_frames(self) -> range:
        """:attr:`frames` as source frame numbers (``first_frame + position``)."""
        return range(self.first_frame + self.frames.start, self.first_frame + self.frames.stop)


def masks_cover(source: MaskSource | None, frames: range) -> bool:
    """Whether ``source`` has a mask for every clip position in ``frames``: a folder a file for each (the other
    sources, and None, cover the clip)."""
    return not isinstance(source, MaskFolder) or set(frames) <= set(source.positions)


def describe_ranges(numbers: list[int]) -> str:
    """``[2, 3, 5]`` as ``"2-3, 5"`` (at most five runs named)."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}-{n}")
            start = None
    text = ", ".join(parts[:5])
    return text + (f" and {len(parts) - 5} more ranges" if len(parts) > 5 else "")


def first_frame_of(clip: str | Path) -> int:
    """The source number of a clip's first frame: an image sequence's first file number, 0 for a video.

    Only the sequence's folder is listed (no file is opened, a video is not probed).

    Raises:
        InputError: a sequence pattern that matches no files, or one with gaps.

    Example:
        >>> first_frame_of("clip.mp4")
        0
    """
    return find_sequence(clip).first if is_sequence_source(clip) else 0


def frame_positions(clip: str | Path, frames: range | None, first_frame: int, total: int | None = None) -> range:
    """Source frame numbers (``--frames 1001-1050``) as clip positions (0 = the clip's first frame).

    Args:
        clip: the clip, for messages.
        frames: source frame numbers (step 1, not empty), or None for the whole clip (needs ``total``).
        first_frame: the clip's first source frame number (:func:`first_frame_of`).
        total: the clip's frame count, or None where unknown (then only the start is checked).

    Returns:
        The positions ``frames - first_frame``.

    Raises:
        InputError: ``frames`` empty, before the clip's first frame or past its last.
        UsageError: ``frames`` None without ``total``.

    Example:
        >>> frame_positions("plate.%04d.exr", range(1003, 1006), 1001, 10)
        range(2, 5)
        >>> frame_positions("plate.%04d.exr", range(3, 6), 1001, 10)
        Traceback (most recent call last):
        ...
        vidharm.errors.InputError: plate.%04d.exr: frames 3-5 are outside the clip (frames 1001-1010); frame \
numbers are the source's (an image sequence's file numbers): give --frames within 1001-1010
    """
    if frames is None:
        if total is None:
            raise UsageError(f"{clip}: the whole clip needs its frame count; give frames or total")
        return range(total)
    last = None if total is None else first_frame + total - 1
    if len(frames) == 0 or frames.step != 1 or frames.start < first_frame or (last is not None and frames[-1] > last):
        span = f"{first_frame}-{last}" if last is not None else f"from {first_frame}"
        if len(frames) == 1:
            shown = f"frame {frames.start} is"
        else:
            shown = f"frames {frames.start}-{frames.stop - 1}{'' if len(frames) else ' (empty)'} are"
        raise InputError(
            f"{clip}: {shown} outside the clip (frames {span}); frame numbers are the source's (an image "
            f"sequence's file numbers): give --frames within {span}"
        )
    return range(frames.start - first_frame, frames.stop - first_frame)


def _resolve_masks(
    source: MaskFolder | MaskVideo,
    clip: Path,
    total: int,
    frames: range,
    *,
    first_frame: int,
    propagate: bool,
    decoder: str,
    what: str = "masks",
    hint: str | None = None,
) -> MaskSource:
    """Check a folder's numbering (source numbers) against the clip; a folder with gaps becomes propagated keyframes.

    ``frames`` are clip positions; ``source`` was opened with ``first_frame``.
    """
    if not isinstance(source, MaskFolder):
        return source
    first, last = first_frame, first_frame + total - 1
    span = f"{first}-{last}"
    numbers = source.frame_numbers
    before = [n for n in numbers if n < first]
    if before and len(before) == len(numbers):
        raise MaskError(
            f"{source.path}: the {what.removesuffix('s')} files are numbered {describe_ranges(numbers)} but "
            f"{clip.name}'s frames are {span}; mask file numbers are the clip's source frame numbers: number them "
            f"from {first} (e.g. {source.files[numbers[0]].name} -> {first})"
        )
    if before:
        raise MaskError(
            f"{source.files[before[0]]}: {what.removesuffix('s')} for frame {before[0]} is before {clip.name}'s first "
            f"frame {first} (frames {span}); mask file numbers are the clip's source frame numbers: check the numbering"
        )
    beyond = [n for n in numbers if n > last]
    if beyond:
        raise MaskError(
            f"{source.files[beyond[0]]}: {what} for frame {beyond[0]} but {clip.name} has {total} frames "
            f"({span}); check the numbering of the mask files"
        )
    missing = sorted(set(frames) - set(source.positions))
    if missing and not propagate:
        hint = hint or f"give one mask per frame, numbered as the clip's source frames ({span})"
        named = describe_ranges([first + m for m in missing])
        raise MaskError(f"{source.path}: no {what} for {len(missing)} of {len(frames)} frames ({named}); {hint}")
    if missing:
        log.info("%s: propagating %d keyframe masks to %d frames", source.path, len(source.files), len(missing))
        return PropagatedMasks(source, clip, total, decoder=decoder)
    return source


def open_stats_mask(
    path: str | Path,
    clip: Path,
    total: int,
    frames: range,
    *,
    first_frame: int = 0,
    propagate: bool = True,
    decoder: str = "pyav",
) -> MaskSource:
    """Open a statistics mask: where the background may be measured (1) and where not (0).

    Same sources as the foreground masks, with one addition: a *single image* is a static matte that holds for
    every frame (letterbox bars, a fixed garbage matte), with no propagation. A folder covering every frame is
    used as it is; a folder covering only some frames is a set of keyframes propagated by optical flow on
    ``clip``, exactly like foreground masks; a mask video gives one mask per frame. A folder's files are numbered
    in the plate's source frame numbers (from ``first_frame``).

    Args:
        path: a mask image, a folder of numbered mask images, or a mask video.
        clip: the plate the masks belong to (for propagation and messages).
        total: the plate's frame count.
        frames: the frames to work on, as clip positions (0 = the plate's first frame).
        first_frame: the plate's first source frame number (an image sequence's first file number, 0 for a video).
        propagate: fill frames between keyframes by propagation; False makes them an error.
        decoder: the decoder propagation reads frames with.

    Returns:
        The mask source.

    Raises:
        MaskError: a missing or unusable source, masks numbered beyond the clip, gaps without ``propagate``.

    Example:
        >>> try:
        ...     open_stats_mask("/nonexistent/bars.png", Path("clip.mp4"), 10, range(10))
        ... except MaskError as exc:
        ...     print(str(exc)[:53])
        /nonexistent/bars.png: statistics mask not found; giv
    """
    path = Path(path)
    if not path.exists():
        raise MaskError(
            f"{path}: statistics mask not found; give a mask image, a folder of numbered masks or a mask video"
        )
    if path.is_file() and path.suffix.lower() in MASK_IMAGE_SUFFIXES:
        return StillMask(path)
    return _resolve_masks(
        open_masks(path, first_frame),
        clip,
        total,
        frames,
        first_frame=first_frame,
        propagate=propagate,
        decoder=decoder,
        what="statistics mask",
        hint="give one per frame, a single image for all frames, or keyframes to propagate",
    )


def open_clip(
    clip: str | Path,
    masks: str | Path | None = None,
    frames: range | None = None,
    *,
    propagate: bool = True,
    decoder: str = "pyav",
    fps: Fraction | float | str | None = None,
    mask_from_alpha: bool = False,
    stats_mask: str | Path | None = None,
) -> ClipInput:
    """Probe ``clip``, open its masks and check that every frame in ``frames`` gets a mask.

    A folder that covers only some frames is a set of keyframes: the other frames' masks are propagated by
    optical flow (:class:`~vidharm.masks.PropagatedMasks`); the given masks are kept exactly. With
    ``mask_from_alpha`` the clip's own alpha channel is the mask (:class:`~vidharm.masks.ClipAlpha`). Mask files
    are numbered in source frame numbers: from 0 for a video, from the first file number for an image sequence
    (``matte.1001.png`` for ``plate.1001.exr``).

    Args:
        clip: the video or image-sequence pattern.
        masks: a folder of numbered mask images (all frames, or keyframes) or a mask video; None with
            ``mask_from_alpha``.
        frames: the source frame numbers to work on (step 1; ``range(1001, 1051)`` for ``--frames 1001-1050`` of a
            sequence that starts at 1001); None for the whole clip. ``ClipInput.frames`` holds them as positions.
        propagate: fill frames without a mask by propagation; False makes them an error.
        decoder: the decoder propagation reads frames with.
        fps: the frame rate of an image-sequence ``clip`` (``shot.%04d.exr``; default 24); None for a video.
        mask_from_alpha: the clip's alpha channel is the mask (then ``masks`` must be None).
        stats_mask: where the background may be measured (see :func:`open_stats_mask`), or None.

    Returns:
        The checked inputs.

    Raises:
        UsageError: both or neither of ``masks`` and ``mask_from_alpha``.
        InputError: the clip cannot be read, ``frames`` lies outside it, or ``mask_from_alpha`` and it has no alpha.
        MaskError: masks missing for some frames, numbered beyond the clip, or unreadable.

    Example:
        >>> try:
        ...     open_clip("clip.mov")
        ... except UsageError as exc:
        ...     print(str(exc)[-60:])
         video), or use its own alpha channel with --mask-from-alpha
    """
    if masks is not None and mask_from_alpha:
        raise UsageError(
            f"{clip}: give either a mask folder/video ({masks}) or --mask-from-alpha, not both; the clip's alpha is "
            f"its mask only without a mask folder"
        )
    if masks is None and not mask_from_alpha:
        raise UsageError(
            f"{clip}: give its masks (a folder of numbered images or a mask video), or use its own alpha channel "
            f"with --mask-from-alpha"
        )
    clip = Path(clip)
    info = probe_video(clip, fps=fps)
    total = count_frames(clip)
    first = info.first_frame
    source: MaskSource
    if masks is None:
        source = ClipAlpha(clip, info)
        positions = frame_positions(clip, frames, first, total)
    else:
        opened = open_masks(masks, first)
        positions = frame_positions(clip, frames, first, total)
        source = _resolve_masks(opened, clip, total, positions, first_frame=first, propagate=propagate, decoder=decoder)
    stats = (
        open_stats_mask(stats_mask, clip, total, positions, first_frame=first, propagate=propagate, decoder=decoder)
        if stats_mask is not None
        else None
    )
    return ClipInput(clip=clip, info=info, num_frames=total, masks=source, frames=positions, stats_mask=stats)


def open_layers(
    foreground: str | Path,
    background: str | Path,
    alpha: str | Path | None = None,
    frames: range | None = None,
    *,
    premultiplied: bool = False,
    stats_mask: str | Path | None = None,
    propagate: bool = True,
    decoder: str = "pyav",
    fps: Fraction | float | str | None = None,
) -> ClipInput:
    """Open a foreground layer over a background plate, instead of a flattened composite.

    The layers are matched by position (frame i of each), and must have the same size and frame count. The
    foreground's alpha is its own alpha channel, or ``alpha`` (a mask folder with a mask for every frame, or a
    mask video). Analysis sees the composite ``over(fg, bg)`` with the alpha as its mask; the output's
    timing, colour tags, audio and frame numbers come from the background (the plate). An ``alpha`` folder is
    numbered in the foreground's source frame numbers (it is the element's matte), a ``stats_mask`` folder in the
    background's.

    Args:
        foreground: the foreground element: a clip or image-sequence pattern.
        background: the background plate, same size and length.
        alpha: the foreground's alpha as masks, or None for its own alpha channel.
        frames: the background's source frame numbers to work on; None for all.
        premultiplied: the foreground's colour is premultiplied by its alpha (default: straight).
        stats_mask: where the background may be measured (see :func:`open_stats_mask`), or None.
        propagate: propagate a sparse ``stats_mask`` folder (``alpha`` must cover every frame).
        decoder: the decoder propagation reads frames with.
        fps: the frame rate of image-sequence layers (default 24); None for videos.

    Returns:
        The checked inputs, with ``clip`` the background and ``foreground`` set.

    Raises:
        InputError: unreadable layers, layers of different sizes or lengths, no alpha channel and no ``alpha``,
            ``frames`` outside the background.
        MaskError: ``alpha`` missing for some frames or numbered beyond the clip.
    """
    fg, bg = Path(foreground), Path(background)
    fg_info = probe_video(fg, fps=fps if is_sequence_source(fg) else None)
    bg_info = probe_video(bg, fps=fps if is_sequence_source(bg) else None)
    if (fg_info.width, fg_info.height) != (bg_info.width, bg_info.height):
        raise InputError(
            f"{fg}: the foreground is {fg_info.width}x{fg_info.height} but the background {bg.name} is "
            f"{bg_info.width}x{bg_info.height}; give layers of one size"
        )
    fg_total, total = count_frames(fg), count_frames(bg)
    if fg_total != total:
        raise InputError(
            f"{fg}: the foreground has {fg_total} frames but the background {bg.name} has {total}; give layers of "
            f"the same length (trim the longer one)"
        )
    if fg_info.fps != bg_info.fps:
        log.warning(
            "%s runs at %s fps and %s at %s fps; frames are matched by position and the output takes the "
            "background's timing",
            fg.name,
            fg_info.fps,
            bg.name,
            bg_info.fps,
        )
    positions = frame_positions(bg, frames, bg_info.first_frame, total)
    source: MaskSource
    if alpha is None:
        if not fg_info.has_alpha:
            raise InputError(
                f"{fg}: the foreground has no alpha channel (pixel format {fg_info.pix_fmt}); give its alpha with "
                f"--alpha (a mask folder or mask video), or a foreground with alpha (ProRes 4444, RGBA PNG)"
            )
        source = ClipAlpha(fg, fg_info)
    else:
        source = _resolve_masks(
            open_masks(alpha, fg_info.first_frame),
            fg,
            total,
            positions,
            first_frame=fg_info.first_frame,
            propagate=False,
            decoder=decoder,
            what="alpha",
            hint="the foreground's alpha needs a mask for every frame (fill keyframes with vidharm masks propagate)",
        )
    stats = (
        open_stats_mask(
            stats_mask, bg, total, positions, first_frame=bg_info.first_frame, propagate=propagate, decoder=decoder
        )
        if stats_mask is not None
        else None
    )
    layer = ForegroundLayer(fg, fg_info, premultiplied)
    return ClipInput(
        clip=bg, info=bg_info, num_frames=total, masks=source, frames=positions, stats_mask=stats, foreground=layer
    )


def _read(
    path: Path, info: VideoInfo, frames: range, decoder: str, alpha: bool = False, planes: bool = False
) -> Iterator[VideoFrame]:
    """Decode ``frames`` of a clip or image sequence (a sequence at the rate its info was probed with)."""
    sequence = is_sequence_source(path)
    options: dict[str, Any] = {"fps": info.fps} if sequence else {"decoder": decoder, "planes": planes}
    return read_frames(path, start=frames.start, stop=frames.stop, alpha=alpha, **options)


def match_depth(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bring two frames to one dtype: the deeper integer one, or float32 if either is float.

    8-bit values go to 16 bits exactly (``v * 257``); integers go to float as ``v / peak``.

    Args:
        a: (H, W, C) uint8, uint16 or float array.
        b: another, same shape.

    Returns:
        ``a`` and ``b`` (unchanged where their dtype already fits).

    Example:
        >>> x, y = match_depth(np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint16))
        >>> x.dtype.name, int(x[0, 0, 0])
        ('uint16', 65535)
    """
    if a.dtype == b.dtype:
        return a, b
    if a.dtype.kind == "f" or b.dtype.kind == "f":

        def to_float(x: np.ndarray) -> np.ndarray:
            if x.dtype.kind == "f":
                return x.astype(np.float32, copy=False)
            return x.astype(np.float32) / np.float32(np.iinfo(x.dtype).max)

        return to_float(a), to_float(b)

    def to16(x: np.ndarray) -> np.ndarray:
        return x if x.dtype == np.uint16 else x.astype(np.uint16) * np.uint16(257)

    return to16(a), to16(b)


def flatten_layers(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray, *, premultiplied: bool = False) -> np.ndarray:
    """The composite ``over(fg, bg)``: ``fg * alpha + bg * (1 - alpha)`` (``fg + bg * (1 - alpha)`` premultiplied).

    Integer frames are rounded to their levels (and clipped, since a premultiplied colour above its alpha is
    not valid); where ``alpha`` is 0 the result is ``bg`` exactly, and where it is 1, ``fg`` (straight).

    Args:
        fg: (H, W, 3) foreground colour, uint8/uint16 or float, straight or premultiplied.
        alpha: (H, W) float32 alpha in [0, 1].
        bg: (H, W, 3) background, same dtype as ``fg``.
        premultiplied: ``fg`` is premultiplied by ``alpha``.

    Returns:
        (H, W, 3) composite of ``fg``'s dtype.

    Raises:
        ShapeError: ``fg`` and ``bg`` differ in shape or dtype.

    Example:
        >>> fg, bg = np.full((1, 2, 3), 200, np.uint8), np.full((1, 2, 3), 100, np.uint8)
        >>> flatten_layers(fg, np.array([[0.0, 0.5]], np.float32), bg)[0, :, 0].tolist()
        [100, 150]
    """
    if fg.shape != bg.shape or fg.dtype != bg.dtype:
        raise ShapeError(
            f"layers: expected foreground and background of one shape and dtype, got {fg.shape} {fg.dtype} and "
            f"{bg.shape} {bg.dtype}; bring them to one depth with match_depth"
        )
    a = np.asarray(alpha, dtype=np.float32)[..., None]
    f = fg.astype(np.float32)
    out = (f if premultiplied else f * a) + bg.astype(np.float32) * (np.float32(1) - a)
    if fg.dtype.kind == "f":
        return out
    peak = np.float32(np.iinfo(fg.dtype).max)
    return np.clip(np.rint(out), 0, peak).astype(fg.dtype)


def iter_layers(
    inp: ClipInput, decoder: str = "pyav"
) -> Iterator[tuple[int, int | None, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (frame number, pts, foreground colour as stored, alpha, background) for ``inp.frames`` in order.

    The foreground and background are brought to one dtype (:func:`match_depth`); the alpha is float32 (H, W)
    in [0, 1]; frame numbers and pts are the background's.

    Raises:
        UsageError: ``inp`` has no foreground layer.
        MaskError: a frame without alpha, or an alpha source that ends early.
    """
    layer = inp.foreground
    if layer is None:
        raise UsageError(f"{inp.clip}: not a layered input; open foreground and background with open_layers")
    own = inp.masks if isinstance(inp.masks, ClipAlpha) and inp.masks.path == layer.path else None
    width, height = inp.info.width, inp.info.height
    fgs = _read(layer.path, layer.info, inp.frames, decoder, alpha=own is not None)
    bgs = _read(inp.clip, inp.info, inp.frames, decoder)
    masks = inp.masks.iter_masks(inp.frames, width, height) if own is None else None
    # Not strict: a layer that decodes fewer frames than it declares is reported by the caller's count check.
    for fgf, bgf in zip(fgs, bgs, strict=False):
        mask = own.mask_of(fgf, width, height) if own is not None else next(masks or iter(()), None)
        if mask is None:
            return
        fg, bg = match_depth(fgf.image, bgf.image)
        yield bgf.index, bgf.pts, fg, mask, bg


def iter_frames_and_masks(
    inp: ClipInput, decoder: str = "pyav"
) -> Iterator[tuple[int, int | None, np.ndarray, np.ndarray]]:
    """Yield (frame number, pts, RGB frame, mask) for ``inp.frames`` in order, streaming both sources.

    For layers the frame is the composite ``over(fg, bg)`` (:func:`flatten_layers`) and the mask the
    foreground's alpha; a clip that is its own mask is decoded once, with its alpha. The clip's alpha channel
    itself is not returned (see :func:`iter_frames_masks_alpha`).
    """
    for frame, pts, image, mask, _alpha, _planes in _iter_frames(inp, decoder, keep_alpha=False):
        yield frame, pts, image, mask


def iter_frames_masks_alpha(
    inp: ClipInput, decoder: str = "pyav", *, planes: bool = False
) -> Iterator[tuple[int, int | None, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """As :func:`iter_frames_and_masks`, plus each frame's own alpha channel, for the output to keep, and its planes.

    The sixth item is the decoded 8-bit 4:2:0 frame itself (:attr:`~vidharm.io.VideoFrame.planes`) with
    ``planes=True`` where the clip has one (a video decoded by PyAV, without layers), else None: a render can
    then work in the clip's own YUV.

    The alpha is the one decoded with the frame, at its levels: (H, W) of the frame's dtype and scale (255 or
    65535 opaque, 1.0 for float frames), straight as stored. It is None for a clip without alpha, for layers
    (their output is the composite over the background plate), and with the ``decord`` decoder, which gives
    RGB only (a warning says so). With ``--mask-from-alpha`` the mask is this same alpha normalised.

    Example:
        >>> import tempfile
        >>> from vidharm.io._synth import write_test_clip
        >>> clip = write_test_clip(Path(tempfile.mkdtemp()) / "fg.mov", num_frames=2, codec="qtrle", pix_fmt="argb")
        >>> inp = open_clip(clip, mask_from_alpha=True)
        >>> frame, pts, image, mask, alpha, planes = next(iter_frames_masks_alpha(inp, planes=True))
        >>> alpha.dtype == image.dtype, alpha.shape == mask.shape, planes is None
        (True, True, True)
    """
    yield from _iter_frames(inp, decoder, keep_alpha=True, planes=planes)


def _iter_frames(
    inp: ClipInput, decoder: str, *, keep_alpha: bool, planes: bool = False
) -> Iterator[tuple[int, int | None, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """The one decode loop of both iterators: the clip's alpha is decoded when it is the mask or is kept."""
    if inp.foreground is not None:
        premultiplied = inp.foreground.premultiplied
        for frame, pts, fg, alpha, bg in iter_layers(inp, decoder):
            yield frame, pts, flatten_layers(fg, alpha, bg, premultiplied=premultiplied), alpha, None, None
        return
    width, height = inp.info.width, inp.info.height
    own = inp.masks if isinstance(inp.masks, ClipAlpha) and inp.masks.path == inp.clip else None
    if keep_alpha and inp.info.has_alpha and own is None and decoder == "decord" and not is_sequence_source(inp.clip):
        log.warning("%s: the decord decoder gives no alpha, so the output is written opaque; use pyav", inp.clip)
        keep_alpha = False
    with_alpha = own is not None or (keep_alpha and inp.info.has_alpha)
    frames = _read(inp.clip, inp.info, inp.frames, decoder, alpha=with_alpha, planes=planes and not with_alpha)
    if own is not None:
        for vf in frames:
            yield vf.index, vf.pts, vf.image, own.mask_of(vf, width, height), vf.alpha if keep_alpha else None, None
        return
    masks = inp.masks.iter_masks(inp.frames, width, height)
    # Not strict: a clip that decodes fewer frames than it declares is reported by the caller's count check.
    for vf, mask in zip(frames, masks, strict=False):
        yield vf.index, vf.pts, vf.image, mask, vf.alpha if keep_alpha else None, vf.planes


def alpha_levels(alpha: np.ndarray, like: np.ndarray) -> np.ndarray:
    """An alpha in [0, 1] as a plane of ``like``'s dtype (255 or 65535 opaque for integers, 1.0 for floats).

    A mask read from an 8- or 16-bit alpha channel comes back to exactly its levels.

    Example:
        >>> alpha_levels(np.array([[0.0, 0.5, 1.0]], np.float32), np.zeros(1, np.uint8)).tolist()
        [[0, 128, 255]]
    """
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0, 1)
    if like.dtype.kind == "f":
        return a.astype(like.dtype, copy=False)
    return np.rint(a * np.float32(np.iinfo(like.dtype).max)).astype(like.dtype)


def iter_stats_masks(inp: ClipInput) -> Iterator[np.ndarray | None]:
    """The statistics mask of each frame of ``inp.frames`` in order, or None for each when there is none."""
    if inp.stats_mask is None:
        for _ in inp.frames:
            yield None
        return
    yield from inp.stats_mask.iter_masks(inp.frames, inp.info.width, inp.info.height)


def fingerprint_file(path: Path, block: int = 1 << 22) -> str:
    """sha256 over the file size and its first and last 4 MiB: identifies a clip without reading it all."""
    if is_sequence_source(path):
        return fingerprint_sequence(path)
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(block))
        if size > 2 * block:
            fh.seek(-block, 2)
            digest.update(fh.read(block))
    return digest.hexdigest()
