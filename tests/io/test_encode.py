"""Tests for vidharm/io/_encode.py: VideoWriter timing, colour, lossless paths, audio remux, atomic output."""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import InputError, OutputError, ShapeError, UsageError
from vidharm.io import ColorTags, VideoFrame, VideoWriter, count_frames, probe_video, read_frames

FAST = {"preset": "ultrafast"}


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _transcode(src: Path, out: Path, **kwargs: object) -> Path:
    with VideoWriter(out, probe_video(src), **kwargs) as writer:  # type: ignore[arg-type]
        for frame in read_frames(src):
            writer.write(frame)
    return out


def _audio_packets(path: Path) -> list[tuple[int, int, int, bytes]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [(p.pts, p.duration, p.size, bytes(p)) for p in container.demux(stream) if p.size]


def _audio_duration_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- round trips -------------------------------------------------------------------------------------------------


def test_libx264_round_trip_keeps_count_size_timing_tags_and_audio(make_clip, tmp_path):
    src = make_clip("src.mp4", num_frames=15, audio="aac")
    out = _transcode(src, tmp_path / "out.mp4", crf=18, audio_from=src, **FAST)
    a, b = probe_video(src), probe_video(out)
    assert count_frames(out) == 15
    assert (b.width, b.height, b.fps, b.time_base) == (a.width, a.height, a.fps, a.time_base)
    assert b.color == a.color == ColorTags("bt709", "bt709", "bt709", "tv")
    assert b.pix_fmt == "yuv420p"
    pts_in = [f.pts for f in read_frames(src)]
    pts_out = [f.pts for f in read_frames(out)]
    assert pts_out == pts_in
    assert all(x < y for x, y in itertools.pairwise(pts_out))
    # Audio: the same packets, byte for byte, at the same times.
    assert b.has_audio
    assert _audio_packets(out) == _audio_packets(src)
    assert _audio_duration_s(out) == pytest.approx(_audio_duration_s(src))


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="the ffprobe command-line tool is not installed")
def test_round_trip_tags_as_ffprobe_sees_them(make_clip, tmp_path):
    import ffmpeg

    src = make_clip("src.mp4", num_frames=4, audio="aac")
    out = _transcode(src, tmp_path / "out.mp4", audio_from=src, **FAST)
    streams = {s["codec_type"]: s for s in ffmpeg.probe(str(out))["streams"]}
    video = streams["video"]
    assert (video["color_primaries"], video["color_transfer"], video["color_space"], video["color_range"]) == (
        "bt709",
        "bt709",
        "bt709",
        "tv",
    )
    assert (video["width"], video["height"], video["nb_frames"]) == (64, 48, "4")
    source_audio = {s["codec_type"]: s for s in ffmpeg.probe(str(src))["streams"]}["audio"]
    assert streams["audio"]["nb_frames"] == source_audio["nb_frames"]
    assert streams["audio"]["duration"] == source_audio["duration"]


@pytest.mark.parametrize(
    ("color", "wrong_matrix"),
    [(ColorTags("bt709", "bt709", "bt709", "tv"), "ITU601"), (None, "ITU709")],
    ids=["bt709", "untagged"],
)
@pytest.mark.parametrize("crf", [0, 12])
def test_colours_do_not_shift(make_clip, tmp_path, color, wrong_matrix, crf):
    # Regression (environment.md §4): VideoFrame.from_ndarray(rgb) is untagged, so letting the encoder convert
    # to yuv420p used BT.601 even for bt709 streams; the colours shifted by ~7-20 levels.
    src = make_clip("src.mp4", num_frames=6, color=color)
    out = _transcode(src, tmp_path / "out.mp4", crf=crf, **FAST)
    before = [f.image for f in read_frames(src)]
    after = [f.image for f in read_frames(out)]
    assert probe_video(out).color == probe_video(src).color
    assert np.mean([_mae(x, y) for x, y in zip(before, after, strict=True)]) < 2.0
    # The same check fails when the output is read with the other matrix: the test can tell them apart.
    with av.open(str(out)) as container:
        misread = [
            f.reformat(format="rgb24", src_colorspace=wrong_matrix, src_color_range="MPEG").to_ndarray()
            for f in container.decode(video=0)
        ]
    assert np.mean([_mae(x, y) for x, y in zip(before, misread, strict=True)]) > 4.0


