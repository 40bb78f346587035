"""Lossless join of segments: same packets and timestamps as a whole encode, the source's audio, clear refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import InputError, UsageError
from vidharm.io import VideoWriter, concat_videos, probe_video, read_frames


def _segment(src: Path, out: Path, first: int, last: int, codec: str = "ffv1") -> Path:
    with VideoWriter(out, probe_video(src), codec=codec, preset="ultrafast", frames=(first, last)) as writer:
        for frame in read_frames(src, start=first, stop=last + 1):
            writer.write(frame)
    return out


def _audio_packets(path: Path) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        # Matroska stores milliseconds: compare times at that precision.
        return [(round(float(p.pts * p.time_base), 3), bytes(p)) for p in container.demux(stream) if p.size]


def test_joined_segments_equal_one_encode_with_the_source_audio(
    make_clip: Callable[..., Path], require_encoder: Callable[[str], None], tmp_path: Path
) -> None:
    require_encoder("ffv1")
    src = make_clip("src.mp4", num_frames=9, audio="aac")
    whole = _segment(src, tmp_path / "whole.mkv", 0, 8)
    parts = [_segment(src, tmp_path / f"s{a}.mkv", a, b) for a, b in ((0, 1), (2, 6), (7, 8))]
    out = tmp_path / "joined.mkv"
    assert concat_videos(parts, out, audio_from=src) == 9
    joined, reference = list(read_frames(out)), list(read_frames(whole))
    assert [f.pts for f in joined] == [f.pts for f in reference]
    for a, b in zip(joined, reference, strict=True):
        np.testing.assert_array_equal(a.image, b.image)
    assert _audio_packets(out) == _audio_packets(src)  # every audio packet, bytes and timestamps unchanged
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_mp4_segments_with_b_frames_join(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    src = make_clip("src.mp4", num_frames=12, audio="aac")
    info = probe_video(src)
    parts = []
    for first, last in ((0, 4), (5, 11)):
        out = tmp_path / f"s{first}.mp4"
        with VideoWriter(out, info, preset="medium", frames=(first, last)) as writer:  # B-frames: dts < pts
            for frame in read_frames(src, start=first, stop=last + 1):
                writer.write(frame)
        parts.append(out)
    joined = tmp_path / "joined.mp4"
    assert concat_videos(parts, joined, audio_from=src) == 12
    frames = list(read_frames(joined))
    assert len(frames) == 12 and probe_video(joined).has_audio
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:], strict=False))


def test_video_only_without_audio_from(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    src = make_clip("src.mp4", num_frames=4, audio="aac")
    parts = [_segment(src, tmp_path / f"s{a}.mkv", a, b) for a, b in ((0, 1), (2, 3))]
    concat_videos(parts, tmp_path / "v.mkv")
    assert not probe_video(tmp_path / "v.mkv").has_audio


def test_segments_out_of_order_are_refused(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    src = make_clip("src.mp4", num_frames=4)
    parts = [_segment(src, tmp_path / f"s{a}.mkv", a, b) for a, b in ((0, 1), (2, 3))]
    with pytest.raises(InputError, match="not after the end of s2.mkv"):
        concat_videos(parts[::-1], tmp_path / "v.mkv")
    assert not (tmp_path / "v.mkv").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v.tmp")]


def test_segments_encoded_differently_are_refused(make_clip: Callable[..., Path], tmp_path: Path) -> None:
    src = make_clip("src.mp4", num_frames=4)
    a = _segment(src, tmp_path / "a.mkv", 0, 1, codec="ffv1")
    b = _segment(src, tmp_path / "b.mkv", 2, 3, codec="libx264")
    with pytest.raises(UsageError, match="b.mkv: its codec differs"):
        concat_videos([a, b], tmp_path / "v.mkv")


def test_no_segments_or_a_missing_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no segments"):
        concat_videos([], tmp_path / "v.mkv")
    with pytest.raises(InputError, match="no such file"):
        concat_videos([tmp_path / "gone.mkv"], tmp_path / "v.mkv")
    with pytest.raises(UsageError, match="unsupported output extension"):
        concat_videos([tmp_path / "gone.mkv"], tmp_path / "v.gif")
