"""Image-sequence output: numbered frames named by a pattern, each file written atomically (PNG, TIFF, EXR).

A pattern names the file of every frame with one number field, printf style (``frame.%05d.png``, ``%d``) or
hash style (``frame.#####.png``, one digit per ``#``); the number is the source's frame number. Each file is
written to a hidden temp name beside it and renamed when complete, so a file that exists is a finished frame:
a task killed half way and run again skips those and writes the rest.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from vidharm.errors import OutputError, UsageError
from vidharm.io._atomic import atomic_path
from vidharm.io._images import write_image

__all__ = ["SequencePattern", "SequenceWriter", "is_sequence_pattern", "parse_sequence_pattern"]

_log = logging.getLogger(__name__)

_PRINTF = re.compile(r"%(?:0(\d+))?d")
_HASHES = re.compile(r"#+")
_ANY_FIELD = re.compile(r"%\d*d|#")
#: Extensions an image sequence can have, and the integer depths each holds natively.
SEQUENCE_FORMATS = (".png", ".tif", ".tiff", ".exr", ".jpg", ".jpeg")


@dataclass(frozen=True)
class SequencePattern:
    """A parsed sequence pattern: ``folder / (prefix + zero-padded frame number + suffix)``.

    Example:
        >>> p = parse_sequence_pattern("out/frame.%05d.png")
        >>> p.path(12).as_posix(), p.width
        ('out/frame.00012.png', 5)
    """

    folder: Path
    prefix: str
    width: int
    suffix: str

    def path(self, frame: int) -> Path:
        """The file of source frame ``frame`` (at least ``width`` digits, more where the number needs them)."""
        return self.folder / f"{self.prefix}{frame:0{self.width}d}{self.suffix}"

    @property
    def extension(self) -> str:
        """The lower-case file extension, e.g. ``.png``."""
        return os.path.splitext("f" + self.suffix)[1].lower()


def is_sequence_pattern(path: str | os.PathLike[str]) -> bool:
    """Whether ``path``'s file name holds a frame-number field (``%05d``, ``%d`` or ``#``).

    Args:
        path: an output path as given on the command line.

    Returns:
        True for an image-sequence pattern, False for a plain file such as ``out.mp4``.

    Example:
        >>> is_sequence_pattern("out/frame.%05d.png"), is_sequence_pattern("f.####.exr"), is_sequence_pattern("a.mp4")
        (True, True, False)
    """
    return bool(_ANY_FIELD.search(Path(path).name))


def parse_sequence_pattern(path: str | os.PathLike[str]) -> SequencePattern:
    """Parse an image-sequence pattern.

    Args:
        path: e.g. ``out/frame.%05d.png`` (``%d`` is unpadded) or ``out/frame.####.exr`` (4 digits); exactly one
            number field, in the file name; extension ``.png``, ``.tif``/``.tiff``, ``.exr`` or ``.jpg``.

    Returns:
        The pattern.

    Raises:
        UsageError: no number field, more than one, a field in the folder part, or an unsupported extension.

    Example:
        >>> parse_sequence_pattern("shots/a/a.####.exr").path(7).name
        'a.0007.exr'
        >>> parse_sequence_pattern("a.%d.png").path(7).name
        'a.7.png'
    """
    p = Path(path)
    name = p.name
    if _ANY_FIELD.search(str(p.parent)):
        raise UsageError(
            f"{path}: the frame number field must be in the file name, not the folder; e.g. out/f.%05d.png"
        )
    fields = list(_PRINTF.finditer(name)) + list(_HASHES.finditer(name))
    if len(fields) != 1:
        raise UsageError(
            f"{path}: expected exactly one frame number field (%05d, %d or ####) in the file name, "
            f"found {len(fields)}; e.g. out/frame.%05d.png"
        )
    field = fields[0]
    if field.re is _PRINTF:
        width = int(field.group(1) or 1)
    else:
        width = len(field.group(0))
    prefix, suffix = name[: field.start()], name[field.end() :]
    if _ANY_FIELD.search(suffix) or "%" in prefix + suffix:
        raise UsageError(f"{path}: a stray % or # beside the frame number field; use one field such as %05d")
    ext = os.path.splitext("f" + suffix)[1].lower()
    if ext not in SEQUENCE_FORMATS:
        raise UsageError(
            f"{path}: unsupported image-sequence extension {ext or '(none)'!r}; "
            f"expected one of {list(SEQUENCE_FORMATS)}"
        )
    return SequencePattern(folder=p.parent, prefix=prefix, width=width, suffix=suffix)


@lru_cache(maxsize=1)
def _exr_backend() -> str | None:
    """``openexr`` (the OpenEXR package), ``opencv`` (an OpenCV built with EXR and enabled), or None."""
    try:
        import OpenEXR  # noqa: F401

        return "openexr"
    except ImportError:
        pass
    import cv2

    try:
        ok, _ = cv2.imencode(".exr", np.zeros((1, 1, 3), np.float32))
    except cv2.error:
        ok = False
    return "opencv" if ok else None


def _write_exr(path: Path, image: np.ndarray) -> None:
    # Code values scaled to [0, 1] as float32 (exact for 8- and 16-bit levels); no transfer function is applied.
    scale = float(np.iinfo(image.dtype).max)
    rgb = np.ascontiguousarray(image, dtype=np.float32) / np.float32(scale)
    backend = _exr_backend()
    with atomic_path(path) as temp:
        if backend == "openexr":
            import OpenEXR

            header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
            with OpenEXR.File(header, {"RGB": rgb}) as exr:
                exr.write(str(temp))
        else:
            import cv2

            ok, encoded = cv2.imencode(".exr", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            if not ok:
                raise OutputError(f"{path}: OpenCV could not encode the frame as EXR; write PNG instead")
            encoded.tofile(temp)


class SequenceWriter:
    """Write frames as numbered image files, each atomically; finished frames are skipped unless ``force``.

    PNG and TIFF keep the frame's native depth (8-bit frames give 8-bit files, 16-bit frames 16-bit files);
    EXR holds float32 RGB, the code values scaled to [0, 1] (needs the OpenEXR package, or an OpenCV built
    with EXR and ``OPENCV_IO_ENABLE_OPENEXR=1``); JPEG takes 8-bit frames only. The folder is created.

    Args:
        pattern: e.g. ``out/frame.%05d.png`` (see :func:`parse_sequence_pattern`).
        force: rewrite frames whose file exists.

    Raises:
        UsageError: a bad pattern, or EXR asked for with no library that writes it.
        OutputError: the folder cannot be created.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "seq" / "f.%03d.png"
        >>> writer = SequenceWriter(out)
        >>> writer.write(12, np.zeros((2, 2, 3), np.uint8)).name
        'f.012.png'
        >>> writer.pending(range(11, 14))
        [11, 13]
    """

    def __init__(self, pattern: str | os.PathLike[str], *, force: bool = False) -> None:
        self.pattern = parse_sequence_pattern(pattern)
        self.force = force
        if self.pattern.extension == ".exr" and _exr_backend() is None:
            raise UsageError(
                f"{pattern}: EXR output needs the OpenEXR package (pip install OpenEXR) or an OpenCV built with "
                "OpenEXR and OPENCV_IO_ENABLE_OPENEXR=1; neither is available, so write .png (16-bit) instead"
            )
        try:
            self.pattern.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{self.pattern.folder}: cannot create the sequence folder ({exc}); check the path"
            ) from exc

    def path(self, frame: int) -> Path:
        """The file of source frame ``frame``."""
        return self.pattern.path(frame)

    def pending(self, frames: Iterable[int]) -> list[int]:
        """The frames of ``frames`` still to write: those without a file, or all of them with ``force``."""
        return [f for f in frames if self.force or not self.path(f).is_file()]

    def remove_stale_temps(self, frames: Iterable[int]) -> list[Path]:
        """Delete temp files that a killed run left for ``frames`` (readers never see them: hidden names).

        Call it only from the one task that owns ``frames``; another process writing the same frames at the
        same time would lose its temp file.

        Returns:
            The files removed.
        """
        stems = {self.path(f).stem for f in frames}
        suffix = self.path(0).suffix
        stale = re.compile(r"\.(.+)\.tmp-[0-9a-f]{8}" + re.escape(suffix))
        removed = []
        try:
            entries = list(os.scandir(self.pattern.folder))
        except OSError:
            return []
        for entry in entries:
            match = stale.fullmatch(entry.name)
            if match and match.group(1) in stems:
                try:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
                except OSError:
                    pass
        if removed:
            _log.info("removed %d temp files left by an interrupted run in %s", len(removed), self.pattern.folder)
        return removed

    def write(self, frame: int, image: np.ndarray) -> Path:
        """Write one frame atomically.

        Args:
            frame: the source frame number.
            image: (H, W, 3) RGB uint8 in [0, 255] or uint16 in [0, 65535].

        Returns:
            The file written.

        Raises:
            UsageError: a dtype the format cannot hold (e.g. uint16 as JPEG) or not an integer image.
            ShapeError: not (H, W), (H, W, 3) or (H, W, 4).
            OutputError: the file cannot be written.
        """
        path = self.path(frame)
        if self.pattern.extension == ".exr":
            if image.dtype not in (np.uint8, np.uint16):
                raise UsageError(f"{path}: expected a uint8 or uint16 frame, got {image.dtype}")
            _write_exr(path, image)
        else:
            write_image(path, image)
        return path
