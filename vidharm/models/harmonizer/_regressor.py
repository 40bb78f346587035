"""Cascade argument regressor of Harmonizer: purely affine heads, each conditioned on the previous one."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

__all__ = ["CascadeRegressor"]


class CascadeRegressor(nn.Module):
    """Pooled feature (B, C) -> raw filter arguments (B, num_args).

    ``f = Lin(h)``, ``g_0 = Lin(h)``, and for head i: ``g_i = Lin(cat[f, g_{i-1}])``, ``a_i = Lin(g_i)``.
    There is no non-linearity anywhere, as in the reference (keys ``f``, ``g``, ``headers.i.{0,1}``).

    Args:
        in_channels: pooled feature width (1280 for B0).
        hidden_channels: width of ``f`` and ``g`` (160 in the reference).
        num_args: number of heads (one argument each).
    """

    def __init__(self, in_channels: int = 1280, hidden_channels: int = 160, num_args: int = 6) -> None:
        super().__init__()
        self.f = nn.Linear(in_channels, hidden_channels)
        self.g = nn.Linear(in_channels, hidden_channels)
        self.headers = nn.ModuleList(
            nn.ModuleList([nn.Linear(2 * hidden_channels, hidden_channels), nn.Linear(hidden_channels, 1)])
            for _ in range(num_args)
        )

    def forward(self, pooled: Tensor) -> Tensor:
        f = self.f(pooled)
        g = self.g(pooled)
        outputs = []
        for head in cast(list[nn.ModuleList], self.headers):
            g = head[0](torch.cat([f, g], dim=1))
            outputs.append(head[1](g))
        return torch.cat(outputs, dim=1)
