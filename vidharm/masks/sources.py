"""Per-frame foreground masks from a folder of images, a single image or a mask video.

A mask is float32 (H, W) alpha in [0, 1]: 8-bit files are divided by 255, 16-bit files by 65535. An RGBA
file gives its alpha channel; an RGB file its luma (mattes are grey, where that is the grey value). Masks of another
size but the same aspect are resized to the frame.

Numbering: a folder's files are numbered by the last run of digits in the name (``00012.png`` and
``matte.0012.png`` are frame 12), and these numbers are the clip's SOURCE frame numbers: for a video, frames count
from 0; for an image sequence, from its first file (``plate.1001.exr`` is frame 1001, and its matte is
``matte.1001.png``). ``iter_masks(frames, ...)`` of every mask source takes clip *positions* (0 = the clip's first
frame, as :func:`~vidharm.io.read_frames` counts), so a folder opened for a clip knows that clip's first frame
(``first_frame``) and reads file ``first_frame + i`` for position ``i``. A mask video has no numbering: its frame
``i`` is the mask of the clip's position ``i``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from vidharm.errors import InputError, MaskError, UsageError
from vidharm.io import VideoInfo, probe_video, read_frames, read_image

__all__ = [
    "MASK_IMAGE_SUFFIXES",
    "MaskFolder",
    "MaskVideo",
    "StillMask",
    "open_masks",
    "to_alpha",
    "fit_mask",
]

log = logging.getLogger(__name__)

MASK_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr")
_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mxf")
_DIGITS = re.compile(r"(\d+)(?!.*\d)")


def to_alpha(image: np.ndarray, name: str = "mask") -> np.ndarray:
    """Convert a decoded mask image to float32 alpha in [0, 1].

    Args:
        image: (H, W), (H, W, 3) or (H, W, 4) array, uint8, uint16 or float in [0, 1].
        name: the file, for messages.

    Returns:
        (H, W) float32 in [0, 1].

    Raises:
        MaskError: an unsupported channel count or dtype.

    Example:
        >>> to_alpha(np.array([[0, 255], [51, 255]], np.uint8)).tolist()
        [[0.0, 1.0], [0.20000000298023224, 1.0]]
    """
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., 3]
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    elif not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise MaskError(f"{name}: a mask must be a grey, RGB or RGBA image, got shape {image.shape}")
    if image.ndim == 3:
        # Mattes are grey (R = G = B), for which luma is exact; this integer conversion is cheap at 1080p.
        image = cv2.cvtColor(image if image.dtype != np.float64 else image.astype(np.float32), cv2.COLOR_RGB2GRAY)
    if image.dtype in (np.uint8, np.uint16):
        # Divided in place: the same float32 quotients, without a second full-frame (8 MB at 1080p) array.
        alpha = image.astype(np.float32)
        alpha /= np.float32(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating):
        alpha = np.clip(image.astype(np.float32), 0.0, 1.0)
    else:
        raise MaskError(f"{name}: unsupported mask pixel type {image.dtype}; use 8- or 16-bit images")
    return alpha


def fit_mask(mask: np.ndarray, width: int, height: int, name: str = "mask") -> np.ndarray:
    """Resize ``mask`` to (height, width) if it has the same aspect; otherwise refuse.

    Same aspect means the mask's height, scaled to the frame's width, is within one pixel of the
    frame's height (rounding of either size).

    Args:
        mask: (h, w) float32 alpha in [0, 1].
        width: frame width in pixels.
        height: frame height in pixels.
        name: the file, for messages.

    Returns:
        (height, width) float32 alpha in [0, 1].

    Raises:
        MaskError: the mask's aspect differs from the frame's.

    Example:
        >>> fit_mask(np.ones((24, 32), np.float32), 64, 48).shape
        (48, 64)
    """
    h, w = mask.shape
    if (h, w) == (height, width):
        return mask
    if abs(h * width / w - height) > 1.0 + height / w and abs(w * height / h - width) > 1.0 + width / h:
        raise MaskError(
            f"{name}: mask is {w}x{h} but frames are {width}x{height} (another aspect); "
            f"give masks of the frame size or the same aspect"
        )
    interp = cv2.INTER_AREA if w > width else cv2.INTER_LINEAR
    return np.clip(cv2.resize(mask, (width, height), interpolation=interp), 0.0, 1.0).astype(np.float32)


class MaskFolder:
    """A folder of numbered mask images; each file's number is its source frame number.

    Args:
        path: the folder.
        first_frame: the source number of the clip's first frame (an image sequence's first file number, 0 for a
            video), >= 0: :meth:`iter_masks` reads file ``first_frame + i`` for clip position ``i``.

    Raises:
        MaskError: missing folder, no mask images, a file with no frame number, two files for one frame,
            or a file that is not an image.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> folder = Path(tempfile.mkdtemp())
        >>> for n in (1001, 1002):
        ...     write_image(folder / f"matte.{n}.png", np.full((2, 2), 255 * (n - 1001), np.uint8))
        >>> masks = MaskFolder(folder, first_frame=1001)
        >>> masks.frame_numbers, [float(m[0, 0]) for m in masks.iter_masks(range(2), 2, 2)]
        ([1001, 1002], [0.0, 1.0])
    """

    def __init__(self, path: str | Path, first_frame: int = 0) -> None:
        self.path = Path(path)
        self.first_frame = _check_first_frame(first_frame)
        if not self.path.exists():
            raise MaskError(f"{self.path}: mask folder not found; check the path")
        if not self.path.is_dir():
            raise MaskError(f"{self.path}: expected a folder of mask images")
        files: dict[int, Path] = {}
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith(".") or entry.is_dir():
                continue
            if entry.suffix.lower() not in MASK_IMAGE_SUFFIXES:
                raise MaskError(
                    f"{entry}: not a mask image (expected {', '.join(MASK_IMAGE_SUFFIXES)}); "
                    f"remove it from the mask folder"
                )
            match = _DIGITS.search(entry.stem)
            if match is None:
                raise MaskError(f"{entry}: no frame number in the file name; name masks like 00012.png")
            frame = int(match.group(1))
            if frame in files:
                raise MaskError(f"{entry}: frame {frame} already has a mask ({files[frame].name}); keep one per frame")
            files[frame] = entry
        if not files:
            raise MaskError(f"{self.path}: no mask images in the folder; add one numbered image per frame")
        self.files = dict(sorted(files.items()))

    @classmethod
    def single(cls, path: Path) -> MaskFolder:
        """One mask image standing for frame 0 (a still, as for ``vidharm image``)."""
        folder = cls.__new__(cls)
        folder.path, folder.files, folder.first_frame = path.parent, {0: path}, 0
        return folder

    @property
    def frame_numbers(self) -> list[int]:
        """The source frame numbers that have a mask file, ascending."""
        return list(self.files)

    @property
    def positions(self) -> list[int]:
        """The clip positions that have a mask file (``frame_numbers`` minus ``first_frame``), ascending."""
        return [n - self.first_frame for n in self.files]

    def read(self, frame: int, width: int, height: int) -> np.ndarray:
        """The mask of source frame number ``frame`` fitted to (height, width), float32 in [0, 1].

        Raises:
            MaskError: no file for the frame, or the file cannot be read or has another aspect.
        """
        path = self.files.get(frame)
        if path is None:
            raise MaskError(f"{self.path}: no mask for frame {frame}; add {frame:05d}.png")
        try:
            image = read_image(path, keep_alpha=True)
        except InputError as exc:
            raise MaskError(str(exc)) from None
        return fit_mask(to_alpha(image, str(path)), width, height, str(path))

    def iter_masks(self, frames: range, width: int, height: int) -> Iterator[np.ndarray]:
        """Masks for clip positions ``frames`` in order (file ``first_frame + i`` for position ``i``)."""
        for frame in frames:
            yield self.read(self.first_frame + frame, width, height)

    def fingerprint(self) -> str:
        """sha256 over the file names and contents, identifying this set of masks (whatever ``first_frame``)."""
        digest = hashlib.sha256()
        for frame, path in self.files.items():
            digest.update(f"{frame}:{path.name}:".encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()


class MaskVideo:
    """A mask video: frame n of the video is the mask of the clip's n-th frame (position n, counting from 0).

    Args:
        path: the mask video.

    Raises:
        InputError: the file is not a readable video.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.info: VideoInfo = probe_video(self.path)

    def iter_masks(self, frames: range, width: int, height: int) -> Iterator[np.ndarray]:
        """Masks for ``frames`` (a step-1 range) in order.

        Raises:
            MaskError: the mask video ends before the last requested frame.
        """
        expected = frames.start
        for vf in read_frames(self.path, start=frames.start, stop=frames.stop):
            yield fit_mask(to_alpha(vf.image, str(self.path)), width, height, str(self.path))
            expected += 1
        if expected < frames.stop:
            raise MaskError(
                f"{self.path}: the mask video has {expected} frames but the clip needs {frames.stop}; "
                f"give a mask video as long as the clip"
            )

    def fingerprint(self) -> str:
        """sha256 of the mask video's bytes."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()


class StillMask:
    """One mask image that stands for every frame: a static matte (letterbox bars, a fixed garbage matte).

    Args:
        path: the mask image.

    Raises:
        MaskError: the file is missing or not a mask image.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> path = Path(tempfile.mkdtemp()) / "bars.png"
        >>> write_image(path, np.full((3, 4), 255, np.uint8))
        >>> [m.shape for m in StillMask(path).iter_masks(range(5, 7), 8, 6)]
        [(6, 8), (6, 8)]
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MaskError(f"{self.path}: mask image not found; check the path")
        if self.path.suffix.lower() not in MASK_IMAGE_SUFFIXES:
            raise MaskError(f"{self.path}: not a mask image (expected {', '.join(MASK_IMAGE_SUFFIXES)})")

    def read(self, width: int, height: int) -> np.ndarray:
        """The mask fitted to (height, width), float32 in [0, 1], read-only.

        Raises:
            MaskError: unreadable, or another aspect than the frames.
        """
        try:
            image = read_image(self.path, keep_alpha=True)
        except InputError as exc:
            raise MaskError(str(exc)) from None
        mask = fit_mask(to_alpha(image, str(self.path)), width, height, str(self.path))
        mask.flags.writeable = False
        return mask

    def iter_masks(self, frames: range, width: int, height: int) -> Iterator[np.ndarray]:
        """The same mask for every frame of ``frames`` (read once)."""
        mask = self.read(width, height)
        for _ in frames:
            yield mask

    def fingerprint(self) -> str:
        """sha256 of the image file's bytes, marked as held for every frame."""
        return "still:" + hashlib.sha256(self.path.read_bytes()).hexdigest()


