"""Input normalisation shared by the metrics: images to float64 0-255, masks to float64 [0, 1]."""

from __future__ import annotations

import numpy as np

from vidharm.errors import InputError, MaskError, ShapeError


def as_image(name: str, image: np.ndarray) -> np.ndarray:
    """(H, W, C) or (H, W) array as float64 on the 0-255 scale; uint16 is rescaled by 1/257."""
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ShapeError(f"{name}: expected shape (H, W, 3) or (H, W), got {a.shape}")
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 257.0
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{name}: expected a numeric image on the 0-255 scale, got dtype {a.dtype}")
    out = a.astype(np.float64, copy=False)
    if not np.isfinite(out).all():
        raise InputError(f"{name}: holds NaN or inf; metrics need finite pixel values on the 0-255 scale")
    return out


def as_mask(name: str, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) or (H, W, 1) mask in [0, 1] (bool accepted) as float64 (H, W) matching ``size``."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != tuple(size):
        raise ShapeError(
            f"{name}: expected shape {tuple(size)} (or with a trailing 1) to match the image, got {m.shape}"
        )
    m = m.astype(np.float64, copy=False)
    if not np.isfinite(m).all() or m.min(initial=0.0) < 0.0 or m.max(initial=0.0) > 1.0:
        raise MaskError(
            f"{name}: expected values in [0, 1], got range [{np.nanmin(m)}, {np.nanmax(m)}]; divide 8-bit masks by 255"
        )
    return m


def same_shape(names: tuple[str, str], a: np.ndarray, b: np.ndarray) -> None:
    """Raise ShapeError unless two images have the same shape."""
    if a.shape != b.shape:
        raise ShapeError(f"{names[0]} and {names[1]}: expected the same shape, got {a.shape} and {b.shape}")
