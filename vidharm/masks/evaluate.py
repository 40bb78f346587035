"""Quality of mask propagation: IoU, DAVIS-style boundary F-score, and leave-one-out over the given keyframes.

``vidharm masks check`` runs :func:`leave_one_out` on the user's keyframes: each keyframe in turn is dropped,
propagated from the remaining ones, and compared with the mask the user gave. The table from
:func:`format_loo_table` tells how far apart keyframes can be on this clip before the propagation drifts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from vidharm.errors import MaskError, ShapeError
from vidharm.masks.propagate import (
    DEFAULT_FLOW_PRESET,
    DEFAULT_FLOW_SIZE,
    FrameSource,
    _check_keyframes,
    propagate_masks,
)

__all__ = [
    "BOUNDARY_TOLERANCE",
    "mask_iou",
    "boundary_f_score",
    "leave_one_out",
    "format_loo_table",
]

BOUNDARY_TOLERANCE = 0.008
"""Boundary match tolerance as a fraction of the image diagonal (the DAVIS 2016 value)."""


def mask_iou(pred: np.ndarray, true: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union (the DAVIS region measure J) of two masks after thresholding.

    Args:
        pred: predicted mask (H, W), any real dtype; values >= ``threshold`` count as foreground.
        true: reference mask (H, W), same size, thresholded the same way.
        threshold: foreground threshold, in the masks' range (0.5 for masks in [0, 1]).

    Returns:
        IoU in [0, 1]; 1.0 when both masks are empty (nothing to find, nothing found).

    Raises:
        ShapeError: the masks are not 2-D or differ in size.

    Example:
        >>> a = np.zeros((4, 4), np.float32); a[:, :2] = 1.0
        >>> b = np.zeros((4, 4), np.float32); b[:, 1:3] = 0.8
        >>> mask_iou(a, b)
        0.3333333333333333
        >>> mask_iou(np.zeros((4, 4)), np.zeros((4, 4)))
        1.0
    """
    p, t = _binary_pair(pred, true, threshold)
    union = int(np.count_nonzero(p | t))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(p & t)) / union


def boundary_f_score(
    pred: np.ndarray, true: np.ndarray, threshold: float = 0.5, tolerance_px: int | None = None
) -> float:
    """Boundary F-measure (the DAVIS contour measure F) of two masks after thresholding.

    Boundaries are the one-pixel inner contours of the thresholded masks (the image border is not a contour).
    A predicted boundary pixel is correct when a reference boundary pixel lies within ``tolerance_px`` (a disc),
    and the other way round for recall; F is their harmonic mean. This follows the DAVIS definition; the
    contour extraction differs in detail from the DAVIS toolkit's, so values can differ slightly from it.

    Args:
        pred: predicted mask (H, W), any real dtype; values >= ``threshold`` count as foreground.
        true: reference mask (H, W), same size.
        threshold: foreground threshold, in the masks' range.
        tolerance_px: match distance in pixels, >= 0; default ``ceil(0.008 * diagonal)`` as in DAVIS
            (8 px at 854x480, 18 px at 1920x1080).

    Returns:
        F in [0, 1]; 1.0 when neither mask has a boundary, 0.0 when exactly one has none.

    Raises:
        ShapeError: the masks are not 2-D or differ in size.
        ValueError: ``tolerance_px`` is negative.

    Example:
        >>> a = np.zeros((40, 40), np.float32); a[10:30, 10:30] = 1.0
        >>> boundary_f_score(a, a)
        1.0
        >>> boundary_f_score(np.roll(a, 2, axis=1), a, tolerance_px=2)
        1.0
        >>> round(boundary_f_score(np.roll(a, 5, axis=1), a, tolerance_px=2), 3)
        0.5
    """
    p, t = _binary_pair(pred, true, threshold)
    if tolerance_px is None:
        tolerance_px = math.ceil(BOUNDARY_TOLERANCE * math.hypot(*p.shape))
    if tolerance_px < 0:
        raise ValueError(f"tolerance_px: expected an integer >= 0, got {tolerance_px}; leave it None for DAVIS's value")
    pb, tb = _boundary(p), _boundary(t)
    n_pred, n_true = int(np.count_nonzero(pb)), int(np.count_nonzero(tb))
    if n_pred == 0 and n_true == 0:
        return 1.0
    if n_pred == 0 or n_true == 0:
        return 0.0
    offsets = np.arange(-tolerance_px, tolerance_px + 1)
    disc = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= tolerance_px**2).astype(np.uint8)
    near_true = cv2.dilate(tb.view(np.uint8), disc).astype(bool)
    near_pred = cv2.dilate(pb.view(np.uint8), disc).astype(bool)
    precision = int(np.count_nonzero(pb & near_true)) / n_pred
    recall = int(np.count_nonzero(tb & near_pred)) / n_true
    if precision + recall == 0.0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def leave_one_out(
    frames: FrameSource,
    keyframes: Mapping[int, np.ndarray],
    num_frames: int,
    *,
    threshold: float = 0.5,
    tolerance_px: int | None = None,
    flow_size: int = DEFAULT_FLOW_SIZE,
    preset: str = DEFAULT_FLOW_PRESET,
    consistency_check: bool = True,
) -> list[dict[str, Any]]:
    """Drop each keyframe in turn, propagate to it from the others, and score the result against it.

    Only the frames between the dropped keyframe's neighbours are read for each one, so the clip is read about
    twice in all. A callable ``frames`` is called with ranges that may go back in the clip (one range per keyframe).

    Args:
        frames: as for :func:`propagate_masks`: ``frames(start, stop)`` or a sequence of (H, W, 3) uint8/uint16
            RGB frames.
        keyframes: frame number -> float32 (H, W) mask in [0, 1]; at least two.
        num_frames: number of frames in the clip, >= 1.
        threshold: foreground threshold for the scores, in [0, 1].
        tolerance_px: boundary tolerance in pixels, or None for DAVIS's 0.008 of the diagonal.
        flow_size: long side of the flow resolution, as for :func:`propagate_masks`.
        preset: DIS preset, as for :func:`propagate_masks`.
        consistency_check: as for :func:`propagate_masks`.

    Returns:
        One row per keyframe, in frame order: ``{"frame": int, "distance_to_nearest_keyframe": int,
        "iou": float, "boundary_f": float}`` with the distance counted to the nearest remaining keyframe.

    Raises:
        MaskError: fewer than two keyframes, or the keyframes are invalid (see :func:`propagate_masks`).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> background = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (0, 0), 1.5)
        >>> clip = [np.roll(background, 2 * t, axis=1) for t in range(5)]
        >>> keys = {}
        >>> for t in (0, 2, 4):
        ...     keys[t] = np.zeros((48, 64), np.float32)
        ...     keys[t][16:32, 20 + 2 * t : 36 + 2 * t] = 1.0
        >>> rows = leave_one_out(clip, keys, 5)
        >>> [(r["frame"], r["distance_to_nearest_keyframe"], r["iou"] > 0.9) for r in rows]
        [(0, 2, True), (2, 2, True), (4, 2, True)]
    """
    if len(keyframes) < 2:
        raise MaskError(
            f"leave-one-out: expected at least 2 keyframes, got {len(keyframes)}; "
            "it drops one keyframe and propagates from the others, so give masks for two frames or more"
        )
    keys = _check_keyframes(keyframes, num_frames)
    source = _as_source(frames)
    rows: list[dict[str, Any]] = []
    for i, k in enumerate(keys):
        before = keys[i - 1] if i > 0 else None
        after = keys[i + 1] if i + 1 < len(keys) else None
        start = k if before is None else before
        stop = k + 1 if after is None else after + 1
        kept = {j - start: keyframes[j] for j in (before, after) if j is not None}

        def window(lo: int, hi: int, start: int = start) -> Iterable[np.ndarray]:
            return source(start + lo, start + hi)

        masks = propagate_masks(
            window, kept, stop - start, flow_size=flow_size, preset=preset, consistency_check=consistency_check
        )
        pred = next(mask for t, mask in masks if t == k - start)
        true = keyframes[k]
        rows.append(
            {
                "frame": k,
                "distance_to_nearest_keyframe": min(abs(k - j) for j in (before, after) if j is not None),
                "iou": mask_iou(pred, true, threshold),
                "boundary_f": boundary_f_score(pred, true, threshold, tolerance_px),
            }
        )
    return rows


