"""Tests for the lookup-table render of the filter chain (vidharm/filters/_lut.py): equal to apply_filters."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from helpers import shared_path

import vidharm.filters._lut as lut_module
from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.filters import (
    FilterLuts,
    apply_filter_luts,
    apply_filters,
    build_filter_luts,
    composite,
    lut_backend,
    measure_filter_stats,
)

BACKENDS = ["numba", "numpy"]
NUMPY_KERNELS = [("numpy", lut_module._render_rows_numpy, lut_module._render_direct_numpy)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the compiled kernel and again with its numpy twin."""
    if request.param == "numba":
        pytest.importorskip("numba")
        assert lut_backend() == "numba"
    else:
        monkeypatch.setattr(lut_module, "_kernel_cache", NUMPY_KERNELS)
    yield request.param


def _reference(image: np.ndarray, args: list[float], stats: list[float], mask: np.ndarray | None = None) -> np.ndarray:
    """What the exact torch path renders: apply_filters, composite, round to the image's levels."""
    peak = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / peak
    out = apply_filters(x, torch.tensor([args]), torch.tensor([stats]))
    if mask is not None:
        out = composite(out, x, torch.from_numpy(mask)[None, None])
    return out[0].permute(1, 2, 0).mul(peak).round().clamp(0, peak).numpy().astype(image.dtype)


def _stats(image: np.ndarray, args: list[float]) -> list[float]:
    peak = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / peak
    return measure_filter_stats(x, torch.tensor([args])).view(-1).tolist()


