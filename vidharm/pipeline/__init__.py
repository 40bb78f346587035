"""The harmonization pipeline: analyze (frames + masks -> raw arguments and statistics), smooth (the whole
track), render (frames + masks + a parameter row -> pixels -> encoder); ``process`` runs all three.

Inputs are a clip with its masks (or its own alpha, :func:`open_clip`) or a foreground layer over a background
plate (:func:`open_layers`); outputs a video or an image sequence (:func:`render_output`, :func:`render_layers`),
optionally colour-managed with OpenColorIO (:func:`color_management`, :func:`track_color_management`).
"""

from __future__ import annotations

from vidharm.pipeline.analyze import (
    analysis_frame,
    analysis_span,
    analyze,
    config_stride,
    frame_histogram,
    key_span,
    load_model,
    stats_from_histograms,
)
from vidharm.pipeline.inputs import (
    ClipInput,
    ForegroundLayer,
    fingerprint_file,
    iter_frames_and_masks,
    iter_frames_masks_alpha,
    open_clip,
    open_layers,
)
from vidharm.pipeline.layers import render_layers
from vidharm.pipeline.params import FrameParams, ParamsTrack, read_params, write_params
from vidharm.pipeline.process import check_output_path, harmonize_image, process_layers, process_video
from vidharm.pipeline.render import (
    check_mix,
    render_frame,
    render_output,
    render_sequence,
    render_video,
    track_color_management,
)
from vidharm.pipeline.settings import ProcessConfig, color_management, configure_threads, resolve_device
from vidharm.pipeline.smooth import smooth

__all__ = [
    "analysis_span",
    "key_span",
    "config_stride",
    "ClipInput",
    "ForegroundLayer",
    "FrameParams",
    "ParamsTrack",
    "ProcessConfig",
    "analysis_frame",
    "analyze",
    "check_mix",
    "check_output_path",
    "color_management",
    "configure_threads",
    "fingerprint_file",
    "frame_histogram",
    "harmonize_image",
    "iter_frames_and_masks",
    "iter_frames_masks_alpha",
    "load_model",
    "open_clip",
    "open_layers",
    "process_layers",
    "process_video",
    "read_params",
    "render_frame",
    "render_layers",
    "render_output",
    "render_sequence",
    "render_video",
    "resolve_device",
    "smooth",
    "stats_from_histograms",
    "track_color_management",
    "write_params",
]
