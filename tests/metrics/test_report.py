"""Tests for vidharm/metrics/_report.py: the streaming flicker report, its table and its plot."""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.errors import ShapeError, UsageError
from vidharm.metrics import (
    evaluate_flicker,
    fmse,
    foreground_luma,
    format_flicker_table,
    mean_abs_change,
    plot_flicker,
)

D = 5.0


def _texture(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (40 + 160 * noise).astype(np.float64)


def _mask(size: int = 64) -> np.ndarray:
    mask = np.zeros((size, size))
    mask[16:48, 16:48] = 1.0
    return mask


def _oscillating_clip(n: int, with_gt: bool = True, with_input: bool = True) -> Iterator[tuple]:
    gt, mask = _texture(), _mask()
    for i in range(n):
        out = gt.copy()
        out[mask > 0] += D if i % 2 == 0 else -D
        yield out, mask, gt if with_gt else None, gt if with_input else None


def test_oscillation_report_known_values() -> None:
    report = evaluate_flicker(_oscillating_clip(5), tl_size=None, first_frame=100)
    s = report["summary"]
    assert s["frames"] == 5 and s["pairs"] == 4
    assert s["fg_luma_change"] == pytest.approx(2 * D)
    assert s["fg_luma_change_gt"] == 0.0
    assert s["tl"] == pytest.approx(12 * D**2, rel=1e-9)
    assert s["tl_gt"] == 0.0
    assert s["e_warp_fg"] == pytest.approx((2 * D / 255) ** 2, rel=1e-9)
    assert s["e_warp"] == pytest.approx(_mask().mean() * (2 * D / 255) ** 2, rel=1e-9)
    assert s["fmse"] == pytest.approx(D**2)
    assert s["mse"] == pytest.approx(_mask().mean() * D**2)
    assert [r["frame"] for r in report["per_frame"]] == [100, 101, 102, 103, 104]
    assert [r["frame"] for r in report["per_pair"]] == [100, 101, 102, 103]


def test_report_matches_the_single_functions() -> None:
    frames = list(_oscillating_clip(4))
    report = evaluate_flicker(iter(frames), tl_size=None)
    lumas = [foreground_luma(out, mask) for out, mask, _, _ in frames]
    assert [r["fg_luma"] for r in report["per_frame"]] == pytest.approx(lumas)
    assert report["summary"]["fg_luma_change"] == pytest.approx(mean_abs_change(lumas))
    assert report["per_frame"][1]["fmse"] == pytest.approx(fmse(frames[1][0], frames[1][2], frames[1][1]))
    assert report["summary"]["tl"] == pytest.approx(np.mean([r["tl"] for r in report["per_pair"]]))


def test_missing_gt_and_input_give_none() -> None:
    report = evaluate_flicker(_oscillating_clip(3, with_gt=False, with_input=False))
    for row in report["per_frame"]:
        assert row["mse"] is None and row["fmse"] is None and row["fg_luma_gt"] is None
        assert row["fg_luma"] is not None
    for row in report["per_pair"]:
        assert row["tl"] is None and row["tl_gt"] is None and row["e_warp"] is None and row["e_warp_fg"] is None
    s = report["summary"]
    assert s["tl"] is None and s["e_warp"] is None and s["fg_luma_change"] == pytest.approx(2 * D)


def test_empty_mask_frames_are_skipped_not_fatal() -> None:
    gt = _texture()
    full, empty = _mask(), np.zeros((64, 64))
    report = evaluate_flicker([(gt, full, gt, gt), (gt, empty, gt, gt), (gt, full, gt, gt)], tl_size=None)
    assert report["per_frame"][1]["fg_luma"] is None and report["per_frame"][1]["fmse"] is None
    assert report["per_pair"][0]["fg_luma_change"] is None
    assert report["per_pair"][1]["tl"] is None  # the weight uses the first frame's (empty) mask
    assert report["summary"]["fmse"] == 0.0


def test_streaming_holds_at_most_two_frames() -> None:
    alive: list[weakref.ref] = []
    high_water = 0

    def clip() -> Iterator[tuple]:
        nonlocal high_water
        gt, mask = _texture(), _mask()
        for i in range(8):
            item = (gt + (D if i % 2 else -D), mask, None, None)
            alive.append(weakref.ref(item[0]))
            # Counted while the new frame exists and the evaluator still holds the previous one.
            high_water = max(high_water, sum(r() is not None for r in alive))
            yield item
            del item

    report = evaluate_flicker(clip())
    assert report["summary"]["frames"] == 8
    assert high_water <= 2


def test_size_change_and_bad_items_rejected() -> None:
    gt, mask = _texture(), _mask()
    small = gt[:32, :32]
    with pytest.raises(ShapeError, match="clip's size"):
        evaluate_flicker([(gt, mask, None, None), (small, mask[:32, :32], None, None)])
    with pytest.raises(ShapeError, match="tuple"):
        evaluate_flicker([(gt, mask)])
    with pytest.raises(ShapeError, match="gt"):
        evaluate_flicker([(gt, mask, small, None)])
    with pytest.raises(UsageError, match="tl_size"):
        evaluate_flicker([], tl_size=-1)


def test_empty_clip() -> None:
    report = evaluate_flicker([])
    assert report["summary"]["frames"] == 0 and report["per_pair"] == [] and report["summary"]["tl"] is None


def test_table_lists_available_rows() -> None:
    report = evaluate_flicker(_oscillating_clip(3), tl_size=None)
    table = format_flicker_table(report)
    assert "TL, CO2Net" in table and "ground-truth floor" in table and "E_warp" in table and "fPSNR" in table
    assert f"{12 * D**2:.4f}" in table
    partial = format_flicker_table(evaluate_flicker(_oscillating_clip(3, with_gt=False, with_input=False)))
    assert "TL" not in partial and "E_warp" not in partial and "fg luma" in partial
    with pytest.raises(UsageError, match="summary"):
        format_flicker_table({})


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = evaluate_flicker(_oscillating_clip(4), tl_size=None)
    path = plot_flicker(report, tmp_path / "flicker.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 400  # one panel per available metric group
    with pytest.raises(UsageError, match="report"):
        plot_flicker({}, tmp_path / "x.png")


def test_psnr_inf_kept_for_identical_frames() -> None:
    gt, mask = _texture(), _mask()
    report = evaluate_flicker([(gt, mask, gt, None)])
    assert report["per_frame"][0]["psnr"] == math.inf and report["per_frame"][0]["fpsnr"] == math.inf
