"""Optical flow (OpenCV DIS) and backward warping (cv2.remap) for the temporal metrics."""

from __future__ import annotations

import cv2
import numpy as np

from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.metrics._checks import as_image, same_shape

__all__ = ["DEFAULT_FLOW_PRESET", "FLOW_PRESETS", "compute_flow", "warp"]

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}

FLOW_PRESETS: tuple[str, ...] = tuple(_PRESETS)
"""Valid DIS presets for :func:`compute_flow`."""

DEFAULT_FLOW_PRESET: str = "medium"
"""DIS preset used by the metrics: OpenCV's most accurate one (dense patches with variational refinement),
~35 ms for an 854x480 pair on one core here; the published metrics used FlowNet2, which we do not ship."""


def compute_flow(prev: np.ndarray, next: np.ndarray, *, preset: str = DEFAULT_FLOW_PRESET) -> np.ndarray:
    """Dense optical flow from ``prev`` to ``next`` with OpenCV's DIS on the grayscale images.

    The flow follows OpenCV's convention: ``prev[y, x] ~ next[y + flow[y, x, 1], x + flow[y, x, 0]]``, so
    ``warp(next, flow)`` aligns ``next`` to ``prev``. Colour frames are converted with the Rec.601 gray
    weights of ``cv2.cvtColor`` after rounding to 8 bits (DIS works on 8-bit images). A fresh DIS object is
    made per call, so calls are independent and thread-safe.

    Args:
        prev: (H, W, 3) RGB or (H, W) gray frame on the 0-255 scale (uint8, float, or uint16 rescaled).
        next: frame of the same shape.
        preset: DIS preset, one of :data:`FLOW_PRESETS`; default :data:`DEFAULT_FLOW_PRESET`.

    Returns:
        (H, W, 2) float32 flow in pixels, (dx, dy).

    Raises:
        ShapeError: the frames differ in shape or are not images.
        InputError: NaN or inf values.
        UsageError: unknown preset.

    Example:
        >>> frame = np.zeros((32, 32, 3), np.uint8)
        >>> compute_flow(frame, frame).shape
        (32, 32, 2)
    """
    if preset not in _PRESETS:
        raise UsageError(f"preset: expected one of {', '.join(FLOW_PRESETS)}, got {preset!r}")
    a = _gray8("prev", prev)
    b = _gray8("next", next)
    same_shape(("prev", "next"), a, b)
    dis = cv2.DISOpticalFlow.create(_PRESETS[preset])
    # The buffer is output only: DIS reads it as a starting flow only after setUseInitialFlow(True).
    flow = np.zeros((*a.shape, 2), np.float32)
    return np.asarray(dis.calc(a, b, flow), dtype=np.float32)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp ``image`` by ``flow``: ``out[y, x] = image[y + flow[y, x, 1], x + flow[y, x, 0]]``.

    Bilinear sampling with ``cv2.remap`` (which quantises sample positions to 1/32 pixel); samples outside
    the frame take the nearest edge pixel (``BORDER_REPLICATE``), as FlowNet2's Resample2d used by CO2Net and
    Lai et al. clamps coordinates.

    Args:
        image: (H, W), (H, W, C) image, mask or flow field (C <= 4), any range.
        flow: (H, W, 2) flow in pixels (dx, dy).

    Returns:
        Float64 array of the same shape as ``image``.

    Raises:
        ShapeError: image and flow sizes differ, flow is not (H, W, 2), or image has more than 4 channels.
        InputError: NaN or inf in the flow.

    Example:
        >>> image = np.arange(12, dtype=np.float64).reshape(3, 4)
        >>> flow = np.zeros((3, 4, 2), np.float32); flow[..., 0] = 1.0  # sample one pixel to the right
        >>> warp(image, flow)[0].tolist()
        [1.0, 2.0, 3.0, 3.0]
    """
    img = np.asarray(image, dtype=np.float64)
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ShapeError(f"flow: expected shape (H, W, 2), got {f.shape}")
    if img.shape[:2] != f.shape[:2] or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] > 4):
        raise ShapeError(
            f"image: expected shape {f.shape[:2]} or {f.shape[:2]} + (C<=4,) to match flow, got {img.shape}"
        )
    if not np.isfinite(f).all():
        raise InputError("flow: holds NaN or inf; pass a finite flow field in pixels")
    h, w = f.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(
        img, grid_x + f[..., 0], grid_y + f[..., 1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    # remap drops a trailing channel axis of length 1.
    return out.reshape(img.shape)


def _gray8(name: str, image: np.ndarray) -> np.ndarray:
    a = as_image(name, image)
    a8 = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if a8.ndim == 3:
        if a8.shape[2] == 1:
            return a8[..., 0]
        if a8.shape[2] != 3:
            raise ShapeError(f"{name}: expected (H, W, 3) RGB or (H, W) gray, got {a8.shape}")
        return cv2.cvtColor(a8, cv2.COLOR_RGB2GRAY)
    return a8
