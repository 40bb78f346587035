"""The inputs of a run: a clip and its masks, opened and checked against each other."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidharm.errors import MaskError
from vidharm.io import VideoInfo, count_frames, probe_video, read_frames
from vidharm.masks import MaskFolder, MaskVideo, PropagatedMasks, open_masks

__all__ = ["ClipInput", "open_clip", "iter_frames_and_masks", "fingerprint_file", "describe_ranges"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipInput:
    """A clip, its masks and the frames to work on, checked against each other."""

    clip: Path
    info: VideoInfo
    num_frames: int
    masks: MaskFolder | MaskVideo | PropagatedMasks
    frames: range


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


def open_clip(
    clip: str | Path, masks: str | Path, frames: range | None = None, *, propagate: bool = True, decoder: str = "pyav"
) -> ClipInput:
    """Probe ``clip``, open ``masks`` and check that every frame in ``frames`` gets a mask.

    A folder that covers only some frames is a set of keyframes: the other frames' masks are propagated by
    optical flow (:class:`~vidharm.masks.PropagatedMasks`); the given masks are kept exactly.

    Args:
        clip: the video.
        masks: a folder of numbered mask images (all frames, or keyframes) or a mask video.
        frames: the source frame numbers to work on (step 1); None for the whole clip.
        propagate: fill frames without a mask by propagation; False makes them an error.
        decoder: the decoder propagation reads frames with.

    Returns:
        The checked inputs.

    Raises:
        InputError: the clip cannot be read or ``frames`` lies outside it.
        MaskError: masks missing for some frames, numbered beyond the clip, or unreadable.
    """
    clip = Path(clip)
    info = probe_video(clip)
    total = count_frames(clip)
    source = open_masks(masks)
    if frames is None:
        frames = range(total)
    if frames.start < 0 or frames.stop > total or len(frames) == 0:
        raise MaskError(f"{clip}: frames {frames.start}-{frames.stop - 1} are outside the clip (frames 0-{total - 1})")
    if isinstance(source, MaskFolder):
        beyond = [n for n in source.frame_numbers if n >= total]
        if beyond:
            raise MaskError(
                f"{source.files[beyond[0]]}: mask for frame {beyond[0]} but {clip.name} has {total} frames "
                f"(0-{total - 1}); check the numbering of the mask files"
            )
        missing = sorted(set(frames) - set(source.frame_numbers))
        if missing and not propagate:
            raise MaskError(
                f"{source.path}: no masks for {len(missing)} of {len(frames)} frames ({describe_ranges(missing)}); "
                f"give one mask per frame, numbered as the clip's frames from 0"
            )
        if missing:
            log.info("%s: propagating %d keyframe masks to %d frames", source.path, len(source.files), len(missing))
            return ClipInput(
                clip=clip,
                info=info,
                num_frames=total,
                masks=PropagatedMasks(source, clip, total, decoder=decoder),
                frames=frames,
            )
    return ClipInput(clip=clip, info=info, num_frames=total, masks=source, frames=frames)


def iter_frames_and_masks(
    inp: ClipInput, decoder: str = "pyav"
) -> Iterator[tuple[int, int | None, np.ndarray, np.ndarray]]:
    """Yield (frame number, pts, RGB frame, mask) for ``inp.frames`` in order, streaming both sources."""
    frames = read_frames(inp.clip, start=inp.frames.start, stop=inp.frames.stop, decoder=decoder)
    masks = inp.masks.iter_masks(inp.frames, inp.info.width, inp.info.height)
    # Not strict: a clip that decodes fewer frames than it declares is reported by the caller's count check.
    for vf, mask in zip(frames, masks, strict=False):
        yield vf.index, vf.pts, vf.image, mask


def fingerprint_file(path: Path, block: int = 1 << 22) -> str:
    """sha256 over the file size and its first and last 4 MiB: identifies a clip without reading it all."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    digest.update(str(size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(block))
        if size > 2 * block:
            fh.seek(-block, 2)
            digest.update(fh.read(block))
    return digest.hexdigest()
