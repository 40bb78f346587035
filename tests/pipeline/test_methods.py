"""Render methods: the six filters, and colour transforms carrying an image model's 256-px result."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import shared_path
from torch import nn

from vidharm.errors import InputError, UsageError
from vidharm.io import read_frames
from vidharm.pipeline import ProcessConfig, harmonize_image, process_video, read_params
from vidharm.pipeline.methods import Method, method_for_model

AFFINE = torch.tensor([[0.8, 0.1, 0.0, 0.05], [0.0, 0.9, 0.05, 0.0], [0.05, 0.0, 0.7, 0.1]])


class _AffineModel(nn.Module):
    """A stand-in image model whose output is an exact affine colour change of its input."""

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("ij,bjhw->bihw", AFFINE[:, :3], image) + AFFINE[:, 3, None, None]
        return out * mask + image * (1 - mask)


def test_method_sizes_and_header_round_trip() -> None:
    assert Method("filters").num_args == 6 and Method("affine").num_args == 12 and Method("poly2").num_args == 30
    local = Method("local", (4, 5))
    assert local.num_args == 240 and len(local.arg_names) == 240
    assert Method.from_header({"method": local.to_header()}) == local
    assert Method.from_header({}) == Method("filters")
    with pytest.raises(InputError, match="not one this vidharm knows"):
        Method.from_header({"method": {"kind": "lut"}})
    with pytest.raises(UsageError):
        method_for_model("hdnet", "bilateral")
    assert method_for_model("harmonizer", "local") == Method("filters")


@pytest.mark.parametrize("kind", ["affine", "poly2", "local"])
def test_transfer_reproduces_an_affine_change_at_full_resolution(kind: str) -> None:
    rng = np.random.default_rng(1)
    full = torch.from_numpy(cv2.resize(rng.random((24, 32, 3)).astype(np.float32), (333, 250))).permute(2, 0, 1)[None]
    mask = torch.zeros(1, 1, 250, 333)
    mask[..., 40:200, 60:300] = 1
    small = torch.nn.functional.interpolate(full, size=(256, 256), mode="bilinear", align_corners=False)
    small_mask = torch.nn.functional.interpolate(mask, size=(256, 256), mode="bilinear", align_corners=False)
    method = Method(kind)
    row = method.predict(_AffineModel(), small, (small_mask > 0.5).float())
    assert row.shape == (1, method.num_args)
    out = method.apply(full, row)
    expected = _AffineModel()(full, torch.ones_like(mask))
    inside = mask[0, 0] > 0
    err = (out - expected)[0][:, inside].abs()
    assert err.max() < 2e-3, err.max()


@pytest.mark.parametrize("transfer", ["local", "affine"])
def test_hdnet_through_the_pipeline(tmp_path: Path, clip_with_masks, transfer: str) -> None:
    weights = shared_path("parity", "hdnet", "weights_seed0.pth")
    clip, masks = clip_with_masks(num_frames=3, width=65, height=49, pix_fmt="yuv444p")
    out = tmp_path / "o.mkv"
    config = ProcessConfig(model="hdnet", weights=str(weights), transfer=transfer, codec="ffv1", batch_size=3)
    track = process_video(clip, masks, out, config, params_out=tmp_path / "p.json")
    back = read_params(tmp_path / "p.json")
    assert back.method == Method(transfer) and len(back.frames[0].raw) == back.method.num_args
    assert back.frames[0].stats == [] and track.header["stats_names"] == []
    changed = False
    for i, (a, b) in enumerate(zip(read_frames(clip), read_frames(out), strict=True)):
        m = cv2.imread(str(masks / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(a.image[m == 0], b.image[m == 0])
        changed |= bool(np.abs(a.image[m == 255].astype(int) - b.image[m == 255]).mean() > 1)
        assert b.image.shape == (49, 65, 3)
    assert changed


def test_hdnet_image(tmp_path: Path) -> None:
    weights = shared_path("parity", "hdnet", "weights_seed0.pth")
    rng = np.random.default_rng(0)
    image = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    mask = np.zeros((90, 120), np.uint8)
    mask[20:70, 30:90] = 255
    cv2.imwrite(str(tmp_path / "c.png"), image)
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    row = harmonize_image(
        tmp_path / "c.png",
        tmp_path / "m.png",
        tmp_path / "o.png",
        ProcessConfig(model="hdnet", weights=str(weights), transfer="affine"),
    )
    assert len(row) == 12
    out = cv2.imread(str(tmp_path / "o.png"))
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
