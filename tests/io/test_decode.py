"""Tests for vidharm/io/_decode.py: probe_video, read_frames, count_frames."""

from __future__ import annotations

import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import InputError, UsageError
from vidharm.io import ColorTags, count_frames, probe_video, read_frames
from vidharm.io._synth import pattern_frame


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _write_audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        stream.layout = "mono"
        for k in range(0, 48000 // 4, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, k, Fraction(1, 48000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


# --- probe_video -------------------------------------------------------------------------------------------------


def test_probe_video_reports_the_stream(make_clip):
    clip = make_clip("a.mp4", num_frames=12, audio="aac", rotation_deg=90)
    info = probe_video(clip)
    assert (info.width, info.height) == (64, 48)
    assert info.fps == Fraction(25)
    assert info.time_base == Fraction(1, 12800)
    assert info.num_frames == 12
    assert info.duration_s == pytest.approx(12 / 25)
    assert (info.codec, info.pix_fmt, info.bit_depth, info.has_alpha) == ("h264", "yuv420p", 8, False)
    assert info.color == ColorTags("bt709", "bt709", "bt709", "tv")
    assert info.has_audio is True
    assert info.rotation_deg == 90
    assert info.path == clip
    assert (info.profile, info.timecode, info.sample_aspect_ratio) == ("High", None, Fraction(1))


def test_probe_video_untagged_and_no_audio(make_clip):
    info = probe_video(make_clip("u.mkv", num_frames=3, color=None))
    assert info.color == ColorTags(None, None, None, None)
    assert info.has_audio is False
    assert info.rotation_deg == 0
    assert info.num_frames is None  # Matroska states no frame count


# --- read_frames -------------------------------------------------------------------------------------------------


def test_read_frames_indices_pts_and_pixels(make_clip):
    # 4:4:4 at crf 0 so the pixels can be compared with the pattern (4:2:0 alone costs ~4 levels on it).
    clip = make_clip(num_frames=10, pix_fmt="yuv444p", options={"crf": "0"})
    frames = list(read_frames(clip))
    assert [f.index for f in frames] == list(range(10))
    assert [f.pts for f in frames] == [i * 512 for i in range(10)]
    assert all(f.time_base == Fraction(1, 12800) for f in frames)
    for f in frames:
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert _mae(f.image, pattern_frame(f.index, 48, 64)) < 1.0


@pytest.mark.parametrize(
    ("color", "wrong"),
    [
        (ColorTags("bt709", "bt709", "bt709", "tv"), {"src_colorspace": "ITU601", "src_color_range": "MPEG"}),
        (None, {"src_colorspace": "ITU709", "src_color_range": "MPEG"}),
        # Full range decodes as yuvj*, where swscale ignores the range argument, so misread the matrix instead.
        (ColorTags("bt709", "bt709", "bt709", "pc"), {"src_colorspace": "ITU601", "src_color_range": "JPEG"}),
        (
            ColorTags("smpte170m", "smpte170m", "smpte170m", "tv"),
            {"src_colorspace": "ITU709", "src_color_range": "MPEG"},
        ),
    ],
    ids=["bt709-tv", "untagged", "bt709-pc", "bt601-tv"],
)
def test_read_frames_uses_the_tagged_matrix_and_range(make_clip, color, wrong):
    # The synthetic clip was converted with the matrix/range it is tagged with (BT.601 tv when untagged),
    # so decoding must give the pattern back; decoding with the wrong matrix/range must not.
    clip = make_clip(num_frames=2, color=color, pix_fmt="yuv444p", options={"crf": "0"})
    frame = next(read_frames(clip))
    truth = pattern_frame(0, 48, 64)
    assert _mae(frame.image, truth) < 1.0
    with av.open(str(clip)) as container:
        raw = next(container.decode(video=0))
        misread = raw.reformat(format="rgb24", **wrong).to_ndarray()
    assert _mae(misread, truth) > 5.0


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg command-line tool is not installed")
@pytest.mark.parametrize("color", [ColorTags("bt709", "bt709", "bt709", "tv"), None], ids=["bt709", "untagged"])
def test_read_frames_matches_the_ffmpeg_cli(make_clip, color):
    clip = make_clip(num_frames=1, color=color)
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    cli = np.frombuffer(raw, np.uint8).reshape(48, 64, 3)
    ours = next(read_frames(clip)).image
    assert np.abs(ours.astype(int) - cli).max() <= 1


def test_read_frames_start_stop(make_clip):
    clip = make_clip(num_frames=10)
    assert [f.index for f in read_frames(clip, start=3, stop=7)] == [3, 4, 5, 6]
    assert [f.index for f in read_frames(clip, start=8, stop=50)] == [8, 9]
    assert [f.index for f in read_frames(clip, start=4, stop=4)] == []
    full = list(read_frames(clip))
    part = list(read_frames(clip, start=5))
    assert [f.pts for f in part] == [f.pts for f in full[5:]]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(part, full[5:], strict=True))


