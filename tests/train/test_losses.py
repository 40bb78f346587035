"""Tests for vidharm/train/losses.py."""

from __future__ import annotations

import pytest
import torch

from vidharm.errors import ShapeError
from vidharm.models import create_model
from vidharm.train.loop import StyleEncoder
from vidharm.train.losses import (
    dynamic_cascade_loss,
    foreground_mse,
    harmonizer_loss,
    masked_step_loss,
    patch_styles,
    region_contrastive_loss,
)


def test_masked_step_loss_reference_value_and_mask() -> None:
    pred, target = torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    pred[..., 0, 0] = 0.2
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 0, 0] = 1
    charb = 3 * (0.04 + 1e-6) ** 0.5  # 3 channels differ by 0.2 on the one masked pixel
    expected = charb / 1 + 10 * 3 * 0.04 / 1
    assert masked_step_loss(pred, target, mask).item() == pytest.approx(expected, rel=1e-4)
    far = pred.clone()
    far[..., 1, 1] = 1.0  # outside the mask: ignored
    assert masked_step_loss(far, target, mask).item() == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ShapeError):
        masked_step_loss(pred, target, torch.ones(1, 1, 3, 3))


def test_dynamic_loss_matches_formula_and_stops_gradient_of_normaliser() -> None:
    losses = torch.tensor([[0.4, 0.6, 0.5, 0.9, 0.9, 0.3]], requires_grad=True)
    s = 0.4 + 0.2 + 0.4  # L1 + positive increments
    expected = 0.4 / s + 0.2 / s + 0.4 / s
    out = dynamic_cascade_loss(losses)
    assert out.item() == pytest.approx(expected)
    out.sum().backward()
    # d/dL1 = 1/S (the previous-step subtraction is stop-gradient); steps that did not increase get 0.
    assert losses.grad[0].tolist() == pytest.approx([1 / s, 1 / s, 0.0, 1 / s, 0.0, 0.0])


def test_harmonizer_loss_uses_final_step_for_non_stepwise_samples() -> None:
    target = torch.zeros(2, 3, 4, 4)
    mask = torch.ones(2, 1, 4, 4)
    outputs = [torch.full((2, 3, 4, 4), 0.1)] * 5 + [torch.zeros(2, 3, 4, 4)]
    loss, fine, coarse = harmonizer_loss(outputs, [target] * 6, mask, torch.tensor([False, False]), 10.0)
    assert coarse.item() == pytest.approx(10 * 3 * 1e-3, rel=1e-3)  # only the exact last step counts
    assert fine.item() == 0.0 and loss.item() == pytest.approx(coarse.item())
    with pytest.raises(ShapeError):
        harmonizer_loss(outputs[:5], [target] * 6, mask, torch.tensor([True, True]))


def test_foreground_mse_normalises_by_area_with_floor() -> None:
    pred, target = torch.ones(1, 3, 20, 20), torch.zeros(1, 3, 20, 20)
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., :2, :2] = 1  # 4 pixels x 3 channels = 12 < min_area 100
    assert foreground_mse(pred, target, mask).item() == pytest.approx(12 / 100)
    mask[..., :10, :10] = 1
    assert foreground_mse(pred, target, mask).item() == pytest.approx(1.0)


def test_patch_styles_are_unit_vectors() -> None:
    styles = patch_styles(torch.rand(2, 5, 8, 12), 4)
    assert styles.shape == (2, 2, 3, 10)
    assert torch.allclose(styles.norm(dim=-1), torch.ones(2, 2, 3), atol=1e-5)


def _styled_images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 8:56, 8:40] = 1
    noise = torch.rand(2, 3, 64, 64, generator=g)
    background_style = 0.3 + 0.2 * noise * torch.tensor([1.0, 0.8, 0.5]).view(1, 3, 1, 1)
    foreground_style = 0.6 + 0.05 * noise * torch.tensor([0.3, 1.0, 1.0]).view(1, 3, 1, 1)
    real = background_style
    comp = foreground_style * mask + real * (1 - mask)
    return real, comp, mask, noise


@pytest.mark.parametrize("features", ["pixels", "harmonizer_encoder", "hdnet_encoder"])
def test_contrastive_loss_lower_for_matched_styles(features: str) -> None:
    real, comp, mask, _ = _styled_images()
    matched = real.clone()  # foreground restyled like the background
    mismatched = comp  # foreground keeps the composite's style
    if features == "pixels":
        encode = lambda x: x  # noqa: E731
        patch = 8
    else:
        encode = StyleEncoder(create_model("harmonizer_tiny" if features.startswith("harm") else "hdnet_tiny"))
        patch = 4
    f_real, f_comp = encode(real), encode(comp)
    low = region_contrastive_loss(encode(matched), f_real, f_comp, mask, torch.Generator().manual_seed(1), patch=patch)
    high = region_contrastive_loss(
        encode(mismatched), f_real, f_comp, mask, torch.Generator().manual_seed(1), patch=patch
    )
    assert low < high


def test_contrastive_loss_has_gradient_and_skips_samples_without_regions() -> None:
    real, comp, mask, _ = _styled_images()
    harmonized = comp.clone().requires_grad_(True)
    loss = region_contrastive_loss(harmonized, real, comp, mask, torch.Generator(), patch=8)
    loss.backward()
    assert harmonized.grad is not None and harmonized.grad.abs().sum() > 0
    empty = region_contrastive_loss(comp, real, comp, torch.zeros_like(mask), torch.Generator(), patch=8)
    assert empty.item() == 0.0
