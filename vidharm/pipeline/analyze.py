"""Analyze: frames and masks in, raw per-frame arguments and filter statistics out.

The network sees each frame at its input size (bilinear, as the reference resizes); the statistics the
filters need at full resolution (per-channel means, the contrast pivot) come from per-channel histograms of a
regular sample of the frame (:func:`stats_step`: every 3rd pixel of every 3rd row at 1080p), so no
full-resolution float copy of the clip, or even of a batch, is ever made.

**Statistics mask** (``ClipInput.stats_mask``, ``--stats-mask``): 1 where the background may be measured, 0
where not (letterbox bars, sky, garbage). A pixel is *measured* when it is foreground (mask >= 0.5) or allowed
(stats mask >= 0.5) (:func:`measured_pixels`). The rule everywhere: nothing analysis produces depends on an
unmeasured pixel.

* The filters' global statistics (channel means, contrast pivot) come from the histograms of the measured
  pixels only: exactly "measured where allowed".
* The model (``stats`` or a network) takes one image and one mask, so the excluded background cannot be given
  zero weight; it is *replaced* in the model's input (:func:`masked_model_input`): the frame is resized as a
  normalised convolution over the measured pixels, and model pixels with no measured pixel under them are
  filled by mirroring the neighbouring measured background across the edge of the excluded area
  (:func:`reflect_fill`, reflect padding for any region shape). The network sees a natural image; the analytic
  model's background statistics change little. Against an exact three-region ``stats`` estimator (background
  weight ``(1 - mask) * stats_mask``), on 74 real photos with a perturbed foreground, the mean |argument error|
  was 0.024 with wild-coloured letterbox bars (12% top and bottom) and 0.033 with the top 35% excluded, against
  0.050 and 0.045 when the stats mask is ignored; filling with the mean background colour gave 0.039 and 0.045.
* The background signature of the cut detector weighs the background by ``(1 - mask) * stats_mask`` too.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import vidharm
from vidharm.errors import MaskError
from vidharm.filters import adjust_brightness, adjust_temperature
from vidharm.io import ColorManagement, prefetch
from vidharm.models import create_model, get_model_config
from vidharm.pipeline.inputs import (
    ClipInput,
    fingerprint_file,
    iter_frames_and_masks,
    iter_stats_masks,
    masks_cover,
)
from vidharm.pipeline.methods import method_for_model
from vidharm.pipeline.params import FrameParams, ParamsTrack, round_args
from vidharm.pipeline.runtime import onnx_args, runtime_name, uses_onnxruntime
from vidharm.pipeline.settings import (
    ProcessConfig,
    analysis_stride,
    color_management,
    configure_threads,
    resolve_device,
    threads_for,
)
from vidharm.temporal import DEFAULT_CUT_THRESHOLD, background_signature, signature_distance

__all__ = [
    "analysis_span",
    "key_span",
    "config_stride",
    "analyze",
    "analyze_stream",
    "analysis_track",
    "analysis_frame",
    "load_model",
    "stats_from_histograms",
    "frame_histogram",
    "to_model_input",
    "resize_for_model",
    "interpolate_rows",
    "measured_pixels",
    "reflect_fill",
    "masked_model_input",
    "network_runtime",
    "stats_step",
    "subsample",
    "STATS_SAMPLES",
]

log = logging.getLogger(__name__)

_SIGNATURE_SIZE = (128, 72)
_SIGNATURE_DECIMALS = 4
_AREA_DECIMALS = 6
STATS_SAMPLES = 1 << 17
"""Pixels analysis measures each frame's statistics and cut signature on, at least (see :func:`stats_step`)."""
# Frames analyze may hold before it runs the network on a partial batch (a 16-bit histogram is 1.5 MB).
_MAX_PENDING = 64
_CPU_BATCH = 2  # harmonizer, 1 thread, channels-last: 34, 32, 42, 67 ms a frame at batch 1, 2, 4, 8
_MAX_PENDING_DEEP = 16


def load_model(config: ProcessConfig, device: torch.device) -> nn.Module:
    """The configured model, with its weights, in eval mode on ``device``.

    A model with parameters and no ``weights`` gets the weights bundled with vidharm, so a network never
    runs with random weights; where none are bundled, the registry says to pass ``--weights``.

    Raises:
        CheckpointError: no weights given and none bundled, or the checkpoint does not fit.
        UsageError: an unknown model name.
    """
    if config.weights:
        model = create_model(config.model, checkpoint=config.weights)
    else:
        model = create_model(config.model)
        if any(True for _ in model.parameters()):
            model = create_model(config.model, pretrained=True)
    return model.to(device).eval()


def _peak(image: np.ndarray) -> float:
    """The value of white: 255 or 65535 for integer frames, 1 for float frames."""
    return float(np.iinfo(image.dtype).max) if image.dtype.kind in "ui" else 1.0