def test_read_frames_start_past_the_end(make_clip):
    clip = make_clip(num_frames=4)
    with pytest.raises(InputError, match=r"has 4 frames, so start=4"):
        list(read_frames(clip, start=4))


@pytest.mark.parametrize(
    "kwargs",
    [{"start": -1}, {"start": 3, "stop": 2}, {"start": 1.5}, {"decoder": "opencv"}],
)
def test_read_frames_bad_arguments(make_clip, kwargs):
    clip = make_clip(num_frames=2)
    with pytest.raises(UsageError):
        read_frames(clip, **kwargs)


def test_read_frames_ten_bit_gives_uint16(make_clip):
    clip = make_clip(num_frames=2, pix_fmt="yuv444p10le", options={"crf": "0"})
    info = probe_video(clip)
    assert (info.pix_fmt, info.bit_depth) == ("yuv444p10le", 10)
    frame = next(read_frames(clip))
    assert frame.image.dtype == np.uint16
    assert frame.image.max() > 255  # the full 16-bit scale, not 8-bit values in a wide type
    assert _mae(frame.image, pattern_frame(0, 48, 64, depth=16)) < 1.0 * 257


def test_read_frames_rgb_coded_stream_is_exact(make_clip, require_encoder):
    require_encoder("ffv1")
    clip = make_clip("rgb.mkv", num_frames=3, codec="ffv1", pix_fmt="bgr0")
    assert probe_video(clip).pix_fmt == "bgr0"
    for frame in read_frames(clip):
        assert np.array_equal(frame.image, pattern_frame(frame.index, 48, 64))


# --- count_frames ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["c.mp4", "c.mkv", "c.mov"])
def test_count_frames_matches_decoding(make_clip, name):
    clip = make_clip(name, num_frames=13, audio="aac")
    assert count_frames(clip) == 13 == len(list(read_frames(clip)))


# --- errors ------------------------------------------------------------------------------------------------------

_READERS = {
    "probe_video": probe_video,
    "read_frames": lambda p: list(read_frames(p)),
    "count_frames": count_frames,
}


@pytest.fixture(params=sorted(_READERS))
def reader(request):
    return _READERS[request.param]


def test_missing_file(tmp_path, reader):
    with pytest.raises(InputError, match=r"nope\.mp4: no such file"):
        reader(tmp_path / "nope.mp4")


def test_directory(tmp_path, reader):
    with pytest.raises(InputError, match=r"is a folder"):
        reader(tmp_path)


def test_not_a_media_file(tmp_path, reader):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(InputError, match=r"notes\.mp4: not a readable media file"):
        reader(text)


def test_audio_only_file(tmp_path, reader):
    path = _write_audio_only(tmp_path / "sound.m4a")
    with pytest.raises(InputError, match=r"sound\.m4a: has no video stream \(found: audio\)"):
        reader(path)


def test_empty_video(make_clip, reader):
    # AVI keeps a video stream without frames (mp4 drops the empty track, Matroska fails to open).
    clip = make_clip("empty.avi", num_frames=0)
    with pytest.raises(InputError, match=r"empty\.avi: the video stream has no .*frames"):
        reader(clip)


