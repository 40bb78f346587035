"""Image sequences as input (vidharm/io/_seqread.py through probe_video/read_frames/count_frames): formats, dtypes,
numbering, frame rate, alpha, data windows, and the bad-input errors raised before anything is written; and round
trips: read -> SequenceWriter(like=source) -> read is bit-exact (EXR half/float, PNG16, TIFF16, DPX 10-bit),
numbering starts at the source's first file, and EXR headers and data windows are kept."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest

from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.io import (
    DEFAULT_SEQUENCE_FPS,
    SequenceWriter,
    check_fps,
    count_frames,
    find_sequence,
    fingerprint_sequence,
    probe_video,
    read_frames,
)
from vidharm.io._synth import write_test_clip


def write_file(
    path: Path,
    pixels: np.ndarray,
    sample: str,
    *,
    names: tuple[str, ...] | None = None,
    bits: int | None = None,
    data: tuple[int, int] | None = None,
    display: tuple[int, int, int, int] | None = None,
    attrs: dict[str, object] | None = None,
) -> Path:
    """Write ``pixels`` (H, W, C) with OpenImageIO directly (not through vidharm), as ``sample``."""
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, sample)
    if names is None:
        names = ("R", "G", "B", "A", "Z")[:c] if c >= 3 else ("Y", "A")[:c]
    spec.channelnames = names
    if "A" in spec.channelnames:
        spec.alpha_channel = list(spec.channelnames).index("A")
        spec.attribute("oiio:UnassociatedAlpha", 1)  # the values as given (PNG stores straight alpha)
    if bits is not None:
        spec.attribute("oiio:BitsPerSample", bits)
    if data is not None:
        spec.x, spec.y = data
    if display is not None:
        spec.full_x, spec.full_y, spec.full_width, spec.full_height = display
    for key, value in (attrs or {}).items():
        spec.attribute(key, value)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec), out.geterror()
    assert out.write_image(np.ascontiguousarray(pixels)), out.geterror()
    out.close()
    return path


def make_sequence(
    folder: Path, name: str, numbers: range | list[int], shape: tuple[int, int, int], sample: str, **kwargs: object
) -> list[np.ndarray]:
    """Files ``folder/name % n`` of random pixels; returns the pixels written."""
    rng = np.random.default_rng(len(name))
    written = []
    for n in numbers:
        if sample in ("half", "float"):
            pixels = (rng.standard_normal(shape) * 4).astype(np.float16 if sample == "half" else np.float32)
        else:
            peak = {"uint8": 255, "uint16": 65535}[sample]
            pixels = rng.integers(0, peak, shape, endpoint=True).astype(np.uint8 if peak == 255 else np.uint16)
        write_file(folder / (name % n), pixels, sample, **kwargs)  # type: ignore[arg-type]
        written.append(pixels)
    return written


@pytest.mark.parametrize(
    ("suffix", "sample", "dtype", "bit_depth", "pix_fmt", "codec"),
    [
        (".exr", "half", np.float32, 16, "rgbf16le", "openexr"),
        (".exr", "float", np.float32, 32, "rgbf32le", "openexr"),
        (".png", "uint8", np.uint8, 8, "rgb24", "png"),
        (".png", "uint16", np.uint16, 16, "rgb48le", "png"),
        (".tif", "uint8", np.uint8, 8, "rgb24", "tiff"),
        (".tiff", "uint16", np.uint16, 16, "rgb48le", "tiff"),
        (".tif", "float", np.float32, 32, "rgbf32le", "tiff"),
        (".dpx", "uint16", np.uint16, 16, "rgb48le", "dpx"),
    ],
)
def test_formats_probe_and_read_at_native_depth(
    tmp_path: Path, suffix: str, sample: str, dtype: type, bit_depth: int, pix_fmt: str, codec: str
) -> None:
    written = make_sequence(tmp_path, f"shot.%04d{suffix}", range(1001, 1004), (4, 6, 3), sample)
    for pattern in (f"shot.%04d{suffix}", f"shot.####{suffix}"):
        info = probe_video(tmp_path / pattern)
        assert (info.width, info.height, info.num_frames, info.first_frame) == (6, 4, 3, 1001)
        assert (info.codec, info.pix_fmt, info.bit_depth, info.has_alpha) == (codec, pix_fmt, bit_depth, False)
        assert (info.fps, info.time_base, info.has_audio, info.rotation_deg) == (
            Fraction(24),
            Fraction(1, 24),
            False,
            0,
        )
        assert info.color.primaries is None and info.color.transfer is None
    frames = list(read_frames(tmp_path / f"shot.####{suffix}"))
    assert [(f.index, f.pts, f.time_base) for f in frames] == [(i, i, Fraction(1, 24)) for i in range(3)]
    for frame, pixels in zip(frames, written, strict=True):
        assert frame.image.dtype == dtype and frame.image.shape == (4, 6, 3) and frame.alpha is None
        np.testing.assert_array_equal(frame.image, pixels.astype(dtype))  # half -> float32 is exact
    assert count_frames(tmp_path / f"shot.%04d{suffix}") == 3


def test_exr_values_beyond_zero_and_one_survive(tmp_path: Path) -> None:
    pixels = np.array([[[-3.5, 0.0, 1.0], [65504.0, 1e-4, 2.0]]], np.float16)
    write_file(tmp_path / "a.0001.exr", pixels, "half")
    (frame,) = read_frames(tmp_path / "a.%04d.exr")
    assert frame.image.tolist() == pixels.astype(np.float32).tolist()


@pytest.mark.parametrize("bits", [10, 12])
def test_dpx_10_and_12_bit_scale_to_full_range_by_bit_replication(tmp_path: Path, bits: int) -> None:
    codes = np.arange(1 << bits)
    full = ((codes << (16 - bits)) | (codes >> (2 * bits - 16))).astype(np.uint16)
    write_file(tmp_path / "p.0001.dpx", np.repeat(full[None, :, None], 3, axis=2), "uint16", bits=bits)
    info = probe_video(tmp_path / "p.%04d.dpx")
    assert (info.bit_depth, info.pix_fmt) == (bits, "rgb48le")
    (frame,) = read_frames(tmp_path / "p.%04d.dpx")
    assert frame.image.dtype == np.uint16
    np.testing.assert_array_equal(frame.image[0, :, 1], full)
    assert frame.image[0, -1, 0] == 65535 and frame.image[0, 0, 0] == 0
    # Within one level of round(v * 65535 / (2**bits - 1)).
    assert np.abs(full.astype(float) - np.round(codes * 65535 / ((1 << bits) - 1))).max() <= 1 + (bits == 12) * 15


def test_alpha_only_when_asked_and_present(tmp_path: Path) -> None:
    written = make_sequence(tmp_path, "a.%02d.png", [0, 1], (3, 4, 4), "uint16")
    info = probe_video(tmp_path / "a.%02d.png")
    assert info.has_alpha and info.pix_fmt == "rgba64le"
    assert all(f.alpha is None for f in read_frames(tmp_path / "a.%02d.png"))
    for frame, pixels in zip(read_frames(tmp_path / "a.%02d.png", alpha=True), written, strict=True):
        assert frame.alpha is not None and frame.alpha.dtype == np.uint16 and frame.alpha.shape == (3, 4)
        np.testing.assert_array_equal(frame.image, pixels[:, :, :3])
        np.testing.assert_array_equal(frame.alpha, pixels[:, :, 3])  # straight alpha, not premultiplied
    make_sequence(tmp_path, "b.%02d.png", [0], (3, 4, 3), "uint8")
    assert next(read_frames(tmp_path / "b.%02d.png", alpha=True)).alpha is None


def test_channels_beyond_rgba_are_ignored_and_grey_becomes_rgb(tmp_path: Path) -> None:
    (pixels,) = make_sequence(tmp_path, "z.%d.exr", [5], (2, 3, 5), "float", names=("R", "G", "B", "A", "Z"))
    (frame,) = read_frames(tmp_path / "z.%d.exr", alpha=True)
    np.testing.assert_array_equal(frame.image, pixels[:, :, :3])
    np.testing.assert_array_equal(frame.alpha, pixels[:, :, 3])
    (grey,) = make_sequence(tmp_path, "g.%d.png", [5], (2, 3, 1), "uint16")
    (frame,) = read_frames(tmp_path / "g.%d.png")
    assert frame.image.shape == (2, 3, 3)
    np.testing.assert_array_equal(frame.image, np.repeat(grey, 3, axis=2))


def test_a_data_window_inside_the_display_window_reads_as_zeros_around_it(tmp_path: Path) -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1
    write_file(tmp_path / "d.1001.exr", pixels, "float", data=(4, 1), display=(0, 0, 8, 5))
    info = probe_video(tmp_path / "d.####.exr")
    assert (info.width, info.height) == (8, 5)  # the display window
    (frame,) = read_frames(tmp_path / "d.####.exr")
    expected = np.zeros((5, 8, 3), np.float32)
    expected[1:3, 4:7] = pixels
    np.testing.assert_array_equal(frame.image, expected)


def test_data_window_may_change_per_frame(tmp_path: Path) -> None:
    write_file(tmp_path / "d.1.exr", np.ones((2, 2, 3), np.float32), "float", data=(0, 0), display=(0, 0, 4, 4))
    write_file(tmp_path / "d.2.exr", np.ones((1, 4, 3), np.float32), "float", data=(0, 3), display=(0, 0, 4, 4))
    frames = [f.image[:, :, 0] for f in read_frames(tmp_path / "d.%d.exr")]
    assert probe_video(tmp_path / "d.%d.exr").num_frames == 2
    assert frames[0].sum() == 4 and frames[0][:2, :2].all() and frames[1][3].all() and frames[1].sum() == 4


def test_start_and_stop_select_frame_indices(tmp_path: Path) -> None:
    make_sequence(tmp_path, "s.%04d.png", range(1001, 1006), (2, 2, 3), "uint8")
    assert [f.index for f in read_frames(tmp_path / "s.%04d.png", start=1, stop=3)] == [1, 2]
    assert [f.pts for f in read_frames(tmp_path / "s.%04d.png", start=3, stop=99)] == [3, 4]
    with pytest.raises(InputError, match="has 5 frames, so start=5 is past the end"):
        read_frames(tmp_path / "s.%04d.png", start=5)
    with pytest.raises(UsageError, match="stop must be"):
        read_frames(tmp_path / "s.%04d.png", start=2, stop=1)


def test_fps_default_given_and_refused_for_a_video(tmp_path: Path) -> None:
    make_sequence(tmp_path, "s.%04d.png", [1, 2], (2, 2, 3), "uint8")
    assert probe_video(tmp_path / "s.%04d.png").fps == DEFAULT_SEQUENCE_FPS == 24
    info = probe_video(tmp_path / "s.%04d.png", fps="24000/1001")
    assert (info.fps, info.time_base) == (Fraction(24000, 1001), Fraction(1001, 24000))
    assert info.duration_s == pytest.approx(2 * 1001 / 24000)
    assert next(read_frames(tmp_path / "s.%04d.png", fps=25)).time_base == Fraction(1, 25)
    clip = write_test_clip(tmp_path / "clip.mp4", num_frames=2)
    with pytest.raises(UsageError, match="fps is for image sequences"):
        probe_video(clip, fps=25)
    with pytest.raises(UsageError, match="fps is for image sequences"):
        read_frames(clip, fps=25)
    with pytest.raises(UsageError, match="positive frame rate"):
        probe_video(tmp_path / "s.%04d.png", fps=0)


@pytest.mark.parametrize(
    ("given", "rate"),
    [(24, Fraction(24)), ("25", Fraction(25)), (23.976, Fraction(24000, 1001)), ("29.97", Fraction(30000, 1001)),
     (Fraction(48), Fraction(48)), ("24000/1001", Fraction(24000, 1001)), (12.5, Fraction(25, 2))],
)  # fmt: skip
def test_check_fps(given: object, rate: Fraction) -> None:
    assert check_fps(given) == rate  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -24, "fast", float("inf"), float("nan"), True, "1/0"])
def test_check_fps_refuses(bad: object) -> None:
    with pytest.raises(UsageError, match="positive frame rate"):
        check_fps(bad)  # type: ignore[arg-type]


def test_padding_is_part_of_the_pattern(tmp_path: Path) -> None:
    for name in ("a.0998.png", "a.0999.png", "a.1000.png", "a.12345.png", "a.999.png", "a.00007.png", "a.x.png"):
        (tmp_path / name).touch()
    # 999 and 00007 have another padding than ####; 12345 has more digits than the padding, so it belongs.
    with pytest.raises(InputError, match="frames 1001-12344 are missing between 998 and 12345"):
        find_sequence(tmp_path / "a.####.png")
    (tmp_path / "a.12345.png").unlink()
    found = find_sequence(tmp_path / "a.%04d.png")
    assert (found.first, found.count, found.path(2).name) == (998, 3, "a.1000.png")
    unpadded = find_sequence(tmp_path / "a.%d.png")  # %d: no leading zeros
    assert (unpadded.first, unpadded.count) == (999, 2)


def test_gaps_are_named(tmp_path: Path) -> None:
    make_sequence(tmp_path, "g.%04d.png", [1001, 1002, 1006, 1007, 1008, 1009, 1011], (2, 2, 3), "uint8")
    for call in (probe_video, count_frames, read_frames):
        with pytest.raises(InputError, match=r"frames 1003-1005, 1010 are missing between 1001 and 1011"):
            call(tmp_path / "g.%04d.png")


def test_no_matching_file_and_missing_folder(tmp_path: Path) -> None:
    (tmp_path / "shot.01001.exr").touch()
    with pytest.raises(InputError, match=r"no file matches.*shot\.01001\.exr has another padding"):
        probe_video(tmp_path / "shot.%04d.exr")
    with pytest.raises(InputError, match="no file matches"):
        count_frames(tmp_path / "other.####.exr")
    with pytest.raises(InputError, match="does not exist"):
        probe_video(tmp_path / "missing" / "shot.%04d.exr")


def test_mixed_resolution_names_the_first_differing_file(tmp_path: Path) -> None:
    make_sequence(tmp_path, "m.%04d.exr", [1, 2], (4, 6, 3), "half")
    make_sequence(tmp_path, "m.%04d.exr", [3, 4], (4, 5, 3), "half")
    with pytest.raises(InputError, match=r"m\.0003\.exr: is 5x4 .* but the first frame is 6x4"):
        probe_video(tmp_path / "m.%04d.exr")
    frames = read_frames(tmp_path / "m.%04d.exr")
    assert next(frames).index == 0 and next(frames).index == 1
    with pytest.raises(InputError, match=r"m\.0003\.exr: is 5x4"):
        next(frames)


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"shape": (4, 6, 4), "sample": "half"}, r"has channels R,G,B,A half but the first frame has R,G,B half"),
        ({"shape": (4, 6, 3), "sample": "float"}, r"has channels R,G,B float but the first frame has R,G,B half"),
    ],
)
def test_mixed_channel_layouts_or_types_are_refused(tmp_path: Path, second: dict, message: str) -> None:
    make_sequence(tmp_path, "c.%04d.exr", [10], (4, 6, 3), "half")
    make_sequence(tmp_path, "c.%04d.exr", [11], second["shape"], second["sample"])
    with pytest.raises(InputError, match=r"c\.0011\.exr: " + message):
        probe_video(tmp_path / "c.%04d.exr")


def test_mixed_dpx_depths_are_refused(tmp_path: Path) -> None:
    make_sequence(tmp_path, "p.%04d.dpx", [1], (2, 2, 3), "uint16", bits=10)
    make_sequence(tmp_path, "p.%04d.dpx", [2], (2, 2, 3), "uint16", bits=16)
    with pytest.raises(InputError, match=r"p\.0002\.dpx: has channels R,G,B uint16 but .* uint16 \(10-bit\)"):
        probe_video(tmp_path / "p.%04d.dpx")


def test_a_corrupt_header_is_named_at_probe(tmp_path: Path) -> None:
    make_sequence(tmp_path, "k.%04d.exr", [1, 2, 4], (2, 2, 3), "half")
    (tmp_path / "k.0003.exr").write_bytes(b"not an exr at all")
    with pytest.raises(InputError, match=r"k\.0003\.exr: not an image OpenImageIO can read .*re-render or replace"):
        probe_video(tmp_path / "k.%04d.exr")


def test_damaged_pixel_data_is_named_when_the_frame_is_read(tmp_path: Path) -> None:
    make_sequence(tmp_path, "t.%04d.exr", [1, 2], (64, 64, 3), "float")
    data = (tmp_path / "t.0002.exr").read_bytes()
    (tmp_path / "t.0002.exr").write_bytes(data[: len(data) // 2])
    frames = read_frames(tmp_path / "t.%04d.exr")
    next(frames)
    with pytest.raises(InputError, match=r"t\.0002\.exr: its pixel data cannot be read"):
        next(frames)


def test_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "k.0001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(InputError) as info:
        probe_video(tmp_path / "k.%04d.png")
    assert "\n" not in str(info.value) and "k.0001.png" in str(info.value)


def test_a_video_named_like_a_pattern_is_still_a_video(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "take#1.mp4", num_frames=2)
    assert probe_video(clip).codec == "h264" and count_frames(clip) == 2


def test_header_timecode_and_pixel_aspect(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2, 3), np.float16)
    path = write_file(tmp_path / "tc.1001.exr", pixels, "half", attrs={"PixelAspectRatio": 2.0})
    spec = oiio.ImageSpec(2, 2, 3, "half")
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (0x01023544, 0))  # 01:02:35:04, drop frame
    spec.attribute("PixelAspectRatio", 2.0)
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(pixels)
    out.close()
    info = probe_video(tmp_path / "tc.####.exr")
    assert info.timecode == "01:02:35;04" and info.sample_aspect_ratio == 2


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    make_sequence(tmp_path, "f.%04d.png", [1, 2], (2, 2, 3), "uint8")
    first = fingerprint_sequence(tmp_path / "f.%04d.png")
    assert fingerprint_sequence(tmp_path / "f.####.png") == first
    make_sequence(tmp_path, "f.%04d.png", [3], (2, 2, 3), "uint8")
    assert fingerprint_sequence(tmp_path / "f.%04d.png") != first


# Round trips


def copy_sequence(source: str | Path, output: str | Path, *, alpha: bool = True) -> list[Path]:
    """What the pipeline does with zero arguments: every frame read and written again, numbered as the source."""
    info = probe_video(source)
    writer = SequenceWriter(output, like=info)
    return [writer.write(f.index, f.image, alpha=f.alpha) for f in read_frames(source, alpha=alpha)]


def native(path: Path) -> tuple[Any, np.ndarray]:
    """The file's spec and its data window's pixels in the file's own sample type."""
    inp = oiio.ImageInput.open(str(path))
    spec = oiio.ImageSpec(inp.spec())
    pixels = inp.read_image(0, 0, 0, spec.nchannels, spec.format)
    inp.close()
    return spec, pixels


