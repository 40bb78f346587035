"""The command line with HDNet's style-fusion variants: train with the preset's flag, then harmonize an image and
a clip with the trained weights (seeded, tiny model: checks the wiring, not quality)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PROJECT_ROOT

from vidharm.cli import main
from vidharm.io import count_frames, write_image
from vidharm.io._synth import write_test_clip
from vidharm.models import create_model
from vidharm.pipeline import read_params


def _fused_weights(path: Path) -> Path:
    model = create_model("hdnet_fusion_tiny")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "fusion." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    torch.save(model.state_dict(), path)
    return path


def test_image_with_a_fused_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (61, 83, 3), dtype=np.uint8)  # odd size: resized to 256 and transferred back
    mask = np.zeros((61, 83), np.uint8)
    mask[15:45, 20:60] = 255
    write_image(tmp_path / "c.png", image)
    write_image(tmp_path / "m.png", mask)
    weights = _fused_weights(tmp_path / "fused.pt")
    code = main(["image", str(tmp_path / "c.png"), str(tmp_path / "m.png"), "-o", str(tmp_path / "h.png"),
                 "--model", "hdnet_fusion_tiny", "--weights", str(weights), "--set", "transfer=affine"])  # fmt: skip
    assert code == 0
    assert "m0=" in capsys.readouterr().out  # the 12 affine coefficients
    import cv2

    out = cv2.imread(str(tmp_path / "h.png"))[..., ::-1]
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])


def _clip(tmp_path: Path, frames: int = 4) -> tuple[Path, Path]:
    clip = write_test_clip(tmp_path / "clip.mp4", num_frames=frames, width=72, height=40)
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(frames):
        write_image(masks / f"{i:05d}.png", np.pad(np.full((20, 30), 255, np.uint8), ((10, 10), (20 + i, 22 - i))))
    return clip, masks


def test_fused_weights_refused_by_the_reference_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = _fused_weights(tmp_path / "fused.pt")
    clip, masks = _clip(tmp_path)
    code = main(["process", str(clip), str(masks), "-o", str(tmp_path / "o.mp4"), "--model", "hdnet_tiny",
                 "--weights", str(weights), "-q"])  # fmt: skip
    assert code == 4
    assert "model_layer11fusion.proj.weight" in capsys.readouterr().err


def test_train_with_the_fusion_flag_then_process(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "photos"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(5):
        write_image(data / "images" / f"{i:05d}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
        write_image(data / "masks" / f"{i:05d}.png", np.pad(np.full((20, 20), 255, np.uint8), 10))
    run = tmp_path / "run"
    code = main(["train", "hdnet", "--data", str(data), "-o", str(run), "-q",
                 "--config", str(PROJECT_ROOT / "configs" / "train_hdnet_fusion.yaml"),
                 "--set", "image_size=32", "--set", "batch_size=2", "--set", "steps=2", "--set", "val_every=0",
                 "--set", "val_images=1"])  # fmt: skip
    assert code == 0
    assert json.loads((run / "run.json").read_text())["model"] == "hdnet_lite_fusion"
    out = tmp_path / "o.mkv"
    clip, masks = _clip(tmp_path)
    code = main(["process", str(clip), str(masks), "-o", str(out), "--model", "hdnet_lite_fusion",
                 "--weights", str(run / "weights.pt"), "--set", "transfer=local", "--set", "codec=ffv1", "-q",
                 "--params-out", str(tmp_path / "p.json")])  # fmt: skip
    assert code == 0
    assert count_frames(out) == 4
    assert read_params(tmp_path / "p.json").method.kind == "local"