def test_ffv1_is_bit_identical(make_clip, tmp_path, require_encoder):
    require_encoder("ffv1")
    src = make_clip("src.mp4", num_frames=6)
    out = _transcode(src, tmp_path / "out.mkv", codec="ffv1")
    info = probe_video(out)
    assert info.pix_fmt in ("gbrp", "bgr0")
    assert info.color.matrix == "gbr" and info.color.range == "pc"
    assert info.color.primaries == "bt709"
    for a, b in zip(read_frames(src), read_frames(out), strict=True):
        assert np.array_equal(a.image, b.image)


def test_ffv1_is_bit_identical_at_16_bits(make_clip, tmp_path, require_encoder):
    require_encoder("ffv1")
    src = make_clip("src.mkv", num_frames=3, pix_fmt="yuv420p10le")
    out = _transcode(src, tmp_path / "out.mkv", codec="ffv1")
    assert probe_video(out).bit_depth == 16
    for a, b in zip(read_frames(src), read_frames(out), strict=True):
        assert a.image.dtype == b.image.dtype == np.uint16
        assert np.array_equal(a.image, b.image)


def test_libx264rgb_crf0_is_bit_identical(make_clip, tmp_path, require_encoder):
    require_encoder("libx264rgb")
    src = make_clip("src.mp4", num_frames=6)
    out = _transcode(src, tmp_path / "out.mp4", codec="libx264rgb", crf=0, **FAST)
    for a, b in zip(read_frames(src), read_frames(out), strict=True):
        assert np.array_equal(a.image, b.image)


def test_variable_frame_rate_survives_exactly(make_clip, tmp_path):
    stamps = [0, 300, 900, 1000, 2500, 2600, 2700, 5000]
    src = make_clip("vfr.mp4", num_frames=len(stamps), pts=stamps, time_base=Fraction(1, 1000))
    out = _transcode(src, tmp_path / "out.mp4", **FAST)
    seconds_in = [f.pts * f.time_base for f in read_frames(src)]
    seconds_out = [f.pts * f.time_base for f in read_frames(out)]
    assert seconds_in == [Fraction(s, 1000) for s in stamps]
    assert seconds_out == seconds_in


def test_matroska_output_keeps_timestamps_to_the_millisecond(make_clip, tmp_path):
    # Regression: the Matroska muxer shifted every stream by the AAC pre-roll (21 ms) to avoid negative times.
    src = make_clip("src.mp4", num_frames=5, audio="aac")
    out = _transcode(src, tmp_path / "out.mkv", audio_from=src, **FAST)
    seconds_in = [float(f.pts * f.time_base) for f in read_frames(src)]
    seconds_out = [float(f.pts * f.time_base) for f in read_frames(out)]
    assert seconds_out == pytest.approx(seconds_in, abs=1e-3)
    assert probe_video(out).has_audio


def test_mov_output_keeps_timestamps_exactly(make_clip, tmp_path):
    src = make_clip("src.mp4", num_frames=5, audio="aac")
    out = _transcode(src, tmp_path / "out.mov", audio_from=src, **FAST)
    assert [f.pts for f in read_frames(out)] == [f.pts for f in read_frames(src)]
    assert _audio_packets(out) == _audio_packets(src)


