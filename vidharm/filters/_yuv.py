"""The filter tables applied in a clip's own 8-bit 4:2:0 YUV, so that a render needs no RGB round trip.

Decoders give H.264/HEVC frames as 8-bit Y'CbCr 4:2:0 and encoders take them back in the same form; encoding
from RGB costs a full-frame conversion and re-rounds every background pixel. Here only the foreground changes:

1. the frame's RGB, as the decoder converted it for analysis, goes through
   :func:`~vidharm.filters.apply_filter_luts` (the same tables, blend and rounding as the RGB render) in the band
   of rows that has foreground;
2. only the *change* returns to the planes: ``Y' = Y + dY`` per pixel and ``Cb' = Cb + mean(dCb)`` over each 2x2
   block, where ``d`` is the matrix applied to the RGB difference. Where the mask is 0 the difference is exactly
   0, so background pixels (and chroma blocks without foreground) keep their decoded code values bit for bit.

``tests/filters/test_yuv.py`` compares the result with exact arithmetic on the planes and with the RGB round trip
(decode to RGB, filter, encode from RGB): it is closer to the former than the round trip is.
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


def _weights(matrix: str, full_range: bool) -> np.ndarray:
    """``[Kr, Kg, Kb, y_scale, cb_scale, cr_scale]``: code-value changes ``dY = y_scale * (Kr dR + Kg dG + Kb dB)``,
    ``dCb = cb_scale * (dB - dluma)``, ``dCr = cr_scale * (dR - dluma)`` for RGB level changes dR, dG, dB."""
    kr, kb = YUV_MATRICES[matrix]
    ys, cs = (1.0, 1.0) if full_range else (219.0 / 255.0, 224.0 / 255.0)
    return np.array([kr, 1 - kr - kb, kb, ys, cs / (2 * (1 - kb)), cs / (2 * (1 - kr))], np.float32)


def _add_change(
    y: Any, u: Any, v: Any, mask: Any, before: Any, after: Any, k: Any, row0: int, row1: int, oy: Any, ou: Any, ov: Any
) -> None:  # pragma: no cover - compiled by numba
    """Add the matrix of ``after - before`` to the planes in each 2x2 block row of [row0, row1) that has foreground.

    Only the span of columns where either row's mask is above 0 is read; the outputs hold the inputs' copy.
    """
    width = mask.shape[1]
    kr, kg, kb = k[0], k[1], k[2]
    ys, to_cb, to_cr = k[3], k[4] * np.float32(0.25), k[5] * np.float32(0.25)
    half = np.float32(0.5)
    dcb = np.zeros(2 * width, np.float32)
    dcr = np.zeros(2 * width, np.float32)
    for i in range(row0 // 2, row1 // 2):
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
            continue
        j0 -= j0 % 2
        j1 += j1 % 2
        n = j1 - j0
        # Branch-free loops over views that start at 0 (an index numba cannot prove non-negative keeps a loop
        # scalar; these vectorise, about 3x faster): an unchanged pixel has dl == 0, so floor(y + 0.5) == y.
        for q in range(2):
            r = 2 * i + q
            was = before[r].reshape(-1)[3 * j0 : 3 * j1]
            now = after[r].reshape(-1)[3 * j0 : 3 * j1]
            src = y[r][j0:j1]
            dst = oy[r][j0:j1]
            cb = dcb[q * width : q * width + n]
            cr = dcr[q * width : q * width + n]
            for j in range(n):
                dr = np.float32(now[3 * j]) - np.float32(was[3 * j])
                dg = np.float32(now[3 * j + 1]) - np.float32(was[3 * j + 1])
                db = np.float32(now[3 * j + 2]) - np.float32(was[3 * j + 2])
                dl = kr * dr + kg * dg + kb * db
                dst[j] = min(max(np.int32(np.floor(np.float32(src[j]) + ys * dl + half)), 0), 255)
                cb[j] = db - dl
                cr[j] = dr - dl
        cu = u[i][j0 // 2 : j1 // 2]
        cv = v[i][j0 // 2 : j1 // 2]
        ocu = ou[i][j0 // 2 : j1 // 2]
        ocv = ov[i][j0 // 2 : j1 // 2]
        b0, b1 = dcb[:n], dcb[width : width + n]
        r0, r1 = dcr[:n], dcr[width : width + n]
        for c in range(n // 2):
            sb = (b0[2 * c] + b0[2 * c + 1]) + (b1[2 * c] + b1[2 * c + 1])
            sr = (r0[2 * c] + r0[2 * c + 1]) + (r1[2 * c] + r1[2 * c + 1])
            ocu[c] = min(max(np.int32(np.floor(np.float32(cu[c]) + to_cb * sb + half)), 0), 255)
            ocv[c] = min(max(np.int32(np.floor(np.float32(cv[c]) + to_cr * sr + half)), 0), 255)


_lock = threading.Lock()
_kernels: list[Callable[..., None]] = []


def _compiled() -> Callable[..., None]:
    with _lock:
        if not _kernels:
            import numba

            _kernels.append(numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)(_add_change))
        return _kernels[0]


def apply_filter_luts_yuv420(
    planes: np.ndarray,
    image: np.ndarray,
    luts: FilterLuts,
    mask: np.ndarray,
    *,
    matrix: str,
    full_range: bool = False,
) -> np.ndarray:
    """Apply one frame's 8-bit tables to an 8-bit 4:2:0 frame, blended with ``mask``, and return new planes.

    ``image`` is the frame's RGB as the decoder converted it (the pixels analysis measured): the tables filter it
    where the mask is above 0 (:func:`~vidharm.filters.apply_filter_luts`) and only the change goes back into the
    planes, through ``matrix``, so that pixels whose RGB did not change keep their code values exactly.

    Args:
        planes: the frame as PyAV's ``yuv420p`` arrays hold it: (H * 3 / 2, W) uint8, Y (H x W), then Cb and Cr
            (each H/2 x W/2).
        image: (H, W, 3) uint8 RGB of ``planes``.
        luts: the frame's tables (:func:`~vidharm.filters.build_filter_luts` with depth 8).
        mask: (H, W) float alpha in [0, 1] (values outside are clipped).
        matrix: a :data:`YUV_MATRICES` key (see :func:`yuv_matrix`): the planes' matrix.
        full_range: levels 0-255 (``yuvj420p``, range ``pc``) instead of 16-235 / 16-240.

    Returns:
        (H * 3 / 2, W) uint8, new; where the mask is 0 it equals ``planes`` (chroma: where the whole 2x2 block's
        mask is 0).

    Raises:
        ShapeError: odd sizes, or ``planes``/``mask`` not matching ``image``.
        UsageError: tables not 8-bit, an unknown matrix, or numba missing (the RGB render is the fallback).

    Example:
        >>> from vidharm.filters import build_filter_luts
        >>> planes = np.full((6, 4), 128, np.uint8); planes[:4] = 100  # a 4x4 grey frame, limited range
        >>> image = np.full((4, 4, 3), 98, np.uint8)  # its RGB
        >>> mask = np.zeros((4, 4), np.float32); mask[:2, :2] = 1
        >>> out = apply_filter_luts_yuv420(planes, image, build_filter_luts([0, 0.3, 0, 0, 0, 0], [0.5] * 4),
        ...                                mask, matrix="bt709")
        >>> out[:4].tolist()
        [[136, 136, 100, 100], [136, 136, 100, 100], [100, 100, 100, 100], [100, 100, 100, 100]]
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ShapeError(f"image: expected (H, W, 3) uint8 RGB, got {getattr(image, 'shape', type(image))}")
    height, width = image.shape[:2]
    if width % 2 or height % 2:
        raise ShapeError(f"the 4:2:0 render needs even frame sizes, got {width}x{height}; use the RGB render")
    if luts.depth != 8:
        raise UsageError(f"the 4:2:0 render takes 8-bit tables, got {luts.depth}-bit ones")
    if matrix not in YUV_MATRICES:
        raise UsageError(f"matrix: expected one of {sorted(YUV_MATRICES)}, got {matrix!r}")
    if lut_backend() != "numba":
        raise UsageError("the 4:2:0 render needs numba; use the RGB render")
    check_shape("planes", planes.shape, (height * 3 // 2, width))
    if planes.dtype != np.uint8:
        raise ShapeError(f"planes: expected uint8 yuv420p values, got {planes.dtype}")
    check_shape("mask", np.shape(mask), (height, width))
    add_change = _compiled()
    source = np.ascontiguousarray(planes)
    out = source.copy()
    y, u, v = _views(source, width, height)
    oy, ou, ov = _views(out, width, height)
    alpha = np.ascontiguousarray(mask, dtype=np.float32)
    rows = np.flatnonzero((alpha > 0).any(axis=1))
    if rows.size:
        # Only the rows with foreground go through the tables (a band of whole rows is contiguous); a band
        # starts and ends on a 2x2 block boundary.
        band = slice(int(rows[0]) & ~1, (int(rows[-1]) | 1) + 1)
        before = np.ascontiguousarray(image[band])
        after = _buffer(before.shape)
        apply_filter_luts(before, luts, alpha[band], out=after)
        weights = _weights(matrix, full_range)
        add_change(y[band], u[band.start // 2 :], v[band.start // 2 :], alpha[band], before, after, weights, 0,
                   band.stop - band.start, oy[band], ou[band.start // 2 :], ov[band.start // 2 :])  # fmt: skip
    return out


_local = threading.local()


def _buffer(shape: tuple[int, ...]) -> np.ndarray:
    """A uint8 work array kept per thread (a fresh 1080p frame would page-fault 6 MB in every time)."""
    held = getattr(_local, "buffer", None)
    if held is None or held.size < int(np.prod(shape)):
        held = np.empty(int(np.prod(shape)), np.uint8)
        _local.buffer = held
    return held[: int(np.prod(shape))].reshape(shape)


def _views(planes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y (H, W), Cb and Cr (H/2, W/2) views of contiguous yuv420p values."""
    flat = planes.reshape(-1)
    area, quarter = width * height, width * height // 4
    half = (height // 2, width // 2)
    return (
        flat[:area].reshape(height, width),
        flat[area : area + quarter].reshape(half),
        flat[area + quarter :].reshape(half),
    )
