"""Still images: native bit depth, RGB channel order, atomic writes.

PNG, JPEG, TIFF, BMP and WebP go through OpenCV; EXR and DPX through OpenImageIO (EXR: float32, unbounded,
half converting exactly; DPX: uint8 or uint16, 10/12-bit codes scaled to full range by bit replication). A TIFF
OpenCV cannot decode (half, float with odd layouts) is read through OpenImageIO too.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.io._atomic import atomic_path
from vidharm.io._oiio import read_pixels, write_exr, write_oiio

__all__ = ["read_image", "write_image"]

#: Read and written through OpenImageIO rather than OpenCV.
OIIO_SUFFIXES = (".exr", ".dpx")
_WRITE_DTYPES = {
    ".png": (np.uint8, np.uint16),
    ".jpg": (np.uint8,),
    ".jpeg": (np.uint8,),
    ".tif": (np.uint8, np.uint16),
    ".tiff": (np.uint8, np.uint16),
    ".exr": (np.uint8, np.uint16, np.float16, np.float32),
    ".dpx": (np.uint8, np.uint16),
}


def read_image(path: str | os.PathLike[str], *, keep_alpha: bool = False) -> np.ndarray:
    """Read an image at its native depth, in RGB order.

    Uses ``cv2.IMREAD_UNCHANGED`` (so no depth reduction and no EXIF rotation) and swaps OpenCV's BGR to RGB.

    Args:
        path: a PNG, JPEG, TIFF, BMP, WebP, EXR or DPX file.
        keep_alpha: keep a fourth (alpha) channel as RGBA instead of dropping it.

    Returns:
        (H, W, 3) RGB, (H, W, 4) RGBA (only with ``keep_alpha``) or (H, W) gray, in the file's dtype:
        uint8 in [0, 255] or uint16 in [0, 65535] (10/12-bit DPX scaled to full range), float32 for EXR and
        float TIFF (unbounded).

    Raises:
        InputError: the file is missing, a folder, or not an image OpenCV (or, for EXR/DPX, OpenImageIO) can decode.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "a.png"
        >>> write_image(path, np.array([[[65535, 0, 0]]], np.uint16))
        >>> image = read_image(path)
        >>> image.shape, image.dtype.name, image[0, 0].tolist()
        ((1, 1, 3), 'uint16', [65535, 0, 0])
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path (expected an image such as frame.png)")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected an image file; name the image inside it")
    if p.suffix.lower() in OIIO_SUFFIXES:
        return _read_oiio(p, keep_alpha)
    # imdecode of the bytes instead of imread: no trouble with unusual characters in paths.
    data = np.fromfile(p, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None and p.suffix.lower() in (".tif", ".tiff") and data.size:
        return _read_oiio(p, keep_alpha)
    if image is None:
        raise InputError(f"{p}: not an image OpenCV can decode; give a PNG, JPEG or TIFF file")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if keep_alpha else cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_oiio(path: Path, keep_alpha: bool) -> np.ndarray:
    image, alpha, layout = read_pixels(path, alpha=keep_alpha)
    if alpha is not None:
        return np.concatenate([image, alpha[:, :, None]], axis=2)
    if len(set(layout.rgb)) == 1:
        return np.ascontiguousarray(image[:, :, 0])
    return image


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an image atomically (temp file beside ``path``, then rename) as PNG, JPEG, TIFF, EXR or DPX.

    Args:
        path: output file; ``.png`` (8/16-bit), ``.jpg``/``.jpeg`` (8-bit), ``.tif``/``.tiff`` (8/16-bit),
            ``.exr`` (float16 -> half, float32 -> float, integers as float code values / max), ``.dpx`` (8/16-bit).
        image: (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA (not JPEG); uint8 in [0, 255] or uint16 in
            [0, 65535]; float16/float32 (any values) for EXR.

    Raises:
        UsageError: unsupported extension, or a dtype/alpha the format cannot hold.
        ShapeError: ``image`` is not (H, W), (H, W, 3) or (H, W, 4).
        OutputError: the folder is missing or the file cannot be written.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "gray.png"
        >>> write_image(path, np.full((2, 3), 7, np.uint8))
        >>> read_image(path).tolist()
        [[7, 7, 7], [7, 7, 7]]
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _WRITE_DTYPES:
        raise UsageError(f"{p}: unsupported image extension {p.suffix!r}; expected one of {sorted(_WRITE_DTYPES)}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ShapeError(f"image: expected shape (H, W), (H, W, 3) or (H, W, 4), got {tuple(image.shape)}")
    allowed = _WRITE_DTYPES[suffix]
    if image.dtype not in allowed:
        names = " or ".join(np.dtype(d).name for d in allowed)
        raise UsageError(f"{p}: {suffix} holds {names} images, got {image.dtype}; convert the image or change format")
    if image.ndim == 3 and image.shape[2] == 4 and suffix in (".jpg", ".jpeg"):
        raise UsageError(f"{p}: JPEG has no alpha channel, got an RGBA image; drop alpha or write a .png")
    if suffix == ".exr":
        write_exr(p, image)
        return
    if suffix == ".dpx":
        write_oiio(p, image)
        return
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise UsageError(f"{p}: OpenCV could not encode a {image.dtype} {tuple(image.shape)} image as {suffix}")
    with atomic_path(p) as temp:
        encoded.tofile(temp)
