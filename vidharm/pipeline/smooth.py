"""Smooth: the whole argument track (and the filters' statistics) smoothed once, scene-cut aware."""

from __future__ import annotations

import dataclasses

import numpy as np

from vidharm.pipeline.params import ParamsTrack, round_args
from vidharm.temporal import detect_scene_cuts, smooth_track

__all__ = ["smooth"]

_SMOOTHED_DECIMALS = 6


def smooth(track: ParamsTrack, *, mode: str, half_life_s: float) -> ParamsTrack:
    """Fill ``smoothed`` and ``smoothed_stats`` of every row.

    The statistics (per-channel means, contrast pivot) are smoothed with the same settings as the
    arguments, so a flickering background cannot bring back through the filters the flicker that argument
    smoothing removed. Scene cuts, found from the rows' background signatures, restart the smoothing.

    Args:
        track: rows in frame order with ``raw`` and ``stats`` (a whole clip, or all chunks joined).
        mode: ``ema``, ``zero_lag`` or ``off`` (smoothed = raw).
        half_life_s: half-life in seconds; 0 is the same as ``off``.

    Returns:
        A new track; the header records the smoothing settings and the cuts.

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> rows = [FrameParams(i, i, [float(i % 2)] * 6, [0.5] * 4) for i in range(4)]
        >>> out = smooth(ParamsTrack({"fps": "1/1", "time_base": "1/1"}, rows), mode="ema", half_life_s=1.0)
        >>> out.frames[1].smoothed[0]
        0.5
    """
    times = track.times_s()
    signatures = [f.signature for f in track.frames]
    cuts: list[int] = []
    if mode != "off" and half_life_s > 0 and signatures and all(s is not None for s in signatures):
        cuts = [track.frames[i].frame for i in detect_scene_cuts(np.array(signatures, dtype=np.float64))]
    if mode == "off" or half_life_s == 0:
        args, stats = track.raw_array(), track.stats_array()
    else:
        index_cuts = [i for i, f in enumerate(track.frames) if f.frame in set(cuts)]
        args = smooth_track(track.raw_array(), times, half_life_s=half_life_s, mode=mode, cuts=index_cuts)
        stats = track.stats_array()
        if stats.shape[1]:
            stats = smooth_track(stats, times, half_life_s=half_life_s, mode=mode, cuts=index_cuts)
    frames = [
        dataclasses.replace(
            row, smoothed=round_args(a, _SMOOTHED_DECIMALS), smoothed_stats=round_args(s, _SMOOTHED_DECIMALS)
        )
        for row, a, s in zip(track.frames, args, stats, strict=True)
    ]
    header = {**track.header, "smoothing": {"mode": mode, "half_life_s": half_life_s, "cuts": cuts}}
    return ParamsTrack(header=header, frames=frames)
