"""Per-frame foreground masks: folders of numbered images, mask videos, keyframe propagation, and their checks."""

from __future__ import annotations

from vidharm.masks.alpha import ClipAlpha
from vidharm.masks.evaluate import BOUNDARY_TOLERANCE, boundary_f_score, format_loo_table, leave_one_out, mask_iou
from vidharm.masks.propagate import DEFAULT_FLOW_PRESET, DEFAULT_FLOW_SIZE, FLOW_PRESETS, propagate_masks
from vidharm.masks.sources import (
    MASK_IMAGE_SUFFIXES,
    MaskFolder,
    MaskVideo,
    StillMask,
    fit_mask,
    open_masks,
    to_alpha,
)
from vidharm.masks.sparse import PropagatedMasks, clip_frame_source, write_masks

__all__ = [
    "BOUNDARY_TOLERANCE",
    "ClipAlpha",
    "DEFAULT_FLOW_PRESET",
    "DEFAULT_FLOW_SIZE",
    "FLOW_PRESETS",
    "MASK_IMAGE_SUFFIXES",
    "MaskFolder",
    "MaskVideo",
    "PropagatedMasks",
    "StillMask",
    "boundary_f_score",
    "clip_frame_source",
    "fit_mask",
    "format_loo_table",
    "leave_one_out",
    "mask_iou",
    "open_masks",
    "propagate_masks",
    "to_alpha",
    "write_masks",
]
