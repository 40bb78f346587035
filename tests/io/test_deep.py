"""10/12-bit masters through vidharm/io (_decode.py, _encode.py): ProRes 422 HQ / 4444, DNxHR HQX, ffv1, x265.

Every test checks decoded values, not only pixel-format names: a grey ramp of consecutive 10-bit (or 12-bit) codes
goes through the codec, and the decoded row must still tell most neighbouring codes apart (an 8-bit path merges
each four into one level) and sit within a fraction of a code of the ramp.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import UsageError
from vidharm.io import VideoFrame, VideoWriter, probe_video, read_frames
from vidharm.io._synth import write_test_clip


def _ramp(bits: int, width: int = 64, height: int = 48) -> Callable[[int], np.ndarray]:
    """Frame i: grey, code = base + x + 8 y + i at ``bits`` bits (consecutive codes along each row), 16-bit scaled."""
    base = 300 << (bits - 10)

    def frame(index: int) -> np.ndarray:
        yy, xx = np.mgrid[0:height, 0:width]
        codes = (base + xx + 8 * yy + index) << (16 - bits)
        return np.repeat(codes.astype(np.uint16)[..., None], 3, axis=-1)

    return frame


def _precision(image: np.ndarray, ramp: np.ndarray, bits: int) -> tuple[float, float]:
    """(mean |error| in ``bits``-bit codes, median number of distinct codes per row) of the green channel."""
    step = float(1 << (16 - bits))
    got = image[..., 1].astype(np.float64) / step
    ideal = ramp[..., 1].astype(np.float64) / step
    distinct = float(np.median([len(np.unique(np.round(row))) for row in got]))
    return float(np.abs(got - ideal).mean()), distinct


def _source(
    tmp_path: Path,
    name: str,
    codec: str,
    pix_fmt: str,
    bits: int = 10,
    width: int = 64,
    height: int = 48,
    **kwargs: object,
) -> Path:
    if not _has(codec):
        pytest.skip(f"encoder {codec} is not in this PyAV build")
    return write_test_clip(
        tmp_path / name,
        num_frames=3,
        codec=codec,
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        pattern=_ramp(bits, width, height),
        **kwargs,  # type: ignore[arg-type]
    )


def _transcode(src: Path, out: Path, **kwargs: object) -> VideoWriter:
    with VideoWriter(out, probe_video(src), **kwargs) as writer:  # type: ignore[arg-type]
        for frame in read_frames(src):
            writer.write(frame)
    return writer


# 64 consecutive codes per row: a path that keeps 10 bits tells about 55 apart (limited-range YUV merges a few),
# an 8-bit path at most 17, and 8-bit rounding alone costs 1 code on average (the control test measures both).
MIN_DISTINCT = 45
MAX_MEAN_ERROR = 0.6


def test_an_eight_bit_path_fails_the_precision_check(tmp_path):
    """Control: the ramp squeezed through 8 bits (lossless x264) fails both bounds the tests below use."""
    src = _source(tmp_path, "ten.mkv", "ffv1", "yuv444p10le")
    info = dataclasses.replace(probe_video(src), bit_depth=8, pix_fmt="yuv444p")
    out = tmp_path / "eight.mkv"
    with VideoWriter(out, info, codec="ffv1", pix_fmt="yuv444p") as writer:
        for frame in read_frames(src):
            writer.write(VideoFrame(frame.index, frame.pts, frame.time_base, (frame.image >> 8).astype(np.uint8)))
    image = next(read_frames(out)).image.astype(np.uint16) * 257
    mean_error, distinct = _precision(image, _ramp(10)(0), 10)
    assert distinct < 20 and mean_error > 1.0


@pytest.mark.parametrize(
    ("pix_fmt", "profile", "source_profile"),
    [("yuv444p10le", "4444", "4444"), ("yuv422p10le", "hq", "HQ")],
)
def test_prores_round_trip_keeps_ten_bits_and_the_profile(tmp_path, pix_fmt, profile, source_profile):
    src = _source(tmp_path, "src.mov", "prores_ks", pix_fmt, options={"profile": profile})
    info = probe_video(src)
    assert (info.codec, info.profile) == ("prores", source_profile)
    writer = _transcode(src, tmp_path / "out.mov", codec="prores_ks")
    assert (writer.pix_fmt, writer.profile) == (pix_fmt, profile)
    out = probe_video(tmp_path / "out.mov")
    assert out.profile == source_profile and out.bit_depth >= 10
    for frame in read_frames(tmp_path / "out.mov"):
        assert frame.image.dtype == np.uint16
        mean_error, distinct = _precision(frame.image, _ramp(10)(frame.index), 10)
        assert distinct >= MIN_DISTINCT and mean_error < MAX_MEAN_ERROR


@pytest.mark.parametrize(
    ("options", "name"), [({"profile": "lt"}, "LT"), ({"profile": "4444xq"}, "XQ"), ({"profile": "proxy"}, "Proxy")]
)
def test_prores_keeps_every_profile(tmp_path, options, name):
    pix_fmt = "yuv444p10le" if "4444" in options["profile"] else "yuv422p10le"
    src = _source(tmp_path, "src.mov", "prores_ks", pix_fmt, options=options)
    _transcode(src, tmp_path / "out.mov", codec="prores_ks")
    assert probe_video(tmp_path / "out.mov").profile == name


def test_codec_none_keeps_prores_in_mov_and_mkv(tmp_path):
    src = _source(tmp_path, "src.mov", "prores_ks", "yuv422p10le", options={"profile": "hq"})
    for name in ("out.mov", "out.mkv"):
        writer = _transcode(src, tmp_path / name)
        assert (writer.codec, writer.profile) == ("prores_ks", "hq")
        assert probe_video(tmp_path / name).profile == "HQ"
    assert _transcode(src, tmp_path / "out.mp4", preset="ultrafast").codec == "libx264"  # mp4 holds no ProRes


def test_rgb_sixteen_bit_source_goes_to_prores_4444(tmp_path):
    src = _source(tmp_path, "src.mkv", "ffv1", "gbrp16le")
    writer = _transcode(src, tmp_path / "out.mov", codec="prores_ks")
    assert (writer.pix_fmt, writer.profile) == ("yuv444p10le", "4444")


def test_dnxhr_hqx_round_trip_keeps_ten_bits_and_the_profile(tmp_path):
    src = _source(tmp_path, "src.mov", "dnxhd", "yuv422p10le", width=256, height=128, options={"profile": "dnxhr_hqx"})
    assert probe_video(src).profile == "DNXHR HQX"
    writer = _transcode(src, tmp_path / "out.mov")  # codec=None keeps DNxHR in .mov
    assert (writer.codec, writer.pix_fmt, writer.profile) == ("dnxhd", "yuv422p10le", "dnxhr_hqx")
    assert probe_video(tmp_path / "out.mov").profile == "DNXHR HQX"
    frame = next(read_frames(tmp_path / "out.mov"))
    mean_error, distinct = _precision(frame.image, _ramp(10, 256, 128)(0), 10)
    # 256 consecutive codes per row (an 8-bit path: at most 65).
    assert distinct >= 180 and mean_error < MAX_MEAN_ERROR


def test_dnxhd_defaults_from_the_source_depth(tmp_path):
    src = _source(tmp_path, "src.mkv", "ffv1", "yuv444p10le", width=256, height=128)
    assert _transcode(src, tmp_path / "a.mov", codec="dnxhd").profile == "dnxhr_444"
    eight = write_test_clip(tmp_path / "eight.mp4", num_frames=2, width=256, height=128)
    writer = _transcode(eight, tmp_path / "b.mov", codec="dnxhd")
    assert (writer.pix_fmt, writer.profile) == ("yuv422p", "dnxhr_hq")


def test_dnxhr_refuses_frames_it_cannot_encode(tmp_path):
    src = _source(tmp_path, "src.mkv", "ffv1", "yuv422p10le")
    with pytest.raises(UsageError, match=r"at least 256x120.*prores_ks"):
        _transcode(src, tmp_path / "out.mov", codec="dnxhd")
    assert list(tmp_path.glob("*.mov")) == [] and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("bits", "pix_fmt"), [(10, "yuv444p10le"), (12, "yuv444p12le")])
def test_ffv1_is_lossless_at_ten_and_twelve_bits(tmp_path, bits, pix_fmt):
    src = _source(tmp_path, "src.mkv", "ffv1", pix_fmt, bits=bits)
    assert probe_video(src).bit_depth == bits
    for kwargs in ({"pix_fmt": pix_fmt}, {}):  # the source's own format, and the default 16-bit RGB
        out = tmp_path / f"out{len(kwargs)}.mkv"
        _transcode(src, out, codec="ffv1", **kwargs)
        for a, b in zip(read_frames(src), read_frames(out), strict=True):
            np.testing.assert_array_equal(a.image, b.image)
    frame = next(read_frames(tmp_path / "out1.mkv"))
    mean_error, distinct = _precision(frame.image, _ramp(bits)(0), bits)
    assert distinct >= MIN_DISTINCT and mean_error < MAX_MEAN_ERROR  # 12 bits: a 10-bit path tells 17 apart


def test_libx265_writes_a_twelve_bit_source_at_twelve_bits(tmp_path):
    supported = [f.name for f in av.Codec("libx265", "w").video_formats or []] if _has("libx265") else []
    if "yuv420p12le" not in supported:
        pytest.skip("this libx265 has no 12-bit (main12) support")
    src = _source(tmp_path, "src.mkv", "ffv1", "yuv444p12le", bits=12)
    writer = _transcode(src, tmp_path / "out.mkv", codec="libx265", crf=0, preset="ultrafast")
    assert writer.pix_fmt == "yuv420p12le"
    assert probe_video(tmp_path / "out.mkv").bit_depth == 12
    mean_error, distinct = _precision(next(read_frames(tmp_path / "out.mkv")).image, _ramp(12)(0), 12)
    assert distinct >= 32 and mean_error < 1.5  # a 10-bit path tells at most 17 of the 64 codes apart


def test_a_codec_without_the_sources_depth_says_so(tmp_path, caplog):
    src = _source(tmp_path, "src.mkv", "ffv1", "yuv444p12le", bits=12)
    with caplog.at_level(logging.WARNING, logger="vidharm.io._encode"):
        writer = _transcode(src, tmp_path / "out.mp4", codec="libx264", preset="ultrafast")
    assert writer.pix_fmt == "yuv420p10le"
    assert any("at most 10 bits" in r.getMessage() and "12-bit" in r.getMessage() for r in caplog.records)


def _has(codec: str) -> bool:
    try:
        return av.Codec(codec, "w").is_encoder
    except ValueError:
        return False
