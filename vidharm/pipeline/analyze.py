"""Analyze: frames and masks in, raw per-frame arguments and filter statistics out.

The network sees each frame at its input size (bilinear, as the reference resizes); the statistics the
filters need at full resolution (per-channel means, the contrast pivot) come from per-channel histograms of
the full frame, so no full-resolution float copy of the clip, or even of a batch, is ever made.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import vidharm
from vidharm.errors import MaskError
from vidharm.filters import adjust_brightness, adjust_temperature
from vidharm.io import prefetch
from vidharm.models import create_model, get_model_config
from vidharm.pipeline.inputs import ClipInput, fingerprint_file, iter_frames_and_masks
from vidharm.pipeline.methods import method_for_model
from vidharm.pipeline.params import FrameParams, ParamsTrack, round_args
from vidharm.pipeline.settings import ProcessConfig, resolve_device
from vidharm.temporal import background_signature

__all__ = ["analyze", "load_model", "stats_from_histograms", "frame_histogram", "to_model_input"]

log = logging.getLogger(__name__)

_SIGNATURE_SIZE = (128, 72)
_SIGNATURE_DECIMALS = 4
_AREA_DECIMALS = 6


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


def to_model_input(image: np.ndarray, mask: np.ndarray, size: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Resize one frame and its mask for the network, as the reference does (bilinear, no antialias).

    Args:
        image: (H, W, 3) RGB uint8 or uint16.
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
    scale = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div(scale)
    m = torch.from_numpy(np.ascontiguousarray(mask)).to(device)[None, None].float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
    return x, m


def frame_histogram(image: np.ndarray) -> np.ndarray:
    """Per-channel histograms of a frame, the full-resolution statistics the filters need.

    Args:
        image: (H, W, 3) RGB uint8 (256 levels) or uint16 (65536 levels).

    Returns:
        (3, levels) float64 pixel counts.

    Example:
        >>> frame_histogram(np.full((2, 2, 3), 7, np.uint8))[:, 7].tolist()
        [4.0, 4.0, 4.0]
    """
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


def analyze(
    inp: ClipInput,
    config: ProcessConfig,
    *,
    model: nn.Module | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> ParamsTrack:
    """Predict raw arguments (or colour-transform coefficients) and filter statistics for every frame.

    Args:
        inp: the checked clip and masks (:func:`open_clip`).
        config: model, weights, device, batch size, decoder.
        model: the loaded model (:func:`load_model`), or None to load the configured one.
        on_frame: called with 1 after each frame, for progress bars.

    Returns:
        A track with ``raw``, ``stats`` and ``signature`` filled and nothing smoothed.

    Raises:
        VidharmError: unreadable frames or masks, a model or checkpoint that cannot be used.
    """
    device = resolve_device(config.device)
    if model is None:
        model = load_model(config, device)
    size = get_model_config(config.model).input_size
    method = method_for_model(config.model, config.transfer)
    rows: list[FrameParams] = []
    batch: list[tuple[int, int | None, Tensor, Tensor, np.ndarray | None, list[float], float]] = []

    def flush() -> None:
        images = torch.cat([b[2] for b in batch])
        masks = torch.cat([b[3] for b in batch])
        with torch.inference_mode():
            raw = method.predict(model, images, masks).cpu()
        args = torch.tensor([round_args(a) for a in raw.tolist()], dtype=torch.float64)
        if method.stats_names:
            hist = torch.from_numpy(np.stack([b[4] for b in batch]))
            stats = [round_args(s, 6) for s in stats_from_histograms(hist, args).tolist()]
        else:
            stats = [[] for _ in batch]
        for (frame, pts, *_rest, signature, area), a, s in zip(batch, args.tolist(), stats, strict=True):
            rows.append(FrameParams(frame=frame, pts=pts, raw=a, stats=s, signature=signature, mask_area=area))
        batch.clear()

    for frame, pts, image, mask in prefetch(iter_frames_and_masks(inp, config.decoder), maxsize=4):
        x, m = to_model_input(image, mask, size, device)
        small = cv2.resize(image, _SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
        small_mask = cv2.resize(mask, _SIGNATURE_SIZE, interpolation=cv2.INTER_AREA)
        signature = round_args(background_signature(small, small_mask), _SIGNATURE_DECIMALS)
        area = round(float(mask.mean(dtype=np.float64)), _AREA_DECIMALS)
        hist = frame_histogram(image) if method.stats_names else None
        batch.append((frame, pts, x, m, hist, signature, area))
        if len(batch) == config.batch_size:
            flush()
        if on_frame is not None:
            on_frame(1)
    if batch:
        flush()
    empty = [r.frame for r in rows if r.mask_area == 0]
    if empty:
        log.warning(
            "%d of %d frames have an empty mask (first: frame %d); they are left unchanged",
            len(empty),
            len(rows),
            empty[0],
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
        "frames": [inp.frames.start, inp.frames.stop - 1],
        "model": config.model,
        "weights": str(weights) if weights else None,
        "weights_sha256": _sha256(weights) if weights else None,
        "method": method.to_header(),
        "arg_names": method.arg_names,
        "stats_names": list(method.stats_names),
        "smoothing": None,
    }
    return ParamsTrack(header=header, frames=rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
