"""Metadata kept on output by vidharm/io: timecode, every audio stream, sample aspect ratio (and concat_videos)."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest

from vidharm.errors import UsageError
from vidharm.io import VideoWriter, concat_videos, probe_video, read_frames
from vidharm.io._encode import advance_timecode

FAST = {"preset": "ultrafast"}
needs_ffprobe = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="the ffprobe command-line tool is missing")


def _transcode(src: Path, out: Path, **kwargs: object) -> Path:
    with VideoWriter(out, probe_video(src), **kwargs) as writer:  # type: ignore[arg-type]
        for frame in read_frames(src):
            writer.write(frame)
    return out


def _ffprobe_streams(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)], capture_output=True, check=True
    )
    streams: list[dict[str, object]] = json.loads(result.stdout)["streams"]
    return streams


def _audio(path: Path) -> list[tuple[str | None, list[bytes]]]:
    """(language, packet bytes) of every audio stream, in order."""
    with av.open(str(path)) as container:
        streams = list(container.streams.audio)
        packets: dict[int, list[bytes]] = {s.index: [] for s in streams}
        for packet in container.demux(*streams):
            if packet.size:
                packets[packet.stream.index].append(bytes(packet))
        return [(s.metadata.get("language"), packets[s.index]) for s in streams]


# --- timecode ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timecode", "frames", "fps", "expected"),
    [
        ("01:00:00:00", 0, 25, "01:00:00:00"),
        ("01:00:00:00", 30, 25, "01:00:01:05"),
        ("00:59:59:23", 1, Fraction(24000, 1001), "01:00:00:00"),
        ("23:59:59:24", 1, 25, "00:00:00:00"),  # wraps at 24 hours
        ("00:00:59;29", 1, Fraction(30000, 1001), "00:01:00;02"),  # drop-frame skips ;00 and ;01
        ("00:09:59;29", 1, Fraction(30000, 1001), "00:10:00;00"),  # ... except every tenth minute
        ("00:00:59;59", 1, Fraction(60000, 1001), "00:01:00;04"),
        ("00:01:00;02", -1, Fraction(30000, 1001), "00:00:59;29"),
        ("10:00:00;00", 17982 * 6, Fraction(30000, 1001), "11:00:00;00"),  # 17982 frames per ten minutes
    ],
)
def test_advance_timecode(timecode, frames, fps, expected):
    assert advance_timecode(timecode, frames, fps) == expected


@pytest.mark.parametrize("bad", ["1:00:00", "01:00:00:25", "01:61:00:00", "00:01:00;01", "soon"])
def test_advance_timecode_refuses_bad_timecodes(bad):
    with pytest.raises(UsageError, match="timecode"):
        advance_timecode(bad, 1, Fraction(30000, 1001) if ";" in bad else 25)


@pytest.mark.parametrize("name", ["tc.mov", "tc.mp4", "tc.mkv"])
def test_timecode_is_read_and_written_back(make_clip, tmp_path, name):
    src = make_clip(name, num_frames=3, timecode="01:02:03:04")
    assert probe_video(src).timecode == "01:02:03:04"
    out = _transcode(src, tmp_path / f"out{Path(name).suffix}", **FAST)
    assert probe_video(out).timecode == "01:02:03:04"


def test_no_timecode_reads_none_and_writes_none(make_clip, tmp_path):
    src = make_clip("plain.mov", num_frames=2)
    assert probe_video(src).timecode is None
    out = _transcode(src, tmp_path / "out.mov", **FAST)
    with av.open(str(out)) as container:
        assert not container.streams.data  # no tmcd track invented


@needs_ffprobe
def test_mov_timecode_is_a_tmcd_track_for_other_tools(make_clip, tmp_path):
    src = make_clip("src.mov", num_frames=3, timecode="10:00:00:00")
    out = _transcode(src, tmp_path / "out.mov", **FAST)
    tmcd = [s for s in _ffprobe_streams(out) if s.get("codec_tag_string") == "tmcd"]
    assert len(tmcd) == 1 and tmcd[0]["tags"]["timecode"] == "10:00:00:00"  # type: ignore[index]


def test_a_segment_starts_at_its_own_timecode_and_concat_keeps_the_first(make_clip, require_encoder, tmp_path):
    require_encoder("ffv1")
    src = make_clip("src.mov", num_frames=6, timecode="00:59:59:23")
    info = probe_video(src)
    parts = []
    for first, last in ((0, 2), (3, 5)):
        part = tmp_path / f"s{first}.mov"
        with VideoWriter(part, info, codec="prores_ks", frames=(first, last)) as writer:
            for frame in read_frames(src, start=first, stop=last + 1):
                writer.write(frame)
        parts.append(part)
    assert [probe_video(p).timecode for p in parts] == ["00:59:59:23", "01:00:00:01"]
    joined = tmp_path / "all.mov"
    concat_videos(parts, joined)
    assert probe_video(joined).timecode == "00:59:59:23"


def test_a_malformed_source_timecode_is_dropped_with_a_warning(make_clip, tmp_path, caplog):
    src = make_clip("src.mkv", num_frames=2, timecode="yesterday")
    assert probe_video(src).timecode == "yesterday"
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        out = _transcode(src, tmp_path / "out.mov", **FAST)
    assert probe_video(out).timecode is None
    assert any("timecode" in r.getMessage() for r in caplog.records)


# --- audio streams -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.mp4", "out.mov", "out.mkv"])
def test_every_audio_stream_is_remuxed_with_its_language(make_clip, tmp_path, name):
    src = make_clip("src.mp4", num_frames=10, audio="aac", audio_streams=3, audio_languages=("eng", "fra", "spa"))
    source_audio = _audio(src)
    assert [lang for lang, _ in source_audio] == ["eng", "fra", "spa"]
    assert len({tuple(p) for _, p in source_audio}) == 3  # three different tones
    out = _transcode(src, tmp_path / name, audio_from=src, **FAST)
    assert _audio(out) == source_audio  # every stream, every packet, byte for byte, in order


def test_a_segment_keeps_the_overlapping_packets_of_every_audio_stream(make_clip, tmp_path):
    src = make_clip("src.mp4", num_frames=25, audio="aac", audio_streams=2)
    info = probe_video(src)
    out = tmp_path / "seg.mkv"
    with VideoWriter(out, info, frames=(10, 14), audio_from=src, **FAST) as writer:  # type: ignore[arg-type]
        for frame in read_frames(src, start=10, stop=15):
            writer.write(frame)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 2
        spans: dict[int, list[float]] = {}
        for packet in container.demux(*container.streams.audio):
            if packet.size:
                spans.setdefault(packet.stream.index, []).append(float(packet.pts * packet.time_base))
    for times in spans.values():
        # Frames 10-14 cover 0.40-0.60 s; packets are 1024 samples (21.3 ms) long.
        assert 0.37 <= min(times) <= 0.41 and 0.57 <= max(times) < 0.60


def test_concat_adds_every_audio_stream(make_clip, require_encoder, tmp_path):
    require_encoder("ffv1")
    src = make_clip("src.mp4", num_frames=6, audio="aac", audio_streams=2, audio_languages=("eng", "spa"))
    info = probe_video(src)
    parts = []
    for first, last in ((0, 2), (3, 5)):
        part = tmp_path / f"s{first}.mkv"
        with VideoWriter(part, info, codec="ffv1", frames=(first, last)) as writer:
            for frame in read_frames(src, start=first, stop=last + 1):
                writer.write(frame)
        parts.append(part)
    joined = tmp_path / "all.mkv"
    assert concat_videos(parts, joined, audio_from=src) == 6
    assert _audio(joined) == _audio(src)


# --- sample aspect ratio -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "codec"), [("o.mp4", "libx264"), ("o.mov", "prores_ks"), ("o.mkv", "libx264")])
def test_sample_aspect_ratio_is_kept(make_clip, require_encoder, tmp_path, name, codec):
    require_encoder(codec)
    src = make_clip("src.mp4", num_frames=2, sample_aspect_ratio=Fraction(4, 3))
    assert probe_video(src).sample_aspect_ratio == Fraction(4, 3)
    out = _transcode(src, tmp_path / name, codec=codec, **FAST)
    assert probe_video(out).sample_aspect_ratio == Fraction(4, 3)


@needs_ffprobe
def test_ffprobe_sees_the_same_sar_and_dar(make_clip, tmp_path):
    src = make_clip("src.mov", num_frames=2, sample_aspect_ratio=Fraction(4, 3))
    out = _transcode(src, tmp_path / "out.mov", codec="prores_ks")
    video = [s for s in _ffprobe_streams(out) if s["codec_type"] == "video"][0]
    assert (video["sample_aspect_ratio"], video["display_aspect_ratio"]) == ("4:3", "16:9")


def test_square_pixels_read_as_one(make_clip):
    assert probe_video(make_clip("src.mp4", num_frames=1)).sample_aspect_ratio == 1


def test_a_container_that_would_lose_the_ratio_warns(make_clip, require_encoder, tmp_path, caplog):
    require_encoder("ffv1")
    src = make_clip("src.mp4", num_frames=2, sample_aspect_ratio=Fraction(4, 3))
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        _transcode(src, tmp_path / "out.mkv", codec="ffv1")
    assert any("aspect ratio" in r.getMessage() and ".mov" in r.getMessage() for r in caplog.records)


def test_concat_keeps_the_sample_aspect_ratio(make_clip, tmp_path):
    src = make_clip("src.mp4", num_frames=4, sample_aspect_ratio=Fraction(4, 3))
    info = probe_video(src)
    parts = []
    for first, last in ((0, 1), (2, 3)):
        part = tmp_path / f"s{first}.mp4"
        with VideoWriter(part, info, frames=(first, last), **FAST) as writer:  # type: ignore[arg-type]
            for frame in read_frames(src, start=first, stop=last + 1):
                writer.write(frame)
        parts.append(part)
    concat_videos(parts, tmp_path / "all.mov")
    assert probe_video(tmp_path / "all.mov").sample_aspect_ratio == Fraction(4, 3)
