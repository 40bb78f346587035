"""Image sequences: patterns, and output as numbered frames, each file written atomically (PNG, TIFF, DPX, EXR).

A pattern names the file of every frame with one number field, printf style (``frame.%05d.png``, ``%d``) or
hash style (``frame.#####.png``, one digit per ``#``). Each file is written to a hidden temp name beside it and
renamed when complete, so a file that exists is a finished frame: a task killed half way and run again skips
those and writes the rest.

Numbering follows the source: a writer made ``like`` a clip numbers frame ``index`` i as file
``like.first_frame + i``, so a sequence that starts at 1001 is written from 1001 (a video starts at 0).

Formats and depths written: PNG and TIFF keep the frame's depth (uint8 -> 8-bit, uint16 -> 16-bit; TIFF also
takes float32/float16 frames), with alpha when the frame has one; JPEG takes 8-bit RGB only; DPX takes uint8
and uint16 (10 or 12 bits when the source frame is a DPX of that depth, else 16); EXR takes float frames as they
are (half or float: the source frame's channel types when the source is an EXR, else float16 -> half,
float32 -> float) and integer frames as float code values scaled to [0, 1]. When the source is an EXR sequence,
each EXR frame keeps its source frame's header attributes, display window and data window (see
:mod:`vidharm.io._oiio` for what is copied, and how a data window smaller than the display window is read and
written back). PNG, JPEG and integer TIFF go through OpenCV (fast PNG compression), EXR, DPX and float TIFF
through OpenImageIO.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidharm.errors import OutputError, ShapeError, UsageError
from vidharm.io._images import write_image
from vidharm.io._oiio import read_layout, read_spec, write_exr, write_oiio
from vidharm.io._types import VideoInfo

__all__ = ["SequencePattern", "SequenceWriter", "is_sequence_pattern", "parse_sequence_pattern"]

_log = logging.getLogger(__name__)

_PRINTF = re.compile(r"%(?:0(\d+))?d")
_HASHES = re.compile(r"#+")
_ANY_FIELD = re.compile(r"%\d*d|#")
#: Extensions an image sequence can have (read and written).
SEQUENCE_FORMATS = (".exr", ".png", ".tif", ".tiff", ".dpx", ".jpg", ".jpeg")


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


def is_sequence_source(path: str | os.PathLike[str]) -> bool:
    """Whether an input path is an image-sequence pattern rather than a file (a video named ``take#1.mp4`` is a file).

    Example:
        >>> is_sequence_source("shot.%04d.exr"), is_sequence_source("clip.mp4")
        (True, False)
    """
    return is_sequence_pattern(path) and not Path(path).exists()


class SequenceWriter:
    """Write frames as numbered image files, each atomically; finished frames are skipped unless ``force``.

    Frame ``index`` i (0-based, as the pipeline counts frames) is written as file number ``first_frame + i``,
    where ``first_frame`` is ``like.first_frame`` (0 without ``like``). When ``like`` is an image sequence whose
    files have the output's format, each output frame follows its source frame: EXR keeps the header attributes,
    windows and channel types; DPX keeps 10 or 12 bits. Formats and dtypes: see the module docstring. The
    folder is created.

    Args:
        pattern: e.g. ``out/frame.%05d.png`` (see :func:`parse_sequence_pattern`).
        force: rewrite frames whose file exists.
        like: the source clip's :class:`VideoInfo` (numbering, and the template files of an image sequence).

    Raises:
        UsageError: a bad pattern, or a pattern that names the source's own files.
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

    def __init__(self, pattern: str | os.PathLike[str], *, force: bool = False, like: VideoInfo | None = None) -> None:
        self.pattern = parse_sequence_pattern(pattern)
        self.force = force
        self.first_frame = like.first_frame if like is not None else 0
        self.source = parse_sequence_pattern(like.path) if like is not None and is_sequence_source(like.path) else None
        if self.source is not None and self.path(0).resolve() == self.source.path(self.first_frame).resolve():
            raise UsageError(f"{pattern}: the output would overwrite the source frames; choose another name or folder")
        try:
            self.pattern.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"{self.pattern.folder}: cannot create the sequence folder ({exc}); check the path"
            ) from exc

    def path(self, frame: int) -> Path:
        """The file of frame index ``frame``: file number ``first_frame + frame``."""
        return self.pattern.path(self.first_frame + frame)

    def template(self, frame: int) -> Path | None:
        """The source file that frame ``frame`` follows (an EXR or DPX source of the output's format), or None."""
        ext = self.pattern.extension
        if self.source is None or ext not in (".exr", ".dpx") or self.source.extension != ext:
            return None
        return self.source.path(self.first_frame + frame)

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

    def write(self, frame: int, image: np.ndarray, *, alpha: np.ndarray | None = None) -> Path:
        """Write one frame atomically.

        Args:
            frame: the frame's index (file number ``first_frame + frame``).
            image: (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey: uint8 [0, 255], uint16 [0, 65535], or
                float32/float16 (unbounded; EXR and TIFF only).
            alpha: (H, W) alpha of the same dtype and scale, written as a fourth channel (not JPEG); or None.

        Returns:
            The file written.

        Raises:
            UsageError: a dtype the format cannot hold (e.g. uint16 as JPEG, float as PNG).
            ShapeError: not (H, W), (H, W, 3) or (H, W, 4), an alpha of another shape, or (EXR following a
                source frame) a frame of another size than the source's display window.
            InputError: the source frame to follow cannot be read.
            OutputError: the file cannot be written.
        """
        path = self.path(frame)
        ext = self.pattern.extension
        template = self.template(frame)
        if ext == ".exr":
            write_exr(path, image, alpha, template=read_spec(template) if template is not None else None)
        elif ext == ".dpx":
            bits = read_layout(template).bit_depth if template is not None else None
            write_oiio(path, image, alpha, bits=bits)
        elif ext in (".tif", ".tiff") and image.dtype in (np.float16, np.float32):
            write_oiio(path, image, alpha)
        else:
            if alpha is not None:
                if alpha.shape != image.shape[:2] or alpha.dtype != image.dtype or image.ndim != 3:
                    raise ShapeError(
                        f"{path}: alpha must be {image.shape[:2]} {image.dtype} beside an (H, W, 3) image, "
                        f"got {alpha.shape} {alpha.dtype}"
                    )
                image = np.concatenate([image, alpha[:, :, None]], axis=2)
            write_image(path, image)
        return path
