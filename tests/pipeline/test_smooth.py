"""The smoothing stage: arguments and filter statistics smoothed together, restarted at scene cuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numbered_shot import analyze_numbered_shot, write_numbered_shot

from vidharm.errors import InputError
from vidharm.pipeline import FrameParams, ParamsTrack, smooth
from vidharm.pipeline.smooth import join_tracks


def _track(n: int = 40, cut: int | None = None, same_background: bool = False) -> ParamsTrack:
    rows = []
    for i in range(n):
        level = 0.3 if cut is not None and i >= cut else -0.3
        raw = [level + (0.05 if i % 2 else -0.05), 0, 0, 0, 0, 0]
        stats = [0.42 if i % 2 else 0.4, 0.5, 0.6, 0.5]
        signature = [1.0, 0.0] if cut is not None and i >= cut and not same_background else [0.0, 1.0]
        rows.append(FrameParams(i, i * 1000, raw, stats, signature=signature + [0.0] * 23))
    return ParamsTrack({"fps": "25/1", "time_base": "1/25000", "width": 8, "height": 8}, rows)


def test_off_and_zero_half_life_keep_raw_values() -> None:
    for mode, half_life in (("off", 1.0), ("ema", 0.0)):
        out = smooth(_track(), mode=mode, half_life_s=half_life)
        assert [f.smoothed for f in out.frames] == [f.raw for f in out.frames]
        assert [f.smoothed_stats for f in out.frames] == [f.stats for f in out.frames]


def test_arguments_and_statistics_are_both_smoothed() -> None:
    out = smooth(_track(), mode="ema", half_life_s=0.5)
    raw_jitter = np.abs(np.diff(out.raw_array()[10:, 0])).mean()
    smooth_jitter = np.abs(np.diff([f.smoothed[0] for f in out.frames[10:]])).mean()
    stats_jitter = np.abs(np.diff([f.smoothed_stats[0] for f in out.frames[10:]])).mean()
    assert smooth_jitter < 0.2 * raw_jitter
    assert stats_jitter < 0.2 * 0.02
    assert out.header["smoothing"] == {"mode": "ema", "half_life_s": 0.5, "cuts": []}


def test_smoothing_restarts_at_a_scene_cut() -> None:
    out = smooth(_track(cut=20), mode="ema", half_life_s=2.0)
    assert out.header["smoothing"]["cuts"] == [20]
    # the first frame after the cut starts from its own value, not from the old shot's state
    assert out.frames[20].smoothed[0] == pytest.approx(out.frames[20].raw[0])
    # the same jump on an unchanged background is a lighting change, not a cut: it is smoothed
    lagging = smooth(_track(cut=20, same_background=True), mode="ema", half_life_s=2.0)
    assert lagging.header["smoothing"]["cuts"] == []
    assert lagging.frames[20].smoothed[0] < 0


def test_join_refuses_chunks_from_another_clip() -> None:
    a, b = _track(10), _track(10)
    b.header["clip_fingerprint"] = "other"
    with pytest.raises(InputError, match="clip_fingerprint differs"):
        join_tracks([a, b], ["a.json", "b.json"])


def test_join_warns_about_chunks_from_another_runtime(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    a, b = _track(10), _track(10)
    for row in b.frames:
        row.frame += 10
    a.header["runtime"], b.header["runtime"] = "onnxruntime 1.22.0", "torch 2.13.0"
    with caplog.at_level(logging.WARNING):
        joined = join_tracks([a, b], ["a.json", "b.json"])
    assert len(joined.frames) == 20
    assert "b.json: its network ran in torch 2.13.0, a.json's in onnxruntime 1.22.0" in caplog.text
    caplog.clear()
    b.header["runtime"] = a.header["runtime"]
    with caplog.at_level(logging.WARNING):
        join_tracks([a, b])
    assert caplog.text == ""


def test_join_names_gaps_and_overlaps_of_a_sequence_by_source_number(tmp_path: Path) -> None:
    """Chunks of a sequence numbered from 1001: rows stay positions, messages name the files' numbers."""
    clip, mattes = write_numbered_shot(tmp_path)
    chunks = (range(1001, 1003), range(1003, 1007), range(1005, 1007))
    a, b, c = (analyze_numbered_shot(clip, mattes, r) for r in chunks)
    joined = join_tracks([b, a])
    assert joined.first_frame == 1001 and [r.frame for r in joined.frames] == list(range(6))
    assert joined.header["frames"] == [0, 5]
    with pytest.raises(InputError, match=r"frames 1003-1004 are in no chunk \(2 missing in all\)"):
        join_tracks([a, c], ["a.json", "c.json"])
    with pytest.raises(InputError, match="frame 1005 is in both b.json and c.json"):
        join_tracks([b, c], ["b.json", "c.json"])
    renumbered = ParamsTrack({**c.header, "first_frame": 0}, c.frames)
    with pytest.raises(InputError, match="c.json: its first_frame 0 differs from a.json's 1001"):
        join_tracks([a, renumbered], ["a.json", "c.json"])
