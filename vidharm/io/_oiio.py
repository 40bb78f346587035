"""One image file through OpenImageIO: its layout, its pixels as RGB plus alpha, and writing EXR, DPX and float TIFF.

Reading (every format OpenImageIO reads; vidharm uses EXR, PNG, TIFF, DPX and JPEG):

- dtype: uint8 for 8-bit files; uint16 for 10-, 12- and 16-bit integer files, scaled to full range by
  OpenImageIO (a 10-bit DPX code v becomes ``(v << 6) | (v >> 4)``, bit replication, within 1 of
  ``round(v * 65535 / 1023)``; writing a 10-bit DPX keeps the top 10 bits, so 10-bit codes survive a round
  trip exactly); float32 for half and float files (half converts exactly; values above 1 and below 0 stay).
- channels: R, G, B by name (else the first three); alpha is the channel OpenImageIO marks as alpha (``A``);
  other channels (Z, AOVs, layers) are ignored. A grey file (one channel, or grey + alpha) becomes RGB. Values
  are as stored: straight alpha (PNG, TIFF) is not premultiplied on reading, EXR's premultiplied RGB stays so.
- data window: the frame covers the display window. Pixels of the display window outside the data window
  are 0; pixels of the data window outside the display window (overscan) are dropped. So every frame of a
  sequence has the same size even where the data window changes from frame to frame.

Writing EXR with a template (the source frame's header): the header attributes are copied except those that
describe the pixel layout (``oiio:*``, tiling, line order) and a lossy compression (``b44``, ``dwaa``, ...,
which becomes ``zip``); the display window is the template's and the image is cropped back to the template's
data window (clipped to the display window); each channel keeps the template's type (half stays half).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from vidharm.errors import InputError, OutputError, ShapeError, UsageError
from vidharm.io._atomic import atomic_path

__all__ = ["ImageLayout", "read_layout", "read_spec", "read_pixels", "write_exr", "write_oiio"]

_log = logging.getLogger(__name__)

_INT_TYPES = {"uint8": 8, "uint16": 16}

_FLOAT_TYPES = {"half": 16, "float": 32}
#: EXR compressions that keep every value exactly (pxr24 rounds float to 24 bits; b44/dwa are lossy).
LOSSLESS_EXR_COMPRESSION = ("none", "rle", "zips", "zip", "piz")
_LAYOUT_ATTRIBUTES = ("tiles", "openexr:lineOrder", "openexr:levelmode", "openexr:roundingmode", "openexr:chunkCount")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


@dataclass(frozen=True)
class ImageLayout:
    """What one image file holds, as far as frames are concerned.

    Attributes:
        format_name: OpenImageIO's format name: ``openexr``, ``png``, ``tiff``, ``dpx``, ``jpeg``.
        display: display window ``(x, y, width, height)``; the frame's size.
        data: data window ``(x, y, width, height)``: the pixels stored in the file.
        channel_names: every channel, in OpenImageIO's order.
        channel_types: every channel's sample type (``uint8``, ``uint16``, ``half``, ``float``, ...).
        rgb: the indices of the channels read as R, G, B (the same index thrice for a grey file).
        alpha: the index of the alpha channel, or None.
        bit_depth: bits per sample of the channels read: 8, 10, 12, 16 (also half) or 32 (float).

    Example:
        >>> layout = ImageLayout("png", (0, 0, 4, 3), (0, 0, 4, 3), ("R", "G", "B"), ("uint16",) * 3, (0, 1, 2),
        ...                      None, 16)
        >>> layout.width, layout.height, layout.dtype.name, layout.pix_fmt
        (4, 3, 'uint16', 'rgb48le')
    """

    format_name: str
    display: tuple[int, int, int, int]
    data: tuple[int, int, int, int]
    channel_names: tuple[str, ...]
    channel_types: tuple[str, ...]
    rgb: tuple[int, int, int]
    alpha: int | None
    bit_depth: int

    @property
    def width(self) -> int:
        """Frame width: the display window's."""
        return self.display[2]

    @property
    def height(self) -> int:
        """Frame height: the display window's."""
        return self.display[3]

    @property
    def is_float(self) -> bool:
        """Whether the channels read are half or float."""
        return any(self.channel_types[i] in _FLOAT_TYPES for i in self._used)

    @property
    def dtype(self) -> np.dtype:
        """The frame's dtype: uint8, uint16 (10 to 16 bits) or float32 (half and float)."""
        if self.is_float:
            return np.dtype(np.float32)
        return np.dtype(np.uint8 if self.bit_depth == 8 else np.uint16)

    @property
    def pix_fmt(self) -> str:
        """An FFmpeg pixel-format name for the frames read: ``rgb24``, ``rgba64le``, ``rgbf16le``, ``rgbaf32le``..."""
        a = self.alpha is not None
        if self.is_float:
            return f"rgb{'a' if a else ''}f{self.bit_depth}le"
        if self.bit_depth == 8:
            return "rgba" if a else "rgb24"
        return "rgba64le" if a else "rgb48le"

    @property
    def _used(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys((*self.rgb, *(() if self.alpha is None else (self.alpha,)))))

    def describe(self) -> str:
        """The channels and types in words, e.g. ``R,G,B,A half``."""
        types = sorted(set(self.channel_types))
        bits = f" ({self.bit_depth}-bit)" if self.bit_depth not in (8, 16, 32) else ""
        return f"{','.join(self.channel_names)} {'/'.join(types)}{bits}"

    def difference(self, other: ImageLayout) -> str | None:
        """How ``other`` differs from this layout in what must be constant within a sequence, or None.

        The data window may change from frame to frame; the display window, the channels and their types may not.
        """
        if other.display != self.display:
            w, h = other.display[2:]
            return (
                f"is {w}x{h} (display window {other.display}) but the first frame is "
                f"{self.width}x{self.height} (display window {self.display})"
            )
        if (other.channel_names, other.channel_types, other.bit_depth) != (
            self.channel_names,
            self.channel_types,
            self.bit_depth,
        ):
            return f"has channels {other.describe()} but the first frame has {self.describe()}"
        return None


