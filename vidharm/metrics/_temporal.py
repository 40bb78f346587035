"""Temporal-consistency metrics: CO2Net's TL, Lai et al.'s warping error, and flow-free foreground brightness.

References (paraphrased in research/hdnet_and_video.md, sections C.3, C.4, C.5):

* TL: Lu et al., "Deep Video Harmonization with Color Mapping Consistency", IJCAI 2022,
  ``CO2Net/scripts/evaluate_flow.py``.
* E_warp: Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018,
  ``phoenix104104/fast_blind_video_consistency``: ``evaluate_WarpError.py`` and ``utils.detect_occlusion``.

Both published metrics used FlowNet2 flow; we use OpenCV DIS (:func:`compute_flow`), so absolute numbers are
close to but not identical with the papers'. Report the ground-truth floor beside TL: it shows the flow's part.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import cv2
import numpy as np

from vidharm.errors import ShapeError, UsageError
from vidharm.metrics._checks import as_image, as_mask, same_shape
from vidharm.metrics._flow import DEFAULT_FLOW_PRESET, compute_flow, warp

__all__ = [
    "TL_SIZE",
    "LUMA_WEIGHTS",
    "temporal_loss",
    "occlusion_mask",
    "warping_error",
    "foreground_luma",
    "mean_abs_change",
]

TL_SIZE: int = 256
"""Side of the square resolution TL is computed at, as CO2Net evaluates HYouTube."""

LUMA_WEIGHTS: tuple[float, float, float] = (0.2126, 0.7152, 0.0722)
"""Rec.709 luma weights for R, G, B (applied to the gamma-encoded values)."""


def temporal_loss(
    out_t: np.ndarray,
    out_t1: np.ndarray,
    gt_t: np.ndarray,
    gt_t1: np.ndarray,
    mask_t: np.ndarray,
    mask_t1: np.ndarray,
    *,
    size: int | None = TL_SIZE,
    preset: str = DEFAULT_FLOW_PRESET,
) -> float:
    """CO2Net's temporal loss "TL" for one frame pair (t, t+1); lower is steadier.

    With images scaled to [0, 1] and every frame resized to ``size`` x ``size`` (bilinear, as CO2Net's
    albumentations ``Resize``):

    1. F = flow from ground truth t+1 to ground truth t, so ``W(x) = warp(x, F)`` brings frame t onto t+1;
    2. A = W(mask_t) * mean over channels of exp(-|W(gt_t) - gt_t1|), a soft confidence with no hard
       occlusion threshold (flow errors and occlusions lower it);
    3. TL = sum over pixels and the 3 channels of A^2 (W(out_t) - out_t1)^2 * 255^2 / (sum over pixels of A).

    The mask enters before squaring (hence A^2), and the numerator sums over channels while the denominator
    counts pixels. A clip's TL is the mean over its pairs. The ground-truth floor, which CO2Net prints as
    "original tl loss", is this function with ``out = gt``.

    Args:
        out_t: (H, W, 3) harmonized frame t, RGB on the 0-255 scale.
        out_t1: (H, W, 3) harmonized frame t+1.
        gt_t: (H, W, 3) ground-truth frame t.
        gt_t1: (H, W, 3) ground-truth frame t+1.
        mask_t: (H, W) foreground mask of frame t in [0, 1].
        mask_t1: (H, W) foreground mask of frame t+1 in [0, 1]; validated only: CO2Net's weight uses the
            warped mask of frame t.
        size: square side to resize to before everything (default 256); ``None`` keeps the frames' size.
        preset: DIS preset for the flow.

    Returns:
        TL in squared 0-255 levels (summed over channels); ``nan`` if the confidence A is zero everywhere
        (empty mask).

    Raises:
        ShapeError: frames or masks differ in shape, or are not RGB.
        InputError: NaN or inf values.
        MaskError: mask values outside [0, 1].
        UsageError: ``size`` is not a positive integer or None, or unknown preset.

    Example:
        >>> gt = np.full((64, 64, 3), 100.0)
        >>> mask = np.zeros((64, 64)); mask[16:48, 16:48] = 1.0
        >>> out_t1 = gt.copy(); out_t1[16:48, 16:48] += 2.0  # the foreground brightens by 2 levels
        >>> round(temporal_loss(gt, out_t1, gt, gt, mask, mask, size=None), 6)  # 3 channels * 2**2
        12.0
    """
    o0, o1, g0, g1, m0, _ = _tl_inputs(out_t, out_t1, gt_t, gt_t1, mask_t, mask_t1, size)
    flow, conf = _tl_confidence(g0, g1, m0, preset)
    return _tl_value(o0, o1, flow, conf)


def occlusion_mask(fw_flow: np.ndarray, bw_flow: np.ndarray) -> np.ndarray:
    """Pixels of frame t that Lai et al.'s evaluation excludes as occluded or on a motion boundary.

    With F = ``fw_flow`` (t -> t+1) and B = ``warp(bw_flow, F)`` (the t+1 -> t flow fetched where each pixel
    lands), and squared magnitudes in pixels^2, a pixel is occluded if

    * ``|F + B|^2 > 0.01 (|F|^2 + |B|^2) + 0.5`` (forward-backward inconsistency), or
    * ``|grad F|^2 > 0.01 |F|^2 + 0.002`` (motion boundary; forward differences of both flow components
      along x and y, zero on the last column / row, as in their ``compute_flow_gradients``).

    Args:
        fw_flow: (H, W, 2) flow from frame t to t+1 (pixels).
        bw_flow: (H, W, 2) flow from frame t+1 to t (pixels).

    Returns:
        (H, W) bool, True where occluded.

    Raises:
        ShapeError: the flows are not (H, W, 2) of one size.
        InputError: NaN or inf in the flows.

    Example:
        >>> fw = np.zeros((4, 4, 2), np.float32); fw[..., 0] = 2.0
        >>> bool(occlusion_mask(fw, -fw).any()), bool(occlusion_mask(fw, fw).all())
        (False, True)
    """
    f = np.asarray(fw_flow, dtype=np.float64)
    b = np.asarray(bw_flow, dtype=np.float64)
    if f.ndim != 3 or f.shape[2] != 2 or f.shape != b.shape:
        raise ShapeError(f"flows: expected two (H, W, 2) arrays of one size, got {f.shape} and {b.shape}")
    b_w = warp(b, f)
    inconsistent = _sq(f + b_w) > 0.01 * (_sq(f) + _sq(b_w)) + 0.5
    grad = np.zeros(f.shape[:2])
    for c in range(2):
        du = np.zeros(f.shape[:2])
        dv = np.zeros(f.shape[:2])
        du[:, :-1] = f[:, :-1, c] - f[:, 1:, c]
        dv[:-1, :] = f[:-1, :, c] - f[1:, :, c]
        grad += du**2 + dv**2
    boundary = grad > 0.01 * _sq(f) + 0.002
    return inconsistent | boundary


def warping_error(
    out_t: np.ndarray,
    out_t1: np.ndarray,
    in_t: np.ndarray,
    in_t1: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    preset: str = DEFAULT_FLOW_PRESET,
) -> float:
    """Warping error E_warp of Lai et al. (2018) for one frame pair, at the frames' own resolution.

    Flow is computed on the INPUT (unprocessed) frames in both directions; with M = 1 - :func:`occlusion_mask`
    and images scaled to [0, 1]:
    ``E = sum(M * (warp(out_t1, F_fw) - out_t)^2) / (C * sum(M))``, i.e. the mean squared difference over
    non-occluded pixels and channels. If every pixel is occluded the result is 0, as in their code (the
    numerator is masked and the denominator falls back to all pixels). A video's E_warp is the mean over
    its pairs.

    Args:
        out_t: (H, W, 3) processed frame t, 0-255 scale.
        out_t1: (H, W, 3) processed frame t+1.
        in_t: (H, W, 3) input frame t (the composite), 0-255 scale; the flow comes from the inputs.
        in_t1: (H, W, 3) input frame t+1.
        mask: optional (H, W) weight in [0, 1] on frame t (e.g. the foreground mask) multiplying M; our
            extension, giving the error over the region that was harmonized. ``nan`` if the weight is empty.
        preset: DIS preset for the flow.

    Returns:
        E_warp as a mean of squared [0, 1] differences (multiply by 255^2 for 0-255 levels).

    Raises:
        ShapeError: frames differ in shape.
        InputError: NaN or inf values.
        MaskError: mask values outside [0, 1].
        UsageError: unknown preset.

    Example:
        >>> frame = np.random.default_rng(0).uniform(0, 255, (32, 32, 3))
        >>> warping_error(frame, frame, frame, frame)
        0.0
    """
    o0, o1, i0, i1 = (
        as_image(n, a) for n, a in zip(("out_t", "out_t1", "in_t", "in_t1"), (out_t, out_t1, in_t, in_t1), strict=True)
    )
    for name, a in (("out_t1", o1), ("in_t", i0), ("in_t1", i1)):
        same_shape(("out_t", name), o0, a)
    weight = None if mask is None else as_mask("mask", mask, o0.shape[:2])
    values = _warp_errors(o0, o1, i0, i1, [None if weight is None else weight], preset)
    return values[0]


def foreground_luma(image: np.ndarray, mask: np.ndarray) -> float:
    """Mask-weighted mean Rec.709 luma of a frame's foreground: ``sum(m * Y) / sum(m)``.

    ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` on the gamma-encoded 0-255 values (luma, not linear luminance).
    Its frame-to-frame change is a flow-free flicker measure in the spirit of VTT's fR-RTC (which uses HSV V).

    Args:
        image: (H, W, 3) RGB frame on the 0-255 scale.
        mask: (H, W) foreground mask in [0, 1].

    Returns:
        Mean luma in 0-255 levels; ``nan`` if the mask is empty.

    Raises:
        ShapeError: image is not RGB or mask size differs.
        InputError: NaN or inf values.
        MaskError: mask values outside [0, 1].

    Example:
        >>> image = np.zeros((2, 2, 3)); image[0, 0] = (100.0, 50.0, 10.0)
        >>> mask = np.zeros((2, 2)); mask[0, 0] = 1.0
        >>> round(foreground_luma(image, mask), 4)
        57.742
    """
    img = as_image("image", image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ShapeError(f"image: expected shape (H, W, 3) RGB, got {img.shape}")
    m = as_mask("mask", mask, img.shape[:2])
    area = float(m.sum())
    if area == 0.0:
        return math.nan
    luma = img @ np.asarray(LUMA_WEIGHTS)
    return float(np.sum(m * luma) / area)


def mean_abs_change(values: Iterable[float]) -> float:
    """Mean absolute change between consecutive values, ``mean(|v[t+1] - v[t]|)``.

    Pairs where either value is NaN (e.g. a frame with an empty mask) are skipped.

    Args:
        values: per-frame numbers in frame order (e.g. :func:`foreground_luma` of each frame).

    Returns:
        The mean absolute change in the values' unit; ``nan`` if no pair has two finite values.

    Example:
        >>> mean_abs_change([10.0, 12.0, 9.0, 9.0])
        1.6666666666666667
    """
    v = np.asarray(list(values), dtype=np.float64)
    if v.ndim != 1:
        raise ShapeError(f"values: expected a flat sequence of numbers, got shape {v.shape}")
    diffs = np.abs(np.diff(v))
    diffs = diffs[np.isfinite(diffs)]
    return float(diffs.mean()) if diffs.size else math.nan


def _sq(flow: np.ndarray) -> np.ndarray:
    return flow[..., 0] ** 2 + flow[..., 1] ** 2


def _tl_inputs(
    out_t: np.ndarray,
    out_t1: np.ndarray,
    gt_t: np.ndarray,
    gt_t1: np.ndarray,
    mask_t: np.ndarray,
    mask_t1: np.ndarray,
    size: int | None,
) -> tuple[np.ndarray, ...]:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise UsageError(f"size: expected a positive integer side or None, got {size!r}; CO2Net uses {TL_SIZE}")
    names = ("out_t", "out_t1", "gt_t", "gt_t1")
    images = [as_image(n, a) for n, a in zip(names, (out_t, out_t1, gt_t, gt_t1), strict=True)]
    if images[0].ndim != 3 or images[0].shape[2] != 3:
        raise ShapeError(f"out_t: expected shape (H, W, 3) RGB, got {images[0].shape}")
    for name, a in zip(names[1:], images[1:], strict=True):
        same_shape(("out_t", name), images[0], a)
    masks = [as_mask(n, m, images[0].shape[:2]) for n, m in (("mask_t", mask_t), ("mask_t1", mask_t1))]
    if size is not None:
        images = [cv2.resize(a, (size, size), interpolation=cv2.INTER_LINEAR) for a in images]
        masks = [cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) for m in masks]
    return (*images, *masks)


def _tl_confidence(gt_t: np.ndarray, gt_t1: np.ndarray, mask_t: np.ndarray, preset: str) -> tuple[np.ndarray, ...]:
    # Flow from t+1 to t: warp() then fetches frame t's content at each pixel of frame t+1.
    flow = compute_flow(gt_t1, gt_t, preset=preset)
    gt_w = warp(gt_t, flow) / 255.0
    photometric = np.exp(-np.abs(gt_w - gt_t1 / 255.0)).mean(axis=2)
    return flow, warp(mask_t, flow) * photometric


def _tl_value(out_t: np.ndarray, out_t1: np.ndarray, flow: np.ndarray, conf: np.ndarray) -> float:
    total = float(conf.sum())
    if total == 0.0:
        return math.nan
    diff = (warp(out_t, flow) - out_t1) / 255.0
    return float(np.sum((conf[..., None] * diff) ** 2) * 255.0**2 / total)


def _warp_errors(
    out_t: np.ndarray,
    out_t1: np.ndarray,
    in_t: np.ndarray,
    in_t1: np.ndarray,
    weights: list[np.ndarray | None],
    preset: str,
) -> list[float]:
    """E_warp for several region weights from one pair of flows (None = Lai's whole-frame version)."""
    fw = compute_flow(in_t, in_t1, preset=preset)
    bw = compute_flow(in_t1, in_t, preset=preset)
    visible = (~occlusion_mask(fw, bw)).astype(np.float64)
    sq = ((warp(out_t1, fw) - out_t) / 255.0) ** 2
    if sq.ndim == 2:
        sq = sq[..., None]
    per_pixel = sq.sum(axis=2)
    channels = sq.shape[2]
    results = []
    for weight in weights:
        if weight is None:
            count = float(visible.sum()) * channels
            if count == 0.0:
                count = float(sq.size)
            results.append(float(np.sum(visible * per_pixel) / count))
        else:
            w = visible * weight
            count = float(w.sum()) * channels
            results.append(float(np.sum(w * per_pixel) / count) if count > 0 else math.nan)
    return results
