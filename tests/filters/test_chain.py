"""Tests for the filter chain, its statistics and the composite (vidharm/filters/_chain.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import shared_path
from torch import Tensor

from vidharm.errors import InputError, ShapeError
from vidharm.filters import (
    AUGMENT_RANGES,
    FILTER_NAMES,
    NUM_ARGS,
    NUM_STATS,
    adjust_brightness,
    adjust_contrast,
    adjust_highlight,
    adjust_saturation,
    adjust_shadow,
    adjust_temperature,
    apply_filters,
    apply_filters_unbounded,
    carry_excess,
    composite,
    measure_filter_stats,
)


def _rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen, dtype=torch.float64).to(device, dtype)


def _args(batch: int, seed: int = 1, scale: float = 1.4, dtype: torch.dtype = torch.float32) -> Tensor:
    # Some raw arguments outside [-1, 1] on purpose: the chain must clamp them.
    gen = torch.Generator().manual_seed(seed)
    return ((torch.rand(batch, NUM_ARGS, generator=gen) * 2 - 1) * scale).to(dtype)


def _chain_by_hand(image: Tensor, args: Tensor) -> list[Tensor]:
    """z_1..z_6 from the public per-op functions, each measuring its own statistics (the reference chain)."""
    a = args.clamp(-1, 1)
    steps = [adjust_temperature(image, a[:, 0])]
    for i, op in enumerate((adjust_brightness, adjust_contrast, adjust_saturation, adjust_highlight, adjust_shadow)):
        steps.append(op(steps[-1], a[:, i + 1]))
    return steps


def _assert_parity(got: np.ndarray, want: np.ndarray, what: str) -> None:
    # parity/README.md: >= 99.999 % of values within 2e-5 and max abs <= 5e-3 (near-0 pixels under the
    # shadow power curve have an unbounded slope, so one value can move by ~1e-3 between CPUs).
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert diff.max() <= 5e-3, f"{what}: max abs diff {diff.max():.3g} > 5e-3"
    assert (diff <= 2e-5).mean() >= 0.99999, f"{what}: only {(diff <= 2e-5).mean():.6%} of values within 2e-5"


# ---------------------------------------------------------------- constants


def test_constants() -> None:
    assert FILTER_NAMES == ("temperature", "brightness", "contrast", "saturation", "highlight", "shadow")
    assert NUM_ARGS == 6 and NUM_STATS == 4
    assert dict(AUGMENT_RANGES) == {
        "temperature": 0.3,
        "brightness": 0.5,
        "contrast": 0.5,
        "saturation": 0.6,
        "highlight": 0.4,
        "shadow": 0.4,
    }
    with pytest.raises(TypeError):
        AUGMENT_RANGES["temperature"] = 1.0  # type: ignore[index]


# ---------------------------------------------------------------- apply_filters


def test_apply_filters_shape_and_range(device: torch.device, dtype: torch.dtype) -> None:
    image = _rand(3, 3, 9, 7, dtype=dtype, device=device)
    out = apply_filters(image, _args(3, dtype=dtype).to(device))
    assert out.shape == image.shape and out.dtype == dtype and out.device == image.device
    assert out.min() >= 0 and out.max() <= 1


def test_apply_filters_is_the_chain_of_ops() -> None:
    image = _rand(2, 3, 10, 12)
    args = _args(2)
    assert torch.equal(apply_filters(image, args), _chain_by_hand(image, args)[-1])


def test_apply_filters_clamps_args() -> None:
    image = _rand(2, 3, 10, 12)
    args = _args(2, scale=3.0)
    assert (args.abs() > 1).any()
    assert torch.equal(apply_filters(image, args), apply_filters(image, args.clamp(-1, 1)))


def test_zero_args_nearly_identity() -> None:
    image = _rand(2, 3, 8, 8)
    torch.testing.assert_close(apply_filters(image, torch.zeros(2, NUM_ARGS)), image, atol=1e-5, rtol=0)


def test_batch_items_are_independent() -> None:
    image, args = _rand(3, 3, 8, 6), _args(3)
    batched = apply_filters(image, args)
    for i in range(3):
        torch.testing.assert_close(
            batched[i : i + 1], apply_filters(image[i : i + 1], args[i : i + 1]), atol=1e-6, rtol=0
        )


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("seed", range(4))
def test_given_stats_are_bit_identical_to_measured(seed: int, device: torch.device, dtype: torch.dtype) -> None:
    image = _rand(3, 3, 31, 17, seed=seed, dtype=dtype, device=device)
    args = _args(3, seed=seed + 10, dtype=dtype).to(device)
    stats = measure_filter_stats(image, args)
    assert torch.equal(apply_filters(image, args), apply_filters(image, args, stats))


def test_measure_filter_stats_values() -> None:
    image, args = _rand(2, 3, 9, 11), _args(2)
    stats = measure_filter_stats(image, args)
    assert stats.shape == (2, NUM_STATS) and stats.dtype == image.dtype
    assert torch.equal(stats[:, :3], image.mean(dim=(2, 3)))
    a = args.clamp(-1, 1)
    after = adjust_brightness(adjust_temperature(image, a[:, 0]), a[:, 1])
    assert torch.equal(stats[:, 3], after.mean(dim=(1, 2, 3)))


def test_given_stats_are_used() -> None:
    image, args = _rand(2, 3, 9, 11), _args(2, scale=0.8)
    args[:, 2] = -0.5  # a contrast that depends on its pivot
    stats = torch.tensor([[0.3, 0.4, 0.5, 0.2], [0.6, 0.5, 0.4, 0.7]])
    a = args.clamp(-1, 1)
    z = adjust_temperature(image, a[:, 0], stats[:, :3])
    z = adjust_contrast(adjust_brightness(z, a[:, 1]), a[:, 2], stats[:, 3])
    z = adjust_shadow(adjust_highlight(adjust_saturation(z, a[:, 3]), a[:, 4]), a[:, 5])
    assert torch.equal(apply_filters(image, args, stats), z)
    assert not torch.allclose(apply_filters(image, args, stats), apply_filters(image, args))


# ---------------------------------------------------------------- exceptions


@pytest.mark.parametrize("shape", [(2, 5), (3, 6), (2, 6, 1), (12,)])
def test_bad_args_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ShapeError, match="args"):
        apply_filters(torch.rand(2, 3, 4, 4), torch.zeros(shape))
    with pytest.raises(ShapeError, match="args"):
        measure_filter_stats(torch.rand(2, 3, 4, 4), torch.zeros(shape))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_args(bad: float) -> None:
    args = torch.zeros(2, NUM_ARGS)
    args[1, 3] = bad
    with pytest.raises(InputError, match=r"args: value at index \(1, 3\)"):
        apply_filters(torch.rand(2, 3, 4, 4), args)
    with pytest.raises(InputError, match="args"):
        measure_filter_stats(torch.rand(2, 3, 4, 4), args)


def test_bad_stats() -> None:
    image, args = torch.rand(2, 3, 4, 4), torch.zeros(2, NUM_ARGS)
    with pytest.raises(ShapeError, match="stats"):
        apply_filters(image, args, torch.zeros(2, 3))
    with pytest.raises(InputError, match="stats"):
        apply_filters(image, args, torch.tensor([[0.5, 0.5, 0.5, float("nan")]] * 2))


def test_bad_image() -> None:
    with pytest.raises(ShapeError, match="image"):
        apply_filters(torch.rand(2, 4, 4, 4), torch.zeros(2, NUM_ARGS))
    with pytest.raises(InputError, match="floating"):
        apply_filters(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2, NUM_ARGS))


# ---------------------------------------------------------------- composite


def test_composite_keeps_background_exactly() -> None:
    image = _rand(2, 3, 6, 6)
    mask = (_rand(2, 1, 6, 6, seed=3) > 0.5).float() * _rand(2, 1, 6, 6, seed=4)
    assert (mask == 0).any() and ((mask > 0) & (mask < 1)).any()
    # NaN in the filtered image would leak through a plain blend (NaN * 0 = NaN); the background must not see it.
    filtered = torch.full_like(image, float("nan"))
    out = composite(filtered, image, mask)
    background = (mask == 0).expand_as(image)
    assert torch.equal(out[background], image[background])
    out = composite(apply_filters(image, _args(2)), image, mask)
    assert torch.equal(out[background], image[background])


def test_composite_blends() -> None:
    image, filtered = _rand(1, 3, 4, 4), _rand(1, 3, 4, 4, seed=5)
    assert torch.equal(composite(filtered, image, torch.ones(1, 1, 4, 4)), filtered)
    half = composite(filtered, image, torch.full((1, 1, 4, 4), 0.25))
    torch.testing.assert_close(half, 0.25 * filtered + 0.75 * image)


def test_composite_gradient_reaches_mask_and_filtered() -> None:
    image = _rand(1, 3, 3, 3, dtype=torch.float64)
    filtered = _rand(1, 3, 3, 3, seed=6, dtype=torch.float64).requires_grad_()
    mask = (_rand(1, 1, 3, 3, seed=7, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, m: composite(f, image, m), (filtered, mask))


def test_composite_bad_shapes() -> None:
    image = torch.rand(2, 3, 4, 4)
    with pytest.raises(ShapeError, match="mask"):
        composite(image, image, torch.rand(2, 3, 4, 4))
    with pytest.raises(ShapeError, match="mask"):
        composite(image, image, torch.rand(2, 1, 4, 5))
    with pytest.raises(ShapeError, match="filtered"):
        composite(torch.rand(2, 3, 4, 5), image, torch.rand(2, 1, 4, 4))
    with pytest.raises(InputError, match="mask"):
        composite(image, image, torch.ones(2, 1, 4, 4, dtype=torch.uint8))


# ---------------------------------------------------------------- gradients


def test_gradcheck_chain() -> None:
    # Inputs mid-range and small arguments keep every filter off its clamps and branch switches;
    # contrast is negative because positive contrast has no gradient (floor quirk).
    image = (_rand(1, 3, 3, 3, dtype=torch.float64) * 0.4 + 0.3).requires_grad_()
    args = torch.tensor([[0.1, -0.1, -0.2, 0.15, 0.1, -0.1]], dtype=torch.float64, requires_grad=True)
    stats = measure_filter_stats(image, args).detach().requires_grad_()
    assert torch.autograd.gradcheck(apply_filters, (image, args), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(apply_filters, (image, args, stats), eps=1e-6, atol=1e-5)


def test_gradient_is_zero_outside_clamp_range() -> None:
    image = _rand(1, 3, 4, 4)
    args = torch.tensor([[1.5, 0.1, -0.2, 0.1, 0.1, -0.1]], requires_grad=True)
    apply_filters(image, args).sum().backward()
    assert args.grad is not None
    assert args.grad[0, 0] == 0 and (args.grad[0, 1:] != 0).any()


# ---------------------------------------------------------------- reference


def test_restore_args_reproduces_reference() -> None:
    """The `restore_args` fixture has raw arguments outside [-1, 1]: it tests the clamp end to end."""
    with np.load(shared_path("parity", "harmonizer", "cases.npz")) as cases:
        comp = torch.from_numpy(cases["restore_composite"]).permute(2, 0, 1).float().div(255)[None]
        mask = torch.from_numpy(cases["restore_mask"])[None, None]
        args = torch.from_numpy(cases["restore_args"])[None]
        want = cases["restore_output"]
    assert (args.abs() > 1).any()
    out = composite(apply_filters(comp, args), comp, mask)
    _assert_parity(out[0].permute(1, 2, 0).numpy(), want, "restore_output")
    # Guard that the fixture exercises the clamp: the unclamped temperature (-1.3) filters differently.
    assert not torch.allclose(adjust_temperature(comp, args[:, 0]), adjust_temperature(comp, args[:, 0].clamp(-1, 1)))


def test_unbounded_equals_apply_filters_inside_the_unit_range() -> None:
    image, args = _rand(2, 3, 6, 5, seed=3), torch.tensor([[0.2, -0.4, 0.5, 0.3, -0.6, 0.7], [0.0] * 6])
    assert torch.equal(apply_filters_unbounded(image, args), apply_filters(image, args))


def test_unbounded_filters_the_clamped_part_and_carries_the_excess() -> None:
    image = torch.tensor([-0.5, 0.4, 3.0]).view(1, 3, 1, 1).repeat(1, 1, 2, 2)
    args = torch.tensor([[0.1, -0.3, 0.2, 0.4, 0.3, -0.2]])
    clamped = image.clamp(0, 1)
    expected = apply_filters(clamped, args) + torch.tensor([-0.5, 0.0, 2.0]).view(1, 3, 1, 1)
    assert torch.equal(apply_filters_unbounded(image, args), expected)
    # The statistics are the clamped image's, so given ones equal measured ones.
    stats = measure_filter_stats(clamped, args)
    assert torch.equal(apply_filters_unbounded(image, args, stats), expected)


def test_unbounded_is_continuous_across_the_range_limits() -> None:
    args = torch.tensor([[0.3, 0.2, -0.4, 0.5, 0.8, -0.9]])
    stats = torch.tensor([[0.4, 0.5, 0.6, 0.5]])
    for edge in (0.0, 1.0):
        x = torch.tensor([edge - 1e-4, edge, edge + 1e-4], dtype=torch.float64).view(1, 1, 1, 3).expand(1, 3, 1, 3)
        out = apply_filters_unbounded(x, args.double(), stats.double())[0, :, 0]
        assert (out[:, 0] - out[:, 1]).abs().max() < 1e-2 and (out[:, 2] - out[:, 1]).abs().max() < 1e-2


def test_carry_excess_checks_shapes() -> None:
    with pytest.raises(ShapeError):
        carry_excess(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 3))
    with pytest.raises(InputError):
        carry_excess(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2, dtype=torch.int64))
