"""Per-frame foreground masks: folders of numbered images, mask videos, and their checks."""

from __future__ import annotations

from vidharm.masks.sources import MASK_IMAGE_SUFFIXES, MaskFolder, MaskVideo, fit_mask, open_masks, to_alpha

__all__ = ["MASK_IMAGE_SUFFIXES", "MaskFolder", "MaskVideo", "fit_mask", "open_masks", "to_alpha"]
