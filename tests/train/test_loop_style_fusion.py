"""Tests for training HDNet with external style fusion (vidharm/train/loop.py, config.py: ``hdnet_style_fusion``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vidharm.errors import CheckpointError, UsageError
from vidharm.models import create_model
from vidharm.models.hdnet import HDNet
from vidharm.train.config import TrainConfig, load_train_config
from vidharm.train.loop import StyleEncoder, build_model, compute_loss, resolve_model_name, train
from vidharm.train.perturb import make_training_batch

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _batch(size: int = 64):
    g = torch.Generator().manual_seed(0)
    real = 0.2 + 0.6 * torch.rand(4, 3, size, size, generator=g)
    mask = torch.zeros(4, 1, size, size)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1
    return make_training_batch(real, mask, g, probabilities=(0.0, 1.0, 1.0, 0.0))


@pytest.mark.parametrize(
    ("name", "fusion", "expected"),
    [
        ("hdnet_lite", True, "hdnet_lite_fusion"),
        ("hdnet", True, "hdnet_fusion"),
        ("hdnet_tiny", True, "hdnet_fusion_tiny"),
        ("hdnet_lite_fusion", True, "hdnet_lite_fusion"),
        ("hdnet_lite_fusion", False, "hdnet_lite_fusion"),
        ("hdnet_lite", False, "hdnet_lite"),
        ("harmonizer", False, "harmonizer"),
    ],
)
def test_resolve_model_name(name: str, fusion: bool, expected: str) -> None:
    assert resolve_model_name(name, TrainConfig(hdnet_style_fusion=fusion)) == expected


def test_style_fusion_for_harmonizer_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="hdnet_style_fusion: 'harmonizer_tiny' has no style-fusion variant"):
        build_model("harmonizer_tiny", TrainConfig(image_size=64, hdnet_style_fusion=True))


def test_build_model_with_the_flag_builds_the_fused_network() -> None:
    plain = build_model("hdnet_tiny", TrainConfig(image_size=64))
    fused = build_model("hdnet_tiny", TrainConfig(image_size=64, hdnet_style_fusion=True))
    assert isinstance(fused, HDNet) and fused.style_fusion and not plain.style_fusion
    assert fused.training
    # Same seed: the reference parameters start equal, so the two arms of a comparison differ only by fusion.
    fused_sd = fused.state_dict()
    assert all(torch.equal(v, fused_sd[k]) for k, v in plain.state_dict().items())


def test_contrastive_training_step_moves_the_fusion_parameters() -> None:
    config = TrainConfig(image_size=64, hdnet_style_fusion=True, contrastive_weight=0.5)
    model = build_model("hdnet_tiny", config)
    style = StyleEncoder(model)
    batch = _batch()
    loss, parts = compute_loss(model, batch, config, style, torch.Generator().manual_seed(0))
    assert "loss_contrastive" in parts and parts["loss_contrastive"] > 0
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "fusion." in n}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    optimizer.zero_grad()
    loss.backward()
    for name in before:
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    optimizer.step()
    with torch.no_grad():
        after = compute_loss(model, batch, config, style, torch.Generator().manual_seed(0))[0]
    assert after < loss
    assert all(not torch.equal(model.get_parameter(n), v) for n, v in before.items())


def test_contrastive_term_alone_reaches_the_fusion_parameters() -> None:
    # The region-wise contrastive loss back-propagates through the output image into the decoder's fusion.
    config = TrainConfig(image_size=64, hdnet_style_fusion=True, contrastive_weight=1.0)
    model = build_model("hdnet_tiny", config)
    style = StyleEncoder(model)
    _, parts = compute_loss(model, _batch(), config, style, torch.Generator().manual_seed(0))
    parts["loss_contrastive"].backward()
    grads = [p.grad for n, p in model.named_parameters() if "fusion." in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_train_with_the_flag_records_and_saves_the_fused_model(make_photos, tmp_path: Path) -> None:  # noqa: ANN001
    root = make_photos(tmp_path / "photos", count=5)
    config = TrainConfig(
        image_size=32, batch_size=2, steps=2, val_every=0, val_images=1, hdnet_style_fusion=True, contrastive_weight=0.1
    )
    result = train("hdnet_tiny", root, config, tmp_path / "run")
    info = json.loads((result.out_dir / "run.json").read_text())
    assert info["model"] == result.model == "hdnet_fusion_tiny" and info["config"]["hdnet_style_fusion"] is True
    assert "hdnet_style_fusion: true" in (result.out_dir / "config.yaml").read_text()
    loaded = create_model("hdnet_fusion_tiny", checkpoint=result.weights)  # strict
    assert loaded.style_fusion
    # Resuming under the plain name with the flag set resolves to the same model.
    again = train("hdnet_tiny", root, TrainConfig(**{**config.__dict__, "steps": 3}), result.out_dir, resume=True)
    assert again.step == 3


def test_init_weights_from_a_plain_checkpoint_start_the_fusion_at_identity(make_photos, tmp_path: Path) -> None:  # noqa: ANN001
    root = make_photos(tmp_path / "photos", count=5)
    plain = create_model("hdnet_tiny")
    with torch.no_grad():
        for p in plain.parameters():
            p.normal_(0, 0.1)
    path = tmp_path / "plain.pt"
    torch.save(plain.state_dict(), path)
    config = TrainConfig(
        image_size=32, batch_size=2, steps=1, val_every=0, val_images=1, hdnet_style_fusion=True, lr=1e-12,
        init_weights=str(path),
    )  # fmt: skip
    result = train("hdnet_tiny", root, config, tmp_path / "run")
    trained = torch.load(result.weights, weights_only=True)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(trained[key], value, atol=1e-9, rtol=0)


def test_init_weights_that_fit_neither_layout_are_refused(make_photos, tmp_path: Path) -> None:  # noqa: ANN001
    root = make_photos(tmp_path / "photos", count=5)
    path = tmp_path / "lite.pt"
    torch.save(create_model("hdnet_lite").state_dict(), path)
    config = TrainConfig(
        image_size=32, batch_size=2, steps=1, val_every=0, hdnet_style_fusion=True, init_weights=str(path)
    )
    with pytest.raises(CheckpointError, match="model_layer0.weight"):
        train("hdnet_tiny", root, config, tmp_path / "run")


def test_fusion_preset_selects_fusion_and_the_contrastive_loss() -> None:
    config = load_train_config(CONFIGS / "train_hdnet_fusion.yaml")
    assert config.hdnet_style_fusion and config.contrastive_weight > 0
    assert config.max_minutes == 0  # the step count is the budget: both arms see the same batches
    plain = load_train_config(CONFIGS / "train_hdnet_fusion.yaml", ["hdnet_style_fusion=false"])
    assert not plain.hdnet_style_fusion