def _check_first_frame(first_frame: int) -> int:
    if isinstance(first_frame, bool) or not isinstance(first_frame, int) or first_frame < 0:
        raise UsageError(
            f"first_frame: expected the clip's first source frame number (an int >= 0), got {first_frame!r}"
        )
    return first_frame


def open_masks(path: str | Path, first_frame: int = 0) -> MaskFolder | MaskVideo:
    """Open a mask source: a folder of numbered images, a mask video, or a single image as frame 0.

    Args:
        path: folder, video file or image file.
        first_frame: a folder's clip's first source frame number (see :class:`MaskFolder`); a mask video and a
            single image ignore it.

    Returns:
        A :class:`MaskFolder` (a single image is a folder of one, frame 0) or :class:`MaskVideo`.

    Raises:
        MaskError: the path is missing or not a usable mask source.

    Example:
        >>> open_masks("/nonexistent/masks")
        Traceback (most recent call last):
        ...
        vidharm.errors.MaskError: /nonexistent/masks: mask folder not found; check the path
    """
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in _VIDEO_SUFFIXES:
            return MaskVideo(path)
        if suffix in MASK_IMAGE_SUFFIXES:
            return MaskFolder.single(path)
        raise MaskError(f"{path}: not a mask folder, mask video or mask image")
    return MaskFolder(path, first_frame)
