"""HDNet ("Hierarchical Dynamic Image Harmonization", ACM MM 2023, v3 code): our implementation.

State-dict compatible with the reference generator (65 keys, no ``module.`` prefix). No official weights
exist; the registered models ``hdnet``, ``hdnet_lite`` and ``hdnet_tiny`` start from the reference init.
``hdnet_fusion``, ``hdnet_lite_fusion`` and ``hdnet_fusion_tiny`` add external style fusion to the decoder
(:class:`StyleFusion`, our design after Liang & Pun 2022; off by default, so the plain models keep the
reference key layout and outputs).
The network runs at the size it is given (multiples of 8); the pipeline runs it at 256x256 and carries
the result to full resolution with :mod:`vidharm.filters.transfer`.
"""

from __future__ import annotations

from vidharm.models.hdnet._blocks import LocalDynamics, MaskGuidedDynamicConv, RegionAwareNorm, StyleFusion
from vidharm.models.hdnet._models import (
    FUSION_VARIANTS,
    HDNET_CONFIG,
    HDNET_FUSION_CONFIG,
    HDNET_FUSION_TINY_CONFIG,
    HDNET_LITE_CONFIG,
    HDNET_LITE_FUSION_CONFIG,
    HDNET_TINY_CONFIG,
    hdnet,
    hdnet_fusion,
    hdnet_fusion_tiny,
    hdnet_lite,
    hdnet_lite_fusion,
    hdnet_tiny,
)
from vidharm.models.hdnet._network import (
    DEFAULT_FUSION_STAGES,
    FUSION_STAGES,
    HDNET_SIZE,
    MASK_THRESHOLD,
    HDNet,
    checkpoint_filter_fn,
)

__all__ = [
    "DEFAULT_FUSION_STAGES",
    "FUSION_STAGES",
    "FUSION_VARIANTS",
    "HDNet",
    "HDNET_CONFIG",
    "HDNET_FUSION_CONFIG",
    "HDNET_FUSION_TINY_CONFIG",
    "HDNET_LITE_CONFIG",
    "HDNET_LITE_FUSION_CONFIG",
    "HDNET_SIZE",
    "HDNET_TINY_CONFIG",
    "LocalDynamics",
    "MASK_THRESHOLD",
    "MaskGuidedDynamicConv",
    "RegionAwareNorm",
    "StyleFusion",
    "checkpoint_filter_fn",
    "hdnet",
    "hdnet_fusion",
    "hdnet_fusion_tiny",
    "hdnet_lite",
    "hdnet_lite_fusion",
    "hdnet_tiny",
]
