"""Tests for the per-image scores of vidharm/train/evaluate.py (``notes["per_image_fmse"]``, for paired tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from vidharm.models import create_model
from vidharm.train.evaluate import evaluate_images


def test_per_image_fmse_matches_the_rows_and_names_weights(make_photos, tmp_path: Path) -> None:  # noqa: ANN001
    root = make_photos(tmp_path / "photos", count=10)
    weights = tmp_path / "w.pt"
    torch.save(create_model("hdnet_fusion_tiny").state_dict(), weights)
    report = evaluate_images(
        root, ("identity", "hdnet_fusion_tiny"), {"hdnet_fusion_tiny": weights}, sets=("eval", "clean")
    )
    per_image = report.notes["per_image_fmse"]
    assert set(per_image) == {f"{s}/{m}" for s in ("eval", "clean") for m in ("identity", "hdnet_fusion_tiny=w.pt")}
    for row in report.rows:
        values = per_image[f"{row.set}/{row.method}"]
        assert len(values) == row.images == report.held_out
        assert abs(sum(values) / len(values) - row.fmse) < 1e-6 * max(1.0, row.fmse)
    assert per_image["clean/identity"] == [0.0] * report.held_out