def _levels_off(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(got.astype(np.int64) - want.astype(np.int64))


def _random_image(seed: int, shape: tuple[int, int] = (48, 64), dtype: type = np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    peak = np.iinfo(dtype).max
    # Smooth colour fields plus noise plus pure black/white/grey pixels: every branch of the chain is hit.
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    base = np.stack([np.sin(xx * 7 + seed), np.cos(yy * 5 - seed), np.sin((xx + yy) * 3)], axis=-1) * 0.5 + 0.5
    image = np.clip(base + rng.normal(0, 0.15, base.shape), 0, 1)
    image[0, :8] = 0.0
    image[1, :8] = 1.0
    image[2, :8] = 0.5
    return np.round(image * peak).astype(dtype)


ARG_CASES = [
    [0.0] * 6,
    [0.1, -0.2, 0.3, 0.5, -0.2, 0.1],
    [-0.3, 0.4, -0.5, -0.6, 0.4, -0.4],
    [0.3, 0.2, 0.5, 0.9, -0.95, 0.97],  # steep tone curves at both ends: exact evaluation there
    [1.5, -1.5, 1.2, 1.3, 1.1, -1.4],  # raw arguments outside [-1, 1]: clamped, as apply_filters does
]


@pytest.mark.parametrize("args", ARG_CASES)
def test_within_one_level_of_apply_filters_8bit(args: list[float], backend: str) -> None:
    image = _random_image(1)
    stats = _stats(image, args)
    got = apply_filter_luts(image, build_filter_luts(args, stats))
    diff = _levels_off(got, _reference(image, args, stats))
    assert diff.max() <= 1
    assert diff.mean() < 0.01


@pytest.mark.parametrize("seed", range(6))
def test_random_arguments_within_one_level(seed: int, backend: str) -> None:
    rng = np.random.default_rng(100 + seed)
    image = _random_image(seed)
    args = rng.uniform(-1.2, 1.2, 6).tolist()
    stats = _stats(image, args)
    diff = _levels_off(apply_filter_luts(image, build_filter_luts(args, stats)), _reference(image, args, stats))
    assert diff.max() <= 1


@pytest.mark.parametrize("args", ARG_CASES[1:4])
def test_within_one_level_16bit(args: list[float], backend: str) -> None:
    image = _random_image(2, (24, 32), np.uint16)
    stats = _stats(image, args)
    luts = build_filter_luts(args, stats, depth=16)
    got = apply_filter_luts(image, luts)
    assert got.dtype == np.uint16
    assert _levels_off(got, _reference(image, args, stats)).max() <= 1


def test_on_a_real_frame_within_one_level() -> None:
    cv2 = pytest.importorskip("cv2")
    path = shared_path("data", "video", "frames", "blackswan", "00010.jpg")
    image = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
    for args in ([0.2, -0.3, 0.4, 0.5, 0.3, 0.35], [-0.2, 0.25, -0.3, -0.4, -0.2, 0.2]):
        stats = _stats(image, args)
        diff = _levels_off(apply_filter_luts(image, build_filter_luts(args, stats)), _reference(image, args, stats))
        assert diff.max() <= 1 and diff.mean() < 0.001, (diff.max(), diff.mean())


def test_soft_mask_blend_and_untouched_background(backend: str) -> None:
    image = _random_image(3)
    args = [0.2, -0.3, 0.4, 0.5, 0.3, 0.35]
    stats = _stats(image, args)
    mask = np.zeros(image.shape[:2], np.float32)
    mask[10:40, 5:50] = np.linspace(0, 1, 45, dtype=np.float32)  # a ramp, zero in its first column
    mask[20:30, 20:30] = 1.0
    got = apply_filter_luts(image, build_filter_luts(args, stats), mask)
    assert _levels_off(got, _reference(image, args, stats, mask)).max() <= 1
    np.testing.assert_array_equal(got[mask == 0], image[mask == 0])
    assert (got[mask == 1] != image[mask == 1]).any()


def test_empty_mask_returns_the_image(backend: str) -> None:
    image = _random_image(4)
    luts = build_filter_luts([0.3, 0.3, 0.3, 0.3, 0.3, 0.3], [0.5] * 4)
    np.testing.assert_array_equal(apply_filter_luts(image, luts, np.zeros(image.shape[:2], np.float32)), image)


def test_mask_outside_zero_one_is_clipped(backend: str) -> None:
    image = _random_image(5)
    luts = build_filter_luts([0.1, 0.2, 0.0, 0.3, 0.0, 0.0], [0.5] * 4)
    ones = np.ones(image.shape[:2], np.float32)
    np.testing.assert_array_equal(apply_filter_luts(image, luts, ones * 3), apply_filter_luts(image, luts, ones))
    np.testing.assert_array_equal(apply_filter_luts(image, luts, -ones), image)


def test_backends_agree_to_one_level(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    image = _random_image(6)
    luts = build_filter_luts([0.3, -0.1, 0.2, 0.6, -0.3, 0.2], _stats(image, [0.3, -0.1, 0.2, 0.6, -0.3, 0.2]))
    compiled = apply_filter_luts(image, luts)
    monkeypatch.setattr(lut_module, "_kernel_cache", NUMPY_KERNELS)
    assert _levels_off(apply_filter_luts(image, luts), compiled).max() <= 1


def test_threads_give_identical_output_and_out_is_filled(backend: str) -> None:
    image = _random_image(7, (96, 40))
    luts = build_filter_luts([0.2, 0.1, -0.2, 0.4, 0.1, 0.1], [0.4, 0.5, 0.6, 0.5])
    mask = np.random.default_rng(0).uniform(-0.5, 1, image.shape[:2]).astype(np.float32)
    one = apply_filter_luts(image, luts, mask)
    out = np.zeros_like(image)
    result = apply_filter_luts(image, luts, mask, threads=3, out=out)
    assert result is out
    np.testing.assert_array_equal(out, one)


def test_tables_come_from_the_filter_kernels() -> None:
    luts = build_filter_luts([0.0, 0.5, 0.0, 0.0, 0.0, 0.0], [0.5] * 4)
    assert isinstance(luts, FilterLuts) and luts.peak == 255 and luts.channel.shape == (3, 256)
    # brightness +0.5 doubles every level (to 1e-6) and clips at 1
    expected = np.minimum(np.arange(256) / 255 / (0.5 + 1e-6), 1.0)
    np.testing.assert_allclose(luts.channel[0], expected, atol=1e-6)
    # no tone change: the tone table holds its (square-root spaced) sample points themselves, times 255
    size = luts.tone.size - 2
    np.testing.assert_allclose(luts.tone[:-1], 255 * lut_module._unwarp(np.arange(size + 1) / size), atol=1e-3)
    np.testing.assert_allclose(
        lut_module._unwarp(lut_module._warp(np.linspace(0, 1, 101))), np.linspace(0, 1, 101), atol=1e-6
    )
    assert (luts.exact_below, luts.exact_from) == (0, luts.tone.size - 2)
    steep = build_filter_luts([0.0, 0.0, 0.0, 0.0, -0.95, 0.97], [0.5] * 4)
    assert steep.exact_below > 0 and steep.exact_from < steep.tone.size - 2
    assert build_filter_luts([0.0] * 6, [0.5] * 4, depth=16).channel.shape == (3, 65536)


def test_arguments_as_tensor_and_array() -> None:
    args, stats = [0.1, 0.2, 0.3, 0.4, 0.5, -0.6], [0.3, 0.4, 0.5, 0.45]
    a = build_filter_luts(args, stats)
    b = build_filter_luts(torch.tensor(args), np.array(stats))
    np.testing.assert_array_equal(a.channel, b.channel)
    np.testing.assert_array_equal(a.tone, b.tone)


def test_errors() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    luts = build_filter_luts([0.0] * 6, [0.5] * 4)
    with pytest.raises(ShapeError, match="args"):
        build_filter_luts([0.0] * 5, [0.5] * 4)
    with pytest.raises(ShapeError, match="stats"):
        build_filter_luts([0.0] * 6, [0.5] * 3)
    with pytest.raises(InputError, match="nan"):
        build_filter_luts([0.0] * 5 + [float("nan")], [0.5] * 4)
    with pytest.raises(UsageError, match="depth"):
        build_filter_luts([0.0] * 6, [0.5] * 4, depth=12)
    with pytest.raises(InputError, match="8-bit"):
        apply_filter_luts(image.astype(np.uint16), luts)
    with pytest.raises(ShapeError, match="RGB"):
        apply_filter_luts(np.zeros((4, 4), np.uint8), luts)
    with pytest.raises(ShapeError, match="mask"):
        apply_filter_luts(image, luts, np.zeros((4, 5), np.float32))
    with pytest.raises(UsageError, match="threads"):
        apply_filter_luts(image, luts, threads=0)
    with pytest.raises(UsageError, match="overlap"):
        apply_filter_luts(image, luts, out=image)


@pytest.mark.parametrize("width", [1, 7, 13, 256, 300])
def test_odd_widths_and_mask_spans(width: int, backend: str) -> None:
    # The compiled kernel gathers in blocks of 8 values and works in chunks of 256 pixels: spans of every
    # length (tails shorter than a block, chunks ending mid-row) must render as the reference does.
    image = _random_image(8, (9, width))
    args = [0.2, -0.3, 0.4, 0.5, 0.3, 0.35]
    stats = _stats(image, args)
    rng = np.random.default_rng(width)
    mask = rng.uniform(0, 1, image.shape[:2]).astype(np.float32)
    mask[rng.uniform(size=mask.shape) < 0.3] = 0.0
    mask[0] = 0.0
    mask[1, : width // 2] = 0.0
    mask[2, width // 3 :] = 0.0
    luts = build_filter_luts(args, stats)
    for m in (None, mask):
        got = apply_filter_luts(image, luts, m)
        assert _levels_off(got, _reference(image, args, stats, m)).max() <= 1
    got = apply_filter_luts(image, luts, mask)
    np.testing.assert_array_equal(got[mask == 0], image[mask == 0])


def test_kernel_on_two_row_buffers() -> None:
    # Other kernels call the compiled _render_rows on small row buffers: same result as the whole frame.
    pytest.importorskip("numba")
    image = _random_image(9, (6, 40))
    luts = build_filter_luts([0.1, 0.2, -0.1, 0.6, -0.2, 0.3], [0.5] * 4)
    mask = np.random.default_rng(1).uniform(-0.2, 1, image.shape[:2]).astype(np.float32)
    whole = apply_filter_luts(image, luts, mask)
    _, kernel = lut_module._kernel()
    powers = np.array(luts.tone_powers, np.float64)
    for row in range(0, 6, 2):
        part = np.ascontiguousarray(image[row : row + 2])
        out = np.zeros_like(part)
        tables = (luts.channel, luts.saturation, luts.tone, luts.exact_below, luts.exact_from)
        kernel(part, np.ascontiguousarray(mask[row : row + 2]), True, *tables, powers, float(luts.peak), out, 0, 2)
        np.testing.assert_array_equal(out, whole[row : row + 2])


@pytest.mark.slow
def test_scalar_gather_fallback_renders_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    # Where llvmlite cannot build the vector gathers the kernels are compiled with scalar ones: same output.
    numba = pytest.importorskip("numba")
    image = _random_image(10, (30, 77))
    mask = np.random.default_rng(2).uniform(-0.2, 1, image.shape[:2]).astype(np.float32)
    steep = build_filter_luts([0.3, 0.2, 0.5, 0.9, -0.95, 0.97], [0.45, 0.5, 0.4, 0.47])
    flat = build_filter_luts([0.3, 0.2, 0.5, 0.0, 0.2, 0.1], [0.45, 0.5, 0.4, 0.47])
    assert steep.direct is None and flat.direct is not None
    vector = [apply_filter_luts(image, luts, mask) for luts in (steep, flat)]

    def unavailable(name: str) -> None:
        raise RuntimeError(f"no {name} here")

    monkeypatch.setattr(lut_module, "_make_gathers", unavailable)
    monkeypatch.setattr(lut_module, "_gather_block", lut_module._gather_block)
    monkeypatch.setattr(lut_module, "_gather_pairs", lut_module._gather_pairs)
    scalar = lut_module._compile_kernel(numba)
    assert lut_module._gather_pairs is not lut_module._gather_pairs_py  # the jitted scalar gather
    monkeypatch.setattr(lut_module, "_kernel_cache", [("numba", *scalar)])
    for luts, want in zip((steep, flat), vector, strict=True):
        np.testing.assert_array_equal(apply_filter_luts(image, luts, mask), want)


def _every_level_image(dtype: type = np.uint8) -> np.ndarray:
    """Each level in each channel, beside companions at 0, mid and peak (the extremes of the lightness)."""
    peak = int(np.iinfo(dtype).max)
    levels = np.arange(peak + 1) if peak == 255 else np.unique(np.r_[np.arange(0, peak + 1, 97), 1, 2, peak - 1])
    others = [(p, q) for p in (0, peak // 2, peak) for q in (0, peak // 2, peak)]
    pixels = []
    for channel in range(3):
        for p, q in others:
            block = np.empty((levels.size, 3), np.int64)
            block[:, channel] = levels
            block[:, (channel + 1) % 3] = p
            block[:, (channel + 2) % 3] = q
            pixels.append(block)
    flat = np.concatenate(pixels)
    return flat.reshape(-1, 32, 3).astype(dtype) if flat.shape[0] % 32 == 0 else flat[None].astype(dtype)


TONE_CASES = [(0.0, 0.0), (0.3, 0.35), (-0.4, 0.4), (0.6, -0.6), (-0.8, 0.8), (-0.95, 0.97), (0.99, -0.99), (-1, 1)]


@pytest.mark.parametrize(("highlight", "shadow"), TONE_CASES)
def test_saturation_zero_direct_table_at_every_level(highlight: float, shadow: float, backend: str) -> None:
    # Saturation 0 is not quite an identity (a gain of -1e-6 towards the lightness), so a per-channel table is
    # only built where it is right for every level whatever the other channels hold; checked here at all 256.
    image = _every_level_image()
    args = [0.2, -0.3, 0.4, 0.0, highlight, shadow]
    stats = [0.45, 0.5, 0.4, 0.47]
    luts = build_filter_luts(args, stats)
    if abs(highlight) < 0.7 and abs(shadow) < 0.7:
        assert luts.direct is not None and luts.direct.shape == (3, 256)
    mask = np.clip(np.random.default_rng(3).uniform(-0.2, 1, image.shape[:2]), 0, 1).astype(np.float32)
    for m in (None, mask):
        diff = _levels_off(apply_filter_luts(image, luts, m), _reference(image, args, stats, m))
        assert diff.max() <= 1
        assert diff.mean() < 0.01
    got = apply_filter_luts(image, luts, mask)
    np.testing.assert_array_equal(got[mask == 0], image[mask == 0])


@pytest.mark.parametrize(("highlight", "shadow"), TONE_CASES[:4])
def test_saturation_zero_direct_table_16bit(highlight: float, shadow: float, backend: str) -> None:
    image = _every_level_image(np.uint16)
    args = [-0.1, 0.2, -0.3, 0.0, highlight, shadow]
    stats = [0.45, 0.5, 0.4, 0.47]
    luts = build_filter_luts(args, stats, depth=16)
    assert _levels_off(apply_filter_luts(image, luts), _reference(image, args, stats)).max() <= 1


def test_direct_table_only_where_saturation_is_zero() -> None:
    assert build_filter_luts([0.0, 0.0, 0.0, 1e-3, 0.0, 0.0], [0.5] * 4).direct is None
    assert build_filter_luts([0.0, 0.0, 0.0, -1.5, 0.0, 0.0], [0.5] * 4).direct is None
    luts = build_filter_luts([0.1, 0.2, 0.3, 0.0, 0.1, 0.2], [0.5] * 4)
    assert luts.direct is not None and luts.direct.dtype == np.float32
    # the table is the tone curve of the channel values, to within its rounding
    tone = lut_module._tone_curve(
        torch.from_numpy(luts.channel).view(1, 3, 1, -1),
        torch.tensor(0.1).view(1, 1, 1, 1),
        torch.tensor(0.2).view(1, 1, 1, 1),
    )
    # (to within the saturation filter's shift of up to 5e-7 towards the lightness)
    np.testing.assert_allclose(luts.direct, tone[0, :, 0].numpy() * 255, atol=0.01)
    assert build_filter_luts([0.0, 0.0, 0.0, 0.0, -0.8, 0.8], [0.5] * 4).direct is None  # steep near 0 and 1
