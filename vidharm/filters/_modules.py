"""Thin ``nn.Module`` wrappers around the filter functions, for use inside ``nn.Sequential`` and hooks."""

from __future__ import annotations

from torch import Tensor, nn

from vidharm.filters._adjust import (
    adjust_brightness,
    adjust_contrast,
    adjust_highlight,
    adjust_saturation,
    adjust_shadow,
    adjust_temperature,
)
from vidharm.filters._chain import apply_filters

__all__ = [
    "AdjustTemperature",
    "AdjustBrightness",
    "AdjustContrast",
    "AdjustSaturation",
    "AdjustHighlight",
    "AdjustShadow",
    "ApplyFilters",
]


class AdjustTemperature(nn.Module):
    """Module form of :func:`~vidharm.filters.adjust_temperature`; ``forward(image, amount, mean_rgb=None)``.

    Example:
        >>> import torch
        >>> AdjustTemperature()(torch.full((1, 3, 1, 1), 0.5), torch.tensor([0.0])).flatten()
        tensor([0.5000, 0.5000, 0.5000])
    """

    def forward(self, image: Tensor, amount: Tensor | float, mean_rgb: Tensor | None = None) -> Tensor:
        return adjust_temperature(image, amount, mean_rgb)


class AdjustBrightness(nn.Module):
    """Module form of :func:`~vidharm.filters.adjust_brightness`; ``forward(image, amount)``.

    Example:
        >>> import torch
        >>> AdjustBrightness()(torch.full((1, 3, 1, 1), 0.5), torch.tensor([-1.0])).flatten()
        tensor([0., 0., 0.])
    """

    def forward(self, image: Tensor, amount: Tensor | float) -> Tensor:
        return adjust_brightness(image, amount)


class AdjustContrast(nn.Module):
    """Module form of :func:`~vidharm.filters.adjust_contrast`; ``forward(image, amount, pivot=None)``.

    Example:
        >>> import torch
        >>> AdjustContrast()(torch.full((1, 3, 1, 1), 0.5), torch.tensor([0.5])).flatten()
        tensor([0.5000, 0.5000, 0.5000])
    """

    def forward(self, image: Tensor, amount: Tensor | float, pivot: Tensor | None = None) -> Tensor:
        return adjust_contrast(image, amount, pivot)


class AdjustSaturation(nn.Module):
    """Module form of :func:`~vidharm.filters.adjust_saturation`; ``forward(image, amount)``.

    Example:
        >>> import torch
        >>> AdjustSaturation()(torch.full((1, 3, 1, 1), 0.5), torch.tensor([0.5])).flatten()
        tensor([0.5000, 0.5000, 0.5000])
    """

    def forward(self, image: Tensor, amount: Tensor | float) -> Tensor:
        return adjust_saturation(image, amount)


class AdjustHighlight(nn.Module):
    """Module form of :func:`~vidharm.filters.adjust_highlight`; ``forward(image, amount)``.

    Example:
        >>> import torch
        >>> AdjustHighlight()(torch.full((1, 3, 1, 1), 0.5), torch.tensor([-1.0])).flatten()
        tensor([0., 0., 0.])
    """

    def forward(self, image: Tensor, amount: Tensor | float) -> Tensor:
        return adjust_highlight(image, amount)


class AdjustShadow(nn.Module):
    """Module form of :func:`~vidharm.filters.adjust_shadow`; ``forward(image, amount)``.

    Example:
        >>> import torch
        >>> AdjustShadow()(torch.full((1, 3, 1, 1), 0.5), torch.tensor([1.0])).flatten()
        tensor([1., 1., 1.])
    """

    def forward(self, image: Tensor, amount: Tensor | float) -> Tensor:
        return adjust_shadow(image, amount)


class ApplyFilters(nn.Module):
    """Module form of :func:`~vidharm.filters.apply_filters`; ``forward(image, args, stats=None)``.

    Example:
        >>> import torch
        >>> ApplyFilters()(torch.rand(1, 3, 4, 4), torch.zeros(1, 6)).shape
        torch.Size([1, 3, 4, 4])
    """

    def forward(self, image: Tensor, args: Tensor, stats: Tensor | None = None) -> Tensor:
        return apply_filters(image, args, stats)