def _open(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path")
    # Pixels as stored: PNG and TIFF hold straight (unassociated) alpha, which OpenImageIO would premultiply.
    # (A fresh config each time: a module-level OpenImageIO object outlives the bindings at exit and warns.)
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        raise InputError(
            f"{path}: not an image OpenImageIO can read ({_first_line(oiio.geterror())}); "
            "the file is damaged or not an image: re-render or replace it"
        )
    return inp


def read_spec(path: str | Path) -> Any:
    """The ``oiio.ImageSpec`` of ``path``'s first subimage (its header only; no pixels are read).

    Raises:
        InputError: missing, or not an image OpenImageIO can read.
    """
    p = Path(path)
    inp = _open(p)
    try:
        return oiio.ImageSpec(inp.spec())
    finally:
        inp.close()


def _channel_index(names: tuple[str, ...], wanted: str) -> int | None:
    for i, name in enumerate(names):
        if name == wanted:
            return i
    return None


def layout_of(path: Path, spec: Any, format_name: str) -> ImageLayout:
    """The :class:`ImageLayout` of a file from its spec.

    Raises:
        InputError: a sample type vidharm does not read (signed or 32-bit integers, double), or a volume image.
    """
    names = tuple(str(n) for n in spec.channelnames)
    n = int(spec.nchannels)
    formats = list(spec.channelformats) or [spec.format] * n
    types = tuple(str(t) for t in formats)
    if int(spec.depth) > 1:
        raise InputError(f"{path}: is a volume image (depth {spec.depth}); give 2-D images")
    alpha: int | None = int(spec.alpha_channel) if int(spec.alpha_channel) >= 0 else _channel_index(names, "A")
    index = [_channel_index(names, c) for c in "RGB"]
    if all(i is not None for i in index):
        rgb = (int(index[0] or 0), int(index[1] or 0), int(index[2] or 0))
    else:
        colour = [i for i in range(n) if i != alpha]
        if not colour:
            raise InputError(f"{path}: has only an alpha channel ({','.join(names)}); give an RGB or grey image")
        rgb = (colour[0], colour[1], colour[2]) if len(colour) >= 3 else (colour[0],) * 3
    used = {*rgb, *(() if alpha is None else (alpha,))}
    used_types = {types[i] for i in used}
    if used_types <= set(_FLOAT_TYPES):
        bit_depth = max(_FLOAT_TYPES[t] for t in used_types)
    elif used_types <= set(_INT_TYPES):
        bit_depth = max(_INT_TYPES[t] for t in used_types)
        stated = int(spec.get_int_attribute("oiio:BitsPerSample", 0))
        if bit_depth == 16 and 8 < stated < 16:
            bit_depth = stated
    else:
        raise InputError(
            f"{path}: has samples of type {'/'.join(sorted(used_types))}; vidharm reads 8/10/12/16-bit unsigned "
            "integer, half and float images: convert it (e.g. oiiotool IN -d uint16 -o OUT)"
        )
    data = (int(spec.x), int(spec.y), int(spec.width), int(spec.height))
    if int(spec.full_width) > 0 and int(spec.full_height) > 0:
        display = (int(spec.full_x), int(spec.full_y), int(spec.full_width), int(spec.full_height))
    else:
        display = data
    return ImageLayout(format_name, display, data, names, types, rgb, alpha, bit_depth)


def read_layout(path: str | Path) -> ImageLayout:
    """Read a file's header (not its pixels) and describe its layout.

    Args:
        path: an image file.

    Returns:
        Its :class:`ImageLayout`.

    Raises:
        InputError: missing, not an image OpenImageIO can read, or of a sample type vidharm does not read.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.exr"
        >>> write_exr(path, np.zeros((2, 3, 3), np.float16))
        >>> layout = read_layout(path)
        >>> layout.format_name, layout.width, layout.height, layout.bit_depth, layout.dtype.name
        ('openexr', 3, 2, 16, 'float32')
    """
    p = Path(path)
    inp = _open(p)
    try:
        return layout_of(p, inp.spec(), str(inp.format_name()))
    finally:
        inp.close()


def _to_display(pixels: np.ndarray, layout: ImageLayout) -> np.ndarray:
    """Place the data window's pixels in the display window, 0 elsewhere."""
    if layout.data == layout.display:
        return pixels
    dx, dy, dw, dh = layout.display
    x, y, w, h = layout.data
    full = np.zeros((dh, dw, pixels.shape[2]), pixels.dtype)
    x0, y0, x1, y1 = max(x, dx), max(y, dy), min(x + w, dx + dw), min(y + h, dy + dh)
    if x1 > x0 and y1 > y0:
        full[y0 - dy : y1 - dy, x0 - dx : x1 - dx] = pixels[y0 - y : y1 - y, x0 - x : x1 - x]
    return full


def read_pixels(
    path: str | Path, *, alpha: bool = False, like: ImageLayout | None = None
) -> tuple[np.ndarray, np.ndarray | None, ImageLayout]:
    """Read one image file as an RGB frame (and its alpha), at its native depth, covering its display window.

    Args:
        path: an image file (EXR, PNG, TIFF, DPX, JPEG, ...).
        alpha: also return the alpha channel (when the file has one).
        like: the layout the file must have (a sequence's first frame); None accepts any.

    Returns:
        ``(image, alpha, layout)``: image (H, W, 3) uint8 [0, 255], uint16 [0, 65535] or float32 (unbounded);
        alpha (H, W) of the same dtype, or None when not asked for or absent; the file's layout.

    Raises:
        InputError: missing or unreadable file, damaged pixel data, an unsupported sample type, or a layout
            other than ``like``'s.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.exr"
        >>> write_exr(path, np.full((2, 2, 3), -0.5, np.float32), np.ones((2, 2), np.float32))
        >>> image, a, layout = read_pixels(path, alpha=True)
        >>> image.dtype.name, image[0, 0].tolist(), a.tolist(), layout.pix_fmt
        ('float32', [-0.5, -0.5, -0.5], [[1.0, 1.0], [1.0, 1.0]], 'rgbaf32le')
    """
    p = Path(path)
    inp = _open(p)
    try:
        layout = layout_of(p, inp.spec(), str(inp.format_name()))
        if like is not None:
            diff = like.difference(layout)
            if diff is not None:
                raise InputError(f"{p}: {diff}; every frame of a sequence must match: re-render that frame")
        channels = [*layout.rgb]
        if alpha and layout.alpha is not None:
            channels.append(layout.alpha)
        end = max(channels) + 1
        kind = "float" if layout.is_float else ("uint8" if layout.bit_depth == 8 else "uint16")
        data = inp.read_image(0, 0, 0, end, kind)
        if data is None:
            raise InputError(
                f"{p}: its pixel data cannot be read ({_first_line(inp.geterror())}); the file is damaged or "
                "truncated: re-render or replace it"
            )
    finally:
        inp.close()
    pixels = np.asarray(data).reshape(layout.data[3], layout.data[2], end)
    pixels = _to_display(pixels, layout)
    image = np.ascontiguousarray(pixels[:, :, list(layout.rgb)])
    a = np.ascontiguousarray(pixels[:, :, layout.alpha]) if alpha and layout.alpha is not None else None
    return image, a, layout


def _split(image: np.ndarray, alpha: np.ndarray | None, where: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) and (H, W) from an (H, W), (H, W, 3) or (H, W, 4) image plus an optional alpha."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ShapeError(f"{where}: expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    if image.shape[2] == 4:
        if alpha is not None:
            raise UsageError(f"{where}: got an RGBA image and a separate alpha; give one of them")
        image, alpha = image[:, :, :3], image[:, :, 3]
    if alpha is not None and (alpha.shape != image.shape[:2] or alpha.dtype != image.dtype):
        raise ShapeError(
            f"{where}: alpha must be {image.shape[:2]} {image.dtype} like the image, got {alpha.shape} {alpha.dtype}"
        )
    return image, alpha


def _write(path: Path, spec: Any, pixels: np.ndarray) -> None:
    with atomic_path(path) as temp:
        out = oiio.ImageOutput.create(str(temp))
        if out is None:
            raise OutputError(f"{path}: OpenImageIO cannot write this format ({_first_line(oiio.geterror())})")
        try:
            if not out.open(str(temp), spec) or not out.write_image(np.ascontiguousarray(pixels)):
                raise OutputError(f"{path}: writing failed ({_first_line(out.geterror())}); check space and rights")
        finally:
            out.close()


def _float_pixels(image: np.ndarray) -> np.ndarray:
    """Float32 pixels: floats as they are, integer code values scaled to [0, 1] (exact for 8- and 16-bit)."""
    if image.dtype in (np.uint8, np.uint16):
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    return image.astype(np.float32, copy=False)


def _copy_attributes(spec: Any, template: Any) -> str:
    """Copy the template's header attributes into ``spec``; returns the compression to write."""
    for attr in template.extra_attribs:
        name = str(attr.name)
        if (name.startswith("oiio:") and name != "oiio:ColorSpace") or name in _LAYOUT_ATTRIBUTES:
            continue
        if name == "compression":
            continue
        spec.attribute(name, attr.type, attr.value)
    compression = str(template.get_string_attribute("compression", "zip"))
    if compression.split(":")[0] not in LOSSLESS_EXR_COMPRESSION:
        _log.info("EXR compression %s is lossy; writing zip instead", compression)
        compression = "zip"
    return compression


def write_exr(
    path: str | Path, image: np.ndarray, alpha: np.ndarray | None = None, *, template: Any | None = None
) -> None:
    """Write an EXR atomically; with ``template``, in the source frame's header, windows and channel types.

    Without a template: float16 frames become half, float32 float, and uint8/uint16 frames float code values
    scaled to [0, 1] (no transfer function is applied); compression zip, data window = display window.

    Args:
        path: the ``.exr`` file.
        image: (H, W, 3) RGB or (H, W, 4) RGBA (or (H, W) grey); float32/float16 (any values) or uint8/uint16.
        alpha: (H, W), same dtype as ``image``, or None.
        template: the ``oiio.ImageSpec`` of the source frame (see :func:`read_spec`); the frame must have its
            display window's size.

    Raises:
        ShapeError: a bad image or alpha shape, or a frame whose size is not the template's display window.
        UsageError: an unsupported dtype.
        OutputError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.exr"
        >>> write_exr(path, np.array([[[2.5, -1.0, 0.1]]], np.float16))
        >>> read_pixels(path)[0].tolist()
        [[[2.5, -1.0, 0.0999755859375]]]
    """
    p = Path(path)
    if image.dtype not in (np.uint8, np.uint16, np.float16, np.float32):
        raise UsageError(f"{p}: EXR takes uint8, uint16, float16 or float32 frames, got {image.dtype}")
    rgb, a = _split(image, alpha, p)
    h, w = rgb.shape[:2]
    pixels = _float_pixels(rgb if a is None else np.concatenate([rgb, a[:, :, None]], axis=2))
    nch = pixels.shape[2]
    names = ("R", "G", "B", "A")[:nch]
    if template is None:
        sample = "half" if image.dtype == np.float16 else "float"
        spec = oiio.ImageSpec(w, h, nch, sample)
        compression = "zip"
        data = display = (0, 0, w, h)
        types = [sample] * nch
    else:
        source = layout_of(p, template, "openexr")
        display = source.display
        if (display[2], display[3]) != (w, h):
            raise ShapeError(
                f"{p}: the frame is {w}x{h} but the source frame's display window is {display[2]}x{display[3]}; "
                "write frames of the source's size"
            )
        dx, dy, dw, dh = display
        x, y, sw, sh = source.data
        x0, y0, x1, y1 = max(x, dx), max(y, dy), min(x + sw, dx + dw), min(y + sh, dy + dh)
        if x1 <= x0 or y1 <= y0:  # an empty data window: keep one pixel, as EXR needs one
            x0, y0, x1, y1 = dx, dy, dx + 1, dy + 1
        pixels = pixels[y0 - dy : y1 - dy, x0 - dx : x1 - dx]
        data = (x0, y0, x1 - x0, y1 - y0)
        source_types = [source.channel_types[i] for i in source.rgb]
        alpha_type = source.channel_types[source.alpha] if source.alpha is not None else source_types[0]
        types = [t if t in _FLOAT_TYPES else "float" for t in [*source_types, alpha_type][:nch]]
        spec = oiio.ImageSpec(data[2], data[3], nch, "float" if "float" in types else "half")
        compression = _copy_attributes(spec, template)
    spec.x, spec.y = data[0], data[1]
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    spec.channelnames = names
    if len(set(types)) > 1:
        spec.channelformats = tuple(oiio.TypeDesc(t) for t in types)
    if nch == 4:
        spec.alpha_channel = 3
    spec.attribute("compression", compression)
    _write(p, spec, pixels)


def write_oiio(
    path: str | Path, image: np.ndarray, alpha: np.ndarray | None = None, *, bits: int | None = None
) -> None:
    """Write a DPX, TIFF or other non-EXR file atomically through OpenImageIO, at the frame's depth.

    Args:
        path: the file; its extension picks the format (``.dpx``, ``.tif`` ...).
        image: (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey; uint8, uint16, float16 or float32 (as the format
            allows: DPX takes integers only).
        alpha: (H, W), same dtype as ``image``, or None.
        bits: bits per sample for uint16 frames where the format can hold fewer (DPX 10 or 12: each value is
            rounded to the nearest code, so the codes of a frame read from such a file survive); None keeps 16.

    Raises:
        ShapeError: a bad image or alpha shape.
        UsageError: a dtype the format cannot hold.
        OutputError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.dpx"
        >>> write_oiio(path, np.full((2, 2, 3), 65535, np.uint16), bits=10)
        >>> image, _, layout = read_pixels(path)
        >>> layout.bit_depth, image[0, 0].tolist()
        (10, [65535, 65535, 65535])
    """
    p = Path(path)
    ext = p.suffix.lower()
    allowed = (np.uint8, np.uint16) if ext == ".dpx" else (np.uint8, np.uint16, np.float16, np.float32)
    if image.dtype not in allowed:
        names = ", ".join(np.dtype(d).name for d in allowed)
        raise UsageError(f"{p}: {ext} takes {names} frames, got {image.dtype}; write .exr for float frames")
    rgb, a = _split(image, alpha, p)
    pixels = rgb if a is None else np.concatenate([rgb, a[:, :, None]], axis=2)
    sample = {"uint8": "uint8", "uint16": "uint16", "float16": "half", "float32": "float"}[image.dtype.name]
    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], pixels.shape[2], sample)
    spec.channelnames = ("R", "G", "B", "A")[: pixels.shape[2]]
    if a is not None:
        spec.alpha_channel = 3
    if bits is not None and image.dtype == np.uint16 and 8 < bits < 16:
        spec.attribute("oiio:BitsPerSample", int(bits))
        pixels = _round_to_bits(pixels, bits)
    _write(p, spec, pixels)


def _round_to_bits(pixels: np.ndarray, bits: int) -> np.ndarray:
    """uint16 levels rounded to the nearest ``bits``-bit code, given back bit-replicated to full scale.

    OpenImageIO keeps the top ``bits`` bits when it writes (truncation); handing it the bit-replicated nearest
    code makes that rounding, and a frame read from such a file (bit-replicated already) comes back unchanged.
    """
    peak = (1 << bits) - 1
    codes = (pixels.astype(np.uint32) * peak + 32767) // 65535
    return ((codes << (16 - bits)) | (codes >> (2 * bits - 16))).astype(np.uint16)