def attributes(spec: Any) -> dict[str, Any]:
    return {str(a.name): a.value for a in spec.extra_attribs}


def _exr_attrs() -> dict[str, object]:
    return {"compression": "piz", "owner": "vfx studio", "shot": "sh010", "comments": "plate v3", "capDate": "x"}


@pytest.mark.parametrize("sample", ["half", "float"])
def test_exr_round_trip_is_bit_exact_with_header_and_windows(tmp_path: Path, sample: str) -> None:
    shape = (5, 6, 4)
    written = make_sequence(
        tmp_path, "plate.%04d.exr", range(1001, 1004), shape, sample,
        data=(3, 2), display=(0, 0, 12, 9), attrs=_exr_attrs(),
    )  # fmt: skip
    for pixels in written:
        assert (pixels > 1).any() and (pixels < 0).any()  # scene-linear values outside [0, 1]
    out = copy_sequence(tmp_path / "plate.%04d.exr", tmp_path / "out" / "comp.####.exr")
    assert [p.name for p in out] == ["comp.1001.exr", "comp.1002.exr", "comp.1003.exr"]
    for n, pixels in zip(range(1001, 1004), written, strict=True):
        src_spec, src = native(tmp_path / f"plate.{n}.exr")
        out_spec, back = native(tmp_path / "out" / f"comp.{n}.exr")
        assert str(out_spec.format) == sample and out_spec.channelnames == ("R", "G", "B", "A")
        assert (out_spec.x, out_spec.y, out_spec.width, out_spec.height) == (3, 2, 6, 5)
        assert (out_spec.full_x, out_spec.full_y, out_spec.full_width, out_spec.full_height) == (0, 0, 12, 9)
        assert np.array_equal(back, src) and np.array_equal(back, pixels)
        assert attributes(out_spec) == attributes(src_spec)
        assert attributes(out_spec)["shot"] == "sh010" and attributes(out_spec)["compression"] == "piz"
    assert [f.image.tobytes() for f in read_frames(tmp_path / "out" / "comp.%04d.exr")] == [
        f.image.tobytes() for f in read_frames(tmp_path / "plate.%04d.exr")
    ]