def test_avi_output_counts_frames_at_constant_rate(make_clip, tmp_path):
    # Regression: AVI with a 1/12800 time base stored its length in ticks (205 "frames" for 8), which the
    # truncation check took for a cut file. AVI now gets a one-frame time base.
    src = make_clip("src.mp4", num_frames=8, audio="aac")
    out = _transcode(src, tmp_path / "out.avi", audio_from=src, **FAST)
    info = probe_video(out)
    assert info.time_base == Fraction(1, 25)
    assert count_frames(out) == 8
    seconds = [f.pts * f.time_base for f in read_frames(out)]
    assert len(seconds) == 8
    # The AVI muxer may shift every stream by the B-frame delay or the AAC pre-roll; the spacing survives.
    assert [b - a for a, b in itertools.pairwise(seconds)] == [Fraction(1, 25)] * 7
    assert info.has_audio


def test_odd_size_keeps_the_size_with_444(make_clip, tmp_path, caplog):
    src = make_clip("odd.mp4", num_frames=4, width=65, height=49, pix_fmt="yuv444p")
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        out = _transcode(src, tmp_path / "out.mp4", **FAST)
    info = probe_video(out)
    assert (info.width, info.height, info.pix_fmt) == (65, 49, "yuv444p")
    assert any("odd side" in r.getMessage() and "yuv444p" in r.getMessage() for r in caplog.records)
    assert all(f.image.shape == (49, 65, 3) for f in read_frames(out))


def test_ten_bit_source_is_written_at_ten_bits(make_clip, tmp_path, require_encoder):
    if "yuv420p10le" not in [f.name for f in av.Codec("libx264", "w").video_formats]:
        pytest.skip("this libx264 has no 10-bit support")
    src = make_clip("ten.mp4", num_frames=4, pix_fmt="yuv420p10le")
    out = _transcode(src, tmp_path / "out.mp4", crf=0, **FAST)
    info = probe_video(out)
    assert (info.pix_fmt, info.bit_depth) == ("yuv420p10le", 10)
    before = [f.image for f in read_frames(src)]
    after = [f.image for f in read_frames(out)]
    assert all(x.dtype == np.uint16 for x in after)
    # x264 is not lossless at crf 0 above 8 bits, and 4:2:0 resampling adds its share: allow 3 levels.
    assert np.mean([_mae(x, y) for x, y in zip(before, after, strict=True)]) < 3.0 * 257


@pytest.mark.parametrize(
    ("codec", "suffix", "kwargs"),
    [
        ("mpeg4", ".mp4", {}),
        ("prores_ks", ".mov", {}),
        ("libx265", ".mkv", {"preset": "ultrafast"}),
        ("libvpx-vp9", ".mkv", {"crf": 20}),
    ],
)
def test_other_encoders(make_clip, tmp_path, require_encoder, codec, suffix, kwargs):
    require_encoder(codec)
    src = make_clip("src.mp4", num_frames=4)
    out = _transcode(src, tmp_path / f"out{suffix}", codec=codec, **kwargs)
    info = probe_video(out)
    assert (info.width, info.height) == (64, 48)
    assert info.color == ColorTags("bt709", "bt709", "bt709", "tv")
    before = [f.image for f in read_frames(src)]
    after = [f.image for f in read_frames(out)]
    assert len(after) == 4
    scale = 257.0 if after[0].dtype == np.uint16 else 1.0  # prores_ks writes 10 bits
    assert np.mean([_mae(x, y / scale) for x, y in zip(before, after, strict=True)]) < 12.0


@pytest.mark.parametrize(
    ("name", "codec"), [("out.mp4", "libx264"), ("out.mkv", "libx264"), ("out.webm", "libvpx-vp9")]
)
def test_codec_none_picks_by_container_for_plain_sources(make_clip, tmp_path, require_encoder, name, codec):
    require_encoder(codec)
    src = make_clip("src.mp4", num_frames=2)
    with VideoWriter(tmp_path / name, probe_video(src), **FAST) as writer:
        for frame in read_frames(src):
            writer.write(frame)
    assert (writer.codec, writer.alpha, writer.profile) == (codec, False, None)
    assert count_frames(tmp_path / name) == 2


