"""The six filters as per-frame lookup tables: a fast, integer-in, integer-out render of :func:`apply_filters`.

Given one frame's arguments and statistics the chain is a fixed colour function, so it is evaluated once per
frame into tables and applied per pixel:

1. ``channel``: temperature, brightness and contrast act on each channel alone, so one 1D table per channel,
   indexed by the integer level, holds their exact float32 result (computed by the filter kernels themselves
   on a ramp of all levels, so the tables cannot drift from :func:`~vidharm.filters.apply_filters`).
2. saturation mixes the channels (HSL). It is computed exactly, in float32, per pixel: that arithmetic
   vectorises, where a 3D table would need twelve dependent table reads per pixel for an approximation.
3. ``tone``: highlight then shadow act on each channel alone (the same curve for all three), so one finely
   sampled table with linear interpolation holds them, scaled to the output's peak. The samples are spaced
   by a square-root warp towards 0 and 1 (``x = 2 w^2`` below 1/2), where these power curves are steepest;
   where interpolation would still be off by more than :data:`TONE_TOLERANCE` levels (amounts near +-1),
   the values are evaluated exactly instead.

Result: the integer output is within one level of ``round(apply_filters(image / peak) * peak)`` (8 and
16 bit), and the mask blend of :func:`~vidharm.filters.composite` is fused in, so pixels where the mask is 0
are copied bit for bit. The per-pixel pass is a numba kernel when numba is installed (``nogil``, so it runs
beside decode and encode threads), else the same arithmetic in numpy (several times slower).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidharm.errors import InputError, ShapeError, UsageError, check_finite, check_shape
from vidharm.filters._adjust import _brightness, _contrast, _highlight, _shadow, _temperature
from vidharm.filters._chain import NUM_ARGS, NUM_STATS

__all__ = ["FilterLuts", "TONE_TOLERANCE", "build_filter_luts", "apply_filter_luts", "lut_backend"]

log = logging.getLogger(__name__)

TONE_TOLERANCE = 0.05
"""Largest interpolation error of the tone table, in output levels, before an interval is evaluated exactly."""

# Tone table intervals per output depth: fine enough that interpolation error is far below a level.
_TONE_SIZE = {8: 8192, 16: 65536}
_EPS = 1e-6  # the saturation filter's guard, as in vidharm.filters._adjust
_POW_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class FilterLuts:
    """One frame's filter chain as tables (see the module docstring); build with :func:`build_filter_luts`.

    Attributes:
        channel: (3, levels) float32 in [0, 1]: temperature, brightness and contrast of each input level.
        saturation: the clamped saturation amount in [-1, 1].
        tone: (size + 2,) float32 in [0, peak]: highlight then shadow, times the peak, sampled at the warped
            points ``2 w^2`` (w < 1/2) and ``1 - 2 (1 - w)^2`` (w >= 1/2) for ``w = k / size`` (the last entry
            repeated, so interpolation needs no bounds check).
        exact_below: tone intervals below this index are evaluated exactly (0: none).
        exact_from: tone intervals from this index on are evaluated exactly (``size``: none).
        tone_powers: the highlight and shadow exponents ``1 + a_highlight`` and ``1 - a_shadow``.
        depth: 8 or 16, the integer depth of the frames the tables take and give.
    """

    channel: np.ndarray
    saturation: float
    tone: np.ndarray
    exact_below: int
    exact_from: int
    tone_powers: tuple[float, float]
    depth: int

    @property
    def peak(self) -> int:
        """The largest level: 255 or 65535."""
        return (1 << self.depth) - 1


def _as_row(values: Sequence[float] | Tensor | np.ndarray, size: int, name: str) -> list[float]:
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().reshape(-1).tolist()
    elif isinstance(values, np.ndarray):
        values = values.astype(np.float64).reshape(-1).tolist()
    try:
        row = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ShapeError(f"{name}: expected {size} numbers, got {values!r}") from None
    check_shape(name, (len(row),), (size,))
    check_finite(name, row)
    return row


def _tone_curve(x: Tensor, highlight: Tensor, shadow: Tensor) -> Tensor:
    return _shadow(_highlight(x, highlight), shadow)


def build_filter_luts(
    args: Sequence[float] | Tensor | np.ndarray, stats: Sequence[float] | Tensor | np.ndarray, depth: int = 8
) -> FilterLuts:
    """Evaluate one frame's filter chain into tables, through the filter kernels themselves.

    Args:
        args: 6 raw filter arguments in :data:`~vidharm.filters.FILTER_NAMES` order (clamped to [-1, 1] here).
        stats: 4 statistics ``[mean_r, mean_g, mean_b, contrast_pivot]`` in [0, 1] (see
            :func:`~vidharm.filters.measure_filter_stats`).
        depth: 8 for uint8 frames (levels 0-255) or 16 for uint16 frames (levels 0-65535).

    Returns:
        The tables for :func:`apply_filter_luts`.

    Raises:
        ShapeError: ``args`` is not 6 numbers or ``stats`` not 4.
        InputError: a value is NaN or infinite.
        UsageError: ``depth`` is not 8 or 16.

    Example:
        >>> luts = build_filter_luts([0.0, 0.3, 0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5])
        >>> luts.channel.shape, round(float(luts.channel[0, 100]), 4)
        ((3, 256), 0.5602)
    """
    if depth not in _TONE_SIZE:
        raise UsageError(f"depth: expected 8 or 16 (bits per channel), got {depth!r}")
    a = torch.tensor(_as_row(args, NUM_ARGS, "args"), dtype=torch.float32).clamp(-1, 1)
    s = torch.tensor(_as_row(stats, NUM_STATS, "stats"), dtype=torch.float32)
    amount = [a[i].view(1, 1, 1, 1) for i in range(NUM_ARGS)]
    levels = 1 << depth
    # The per-pixel path divides by the peak in float32, so the ramp is made the same way.
    ramp = (torch.arange(levels, dtype=torch.float32) / float(levels - 1)).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    with torch.inference_mode():
        z = _temperature(ramp, amount[0], s[:3].view(1, 3, 1, 1))
        z = _brightness(z, amount[1])
        z = _contrast(z, amount[2], s[3].view(1, 1, 1, 1))
        channel = z[0, :, 0, :].contiguous().numpy()

        size = _TONE_SIZE[depth]
        peak = float(levels - 1)
        grid = _unwarp(np.arange(size + 1, dtype=np.float64) / size).astype(np.float32)
        tone = _tone_curve(torch.from_numpy(grid).view(1, 1, 1, -1), amount[4], amount[5]).view(-1).double() * peak
        table = np.empty(size + 2, np.float32)
        table[: size + 1] = tone.numpy()
        table[size + 1] = table[size]
        err = _interval_errors(table, size, peak, amount[4], amount[5])
    bad = np.flatnonzero(err > TONE_TOLERANCE)
    low = bad[bad < size // 2]
    high = bad[bad >= size // 2]
    exact_below = int(low.max()) + 1 if low.size else 0
    exact_from = int(high.min()) if high.size else size
    return FilterLuts(
        channel=channel,
        saturation=float(a[3]),
        tone=table,
        exact_below=exact_below,
        exact_from=exact_from,
        tone_powers=(float(1 + a[4]), float(1 - a[5])),  # float32 values, as torch's
        depth=depth,
    )


def _warp(x: np.ndarray) -> np.ndarray:
    """Tone-table coordinate in [0, 1] of a value x in [0, 1], in float32 as the kernel computes it."""
    x = x.astype(np.float32)
    half = np.float32(0.5)
    low = np.sqrt(x * half)
    high = np.float32(1) - np.sqrt((np.float32(1) - x) * half)
    return np.where(x < half, low, high)


def _unwarp(w: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_warp`: ``2 w^2`` below 1/2, ``1 - 2 (1 - w)^2`` above."""
    return np.where(w < 0.5, 2 * w * w, 1 - 2 * (1 - w) * (1 - w))


