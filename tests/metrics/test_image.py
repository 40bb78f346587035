"""Tests for vidharm/metrics/_image.py: MSE, PSNR, fMSE, fPSNR against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidharm.errors import MaskError, ShapeError, UsageError
from vidharm.metrics import fmse, fpsnr, mse, psnr


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    pred = np.zeros((2, 2, 3))
    target = np.zeros((2, 2, 3))
    target[0, 0] = (3.0, 6.0, 0.0)  # squared errors 9 + 36 = 45 on one pixel
    target[1, 1] = (1.0, 1.0, 1.0)  # 3 on another
    return pred, target


def test_mse_and_psnr_hand_values(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    assert mse(pred, target) == pytest.approx(48 / 12)
    assert psnr(pred, target) == pytest.approx(10 * math.log10(255**2 / 4.0))
    assert psnr(pred / 255, target / 255, data_range=1.0) == pytest.approx(psnr(pred, target))


def test_fmse_binary_mask_is_foreground_mse(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    mask = np.zeros((2, 2))
    mask[0, 0] = 1.0
    assert fmse(pred, target, mask) == pytest.approx(45 / 3)
    # iHarmony4 form: MSE(pred * m, target * m) * H * W / |fg|.
    m3 = mask[..., None]
    assert fmse(pred, target, mask) == pytest.approx(mse(pred * m3, target * m3) * 4 / 1)
    assert fpsnr(pred, target, mask) == pytest.approx(10 * math.log10(255**2 / 15.0))
    mask[1, 1] = 1.0
    assert fmse(pred, target, mask) == pytest.approx(48 / 6)


def test_fmse_soft_mask_squares_in_numerator(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    mask = np.zeros((2, 2, 1))
    mask[0, 0] = 0.5
    mask[1, 1] = 1.0
    expected = (0.25 * 45 + 1.0 * 3) / (3 * 1.5)
    assert fmse(pred, target, mask) == pytest.approx(expected)


def test_identical_and_empty_cases(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    assert psnr(target, target) == math.inf
    assert fpsnr(target, target, np.ones((2, 2))) == math.inf
    assert math.isnan(fmse(pred, target, np.zeros((2, 2))))
    assert math.isnan(fpsnr(pred, target, np.zeros((2, 2))))


def test_dtypes_uint8_and_uint16(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    assert mse(pred.astype(np.uint8), target.astype(np.uint8)) == pytest.approx(mse(pred, target))
    assert mse((pred * 257).astype(np.uint16), (target * 257).astype(np.uint16)) == pytest.approx(mse(pred, target))


def test_errors(pair: tuple[np.ndarray, np.ndarray]) -> None:
    pred, target = pair
    with pytest.raises(ShapeError, match="same shape"):
        mse(pred, target[:1])
    with pytest.raises(MaskError, match="divide 8-bit masks by 255"):
        fmse(pred, target, np.full((2, 2), 255.0))
    with pytest.raises(ShapeError, match="mask"):
        fmse(pred, target, np.ones((3, 3)))
    with pytest.raises(UsageError, match="data_range"):
        psnr(pred, target, data_range=0.0)