def test_rotation_is_carried_over(make_clip, tmp_path):
    src = make_clip("rot.mp4", num_frames=2, rotation_deg=-90)
    out = _transcode(src, tmp_path / "out.mp4", **FAST)
    assert probe_video(out).rotation_deg == -90


# --- timing of the written frames ----------------------------------------------------------------------------------


def test_frames_without_pts_are_placed_by_index(make_clip, tmp_path):
    src = make_clip(num_frames=3)
    info = probe_video(src)
    with VideoWriter(tmp_path / "out.mp4", info, **FAST) as writer:
        for frame in read_frames(src):
            writer.write(dataclasses.replace(frame, pts=None))
    assert [f.pts for f in read_frames(tmp_path / "out.mp4")] == [0, 512, 1024]


def test_frames_in_another_time_base_are_rescaled(make_clip, tmp_path):
    src = make_clip(num_frames=3)
    info = probe_video(src)
    with VideoWriter(tmp_path / "out.mp4", info, **FAST) as writer:
        for frame in read_frames(src):
            writer.write(VideoFrame(frame.index, frame.index * 40, Fraction(1, 1000), frame.image))
    assert [f.pts for f in read_frames(tmp_path / "out.mp4")] == [0, 512, 1024]


def test_non_increasing_pts_is_refused(make_clip, tmp_path):
    src = make_clip(num_frames=2)
    frames = list(read_frames(src))
    with pytest.raises(UsageError, match=r"does not increase"):
        with VideoWriter(tmp_path / "out.mp4", probe_video(src), **FAST) as writer:
            writer.write(frames[1])
            writer.write(frames[0])
    assert not (tmp_path / "out.mp4").exists()


# --- segments ----------------------------------------------------------------------------------------------------


def test_segment_keeps_only_overlapping_audio(make_clip, tmp_path):
    src = make_clip("src.mp4", num_frames=20, audio="aac")
    info = probe_video(src)
    out = tmp_path / "seg.mp4"
    with VideoWriter(out, info, audio_from=src, frames=(5, 9), **FAST) as writer:
        for frame in read_frames(src, start=5, stop=10):
            writer.write(frame)
    assert [f.index for f in read_frames(out)] == [0, 1, 2, 3, 4]  # a new file numbers its own frames
    assert [f.pts for f in read_frames(out)] == [i * 512 for i in range(5, 10)]
    span = (5 / 25, 10 / 25)
    kept = _audio_packets(out)
    everything = _audio_packets(src)
    tb = 1 / 48000
    expected = [p for p in everything if (p[0] + p[1]) * tb > span[0] and p[0] * tb < span[1]]
    assert kept == expected
    assert 0 < len(kept) < len(everything)


def test_segment_refuses_frames_outside_it(make_clip, tmp_path):
    src = make_clip(num_frames=6)
    with pytest.raises(UsageError, match=r"outside the segment"):
        with VideoWriter(tmp_path / "seg.mp4", probe_video(src), frames=(2, 3), **FAST) as writer:
            for frame in read_frames(src):
                writer.write(frame)
    assert not (tmp_path / "seg.mp4").exists()


# --- errors and atomicity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["no-such-codec", "aac"])
def test_unknown_or_non_video_codec(make_clip, tmp_path, codec):
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(UsageError, match=r"not a video encoder.*libx264"):
        VideoWriter(tmp_path / "out.mp4", info, codec=codec)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["out.flv", "out.gif", "out"])
def test_unsupported_extension(make_clip, tmp_path, name):
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(UsageError, match=r"unsupported output extension"):
        VideoWriter(tmp_path / name, info)


def test_unsupported_pix_fmt(make_clip, tmp_path):
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(UsageError, match=r"cannot take pix_fmt 'rgb24'"):
        VideoWriter(tmp_path / "out.mp4", info, pix_fmt="rgb24")


