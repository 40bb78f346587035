"""``TrainConfig``: every setting of ``vidharm train``, loaded from ``configs/train_*.yaml`` plus ``--set``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vidharm.errors import UsageError

__all__ = ["TrainConfig", "load_train_config"]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (the YAML in ``configs/`` sets only these fields).

    Attributes:
        image_size: side of the square training crops (images are resized, not cropped); the network also
            runs at this size during training (Harmonizer's ``input_size``); the shipped model runs at 256.
        batch_size: images per step.
        steps: total optimiser steps.
        max_minutes: stop (and save) after this much wall-clock time; 0 = no limit.
        lr: Adam learning rate (official Harmonizer: 3e-4).
        lr_decay_steps: steps at which the learning rate is multiplied by ``lr_gamma``.
        lr_gamma: learning-rate factor at each decay step.
        weight_decay: Adam weight decay.
        seed: seed of the model initialisation, batch order and perturbations.
        val_fraction: fraction of the groups (photos, or whole video sequences) held out; never trained on.
        split_seed: seed of the held-out split (must match at evaluation).
        val_every: validation every this many steps (0 = only at the end).
        val_images: number of held-out images used by the periodic validation.
        checkpoint_every: save ``last.ckpt`` every this many steps.
        log_every: append a row to ``train_log.csv`` every this many steps.
        p_filters: probability of a sample perturbed by the six filters in reverse order (per-step loss).
        p_lut: probability of a random smooth 3D LUT perturbation (final-output loss only).
        p_curves: probability of a random monotone tone curve on all channels (final-output loss only).
        p_identity: probability of an unperturbed sample (learns to leave harmonious images alone).
        filter_scale: multiplies the filter argument ranges (``vidharm.filters.AUGMENT_RANGES``).
        random_magnitude: scale each sample's perturbation by U(0, 1) (mild mismatches as common as strong).
        dynamic_floor: lower bound of the dynamic loss normaliser (0 = official; see
            :func:`vidharm.train.losses.dynamic_cascade_loss`).
        final_weight: weight of the final-output loss of non-filter samples (official "coarse" loss: 10).
        arg_weight: weight of an MSE between predicted and exact inverse arguments on single-step samples
            (0 = the official loss only).
        contrastive_weight: weight of the region-wise contrastive loss (0 = off).
        contrastive_patches: patches sampled per region and image.
        contrastive_patch: patch side in feature-map cells.
        contrastive_temperature: InfoNCE temperature.
        contrastive_refresh: steps between refreshes of the frozen copy of the encoder that gives style features.
        hdnet_min_area: lower bound of the foreground area (pixels x channels) in HDNet's normalised MSE.
        hdnet_style_fusion: train the HDNet variant with external style fusion in the decoder (``hdnet_lite`` ->
            ``hdnet_lite_fusion``, ``hdnet`` -> ``hdnet_fusion``; :class:`vidharm.models.hdnet.StyleFusion`);
            its weights then load with that name. False trains the reference network.
        bn_momentum: BatchNorm running-statistics momentum during training (not saved in the weights).
        drop_connect_rate: stochastic depth of the Harmonizer backbone during training.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        threads: torch CPU threads (0 = leave torch's default).
        init_weights: a state_dict to start from (fine-tuning), or None for the default initialisation.
        flip: random horizontal flips.

    Example:
        >>> TrainConfig().image_size, TrainConfig(batch_size=4).batch_size
        (128, 4)
    """

    image_size: int = 128
    batch_size: int = 16
    steps: int = 20000
    max_minutes: float = 0.0
    lr: float = 3e-4
    lr_decay_steps: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0
    val_fraction: float = 0.2
    split_seed: int = 0
    val_every: int = 500
    val_images: int = 64
    checkpoint_every: int = 200
    log_every: int = 20
    p_filters: float = 0.55
    p_lut: float = 0.2
    p_curves: float = 0.1
    p_identity: float = 0.15
    filter_scale: float = 1.0
    random_magnitude: bool = True
    dynamic_floor: float = 0.0
    final_weight: float = 10.0
    arg_weight: float = 0.0
    contrastive_weight: float = 0.0
    contrastive_patches: int = 8
    contrastive_patch: int = 4
    contrastive_temperature: float = 0.1
    contrastive_refresh: int = 200
    hdnet_min_area: float = 100.0
    hdnet_style_fusion: bool = False
    bn_momentum: float = 0.1
    drop_connect_rate: float = 0.2
    device: str = "cpu"
    threads: int = 1
    init_weights: str | None = None
    flip: bool = True

    def __post_init__(self) -> None:
        positive = {
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "steps": self.steps,
            "checkpoint_every": self.checkpoint_every,
            "log_every": self.log_every,
            "contrastive_patches": self.contrastive_patches,
            "contrastive_patch": self.contrastive_patch,
            "contrastive_refresh": self.contrastive_refresh,
            "val_images": self.val_images,
        }
        for key, value in positive.items():
            if value < 1:
                raise UsageError(f"{key}: expected a positive integer, got {value}; set {key}=1 or more")
        if self.image_size % 32:
            raise UsageError(
                f"image_size: expected a multiple of 32 (the backbone downsamples by 32), got {self.image_size}; "
                "use 128 or 256"
            )
        probs = (self.p_filters, self.p_lut, self.p_curves, self.p_identity)
        if min(probs) < 0 or sum(probs) <= 0:
            raise UsageError(
                f"p_filters, p_lut, p_curves, p_identity: expected non-negative numbers with a positive sum, "
                f"got {probs}; e.g. p_filters=0.55 p_lut=0.2 p_curves=0.1 p_identity=0.15"
            )
        if not 0.0 < self.val_fraction < 1.0:
            raise UsageError(f"val_fraction: expected a number in (0, 1), got {self.val_fraction}; e.g. 0.2")
        for key in ("lr", "contrastive_temperature"):
            if getattr(self, key) <= 0:
                raise UsageError(f"{key}: expected a positive number, got {getattr(self, key)}")
        for key in (
            "dynamic_floor",
            "final_weight",
            "arg_weight",
            "contrastive_weight",
            "max_minutes",
            "weight_decay",
            "val_every",
        ):
            if getattr(self, key) < 0:
                raise UsageError(f"{key}: expected a number >= 0, got {getattr(self, key)}")


def load_train_config(path: str | Path | None = None, overrides: tuple[str, ...] | list[str] = ()) -> TrainConfig:
    """Load a :class:`TrainConfig` from YAML (e.g. ``configs/train_harmonizer.yaml``) and ``key=value`` overrides.

    Args:
        path: the YAML file, or None for the built-in defaults.
        overrides: ``"key=value"`` strings as given to ``--set``; applied last.

    Returns:
        The resolved, validated config.

    Raises:
        InputError: the YAML file cannot be read or is not a mapping.
        UsageError: an unknown key (with the nearest valid one) or a bad value.

    Example:
        >>> load_train_config(None, ["batch_size=4", "lr_decay_steps=100,200"]).lr_decay_steps
        (100, 200)
    """
    from vidharm.config import load_config

    return load_config(TrainConfig, path, overrides)
