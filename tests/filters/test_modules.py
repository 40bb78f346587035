"""Tests for the nn.Module wrappers (vidharm/filters/_modules.py): module == function."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidharm.filters import (
    NUM_ARGS,
    AdjustBrightness,
    AdjustContrast,
    AdjustHighlight,
    AdjustSaturation,
    AdjustShadow,
    AdjustTemperature,
    ApplyFilters,
    adjust_brightness,
    adjust_contrast,
    adjust_highlight,
    adjust_saturation,
    adjust_shadow,
    adjust_temperature,
    apply_filters,
    measure_filter_stats,
)

PAIRS = [
    (AdjustTemperature, adjust_temperature),
    (AdjustBrightness, adjust_brightness),
    (AdjustContrast, adjust_contrast),
    (AdjustSaturation, adjust_saturation),
    (AdjustHighlight, adjust_highlight),
    (AdjustShadow, adjust_shadow),
]


@pytest.mark.parametrize(("module", "function"), PAIRS)
def test_module_equals_function(module: type[nn.Module], function, device: torch.device) -> None:  # noqa: ANN001
    image = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(0)).to(device)
    amount = torch.tensor([-0.4, 0.7], device=device)
    op = module().to(device)
    assert list(op.parameters()) == []
    assert torch.equal(op(image, amount), function(image, amount))


def test_module_stat_overrides() -> None:
    image, amount = torch.rand(2, 3, 5, 4), torch.tensor([-0.4, 0.3])
    means, pivot = torch.rand(2, 3), torch.rand(2)
    assert torch.equal(AdjustTemperature()(image, amount, means), adjust_temperature(image, amount, means))
    assert torch.equal(AdjustContrast()(image, amount, pivot), adjust_contrast(image, amount, pivot))


def test_apply_filters_module() -> None:
    image = torch.rand(2, 3, 6, 6)
    args = torch.randn(2, NUM_ARGS, generator=torch.Generator().manual_seed(1))
    stats = measure_filter_stats(image, args)
    assert torch.equal(ApplyFilters()(image, args), apply_filters(image, args))
    assert torch.equal(ApplyFilters()(image, args, stats), apply_filters(image, args, stats))
