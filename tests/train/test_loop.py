"""Tests for vidharm/train/loop.py: a step lowers the loss, resume continues exactly, clear errors first."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from vidharm.errors import CheckpointError, MaskError, UsageError
from vidharm.models import create_model
from vidharm.train.config import TrainConfig
from vidharm.train.loop import StyleEncoder, build_model, compute_loss, export_weights, train
from vidharm.train.perturb import make_training_batch


def _tiny_batch(size: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    real = 0.2 + 0.6 * torch.rand(4, 3, size, size, generator=g)
    mask = torch.zeros(4, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return make_training_batch(real, mask, g, probabilities=(1.0, 0.5, 0.5, 0.0))


@pytest.mark.parametrize(
    ("model_name", "overrides"),
    [
        ("harmonizer_tiny", {}),
        ("harmonizer_tiny", {"contrastive_weight": 0.5}),
        ("hdnet_tiny", {}),
        ("hdnet_tiny", {"contrastive_weight": 0.5}),
    ],
)
def test_one_training_step_lowers_the_loss(model_name: str, overrides: dict) -> None:
    config = TrainConfig(image_size=64, drop_connect_rate=0.0, **overrides)
    model = build_model(model_name, config)
    style = StyleEncoder(model) if config.contrastive_weight else None
    batch = _tiny_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_now() -> torch.Tensor:
        return compute_loss(model, batch, config, style, torch.Generator().manual_seed(0))[0]

    before = loss_now()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_now()
    assert torch.isfinite(before) and after < before


def test_training_initialisation_starts_near_identity() -> None:
    model = build_model("harmonizer_tiny", TrainConfig(image_size=64)).eval()
    args = model(torch.rand(2, 3, 64, 64), torch.ones(2, 1, 64, 64))
    assert args.abs().max() < 0.05


def _config(**kw) -> TrainConfig:
    base = dict(image_size=64, batch_size=2, steps=4, val_every=2, val_images=2, checkpoint_every=2, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def test_resume_continues_from_saved_step_and_matches_uninterrupted(photos: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    first = train("harmonizer_tiny", photos, _config(steps=2), tmp_path / "a", on_step=lambda p: seen.append(p.step))
    assert first.step == 2 and seen == [1, 2]
    assert torch.load(first.checkpoint, weights_only=True)["step"] == 2
    resumed = train(
        "harmonizer_tiny", photos, _config(steps=4), tmp_path / "a", resume=True, on_step=lambda p: seen.append(p.step)
    )
    assert resumed.step == 4 and seen == [1, 2, 3, 4]
    with (tmp_path / "a" / "train_log.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    straight = train("harmonizer_tiny", photos, _config(steps=4), tmp_path / "b")
    a = torch.load(resumed.weights, weights_only=True)
    b = torch.load(straight.weights, weights_only=True)
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=1e-5), key
    with (tmp_path / "a" / "val_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4] and float(rows[0]["val_eval_identity_fmse"]) > 0
    assert resumed.best_weights is not None and resumed.best_weights.exists()


def test_bad_inputs_fail_before_training(photos: Path, tmp_path: Path) -> None:
    train("harmonizer_tiny", photos, _config(steps=1), tmp_path / "run")
    with pytest.raises(CheckpointError, match="written for model 'harmonizer_tiny', not 'hdnet_tiny'"):
        train("hdnet_tiny", photos, _config(), tmp_path / "run", resume=True)
    with pytest.raises(UsageError, match="already holds a run"):
        train("harmonizer_tiny", photos, _config(), tmp_path / "run")
    with pytest.raises(CheckpointError, match="does not exist"):
        train("harmonizer_tiny", photos, _config(), tmp_path / "fresh", resume=True)
    junk = tmp_path / "junk.ckpt"
    torch.save({"w": torch.zeros(1)}, junk)
    with pytest.raises(CheckpointError, match="not a vidharm training checkpoint"):
        train("harmonizer_tiny", photos, _config(), tmp_path / "fresh", resume=junk)
    with pytest.raises(UsageError, match="no trainable network"):
        train("stats", photos, _config(), tmp_path / "stats")
    (photos / "masks" / "00000.png").unlink()
    with pytest.raises(MaskError):
        train("harmonizer_tiny", photos, _config(), tmp_path / "nomask")
    assert not (tmp_path / "nomask").exists() and not (tmp_path / "fresh").exists()


def test_stop_file_ends_the_run_with_a_checkpoint(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "STOP").touch()
    result = train("hdnet_tiny", photos, _config(), out)
    assert result.stopped_early and result.step == 0 and result.checkpoint.exists()


def test_export_weights_fp16_loads_into_model(tmp_path: Path) -> None:
    model = create_model("harmonizer_tiny")
    path = export_weights({"model": model.state_dict(), "step": 3}, tmp_path / "w.pt")
    state = torch.load(path, weights_only=True)
    assert all(v.dtype in (torch.float16, torch.int64) for v in state.values())
    loaded = create_model("harmonizer_tiny", checkpoint=path)
    ref = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert value.dtype == ref[key].dtype
        assert torch.allclose(value.float(), ref[key].float(), atol=1e-2, rtol=1e-3)
