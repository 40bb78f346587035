"""Registry entries for HDNet: ``hdnet`` (ngf=32), ``hdnet_lite`` (ngf=8) and ``hdnet_tiny`` (tests), and the
same three with external style fusion in the decoder: ``hdnet_fusion``, ``hdnet_lite_fusion`` and
``hdnet_fusion_tiny`` (not the reference network; see :class:`vidharm.models.hdnet.StyleFusion`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from vidharm.models._registry import ModelConfig, register_model
from vidharm.models.hdnet._network import DEFAULT_FUSION_STAGES, HDNET_SIZE, HDNet, checkpoint_filter_fn

__all__ = [
    "HDNET_CONFIG",
    "HDNET_LITE_CONFIG",
    "HDNET_TINY_CONFIG",
    "HDNET_FUSION_CONFIG",
    "HDNET_LITE_FUSION_CONFIG",
    "HDNET_FUSION_TINY_CONFIG",
    "FUSION_VARIANTS",
    "hdnet",
    "hdnet_lite",
    "hdnet_tiny",
    "hdnet_fusion",
    "hdnet_lite_fusion",
    "hdnet_fusion_tiny",
]

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
_FUSION_WEIGHTS = "none published (our decoder variant, not the reference's); train with `vidharm train hdnet`"
_FUSION_NOTE = "with external style fusion (encoder region statistics re-normalise the decoder's foreground)"
HDNET_FUSION_CONFIG = replace(
    HDNET_CONFIG,
    name="hdnet_fusion",
    weight_source=_FUSION_WEIGHTS,
    licence="none (no weights)",
    description=f"HDNet ngf=32 {_FUSION_NOTE}; not the reference key layout",
)
HDNET_LITE_FUSION_CONFIG = replace(
    HDNET_FUSION_CONFIG,
    name="hdnet_lite_fusion",
    description=f"HDNet-lite ngf=8 {_FUSION_NOTE}; not the reference key layout",
)
HDNET_FUSION_TINY_CONFIG = replace(
    HDNET_TINY_CONFIG,
    name="hdnet_fusion_tiny",
    description="HDNet ngf=2 with external style fusion, for registry and pipeline tests only",
)

FUSION_VARIANTS: Mapping[str, str] = MappingProxyType(
    {
        "hdnet": "hdnet_fusion",
        "hdnet_lite": "hdnet_lite_fusion",
        "hdnet_tiny": "hdnet_fusion_tiny",
    }
)
"""Registry name of each HDNet model -> its style-fusion variant (what ``hdnet_style_fusion`` trains)."""


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


@register_model(HDNET_FUSION_CONFIG, filter_fn=checkpoint_filter_fn)
def hdnet_fusion(**kwargs: Any) -> HDNet:
    """HDNet (ngf=32) with style fusion at :data:`DEFAULT_FUSION_STAGES`; keyword arguments go to :class:`HDNet`."""
    return HDNet(**{"ngf": 32, "style_fusion": DEFAULT_FUSION_STAGES, **kwargs})


@register_model(HDNET_LITE_FUSION_CONFIG, filter_fn=checkpoint_filter_fn)
def hdnet_lite_fusion(**kwargs: Any) -> HDNet:
    """HDNet-lite (ngf=8) with style fusion at :data:`DEFAULT_FUSION_STAGES`; keyword arguments go to :class:`HDNet`."""
    return HDNet(**{"ngf": 8, "style_fusion": DEFAULT_FUSION_STAGES, **kwargs})


@register_model(HDNET_FUSION_TINY_CONFIG, filter_fn=checkpoint_filter_fn)
def hdnet_fusion_tiny(**kwargs: Any) -> HDNet:
    """HDNet ngf=2 with style fusion, for fast tests; keyword arguments go to :class:`HDNet`."""
    return HDNet(**{"ngf": 2, "style_fusion": DEFAULT_FUSION_STAGES, **kwargs})
