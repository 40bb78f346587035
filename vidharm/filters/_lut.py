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

With saturation 0 the chain is per channel to within 5e-7, and where that provably cannot move any level's
result by a level (checked for every level when the tables are built) it becomes one ``direct`` table per
channel, input level to output value: one table read per value.

Result: the integer output is within one level of ``round(apply_filters(image / peak) * peak)`` (8 and
16 bit), and the mask blend of :func:`~vidharm.filters.composite` is fused in, so pixels where the mask is 0
are copied bit for bit. The per-pixel pass is a numba kernel when numba is installed (``nogil``, so it runs
beside decode and encode threads; its table reads are explicit vector gathers, which numba does not emit by
itself), else the same arithmetic in numpy (several times slower).
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
_BLOCK = 8  # float32 lanes per vector gather (one AVX2 register)
_CHUNK = 256  # pixels per pass of the kernel (its buffers then stay in the L1 cache)


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
        direct: (3, levels) float32 in [0, peak], or None: with saturation 0 the whole chain is nearly per
            channel (the filter's ``1 / (1 + 1e-6) - 1`` gain still moves a value by up to 5e-7 towards its
            pixel's lightness), so each input level maps to one output value; this table holds it, and is
            built only where every level's possible reference outputs lie within 0.9 levels of it (checked
            for all levels when the tables are built), else None.
    """

    channel: np.ndarray
    saturation: float
    tone: np.ndarray
    exact_below: int
    exact_from: int
    tone_powers: tuple[float, float]
    depth: int
    direct: np.ndarray | None = None

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
        direct = _direct_table(channel, amount[4], amount[5], peak) if float(a[3]) == 0.0 else None
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
        direct=direct,
    )


_DIRECT_SPREAD = 0.9
"""Largest distance, in levels, from a direct-table value to any reference output it stands for (< 1)."""


def _direct_table(channel: np.ndarray, highlight: Tensor, shadow: Tensor, peak: float) -> np.ndarray | None:
    """Saturation 0 as one table per channel, input level to output value, or None where that is not exact.

    With amount 0 the saturation filter multiplies ``x - lightness`` by ``g = 1 / (1 + 1e-6) - 1`` (float32,
    about -1e-6) and adds it to ``x``. The lightness lies between ``x / 2`` and ``(1 + x) / 2``, so the result
    lies in ``[x - |g| x / 2, x + |g| (1 - x) / 2]``, widened here by the float32 rounding of the two steps.
    The tone curve is monotone, so its values at the interval's ends bound every reference output for that
    level; the table holds their midpoint, and is given up (None) if any level's half-spread exceeds
    :data:`_DIRECT_SPREAD` (steep curves near 0 or 1). Then ``round`` of the table value, blended or not, is
    within one level of the reference's.
    """
    one = np.float32(1.0)
    gain = abs(float((one / (one + np.float32(_EPS))) - one)) * 1.01
    x = channel.astype(np.float64)
    ulp = np.spacing(channel.astype(np.float32)).astype(np.float64) + np.spacing(np.float32(0.5))
    low = np.clip(x - gain * x / 2 - ulp, 0.0, 1.0).astype(np.float32)
    high = np.clip(x + gain * (1 - x) / 2 + ulp, 0.0, 1.0).astype(np.float32)
    low = np.maximum(np.nextafter(low, np.float32(-1)), np.float32(0))  # outward past the float32 rounding
    high = np.minimum(np.nextafter(high, np.float32(2)), one)
    ends = torch.from_numpy(np.stack([low, high])).view(1, 1, 2, -1)
    tone = _tone_curve(ends, highlight, shadow).view(2, *channel.shape).double().numpy() * peak
    if np.abs(tone[1] - tone[0]).max() / 2 > _DIRECT_SPREAD:
        return None
    return ((tone[0] + tone[1]) / 2).astype(np.float32)


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


def _gather_block_py(table: Any, index: Any, addend: Any, start: int, out: Any) -> None:
    """``out[q] = table[index[q] + addend[q]]`` for the :data:`_BLOCK` slots ``q`` from ``start``.

    ``index`` is an integer array, ``addend`` an int32 one. This is the meaning, and the numba fallback where
    the vector gather cannot be compiled; the kernel uses :func:`_make_gathers`' where it can.
    """
    for q in range(start, start + _BLOCK):
        out[q] = table[np.int64(index[q]) + np.int64(addend[q])]


def _gather_pairs_py(table: Any, index: Any, start: int, low: Any, high: Any) -> None:
    """``low[q], high[q] = table[index[q]], table[index[q] + 1]`` for the :data:`_BLOCK` slots from ``start``."""
    for q in range(start, start + _BLOCK):
        low[q] = table[index[q]]
        high[q] = table[index[q] + 1]


def _make_gathers(intrinsic_name: str) -> tuple[Any, Any]:  # pragma: no cover - needs numba; run by _kernel
    """:func:`_gather_block_py` and :func:`_gather_pairs_py` as LLVM vector gathers (numba intrinsics).

    numba's loop vectoriser leaves table reads scalar (its cost model declines gathers), and they dominated
    the kernel; an explicit gather of :data:`_BLOCK` values is 2-3 times faster on AVX2/AVX-512, and LLVM
    lowers it to scalar loads where the CPU has none. The pair gather reads ``table[i]`` and ``table[i + 1]``
    as one (unaligned) 64-bit element, halving the gathers of the interpolation. ``intrinsic_name``: the
    ``llvm.masked.gather`` prefix (see :data:`_GATHER_NAME`).
    """
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    i1, i32, i64, f32 = ir.IntType(1), ir.IntType(32), ir.IntType(64), ir.FloatType()

    def vector(element: Any) -> Any:
        return ir.VectorType(element, _BLOCK)

    def float_array(ty: Any) -> bool:
        return isinstance(ty, types.Array) and ty.dtype == types.float32

    def int_array(ty: Any) -> bool:
        return isinstance(ty, types.Array) and isinstance(ty.dtype, types.Integer)

    def data(context: Any, builder: Any, ty: Any, value: Any) -> Any:
        return context.make_array(ty)(context, builder, value).data

    def load_lanes(builder: Any, pointer: Any, start: Any, signed: bool) -> Any:
        """``_BLOCK`` integers from ``pointer[start]``, widened to int64."""
        element = pointer.type.pointee
        lanes = builder.load(builder.bitcast(builder.gep(pointer, [start]), vector(element).as_pointer()), align=1)
        if element.width == 64:
            return lanes
        return builder.sext(lanes, vector(i64)) if signed else builder.zext(lanes, vector(i64))

    def gather(builder: Any, base: Any, offsets: Any, element: Any, suffix: str) -> Any:
        """``_BLOCK`` values of type ``element`` at byte offsets from ``base`` (addresses as integers:
        llvmlite's GEP takes no vector of indices)."""
        start = builder.insert_element(ir.Constant(vector(i64), None), builder.ptrtoint(base, i64), ir.Constant(i32, 0))
        splat = builder.shuffle_vector(start, ir.Constant(vector(i64), None), ir.Constant(vector(i32), [0] * _BLOCK))
        pointers = builder.inttoptr(builder.add(splat, offsets), vector(element.as_pointer()))
        everything = ir.Constant(vector(i1), [1] * _BLOCK)
        fnty = ir.FunctionType(vector(element), [pointers.type, i32, everything.type, vector(element)])
        function = cgutils.get_or_insert_function(builder.module, fnty, intrinsic_name + suffix)
        return builder.call(function, [pointers, ir.Constant(i32, 4), everything, ir.Constant(vector(element), None)])

    def store_lanes(builder: Any, pointer: Any, start: Any, values: Any) -> None:
        builder.store(values, builder.bitcast(builder.gep(pointer, [start]), vector(f32).as_pointer()), align=1)

    def four(builder: Any, offsets: Any) -> Any:
        return builder.mul(offsets, ir.Constant(vector(i64), [4] * _BLOCK))

    @intrinsic
    def gather_block(typingctx: Any, table: Any, index: Any, addend: Any, start: Any, out: Any) -> Any:
        if not (float_array(table) and int_array(index) and isinstance(start, types.Integer) and float_array(out)):
            return None
        if not (isinstance(addend, types.Array) and addend.dtype == types.int32):
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            table_ty, index_ty, addend_ty, start_ty, out_ty = signature.args
            first = context.cast(builder, args[3], start_ty, types.int64)
            offsets = load_lanes(builder, data(context, builder, index_ty, args[1]), first, index_ty.dtype.signed)
            offsets = builder.add(offsets, load_lanes(builder, data(context, builder, addend_ty, args[2]), first, True))
            base = data(context, builder, table_ty, args[0])
            values = gather(builder, base, four(builder, offsets), f32, f".v{_BLOCK}f32.v{_BLOCK}p0")
            store_lanes(builder, data(context, builder, out_ty, args[4]), first, values)
            return context.get_dummy_value()

        return types.void(table, index, addend, start, out), codegen

    @intrinsic
    def gather_pairs(typingctx: Any, table: Any, index: Any, start: Any, low: Any, high: Any) -> Any:
        if not (float_array(table) and isinstance(index, types.Array) and index.dtype == types.int32):
            return None
        if not (isinstance(start, types.Integer) and float_array(low) and float_array(high)):
            return None

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            table_ty, index_ty, start_ty, low_ty, high_ty = signature.args
            first = context.cast(builder, args[2], start_ty, types.int64)
            offsets = load_lanes(builder, data(context, builder, index_ty, args[1]), first, True)
            base = data(context, builder, table_ty, args[0])
            pairs = gather(builder, base, four(builder, offsets), i64, f".v{_BLOCK}i64.v{_BLOCK}p0")
            # Little-endian: the low half of each 64-bit element is table[i] (the self-check of _compile_kernel
            # rejects this gather on a big-endian machine).
            lows = builder.bitcast(builder.trunc(pairs, vector(i32)), vector(f32))
            shifted = builder.lshr(pairs, ir.Constant(vector(i64), [32] * _BLOCK))
            highs = builder.bitcast(builder.trunc(shifted, vector(i32)), vector(f32))
            store_lanes(builder, data(context, builder, low_ty, args[3]), first, lows)
            store_lanes(builder, data(context, builder, high_ty, args[4]), first, highs)
            return context.get_dummy_value()

        return types.void(table, index, start, low, high), codegen

    return gather_block, gather_pairs


def _copy_outside_span_py(src_flat: Any, dst_flat: Any, mrow: Any, has_mask: bool, width: int) -> tuple[int, int]:
    """The span [j0, j1) of a row's pixels from its first to its last with mask > 0 (all of them without a
    mask); the values outside it are copied from ``src_flat`` to ``dst_flat`` (flat rows of interleaved RGB).

    Compiled inline into the kernels by :func:`_compile_kernel` (:data:`_copy_outside_span`)."""
    j0 = 0
    j1 = width
    if has_mask:
        zero = np.float32(0.0)
        while j0 < width and mrow[j0] <= zero:
            j0 += 1
        while j1 > j0 and mrow[j1 - 1] <= zero:
            j1 -= 1
    # Flat loops over views from 0: they vectorise.
    for t in range(3 * j0):
        dst_flat[t] = src_flat[t]
    src_tail = src_flat[3 * j1 :]
    dst_tail = dst_flat[3 * j1 :]
    for t in range(3 * (width - j1)):
        dst_tail[t] = src_tail[t]
    return j0, j1


def _blend_store_py(
    level: Any, value: Any, weight: Any, has_mask: bool, count: int, alpha: Any, target: Any, ceiling: Any
) -> None:
    """``target = round(level + (value - level) * clip(weight, 0, 1))`` for ``count`` pixels (3 values each),
    clamped to [0, ceiling]; without a mask ``round(value)``. ``alpha`` is a work buffer."""
    zero = np.float32(0.0)
    half = np.float32(0.5)
    one = np.float32(1.0)
    total = 3 * count
    if has_mask:
        for k in range(count):
            m = min(max(weight[k], zero), one)
            alpha[3 * k] = m
            alpha[3 * k + 1] = m
            alpha[3 * k + 2] = m
        for t in range(total):
            x = np.float32(level[t])
            target[t] = min(max(np.int32((value[t] - x) * alpha[t] + x + half), 0), ceiling)
    else:
        for t in range(total):
            target[t] = min(max(np.int32(value[t] + half), 0), ceiling)


# The kernels' shared steps and gathers, read by numba when it compiles them: set by _compile_kernel.
_copy_outside_span: Any = _copy_outside_span_py
_blend_store: Any = _blend_store_py
_gather_block: Any = _gather_block_py
_gather_pairs: Any = _gather_pairs_py


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
    """Rows [row0, row1) of the LUT render, for numba: per row, passes over flat buffers of the filtered span.

    The values stay interleaved (r, g, b, r, ...) as in the frame, so every pass but the saturation one is
    one contiguous loop that vectorises, and the table reads are explicit vector gathers (:data:`_gather_block`).
    Loops index views from 0 (``src[j0 + k]`` may be negative to the compiler, and numba's wrap-around for
    negative indices then keeps the loop scalar).
    """
    width = image.shape[1]
    levels = channel.shape[1]
    flat = np.ascontiguousarray(channel).reshape(-1)  # channel c of level v at c * levels + v
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
    # Buffers padded by a block: gathers work in whole blocks, and the padding always holds valid indices.
    span = 3 * _CHUNK + 2 * _BLOCK
    offset = np.empty(span, np.int32)
    for t in range(span):
        offset[t] = (t % 3) * levels
    value = np.zeros(span, np.float32)
    cell = np.zeros(span, np.int32)
    frac = np.zeros(span, np.float32)
    low = np.zeros(span, np.float32)
    high = np.zeros(span, np.float32)
    alpha = np.zeros(span, np.float32)
    flag = np.zeros(span, np.uint8)
    flags = flag.view(np.uint64)  # 8 flags at a time (span is a multiple of 8)
    steep = exact_below > 0 or exact_from < size
    # The steep intervals as values of x (the table's coordinate is warped).
    lo_x = np.float32(2.0 * (exact_below / size) ** 2) if exact_below <= size // 2 else half
    hi_x = np.float32(1.0 - 2.0 * (1.0 - exact_from / size) ** 2) if exact_from >= size // 2 else half
    for i in range(row0, row1):
        src_flat = image[i].reshape(-1)
        dst_flat = out[i].reshape(-1)
        j0, j1 = _copy_outside_span(src_flat, dst_flat, mask[i] if has_mask else mask[0], has_mask, width)
        # The span in chunks of _CHUNK pixels: the passes' buffers stay in the L1 cache beside the tables.
        for c0 in range(j0, j1, _CHUNK):
            c1 = min(c0 + _CHUNK, j1)
            count = c1 - c0
            total = 3 * count
            whole = total - total % _BLOCK  # gathers read the source in whole blocks: never past its end
            level = src_flat[3 * c0 : 3 * c1]
            target = dst_flat[3 * c0 : 3 * c1]
            # 1. per-channel table
            for t in range(0, whole, _BLOCK):
                _gather_block(flat, level, offset, t, value)
            for t in range(whole, total):
                value[t] = flat[np.int64(level[t]) + offset[t]]
            # 2. HSL saturation in float32, operation for operation as vidharm.filters._adjust._saturation (so the
            # result matches bit for bit: the tone curves can be steep enough to magnify a last-bit difference).
            for k in range(count):
                x0 = value[3 * k]
                x1 = value[3 * k + 1]
                x2 = value[3 * k + 2]
                cmax = max(x0, max(x1, x2))
                cmin = min(x0, min(x1, x2))
                light = (cmax + cmin) / two
                if boost:
                    delta = cmax - cmin
                    if light < half:
                        sat = delta / ((cmax + cmin) + eps)
                    else:
                        sat = delta / (((two - cmax) - cmin) + eps)
                    gain = one / ((sat if a + sat > one else keep) + eps) - one
                    y0 = x0 + (x0 - light) * gain
                    y1 = x1 + (x1 - light) * gain
                    y2 = x2 + (x2 - light) * gain
                else:
                    y0 = light + (x0 - light) * shrink
                    y1 = light + (x1 - light) * shrink
                    y2 = light + (x2 - light) * shrink
                value[3 * k] = min(max(y0, zero), one)
                value[3 * k + 1] = min(max(y1, zero), one)
                value[3 * k + 2] = min(max(y2, zero), one)
            # 3. tone table: the warped coordinate (square-root spacing towards 0 and 1, where the power curves are
            # steepest; one square root per value), then the two neighbouring samples. Flags mark the values in
            # intervals too steep to interpolate (rare: set branch-free here, looked at 8 at a time below).
            for t in range(total):
                y = value[t]
                below = y < half
                root = np.sqrt((y if below else one - y) * half)
                u = (root if below else one - root) * n
                iu = np.int32(u)
                cell[t] = iu
                frac[t] = u - np.float32(iu)
            if steep:
                for t in range(total):
                    y = value[t]
                    flag[t] = np.uint8(zero < y) * np.uint8(y < lo_x) + np.uint8(hi_x <= y) * np.uint8(y < one)
            for t in range(0, total, _BLOCK):
                _gather_pairs(tone, cell, t, low, high)
            # 3b. exact values where the table is too steep to interpolate
            if steep:
                for block in range((total + 7) // 8):
                    if flags[block] == 0:
                        continue
                    for t in range(8 * block, min(8 * block + 8, total)):
                        if flag[t] == 0:
                            continue
                        x = value[t]
                        # float32, as the reference computes it: near 0 and 1 the curves are steep enough that
                        # its rounding (1 - x + 1e-9 == 1 for tiny x) decides the level. float64 powers rounded
                        # once to float32: the correctly rounded float32 power.
                        hl = np.float32(np.float64((one - x) + pow_eps) ** p_high)
                        hl = one - min(max(hl, zero), one)
                        sh = np.float32(np.float64(min(max(hl, zero), one) + pow_eps) ** p_shadow)
                        v = min(max(sh, zero), one) * top
                        low[t] = v  # interpolating between equal values gives v exactly
                        high[t] = v
            # 4. interpolate, then mask blend and round
            for t in range(total):
                value[t] = low[t] + (high[t] - low[t]) * frac[t]
            weight = mask[i][c0:c1] if has_mask else mask[0]
            _blend_store(level, value, weight, has_mask, count, alpha, target, ceiling)


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


def _render_direct(
    image: Any, mask: Any, has_mask: bool, direct: Any, peak: float, out: Any, row0: int, row1: int
) -> None:  # pragma: no cover - compiled by numba; its numpy twin is _render_direct_numpy
    """Rows [row0, row1) with a direct table (``FilterLuts.direct``: saturation 0): a gather, blend and round."""
    width = image.shape[1]
    levels = direct.shape[1]
    flat = np.ascontiguousarray(direct).reshape(-1)  # channel c of level v at c * levels + v
    ceiling = np.int32(peak)
    span = 3 * _CHUNK + 2 * _BLOCK
    offset = np.empty(span, np.int32)
    for t in range(span):
        offset[t] = (t % 3) * levels
    value = np.zeros(span, np.float32)
    alpha = np.zeros(span, np.float32)
    for i in range(row0, row1):
        src_flat = image[i].reshape(-1)
        dst_flat = out[i].reshape(-1)
        j0, j1 = _copy_outside_span(src_flat, dst_flat, mask[i] if has_mask else mask[0], has_mask, width)
        for c0 in range(j0, j1, _CHUNK):
            c1 = min(c0 + _CHUNK, j1)
            count = c1 - c0
            total = 3 * count
            whole = total - total % _BLOCK
            level = src_flat[3 * c0 : 3 * c1]
            target = dst_flat[3 * c0 : 3 * c1]
            for t in range(0, whole, _BLOCK):
                _gather_block(flat, level, offset, t, value)
            for t in range(whole, total):
                value[t] = flat[np.int64(level[t]) + offset[t]]
            weight = mask[i][c0:c1] if has_mask else mask[0]
            _blend_store(level, value, weight, has_mask, count, alpha, target, ceiling)


def _render_direct_numpy(
    image: np.ndarray,
    mask: np.ndarray,
    has_mask: bool,
    direct: np.ndarray,
    peak: float,
    out: np.ndarray,
    row0: int,
    row1: int,
) -> None:
    """The same arithmetic as :func:`_render_direct`, vectorised with numpy (used when numba is missing)."""
    src = image[row0:row1]
    m = np.clip(mask[row0:row1], 0, 1).astype(np.float32)[..., None] if has_mask else np.float32(1.0)
    value = np.stack([direct[c][src[..., c]] for c in range(3)], axis=-1)
    level = src.astype(np.float32)
    result = np.clip(((value - level) * m + level + np.float32(0.5)).astype(np.int64), 0, int(peak))
    if has_mask:
        result = np.where((mask[row0:row1] <= 0)[..., None], src, result)
    out[row0:row1] = result


_Kernel = Callable[..., None]
_kernel_lock = threading.Lock()
_kernel_cache: list[tuple[str, _Kernel, _Kernel]] = []  # backend, rows kernel, direct-table kernel
_pools: dict[int, ThreadPoolExecutor] = {}


def _kernels() -> tuple[str, _Kernel, _Kernel]:
    """The backend's name, its :func:`_render_rows` and its :func:`_render_direct` (compiled on first use)."""
    with _kernel_lock:
        if not _kernel_cache:
            try:
                import numba
            except ImportError:
                log.info("numba is not installed: the LUT render runs in numpy (several times slower)")
                _kernel_cache.append(("numpy", _render_rows_numpy, _render_direct_numpy))
            else:
                _kernel_cache.append(("numba", *_compile_kernel(numba)))
        return _kernel_cache[0]


def _kernel() -> tuple[str, _Kernel]:
    """The backend's name and its :func:`_render_rows` (numba-compiled, or the numpy twin)."""
    name, rows, _ = _kernels()
    return name, rows


# LLVM's gather, mangled below for opaque pointers ("p0"); LLVM's IR reader re-mangles an intrinsic's name for
# the types it is called with, so the same names serve the typed pointers of older LLVMs.
_GATHER_NAME = "llvm.masked.gather"


def _compile_kernel(numba: Any) -> tuple[_Kernel, _Kernel]:
    """Compile :func:`_render_rows` and :func:`_render_direct` with the vector gathers, else scalar ones.

    The compiled kernels are checked on a small frame against the numpy twin (to one level); a numba whose
    llvmlite cannot build the intrinsic gets the scalar gather (correct, about 1.5 times slower).
    """
    global _gather_block, _gather_pairs, _copy_outside_span, _blend_store
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2, 21, 3), dtype=np.uint8)
    luts = build_filter_luts([0.1, -0.2, 0.3, 0.5, -0.2, 0.1], [0.5] * 4)
    powers = np.array(luts.tone_powers, np.float64)
    args: tuple[Any, ...] = (np.zeros((1, 1), np.float32), False, luts.channel, luts.saturation, luts.tone)
    args += (luts.exact_below, luts.exact_from, powers, float(luts.peak))
    want = np.empty_like(image)
    twin: _Kernel = _render_rows_numpy
    twin(image, *args, want, 0, 2)
    direct = np.linspace(0, 255, 768, dtype=np.float32).reshape(3, 256)
    want_direct = np.empty_like(image)
    _render_direct_numpy(image, args[0], False, direct, 255.0, want_direct, 0, 2)
    _copy_outside_span = numba.njit(inline="always")(_copy_outside_span_py)
    _blend_store = numba.njit(inline="always")(_blend_store_py)
    scalar = (numba.njit(inline="always")(_gather_block_py), numba.njit(inline="always")(_gather_pairs_py))
    # The fallback is not cached: the cache would hand it the vector build (same function, same types).
    candidates = [(lambda: _make_gathers(_GATHER_NAME), True), (lambda: scalar, False)]
    for make, cache in candidates:
        try:
            _gather_block, _gather_pairs = make()  # read by numba when it compiles _render_rows, just below
            options = {"nogil": True, "cache": cache, "error_model": "numpy", "boundscheck": False}
            rows = numba.njit(**options)(_render_rows)
            got = np.empty_like(image)
            rows(image, *args, got, 0, 2)
            direct_kernel = numba.njit(**options)(_render_direct)
            got_direct = np.empty_like(image)
            direct_kernel(image, args[0], False, direct, 255.0, got_direct, 0, 2)
        except Exception as error:  # noqa: BLE001 - any compile failure means: try the next gather
            log.debug("LUT kernel: vector gathers unavailable (%s)", error)
            continue
        worst = max(np.abs(got.astype(np.int64) - want).max(), np.abs(got_direct.astype(np.int64) - want_direct).max())
        if worst <= 1:
            return rows, direct_kernel
    raise UsageError("the numba LUT kernel failed its self-check; uninstall numba to use the numpy path")


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
    _, rows, direct = _kernels()
    common: tuple[Any, ...]
    if luts.direct is not None:  # saturation 0: one gather per value
        kernel, common = direct, (image, alpha, has_mask, luts.direct, float(luts.peak), out)
    else:
        tables = (luts.channel, luts.saturation, luts.tone, luts.exact_below, luts.exact_from)
        powers = np.array(luts.tone_powers, np.float64)
        kernel, common = rows, (image, alpha, has_mask, *tables, powers, float(luts.peak), out)
    bands = min(threads, max(1, height // 16))
    if bands == 1:
        kernel(*common, 0, height)
        return out
    edges = np.linspace(0, height, bands + 1).astype(int)
    futures = [_pool(bands).submit(kernel, *common, int(edges[k]), int(edges[k + 1])) for k in range(bands)]
    for future in futures:
        future.result()
    return out