def test_codec_the_container_cannot_hold(make_clip, tmp_path, require_encoder):
    require_encoder("prores_ks")
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(UsageError, match=r"cannot go into \.mp4"):
        VideoWriter(tmp_path / "out.mp4", info, codec="prores_ks")
    assert list(tmp_path.glob(".out*")) == []


def test_missing_output_folder(make_clip, tmp_path):
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(OutputError, match=r"does not exist"):
        VideoWriter(tmp_path / "missing" / "out.mp4", info)


def test_missing_audio_source(make_clip, tmp_path):
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(InputError, match=r"nope\.wav: no such file"):
        VideoWriter(tmp_path / "out.mp4", info, audio_from=tmp_path / "nope.wav")
    assert _leftovers(tmp_path) == []


def test_audio_source_without_audio_gives_video_only(make_clip, tmp_path):
    src = make_clip(num_frames=2)
    out = _transcode(src, tmp_path / "out.mp4", audio_from=src, **FAST)
    assert not probe_video(out).has_audio


def test_wrong_image_shape_and_dtype(make_clip, tmp_path):
    src = make_clip(num_frames=1)
    frame = next(read_frames(src))
    with VideoWriter(tmp_path / "out.mp4", probe_video(src), **FAST) as writer:
        with pytest.raises(ShapeError, match=r"expected shape \(48, 64, 3\)"):
            writer.write(dataclasses.replace(frame, image=frame.image[:, :32]))
        with pytest.raises(UsageError, match=r"uint8 or uint16"):
            writer.write(dataclasses.replace(frame, image=frame.image.astype(np.float32)))
        writer.write(frame)
    assert count_frames(tmp_path / "out.mp4") == 1


def test_no_frames_written_leaves_no_file(make_clip, tmp_path):
    info = probe_video(make_clip(num_frames=1))
    with pytest.raises(UsageError, match=r"no frames were written"):
        with VideoWriter(tmp_path / "out.mp4", info):
            pass
    assert not (tmp_path / "out.mp4").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("model crashed"), KeyboardInterrupt()], ids=["RuntimeError", "Ctrl-C"])
def test_exception_inside_the_block_leaves_no_output(make_clip, tmp_path, error):
    src = make_clip("src.mp4", num_frames=6, audio="aac")
    out = tmp_path / "out.mp4"
    with pytest.raises(type(error)):
        with VideoWriter(out, probe_video(src), audio_from=src, **FAST) as writer:
            for frame in read_frames(src):
                writer.write(frame)
                if frame.index == 3:
                    assert _leftovers(tmp_path) != []  # the work happens in a hidden temp file
                    raise error
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_exception_keeps_an_existing_output(make_clip, tmp_path):
    src = make_clip("src.mp4", num_frames=3)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError):
        with VideoWriter(out, probe_video(src), **FAST) as writer:
            writer.write(next(read_frames(src)))
            raise RuntimeError("stop")
    assert out.read_bytes() == b"previous result"


def test_write_after_close_is_refused(make_clip, tmp_path):
    src = make_clip(num_frames=1)
    frame = next(read_frames(src))
    writer = VideoWriter(tmp_path / "out.mp4", probe_video(src), **FAST)
    writer.write(frame)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(UsageError, match=r"closed"):
        writer.write(frame)


def test_dropped_writer_removes_its_temp_file(make_clip, tmp_path, caplog):
    src = make_clip(num_frames=1)
    writer = VideoWriter(tmp_path / "out.mp4", probe_video(src), **FAST)
    writer.write(next(read_frames(src)))
    assert _leftovers(tmp_path) != []
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        del writer
        gc.collect()
    assert _leftovers(tmp_path) == []
    assert not (tmp_path / "out.mp4").exists()
    assert any("without close()" in r.getMessage() for r in caplog.records)