def test_exr_keeps_mixed_channel_types(tmp_path: Path) -> None:
    path = tmp_path / "m.0001.exr"
    spec = oiio.ImageSpec(3, 2, 4, "half")
    spec.channelnames = ("R", "G", "B", "A")
    spec.alpha_channel = 3
    spec.channelformats = (oiio.TypeDesc("half"),) * 3 + (oiio.TypeDesc("float"),)
    pixels = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    pixels[:, :, :3] = pixels[:, :, :3].astype(np.float16)
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(pixels)
    out.close()
    (written,) = copy_sequence(tmp_path / "m.%04d.exr", tmp_path / "o.%04d.exr")
    out_spec, back = native(written)
    assert [str(t) for t in out_spec.channelformats] == ["half", "half", "half", "float"]
    assert np.array_equal(back, native(path)[1])


def test_lossy_exr_compression_becomes_zip_and_the_rest_is_kept(tmp_path: Path) -> None:
    make_sequence(tmp_path, "l.%04d.exr", [1], (16, 16, 3), "half", attrs={"compression": "dwaa", "shot": "a"})
    (written,) = copy_sequence(tmp_path / "l.%04d.exr", tmp_path / "o.%04d.exr")
    attrs = attributes(native(written)[0])
    assert attrs["compression"] == "zip" and attrs["shot"] == "a"


