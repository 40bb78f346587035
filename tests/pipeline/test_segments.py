"""Segment frame-range files and concat: order, overlaps, gaps, other renders and stale files named precisely."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError, UsageError
from vidharm.io import read_frames
from vidharm.pipeline import ParamsTrack, ProcessConfig, analyze, open_clip, smooth
from vidharm.pipeline.render import render_output
from vidharm.pipeline.segments import (
    SegmentInfo,
    check_segments,
    concat_segments,
    find_segments,
    params_fingerprint,
    segment_info_path,
)

CONFIG = ProcessConfig(device="cpu", codec="ffv1")


def _info(name: str, first: int, last: int, **changes: object) -> SegmentInfo:
    base = SegmentInfo(Path(name), first, last, 20, "clip", "masks", "params", 1.0, "video")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_segments_are_put_in_frame_order() -> None:
    parts = [_info("c.mkv", 12, 19), _info("a.mkv", 0, 4), _info("b.mkv", 5, 11)]
    assert [p.video.name for p in check_segments(parts)] == ["a.mkv", "b.mkv", "c.mkv"]


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ([("a", 0, 9), ("b", 8, 19)], r"frames 8-9 are in both a.mkv \(0-9\) and b.mkv \(8-19\)"),
        ([("a", 0, 9), ("b", 12, 19)], r"frames 10-11 are in no segment \(between a.mkv and b.mkv\)"),
        ([("a", 3, 19)], r"frames 0-2 of the 20-frame clip are in no segment \(before a.mkv\)"),
        ([("a", 0, 9), ("b", 10, 17)], r"frames 18-19 of the 20-frame clip are in no segment \(after b.mkv\)"),
        ([("a", 0, 19), ("b", 0, 19)], r"frames 0-19 are in both a.mkv"),  # the same chunk rendered twice
    ],
)
def test_overlaps_and_gaps_are_named(parts: list[tuple[str, int, int]], message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_segments([_info(f"{n}.mkv", a, b) for n, a, b in parts])


@pytest.mark.parametrize("key", ["clip_fingerprint", "masks_fingerprint", "params_fingerprint", "mix"])
def test_segments_of_another_render_are_refused(key: str) -> None:
    other = "x" if key != "mix" else 0.5
    parts = [_info("a.mkv", 0, 9), _info("b.mkv", 10, 19, **{key: other})]
    with pytest.raises(InputError, match=f"b.mkv: its {key.replace('_', ' ')} differs from a.mkv's"):
        check_segments(parts)


def test_no_segments_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no segments"):
        check_segments([])


def test_params_fingerprint_follows_the_applied_values() -> None:
    from vidharm.pipeline.params import FrameParams

    track = ParamsTrack({"fps": "24/1"}, [FrameParams(0, 0, [0.0] * 6, [0.5] * 4, smoothed=[0.1] * 6)])
    edited = ParamsTrack(track.header, [dataclasses.replace(track.frames[0], smoothed=[0.2] * 6)])
    assert params_fingerprint(track) != params_fingerprint(edited)
    assert params_fingerprint(track) == params_fingerprint(ParamsTrack(dict(track.header), list(track.frames)))


@pytest.fixture
def rendered(tmp_path: Path, clip_with_masks: Callable[..., tuple[Path, Path]]) -> dict[str, object]:
    clip, masks = clip_with_masks(num_frames=8, width=64, height=48, audio="aac")
    track = smooth(analyze(open_clip(clip, masks), CONFIG), mode="ema", half_life_s=0.2)
    (tmp_path / "segs").mkdir()
    for frames in (range(5, 8), range(0, 2), range(2, 5)):
        out = tmp_path / "segs" / f"render.{frames.start}-{frames.stop - 1}.mkv"
        render_output(open_clip(clip, masks, frames), track, out, CONFIG, segment_info=True)
    whole = tmp_path / "whole.mkv"
    render_output(open_clip(clip, masks), track, whole, CONFIG)
    return {"clip": clip, "masks": masks, "track": track, "segs": tmp_path / "segs", "whole": whole}


def test_concat_of_a_folder_equals_the_whole_render(tmp_path: Path, rendered: dict[str, object]) -> None:
    out = tmp_path / "out" / "joined.mkv"  # the folder is created
    joined = concat_segments([rendered["segs"]], out, audio_from=rendered["clip"])  # type: ignore[list-item]
    assert [(s.first, s.last) for s in joined] == [(0, 1), (2, 4), (5, 7)]
    a, b = list(read_frames(out)), list(read_frames(rendered["whole"]))  # type: ignore[arg-type]
    assert [f.pts for f in a] == [f.pts for f in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
    first = out.read_bytes()
    concat_segments([rendered["segs"]], out, audio_from=rendered["clip"])  # type: ignore[list-item]
    assert out.read_bytes() == first  # joined again: byte for byte the same file


def test_segments_given_as_files_in_any_order(tmp_path: Path, rendered: dict[str, object]) -> None:
    segs: Path = rendered["segs"]  # type: ignore[assignment]
    files = [segs / "render.5-7.mkv", segs / "render.0-1.mkv", segs / "render.2-4.segment.json"]
    assert [s.first for s in find_segments(files)] == [5, 0, 2]
    concat_segments(files, tmp_path / "j.mkv")
    assert len(list(read_frames(tmp_path / "j.mkv"))) == 8


def test_a_missing_or_stale_frame_range_file_is_named(tmp_path: Path, rendered: dict[str, object]) -> None:
    segs: Path = rendered["segs"]  # type: ignore[assignment]
    lone = tmp_path / "lone.mkv"
    lone.write_bytes((segs / "render.0-1.mkv").read_bytes())
    with pytest.raises(InputError, match="no frame-range file lone.segment.json"):
        find_segments([lone])
    # The segment was rewritten (say by another render) after its frame-range file: refuse, do not guess.
    (segs / "render.2-4.mkv").write_bytes((segs / "render.0-1.mkv").read_bytes())
    with pytest.raises(InputError, match="render.2-4.mkv: the file changed after"):
        concat_segments([segs], tmp_path / "j.mkv")
    segment_info_path(segs / "render.2-4.mkv").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(InputError, match="not a vidharm segment file"):
        find_segments([segs])
    assert not (tmp_path / "j.mkv").exists()


def test_concat_refuses_to_overwrite_a_segment(rendered: dict[str, object]) -> None:
    segs: Path = rendered["segs"]  # type: ignore[assignment]
    with pytest.raises(UsageError, match="would overwrite a segment"):
        concat_segments([segs], segs / "render.0-1.mkv")