def _interval_errors(table: np.ndarray, size: int, peak: float, highlight: Tensor, shadow: Tensor) -> np.ndarray:
    """Largest |interpolated - exact| tone value per table interval, in output levels."""
    err = np.zeros(size)
    # Midpoints of every interval, and dense samples in the four outermost ones at each end.
    mids = np.arange(size) + 0.5
    inner = np.linspace(0.0, 1.0, 34)[1:-1]
    outer_idx = np.concatenate([np.arange(4), np.arange(size - 4, size)])
    dense = (outer_idx[:, None] + inner[None, :]).ravel()
    x = _unwarp(np.concatenate([mids, dense]) / size).astype(np.float32)
    u = _warp(x).astype(np.float64) * size  # where the kernel looks the float32 value up
    index = np.clip(u.astype(np.int64), 0, size - 1)
    frac = u - index
    interp = table[index] + (table[index + 1] - table[index]) * frac
    exact = _tone_curve(torch.from_numpy(x).view(1, 1, 1, -1), highlight, shadow).view(-1).double()
    diff = np.abs(interp - exact.numpy() * peak)
    np.maximum.at(err, index, diff)
    return err


def _render_rows(
    image: Any,
    mask: Any,
    has_mask: bool,
    channel: Any,
    saturation: float,
    tone: Any,
    exact_below: int,
    exact_from: int,
    powers: Any,
    peak: float,
    out: Any,
    row0: int,
    row1: int,
) -> None:  # pragma: no cover - compiled by numba; its numpy twin is _render_rows_numpy
    """Rows [row0, row1) of the LUT render; plain loops for numba (each loop is simple enough to vectorise)."""
    width = image.shape[1]
    size = tone.shape[0] - 2
    n = np.float32(size)
    top = np.float32(peak)
    ceiling = np.int32(peak)
    eps = np.float32(_EPS)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    one = np.float32(1.0)
    two = np.float32(2.0)
    a = np.float32(saturation)
    boost = saturation >= 0.0
    keep = one - a
    pow_eps = np.float32(_POW_EPS)
    p_high = powers[0]
    p_shadow = powers[1]
    shrink = one + a
    c0 = channel[0]
    c1 = channel[1]
    c2 = channel[2]
    buf = np.empty((6, width), np.float32)
    slot = np.empty(width, np.int64)
    steep = exact_below > 0 or exact_from < size
    # The steep intervals as values of x (the table's coordinate is warped).
    lo_x = np.float32(2.0 * (exact_below / size) ** 2) if exact_below <= size // 2 else half
    hi_x = np.float32(1.0 - 2.0 * (1.0 - exact_from / size) ** 2) if exact_from >= size // 2 else half
    r = buf[0]
    g = buf[1]
    b = buf[2]
    ur = buf[3]
    ug = buf[4]
    ub = buf[5]
    for i in range(row0, row1):
        src = image[i]
        dst = out[i]
        j0 = 0
        j1 = width
        if has_mask:
            mrow = mask[i]
            while j0 < width and mrow[j0] <= zero:
                j0 += 1
            while j1 > j0 and mrow[j1 - 1] <= zero:
                j1 -= 1
        for j in range(j0):
            dst[j, 0] = src[j, 0]
            dst[j, 1] = src[j, 1]
            dst[j, 2] = src[j, 2]
        for j in range(j1, width):
            dst[j, 0] = src[j, 0]
            dst[j, 1] = src[j, 1]
            dst[j, 2] = src[j, 2]
        count = j1 - j0
        # 1. per-channel table
        for k in range(count):
            r[k] = c0[src[j0 + k, 0]]
            g[k] = c1[src[j0 + k, 1]]
            b[k] = c2[src[j0 + k, 2]]
        # 2. HSL saturation in float32, operation for operation as vidharm.filters._adjust._saturation (so the
        # result matches bit for bit: the tone curves can be steep enough to magnify a last-bit difference).
        for k in range(count):
            x0 = r[k]
            x1 = g[k]
            x2 = b[k]
            cmax = max(x0, max(x1, x2))
            cmin = min(x0, min(x1, x2))
            delta = cmax - cmin
            light = (cmax + cmin) / two
            if light < half:
                sat = delta / ((cmax + cmin) + eps)
            else:
                sat = delta / (((two - cmax) - cmin) + eps)
            if boost:
                gain = one / ((sat if a + sat > one else keep) + eps) - one
                y0 = x0 + (x0 - light) * gain
                y1 = x1 + (x1 - light) * gain
                y2 = x2 + (x2 - light) * gain
            else:
                y0 = light + (x0 - light) * shrink
                y1 = light + (x1 - light) * shrink
                y2 = light + (x2 - light) * shrink
            # Clamped values stay for the exact path; the tone table is indexed by their warped coordinate
            # (square-root spacing towards 0 and 1, where the power curves are steepest).
            y0 = min(max(y0, zero), one)
            y1 = min(max(y1, zero), one)
            y2 = min(max(y2, zero), one)
            r[k] = y0
            g[k] = y1
            b[k] = y2
            ur[k] = (np.sqrt(y0 * half) if y0 < half else one - np.sqrt((one - y0) * half)) * n
            ug[k] = (np.sqrt(y1 * half) if y1 < half else one - np.sqrt((one - y1) * half)) * n
            ub[k] = (np.sqrt(y2 * half) if y2 < half else one - np.sqrt((one - y2) * half)) * n
        # 3. tone table, in place of the coordinates
        for c in range(3):
            row = buf[3 + c]
            for k in range(count):
                u = row[k]
                iu = np.int32(u)
                f = u - np.float32(iu)
                row[k] = tone[iu] + (tone[iu + 1] - tone[iu]) * f
        # 3b. exact values where the table is too steep to interpolate: indices first, so that the powers are
        # computed for those values only (a loop with a branch around them could be vectorised, speculatively).
        if steep:
            for c in range(3):
                found = 0
                for k in range(count):
                    x = buf[c, k]
                    slot[found] = k
                    found += (zero < x < lo_x) or (hi_x <= x < one)
                for q in range(found):
                    k = slot[q]
                    x = buf[c, k]
                    # float32, as the reference computes it: near 0 and 1 the curves are steep enough that
                    # its rounding (1 - x + 1e-9 == 1 for tiny x) decides the level. float64 powers rounded
                    # once to float32: the correctly rounded float32 power.
                    hl = np.float32(np.float64((one - x) + pow_eps) ** p_high)
                    hl = one - min(max(hl, zero), one)
                    sh = np.float32(np.float64(min(max(hl, zero), one) + pow_eps) ** p_shadow)
                    buf[3 + c, k] = min(max(sh, zero), one) * top
        # 4. mask blend, round
        if has_mask:
            mrow = mask[i]
            for k in range(count):
                j = j0 + k
                m = min(max(mrow[j], zero), one)
                x = np.float32(src[j, 0])
                dst[j, 0] = min(max(np.int32((ur[k] - x) * m + x + half), 0), ceiling)
                x = np.float32(src[j, 1])
                dst[j, 1] = min(max(np.int32((ug[k] - x) * m + x + half), 0), ceiling)
                x = np.float32(src[j, 2])
                dst[j, 2] = min(max(np.int32((ub[k] - x) * m + x + half), 0), ceiling)
        else:
            for k in range(count):
                j = j0 + k
                dst[j, 0] = min(max(np.int32(ur[k] + half), 0), ceiling)
                dst[j, 1] = min(max(np.int32(ug[k] + half), 0), ceiling)
                dst[j, 2] = min(max(np.int32(ub[k] + half), 0), ceiling)


