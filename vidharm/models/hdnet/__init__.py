"""HDNet ("Hierarchical Dynamic Image Harmonization", ACM MM 2023, v3 code): our implementation.

State-dict compatible with the reference generator (65 keys, no ``module.`` prefix). No official weights
exist; the registered models ``hdnet``, ``hdnet_lite`` and ``hdnet_tiny`` start from the reference init.
The network runs at the size it is given (multiples of 8); the pipeline runs it at 256x256 and carries
the result to full resolution with :mod:`vidharm.filters.transfer`.
"""

from __future__ import annotations

from vidharm.models.hdnet._blocks import LocalDynamics, MaskGuidedDynamicConv, RegionAwareNorm
from vidharm.models.hdnet._models import (
    HDNET_CONFIG,
    HDNET_LITE_CONFIG,
    HDNET_TINY_CONFIG,
    hdnet,
    hdnet_lite,
    hdnet_tiny,
)
from vidharm.models.hdnet._network import HDNET_SIZE, MASK_THRESHOLD, HDNet, checkpoint_filter_fn

__all__ = [
    "HDNet",
    "HDNET_CONFIG",
    "HDNET_LITE_CONFIG",
    "HDNET_SIZE",
    "HDNET_TINY_CONFIG",
    "LocalDynamics",
    "MASK_THRESHOLD",
    "MaskGuidedDynamicConv",
    "RegionAwareNorm",
    "checkpoint_filter_fn",
    "hdnet",
    "hdnet_lite",
    "hdnet_tiny",
]
