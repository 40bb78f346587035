"""Tests for vidharm/train/perturb.py: synthetic composites, exact inverses, the evaluation family."""

from __future__ import annotations

import pytest
import torch

from vidharm.filters import FILTER_NAMES, apply_filters, composite
from vidharm.train.perturb import (
    FAMILIES,
    apply_random_curve,
    apply_random_lut,
    inverse_filter_args,
    make_training_batch,
    perturb_for_eval,
    perturb_with_filters,
    restore_steps,
    sample_filter_args,
)

# Stated tolerance for restoring a single invertible filter with the recorded arguments: 2e-3 (half an 8-bit
# level); the observed error is float32 rounding plus the filters' epsilons.
RESTORE_TOL = 2e-3


def _image(seed: int = 0, lo: float = 0.05, hi: float = 0.95) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(4, 3, 16, 16, generator=g)


@pytest.mark.parametrize(
    ("name", "amounts", "hi"),
    [
        ("brightness", (-0.5, -0.2, 0.2, 0.4), 0.55),  # brightening stays below 1 for images <= 0.55
        ("saturation", (-0.6, -0.4, -0.2, -0.05), 0.95),  # desaturation keeps HSL lightness: invertible
        ("highlight", (-0.4, -0.1, 0.2, 0.4), 0.95),
        ("shadow", (-0.4, -0.1, 0.2, 0.4), 0.95),
    ],
)
def test_single_filter_restored_by_recorded_arguments(name: str, amounts: tuple[float, ...], hi: float) -> None:
    image = _image(1, hi=hi)
    mask = torch.zeros(4, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    args = torch.zeros(4, 6)
    args[:, FILTER_NAMES.index(name)] = torch.tensor(amounts)
    perturbed = perturb_with_filters(image, mask, args)[-1]
    assert (perturbed - image).abs().amax() > 0.01  # the perturbation did something
    restored = restore_steps(perturbed, mask, inverse_filter_args(args))[-1]
    assert (restored - image).abs().amax() < RESTORE_TOL


def test_perturbation_keeps_background_and_records_steps() -> None:
    image = _image(2)
    mask = torch.zeros(4, 1, 16, 16)
    mask[..., :8] = 1
    args = sample_filter_args(4, torch.Generator().manual_seed(3))
    steps = perturb_with_filters(image, mask, args)
    assert len(steps) == 7 and torch.equal(steps[0], image)
    for step in steps:
        assert torch.equal(step[..., 8:], image[..., 8:])
    assert (steps[-1][..., :8] - image[..., :8]).abs().amax() > 0.01


def test_restore_steps_matches_filter_chain() -> None:
    image = _image(4)
    mask = (torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(5)) > 0.5).float()
    args = torch.tensor([[0.2, -0.3, 0.4, 0.5, -0.2, 0.3], [-0.1, 0.2, -0.5, -0.4, 0.3, -0.2]] * 2)
    expected = composite(apply_filters(image, args), image, mask)
    assert torch.allclose(restore_steps(image, mask, args)[-1], expected, atol=1e-6)


def test_sampled_arguments_stay_in_paper_ranges() -> None:
    args = sample_filter_args(4000, torch.Generator().manual_seed(0))
    limits = torch.tensor([0.3, 0.5, 0.5, 0.6, 0.4, 0.4])
    assert (args.abs() <= limits).all()
    assert (args.abs().amax(0) > 0.95 * limits).all()


def test_training_batch_families() -> None:
    real = _image(6).repeat(8, 1, 1, 1)
    mask = torch.zeros(32, 1, 16, 16)
    mask[..., 2:14, 2:14] = 1
    batch = make_training_batch(real, mask, torch.Generator().manual_seed(0), random_magnitude=True)
    assert set(batch.family.tolist()) <= set(range(len(FAMILIES)))
    assert len(set(batch.family.tolist())) >= 3  # 32 draws hit several families
    assert torch.equal(batch.targets[-1], real)
    identity = batch.family == FAMILIES.index("identity")
    assert torch.equal(batch.composite[identity], real[identity])
    assert (batch.args[batch.family != 0] == 0).all()
    assert torch.equal(batch.stepwise, (batch.family == 0) | identity)
    assert torch.equal(batch.composite * (1 - mask), real * (1 - mask))  # background untouched


def test_real_composites_replace_synthetic_ones() -> None:
    real, mask = _image(7), torch.ones(4, 1, 16, 16)
    comp = torch.zeros_like(real)
    batch = make_training_batch(real, mask, torch.Generator(), real_composite=comp, p_real_composite=1.0)
    assert torch.equal(batch.composite, comp)
    assert (batch.family == -1).all() and not batch.stepwise.any()


def test_lut_and_curve_are_identity_at_zero_strength_and_change_colours_otherwise() -> None:
    image = _image(8)
    g = torch.Generator().manual_seed(0)
    assert torch.allclose(apply_random_lut(image, g, 0.0), image, atol=1e-5)
    assert torch.allclose(apply_random_curve(image, g, 0.0), image, atol=1e-6)
    assert (apply_random_lut(image, g) - image).abs().mean() > 0.01
    assert (apply_random_curve(image, g) - image).abs().mean() > 0.005
    curve = apply_random_curve(torch.linspace(0, 1, 48).view(1, 3, 4, 4), g)
    assert (curve.flatten().diff() >= -1e-6).all()  # monotone


def test_eval_family_is_seeded_bounded_and_not_identity() -> None:
    image = _image(9)
    a = perturb_for_eval(image, torch.Generator().manual_seed(1))
    b = perturb_for_eval(image, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert (a - image).abs().mean() > 0.01
    grey = torch.full((1, 3, 2, 2), 0.5)
    out = perturb_for_eval(grey, torch.Generator().manual_seed(2))
    assert out.shape == grey.shape
