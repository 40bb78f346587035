"""Render: a frame, its mask and a parameter row in, harmonized pixels out, to the encoder.

Rendering is a pure function of (frame, mask, row): it never smooths and never runs a network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vidharm.errors import InputError
from vidharm.filters import apply_filters, composite
from vidharm.io import VideoFrame, VideoWriter, prefetch
from vidharm.pipeline.inputs import ClipInput, iter_frames_and_masks
from vidharm.pipeline.params import ParamsTrack
from vidharm.pipeline.settings import ProcessConfig, resolve_device

__all__ = ["render_frame", "render_video"]

log = logging.getLogger(__name__)


def render_frame(
    image: np.ndarray,
    mask: np.ndarray,
    args: Sequence[float],
    stats: Sequence[float] | None = None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Apply the six filters with ``args`` to ``image`` and blend with ``mask``, at full resolution.

    Where the mask is 0 the result equals ``image`` exactly; elsewhere it is
    ``filtered * mask + image * (1 - mask)``, rounded to the image's integer levels.

    Args:
        image: (H, W, 3) RGB, uint8 or uint16 (native bit depth kept).
        mask: (H, W) float32 alpha in [0, 1].
        args: 6 raw arguments in filter order (clamped to [-1, 1] by the filters).
        stats: 4 global statistics (mean_r, mean_g, mean_b, contrast_pivot) or None to measure them on
            ``image``.
        device: where the arithmetic runs.

    Returns:
        (H, W, 3) array of ``image``'s dtype.

    Example:
        >>> im = np.full((4, 4, 3), 100, np.uint8); m = np.zeros((4, 4), np.float32); m[:2] = 1
        >>> out = render_frame(im, m, [0, 0.3, 0, 0, 0, 0])
        >>> int(out[0, 0, 0]), int(out[3, 3, 0])
        (143, 100)
    """
    scale = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div(scale)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)[None, None]
    a = torch.tensor([list(args)], dtype=torch.float32, device=device)
    s = None if stats is None else torch.tensor([list(stats)], dtype=torch.float32, device=device)
    with torch.inference_mode():
        out = composite(apply_filters(x, a, s), x, m)
        levels = out[0].permute(1, 2, 0).mul(scale).round_().clamp_(0, scale).cpu().numpy().astype(image.dtype)
    # composite() keeps the background exactly; this makes it independent of float rounding all the same.
    return np.where((mask == 0)[..., None], image, levels)


def render_video(
    inp: ClipInput,
    track: ParamsTrack,
    output: Path,
    config: ProcessConfig,
    *,
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """Render ``inp.frames`` with the rows of ``track`` and encode them to ``output``, with the source audio.

    The output is written to a temporary name and renamed when complete.

    Raises:
        InputError: the track has no row for a frame, or was made for a clip of another size.
        VidharmError: decode, mask or encode failures.
    """
    if (track.header.get("width"), track.header.get("height")) != (inp.info.width, inp.info.height):
        raise InputError(
            f"the parameter file was made for a {track.header.get('width')}x{track.header.get('height')} clip, "
            f"but {inp.clip.name} is {inp.info.width}x{inp.info.height}; analyze this clip again"
        )
    rows = [track.row(f) for f in inp.frames]
    device = resolve_device(config.device)
    whole = inp.frames == range(inp.num_frames)
    with VideoWriter(
        output,
        inp.info,
        codec=config.codec,
        crf=config.crf,
        preset=config.preset,
        pix_fmt=config.pix_fmt,
        audio_from=inp.clip if whole else None,
    ) as writer:
        for row, (frame, pts, image, mask) in zip(rows, prefetch(iter_frames_and_masks(inp, config.decoder), maxsize=4)):
            args, stats = row.applied()
            pixels = render_frame(image, mask, args, stats, device)
            writer.write(VideoFrame(index=frame, pts=pts, time_base=inp.info.time_base, image=pixels))
            if on_frame is not None:
                on_frame(1)