def format_loo_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Format leave-one-out rows as a fixed-width text table with a mean line.

    Args:
        rows: rows as returned by :func:`leave_one_out` (keys ``frame``, ``distance_to_nearest_keyframe``,
            ``iou``, ``boundary_f``).

    Returns:
        The table, lines joined by newlines, no trailing newline.

    Example:
        >>> print(format_loo_table([{"frame": 0, "distance_to_nearest_keyframe": 8, "iou": 0.9512, "boundary_f": 0.88},
        ...                         {"frame": 8, "distance_to_nearest_keyframe": 8, "iou": 0.9, "boundary_f": 0.8}]))
        frame  distance     IoU  boundary F
            0         8  0.9512      0.8800
            8         8  0.9000      0.8000
         mean       8.0  0.9256      0.8400
    """
    lines = [f"{'frame':>5}  {'distance':>8}  {'IoU':>6}  {'boundary F':>10}"]
    for row in rows:
        distance, iou, boundary_f = row["distance_to_nearest_keyframe"], row["iou"], row["boundary_f"]
        lines.append(f"{row['frame']:>5d}  {distance:>8d}  {iou:>6.4f}  {boundary_f:>10.4f}")
    if rows:
        distance, iou, boundary_f = (
            float(np.mean([r[key] for r in rows])) for key in ("distance_to_nearest_keyframe", "iou", "boundary_f")
        )
        lines.append(f"{'mean':>5}  {distance:>8.1f}  {iou:>6.4f}  {boundary_f:>10.4f}")
    return "\n".join(lines)


def _binary_pair(pred: np.ndarray, true: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ShapeError(
            f"masks: expected two (H, W) masks of the same size, got {pred.shape} and {true.shape}; "
            "resize the prediction to the reference first"
        )
    return pred >= threshold, true >= threshold


def _boundary(mask: np.ndarray) -> np.ndarray:
    # cv2.erode treats outside the image as foreground, so the image border never counts as a contour.
    eroded = cv2.erode(mask.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    return mask & ~eroded.astype(bool)


def _as_source(frames: FrameSource) -> Callable[[int, int], Iterable[np.ndarray]]:
    if callable(frames):
        return frames
    return lambda start, stop: (frames[i] for i in range(start, stop))
