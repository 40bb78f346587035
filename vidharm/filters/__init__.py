"""Differentiable white-box colour filters of Harmonizer, their chain, and the final composite.

Every function takes ``image`` (B, 3, H, W) float RGB in [0, 1] and per-image amounts; the chain
takes raw ``args`` (B, 6) in :data:`FILTER_NAMES` order and clamps them to [-1, 1]. Values outside [0, 1]
(scene-linear frames in the analysis space) follow one rule, :func:`apply_filters_unbounded`: the filters act
on ``clamp(x, 0, 1)`` and the excess ``x - clamp(x, 0, 1)`` is carried over unchanged. The colour transfer
functions carry a low-resolution result (HDNet's) to full resolution as a global or local colour mapping.
"""

from __future__ import annotations

from vidharm.filters._adjust import (
    adjust_brightness,
    adjust_contrast,
    adjust_highlight,
    adjust_saturation,
    adjust_shadow,
    adjust_temperature,
)
from vidharm.filters._chain import (
    AUGMENT_RANGES,
    FILTER_NAMES,
    NUM_ARGS,
    NUM_STATS,
    apply_filters,
    apply_filters_unbounded,
    carry_excess,
    composite,
    measure_filter_stats,
)
from vidharm.filters._lut import (
    TONE_TOLERANCE,
    FilterLuts,
    apply_filter_luts,
    build_filter_luts,
    lut_backend,
)
from vidharm.filters._modules import (
    AdjustBrightness,
    AdjustContrast,
    AdjustHighlight,
    AdjustSaturation,
    AdjustShadow,
    AdjustTemperature,
    ApplyFilters,
)
from vidharm.filters._yuv import YUV_MATRICES, apply_filter_luts_yuv420, yuv_matrix
from vidharm.filters.transfer import (
    DEFAULT_GRID,
    DEFAULT_LOCAL_RIDGE,
    DEFAULT_RIDGE,
    apply_color_transform,
    apply_local_affine_grid,
    color_transform_size,
    fit_color_transform,
    fit_local_affine_grid,
    identity_color_transform,
)

__all__ = [
    "FILTER_NAMES",
    "NUM_ARGS",
    "NUM_STATS",
    "AUGMENT_RANGES",
    "adjust_temperature",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_highlight",
    "adjust_shadow",
    "measure_filter_stats",
    "apply_filters",
    "apply_filters_unbounded",
    "carry_excess",
    "composite",
    "FilterLuts",
    "TONE_TOLERANCE",
    "build_filter_luts",
    "apply_filter_luts",
    "lut_backend",
    "YUV_MATRICES",
    "apply_filter_luts_yuv420",
    "yuv_matrix",
    "AdjustTemperature",
    "AdjustBrightness",
    "AdjustContrast",
    "AdjustSaturation",
    "AdjustHighlight",
    "AdjustShadow",
    "ApplyFilters",
    "DEFAULT_GRID",
    "DEFAULT_LOCAL_RIDGE",
    "DEFAULT_RIDGE",
    "fit_color_transform",
    "apply_color_transform",
    "identity_color_transform",
    "color_transform_size",
    "fit_local_affine_grid",
    "apply_local_affine_grid",
]
