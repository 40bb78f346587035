"""Masks for every frame from a folder that covers only some frames (keyframes), filled by propagation.

Keyframe files are numbered in the clip's source frame numbers (``matte.1001.png`` is the first frame of a
sequence that starts at 1001; see :mod:`vidharm.masks.sources`); propagation works on clip positions
(``number - first_frame``), and :func:`write_masks` names its files by source number again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from vidharm.errors import InputError
from vidharm.io import read_frames, write_image
from vidharm.masks.alpha import ClipAlpha
from vidharm.masks.propagate import DEFAULT_FLOW_PRESET, DEFAULT_FLOW_SIZE, propagate_masks
from vidharm.masks.sources import MaskFolder, MaskVideo, StillMask

__all__ = ["PropagatedMasks", "write_masks", "clip_frame_source"]

log = logging.getLogger(__name__)


class _Keyframes(Mapping[int, np.ndarray]):
    """Keyframe masks read on demand (a few kept), so many keyframes do not fill memory.

    Keys count from clip position ``offset``; key ``k`` is the folder's file ``first_frame + offset + k``.
    """

    def __init__(self, folder: MaskFolder, frames: list[int], offset: int, width: int, height: int) -> None:
        self._folder, self._frames, self._offset = folder, frames, offset
        self._size = (width, height)
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, key: int) -> np.ndarray:
        if key not in self._cache:
            if key + self._offset not in self._frames:
                raise KeyError(key)
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = self._folder.read(self._folder.first_frame + key + self._offset, *self._size)
        return self._cache[key]

    def __iter__(self) -> Iterator[int]:
        return (f - self._offset for f in self._frames)

    def __len__(self) -> int:
        return len(self._frames)


class _SequentialFrames:
    """``frames(start, stop)`` over one forward decode: propagation asks for consecutive ranges."""

    def __init__(self, clip: Path, start: int, stop: int, decoder: str) -> None:
        self._it = read_frames(clip, start=start, stop=stop, decoder=decoder)
        self._pos = 0

    def __call__(self, start: int, stop: int) -> Iterator[np.ndarray]:
        if start != self._pos:
            raise InputError(
                f"propagation asked for frame {start} after frame {self._pos - 1}; frames are decoded once"
            )
        for _ in range(start, stop):
            frame = next(self._it, None)
            if frame is None:
                return
            self._pos += 1
            yield _flow_image(frame.image)


def _flow_image(image: np.ndarray) -> np.ndarray:
    """A frame as the 8/16-bit RGB the flow reads: float frames (EXR, scene-linear) get a 1/2.2 power, clipped.

    The flow only needs the picture's structure; a display-like encoding keeps dark areas from being flattened.
    """
    if image.dtype.kind != "f":
        return image
    encoded = np.power(np.clip(np.nan_to_num(image, nan=0.0), 0.0, 1.0), 1.0 / 2.2)
    return np.rint(encoded * 65535.0).astype(np.uint16)


def clip_frame_source(clip: Path, decoder: str = "pyav") -> Callable[[int, int], Iterator[np.ndarray]]:
    """``frames(start, stop)`` that decodes the clip's positions afresh on each call (leave-one-out goes back)."""

    def frames(start: int, stop: int) -> Iterator[np.ndarray]:
        return (_flow_image(vf.image) for vf in read_frames(clip, start=start, stop=stop, decoder=decoder))

    return frames


class PropagatedMasks:
    """A mask for every frame: the folder's masks exactly where given, optical-flow propagation elsewhere.

    Only one keyframe segment is held at a time, at flow resolution (see :func:`propagate_masks`). A frame
    range is propagated from the keyframes that enclose it, so any chunking of a clip gives the same masks.
    The folder's file numbers are source frame numbers (``folder.first_frame`` is the clip's first);
    :meth:`iter_masks` takes clip positions, like every mask source.

    Args:
        folder: the keyframe masks (at least one), opened with the clip's ``first_frame``.
        clip: the video the masks belong to.
        num_frames: the clip's frame count.
        flow_size: long side of the frames the flow is computed on.
        preset: DIS preset name (``ultrafast``, ``fast``, ``medium``).
        decoder: ``pyav`` or ``decord``.
    """

    def __init__(
        self,
        folder: MaskFolder,
        clip: Path,
        num_frames: int,
        *,
        flow_size: int = DEFAULT_FLOW_SIZE,
        preset: str = DEFAULT_FLOW_PRESET,
        decoder: str = "pyav",
    ) -> None:
        self.folder, self.clip, self.num_frames = folder, Path(clip), num_frames
        self.path = folder.path
        self.flow_size, self.preset, self.decoder = flow_size, preset, decoder

    @property
    def keyframes(self) -> list[int]:
        """The keyframes' source frame numbers, ascending."""
        return self.folder.frame_numbers

    def iter_masks(self, frames: range, width: int, height: int) -> Iterator[np.ndarray]:
        """Masks for clip positions ``frames`` (a step-1 range) in order, float32 (height, width) in [0, 1]."""
        keys = self.folder.positions
        lo = max((k for k in keys if k <= frames.start), default=0)
        hi = min((k for k in keys if k >= frames.stop - 1), default=self.num_frames - 1)
        span = [k for k in keys if lo <= k <= hi]
        source = _SequentialFrames(self.clip, lo, hi + 1, self.decoder)
        masks = _Keyframes(self.folder, span, lo, width, height)
        propagated = propagate_masks(source, masks, hi - lo + 1, flow_size=self.flow_size, preset=self.preset)
        for n, mask in propagated:
            frame = n + lo
            if frame in frames:
                yield mask
            if frame >= frames.stop - 1:
                return  # leaving the loop drops the generator; nothing after this range is decoded

    def fingerprint(self) -> str:
        """The keyframes' fingerprint and the propagation settings."""
        return f"{self.folder.fingerprint()}:propagated:{self.flow_size}:{self.preset}"


def write_masks(
    source: MaskFolder | MaskVideo | PropagatedMasks | ClipAlpha | StillMask,
    frames: range,
    width: int,
    height: int,
    out_dir: Path,
    *,
    on_frame: Callable[[int], None] | None = None,
    first_frame: int = 0,
) -> Path:
    """Write a mask for every clip position of ``frames`` as 16-bit PNGs ``NNNNN.png``, named by source number.

    16 bits keep soft edges; an 8-bit mask comes back exactly (v * 257 / 65535 == v / 255). Each file is
    written atomically. Position ``i`` is written as ``first_frame + i`` (``01001.png`` for the first frame of a
    sequence that starts at 1001), so the folder reads back with ``MaskFolder(out_dir, first_frame)``.

    Args:
        source: the masks.
        frames: clip positions to write (step 1).
        width: frame width in pixels.
        height: frame height in pixels.
        out_dir: the folder to fill (created).
        on_frame: called with 1 after each file.
        first_frame: the clip's first source frame number.

    Returns:
        ``out_dir``.

    Raises:
        MaskError: a mask cannot be read.
        OutputError: a file cannot be written.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> still = Path(tempfile.mkdtemp()) / "matte.png"
        >>> write_image(still, np.full((2, 2), 255, np.uint8))
        >>> out = write_masks(StillMask(still), range(2), 2, 2, Path(tempfile.mkdtemp()), first_frame=1001)
        >>> sorted(p.name for p in out.iterdir())
        ['01001.png', '01002.png']
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for frame, mask in zip(frames, source.iter_masks(frames, width, height), strict=False):
        write_image(out_dir / f"{first_frame + frame:05d}.png", np.round(mask * 65535.0).astype(np.uint16))
        if on_frame is not None:
            on_frame(1)
    return out_dir