def analysis_frame(image: np.ndarray, color: ColorManagement | None = None) -> np.ndarray:
    """The frame as analysis sees it: the model's input, the filter statistics and the cut signatures.

    Integer frames without colour management (or whose colour space is the analysis space itself) are
    returned unchanged. Otherwise the frame is converted to the analysis space (``color``; float frames
    without it are taken as code values already), clipped to [0, 1] and quantised to 16-bit levels, so that
    the histograms and resizes of analyze work on it as on any 16-bit frame: the model and the statistics
    see it to within half a 16-bit step (non-finite values count as 0, or 1 for +inf).

    Args:
        image: (H, W, 3) RGB: uint8 [0, 255], uint16 [0, 65535] or float32 (unbounded, e.g. scene-linear).
        color: the conversion to the analysis space, or None for code values as they are.

    Returns:
        (H, W, 3) ``image`` itself (uint8/uint16 unmanaged), or a new uint16 array in [0, 65535].

    Example:
        >>> analysis_frame(np.array([[[-0.5, 0.5, 2.0]]], np.float32)).tolist()
        [[[0, 32768, 65535]]]
    """
    managed = color is not None and not color.is_identity
    if image.dtype.kind in "ui" and not managed:
        return image
    x = image.astype(np.float32) / np.float32(_peak(image)) if image.dtype.kind in "ui" else image
    if managed and color is not None:
        x = color.to_analysis(np.ascontiguousarray(x, dtype=np.float32))
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0)
    return (np.clip(x, 0.0, 1.0) * np.float32(65535) + np.float32(0.5)).astype(np.uint16)


