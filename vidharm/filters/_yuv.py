"""The filter tables applied in a clip's own 8-bit 4:2:0 YUV, so that a render needs no RGB round trip.

Decoders give H.264/HEVC frames as 8-bit Y'CbCr 4:2:0 and encoders take them back in the same form; going through
RGB costs two full-frame conversions and re-rounds every background pixel. Here only the foreground is touched:

1. each pixel under the mask (mask > 0) is converted to integer RGB with the stream's matrix and range, its chroma
   taken from its 2x2 block (nearest, as the decoders' fast paths do);
2. the RGB pixels go through :func:`~vidharm.filters.apply_filter_luts` (the same tables, blend and rounding as
   the RGB render);
3. only their *change* returns: ``Y' = Y + dY`` per pixel and ``Cb' = Cb + mean(dCb)`` over the block's four
   pixels, where ``d`` is the matrix applied to the RGB difference. Where the mask is 0 the difference is exactly 0,
   so background pixels (and chroma blocks without foreground) are the decoded values bit for bit.

The result agrees with decode-to-RGB, the RGB render and encode-from-RGB to within a couple of levels (both round
through integers at different places; ``tests/filters/test_yuv.py`` measures it), and is exact on the
background, where the RGB round trip is not.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vidharm.errors import ShapeError, UsageError, check_shape
from vidharm.filters._lut import FilterLuts, apply_filter_luts, lut_backend

__all__ = ["YUV_MATRICES", "apply_filter_luts_yuv420", "yuv_matrix"]

YUV_MATRICES: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),
    "bt601": (0.299, 0.114),
    "bt2020": (0.2627, 0.0593),
}
"""Luma weights ``(Kr, Kb)`` of the matrices the YUV render supports (``Kg = 1 - Kr - Kb``)."""

# Stream matrix tags (as vidharm.io names them) to the matrices above; untagged streams are BT.601, as in ffmpeg.
_TAG_MATRIX = {None: "bt601", "bt709": "bt709", "bt470bg": "bt601", "smpte170m": "bt601", "bt2020nc": "bt2020"}


def yuv_matrix(tag: str | None) -> str | None:
    """The :data:`YUV_MATRICES` key for a stream's matrix tag, or None where the YUV render does not apply.

    Example:
        >>> yuv_matrix("bt709"), yuv_matrix(None), yuv_matrix("bt2020c")
        ('bt709', 'bt601', None)
    """
    return _TAG_MATRIX.get(tag)


def _coefficients(matrix: str, full_range: bool) -> np.ndarray:
    """``[Kr, Kg, Kb, y_offset, y_scale, c_scale]``: levels ``Y = y_offset + y_scale * luma`` (luma in RGB levels)."""
    kr, kb = YUV_MATRICES[matrix]
    if full_range:
        return np.array([kr, 1 - kr - kb, kb, 0.0, 1.0, 1.0], np.float64)
    return np.array([kr, 1 - kr - kb, kb, 16.0, 219.0 / 255.0, 224.0 / 255.0], np.float64)


def _to_rgb(
    y: Any, u: Any, v: Any, mask: Any, k: Any, rgb: Any, extents: Any
) -> None:  # pragma: no cover - compiled by numba
    """Integer RGB of every 2x2 block row's foreground span (``extents[i]``: luma columns [j0, j1), j1 = 0 if none)."""
    height, width = y.shape
    kr, kg, kb = k[0], k[1], k[2]
    y0, ys, cs = k[3], k[4], k[5]
    cr_r = 2.0 * (1.0 - kr) / cs
    cb_b = 2.0 * (1.0 - kb) / cs
    for i in range(height // 2):
        j0 = width
        j1 = 0
        for r in range(2 * i, 2 * i + 2):
            row = mask[r]
            a = 0
            while a < width and row[a] <= 0.0:
                a += 1
            if a < width:
                b = width
                while row[b - 1] <= 0.0:
                    b -= 1
                j0 = min(j0, a)
                j1 = max(j1, b)
        if j1 == 0:
            extents[i, 0] = 0
            extents[i, 1] = 0
            continue
        j0 -= j0 % 2
        j1 += j1 % 2
        extents[i, 0] = j0
        extents[i, 1] = j1
        for r in range(2 * i, 2 * i + 2):
            for j in range(j0, j1):
                luma = (y[r, j] - y0) / ys
                cb = u[i, j // 2] - 128.0
                cr = v[i, j // 2] - 128.0
                red = luma + cr_r * cr
                blue = luma + cb_b * cb
                green = (luma - kr * red - kb * blue) / kg
                rgb[r, j, 0] = min(max(int(red + 0.5), 0), 255)
                rgb[r, j, 1] = min(max(int(green + 0.5), 0), 255)
                rgb[r, j, 2] = min(max(int(blue + 0.5), 0), 255)


def _add_change(
    y: Any, u: Any, v: Any, before: Any, after: Any, k: Any, extents: Any, oy: Any, ou: Any, ov: Any
) -> None:  # pragma: no cover - compiled by numba
    """Add the matrix of ``after - before`` to the foreground spans of the planes (outputs hold the inputs' copy)."""
    kr, kg, kb = k[0], k[1], k[2]
    ys, cs = k[4], k[5]
    to_cb = cs / (2.0 * (1.0 - kb))
    to_cr = cs / (2.0 * (1.0 - kr))
    for i in range(extents.shape[0]):
        j0 = extents[i, 0]
        j1 = extents[i, 1]
        for jc in range(j0 // 2, j1 // 2):
            dcb = 0.0
            dcr = 0.0
            for r in range(2 * i, 2 * i + 2):
                for j in range(2 * jc, 2 * jc + 2):
                    dr = np.float64(after[r, j, 0]) - np.float64(before[r, j, 0])
                    dg = np.float64(after[r, j, 1]) - np.float64(before[r, j, 1])
                    db = np.float64(after[r, j, 2]) - np.float64(before[r, j, 2])
                    dl = kr * dr + kg * dg + kb * db
                    if dr != 0.0 or dg != 0.0 or db != 0.0:
                        oy[r, j] = min(max(int(np.floor(y[r, j] + ys * dl + 0.5)), 0), 255)
                    dcb += db - dl
                    dcr += dr - dl
            if dcb != 0.0 or dcr != 0.0:
                ou[i, jc] = min(max(int(np.floor(u[i, jc] + to_cb * dcb * 0.25 + 0.5)), 0), 255)
                ov[i, jc] = min(max(int(np.floor(v[i, jc] + to_cr * dcr * 0.25 + 0.5)), 0), 255)


_lock = threading.Lock()
_kernels: list[tuple[Callable[..., None], Callable[..., None]]] = []


def _compiled() -> tuple[Callable[..., None], Callable[..., None]]:
    with _lock:
        if not _kernels:
            import numba

            jit = numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
            _kernels.append((jit(_to_rgb), jit(_add_change)))
        return _kernels[0]


def apply_filter_luts_yuv420(
    planes: np.ndarray,
    width: int,
    height: int,
    luts: FilterLuts,
    mask: np.ndarray,
    *,
    matrix: str,
    full_range: bool = False,
) -> np.ndarray:
    """Apply one frame's 8-bit tables to an 8-bit 4:2:0 frame in place of its RGB, blended with ``mask``.

    Args:
        planes: the frame as PyAV's ``yuv420p`` arrays hold it: Y (height x width), then Cb and Cr (each
            height/2 x width/2), uint8, flat or shaped (height * 3 / 2, width).
        width: even frame width.
        height: even frame height.
        luts: the frame's tables (:func:`~vidharm.filters.build_filter_luts` with depth 8).
        mask: (height, width) float alpha in [0, 1] (values outside are clipped).
        matrix: a :data:`YUV_MATRICES` key (see :func:`yuv_matrix`).
        full_range: levels 0-255 (``yuvj420p``, range ``pc``) instead of 16-235 / 16-240.

    Returns:
        A new array of ``planes``' shape and dtype; where the mask is 0 it equals ``planes`` (chroma: where the
        whole 2x2 block's mask is 0).

    Raises:
        ShapeError: odd sizes, or ``planes``/``mask`` not matching them.
        UsageError: tables not 8-bit, an unknown matrix, or numba missing (the RGB render is the fallback).

    Example:
        >>> from vidharm.filters import build_filter_luts
        >>> planes = np.full((6, 4), 128, np.uint8); planes[:4] = 100  # a 4x4 grey frame
        >>> mask = np.zeros((4, 4), np.float32); mask[:2, :2] = 1
        >>> out = apply_filter_luts_yuv420(planes, 4, 4, build_filter_luts([0, 0.3, 0, 0, 0, 0], [0.5] * 4),
        ...                                mask, matrix="bt709")
        >>> out[:4].tolist()
        [[136, 136, 100, 100], [136, 136, 100, 100], [100, 100, 100, 100], [100, 100, 100, 100]]
    """
    if width % 2 or height % 2 or width < 2 or height < 2:
        raise ShapeError(f"the 4:2:0 render needs even frame sizes, got {width}x{height}; use the RGB render")
    if luts.depth != 8:
        raise UsageError(f"the 4:2:0 render takes 8-bit tables, got {luts.depth}-bit ones")
    if matrix not in YUV_MATRICES:
        raise UsageError(f"matrix: expected one of {sorted(YUV_MATRICES)}, got {matrix!r}")
    if lut_backend() != "numba":
        raise UsageError("the 4:2:0 render needs numba; use the RGB render")
    if planes.dtype != np.uint8 or planes.size != width * height * 3 // 2:
        raise ShapeError(
            f"planes: expected {width * height * 3 // 2} uint8 values (yuv420p at {width}x{height}), "
            f"got {planes.size} {planes.dtype}"
        )
    check_shape("mask", np.shape(mask), (height, width))
    to_rgb, add_change = _compiled()
    flat = np.ascontiguousarray(planes).reshape(-1)
    out = flat.copy()
    area, quarter = width * height, width * height // 4
    views = [a.reshape(-1) for a in (flat, out)]
    y, u, v = (views[0][s].reshape(shape) for s, shape in _layout(area, quarter, width, height))
    oy, ou, ov = (views[1][s].reshape(shape) for s, shape in _layout(area, quarter, width, height))
    alpha = np.ascontiguousarray(mask, dtype=np.float32)
    k = _coefficients(matrix, full_range)
    rgb = np.empty((height, width, 3), np.uint8)
    extents = np.zeros((height // 2, 2), np.int64)
    to_rgb(y, u, v, alpha, k, rgb, extents)
    if not extents[:, 1].any():
        return out.reshape(planes.shape)
    filtered = apply_filter_luts(rgb, luts, alpha)
    add_change(y, u, v, rgb, filtered, k, extents, oy, ou, ov)
    return out.reshape(planes.shape)


def _layout(area: int, quarter: int, width: int, height: int) -> list[tuple[slice, tuple[int, int]]]:
    half = (height // 2, width // 2)
    return [
        (slice(0, area), (height, width)),
        (slice(area, area + quarter), half),
        (slice(area + quarter, area + 2 * quarter), half),
    ]
