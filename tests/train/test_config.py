"""Tests for vidharm/train/config.py and the YAML presets in configs/."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidharm.errors import UsageError
from vidharm.train.config import TrainConfig, load_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["train_harmonizer.yaml", "train_hdnet.yaml"])
def test_presets_load(name: str) -> None:
    config = load_train_config(CONFIGS / name)
    assert isinstance(config, TrainConfig) and config.device == "cpu"


def test_overrides_apply_last_and_unknown_keys_suggest() -> None:
    config = load_train_config(CONFIGS / "train_harmonizer.yaml", ["batch_size=4", "contrastive_weight=0.1"])
    assert config.batch_size == 4 and config.contrastive_weight == 0.1
    with pytest.raises(UsageError, match="did you mean 'batch_size'"):
        load_train_config(None, ["batch_sise=4"])


def test_invalid_values_are_refused() -> None:
    with pytest.raises(UsageError, match="multiple of 32"):
        TrainConfig(image_size=100)
    with pytest.raises(UsageError, match="positive integer"):
        TrainConfig(batch_size=0)
    with pytest.raises(UsageError, match="p_filters"):
        TrainConfig(p_filters=0, p_lut=0, p_curves=0, p_identity=0)
    with pytest.raises(UsageError, match="val_fraction"):
        TrainConfig(val_fraction=1.0)