def _render_rows_numpy(
    image: np.ndarray,
    mask: np.ndarray,
    has_mask: bool,
    channel: np.ndarray,
    saturation: float,
    tone: np.ndarray,
    exact_below: int,
    exact_from: int,
    powers: np.ndarray,
    peak: float,
    out: np.ndarray,
    row0: int,
    row1: int,
) -> None:
    """The same arithmetic as :func:`_render_rows`, vectorised with numpy (used when numba is missing)."""
    src = image[row0:row1]
    size = tone.shape[0] - 2
    x = [channel[c][src[..., c]] for c in range(3)]
    one, two, eps = np.float32(1.0), np.float32(2.0), np.float32(_EPS)
    a = np.float32(saturation)
    cmax = np.maximum(np.maximum(x[0], x[1]), x[2])
    cmin = np.minimum(np.minimum(x[0], x[1]), x[2])
    delta = cmax - cmin
    light = (cmax + cmin) / two
    sat = np.where(light < 0.5, delta / ((cmax + cmin) + eps), delta / (((two - cmax) - cmin) + eps))
    gain = one / (np.where(a + sat > one, sat, one - a) + eps) - one
    m = np.clip(mask[row0:row1], 0, 1).astype(np.float32) if has_mask else np.float32(1.0)
    result = np.empty_like(src)
    for c in range(3):
        y = x[c] + (x[c] - light) * gain if saturation >= 0 else light + (x[c] - light) * (one + a)
        y = np.clip(y, 0, 1)
        u = _warp(y) * np.float32(size)
        iu = np.minimum(u.astype(np.int64), size)
        v = tone[iu] + (tone[iu + 1] - tone[iu]) * (u - iu)
        steep = ((u > 0) & (u < exact_below)) | ((u >= exact_from) & (u < size))
        if steep.any():
            xs = y[steep]
            high = ((one - xs + np.float32(_POW_EPS)).astype(np.float64) ** powers[0]).astype(np.float32)
            hl = one - np.clip(high, 0, 1)
            sh = ((np.clip(hl, 0, 1) + np.float32(_POW_EPS)).astype(np.float64) ** powers[1]).astype(np.float32)
            sh = np.clip(sh, 0, 1)
            v[steep] = sh * np.float32(peak)
        level = src[..., c].astype(np.float32)
        result[..., c] = np.clip(((v - level) * m + level + np.float32(0.5)).astype(np.int64), 0, int(peak))
    if has_mask:
        result = np.where((mask[row0:row1] <= 0)[..., None], src, result)
    out[row0:row1] = result


