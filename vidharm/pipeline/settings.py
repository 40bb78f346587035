"""The pipeline's configuration dataclass (set by configs/*.yaml and ``--set key=value``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import torch

from vidharm.errors import UsageError
from vidharm.io import ColorManagement, open_color_management, tune_allocator
from vidharm.models import resolve_device
from vidharm.pipeline.runtime import RUNTIMES
from vidharm.temporal import DEFAULT_HALF_LIFE_S

__all__ = [
    "ProcessConfig",
    "SMOOTHING_MODES",
    "resolve_device",
    "configure_threads",
    "threads_for",
    "analysis_stride",
    "AUTO_STRIDE_HALF_LIVES",
    "tune_allocator",
    "color_management",
]

SMOOTHING_MODES = ("ema", "zero_lag", "off")


@dataclass(frozen=True)
class ProcessConfig:
    """Settings of analyze, smooth and render.

    Attributes:
        model: registered model name (``stats`` needs no weights; ``harmonizer`` needs ``weights``).
        weights: checkpoint path for models that need one.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: frames per network call.
        analyze_stride: run the network on every k-th frame (and around scene cuts) and interpolate the raw
            rows in between; 1 analyses every frame; 0 (default, auto) chooses k by :func:`analysis_stride`.
        smoothing: ``ema`` (causal), ``zero_lag`` (forward-backward, whole clip known) or ``off``.
        half_life_s: smoothing half-life in seconds; 0 disables smoothing.
        codec: output video encoder (``libx264``, ``libx265``, ``ffv1``, ``libx264rgb``, ``prores_ks`` ...); None
            chooses from the source (:class:`~vidharm.io.VideoWriter`): a ProRes or DNxHR master keeps its codec
            and profile, a clip with alpha gets ProRes 4444 in .mov or ffv1 in .mkv, anything else libx264.
        crf: constant rate factor for codecs that take one (0 with libx264 is lossless).
        preset: encoder speed preset for codecs that take one.
        pix_fmt: output pixel format; empty picks one suited to the codec and the source.
        transfer: how an image model's (HDNet's) 256-px result reaches full resolution: ``local`` (a grid of
            local affine colour transforms), ``affine`` or ``poly2`` (one global colour transform).
        decoder: ``pyav`` or ``decord`` (optional extra).
        torch_threads: threads for the network (torch or ONNX Runtime); 0 leaves half the cores to decoding and
            encoding.
        runtime: where the argument network runs (:mod:`vidharm.pipeline.runtime`): ``auto`` (ONNX Runtime on the
            CPU for an argument network when onnxruntime is installed, about 3x faster there; else torch),
            ``torch`` or ``onnxruntime``.
        colorspace: the frames' colour space in the OCIO config (``ACEScg``, ``ACEScct``, ``srgb_tx`` ...): analysis
            converts frames to the config's sRGB texture space and render applies the filters there and converts
            back (see :mod:`vidharm.pipeline.render`); None: no colour management, frames are code values.
        ocio: the OCIO config file (or ``ocio://`` URI) that names ``colorspace``; None: ``$OCIO``, else the
            ACES config built into OpenColorIO.
    """

    model: str = "stats"
    weights: str | None = None
    device: str = "auto"
    batch_size: int = 8
    analyze_stride: int = 0
    smoothing: str = "ema"
    half_life_s: float = DEFAULT_HALF_LIFE_S
    codec: str | None = None
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None
    transfer: str = "local"
    decoder: str = "pyav"
    torch_threads: int = 0
    runtime: str = "auto"
    colorspace: str | None = None
    ocio: str | None = None

    @property
    def smooths(self) -> bool:
        """Whether the track is smoothed: a smoothing mode other than ``off`` and a half-life above 0.

        Example:
            >>> ProcessConfig().smooths, ProcessConfig(smoothing="off").smooths, ProcessConfig(half_life_s=0).smooths
            (True, False, False)
        """
        return self.smoothing != "off" and self.half_life_s > 0

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHING_MODES:
            raise UsageError(f"smoothing: expected one of {', '.join(SMOOTHING_MODES)}, got {self.smoothing!r}")
        if self.half_life_s < 0:
            raise UsageError(f"half_life_s: expected 0 (off) or a positive number of seconds, got {self.half_life_s}")
        if self.batch_size < 1:
            raise UsageError(f"batch_size: expected a positive integer, got {self.batch_size}")
        if isinstance(self.analyze_stride, bool) or not isinstance(self.analyze_stride, int) or self.analyze_stride < 0:
            raise UsageError(
                "analyze_stride: expected 0 (auto) or a positive integer (1 analyses every frame), "
                f"got {self.analyze_stride!r}"
            )
        if self.transfer not in ("local", "affine", "poly2"):
            raise UsageError(f"transfer: expected local, affine or poly2, got {self.transfer!r}")
        if self.decoder not in ("pyav", "decord"):
            raise UsageError(f"decoder: expected pyav or decord, got {self.decoder!r}")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"runtime: expected one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.colorspace is not None and (not isinstance(self.colorspace, str) or not self.colorspace.strip()):
            raise UsageError(f"colorspace: expected a colour space name of the OCIO config, got {self.colorspace!r}")
        if self.ocio is not None and self.colorspace is None:
            raise UsageError(
                f"ocio: the config {self.ocio} is used only with a colour space; add --colorspace NAME "
                "(the frames' colour space in that config)"
            )


AUTO_STRIDE_HALF_LIVES = 0.4
"""With ``analyze_stride`` 0 (auto), key frames lie this many smoothing half-lives apart (with the default 0.68 s:
8 frames at 30 fps, 7 at 24, 16 at 60). Measured by ``scripts/bench_pipeline.py --stride-study`` on the DAVIS
clips (24 fps): after the default EMA, every stride up to 16 stays well below the smoother's own effect (k = 6:
14 % of it with ``stats``, 22 % with the parity weights; k = 8: 27 % and 31 %)."""


def analysis_stride(config: ProcessConfig, fps: float | Fraction, kind: str) -> int:
    """The stride analysis runs at: ``config.analyze_stride``, or with 0 (auto) key frames every
    :data:`AUTO_STRIDE_HALF_LIVES` half-lives of the smoothing.

    Auto analyses every frame where nothing smooths the interpolation's error away (``smoothing`` ``off`` or a
    half-life of 0: per-frame arguments are asked for) and for image models (``kind`` other than ``filters``:
    HDNet's fitted transfers), whose stride error was not measured.

    Args:
        config: the settings.
        fps: the clip's frame rate.
        kind: the method kind (``filters`` for argument-predicting models: ``stats``, ``harmonizer``).

    Example:
        >>> analysis_stride(ProcessConfig(), 30, "filters"), analysis_stride(ProcessConfig(), 24, "filters")
        (8, 7)
        >>> off = ProcessConfig(smoothing="off")
        >>> analysis_stride(off, 30, "filters"), analysis_stride(ProcessConfig(), 30, "image")
        (1, 1)
        >>> analysis_stride(ProcessConfig(analyze_stride=3, smoothing="off"), 30, "filters")
        3
    """
    if config.analyze_stride > 0:
        return config.analyze_stride
    if kind != "filters" or not config.smooths:
        return 1
    return max(1, round(AUTO_STRIDE_HALF_LIVES * config.half_life_s * float(fps)))


def threads_for(threads: int) -> int:
    """The network's threads for a ``torch_threads`` setting: itself, or half the cores for 0 (decode and encode
    need the rest).

    Example:
        >>> threads_for(3)
        3
    """
    return threads if threads > 0 else max(1, (os.cpu_count() or 2) // 2)


def configure_threads(threads: int) -> None:
    """Give torch ``threads`` threads, or half the cores for 0 (see :func:`threads_for`)."""
    torch.set_num_threads(threads_for(threads))


def color_management(config: ProcessConfig) -> ColorManagement | None:
    """The colour management ``config`` asks for, or None without a ``colorspace``.

    Raises:
        UsageError: an unknown colour space (the message names the close ones) or a data space.
        InputError: a missing or unreadable OCIO config, or one without an sRGB texture space.

    Example:
        >>> color_management(ProcessConfig()) is None
        True
        >>> color_management(ProcessConfig(colorspace="ACEScg")).analysis_space
        'sRGB Encoded Rec.709 (sRGB)'
    """
    if config.colorspace is None:
        return None
    return open_color_management(config.colorspace, config.ocio)
