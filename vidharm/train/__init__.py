"""Training and evaluation of the harmonization models.

``vidharm train harmonizer|hdnet --data DIR`` calls :func:`train` with a :class:`TrainConfig` loaded by
:func:`load_train_config` from ``configs/train_*.yaml``; ``vidharm eval images --data DIR`` calls
:func:`evaluate_images` and prints :func:`format_eval_table`.
"""

from __future__ import annotations

from vidharm.train.config import TrainConfig, load_train_config
from vidharm.train.data import Dataset, Sample, open_dataset
from vidharm.train.evaluate import EvalReport, EvalRow, evaluate_images, format_eval_table
from vidharm.train.loop import TrainProgress, TrainResult, build_model, export_weights, train
from vidharm.train.losses import (
    dynamic_cascade_loss,
    foreground_mse,
    harmonizer_loss,
    masked_step_loss,
    region_contrastive_loss,
)
from vidharm.train.perturb import (
    FAMILIES,
    inverse_filter_args,
    make_training_batch,
    perturb_for_eval,
    perturb_with_filters,
    restore_steps,
)

__all__ = [
    "TrainConfig",
    "load_train_config",
    "Dataset",
    "Sample",
    "open_dataset",
    "TrainProgress",
    "TrainResult",
    "train",
    "build_model",
    "export_weights",
    "EvalReport",
    "EvalRow",
    "evaluate_images",
    "format_eval_table",
    "masked_step_loss",
    "dynamic_cascade_loss",
    "harmonizer_loss",
    "foreground_mse",
    "region_contrastive_loss",
    "FAMILIES",
    "make_training_batch",
    "perturb_with_filters",
    "restore_steps",
    "inverse_filter_args",
    "perturb_for_eval",
]