_Kernel = Callable[..., None]
_kernel_lock = threading.Lock()
_kernel_cache: list[tuple[str, _Kernel]] = []
_pools: dict[int, ThreadPoolExecutor] = {}


def _kernel() -> tuple[str, _Kernel]:
    with _kernel_lock:
        if not _kernel_cache:
            try:
                import numba
            except ImportError:
                log.info("numba is not installed: the LUT render runs in numpy (several times slower)")
                _kernel_cache.append(("numpy", _render_rows_numpy))
            else:
                jitted = numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)(_render_rows)
                _kernel_cache.append(("numba", jitted))
        return _kernel_cache[0]


def lut_backend() -> str:
    """``"numba"`` when the compiled kernel is available, else ``"numpy"``.

    Example:
        >>> lut_backend() in ("numba", "numpy")
        True
    """
    return _kernel()[0]


def _pool(threads: int) -> ThreadPoolExecutor:
    with _kernel_lock:
        if threads not in _pools:
            _pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vidharm-lut")
        return _pools[threads]


def apply_filter_luts(
    image: np.ndarray,
    luts: FilterLuts,
    mask: np.ndarray | None = None,
    *,
    threads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply one frame's tables to an integer RGB frame, blended over it with ``mask``.

    Equals ``round(composite(apply_filters(x, args, stats), x, mask) * peak)`` with ``x = image / peak`` to
    within one level; where ``mask`` is 0 the result is ``image`` bit for bit.

    Args:
        image: (H, W, 3) RGB, uint8 for 8-bit tables or uint16 for 16-bit ones.
        luts: the frame's tables (:func:`build_filter_luts`).
        mask: (H, W) float alpha in [0, 1] (values outside are clipped), or None for no blend (all filtered).
        threads: row bands rendered in parallel (the kernel releases the GIL); 1 renders in the caller.
        out: (H, W, 3) array of ``image``'s dtype to write into (not ``image`` itself), or None for a new one.

    Returns:
        (H, W, 3) array of ``image``'s dtype.

    Raises:
        ShapeError: ``image`` is not (H, W, 3), or ``mask``/``out`` do not match it.
        InputError: ``image``'s dtype does not match the tables' depth.
        UsageError: ``threads`` < 1, or ``out`` is ``image``.

    Example:
        >>> luts = build_filter_luts([0.0, 0.3, 0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5])
        >>> image = np.full((2, 2, 3), 100, np.uint8)
        >>> apply_filter_luts(image, luts, np.array([[1, 0], [0.5, 0]], np.float32))[..., 0].tolist()
        [[143, 100], [121, 100]]
    """
    want = np.uint8 if luts.depth == 8 else np.uint16
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        raise ShapeError(f"image: expected an (H, W, 3) RGB array, got {getattr(image, 'shape', type(image))}")
    if image.dtype != want:
        raise InputError(
            f"image: the tables are for {luts.depth}-bit frames ({np.dtype(want).name}), got {image.dtype}; "
            f"build them with depth={8 if image.dtype == np.uint8 else 16}"
        )
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads: expected an integer >= 1, got {threads!r}")
    height, width = image.shape[:2]
    image = np.ascontiguousarray(image)
    has_mask = mask is not None
    if mask is None:
        alpha = np.zeros((1, 1), np.float32)
    else:
        check_shape("mask", np.shape(mask), (height, width))
        alpha = np.ascontiguousarray(mask, dtype=np.float32)
    if out is None:
        out = np.empty_like(image)
    else:
        check_shape("out", out.shape, (height, width, 3))
        if out.dtype != image.dtype or not out.flags.c_contiguous:
            raise UsageError(f"out: expected a C-contiguous {image.dtype} array, got {out.dtype}")
        if np.shares_memory(out, image):
            raise UsageError("out: must not overlap image; pass a separate array")
    _, kernel = _kernel()
    tables = (luts.channel, luts.saturation, luts.tone, luts.exact_below, luts.exact_from)
    common = (image, alpha, has_mask, *tables, np.array(luts.tone_powers, np.float64), float(luts.peak), out)
    bands = min(threads, max(1, height // 16))
    if bands == 1:
        kernel(*common, 0, height)
        return out
    edges = np.linspace(0, height, bands + 1).astype(int)
    futures = [_pool(bands).submit(kernel, *common, int(edges[k]), int(edges[k + 1])) for k in range(bands)]
    for future in futures:
        future.result()
    return out
