"""Per-image harmonization metrics on the 0-255 scale: MSE, PSNR, foreground MSE and foreground PSNR."""

from __future__ import annotations

import math

import numpy as np

from vidharm.errors import UsageError
from vidharm.metrics._checks import as_image, as_mask, same_shape

__all__ = ["mse", "psnr", "fmse", "fpsnr"]


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, ``mean((pred - target) ** 2)``.

    Args:
        pred: (H, W, 3) image on the 0-255 scale (any numeric dtype; uint16 is rescaled by 1/257).
        target: (H, W, 3) ground truth, same shape and scale.

    Returns:
        The MSE in squared 0-255 levels (as iHarmony4 and HYouTube tables report it).

    Raises:
        ShapeError: the shapes differ or are not (H, W, C) / (H, W).
        InputError: NaN or inf values.

    Example:
        >>> target = np.zeros((2, 2, 3)); target[0, 0] = 3.0
        >>> mse(np.zeros((2, 2, 3)), target)
        2.25
    """
    p = as_image("pred", pred)
    t = as_image("target", target)
    same_shape(("pred", "target"), p, t)
    return float(np.mean((p - t) ** 2))


def psnr(pred: np.ndarray, target: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range ** 2 / MSE)`` in dB.

    We use the standard fixed ``data_range`` = 255. The official Harmonizer and CO2Net evaluation scripts
    use ``pred.max() - pred.min()`` instead, which makes their PSNR depend on the prediction's contrast; our
    numbers are therefore not directly comparable to theirs on images that do not span the full range.

    Args:
        pred: (H, W, 3) image on the 0-255 scale.
        target: (H, W, 3) ground truth, same shape and scale.
        data_range: peak value, > 0.

    Returns:
        PSNR in dB; ``inf`` when the images are equal.

    Raises:
        ShapeError: the shapes differ.
        InputError: NaN or inf values.
        UsageError: ``data_range`` is not positive.

    Example:
        >>> target = np.zeros((2, 2, 3)); target[0, 0] = 3.0
        >>> round(psnr(np.zeros((2, 2, 3)), target), 4)
        44.609
    """
    return _psnr_from_mse(mse(pred, target), data_range)


def fmse(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """Foreground MSE as in the iHarmony4 evaluation: ``MSE(pred * m, target * m) * H * W / sum(m)``.

    Equivalently ``sum(m**2 * (pred - target)**2) / (C * sum(m))`` with sums over pixels (and channels in
    the numerator). For a binary mask this is the MSE over foreground pixels only. A soft mask enters squared
    in the numerator and once in the denominator, which is what multiplying the images by the mask does;
    HYouTube issue #4 notes this differs from other "fMSE" variants on soft (resized) masks.

    Args:
        pred: (H, W, 3) image on the 0-255 scale.
        target: (H, W, 3) ground truth, same shape and scale.
        mask: (H, W) or (H, W, 1) foreground mask in [0, 1].

    Returns:
        fMSE in squared 0-255 levels; ``nan`` when the mask is empty (so per-clip means can skip the frame).

    Raises:
        ShapeError: the shapes differ.
        InputError: NaN or inf values.
        MaskError: mask values outside [0, 1].

    Example:
        >>> target = np.zeros((2, 2, 3)); target[0, 0] = 3.0
        >>> mask = np.zeros((2, 2)); mask[0, 0] = 1.0
        >>> fmse(np.zeros((2, 2, 3)), target, mask)
        9.0
    """
    p = as_image("pred", pred)
    t = as_image("target", target)
    same_shape(("pred", "target"), p, t)
    m = as_mask("mask", mask, p.shape[:2])
    area = float(m.sum())
    if area == 0.0:
        return math.nan
    weighted = m[..., None] if p.ndim == 3 else m
    channels = p.shape[2] if p.ndim == 3 else 1
    return float(np.sum((weighted * (p - t)) ** 2) / (channels * area))


def fpsnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray, data_range: float = 255.0) -> float:
    """Foreground PSNR ``10 log10(data_range ** 2 / fMSE)`` in dB (the VTT evaluation's definition).

    Args:
        pred: (H, W, 3) image on the 0-255 scale.
        target: (H, W, 3) ground truth, same shape and scale.
        mask: (H, W) or (H, W, 1) foreground mask in [0, 1].
        data_range: peak value, > 0.

    Returns:
        fPSNR in dB; ``inf`` when the foreground matches exactly, ``nan`` when the mask is empty.

    Raises:
        ShapeError: the shapes differ.
        InputError: NaN or inf values.
        MaskError: mask values outside [0, 1].
        UsageError: ``data_range`` is not positive.

    Example:
        >>> target = np.zeros((2, 2, 3)); target[0, 0] = 3.0
        >>> mask = np.zeros((2, 2)); mask[0, 0] = 1.0
        >>> round(fpsnr(np.zeros((2, 2, 3)), target, mask), 4)
        38.5884
    """
    return _psnr_from_mse(fmse(pred, target, mask), data_range)


def _psnr_from_mse(value: float, data_range: float) -> float:
    if not (math.isfinite(data_range) and data_range > 0):
        raise UsageError(f"data_range: expected a positive peak value, got {data_range}; use 255 for 8-bit scale")
    if math.isnan(value):
        return math.nan
    if value == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / value)