def to_model_input(image: np.ndarray, mask: np.ndarray, size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Resize one frame and its mask for the network, as the reference does (bilinear, no antialias).

    Args:
        image: (H, W, 3) RGB uint8, uint16, or float32 code values (clipped to [0, 1] here; convert
            colour-managed frames with :func:`analysis_frame` first).
        mask: (H, W) float32 alpha in [0, 1].
        size: the network's square input side.
        device: where the tensors go.

    Returns:
        image (1, 3, size, size) and mask (1, 1, size, size), float32 in [0, 1].

    Example:
        >>> im, m = to_model_input(np.zeros((9, 7, 3), np.uint8), np.ones((9, 7), np.float32), 4, torch.device("cpu"))
        >>> tuple(im.shape), tuple(m.shape)
        ((1, 3, 4, 4), (1, 1, 4, 4))
    """
    scale = _peak(image)
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div(scale)
    if image.dtype.kind == "f":
        x = x.nan_to_num(0.0, 1.0, 0.0).clamp(0, 1)
    m = torch.from_numpy(np.ascontiguousarray(mask)).to(device)[None, None].float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
    return x, m


def frame_histogram(image: np.ndarray) -> np.ndarray:
    """Per-channel histograms of a frame, the full-resolution statistics the filters need.

    Args:
        image: (H, W, 3) RGB uint8 (256 levels) or uint16 (65536 levels); float32 frames count as the 16-bit
            levels of their values clipped to [0, 1] (as :func:`analysis_frame` quantises them).

    Returns:
        (3, levels) float64 pixel counts.

    Example:
        >>> frame_histogram(np.full((2, 2, 3), 7, np.uint8))[:, 7].tolist()
        [4.0, 4.0, 4.0]
    """
    if image.dtype.kind == "f":
        image = analysis_frame(image)
    levels = int(np.iinfo(image.dtype).max) + 1
    if image.dtype == np.uint8:
        return np.stack([cv2.calcHist([image], [c], None, [256], [0, 256]).reshape(256) for c in range(3)]).astype(
            np.float64
        )
    return np.stack([np.bincount(image[..., c].ravel(), minlength=levels) for c in range(3)]).astype(np.float64)


def stats_from_histograms(hist: Tensor, args: Tensor) -> Tensor:
    """The filter chain's global statistics, computed exactly from per-channel histograms.

    Temperature and brightness act on each channel separately, so the image after them, and hence the
    contrast pivot, is a function of each channel's histogram. Matches
    :func:`vidharm.filters.measure_filter_stats` on the frame up to float summation order.

    Args:
        hist: (B, 3, L) pixel counts per channel and level (level k is k / (L - 1)).
        args: (B, 6) raw arguments (clamped here, as the filters do).

    Returns:
        (B, 4) float64: mean_r, mean_g, mean_b, contrast_pivot.

    Example:
        >>> h = torch.zeros(1, 3, 256, dtype=torch.float64); h[:, :, 51] = 10
        >>> stats_from_histograms(h, torch.zeros(1, 6)).tolist()[0][:3]
        [0.2, 0.2, 0.2]
    """
    hist = hist.double()
    levels = torch.linspace(0.0, 1.0, hist.shape[-1], dtype=torch.float64, device=hist.device)
    total = hist.sum(-1)
    means = (hist * levels).sum(-1) / total
    a = args.double().clamp(-1.0, 1.0)
    ramp = levels.expand(hist.shape[0], 3, 1, -1)
    z = adjust_brightness(adjust_temperature(ramp, a[:, 0], mean_rgb=means), a[:, 1])
    pivot = ((z[:, :, 0, :] * hist).sum(-1) / total).mean(-1)
    return torch.cat([means, pivot[:, None]], dim=1)


def _bilinear_taps(source: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of torch's ``bilinear`` (``align_corners=False``), in its float32 arithmetic."""
    scale = np.float32(source / size)
    position = np.maximum(scale * (np.arange(size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    low = position.astype(np.int64)
    high = np.minimum(low + 1, source - 1)
    weight = (position - low).astype(np.float32)
    return low, high, np.float32(1) - weight, weight


def resize_for_model(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize one frame and its mask to the network's input exactly as :func:`to_model_input` does, cheaply.

    Bilinear without antialias reads only the two rows and two columns around each output pixel, so only
    those (at most ``2 size`` rows and columns) are gathered and converted to float; the result equals
    torch's ``F.interpolate(image / peak, bilinear, align_corners=False)`` to float32 rounding (about 1e-7)
    at a small fraction of the cost of a full-resolution float copy.

    Args:
        image: (H, W, 3) RGB uint8, uint16, or float32 code values (clipped to [0, 1] here; convert
            colour-managed frames with :func:`analysis_frame` first).
        mask: (H, W) float alpha in [0, 1].
        size: the network's square input side.

    Returns:
        image (size, size, 3) and mask (size, size), float32 in [0, 1].

    Example:
        >>> im, m = resize_for_model(np.full((9, 7, 3), 255, np.uint8), np.ones((9, 7), np.float32), 4)
        >>> im.shape, float(im.max()), m.shape
        ((4, 4, 3), 1.0, (4, 4))
    """
    if image.dtype.kind == "f":
        image = np.clip(np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
    peak = np.float32(_peak(image))
    y0, y1, wy0, wy1 = _bilinear_taps(image.shape[0], size)
    x0, x1, wx0, wx1 = _bilinear_taps(image.shape[1], size)

    def sample(plane: np.ndarray, scale: np.float32) -> np.ndarray:
        channels = (1,) * (plane.ndim - 2)  # weights broadcast over a trailing channel axis, if any
        cols0, cols1 = wx0.reshape(-1, *channels), wx1.reshape(-1, *channels)
        rows0, rows1 = wy0.reshape(-1, 1, *channels), wy1.reshape(-1, 1, *channels)
        top, bottom = plane.take(y0, axis=0), plane.take(y1, axis=0)
        # Divide first, as the reference divides the whole frame before it resizes.
        c00, c01, c10, c11 = (r.take(c, axis=1).astype(np.float32) / scale for r in (top, bottom) for c in (x0, x1))
        return rows0 * (cols0 * c00 + cols1 * c01) + rows1 * (cols0 * c10 + cols1 * c11)

    return sample(image, peak), sample(np.asarray(mask, dtype=np.float32), np.float32(1))


def measured_pixels(mask: np.ndarray, stats_mask: np.ndarray) -> np.ndarray:
    """The pixels analysis may measure under a statistics mask: the foreground, and the background it allows.

    A pixel counts when it is foreground (mask >= 0.5) or the statistics mask allows it (>= 0.5); the
    statistics mask speaks only for the background, so the foreground is always measured.

    Args:
        mask: (H, W) float32 foreground alpha in [0, 1].
        stats_mask: (H, W) float32 in [0, 1]: 1 where the background may be measured.

    Returns:
        (H, W) bool.

    Example:
        >>> measured_pixels(np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])).tolist()
        [[True, True, False]]
    """
    return (np.asarray(mask) >= 0.5) | (np.asarray(stats_mask) >= 0.5)


def reflect_fill(image: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Fill the pixels outside ``sources`` by mirroring the source region across its nearest edge.

    A pixel at distance d outside the region takes the value of the pixel at distance d inside it, on the line
    through its nearest source pixel (the mirror image), or of that nearest source pixel where the mirror
    image is not a source. This is reflect padding generalised to any region: the filled area continues the
    neighbouring content, so a network sees a natural image and the statistics of the region change little.
    Source pixels are returned unchanged; with no source pixel at all the result is mid grey.

    Args:
        image: (H, W, C) float array (values are copied, not mixed).
        sources: (H, W) bool, the pixels that may be copied.

    Returns:
        (H, W, C) array of ``image``'s dtype.

    Example:
        >>> row = np.array([[[0.1], [0.2], [0.3], [9.0], [9.0]]], np.float32)
        >>> reflect_fill(row, np.array([[True, True, True, False, False]]))[0, :, 0].tolist()
        [0.10000000149011612, 0.20000000298023224, 0.30000001192092896, 0.20000000298023224, 0.10000000149011612]
    """
    if sources.all():
        return image.copy()
    if not sources.any():
        return np.full_like(image, 0.5)
    # With DIST_LABEL_PIXEL every zero pixel of the input (a source) gets its own label, numbered from 1 in
    # row-major order, and every other pixel the label of its nearest source.
    _, labels = cv2.distanceTransformWithLabels(
        (~sources).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL
    )
    ys, xs = np.nonzero(sources)
    near_y, near_x = ys[labels - 1], xs[labels - 1]
    height, width = sources.shape
    py, px = np.indices((height, width))
    mirror_y, mirror_x = 2 * near_y - py, 2 * near_x - px
    inside = (mirror_y >= 0) & (mirror_y < height) & (mirror_x >= 0) & (mirror_x < width)
    mirror_y, mirror_x = np.clip(mirror_y, 0, height - 1), np.clip(mirror_x, 0, width - 1)
    use_mirror = inside & sources[mirror_y, mirror_x]
    filled = np.where(use_mirror[..., None], image[mirror_y, mirror_x], image[near_y, near_x])
    return np.where(sources[..., None], image, filled)


def masked_model_input(
    image: np.ndarray, mask: np.ndarray, measured: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The network's input for a frame under a statistics mask: the excluded background is replaced.

    The rule: the model input may not depend on any pixel outside ``measured`` (:func:`measured_pixels`).
    The frame is resized as :func:`resize_for_model` does, but as a normalised convolution (the resize of
    ``image * measured`` divided by the resize of ``measured``), so a model pixel near the edge of an excluded
    area is made of measured pixels only; model pixels with no measured pixel under them are filled by
    :func:`reflect_fill` from the model pixels that are mostly measured background, blended by the measured
    fraction. The mask is resized as usual. Frames without excluded pixels give exactly
    :func:`resize_for_model`'s result.

    Args:
        image: (H, W, 3) RGB uint8 or uint16 (the analysis frame).
        mask: (H, W) float32 foreground alpha in [0, 1].
        measured: (H, W) bool, the pixels that may be measured.
        size: the network's square input side.

    Returns:
        image (size, size, 3) and mask (size, size), float32 in [0, 1].

    Example:
        >>> im = np.zeros((8, 8, 3), np.uint8); im[:2] = 255  # a white bar at the top, excluded below
        >>> keep = np.ones((8, 8), bool); keep[:2] = False
        >>> small, m = masked_model_input(im, np.zeros((8, 8), np.float32), keep, 4)
        >>> float(small.max()), small.shape
        (0.0, (4, 4, 3))
    """
    if measured.all():
        return resize_for_model(image, mask, size)
    kept = image * measured[..., None].astype(image.dtype)
    small, weight = resize_for_model(kept, measured.astype(np.float32), size)
    _, small_mask = resize_for_model(kept, mask, size)
    w = weight[..., None]
    normalised = np.divide(small, w, out=np.zeros_like(small), where=w > 1e-6)
    fill = reflect_fill(normalised, (weight >= 0.5) & (small_mask < 0.5))
    out = normalised * w + fill * (np.float32(1) - w)
    return np.clip(out, 0.0, 1.0).astype(np.float32), small_mask


def interpolate_rows(left: Sequence[float], right: Sequence[float], weight: float) -> list[float]:
    """Linear interpolation between two rows: ``left + weight * (right - left)``.

    Example:
        >>> interpolate_rows([0.0, 1.0], [1.0, 3.0], 0.25)
        [0.25, 1.5]
    """
    return [a + weight * (b - a) for a, b in zip(left, right, strict=True)]


@dataclass
class _Frame:
    """What analyze keeps of one frame until its row is final (no full-resolution pixels)."""

    frame: int
    pts: int | None
    signature: list[float]
    area: float
    hist: np.ndarray | None
    small: tuple[np.ndarray, np.ndarray] | None
    key: bool
    raw: list[float] | None = None
    payload: Any = None  # what the caller carries along until the row is final (the one-pass render's frame)


_Small = tuple[np.ndarray, np.ndarray]

# The float32 values an 8-bit mask level becomes (level / 255, as the mask sources divide): a held mask that holds
# only these is kept as its levels, a quarter of the size (2 MB instead of 8 at 1080p), and looked up again.
_MASK_LEVELS = np.arange(256, dtype=np.float32) / np.float32(255)


@dataclass(frozen=True)
class _Levels:
    """A float32 mask held as its 8-bit levels; ``_MASK_LEVELS[levels]`` is the mask, bit for bit."""

    levels: np.ndarray


class _MaskPacker:
    """Packs the masks of carried frames that wait for a key frame as :class:`_Levels`, and unpacks them.

    Packing is exact or not done: a mask is packed only when looking its levels up gives back every bit of it
    (so 16-bit, resized, -0.0 or NaN masks stay float32). After a mask that does not pack, no other is tried
    (a source's masks are all alike). Read-only masks may be one array shared by many frames: they stay as
    they are.
    """

    def __init__(self) -> None:
        self.enabled = True

    def pack(self, item: Any) -> Any:
        """``item`` with its mask (``item[3]``) packed where that is exact; else ``item`` itself."""
        mask = item[3] if self.enabled and isinstance(item, tuple) and len(item) > 3 else None
        if not isinstance(mask, np.ndarray) or mask.dtype != np.float32 or mask.ndim != 2 or not mask.flags.writeable:
            return item
        # cv2 rounds and saturates in one pass; the lookup below is the check, so its rounding need not be exact.
        levels = cv2.convertScaleAbs(mask, alpha=255.0)
        if not np.array_equal(cv2.LUT(levels, _MASK_LEVELS).view(np.int32), mask.view(np.int32)):
            self.enabled = False
            return item
        return (*item[:3], _Levels(levels), *item[4:])

    @staticmethod
    def unpack(item: Any) -> Any:
        """``item`` with a packed mask looked up again (float32, a new writeable array)."""
        if isinstance(item, tuple) and len(item) > 3 and isinstance(item[3], _Levels):
            return (*item[:3], cv2.LUT(item[3].levels, _MASK_LEVELS), *item[4:])
        return item


# frame, pts, signature, mask area, histogram, network input (key frames), cut before it, previous frame's input
_Measured = tuple[int, int | None, list[float], float, np.ndarray | None, _Small | None, bool, _Small | None]


def stats_step(height: int, width: int) -> int:
    """The sampling step of analysis's per-frame measurements: every ``step``-th row and column is measured.

    The filters' statistics are whole-frame means and the cut signature a 128 x 72 downscale, so a regular
    sample of at least :data:`STATS_SAMPLES` pixels measures them as well as the full frame does (on the DAVIS
    frames at 1080p the channel means and the contrast pivot move by under 0.1 of a level) at a fraction of
    the cost: 1080p is measured on every 3rd pixel of every 3rd row (230k pixels), 4K UHD on every 7th, frames
    up to 512k pixels (854 x 480 and less) in full.

    Example:
        >>> stats_step(1080, 1920), stats_step(720, 1280), stats_step(2160, 3840), stats_step(480, 854)
        (3, 2, 7, 1)
    """
    return max(1, math.isqrt((height * width) // STATS_SAMPLES))


def subsample(plane: np.ndarray, step: int) -> np.ndarray:
    """``plane[::step, ::step]`` as a contiguous array (``plane`` itself for step 1).

    Example:
        >>> subsample(np.arange(36).reshape(6, 6), 3).tolist()
        [[0, 3], [18, 21]]
    """
    if step == 1:
        return plane
    height, width = plane.shape[:2]
    if height % step == 0 and width % step == 0 and plane.dtype != np.int64:
        # OpenCV's nearest-neighbour resize by an integer factor picks exactly these pixels, ~10x faster than
        # numpy's strided copy of 3-byte pixels.
        return cv2.resize(plane, (width // step, height // step), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(plane[::step, ::step])


def _measure(
    item: tuple[int, int | None, np.ndarray, np.ndarray],
    size: int,
    with_hist: bool,
    color: ColorManagement | None = None,
    stats_mask: np.ndarray | None = None,
) -> tuple[int, int | None, list[float], float, np.ndarray | None, Callable[[], _Small]]:
    """A frame's signature, mask area and histogram, and how to make its network input (wanted for key frames).

    The signature and the histograms are measured on every :func:`stats_step`-th pixel; the mask area, which
    also flags tiny masks, on every pixel; the network input comes from the full frame.
    """
    frame, pts, image, mask = item[:4]
    image = analysis_frame(image, color)
    step = stats_step(*image.shape[:2])
    sample, sample_mask = subsample(image, step), subsample(np.asarray(mask, np.float32), step)
    small = cv2.resize(sample, _SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(sample_mask, _SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
    area = round(cv2.sumElems(np.asarray(mask, np.float32))[0] / max(mask.size, 1), _AREA_DECIMALS)
    if stats_mask is None:
        signature = round_args(background_signature(small, small_mask), _SIGNATURE_DECIMALS)
        hist = frame_histogram(sample) if with_hist else None
        return frame, pts, signature, area, hist, lambda: resize_for_model(image, mask, size)
    allowed = subsample(np.asarray(stats_mask, np.float32), step)
    # The cut detector describes the background too: only where the statistics mask allows.
    weight = np.clip(cv2.resize(allowed, _SIGNATURE_SIZE, interpolation=cv2.INTER_AREA), 0, 1)
    signature = round_args(
        background_signature(small, np.float32(1) - (np.float32(1) - small_mask) * weight), _SIGNATURE_DECIMALS
    )
    measured = measured_pixels(sample_mask, allowed)
    # The filters' global statistics count only the measured pixels (all of them if none is: a frame with
    # neither foreground nor allowed background has nothing better to offer).
    counted = sample[measured][None] if measured.any() else sample
    hist = frame_histogram(counted) if with_hist else None
    return (
        frame,
        pts,
        signature,
        area,
        hist,
        lambda: masked_model_input(image, mask, measured_pixels(mask, stats_mask), size),
    )


def _measurements(
    items: Iterable[tuple[tuple[Any, ...], np.ndarray | None]],
    size: int,
    with_hist: bool,
    color: ColorManagement | None,
    keyed: Callable[[int], bool],
    carry: bool,
    packer: _MaskPacker,
) -> Iterator[tuple[_Measured, Any]]:
    """Per frame: the measurements, the network input where the frame is a key frame, and whether a cut precedes it.

    The network input (a resize of the full frame) is made only for key frames: those ``keyed`` by their number, and
    both frames around a cut, so the previous frame's is made when the cut shows (its pixels are still held here).
    With ``carry`` each item comes along; those that are no key frame (so wait for the next one) with their mask
    packed where that is exact (:class:`_MaskPacker`, unpacked by ``packer.unpack`` when released).
    """
    previous: tuple[list[float], _Small | None, Callable[[], _Small]] | None = None
    for item, stats in items:
        frame, pts, signature, area, hist, make = _measure(item, size, with_hist, color, stats)
        cut = previous is not None and (
            signature_distance(np.array(previous[0]), np.array(signature)) > DEFAULT_CUT_THRESHOLD
        )
        small = make() if keyed(frame) or cut else None
        before = previous[2]() if cut and previous is not None and previous[1] is None else None
        held = (item if small is not None else packer.pack(item)) if carry else None
        yield (frame, pts, signature, area, hist, small, cut, before), held
        previous = (signature, small, make)


def _uses_onnx(config: ProcessConfig, model: nn.Module) -> bool:
    kind = method_for_model(config.model, config.transfer).kind
    return uses_onnxruntime(config.runtime, config.model, model, kind, resolve_device(config.device))


def network_runtime(config: ProcessConfig, model: nn.Module) -> str:
    """Where analyze runs ``model`` under ``config`` (``torch 2.13.0`` or ``onnxruntime 1.22.0``), for the sidecar.

    Raises:
        UsageError: ``runtime`` is ``onnxruntime`` where it cannot run (see :mod:`vidharm.pipeline.runtime`).
    """
    return runtime_name(_uses_onnx(config, model))


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    before = torch.get_num_threads()
    configure_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def analyze(
    inp: ClipInput,
    config: ProcessConfig,
    *,
    model: nn.Module | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> ParamsTrack:
    """Predict raw arguments (or colour-transform coefficients) and filter statistics for every frame.

    With ``config.analyze_stride`` k > 1 the network sees every k-th frame of the clip (positions 0, k, 2k ...),
    the clip's last frame, and both frames on either side of each scene cut (found as the smoother finds
    them, from the background signatures); the raw rows of the frames in between are interpolated linearly
    from the two analysed frames around them, never across a cut. A part of the clip (``inp.frames``, a farm
    chunk) is analysed from the key frame at or before its first frame to the one at or after its last (at most
    k - 1 more frames each side, decoded and measured but not returned), so its rows are those of the whole
    clip's analysis, whatever the chunking. Statistics, signatures and mask areas are
    measured on every frame; with ``inp.stats_mask`` only where it allows (see the module docstring). Decoding,
    per-frame measurements and the network run in three threads. On a CPU the network sees at most two frames
    at a time (one at a stride), and runs as soon as it has them (``batch_size`` sets the batch on other
    devices): larger batches are slower per frame there and cost memory.

    Args:
        inp: the checked clip and masks (:func:`open_clip`).
        config: model, weights, device, batch size, stride, decoder, torch threads.
        model: the loaded model (:func:`load_model`), or None to load the configured one.
        on_frame: called with 1 after each frame, for progress bars.

    Returns:
        A track with ``raw``, ``stats`` and ``signature`` filled and nothing smoothed, one row per clip position;
        the header records ``first_frame`` (the source number of position 0), ``analyze_stride``, and
        ``stats_mask`` (with its fingerprint) or ``foreground``, its fingerprint and
        ``premultiplied`` where they apply.

    Raises:
        VidharmError: unreadable frames or masks, a model or checkpoint that cannot be used.
    """
    net = load_model(config, resolve_device(config.device)) if model is None else model
    wide = replace(inp, frames=analysis_span(inp, config))
    items = zip(iter_frames_and_masks(wide, config.decoder), iter_stats_masks(wide), strict=False)
    rows = [row for row, _ in analyze_stream(wide, config, net, items, on_frame=on_frame) if row.frame in inp.frames]
    return analysis_track(inp, config, rows, runtime=network_runtime(config, net))


def config_stride(config: ProcessConfig, inp: ClipInput) -> int:
    """The stride ``config`` analyses ``inp`` at (:func:`~vidharm.pipeline.settings.analysis_stride`)."""
    return analysis_stride(config, inp.info.fps, method_for_model(config.model, config.transfer).kind)


def analysis_span(inp: ClipInput, config: ProcessConfig) -> range:
    """The clip positions :func:`analyze` decodes and measures for ``inp.frames``: :func:`key_span` at the stride
    ``config`` analyses at, or ``inp.frames`` where the masks (or statistics masks) are a folder without files for
    the frames around it (the part's own ends are key frames then, and its rows differ from the whole clip's)."""
    span = key_span(inp.frames, config_stride(config, inp), inp.num_frames)
    if masks_cover(inp.masks, span) and masks_cover(inp.stats_mask, span):
        return span
    log.info("%s: no masks for the key frames around frames %s; analysing those frames only", inp.clip, inp.frames)
    return inp.frames


def key_span(frames: range, stride: int, num_frames: int) -> range:
    """``frames`` widened to the key frames around it at ``stride``: the multiple of ``stride`` at or before its
    first frame, and the next multiple (or the clip's last frame) at or after its last.

    Example:
        >>> key_span(range(13, 40), 8, 72), key_span(range(0, 72), 8, 72), key_span(range(5, 9), 1, 72)
        (range(8, 41), range(0, 72), range(5, 9))
    """
    if stride <= 1 or not frames:
        return frames
    start = frames.start - frames.start % stride
    stop = min(frames.stop - 1 + (-(frames.stop - 1)) % stride, num_frames - 1) + 1
    return range(start, stop)


def analyze_stream(
    inp: ClipInput,
    config: ProcessConfig,
    model: nn.Module,
    items: Iterable[tuple[tuple[Any, ...], np.ndarray | None]],
    *,
    carry: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> Iterator[tuple[FrameParams, Any]]:
    """The rows of :func:`analyze`, each yielded as soon as it is final, in frame order.

    A key frame's row is final once the network has seen it; a row between key frames (``analyze_stride`` k > 1)
    once the next key frame's has. So on a CPU a row comes out at most about ``k`` frames after its frame went in
    (two at stride 1, where the network sees two frames at a time), ``batch_size * k`` on other devices. :func:`analyze`
    collects them; a one-pass process (analyze, a causal smoother and render in one decode) renders them as
    they come, with the frames carried along.

    Args:
        inp: the checked clip and masks.
        config: model, device, batch size, stride, torch threads and colour management.
        model: the loaded model (:func:`load_model`).
        items: per frame, ``((frame, pts, image, mask, ...), stats_mask or None)`` in frame order, as
            :func:`~vidharm.pipeline.inputs.iter_frames_and_masks` (or ``iter_frames_masks_alpha``) zipped with
            :func:`~vidharm.pipeline.inputs.iter_stats_masks` give them.
        carry: yield each frame's decoded tuple with its row (held until the row is final); else None.
        on_frame: called with 1 after each frame is measured, for progress bars.

    Yields:
        ``(row, item)``: the frame's :class:`FrameParams` (``raw``, ``stats``, ``signature``, ``mask_area``), and
        its tuple from ``items`` with ``carry``, else None.

    Raises:
        VidharmError: unreadable frames or masks, a model that cannot be used.
    """
    device = resolve_device(config.device)
    net = model
    size = get_model_config(config.model).input_size
    method = method_for_model(config.model, config.transfer)
    stride = config_stride(config, inp)
    first, last = inp.frames.start, inp.frames.stop - 1
    with_hist = bool(method.stats_names)
    use_onnx = _uses_onnx(config, net)
    # On a CPU larger batches are slower per frame and hold ~40 MB of activations per frame (harmonizer, 256 px).
    # At a stride, one key frame at a time: a row then waits for one key frame, not two, and so does its frame in
    # a one-pass render (k frames held instead of 2k); the network's cost per key frame barely changes.
    chunk = config.batch_size if device.type != "cpu" else min(config.batch_size, _CPU_BATCH if stride == 1 else 1)
    pending: deque[_Frame] = deque()  # frames whose row is not final yet, in order
    queued: list[_Frame] = []  # key frames waiting for the network, in order
    left: _Frame | None = None  # the last key frame whose row is final

    onnx = onnx_args(net, config.model, size, threads_for(config.torch_threads)) if use_onnx else None

    def predict() -> None:
        inputs = [f.small for f in queued if f.small is not None]
        values: list[list[float]] = []
        for at in range(0, len(inputs), chunk):
            part = inputs[at : at + chunk]
            if onnx is not None:
                values += onnx(np.stack([i[0] for i in part]), np.stack([i[1] for i in part])).tolist()
                continue
            # (B, S, S, 3) stacked and permuted is already channels-last memory: no copy before the network.
            images = torch.from_numpy(np.stack([i[0] for i in part])).to(device).permute(0, 3, 1, 2)
            masks = torch.from_numpy(np.stack([i[1] for i in part])).to(device)[:, None]
            with torch.inference_mode():
                values += method.predict(net, images, masks).cpu().tolist()
        for f, row in zip(queued, values, strict=True):
            f.raw, f.small = round_args(row), None
        queued.clear()

    def finish(done: list[_Frame]) -> list[tuple[FrameParams, Any]]:
        raws = [f.raw or [] for f in done]
        if with_hist:
            hist = torch.from_numpy(np.stack([f.hist for f in done if f.hist is not None]))
            args = torch.tensor(raws, dtype=torch.float64)
            stats = [round_args(s, 6) for s in stats_from_histograms(hist, args).tolist()]
        else:
            stats = [[] for _ in done]
        out = []
        for f, a, s in zip(done, raws, stats, strict=True):
            out.append((FrameParams(f.frame, f.pts, a, s, signature=f.signature, mask_area=f.area), f.payload))
            f.payload = None
        return out

    def release() -> list[tuple[FrameParams, Any]]:
        nonlocal left
        done: list[_Frame] = []
        while pending:
            head = pending[0]
            if head.key:
                if head.raw is None:
                    break
                done.append(pending.popleft())
                left = head
                continue
            right = next((f for f in pending if f.key), None)
            if right is None or right.raw is None or left is None or left.raw is None:
                break
            while not pending[0].key:
                f = pending.popleft()
                weight = (f.frame - left.frame) / (right.frame - left.frame)
                f.raw = round_args(interpolate_rows(left.raw, right.raw, weight))
                done.append(f)
        return finish(done) if done else []

    color = color_management(config)
    # Carried frames are full-resolution: one-frame queues (the rows' lookahead holds several already).
    depth = 1 if carry else 4

    def keyed(frame: int) -> bool:
        return stride == 1 or frame % stride == 0 or frame in (first, last)

    packer = _MaskPacker()
    measured = _measurements(prefetch(items, depth), size, with_hist, color, keyed, carry, packer)
    with _torch_threads(config.torch_threads):
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        for (frame, pts, signature, area, hist, small, cut, before), item in prefetch(measured, maxsize=depth):
            if cut and pending and not pending[-1].key:
                # The last frame of the shot closes its segment: analyse it too (its input was made on the cut).
                pending[-1].key, pending[-1].small = True, before
                queued.append(pending[-1])
            key = keyed(frame) or cut
            record = _Frame(frame, pts, signature, area, hist, small, key, payload=item)
            pending.append(record)
            if key:
                queued.append(record)
            limit = _MAX_PENDING_DEEP if hist is not None and hist.shape[-1] > 256 else _MAX_PENDING
            # The network runs as soon as it has a batch: rows (and, carried, frames) wait no longer than that.
            if len(queued) >= chunk or (queued and len(pending) >= limit):
                predict()
                yield from ((row, packer.unpack(item)) for row, item in release())
            if on_frame is not None:
                on_frame(1)
        if queued:
            predict()
        yield from ((row, packer.unpack(item)) for row, item in release())


def analysis_track(
    inp: ClipInput, config: ProcessConfig, rows: list[FrameParams], *, runtime: str | None = None
) -> ParamsTrack:
    """The analysed track of ``inp``: its rows (from :func:`analyze_stream`) under the header :func:`analyze` writes.

    Warns about frames with an empty mask. ``runtime`` (:func:`network_runtime`) is recorded as the header's
    ``runtime``.

    Raises:
        MaskError: fewer (or more) rows than ``inp.frames`` (the clip or its masks ended early).
    """
    method = method_for_model(config.model, config.transfer)
    color = color_management(config)
    empty = [r.frame for r in rows if r.mask_area == 0]
    if empty:
        log.warning(
            "%d of %d frames have an empty mask (first: frame %d); they are left unchanged",
            len(empty),
            len(rows),
            inp.first_frame + empty[0],
        )
    if len(rows) != len(inp.frames):
        raise MaskError(f"{inp.clip}: decoded {len(rows)} frames with masks but expected {len(inp.frames)}")
    weights = Path(config.weights) if config.weights else None
    header = {
        "vidharm_version": vidharm.__version__,
        "clip": str(inp.clip),
        "clip_fingerprint": fingerprint_file(inp.clip),
        "masks": str(inp.masks.path),
        "masks_fingerprint": inp.masks.fingerprint(),
        "width": inp.info.width,
        "height": inp.info.height,
        "fps": str(inp.info.fps),
        "time_base": str(inp.info.time_base),
        "num_frames": inp.num_frames,
        "first_frame": inp.first_frame,
        "frames": [inp.frames.start, inp.frames.stop - 1],
        "model": config.model,
        "weights": str(weights) if weights else None,
        "weights_sha256": _sha256(weights) if weights else None,
        "method": method.to_header(),
        "arg_names": method.arg_names,
        "stats_names": list(method.stats_names),
        "smoothing": None,
        "analyze_stride": config_stride(config, inp),
        "runtime": runtime,
        "color": color.describe() if color is not None else None,
    }
    if inp.stats_mask is not None:
        header.update(stats_mask=str(inp.stats_mask.path), stats_mask_fingerprint=inp.stats_mask.fingerprint())
    if inp.foreground is not None:
        layer = inp.foreground
        header.update(
            foreground=str(layer.path),
            foreground_fingerprint=fingerprint_file(layer.path),
            premultiplied=layer.premultiplied,
        )
    return ParamsTrack(header=header, frames=rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
