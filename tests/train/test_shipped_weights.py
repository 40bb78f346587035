"""The Harmonizer weights shipped in vidharm/models/weights/: size, format, sha256 check, pretrained loading."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from vidharm.errors import CheckpointError
from vidharm.models import _registry, create_model, get_model_config
from vidharm.models._registry import bundled_weights_path


def _shipped() -> Path:
    path = bundled_weights_path("harmonizer")
    assert path is not None, "the harmonizer ModelConfig names no bundled weights"
    return path


def test_shipped_file_is_small_fp16_with_the_official_keys() -> None:
    path = _shipped()
    assert path.is_file() and path.stat().st_size < 10 * 1024 * 1024
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert len(state) == 392
    assert {v.dtype for v in state.values()} == {torch.float16, torch.int64}
    assert (path.parent / "MODEL_CARD.md").is_file()


def test_pretrained_loads_the_bundled_weights_and_upcasts() -> None:
    model = create_model("harmonizer", pretrained=True)
    state = torch.load(_shipped(), map_location="cpu", weights_only=True)
    weight = model.state_dict()["regressor.f.weight"]
    assert weight.dtype == torch.float32
    assert torch.equal(weight, state["regressor.f.weight"].float())
    args = model(torch.rand(1, 3, 120, 160), torch.ones(1, 1, 120, 160) * 0.5)
    assert args.shape == (1, 6) and torch.isfinite(args).all()


def test_sha256_is_checked_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_model_config("harmonizer").sha256 is not None
    copy = tmp_path / _shipped().name
    shutil.copyfile(_shipped(), copy)
    with copy.open("r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    monkeypatch.setattr(_registry, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="sha256"):
        create_model("harmonizer", pretrained=True)
    copy.unlink()
    with pytest.raises(CheckpointError, match="missing from this install"):
        create_model("harmonizer", pretrained=True)


def test_models_without_bundled_weights_still_explain() -> None:
    with pytest.raises(CheckpointError, match=r"no pretrained weights ship.*--weights"):
        create_model("hdnet_lite", pretrained=True)
