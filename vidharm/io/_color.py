"""Colour tags (H.273 code points under ffmpeg's names) and the explicit swscale matrix/range they imply."""

from __future__ import annotations

from dataclasses import dataclass

from vidharm.errors import InputError

__all__ = ["ColorTags"]


@dataclass(frozen=True)
class ColorTags:
    """The four colour tags of a video stream, under ffmpeg's names; ``None`` where the stream leaves one untagged.

    Attributes:
        primaries: colour primaries, e.g. ``"bt709"`` (ffprobe ``color_primaries``).
        transfer: transfer characteristic, e.g. ``"bt709"`` (ffprobe ``color_transfer``).
        matrix: YUV<->RGB matrix, e.g. ``"bt709"`` (ffprobe ``color_space``; ``"gbr"`` for RGB-coded streams).
        range: ``"tv"`` (limited) or ``"pc"`` (full) (ffprobe ``color_range``).

    Example:
        >>> ColorTags("bt709", "bt709", "bt709", "tv").matrix
        'bt709'
        >>> ColorTags(None, None, None, None) == ColorTags(None, None, None, None)
        True
    """

    primaries: str | None
    transfer: str | None
    matrix: str | None
    range: str | None


# FFmpeg's enum values are the ITU-T H.273 code points; the names are those av_color_*_name() returns.
_PRIMARIES = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}
_TRANSFER = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}
_MATRIX = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}
_RANGE = {1: "tv", 2: "pc"}

# swscale knows these YUV matrices (SWS_CS_* names as PyAV's reformatter spells them).
_SWS_MATRIX = {
    "bt709": "ITU709",
    "fcc": "FCC",
    "bt470bg": "ITU601",
    "smpte170m": "ITU601",
    "smpte240m": "SMPTE240M",
    "bt2020nc": "BT2020",
    "bt2020c": "BT2020",
}
_SWS_RANGE = {"tv": "MPEG", "pc": "JPEG"}

# ffmpeg's own choice for untagged YUV (swscale's SWS_CS_DEFAULT is BT.601, limited range unless yuvj*).
DEFAULT_MATRIX = "smpte170m"
DEFAULT_RANGE = "tv"


def _name(table: dict[int, str], value: int | None) -> str | None:
    return None if value is None else table.get(int(value))


def _code(table: dict[int, str], name: str | None) -> int | None:
    if name is None:
        return None
    for code, known in table.items():
        if known == name:
            return code
    return None


def tags_from_codes(primaries: int | None, transfer: int | None, matrix: int | None, range_: int | None) -> ColorTags:
    """ColorTags from FFmpeg enum values; unspecified (2) and reserved values become ``None``."""
    return ColorTags(
        primaries=_name(_PRIMARIES, primaries),
        transfer=_name(_TRANSFER, transfer),
        matrix=_name(_MATRIX, matrix),
        range=_name(_RANGE, range_),
    )


def merge_tags(first: ColorTags, fallback: ColorTags) -> ColorTags:
    """Each tag of ``first``, or of ``fallback`` where ``first`` leaves it untagged."""
    return ColorTags(
        primaries=first.primaries or fallback.primaries,
        transfer=first.transfer or fallback.transfer,
        matrix=first.matrix or fallback.matrix,
        range=first.range or fallback.range,
    )


def codes_from_tags(tags: ColorTags) -> dict[str, int]:
    """The codec-context fields (``color_primaries``, ``color_trc``, ``colorspace``, ``color_range``) to set."""
    fields = {
        "color_primaries": _code(_PRIMARIES, tags.primaries),
        "color_trc": _code(_TRANSFER, tags.transfer),
        "colorspace": _code(_MATRIX, tags.matrix),
        "color_range": _code(_RANGE, tags.range),
    }
    return {k: v for k, v in fields.items() if v is not None}


def sws_matrix(matrix: str | None, *, path: object) -> str:
    """The swscale matrix for a YUV stream's ``matrix`` tag; untagged means BT.601, as in ffmpeg itself.

    Raises:
        InputError: the tag names a matrix swscale cannot convert (YCgCo, ICtCp, ...).
    """
    if matrix is None:
        matrix = DEFAULT_MATRIX
    try:
        return _SWS_MATRIX[matrix]
    except KeyError:
        raise InputError(
            f"{path}: colour matrix {matrix!r} is not supported (expected one of {sorted(_SWS_MATRIX)}); "
            "convert the clip first, e.g. ffmpeg -i IN -vf colorspace=all=bt709 OUT"
        ) from None


def sws_range(range_: str | None, pix_fmt: str) -> str:
    """The swscale range for a YUV stream's ``range`` tag; untagged means limited, except for ``yuvj*`` formats."""
    if range_ is None:
        range_ = "pc" if pix_fmt.startswith("yuvj") else DEFAULT_RANGE
    return _SWS_RANGE[range_]
