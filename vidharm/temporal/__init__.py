"""Temporal smoothing of per-frame filter parameters, and scene-cut detection that resets it.

The analysis phase stores, per frame, the raw filter arguments and a background signature; the smoothing phase
finds cuts from the signatures and smooths each argument track between them; rendering applies the result.
"""

from __future__ import annotations

from vidharm.temporal._cuts import (
    DEFAULT_CUT_THRESHOLD,
    SIGNATURE_SIZE,
    background_signature,
    detect_scene_cuts,
    signature_distance,
)
from vidharm.temporal._smooth import DEFAULT_HALF_LIFE_S, SMOOTH_MODES, ema_alpha, smooth_track

__all__ = [
    "DEFAULT_HALF_LIFE_S",
    "SMOOTH_MODES",
    "ema_alpha",
    "smooth_track",
    "DEFAULT_CUT_THRESHOLD",
    "SIGNATURE_SIZE",
    "background_signature",
    "signature_distance",
    "detect_scene_cuts",
]
