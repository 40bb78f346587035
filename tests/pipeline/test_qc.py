"""QC of a parameter track: clamp limits, jumps, empty/tiny masks, cuts; mask areas; the review proxy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from numbered_shot import write_numbered_shot

from vidharm.errors import InputError, UsageError
from vidharm.io import probe_video, read_frames
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import (
    FrameParams,
    ParamsTrack,
    ProcessConfig,
    analyze,
    open_clip,
    process_video,
    read_params,
    render_frame,
    write_params,
)
from vidharm.pipeline.qc import check_track, format_flags, measure_mask_areas, write_proxy


def _track(args: list[list[float]], *, areas: list[float | None] | None = None, cuts: list[int] | None = None):
    areas = areas or [None] * len(args)
    rows = [FrameParams(i, None, a, [0.5] * 4, mask_area=m) for i, (a, m) in enumerate(zip(args, areas, strict=True))]
    header = {"fps": "25/1", "smoothing": {"mode": "ema", "half_life_s": 0.5, "cuts": cuts or []}}
    return ParamsTrack(header, rows)


def _flat(n: int) -> list[list[float]]:
    return [[0.0] * 6 for _ in range(n)]


def test_clamp_runs_are_grouped_per_argument() -> None:
    args = _flat(10)
    for t in (3, 4, 5):
        args[t][1] = 1.0 + 0.1 * t  # brightness beyond the limit, ramping so there are no jumps past the first
    args[8][4] = -0.995  # highlight within the default margin of -1
    flags = [f for f in check_track(_track(args), max_jump=2.0) if f.kind == "clamp"]
    assert [(f.first, f.last, f.arg) for f in flags] == [(3, 5, "brightness"), (8, 8, "highlight")]
    assert flags[0].value == pytest.approx(1.5) and "frames 3-5" in flags[0].message
    assert check_track(_track(args), clamp_margin=0.0, max_jump=2.0)[-1].arg == "brightness"  # -0.995 passes


def test_jumps_are_flagged_except_at_cuts() -> None:
    args = _flat(12)
    for t in range(6, 12):
        args[t][0] = 0.5  # a step at frame 6
    for t in range(9, 12):
        args[t][2] = 0.4  # a step at frame 9, which is a recorded scene cut
    flags = check_track(_track(args, cuts=[9]))
    jumps = [(f.first, f.arg, round(f.value or 0, 3)) for f in flags if f.kind == "jump"]
    assert jumps == [(6, "temperature", 0.5)]
    assert [(f.kind, f.first, f.severity) for f in flags if f.kind == "cut"] == [("cut", 9, "info")]
    assert not [f for f in check_track(_track(args, cuts=[9]), max_jump=0.6) if f.kind == "jump"]


def test_empty_and_tiny_masks_from_rows_or_a_mapping() -> None:
    areas: list[float | None] = [0.2, 0.0, 0.0, 0.0005, 0.3, None]
    flags = check_track(_track(_flat(6), areas=areas), mask_areas={5: 0.0})
    found = [(f.kind, f.first, f.last) for f in flags]
    assert found == [("empty_mask", 1, 2), ("tiny_mask", 3, 3), ("empty_mask", 5, 5)]
    assert "0.050%" in flags[1].message
    # without areas nothing is claimed about the masks
    assert not check_track(_track(_flat(6)))


def test_format_and_bad_thresholds() -> None:
    args = _flat(3)
    args[2][5] = 1.0
    text = format_flags(check_track(_track(args)))
    assert text.splitlines()[0].startswith("warning  clamp       frame 2: shadow at its clamp limit (+1.00")
    assert text.splitlines()[-1] == "2 warnings, 0 info"
    for kwargs in ({"clamp_margin": 1.0}, {"max_jump": 0.0}, {"min_mask_area": 2.0}):
        with pytest.raises(UsageError):
            check_track(_track(args), **kwargs)
    with pytest.raises(InputError, match="no rows"):
        check_track(ParamsTrack({"fps": "25/1"}, []))


def test_colour_transfer_tracks_get_one_jump_track_and_no_clamps() -> None:
    rows = [FrameParams(i, None, [2.0 + (0.5 if i >= 3 else 0.0)] * 12, []) for i in range(5)]
    flags = check_track(ParamsTrack({"fps": "25/1", "method": {"kind": "affine"}}, rows))
    assert [(f.kind, f.first, f.arg) for f in flags] == [("jump", 3, "coefficients")]


def _clip(folder: Path, n: int = 5) -> tuple[Path, Path]:
    clip = write_test_clip(folder / "clip.mp4", num_frames=n, width=64, height=48, audio="aac")
    (folder / "masks").mkdir()
    for i in range(n):
        mask = np.zeros((48, 64), np.uint8)
        if i != 2:  # frame 2 has an empty mask
            mask[12:36, 10 + i : 30 + i] = 255
        cv2.imwrite(str(folder / "masks" / f"{i:05d}.png"), mask)
    return clip, folder / "masks"


def test_sidecar_mask_areas_and_proxy(tmp_path: Path) -> None:
    clip, masks = _clip(tmp_path)
    track = process_video(clip, masks, tmp_path / "o.mkv", ProcessConfig(codec="ffv1"), params_out=tmp_path / "p.json")
    inp = open_clip(clip, masks)
    measured = measure_mask_areas(inp)
    assert [r.mask_area for r in read_params(tmp_path / "p.json").frames] == pytest.approx(list(measured.values()))
    assert measured[2] == 0.0 and measured[0] == pytest.approx(24 * 20 / (48 * 64))
    assert [(f.kind, f.first) for f in check_track(track) if f.kind.endswith("mask")] == [("empty_mask", 2)]

    proxy = write_proxy(inp, track, tmp_path / "proxy.mkv", max_width=64, labels=False, codec="ffv1")
    info = probe_video(proxy)
    assert (info.width, info.height) == (64, 24) and info.has_audio
    frames = [f.image for f in read_frames(proxy)]
    assert len(frames) == 5
    for i, (pair, source) in enumerate(zip(frames, read_frames(clip), strict=True)):
        small = cv2.resize(source.image, (32, 24), interpolation=cv2.INTER_AREA)
        mask = cv2.imread(str(masks / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        small_mask = cv2.resize(mask, (32, 24), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(pair[:, :32], small)  # before: the input (lossless proxy)
        args, stats = track.row(i).applied()
        np.testing.assert_array_equal(pair[:, 32:], render_frame(small, small_mask, args, stats))  # after
        if i != 2:
            assert np.abs(pair[:, 32:].astype(int) - small)[small_mask == 1].mean() > 2
    labelled = write_proxy(inp, track, tmp_path / "labelled.mp4", max_width=40)
    assert (probe_video(labelled).width, probe_video(labelled).height) == (40, 16)


def test_read_params_checks_mask_area(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    write_params(_track(_flat(2), areas=[0.5, None]), path)
    data = json.loads(path.read_text())
    assert data["frames"][0]["mask_area"] == 0.5 and "mask_area" not in data["frames"][1]
    assert [r.mask_area for r in read_params(path).frames] == [0.5, None]
    data["frames"][1]["mask_area"] = 1.5
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"frames\[1\].mask_area must be a number in \[0, 1\]"):
        read_params(path)


def test_flags_name_the_source_frames_of_a_sequence_numbered_from_1001(tmp_path: Path) -> None:
    """Regression: flags of an image sequence used to name row positions (2) instead of file numbers (1003)."""
    clip, mattes = write_numbered_shot(tmp_path)
    inp = open_clip(clip, mattes)
    analysed = analyze(inp, ProcessConfig(model="stats", device="cpu"))
    assert analysed.first_frame == 1001 and [r.frame for r in analysed.frames] == list(range(6))
    rows = [
        dataclasses.replace(
            r,
            smoothed=[0.0, 1.0 if i in (2, 3) else 0.0, 0, 0, 0, 0],
            mask_area=0.0 if i == 5 else None,  # the others come from measure_mask_areas, keyed by position
        )
        for i, r in enumerate(analysed.frames)
    ]
    header = {**analysed.header, "smoothing": {"mode": "ema", "half_life_s": 0.5, "cuts": [4]}}  # positions
    track = ParamsTrack(header, rows)
    areas = measure_mask_areas(inp)
    assert sorted(areas) == list(range(6))
    flags = check_track(track, mask_areas=areas)
    found = [(f.kind, f.first, f.last) for f in flags]
    assert ("clamp", 1003, 1004) in found and ("jump", 1003, 1003) in found
    assert ("cut", 1005, 1005) in found and ("empty_mask", 1006, 1006) in found
    assert ("jump", 1005, 1005) not in found  # the step back down sits on the cut
    assert all(f.first >= 1001 for f in flags)
    text = format_flags(flags)
    assert "frames 1003-1004: brightness at its clamp limit" in text and "frame 1005: scene cut" in text
    # A sidecar without first_frame (written before it was recorded) reads as before: positions.
    old = ParamsTrack({k: v for k, v in header.items() if k != "first_frame"}, rows)
    assert ("clamp", 2, 3) in [(f.kind, f.first, f.last) for f in check_track(old, mask_areas=areas)]
