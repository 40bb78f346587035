"""Tests for vidharm/metrics/_temporal.py: CO2Net TL, Lai et al. E_warp and occlusion, foreground luma."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.errors import MaskError, ShapeError, UsageError
from vidharm.metrics import (
    foreground_luma,
    mean_abs_change,
    occlusion_mask,
    temporal_loss,
    warping_error,
)


def _texture(size: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return (40 + 160 * noise).astype(np.float64)  # 40..200: room for +-d without clipping


def _square_mask(size: int = 256) -> np.ndarray:
    mask = np.zeros((size, size))
    q = size // 4
    mask[q : 3 * q, q : 3 * q] = 1.0
    return mask


def _oscillating(gt: np.ndarray, mask: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame t with the foreground brightened by d on every channel, frame t+1 darkened by d."""
    up, down = gt.copy(), gt.copy()
    up[mask > 0] += d
    down[mask > 0] -= d
    return up, down


# ---- static clip: everything is zero


def test_static_clip_scores_zero() -> None:
    frame, mask = _texture(), _square_mask()
    assert temporal_loss(frame, frame, frame, frame, mask, mask) == 0.0
    assert warping_error(frame, frame, frame, frame) == 0.0
    assert warping_error(frame, frame, frame, frame, mask=mask) == 0.0
    lumas = [foreground_luma(frame, mask) for _ in range(4)]
    assert mean_abs_change(lumas) == 0.0


# ---- known brightness oscillation on a static clip


@pytest.mark.parametrize("size", [256, None])
def test_oscillation_tl_is_12_d_squared(size: int | None) -> None:
    # Static GT: the flow is zero and W is the identity, so A = mask_t * exp(0) = mask_t and
    # TL = sum(m^2 * 3 * (2d)^2) / sum(m) = 12 d^2 levels^2 for a binary mask.
    d = 5.0
    gt, mask = _texture(), _square_mask()
    out_t, out_t1 = _oscillating(gt, mask, d)
    assert temporal_loss(out_t, out_t1, gt, gt, mask, mask, size=size) == pytest.approx(12 * d**2, rel=1e-9)
    # The ground-truth floor of a static clip is zero.
    assert temporal_loss(gt, gt, gt, gt, mask, mask, size=size) == 0.0


def test_oscillation_tl_soft_mask() -> None:
    d = 4.0
    gt = _texture(64)
    mask = np.zeros((64, 64))
    mask[16:48, 16:48] = 0.5
    mask[24:40, 24:40] = 1.0
    out_t, out_t1 = _oscillating(gt, mask, d)
    m = mask.ravel()
    expected = np.sum(m[m > 0] ** 2 * 3 * (2 * d) ** 2) / np.sum(m)
    assert temporal_loss(out_t, out_t1, gt, gt, mask, mask, size=None) == pytest.approx(expected, rel=1e-9)


def test_tl_photometric_weight_exp_of_gt_residual() -> None:
    # GT t+1 is GT t brightened uniformly by 25.5 levels (0.1): flat frames give zero flow, so the weight is
    # A = mask * exp(-0.1) and TL = sum(A^2 * 3 D^2) / sum(A) = exp(-0.1) * 3 D^2 for an output step D.
    gt_t = np.full((64, 64, 3), 100.0)
    gt_t1 = gt_t + 25.5
    mask = _square_mask(64)
    out_t = gt_t.copy()
    out_t1 = gt_t.copy()
    out_t1[mask > 0] += 3.0
    got = temporal_loss(out_t, out_t1, gt_t, gt_t1, mask, mask, size=None)
    assert got == pytest.approx(math.exp(-0.1) * 3 * 3.0**2, rel=1e-9)


def test_tl_follows_motion_and_floor_is_out_equals_gt() -> None:
    big = _texture(300)
    gt_t, gt_t1 = big[20:276, 20:276], big[18:274, 17:273]  # camera moves by (3, 2) pixels
    mask = _square_mask()
    floor = temporal_loss(gt_t, gt_t1, gt_t, gt_t1, mask, mask)
    no_warp = 3 * np.mean((gt_t - gt_t1)[mask > 0] ** 2)
    assert floor < 0.02 * no_warp  # the flow compensates the motion
    out_t, out_t1 = gt_t.copy(), gt_t1.copy()
    out_t[mask > 0] += 5.0
    out_t1[mask > 0] -= 5.0
    assert temporal_loss(out_t, out_t1, gt_t, gt_t1, mask, mask) == pytest.approx(floor + 12 * 25, rel=0.15)


def test_tl_resizes_to_256_by_default() -> None:
    gt = cv2.resize(_texture(), (160, 96), interpolation=cv2.INTER_AREA)
    mask = np.zeros((96, 160))
    mask[24:72, 40:120] = 1.0
    out_t, out_t1 = _oscillating(gt, mask, 3.0)
    # Bilinear resizing (as CO2Net) softens both the mask and the output difference at the square's edges:
    # A = s and W(out_t) - out_t1 = 6 s with s the resized mask, so TL = sum(s^2 * 3 * 36 s^2) / sum(s).
    small = cv2.resize(mask, (256, 256), interpolation=cv2.INTER_LINEAR)
    assert 0 < small[(small > 0) & (small < 1)].size  # the edges really are soft
    expected = np.sum(small**4) * 3 * 36 / np.sum(small)
    assert temporal_loss(out_t, out_t1, gt, gt, mask, mask) == pytest.approx(expected, rel=1e-6)


