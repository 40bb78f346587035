"""Harmonizer (Ke et al., ECCV 2022): our own state_dict-compatible implementation.

Importing this package registers the ``harmonizer`` and ``harmonizer_tiny`` networks and the analytic
``stats`` estimator (:mod:`vidharm.models.harmonizer.analytic`), which predicts the same six arguments.
"""

from __future__ import annotations

from vidharm.models.harmonizer import analytic as analytic  # registers "stats"
from vidharm.models.harmonizer._efficientnet import B0_STAGES, EfficientBackbone, StageSpec
from vidharm.models.harmonizer._model import (
    HARMONIZER_CONFIG,
    HARMONIZER_TINY_CONFIG,
    Harmonizer,
    checkpoint_filter_fn,
    harmonizer,
    harmonizer_tiny,
)
from vidharm.models.harmonizer._regressor import CascadeRegressor

__all__ = [
    "Harmonizer",
    "EfficientBackbone",
    "CascadeRegressor",
    "StageSpec",
    "B0_STAGES",
    "checkpoint_filter_fn",
    "harmonizer",
    "harmonizer_tiny",
    "HARMONIZER_CONFIG",
    "HARMONIZER_TINY_CONFIG",
    "analytic",
]
