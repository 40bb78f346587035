"""Image sequences as input: ``shot.%04d.exr`` or ``shot.####.exr`` read like a clip, through OpenImageIO.

``probe_video``, ``read_frames`` and ``count_frames`` hand a sequence pattern to this module, so a sequence
works wherever a clip does.

- Formats: EXR (half, float), PNG (8/16-bit), TIFF (8/16-bit, half, float), DPX (8/10/12/16-bit), JPEG.
- Frame range: the numbers of the files present, first to last; ``VideoInfo.first_frame`` is the first file's
  number and frame ``index`` i is file ``first_frame + i``. A file counts when its number has the pattern's
  padding (``%04d``: ``0007``, ``1001``, ``12345``; ``%d``: unpadded). A gap is an error naming the missing
  numbers.
- Frame rate: a sequence has none; ``fps`` gives it (default :data:`DEFAULT_SEQUENCE_FPS`, 24); frame i has
  ``pts = i`` in ``time_base = 1 / fps``.
- Pixels: uint8 for 8-bit files, uint16 for 10/12/16-bit files (full scale, OpenImageIO's bit replication:
  10-bit v -> ``(v << 6) | (v >> 4)``), float32 for half and float files (unbounded); alpha of the same dtype
  when asked for and present. Only R, G, B and A are read; grey files become RGB. Each frame covers the display
  window, 0 outside the data window (see :mod:`vidharm.io._oiio`).
- Checks: probing opens every file's header (no pixels): a missing range, gaps, a damaged or unreadable header,
  and a frame whose size, channels or sample types differ from the first are errors before anything is
  written. Damaged pixel data is found when that frame is read, and named.
- Colour: no tags (sequences carry none vidharm reads): primaries and transfer None; stored RGB is full range
  with no matrix, so ``matrix="gbr"``, ``range="pc"``, as for an RGB-coded video.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from vidharm.errors import InputError, UsageError
from vidharm.io._color import ColorTags
from vidharm.io._oiio import ImageLayout, read_layout, read_pixels, read_spec
from vidharm.io._sequence import SequencePattern, is_sequence_source, parse_sequence_pattern
from vidharm.io._types import VideoFrame, VideoInfo

__all__ = [
    "DEFAULT_SEQUENCE_FPS",
    "SequenceFiles",
    "check_fps",
    "count_sequence",
    "find_sequence",
    "fingerprint_sequence",
    "is_sequence_input",
    "probe_sequence",
    "read_sequence",
]

_log = logging.getLogger(__name__)

#: The frame rate of an image sequence when none is given (sequences carry none; film and VFX work at 24).
DEFAULT_SEQUENCE_FPS = Fraction(24)
_NTSC = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 120))


def check_fps(fps: Fraction | int | float | str) -> Fraction:
    """A frame rate as an exact Fraction; decimal NTSC rates (23.976, 29.97, 59.94) become n*1000/1001.

    Args:
        fps: a positive rate: ``24``, ``23.976``, ``"24000/1001"``, ``Fraction(25)``.

    Returns:
        The rate.

    Raises:
        UsageError: not a positive finite number.

    Example:
        >>> check_fps("24000/1001"), check_fps(23.976), check_fps(25)
        (Fraction(24000, 1001), Fraction(24000, 1001), Fraction(25, 1))
    """
    try:
        value = Fraction(fps) if not isinstance(fps, float) else Fraction(fps).limit_denominator(1001000)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):
        value = None
    if value is None or isinstance(fps, bool) or value <= 0 or not math.isfinite(float(value)):
        raise UsageError(f"fps: expected a positive frame rate such as 24, 25 or 24000/1001, got {fps!r}")
    if value.denominator != 1:
        for rate in _NTSC:
            if abs(float(value) - float(rate)) < 0.0015:
                return rate
    return value


def is_sequence_input(path: str | os.PathLike[str], fps: Fraction | int | float | str | None = None) -> bool:
    """Whether ``path`` is an image-sequence pattern to read (and not a file); checks that ``fps`` fits.

    Args:
        path: a clip or a pattern such as ``shot.%04d.exr``.
        fps: the frame rate given for it, or None.

    Returns:
        True for a sequence pattern.

    Raises:
        UsageError: ``fps`` given for a video, which has its own frame rate.

    Example:
        >>> is_sequence_input("shot.####.exr", fps=25), is_sequence_input("clip.mp4")
        (True, False)
    """
    if is_sequence_source(path):
        return True
    if fps is not None:
        raise UsageError(
            f"{path}: fps is for image sequences (shot.%04d.exr); a video has its own frame rate, drop --fps"
        )
    return False


def _ranges(numbers: list[int]) -> str:
    """``[2, 3, 4, 9]`` as ``"2-4, 9"`` (at most six runs named)."""
    runs: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    more = f" and {len(runs) - 6} more ranges" if len(runs) > 6 else ""
    return ", ".join(runs[:6]) + more


@dataclass(frozen=True)
class SequenceFiles:
    """The files of an image sequence on disk.

    Attributes:
        pattern: the parsed pattern.
        first: the first file number.
        count: the number of files (they are ``first`` .. ``first + count - 1``, without gaps).
    """

    pattern: SequencePattern
    first: int
    count: int

    def path(self, index: int) -> Path:
        """The file of frame ``index`` (0-based)."""
        return self.pattern.path(self.first + index)


def _matching_numbers(pattern: SequencePattern) -> tuple[list[int], list[str]]:
    """Numbers of the files the pattern names, and names that match but for the padding."""
    rx = re.compile(re.escape(pattern.prefix) + r"(\d+)" + re.escape(pattern.suffix))
    numbers, other = [], []
    folder = pattern.folder if str(pattern.folder) else Path(".")
    for entry in os.scandir(folder):
        match = rx.fullmatch(entry.name)
        if match is None:
            continue
        digits = match.group(1)
        canonical = len(digits) == pattern.width or (len(digits) > pattern.width and digits[0] != "0")
        if canonical and entry.is_file():
            numbers.append(int(digits))
        else:
            other.append(entry.name)
    return sorted(numbers), sorted(other)


def find_sequence(pattern: str | os.PathLike[str]) -> SequenceFiles:
    """Find the files of an image sequence and check that their numbers have no gaps (no file is opened).

    Args:
        pattern: ``shot.%04d.exr``, ``shot.####.exr``, ``frames/%d.png`` ...

    Returns:
        The sequence's first number and count.

    Raises:
        UsageError: a bad pattern (see :func:`~vidharm.io.parse_sequence_pattern`).
        InputError: the folder is missing, no file matches, or numbers are missing between the first and last.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for n in (1001, 1002, 1003):
        ...     _ = (folder / f"a.{n:04d}.png").write_bytes(b"")
        >>> found = find_sequence(folder / "a.####.png")
        >>> found.first, found.count, found.path(2).name
        (1001, 3, 'a.1003.png')
    """
    parsed = parse_sequence_pattern(pattern)
    folder = parsed.folder if str(parsed.folder) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{pattern}: the folder {folder} does not exist; check the path of the image sequence")
    numbers, other = _matching_numbers(parsed)
    if not numbers:
        hint = f"; {other[0]} has another padding: change the number of # or the %0Nd" if other else ""
        raise InputError(
            f"{pattern}: no file matches (looked for {parsed.prefix}<{parsed.width} digits>{parsed.suffix} "
            f"in {folder}){hint}"
        )
    first, last = numbers[0], numbers[-1]
    if last - first + 1 != len(numbers):
        present = set(numbers)
        missing = [n for n in range(first, last + 1) if n not in present]
        raise InputError(
            f"{pattern}: frames {_ranges(missing)} are missing between {first} and {last}; render or copy them "
            "(or give the frames before the gap as their own sequence)"
        )
    return SequenceFiles(parsed, first, len(numbers))


def count_sequence(pattern: str | os.PathLike[str]) -> int:
    """The number of frames of an image sequence (its files; none is opened).

    Raises:
        InputError: as :func:`find_sequence`.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for n in (7, 8):
        ...     _ = (folder / f"f{n}.exr").write_bytes(b"")
        >>> count_sequence(folder / "f%d.exr")
        2
    """
    return find_sequence(pattern).count


def _check_layouts(found: SequenceFiles) -> ImageLayout:
    """Open every file's header; the first file's layout, or InputError naming the first file that differs."""
    first = read_layout(found.path(0))
    for i in range(1, found.count):
        path = found.path(i)
        layout = read_layout(path)
        diff = first.difference(layout)
        if diff is not None:
            raise InputError(
                f"{path}: {diff} ({found.path(0).name}); every frame of a sequence must have the same size, "
                "channels and sample type: re-render that frame"
            )
    return first


def _timecode(spec: object) -> str | None:
    """``HH:MM:SS:FF`` from an EXR/DPX ``smpte:TimeCode`` (SMPTE 12M BCD, drop-frame flag in bit 6)."""
    value = spec.getattribute("smpte:TimeCode")  # type: ignore[attr-defined]
    if not value:
        return None
    word = int(value[0]) if isinstance(value, tuple | list) else int(value)

    def bcd(shift: int, mask: int) -> int:
        v = (word >> shift) & mask
        return (v >> 4) * 10 + (v & 0xF)

    hours, minutes, seconds, frames = bcd(24, 0x3F), bcd(16, 0x7F), bcd(8, 0x7F), bcd(0, 0x3F)
    drop = bool(word & 0x40)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{';' if drop else ':'}{frames:02d}"


def probe_sequence(pattern: str | os.PathLike[str], *, fps: Fraction | int | float | str | None = None) -> VideoInfo:
    """Describe an image sequence, checking every file's header (fast: no pixels are read).

    Args:
        pattern: ``shot.%04d.exr``, ``shot.####.exr``, ``plate.%05d.dpx`` ...
        fps: the sequence's frame rate; None for :data:`DEFAULT_SEQUENCE_FPS` (24).

    Returns:
        A VideoInfo: display-window size, ``fps``, ``time_base = 1 / fps``, ``num_frames``, ``first_frame`` (the
        first file number), ``codec`` the format (``openexr``, ``png``, ``tiff``, ``dpx``), ``pix_fmt`` the frames'
        layout as an FFmpeg name (``rgbf16le``, ``rgba64le`` ...), ``bit_depth`` (8, 10, 12, 16 (also half), 32),
        ``has_alpha``, no colour tags, no audio, no rotation; ``timecode`` and ``sample_aspect_ratio`` from the
        first file's header where it states them.

    Raises:
        UsageError: a bad pattern or ``fps``.
        InputError: no files, gaps, an unreadable file, or a file whose size, channels or types differ.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from vidharm.io._oiio import write_exr
        >>> folder = Path(tempfile.mkdtemp())
        >>> for n in (1001, 1002):
        ...     write_exr(folder / f"shot.{n}.exr", np.zeros((2, 4, 3), np.float16))
        >>> info = probe_sequence(folder / "shot.%04d.exr")
        >>> info.first_frame, info.num_frames, info.width, info.height, info.fps, info.bit_depth, info.pix_fmt
        (1001, 2, 4, 2, Fraction(24, 1), 16, 'rgbf16le')
    """
    rate = DEFAULT_SEQUENCE_FPS if fps is None else check_fps(fps)
    found = find_sequence(pattern)
    layout = _check_layouts(found)
    spec = read_spec(found.path(0))
    x, y, w, h = layout.data
    dx, dy, dw, dh = layout.display
    if x < dx or y < dy or x + w > dx + dw or y + h > dy + dh:
        _log.warning(
            "%s: the data window %s reaches outside the display window %s; the pixels outside are not read",
            found.path(0),
            layout.data,
            layout.display,
        )
    aspect = float(spec.get_float_attribute("PixelAspectRatio", 1.0))
    return VideoInfo(
        path=Path(pattern),
        width=layout.width,
        height=layout.height,
        fps=rate,
        time_base=1 / rate,
        num_frames=found.count,
        duration_s=float(found.count / rate),
        codec=layout.format_name,
        pix_fmt=layout.pix_fmt,
        bit_depth=layout.bit_depth,
        has_alpha=layout.alpha is not None,
        color=ColorTags(None, None, "gbr", "pc"),
        has_audio=False,
        rotation_deg=0,
        first_frame=found.first,
        timecode=_timecode(spec),
        sample_aspect_ratio=Fraction(aspect).limit_denominator(1000) if aspect > 0 else Fraction(1),
    )


def _check_range(start: int, stop: int | None) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise UsageError(f"start must be an int >= 0, got {start!r}; frames count from 0")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or stop < start):
        raise UsageError(f"stop must be None or an int >= start ({start}), got {stop!r}; [start, stop) is half-open")


def read_sequence(
    pattern: str | os.PathLike[str],
    *,
    start: int = 0,
    stop: int | None = None,
    alpha: bool = False,
    fps: Fraction | int | float | str | None = None,
) -> Iterator[VideoFrame]:
    """Read an image sequence frame by frame (one file in memory at a time).

    The files are listed (gaps are an error) and the first file's header is read at the call; each frame read is
    checked against the first file's size, channels and types. :func:`probe_sequence` checks all headers.

    Args:
        pattern: the sequence (see :func:`probe_sequence`).
        start: first frame index to yield (0 is the first file), >= 0.
        stop: one past the last index, or None for the end; beyond the end means the end.
        alpha: also return each frame's alpha (when the files have one).
        fps: the frame rate (``time_base = 1 / fps``); None for 24.

    Yields:
        VideoFrame(index=i, pts=i, time_base=1/fps, image, alpha): image (H, W, 3) uint8, uint16 or float32 (see
        the module docstring); alpha (H, W) of the same dtype, or None.

    Raises:
        UsageError: bad ``start``/``stop``/``fps``/pattern.
        InputError: as :func:`find_sequence`; ``start`` past the end; a file that is unreadable, damaged or of
            another layout than the first (raised when that frame is reached).

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from vidharm.io import SequenceWriter
        >>> folder = Path(tempfile.mkdtemp())
        >>> writer = SequenceWriter(folder / "f.%03d.png")
        >>> for i in range(3):
        ...     _ = writer.write(i, np.full((2, 2, 3), 1000 * i, np.uint16))
        >>> [(f.index, f.pts, f.image.dtype.name, int(f.image[0, 0, 0])) for f in read_sequence(folder / "f.%03d.png")]
        [(0, 0, 'uint16', 0), (1, 1, 'uint16', 1000), (2, 2, 'uint16', 2000)]
    """
    _check_range(start, stop)
    rate = DEFAULT_SEQUENCE_FPS if fps is None else check_fps(fps)
    found = find_sequence(pattern)
    if start >= found.count:
        raise InputError(
            f"{pattern}: has {found.count} frames, so start={start} is past the end; use start < {found.count}"
        )
    first = read_layout(found.path(0))
    end = found.count if stop is None else min(stop, found.count)
    return _frames(found, first, range(start, end), alpha, 1 / rate)


def _frames(
    found: SequenceFiles, first: ImageLayout, indices: range, alpha: bool, time_base: Fraction
) -> Iterator[VideoFrame]:
    for i in indices:
        image, a, _ = read_pixels(found.path(i), alpha=alpha, like=first)
        yield VideoFrame(i, i, time_base, image, a)


def fingerprint_sequence(pattern: str | os.PathLike[str], block: int = 1 << 20) -> str:
    """sha256 over every file's name and size and the first MiB of the first and last files.

    Identifies a sequence without reading all of it (a re-rendered frame of another size changes it; one of the
    same size in the middle may not).

    Raises:
        InputError: as :func:`find_sequence`.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "f1.png").write_bytes(b"ab")
        >>> len(fingerprint_sequence(folder / "f%d.png"))
        64
    """
    found = find_sequence(pattern)
    digest = hashlib.sha256()
    for i in range(found.count):
        path = found.path(i)
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
    for i in sorted({0, found.count - 1}):
        with open(found.path(i), "rb") as fh:
            digest.update(fh.read(block))
    return digest.hexdigest()
