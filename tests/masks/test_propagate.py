"""Tests for vidharm.masks.propagate: flow propagation of keyframe masks on synthetic clips with known masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidharm.errors import InputError, MaskError, ShapeError, UsageError
from vidharm.masks.propagate import propagate_masks

H, W = 96, 128


def _texture(rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.normal(0.0, 1.0, (H, W, 3)).astype(np.float32), (0, 0), sigma)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (noise * 255).astype(np.uint8)


def _moving_disk(n: int = 12, speed: tuple[int, int] = (3, 1)) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured disk (radius 18) moving ``speed`` px a frame over a static textured background."""
    rng = np.random.default_rng(0)
    background = _texture(rng, 1.5)
    foreground = _texture(rng, 1.0) // 2 + 100
    yy, xx = np.mgrid[0:H, 0:W]
    frames, masks = [], []
    for t in range(n):
        cx, cy = 30 + speed[0] * t, 40 + speed[1] * t
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= 18**2
        moved = np.roll(foreground, (speed[1] * t, speed[0] * t), axis=(0, 1))
        frames.append(np.where(inside[..., None], moved, background))
        masks.append(inside.astype(np.float32))
    return frames, masks


def _behind_bar(n: int = 14) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured 28x40 box moving 4 px a frame from left to right behind a static textured bar (columns 56-75).

    The true mask is the visible part of the box: it is fully visible in frames 0 and 13 and split by the bar between.
    """
    rng = np.random.default_rng(1)
    background = _texture(rng, 1.5)
    foreground = _texture(rng, 1.0) // 2 + 120
    bar_texture = _texture(rng, 2.0) // 3
    yy, xx = np.mgrid[0:H, 0:W]
    bar = (xx >= 56) & (xx < 76)
    frames, masks = [], []
    for t in range(n):
        x0 = 4 * t - 4
        box = (xx >= x0) & (xx < x0 + 28) & (yy >= 30) & (yy < 70)
        frame = np.where(box[..., None], np.roll(foreground, 4 * t, axis=1), background)
        frames.append(np.where(bar[..., None], bar_texture, frame))
        masks.append((box & ~bar).astype(np.float32))
    return frames, masks


def _iou(pred: np.ndarray, true: np.ndarray) -> float:
    p, t = pred >= 0.5, true >= 0.5
    return float((p & t).sum() / max((p | t).sum(), 1))


def test_yields_every_frame_once_in_order_as_float32_in_unit_range() -> None:
    frames, masks = _moving_disk()
    out = list(propagate_masks(frames, {3: masks[3], 9: masks[9]}, 12))
    assert [t for t, _ in out] == list(range(12))
    for _, mask in out:
        assert mask.shape == (H, W) and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0


def test_forward_propagation_keeps_iou_above_0_9_up_to_8_frames() -> None:
    # The disk moves 3 px a frame on a 128 px wide frame (like 45 px a frame at 1080p): 8 frames is 25 px of motion.
    frames, masks = _moving_disk()
    out = dict(propagate_masks(frames, {0: masks[0]}, 12))
    ious = [_iou(out[t], masks[t]) for t in range(1, 9)]
    assert min(ious) > 0.9, ious


def test_backward_propagation_before_the_first_keyframe() -> None:
    frames, masks = _moving_disk()
    out = dict(propagate_masks(frames, {11: masks[11]}, 12))
    ious = [_iou(out[t], masks[t]) for t in range(3, 11)]  # distances 1 .. 8
    assert min(ious[-5:]) > 0.9, ious  # distances up to 5
    assert min(ious) > 0.83, ious


def test_keyframe_masks_are_returned_bit_identical() -> None:
    frames, _ = _moving_disk()
    rng = np.random.default_rng(5)
    keys = {k: rng.random((H, W), dtype=np.float32) for k in (0, 5, 11)}
    keys[5][0, 0] = np.nextafter(np.float32(0.5), np.float32(1.0))
    out = dict(propagate_masks(frames, keys, 12))
    for k, mask in keys.items():
        assert out[k].dtype == np.float32
        assert out[k].tobytes() == mask.tobytes()
        assert out[k] is not mask  # a copy: the consumer may change it in place


def test_both_directions_blended_by_distance() -> None:
    # Same shape at both keyframes but value 1.0 at frame 0 and 0.5 at frame 10: inside the object, where both
    # flows are consistent, frame t must read (10 - t) / 10 * 1.0 + t / 10 * 0.5.
    frames, masks = _moving_disk(n=11)
    out = dict(propagate_masks(frames, {0: masks[0], 10: masks[10] * np.float32(0.5)}, 11))
    core = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13))
    for t in (2, 5, 8):
        inner = cv2.erode(masks[t].astype(np.uint8), core).astype(bool)
        expected = (10 - t) / 10 * 1.0 + t / 10 * 0.5
        assert np.median(out[t][inner]) == pytest.approx(expected, abs=0.01), t


def test_two_sided_result_beats_either_direction_alone() -> None:
    frames, masks = _behind_bar()
    both = dict(propagate_masks(frames, {0: masks[0], 13: masks[13]}, 14))
    forward = dict(propagate_masks(frames, {0: masks[0]}, 14))
    backward = dict(propagate_masks(frames, {13: masks[13]}, 14))
    middle = range(1, 13)
    iou_both = np.mean([_iou(both[t], masks[t]) for t in middle])
    iou_forward = np.mean([_iou(forward[t], masks[t]) for t in middle])
    iou_backward = np.mean([_iou(backward[t], masks[t]) for t in middle])
    assert iou_both > max(iou_forward, iou_backward) + 0.1, (iou_both, iou_forward, iou_backward)
    assert not np.allclose(both[6], forward[6]) and not np.allclose(both[6], backward[6])


def test_consistency_check_stops_smearing_through_the_occluder() -> None:
    # The box disappears behind the bar and reappears: each direction loses the part hidden in its keyframe. With the
    # forward-backward check, those pixels take the other direction's value instead of a 50/50 smear.
    frames, masks = _behind_bar()
    keys = {0: masks[0], 13: masks[13]}
    checked = dict(propagate_masks(frames, keys, 14))
    unchecked = dict(propagate_masks(frames, keys, 14, consistency_check=False))
    middle = range(1, 13)
    iou_checked = np.mean([_iou(checked[t], masks[t]) for t in middle])
    iou_unchecked = np.mean([_iou(unchecked[t], masks[t]) for t in middle])
    err_checked = np.mean([np.abs(checked[t] - masks[t]).mean() for t in middle])
    err_unchecked = np.mean([np.abs(unchecked[t] - masks[t]).mean() for t in middle])
    assert iou_checked > iou_unchecked + 0.03, (iou_checked, iou_unchecked)
    assert iou_checked > 0.82, iou_checked
    assert err_checked < 0.75 * err_unchecked, (err_checked, err_unchecked)
    bar_inside = np.zeros((H, W), bool)
    bar_inside[:, 58:74] = True  # the bar less 2 px at each side, where bilinear warping may spill
    assert max(float(checked[t][bar_inside].max()) for t in middle) < 0.05  # nothing drawn over the occluder


def test_soft_edges_stay_soft() -> None:
    frames, masks = _moving_disk()
    soft = cv2.GaussianBlur(masks[0], (0, 0), 2.0)
    out = dict(propagate_masks(frames, {0: soft}, 12))

    def fractional(mask: np.ndarray) -> int:
        return int(((mask > 0.05) & (mask < 0.95)).sum())

    assert fractional(out[5]) > 0.7 * fractional(soft)
    assert fractional(out[5]) < 1.5 * fractional(soft)  # softened a little by resampling, not smeared


def test_uint16_and_rgba_frames_give_the_uint8_result() -> None:
    frames, masks = _moving_disk(n=6)
    keys = {0: masks[0], 5: masks[5]}
    reference = dict(propagate_masks(frames, keys, 6))
    deep = dict(propagate_masks([f.astype(np.uint16) * 257 for f in frames], keys, 6))
    rgba = [np.dstack([f, np.full((H, W), 255, np.uint8)]) for f in frames]
    with_alpha = dict(propagate_masks(rgba, keys, 6))
    for t in range(6):
        assert np.abs(deep[t] - reference[t]).mean() < 0.01
        np.testing.assert_array_equal(with_alpha[t], reference[t])


def test_callable_source_is_read_once_in_consecutive_ranges() -> None:
    frames, masks = _moving_disk()
    calls: list[tuple[int, int]] = []

    def read(start: int, stop: int):  # type: ignore[no-untyped-def]
        calls.append((start, stop))
        yield from frames[start:stop]

    keys = {2: masks[2], 6: masks[6]}
    streamed = dict(propagate_masks(read, keys, 12))
    assert calls == [(0, 3), (3, 7), (7, 12)]
    listed = dict(propagate_masks(frames, keys, 12))
    for t in range(12):
        np.testing.assert_allclose(streamed[t], listed[t], atol=1e-6)


def test_reduced_flow_size_still_renders_full_resolution_masks() -> None:
    frames, masks = _moving_disk(n=6)
    out = dict(propagate_masks(frames, {0: masks[0], 5: masks[5]}, 6, flow_size=64))
    assert all(m.shape == (H, W) for m in out.values())
    assert min(_iou(out[t], masks[t]) for t in range(6)) > 0.85


def test_single_frame_clip_returns_the_keyframe() -> None:
    frames, masks = _moving_disk(n=1)
    out = list(propagate_masks(frames, {0: masks[0]}, 1))
    assert len(out) == 1 and out[0][0] == 0 and np.array_equal(out[0][1], masks[0])


# --- errors -------------------------------------------------------------------------------------------------------


def test_no_keyframes_is_a_mask_error() -> None:
    frames, _ = _moving_disk(n=3)
    with pytest.raises(MaskError, match="at least one keyframe"):
        propagate_masks(frames, {}, 3)


@pytest.mark.parametrize("number", [-1, 3, 10])
def test_keyframe_outside_the_clip_is_a_mask_error(number: int) -> None:
    frames, masks = _moving_disk(n=3)
    with pytest.raises(MaskError, match=rf"keyframe {number}: expected a frame number in \[0, 3\)"):
        propagate_masks(frames, {number: masks[0]}, 3)


def test_mask_size_mismatch_names_the_frame_and_both_sizes() -> None:
    frames, masks = _moving_disk(n=3)
    small = np.zeros((48, 64), np.float32)
    with pytest.raises(MaskError, match="keyframe 2: mask is 64x48 but the clip's frames are 128x96"):
        propagate_masks(frames, {0: masks[0], 2: small}, 3)
    # A callable source is only looked at when iterated: the error comes before any mask.
    out = propagate_masks(lambda a, b: iter(frames[a:b]), {0: masks[0], 2: small}, 3)
    with pytest.raises(MaskError, match="keyframe 2: mask is 64x48"):
        next(out)


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros((H, W), np.uint8), "expected a float32 \\(H, W\\) mask"),
        (np.zeros((H, W, 1), np.float32), "expected a float32 \\(H, W\\) mask"),
        (np.full((H, W), 1.5, np.float32), r"expected mask values in \[0, 1\]"),
        (np.full((H, W), np.nan, np.float32), r"expected mask values in \[0, 1\]"),
    ],
)
def test_bad_keyframe_masks_are_mask_errors(mask: np.ndarray, message: str) -> None:
    frames, _ = _moving_disk(n=3)
    with pytest.raises(MaskError, match=message):
        propagate_masks(frames, {1: mask}, 3)


def test_bad_arguments_are_usage_errors() -> None:
    frames, masks = _moving_disk(n=3)
    with pytest.raises(UsageError, match="num_frames"):
        propagate_masks(frames, {0: masks[0]}, 0)
    with pytest.raises(UsageError, match="preset"):
        propagate_masks(frames, {0: masks[0]}, 3, preset="slow")
    with pytest.raises(UsageError, match="flow_size"):
        propagate_masks(frames, {0: masks[0]}, 3, flow_size=8)


def test_short_frame_sources_are_input_errors() -> None:
    frames, masks = _moving_disk(n=3)
    with pytest.raises(InputError, match="expected at least 5 frames"):
        propagate_masks(frames, {0: masks[0]}, 5)
    out = propagate_masks(lambda a, b: iter(frames[a:b]), {0: masks[0]}, 5)
    with pytest.raises(InputError, match=r"frames\(1, 5\): expected 4 frames, got 2"):
        list(out)


def test_bad_frames_are_shape_errors() -> None:
    frames, masks = _moving_disk(n=3)
    with pytest.raises(ShapeError, match="frame 0: expected an \\(H, W, 3\\)"):
        propagate_masks([f[..., 0] for f in frames], {0: masks[0]}, 3)
    changing = [frames[0], frames[1], frames[2][:64]]
    with pytest.raises(ShapeError, match="frame 2: expected 128x96 like the first frame, got 128x64"):
        list(propagate_masks(changing, {0: masks[0]}, 3))
