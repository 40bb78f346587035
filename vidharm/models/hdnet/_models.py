"""Registry entries for HDNet: ``hdnet`` (ngf=32), ``hdnet_lite`` (ngf=8) and ``hdnet_tiny`` (tests)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from vidharm.models._registry import ModelConfig, register_model
from vidharm.models.hdnet._network import HDNET_SIZE, HDNet, checkpoint_filter_fn

__all__ = ["HDNET_CONFIG", "HDNET_LITE_CONFIG", "HDNET_TINY_CONFIG", "hdnet", "hdnet_lite", "hdnet_tiny"]

_WEIGHTS = (
    "none published (chenhaoxing/HDNet issues #4, #8: withheld by the authors); train on iHarmony4 and pass "
    "the latest_net_G.pth"
)
_NORMALISATION = "rgb-11"  # (x - 0.5) / 0.5; binary mask in {0, 1}; forward() takes RGB [0, 1] and converts
_LICENCE = "MIT (reference code, chenhaoxing/HDNet); no official weights"

HDNET_CONFIG = ModelConfig(
    name="hdnet",
    num_outputs=3,
    input_size=HDNET_SIZE,
    normalisation=_NORMALISATION,
    weight_source=_WEIGHTS,
    sha256=None,
    licence=_LICENCE,
    description="HDNet (ACM MM'23 v3) per-frame pixel harmonizer, ngf=32, 10.41M params, runs at 256x256",
)
HDNET_LITE_CONFIG = replace(
    HDNET_CONFIG,
    name="hdnet_lite",
    description="HDNet-lite: the same network with ngf=8, 0.65M params, runs at 256x256",
)
HDNET_TINY_CONFIG = replace(
    HDNET_CONFIG,
    name="hdnet_tiny",
    weight_source="none (test variant)",
    licence="MIT",
    description="HDNet with ngf=2, for registry and pipeline tests only",
)


@register_model(HDNET_CONFIG, filter_fn=checkpoint_filter_fn)
def hdnet(**kwargs: Any) -> HDNet:
    """HDNet with the reference width (ngf=32); keyword arguments go to :class:`HDNet`."""
    return HDNet(**{"ngf": 32, **kwargs})


@register_model(HDNET_LITE_CONFIG, filter_fn=checkpoint_filter_fn)
def hdnet_lite(**kwargs: Any) -> HDNet:
    """HDNet-lite (ngf=8); keyword arguments go to :class:`HDNet`."""
    return HDNet(**{"ngf": 8, **kwargs})


@register_model(HDNET_TINY_CONFIG, filter_fn=checkpoint_filter_fn)
def hdnet_tiny(**kwargs: Any) -> HDNet:
    """HDNet with ngf=2 for fast tests; keyword arguments go to :class:`HDNet`."""
    return HDNet(**{"ngf": 2, **kwargs})
