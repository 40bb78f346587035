"""Tests for vidharm/metrics/_flow.py: DIS flow direction and accuracy, backward warping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.metrics import FLOW_PRESETS, compute_flow, warp


def _texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (h + 20, w + 20, 3)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.min()) / (noise.max() - noise.min()) * 255
    return noise.astype(np.uint8)


def test_identical_frames_give_zero_flow() -> None:
    frame = _texture()
    for preset in FLOW_PRESETS:
        flow = compute_flow(frame, frame, preset=preset)
        assert flow.shape == (116, 148, 2) and flow.dtype == np.float32
        assert np.abs(flow).max() == 0.0


def test_flow_direction_and_accuracy_on_a_shift() -> None:
    big = _texture()
    prev = big[10:-10, 10:-10]
    nxt = big[10 - 2 : -10 - 2, 10 - 3 : -10 - 3]  # content moved right by 3 and down by 2
    flow = compute_flow(prev, nxt)
    inner = flow[16:-16, 16:-16].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), (3.0, 2.0), atol=0.1)
    # warp(next, flow) aligns next to prev.
    aligned = warp(nxt, flow)
    err = np.abs(aligned - prev)[16:-16, 16:-16].mean()
    assert err < 0.2 * np.abs(nxt.astype(float) - prev)[16:-16, 16:-16].mean()


def test_warp_integer_shift_is_exact_and_replicates_borders() -> None:
    image = np.arange(20, dtype=np.float64).reshape(4, 5)
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 1] = 1.0  # sample the row below
    out = warp(image, flow)
    np.testing.assert_array_equal(out[:-1], image[1:])
    np.testing.assert_array_equal(out[-1], image[-1])
    np.testing.assert_array_equal(warp(image, np.zeros((4, 5, 2))), image)


def test_warp_bilinear_half_pixel() -> None:
    image = np.zeros((3, 4, 3))
    image[:, 2] = 100.0
    flow = np.zeros((3, 4, 2), np.float32)
    flow[..., 0] = 0.5
    out = warp(image, flow)
    np.testing.assert_allclose(out[:, 1], 50.0)
    np.testing.assert_allclose(out[:, 2], 50.0)


def test_warp_keeps_channel_layout() -> None:
    flow = np.zeros((6, 7, 2), np.float32)
    assert warp(np.ones((6, 7, 1)), flow).shape == (6, 7, 1)
    assert warp(np.ones((6, 7)), flow).shape == (6, 7)
    assert warp(np.ones((6, 7, 2)), flow).shape == (6, 7, 2)


def test_errors() -> None:
    frame = _texture()
    with pytest.raises(UsageError, match="preset"):
        compute_flow(frame, frame, preset="slow")
    with pytest.raises(ShapeError, match="same shape"):
        compute_flow(frame, frame[:-1])
    with pytest.raises(ShapeError, match="flow"):
        warp(np.ones((4, 4)), np.zeros((4, 4, 3)))
    with pytest.raises(ShapeError, match="image"):
        warp(np.ones((4, 5)), np.zeros((4, 4, 2)))
    with pytest.raises(InputError, match="NaN"):
        warp(np.ones((4, 4)), np.full((4, 4, 2), np.nan))
