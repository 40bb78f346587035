"""The harmonization pipeline: analyze (frames + masks -> raw arguments and statistics), smooth (the whole
track), render (frames + masks + a parameter row -> pixels -> encoder); ``process`` runs all three."""

from __future__ import annotations

from vidharm.pipeline.analyze import analyze, frame_histogram, load_model, stats_from_histograms
from vidharm.pipeline.inputs import ClipInput, iter_frames_and_masks, open_clip
from vidharm.pipeline.params import FrameParams, ParamsTrack, read_params, write_params
from vidharm.pipeline.process import harmonize_image, process_video
from vidharm.pipeline.render import render_frame, render_video
from vidharm.pipeline.settings import ProcessConfig, resolve_device
from vidharm.pipeline.smooth import smooth

__all__ = [
    "ClipInput",
    "FrameParams",
    "ParamsTrack",
    "ProcessConfig",
    "analyze",
    "frame_histogram",
    "harmonize_image",
    "iter_frames_and_masks",
    "load_model",
    "open_clip",
    "process_video",
    "read_params",
    "render_frame",
    "render_video",
    "resolve_device",
    "smooth",
    "stats_from_histograms",
    "write_params",
]