def test_tl_empty_mask_is_nan_and_errors() -> None:
    gt, mask = _texture(64), np.zeros((64, 64))
    assert math.isnan(temporal_loss(gt, gt, gt, gt, mask, mask, size=None))
    with pytest.raises(UsageError, match="size"):
        temporal_loss(gt, gt, gt, gt, mask, mask, size=0)
    with pytest.raises(ShapeError, match="gt_t1"):
        temporal_loss(gt, gt, gt, gt[:-1], mask, mask)
    with pytest.raises(MaskError):
        temporal_loss(gt, gt, gt, gt, mask + 2, mask)
    with pytest.raises(ShapeError, match="RGB"):
        temporal_loss(gt[..., 0], gt[..., 0], gt[..., 0], gt[..., 0], mask, mask)


# ---- E_warp


def test_oscillation_warping_error() -> None:
    d = 5.0
    frame, mask = _texture(), _square_mask()
    out_t, out_t1 = _oscillating(frame, mask, d)
    # Static inputs: zero flow, nothing occluded; E = mean over pixels and channels of ((2d) / 255)^2.
    expected_fg = (2 * d / 255) ** 2
    assert warping_error(out_t, out_t1, frame, frame) == pytest.approx(mask.mean() * expected_fg, rel=1e-9)
    assert warping_error(out_t, out_t1, frame, frame, mask=mask) == pytest.approx(expected_fg, rel=1e-9)
    assert math.isnan(warping_error(out_t, out_t1, frame, frame, mask=np.zeros_like(mask)))


def test_warping_error_uses_input_flow() -> None:
    big = _texture(300)
    in_t, in_t1 = big[20:276, 20:276], big[18:274, 17:273]
    moving = warping_error(in_t, in_t1, in_t, in_t1)  # output = input: only flow error remains
    static_assumption = np.mean(((in_t1 - in_t) / 255) ** 2)
    assert moving < 0.02 * static_assumption
    # A still output over moving input is inconsistent with the motion.
    assert warping_error(in_t, in_t, in_t, in_t1) > 10 * moving


def test_occlusion_mask_rules() -> None:
    fw = np.zeros((8, 10, 2), np.float32)
    fw[..., 0] = 2.0
    assert not occlusion_mask(fw, -fw).any()  # consistent
    assert occlusion_mask(fw, fw).all()  # |F + B|^2 = 16 > 0.01 * 8 + 0.5
    # Slightly inconsistent but within 0.5 px^2 + 1 %: still visible.
    assert not occlusion_mask(fw, -fw + np.float32(0.5)).any()
    # Motion boundary: the flow jumps by 1 px between columns 4 and 5; the forward difference marks column 4.
    step = np.zeros((8, 10, 2), np.float32)
    step[:, 5:, 0] = 1.0
    back = -step.copy()
    occ = occlusion_mask(step, back)
    assert occ[:, 4].all()
    assert not occ[:, :4].any() and not occ[:, 6:].any()
    with pytest.raises(ShapeError):
        occlusion_mask(fw, fw[:, :-1])


def test_warping_error_davis_pair(shared: Callable[..., Path]) -> None:
    root = shared("data", "video")
    frames = [
        cv2.cvtColor(cv2.imread(str(root / "frames" / "blackswan" / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB) for i in (0, 1)
    ]
    mask = cv2.imread(str(root / "masks" / "blackswan" / "00000.png"), cv2.IMREAD_GRAYSCALE) / 255.0
    a, b = (f.astype(np.float64) for f in frames)
    base = warping_error(a, b, a, b)
    assert 0.0 < base < 0.005  # flow and occlusion handling leave a small residual on real footage
    flicker_t, flicker_t1 = _oscillating(a, mask, 5.0)[0], _oscillating(b, mask, 5.0)[1]
    assert warping_error(flicker_t, flicker_t1, a, b, mask=mask) > 2 * warping_error(a, b, a, b, mask=mask)


# ---- flow-free brightness


def test_foreground_luma_rec709() -> None:
    image = np.zeros((2, 3, 3))
    image[0, 0] = (255.0, 0.0, 0.0)
    image[0, 1] = (0.0, 255.0, 0.0)
    image[0, 2] = (0.0, 0.0, 255.0)
    mask = np.zeros((2, 3))
    assert foreground_luma(image, np.pad(np.ones((1, 1)), ((0, 1), (0, 2)))) == pytest.approx(0.2126 * 255)
    mask[0] = 1.0
    assert foreground_luma(image, mask) == pytest.approx(255 / 3)
    grey = np.full((4, 4, 3), 77.0)
    assert foreground_luma(grey, np.full((4, 4), 0.3)) == pytest.approx(77.0)
    assert math.isnan(foreground_luma(grey, np.zeros((4, 4))))
    with pytest.raises(ShapeError, match="RGB"):
        foreground_luma(grey[..., 0], np.ones((4, 4)))


def test_oscillation_luma_change_is_2d() -> None:
    d = 5.0
    gt, mask = _texture(64), _square_mask(64)
    up, down = _oscillating(gt, mask, d)
    lumas = [foreground_luma(f, mask) for f in (up, down, up, down, up)]
    assert mean_abs_change(lumas) == pytest.approx(2 * d, rel=1e-12)


def test_mean_abs_change_hand_values() -> None:
    assert mean_abs_change([1.0, 4.0, 2.0]) == pytest.approx(2.5)
    assert mean_abs_change([1.0, math.nan, 2.0, 5.0]) == pytest.approx(3.0)  # pairs touching NaN skipped
    assert math.isnan(mean_abs_change([3.0]))
    assert math.isnan(mean_abs_change([]))
