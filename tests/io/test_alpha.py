"""Alpha channels through vidharm/io: read_frames(alpha=True) (_decode.py) and VideoWriter's alpha (_encode.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import ShapeError, UsageError
from vidharm.io import VideoFrame, VideoWriter, probe_video, read_frames
from vidharm.io._synth import pattern_alpha, pattern_frame, write_test_clip


def _has(codec: str) -> bool:
    try:
        return av.Codec(codec, "w").is_encoder
    except ValueError:
        return False


def _clip(tmp_path: Path, name: str, codec: str, pix_fmt: str, **kwargs: object) -> Path:
    if not _has(codec):
        pytest.skip(f"encoder {codec} is not in this PyAV build")
    return write_test_clip(tmp_path / name, num_frames=4, codec=codec, pix_fmt=pix_fmt, **kwargs)  # type: ignore[arg-type]


def _unit(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) / np.iinfo(values.dtype).max


def _alpha_error(path: Path, reference: list[np.ndarray]) -> float:
    """Largest |alpha - reference| over the clip, on a 0..1 scale."""
    frames = list(read_frames(path, alpha=True))
    assert len(frames) == len(reference)
    errors = []
    for frame, ref in zip(frames, reference, strict=True):
        assert frame.alpha is not None
        errors.append(float(np.abs(_unit(frame.alpha) - _unit(ref)).max()))
    return max(errors)


# (file, codec, pix_fmt, encoder options, decoded pix_fmt, depth of the returned arrays, alpha tolerance 0..1)
SOURCES = [
    ("p.mov", "prores_ks", "yuva444p10le", {"profile": "4444"}, "yuva444p12le", 16, 2 / 1023),
    ("q.mov", "qtrle", "argb", {}, "argb", 8, 0.0),
    ("png8.mov", "png", "rgba", {}, "rgba", 8, 0.0),
    ("png16.mov", "png", "rgba64be", {}, "rgba64be", 16, 0.0),
    ("f10.mkv", "ffv1", "yuva444p10le", {}, "yuva444p10le", 16, 1 / 1023),
    ("fg.mkv", "ffv1", "gbrap12le", {}, "gbrap12le", 16, 1 / 4095),
    ("f8.mkv", "ffv1", "bgra", {}, "bgra", 8, 0.0),
    ("v.webm", "libvpx-vp9", "yuva420p", {"crf": "4", "b": "0"}, "yuva420p", 8, 0.1),
]


@pytest.mark.parametrize(("name", "codec", "pix_fmt", "options", "decoded", "depth", "tolerance"), SOURCES)
def test_read_frames_returns_the_alpha(tmp_path, name, codec, pix_fmt, options, decoded, depth, tolerance):
    clip = _clip(tmp_path, name, codec, pix_fmt, options=options)
    info = probe_video(clip)
    assert (info.pix_fmt, info.has_alpha) == (decoded, True)
    dtype = np.uint8 if depth == 8 else np.uint16
    frames = list(read_frames(clip, alpha=True))
    for frame in frames:
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == dtype
        assert frame.alpha is not None and frame.alpha.shape == (48, 64) and frame.alpha.dtype == dtype
        assert frame.image.flags.c_contiguous and frame.alpha.flags.c_contiguous
        # The colour is the same as without alpha: same matrix, same range.
        colour = _unit(frame.image) - _unit(pattern_frame(frame.index, 48, 64))
        assert np.abs(colour).mean() < 0.02
    written_depth = 16 if any(c.bits > 8 for c in av.VideoFormat(pix_fmt).components) else 8
    assert _alpha_error(clip, [pattern_alpha(i, 48, 64, depth=written_depth) for i in range(4)]) <= tolerance + 1e-9
    without = list(read_frames(clip))
    assert all(f.alpha is None for f in without)
    for a, b in zip(frames, without, strict=True):
        assert np.abs(_unit(a.image) - _unit(b.image)).max() <= 1 / 255


def test_alpha_true_on_a_clip_without_alpha_gives_none(tmp_path):
    clip = _clip(tmp_path, "c.mp4", "libx264", "yuv420p")
    frames = list(read_frames(clip, alpha=True))
    assert all(f.alpha is None for f in frames)
    for a, b in zip(frames, read_frames(clip), strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_decord_refuses_to_drop_an_alpha_channel(tmp_path):
    clip = _clip(tmp_path, "q.mov", "qtrle", "argb")
    with pytest.raises(UsageError, match=r"alpha.*decoder='pyav'"):
        read_frames(clip, decoder="decord", alpha=True)


# --- writing -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec", "written", "tolerance"),
    [
        ("out.mov", "prores_ks", "yuva444p10le", 2 / 1023),
        ("out.mov", "qtrle", "argb", 0.0),
        ("out.mov", "png", "rgba", 0.0),
        ("out.mkv", "ffv1", "bgra", 0.0),
        ("out.webm", "libvpx-vp9", "yuva420p", 0.1),
    ],
)
def test_writer_keeps_eight_bit_alpha(tmp_path, name, codec, written, tolerance):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    if not _has(codec):
        pytest.skip(f"encoder {codec} is not in this PyAV build")
    with VideoWriter(tmp_path / name, probe_video(src), codec=codec, crf=4) as writer:
        for frame in read_frames(src, alpha=True):
            writer.write(frame)
    assert (writer.pix_fmt, writer.alpha) == (written, True)
    assert probe_video(tmp_path / name).has_alpha
    reference = [f.alpha for f in read_frames(src, alpha=True)]
    assert _alpha_error(tmp_path / name, reference) <= tolerance + 1e-9  # type: ignore[arg-type]


@pytest.mark.parametrize(("codec", "written", "exact"), [("ffv1", "gbrap16le", True), ("png", "rgba64be", True)])
def test_writer_keeps_deep_alpha_exactly(tmp_path, codec, written, exact):
    src = _clip(tmp_path, "src.mkv", "ffv1", "yuva444p10le")
    suffix = ".mkv" if codec == "ffv1" else ".mov"
    with VideoWriter(tmp_path / f"out{suffix}", probe_video(src), codec=codec) as writer:
        for frame in read_frames(src, alpha=True):
            writer.write(frame)
    assert writer.pix_fmt == written
    for a, b in zip(read_frames(src, alpha=True), read_frames(tmp_path / f"out{suffix}", alpha=True), strict=True):
        np.testing.assert_array_equal(a.alpha, b.alpha)
        np.testing.assert_array_equal(a.image, b.image)


def test_prores_4444_source_keeps_alpha_with_codec_none(tmp_path):
    src = _clip(tmp_path, "src.mov", "prores_ks", "yuva444p10le", options={"profile": "4444"})
    with VideoWriter(tmp_path / "out.mov", probe_video(src)) as writer:
        for frame in read_frames(src, alpha=True):
            writer.write(frame)
    assert (writer.codec, writer.pix_fmt, writer.profile) == ("prores_ks", "yuva444p10le", "4444")
    out = probe_video(tmp_path / "out.mov")
    assert (out.profile, out.has_alpha) == ("4444", True)
    reference = [f.alpha for f in read_frames(src, alpha=True)]
    assert _alpha_error(tmp_path / "out.mov", reference) <= 2 / 1023  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "codec"), [("o.mov", "prores_ks"), ("o.mkv", "ffv1"), ("o.avi", "ffv1"), ("o.webm", "libvpx-vp9")]
)
def test_codec_none_picks_an_alpha_codec_for_the_container(tmp_path, name, codec):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    writer = VideoWriter(tmp_path / name, probe_video(src))
    with writer:
        for frame in read_frames(src, alpha=True):
            writer.write(frame)
    assert (writer.codec, writer.alpha) == (codec, True)
    assert probe_video(tmp_path / name).has_alpha


def test_a_codec_without_alpha_warns_once_and_names_those_with(tmp_path, caplog):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        with VideoWriter(tmp_path / "out.mp4", probe_video(src), preset="ultrafast") as writer:
            for frame in read_frames(src, alpha=True):
                writer.write(frame)
    assert (writer.codec, writer.alpha) == ("libx264", False)
    warnings = [r.getMessage() for r in caplog.records if "alpha" in r.getMessage()]
    assert len(warnings) == 1
    assert "libx264" in warnings[0] and "prores_ks" in warnings[0] and "qtrle" in warnings[0]
    assert not probe_video(tmp_path / "out.mp4").has_alpha
    for a, b in zip(read_frames(src), read_frames(tmp_path / "out.mp4"), strict=True):
        assert np.abs(_unit(a.image) - _unit(b.image)).mean() < 0.02  # the colour is written all the same


def test_frames_with_alpha_into_a_writer_made_without_it_warn_once(tmp_path, caplog):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    like = probe_video(write_test_clip(tmp_path / "plain.mp4", num_frames=1))
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        with VideoWriter(tmp_path / "out.mov", like, codec="prores_ks") as writer:
            for frame in read_frames(src, alpha=True):
                writer.write(frame)
    assert writer.alpha is False
    assert len([r for r in caplog.records if "has alpha" in r.getMessage()]) == 1


def test_alpha_false_drops_it_quietly(tmp_path, caplog):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        with VideoWriter(tmp_path / "out.mov", probe_video(src), codec="prores_ks", alpha=False) as writer:
            for frame in read_frames(src, alpha=True):
                writer.write(frame)
    assert (writer.codec, writer.pix_fmt) == ("prores_ks", "yuv444p10le")
    assert not [r for r in caplog.records if "alpha" in r.getMessage()]
    assert not probe_video(tmp_path / "out.mov").has_alpha


def test_frames_without_alpha_are_written_opaque(tmp_path, caplog):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        with VideoWriter(tmp_path / "out.mov", probe_video(src), codec="qtrle") as writer:
            for frame in read_frames(src):  # alpha not asked for: None
                writer.write(frame)
    assert len([r for r in caplog.records if "opaque" in r.getMessage()]) == 1
    assert all(np.all(f.alpha == 255) for f in read_frames(tmp_path / "out.mov", alpha=True))


def test_a_requested_alpha_pix_fmt_writes_alpha(tmp_path):
    src = write_test_clip(tmp_path / "src.mp4", num_frames=2)
    with VideoWriter(tmp_path / "out.mkv", probe_video(src), codec="ffv1", pix_fmt="yuva444p10le") as writer:
        for frame in read_frames(src):
            alpha = np.full(frame.image.shape[:2], 100, np.uint8)
            writer.write(VideoFrame(frame.index, frame.pts, frame.time_base, frame.image, alpha=alpha))
    assert writer.alpha
    alphas = [f.alpha for f in read_frames(tmp_path / "out.mkv", alpha=True)]
    assert all(a is not None and np.abs(_unit(a) - 100 / 255).max() < 1 / 1023 for a in alphas)


def test_bad_alpha_planes_are_refused(tmp_path):
    src = _clip(tmp_path, "src.mov", "qtrle", "argb")
    frame = next(read_frames(src, alpha=True))
    assert frame.alpha is not None
    with VideoWriter(tmp_path / "out.mov", probe_video(src), codec="qtrle") as writer:
        with pytest.raises(ShapeError):
            writer.write(VideoFrame(0, frame.pts, frame.time_base, frame.image, alpha=frame.alpha[:-1]))
        with pytest.raises(UsageError, match="dtype"):
            writer.write(VideoFrame(0, frame.pts, frame.time_base, frame.image, alpha=frame.alpha.astype(np.uint16)))
        writer.write(frame)