def test_a_frame_of_another_size_than_its_exr_source_is_refused(tmp_path: Path) -> None:
    make_sequence(tmp_path, "s.%04d.exr", [1], (4, 4, 3), "half")
    writer = SequenceWriter(tmp_path / "o.%04d.exr", like=probe_video(tmp_path / "s.%04d.exr"))
    with pytest.raises(ShapeError, match="source frame's display window is 4x4"):
        writer.write(0, np.zeros((2, 2, 3), np.float32))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_png_and_tiff_round_trips_are_bit_exact(tmp_path: Path, suffix: str, channels: int) -> None:
    written = make_sequence(tmp_path, f"s.%04d{suffix}", range(1001, 1004), (5, 7, channels), "uint16")
    out = copy_sequence(tmp_path / f"s.%04d{suffix}", tmp_path / "out" / f"o.%05d{suffix}")
    assert [p.name for p in out] == [f"o.0100{i}{suffix}" for i in (1, 2, 3)]
    info = probe_video(tmp_path / "out" / f"o.%05d{suffix}")
    assert (info.first_frame, info.bit_depth, info.has_alpha) == (1001, 16, channels == 4)
    for frame, pixels in zip(read_frames(tmp_path / "out" / f"o.%05d{suffix}", alpha=True), written, strict=True):
        assert frame.image.dtype == np.uint16
        np.testing.assert_array_equal(frame.image, pixels[:, :, :3])
        if channels == 4:
            np.testing.assert_array_equal(frame.alpha, pixels[:, :, 3])


def test_10_bit_dpx_round_trip_keeps_the_codes_and_the_depth(tmp_path: Path) -> None:
    codes = np.random.default_rng(3).integers(0, 1024, (4, 8, 3))
    full = ((codes << 6) | (codes >> 4)).astype(np.uint16)
    write_file(tmp_path / "p.86400.dpx", full, "uint16", bits=10)
    (written,) = copy_sequence(tmp_path / "p.%05d.dpx", tmp_path / "o.%05d.dpx")
    assert written.name == "o.86400.dpx"
    info = probe_video(tmp_path / "o.%05d.dpx")
    assert info.bit_depth == 10
    (frame,) = read_frames(tmp_path / "o.%05d.dpx")
    np.testing.assert_array_equal(frame.image >> 6, codes)


def test_png_to_exr_numbering_without_a_header_to_keep(tmp_path: Path) -> None:
    make_sequence(tmp_path, "s.%04d.png", [41, 42], (2, 2, 3), "uint16")
    out = copy_sequence(tmp_path / "s.%04d.png", tmp_path / "o.####.exr")
    assert [p.name for p in out] == ["o.0041.exr", "o.0042.exr"]
    assert probe_video(tmp_path / "o.####.exr").pix_fmt == "rgbf32le"
