"""Tests for vidharm/train/evaluate.py: the held-out table of identity, stats and trained models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidharm.errors import UsageError
from vidharm.models import create_model
from vidharm.train.evaluate import EvalReport, EvalRow, evaluate_images, format_eval_table


def test_identity_stats_and_weights_rows(photos: Path, tmp_path: Path) -> None:
    weights = tmp_path / "tiny.pt"
    torch.save(create_model("harmonizer_tiny").state_dict(), weights)
    done: list[tuple[int, int]] = []
    report = evaluate_images(
        photos,
        methods=("identity", "stats", "harmonizer_tiny"),
        weights={"harmonizer_tiny": weights},
        on_image=lambda i, n: done.append((i, n)),
    )
    assert report.held_out == 2 and done == [(1, 2), (2, 2)]
    assert {r.set for r in report.rows} == {"eval", "filters"}
    assert {r.method for r in report.rows} == {"identity", "stats", "harmonizer_tiny=tiny.pt"}
    ident = report.row("eval", "identity")
    assert ident.images == 2 and ident.fmse > 0
    assert ident.fmse >= ident.mse  # the foreground is a quarter of the image; the background is exact
    assert ident.psnr > ident.fpsnr  # errors only in the foreground: whole-image PSNR is higher
    table = format_eval_table(report)
    assert table.count("\n") == 2 + len(report.rows) - 1 and "| eval | stats |" in table


def test_same_composites_every_run(photos: Path) -> None:
    a = evaluate_images(photos, methods=("identity",))
    b = evaluate_images(photos, methods=("identity",))
    assert a.rows == b.rows


def test_unknown_set_or_real_set_without_composites(photos: Path) -> None:
    with pytest.raises(UsageError, match="unknown evaluation set"):
        evaluate_images(photos, methods=("identity",), sets=("nope",))
    with pytest.raises(UsageError, match="needs real composites"):
        evaluate_images(photos, methods=("identity",), sets=("real",))


def test_report_row_lookup_and_table_format() -> None:
    row = EvalRow("eval", "stats", 3, 1.0, 48.0, 20.0, 35.0, 18.0, 0.5)
    report = EvalReport((row,), "d", 3)
    assert report.row("eval", "stats") is row
    with pytest.raises(UsageError, match="no row"):
        report.row("eval", "harmonizer")
    assert "| eval | stats | 3 | 1.0 | 48.00 | 20.0 | 35.00 | 18.0 | 50% |" in format_eval_table(report)


def test_cli_weights_name_their_method(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vidharm.cli import main

    weights = tmp_path / "lite.pt"
    torch.save(create_model("hdnet_tiny").state_dict(), weights)
    code = main(["eval", "images", "--data", str(photos), "--methods", "identity,hdnet_tiny", "-q",
                 "--weights", f"hdnet_tiny={weights}"])  # fmt: skip
    assert code == 0
    assert "| eval | hdnet_tiny=lite.pt |" in capsys.readouterr().out
    code = main(["eval", "images", "--data", str(photos), "--methods", "identity",
                 "--weights", f"hdnet_tiny={weights}"])  # fmt: skip
    assert code == 2
    assert "hdnet_tiny is not in --methods" in capsys.readouterr().err