def test_empty_mp4_has_no_video_stream(make_clip):
    clip = make_clip("empty.mp4", num_frames=0)
    with pytest.raises(InputError, match=r"empty\.mp4: has no video stream \(found: no streams at all"):
        probe_video(clip)


def _truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


@pytest.mark.parametrize(
    ("name", "container_options"),
    [("t.mkv", None), ("t.mp4", {"movflags": "+faststart"}), ("t.avi", None)],
    ids=["mkv", "mp4-faststart", "avi"],
)
def test_truncated_clip_raises_after_the_frames_before_the_break(make_clip, name, container_options):
    # Regression: FFmpeg ends a truncated file with a quiet EOF, so read_frames returned fewer frames silently.
    time_base = Fraction(1, 25) if name.endswith(".avi") else Fraction(1, 12800)  # AVI counts frames in its time base
    clip = _truncate(make_clip(name, num_frames=30, container_options=container_options, time_base=time_base), 0.5)
    got = []
    with pytest.raises(InputError, match=r"cut_t\.(mkv|mp4|avi): truncated.*breaking at frame (\d+)") as excinfo:
        for frame in read_frames(clip):
            got.append(frame.index)
    assert 0 < len(got) < 30
    assert got == list(range(len(got)))
    assert f"breaking at frame {len(got)}" in str(excinfo.value)
    with pytest.raises(InputError, match=r"truncated"):
        count_frames(clip)


def test_truncated_mp4_without_index_fails_at_open(make_clip):
    clip = _truncate(make_clip("t.mp4", num_frames=30), 0.8)  # the moov index sits at the end and is cut off
    with pytest.raises(InputError, match=r"cut_t\.mp4: not a readable media file or its header is corrupt"):
        probe_video(clip)


def test_complete_clip_with_stop_skips_the_truncation_check(make_clip):
    clip = _truncate(make_clip("t.mkv", num_frames=30), 0.5)
    assert [f.index for f in read_frames(clip, stop=3)] == [0, 1, 2]


# --- decord ------------------------------------------------------------------------------------------------------


def test_decord_gives_the_same_frames(make_clip):
    pytest.importorskip("decord")
    clip = make_clip(num_frames=8)
    ours = list(read_frames(clip))
    theirs = list(read_frames(clip, decoder="decord"))
    assert [f.index for f in theirs] == list(range(8))
    assert [f.pts for f in theirs] == [f.pts for f in ours]
    for a, b in zip(ours, theirs, strict=True):
        assert b.image.shape == a.image.shape and b.image.dtype == np.uint8
        assert _mae(a.image, b.image) < 1.0
    assert [f.index for f in read_frames(clip, start=5, stop=7, decoder="decord")] == [5, 6]


def test_decord_refuses_deep_sources(make_clip):
    pytest.importorskip("decord")
    clip = make_clip(num_frames=2, pix_fmt="yuv420p10le")
    with pytest.raises(UsageError, match=r"10-bit.*decoder='pyav'"):
        read_frames(clip, decoder="decord")


def test_decord_missing_says_how_to_install(make_clip, monkeypatch):
    clip = make_clip(num_frames=2)
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    with pytest.raises(UsageError, match=r"pip install vidharm\[decord\]"):
        read_frames(clip, decoder="decord")


def test_matroska_segment_starting_late_is_not_truncated(tmp_path: Path) -> None:
    # Regression: a farm segment (frames 12-23 of a clip) starts at 0.5 s, and FFmpeg's Matroska muxer states the
    # stream's END time (1.0 s) as its DURATION; comparing that with end minus start called the segment truncated.
    seg = tmp_path / "seg.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24:duration=0.5",
         "-vf", "setpts=PTS+0.5/TB", "-c:v", "ffv1", str(seg)],
        check=True,
    )  # fmt: skip
    frames = list(read_frames(seg))
    assert len(frames) == 12
    assert frames[0].pts * frames[0].time_base == pytest.approx(0.5, abs=1e-3)
