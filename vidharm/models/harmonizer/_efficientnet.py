"""EfficientNet-B0 backbone with two 4-channel stems, written from the published design.

Parameter names and shapes follow the reference layout (``_blocks.{i}._expand_conv`` ... ``_bn2``,
``_conv_head``, ``_bn1``, ``_conv_fg``/``_bn_fg``, ``_conv_bg``/``_bn_bg``) so official weights load
strictly. Convolutions use TensorFlow "SAME" padding, which is asymmetric for stride 2; BatchNorm
uses eps 1e-3 and momentum 0.01 (PyTorch convention), as in EfficientNet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["StageSpec", "B0_STAGES", "EfficientBackbone"]

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01
_SE_RATIO = 0.25


class StageSpec(NamedTuple):
    """One EfficientNet stage: ``repeats`` MBConv blocks, the first with ``stride``."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int


B0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 16),
    StageSpec(2, 3, 2, 6, 24),
    StageSpec(2, 5, 2, 6, 40),
    StageSpec(3, 3, 2, 6, 80),
    StageSpec(3, 5, 1, 6, 112),
    StageSpec(4, 5, 2, 6, 192),
    StageSpec(1, 3, 1, 6, 320),
)


def _swish(x: Tensor) -> Tensor:
    # Written as x * sigmoid(x) (not F.silu) to round exactly like the reference's swish.
    return x * torch.sigmoid(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding computed from the input size (extra pixel right/bottom)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, **kwargs: object) -> None:
        # Stride 1 with an odd kernel pads symmetrically, so the conv can do it itself without a copy.
        static = (kernel - 1) // 2 if stride == 1 and kernel % 2 == 1 else 0
        super().__init__(in_channels, out_channels, kernel, stride=stride, padding=static, **kwargs)  # type: ignore[arg-type]
        self._dynamic = static == 0 and kernel > 1

    def forward(self, x: Tensor) -> Tensor:
        if self._dynamic:
            pads = []
            for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1], strict=True):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


def _drop_connect(x: Tensor, rate: float, training: bool) -> Tensor:
    # Stochastic depth: drop the whole residual branch per sample, rescaling the survivors.
    if not training or rate <= 0:
        return x
    keep = 1 - rate
    mask = torch.floor(keep + torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device))
    return x / keep * mask


class _MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-excite (expand -> depthwise -> SE -> project)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int, drop_rate: float
    ) -> None:
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        squeeze = max(1, int(in_channels * _SE_RATIO))
        self._se_reduce = nn.Conv2d(mid, squeeze, 1)
        self._se_expand = nn.Conv2d(squeeze, mid, 1)
        self._project_conv = nn.Conv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.has_expand:
            x = _swish(self._bn0(self._expand_conv(x)))
        x = _swish(self._bn1(self._depthwise_conv(x)))
        squeezed = F.adaptive_avg_pool2d(x, 1)
        squeezed = self._se_expand(_swish(self._se_reduce(squeezed)))
        x = torch.sigmoid(squeezed) * x
        x = self._bn2(self._project_conv(x))
        if self.has_skip:
            x = _drop_connect(x, self.drop_rate, self.training) + inputs
        return x


class EfficientBackbone(nn.Module):
    """EfficientNet body fed by two stems: ``stem(fg_in) || stem(bg_in)`` -> MBConv blocks -> 1x1 head.

    Args:
        stages: the MBConv stages (B0 by default).
        stem_channels: output channels of *each* stem; the blocks see twice this many.
        head_channels: channels of the final 1x1 head (1280 for B0).
        in_channels: channels of each stem input (RGB + mask = 4).
        drop_connect_rate: stochastic-depth rate of the last block in training (scaled linearly by
            block index, 0 for the first); no effect in eval mode.
    """

    def __init__(
        self,
        stages: Sequence[StageSpec] = B0_STAGES,
        stem_channels: int = 16,
        head_channels: int = 1280,
        in_channels: int = 4,
        drop_connect_rate: float = 0.2,
    ) -> None:
        super().__init__()
        specs = []
        channels = 2 * stem_channels
        for stage in stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                specs.append((channels, stage.out_channels, stage.kernel, stride, stage.expand))
                channels = stage.out_channels
        self._blocks = nn.ModuleList(
            _MBConv(cin, cout, k, s, e, drop_connect_rate * idx / len(specs))
            for idx, (cin, cout, k, s, e) in enumerate(specs)
        )
        self._conv_head = nn.Conv2d(channels, head_channels, 1, bias=False)
        self._bn1 = _bn(head_channels)
        self._conv_fg = _SameConv2d(in_channels, stem_channels, 3, 2, bias=False)
        self._bn_fg = _bn(stem_channels)
        self._conv_bg = _SameConv2d(in_channels, stem_channels, 3, 2, bias=False)
        self._bn_bg = _bn(stem_channels)
        self.out_channels = head_channels

    def forward(self, fg_in: Tensor, bg_in: Tensor) -> Tensor:
        """(B, 4, S, S) foreground and background stem inputs -> (B, head_channels, S/32, S/32) for B0."""
        fg = _swish(self._bn_fg(self._conv_fg(fg_in)))
        bg = _swish(self._bn_bg(self._conv_bg(bg_in)))
        x = torch.cat([fg, bg], dim=1)
        for block in self._blocks:
            x = block(x)
        return _swish(self._bn1(self._conv_head(x)))
