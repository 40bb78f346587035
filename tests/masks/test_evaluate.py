"""Tests for vidharm.masks.evaluate: IoU, boundary F-score, leave-one-out and its table."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vidharm.errors import MaskError, ShapeError
from vidharm.masks.evaluate import boundary_f_score, format_loo_table, leave_one_out, mask_iou


def _box(h: int, w: int, top: int, left: int, size: int, value: float = 1.0) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    mask[top : top + size, left : left + size] = value
    return mask


def _panning_clip(n: int) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
    """A textured scene panning 2 px a frame to the right, with the true mask of a 24 px square riding on it."""
    rng = np.random.default_rng(3)
    scene = cv2.GaussianBlur(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8), (0, 0), 1.5)
    frames = [np.roll(scene, 2 * t, axis=1) for t in range(n)]
    masks = {t: _box(72, 96, 24, 20 + 2 * t, 24) for t in range(n)}
    return frames, masks


# --- mask_iou -----------------------------------------------------------------------------------------------------


def test_iou_reference_values() -> None:
    a = _box(10, 10, 0, 0, 4)  # 16 px
    b = _box(10, 10, 2, 2, 4)  # 16 px, overlap 2x2 = 4
    assert mask_iou(a, b) == pytest.approx(4 / 28)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, _box(10, 10, 6, 6, 4)) == 0.0


def test_iou_thresholds_soft_masks() -> None:
    a = _box(10, 10, 0, 0, 4, value=0.6)
    b = _box(10, 10, 0, 0, 4, value=1.0)
    assert mask_iou(a, b) == 1.0
    assert mask_iou(a, b, threshold=0.7) == 0.0
    assert mask_iou(a * 255, b * 255, threshold=128) == 1.0


def test_iou_of_two_empty_masks_is_one_and_of_one_empty_mask_zero() -> None:
    empty = np.zeros((8, 8), np.float32)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, _box(8, 8, 0, 0, 2)) == 0.0


def test_iou_shape_mismatch_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match=r"got \(8, 8\) and \(8, 9\)"):
        mask_iou(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ShapeError):
        mask_iou(np.zeros((8, 8, 1)), np.zeros((8, 8, 1)))


# --- boundary_f_score ---------------------------------------------------------------------------------------------


def test_boundary_f_is_one_for_identical_masks_and_within_tolerance() -> None:
    true = _box(60, 60, 20, 20, 20)
    assert boundary_f_score(true, true) == 1.0
    assert boundary_f_score(np.roll(true, 3, axis=1), true, tolerance_px=3) == 1.0
    assert boundary_f_score(np.roll(true, 4, axis=1), true, tolerance_px=3) < 1.0


def test_boundary_f_reference_value() -> None:
    # A 20 px square shifted 5 px right, tolerance 2 px (a Euclidean disc): count by brute force the contour pixels of
    # one within 2 px of the other's; by symmetry precision equals recall, and so F.
    true = _box(60, 60, 20, 20, 20)
    pred = np.roll(true, 5, axis=1)
    contour = true.astype(bool) & ~cv2.erode(true.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    yy, xx = np.nonzero(contour)
    pts = np.stack([yy, xx], 1)
    shifted = pts + [0, 5]
    dist = np.sqrt(((shifted[:, None, :] - pts[None, :, :]) ** 2).sum(-1)).min(1)
    precision = float((dist <= 2).mean())  # the same count by symmetry gives the recall
    assert boundary_f_score(pred, true, tolerance_px=2) == pytest.approx(precision, abs=1e-9)


def test_boundary_f_default_tolerance_is_davis_0_008_of_the_diagonal() -> None:
    h, w = 480, 854
    tol = math.ceil(0.008 * math.hypot(h, w))
    assert tol == 8
    true = _box(h, w, 100, 300, 200)
    assert boundary_f_score(np.roll(true, tol, axis=1), true) == 1.0
    assert boundary_f_score(np.roll(true, tol + 2, axis=1), true) < 1.0


def test_boundary_f_ignores_the_image_border() -> None:
    full = np.ones((20, 20), np.float32)
    half = np.zeros((20, 20), np.float32)
    half[:, :10] = 1.0
    assert boundary_f_score(full, full) == 1.0  # no contour on either side
    assert boundary_f_score(half, half) == 1.0
    shifted = np.zeros((20, 20), np.float32)
    shifted[:, :12] = 1.0
    assert boundary_f_score(shifted, half, tolerance_px=2) == 1.0  # only the inner edge is a contour


def test_boundary_f_with_one_empty_mask_is_zero() -> None:
    empty = np.zeros((20, 20), np.float32)
    assert boundary_f_score(empty, empty) == 1.0
    assert boundary_f_score(empty, _box(20, 20, 5, 5, 5)) == 0.0
    assert boundary_f_score(_box(20, 20, 5, 5, 5), empty) == 0.0


def test_boundary_f_rejects_negative_tolerance() -> None:
    with pytest.raises(ValueError, match="tolerance_px"):
        boundary_f_score(np.zeros((4, 4)), np.zeros((4, 4)), tolerance_px=-1)


# --- leave_one_out and its table ---------------------------------------------------------------------------------


def test_leave_one_out_rows_distances_and_scores() -> None:
    frames, truth = _panning_clip(11)
    keys = {k: truth[k] for k in (0, 3, 10)}
    rows = leave_one_out(frames, keys, 11)
    assert [r["frame"] for r in rows] == [0, 3, 10]
    assert [r["distance_to_nearest_keyframe"] for r in rows] == [3, 3, 7]
    for row in rows:
        assert set(row) == {"frame", "distance_to_nearest_keyframe", "iou", "boundary_f"}
        assert row["iou"] > 0.9 and row["boundary_f"] > 0.9, row


def test_leave_one_out_detects_a_wrong_keyframe() -> None:
    frames, truth = _panning_clip(7)
    keys = {0: truth[0], 3: _box(72, 96, 0, 0, 24), 6: truth[6]}  # frame 3's mask is in the wrong place
    rows = {r["frame"]: r for r in leave_one_out(frames, keys, 7)}
    assert rows[3]["iou"] < 0.1
    assert rows[0]["iou"] < 0.5 and rows[6]["iou"] < 0.5  # propagated from the wrong mask


def test_leave_one_out_reads_only_the_neighbouring_segment() -> None:
    frames, truth = _panning_clip(13)
    calls: list[tuple[int, int]] = []

    def read(start: int, stop: int):  # type: ignore[no-untyped-def]
        calls.append((start, stop))
        yield from frames[start:stop]

    leave_one_out(read, {k: truth[k] for k in (2, 6, 9)}, 13)
    # drop 2: frames 2..6 from 6 backward; drop 6: frames 2..9 both ways; drop 9: frames 6..9 from 6 forward.
    assert calls == [(2, 7), (2, 3), (3, 10), (6, 7), (7, 10)]


def test_leave_one_out_needs_two_keyframes() -> None:
    frames, truth = _panning_clip(3)
    with pytest.raises(MaskError, match="at least 2 keyframes, got 1"):
        leave_one_out(frames, {0: truth[0]}, 3)
    with pytest.raises(MaskError, match=r"keyframe 5: expected a frame number in \[0, 3\)"):
        leave_one_out(frames, {0: truth[0], 5: truth[1]}, 3)


def test_format_loo_table() -> None:
    rows = [
        {"frame": 0, "distance_to_nearest_keyframe": 4, "iou": 0.97, "boundary_f": 0.91},
        {"frame": 4, "distance_to_nearest_keyframe": 4, "iou": 0.93, "boundary_f": 0.85},
        {"frame": 12, "distance_to_nearest_keyframe": 8, "iou": 0.80, "boundary_f": 0.70},
    ]
    lines = format_loo_table(rows).splitlines()
    assert lines[0].split() == ["frame", "distance", "IoU", "boundary", "F"]
    assert lines[1].split() == ["0", "4", "0.9700", "0.9100"]
    assert lines[3].split() == ["12", "8", "0.8000", "0.7000"]
    assert lines[4].split() == ["mean", "5.3", "0.9000", "0.8200"]
    assert format_loo_table([]).splitlines() == lines[:1]
