"""Image metrics (MSE, PSNR, fMSE, fPSNR) and temporal-consistency metrics (TL, E_warp, foreground luma change).

All images are RGB numpy arrays on the 0-255 scale (uint8 or float; uint16 is rescaled by 1/257); masks are
(H, W) floats in [0, 1]. :func:`evaluate_flicker` streams a clip through all of them.
"""

from __future__ import annotations

from vidharm.metrics._flow import DEFAULT_FLOW_PRESET, FLOW_PRESETS, compute_flow, warp
from vidharm.metrics._image import fmse, fpsnr, mse, psnr
from vidharm.metrics._report import FlickerFrame, evaluate_flicker, format_flicker_table, plot_flicker
from vidharm.metrics._temporal import (
    LUMA_WEIGHTS,
    TL_SIZE,
    foreground_luma,
    mean_abs_change,
    occlusion_mask,
    temporal_loss,
    warping_error,
)

__all__ = [
    "mse",
    "psnr",
    "fmse",
    "fpsnr",
    "DEFAULT_FLOW_PRESET",
    "FLOW_PRESETS",
    "compute_flow",
    "warp",
    "TL_SIZE",
    "LUMA_WEIGHTS",
    "temporal_loss",
    "occlusion_mask",
    "warping_error",
    "foreground_luma",
    "mean_abs_change",
    "FlickerFrame",
    "evaluate_flicker",
    "format_flicker_table",
    "plot_flicker",
]
