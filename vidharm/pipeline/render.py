"""Render: a frame, its mask and a parameter row in, harmonized pixels out, to the encoder.

Rendering is a pure function of (frame, mask, row): it never smooths and never runs a network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from vidharm.errors import InputError, UsageError
from vidharm.filters import composite
from vidharm.io import VideoFrame, VideoWriter, prefetch
from vidharm.pipeline.inputs import ClipInput, iter_frames_and_masks
from vidharm.pipeline.methods import Method
from vidharm.pipeline.params import ParamsTrack
from vidharm.pipeline.settings import ProcessConfig, resolve_device

__all__ = ["render_frame", "render_video", "check_mix"]

log = logging.getLogger(__name__)

_FILTERS = Method("filters")


def check_mix(mix: float) -> float:
    """Check a harmonization strength and return it as a float.

    Raises:
        UsageError: ``mix`` is not a finite number in [0, 1].

    Example:
        >>> check_mix(0.5)
        0.5
    """
    if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not 0.0 <= mix <= 1.0:
        raise UsageError(f"mix: expected a strength between 0 and 1 (1 = full harmonization), got {mix!r}")
    return float(mix)


def render_frame(
    image: np.ndarray,
    mask: np.ndarray,
    args: Sequence[float],
    stats: Sequence[float] | None = None,
    device: torch.device | str = "cpu",
    mix: float = 1.0,
    method: Method = _FILTERS,
) -> np.ndarray:
    """Apply a parameter row to ``image`` and blend with ``mask``, at full resolution.

    Where the mask is 0 the result equals ``image`` exactly; elsewhere it is
    ``filtered * mask * mix + image * (1 - mask * mix)``, rounded to the image's integer levels: ``mix`` is
    the strength of the harmonization (``image + mix * (harmonized - image)``), 1 leaves the blend unchanged
    and 0 returns ``image``.

    Args:
        image: (H, W, 3) RGB, uint8 or uint16 (native bit depth kept).
        mask: (H, W) float32 alpha in [0, 1].
        args: the row: 6 raw arguments in filter order (clamped to [-1, 1] by the filters), or the
            coefficients of ``method``'s colour transform.
        stats: 4 global statistics (mean_r, mean_g, mean_b, contrast_pivot), or None/empty to measure them
            on ``image`` (filters only).
        device: where the arithmetic runs.
        mix: strength in [0, 1]; scales the mask.
        method: how the row is applied (:class:`~vidharm.pipeline.methods.Method`); the six filters by default.

    Returns:
        (H, W, 3) array of ``image``'s dtype.

    Raises:
        UsageError: ``mix`` is not a number in [0, 1].

    Example:
        >>> im = np.full((4, 4, 3), 100, np.uint8); m = np.zeros((4, 4), np.float32); m[:2] = 1
        >>> out = render_frame(im, m, [0, 0.3, 0, 0, 0, 0])
        >>> int(out[0, 0, 0]), int(out[3, 3, 0])
        (143, 100)
        >>> int(render_frame(im, m, [0, 0.3, 0, 0, 0, 0], mix=0.5)[0, 0, 0])
        121
    """
    check_mix(mix)
    if mix != 1.0:
        mask = np.asarray(mask, dtype=np.float32) * np.float32(mix)
    scale = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div(scale)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)[None, None]
    a = torch.tensor([list(args)], dtype=torch.float32, device=device)
    s = torch.tensor([list(stats)], dtype=torch.float32, device=device) if stats else None
    with torch.inference_mode():
        out = composite(method.apply(x, a, s), x, m)
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
    mix: float = 1.0,
) -> None:
    """Render ``inp.frames`` with the rows of ``track`` and encode them to ``output``, with the source audio.

    The output is written to a temporary name and renamed when complete. ``mix`` in [0, 1] is the strength
    of the harmonization (see :func:`render_frame`).

    Raises:
        InputError: the track has no row for a frame, or was made for a clip of another size.
        UsageError: ``mix`` is outside [0, 1].
        VidharmError: decode, mask or encode failures.
    """
    check_mix(mix)
    if (track.header.get("width"), track.header.get("height")) != (inp.info.width, inp.info.height):
        raise InputError(
            f"the parameter file was made for a {track.header.get('width')}x{track.header.get('height')} clip, "
            f"but {inp.clip.name} is {inp.info.width}x{inp.info.height}; analyze this clip again"
        )
    rows = [track.row(f) for f in inp.frames]
    method = track.method
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
        written = 0
        for row, (frame, pts, image, mask) in zip(
            rows, prefetch(iter_frames_and_masks(inp, config.decoder), maxsize=4), strict=False
        ):
            args, stats = row.applied()
            pixels = render_frame(image, mask, args, stats, device, mix, method)
            writer.write(VideoFrame(index=frame, pts=pts, time_base=inp.info.time_base, image=pixels))
            written += 1
            if on_frame is not None:
                on_frame(1)
        if written != len(rows):
            raise InputError(f"{inp.clip}: decoded {written} frames but expected {len(rows)}; the clip may be damaged")
