"""Image-sequence render and the render dispatch: equal to the video render, restartable, idempotent, forced."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import InputError
from vidharm.io import read_frames, read_image, write_image
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import ParamsTrack, ProcessConfig, analyze, open_clip, smooth
from vidharm.pipeline.render import render_output, render_sequence
from vidharm.pipeline.segments import read_segment_info, segment_info_path

CONFIG = ProcessConfig(device="cpu", codec="ffv1")
PATTERN = "seq/f.%04d.png"


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ParamsTrack]:
    folder = tmp_path_factory.mktemp("shot")
    clip = write_test_clip(folder / "clip.mp4", num_frames=10, width=64, height=48)
    masks = folder / "masks"
    masks.mkdir()
    for i in range(10):
        mask = np.zeros((48, 64), np.uint8)
        mask[12:36, 4 + i : 25 + i] = 255
        write_image(masks / f"{i:05d}.png", mask)
    track = smooth(analyze(open_clip(clip, masks), CONFIG), mode="ema", half_life_s=0.2)
    return clip, masks, track


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_sequence_equals_the_lossless_video_render(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    video = tmp_path / "all.mkv"
    render_output(open_clip(clip, masks), track, video, CONFIG)
    chunks = [range(0, 3), range(3, 4), range(4, 9), range(9, 10)]
    random.Random(1).shuffle(chunks)
    for frames in chunks:  # any order
        render_output(open_clip(clip, masks, frames), track, tmp_path / PATTERN, CONFIG)
    for frame in read_frames(video):
        np.testing.assert_array_equal(read_image(tmp_path / "seq" / f"f.{frame.index:04d}.png"), frame.image)
    assert len(list((tmp_path / "seq").iterdir())) == 10


def test_killed_half_way_then_rerun_gives_the_same_files(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    render_sequence(open_clip(clip, masks), track, tmp_path / "ref" / "f.%04d.png", CONFIG)
    reference = _files(tmp_path / "ref")

    done = 0

    def killed_after_four(n: int) -> None:
        nonlocal done
        done += n
        if done == 4:
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into SystemExit by the CLI

    inp = open_clip(clip, masks)
    with pytest.raises(KeyboardInterrupt):
        render_sequence(inp, track, tmp_path / PATTERN, CONFIG, on_frame=killed_after_four)
    partial = _files(tmp_path / "seq")
    assert sorted(partial) == [f"f.{i:04d}.png" for i in range(4)]  # only complete files, no temp files
    assert all(partial[name] == reference[name] for name in partial)
    assert render_sequence(inp, track, tmp_path / PATTERN, CONFIG) == list(range(4, 10))  # the rest only
    assert _files(tmp_path / "seq") == reference
    assert render_sequence(inp, track, tmp_path / PATTERN, CONFIG) == []  # run twice: nothing to do


def test_force_rewrites_finished_frames(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    inp = open_clip(clip, masks, range(2, 5))
    render_sequence(inp, track, tmp_path / PATTERN, CONFIG)
    good = _files(tmp_path / "seq")
    (tmp_path / "seq" / "f.0003.png").write_bytes(b"stale")
    assert render_sequence(inp, track, tmp_path / PATTERN, CONFIG) == []
    assert (tmp_path / "seq" / "f.0003.png").read_bytes() == b"stale"  # skipped: the file exists
    assert render_sequence(inp, track, tmp_path / PATTERN, CONFIG, force=True) == [2, 3, 4]
    assert _files(tmp_path / "seq") == good


def test_temp_files_of_a_killed_run_are_removed(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    (tmp_path / "seq").mkdir()
    stale = tmp_path / "seq" / ".f.0001.tmp-deadbeef.png"  # SIGKILL leaves the temp file of the frame in flight
    stale.write_bytes(b"half")
    render_sequence(open_clip(clip, masks, range(0, 3)), track, tmp_path / PATTERN, CONFIG)
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["f.0000.png", "f.0001.png", "f.0002.png"]


def test_skipped_frames_count_as_progress(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    render_sequence(open_clip(clip, masks, range(0, 4)), track, tmp_path / PATTERN, CONFIG)
    calls: list[int] = []
    render_sequence(open_clip(clip, masks, range(0, 6)), track, tmp_path / PATTERN, CONFIG, on_frame=calls.append)
    assert calls == [4, 1, 1]


def test_sequence_refuses_a_track_of_another_size(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    other = dataclasses.replace(track, header={**track.header, "width": 128})
    with pytest.raises(InputError, match="made for a 128x48 clip"):
        render_sequence(open_clip(clip, masks), other, tmp_path / PATTERN, CONFIG)
    assert not (tmp_path / "seq").exists() or not any((tmp_path / "seq").iterdir())


def test_video_segment_gets_its_frame_range_file(tmp_path: Path, shot: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = shot
    seg = tmp_path / "render.3-6.mkv"
    assert render_output(open_clip(clip, masks, range(3, 7)), track, seg, CONFIG, segment_info=True) == 4
    info = read_segment_info(segment_info_path(seg))
    assert (info.first, info.last, info.num_frames, info.video) == (3, 6, 10, seg)
    with av.open(str(seg)) as container:  # 4 frames on the source's timeline (frame 3 at 25 fps is 0.12 s)
        times = [round(float(p.pts * p.time_base), 3) for p in container.demux(video=0) if p.size]
    assert times == [0.12, 0.16, 0.2, 0.24]
    first = _pixels(seg)
    render_output(open_clip(clip, masks, range(3, 7)), track, seg, CONFIG, segment_info=True)
    assert all(np.array_equal(a, b) for a, b in zip(_pixels(seg), first, strict=True))  # rendered again: same frames


def _pixels(video: Path) -> list[np.ndarray]:
    with av.open(str(video)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
