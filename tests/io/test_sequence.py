"""Image-sequence output: patterns, native bit depth, EXR/DPX/alpha, source numbering, skipping finished frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import ShapeError, UsageError
from vidharm.io import SequenceWriter, VideoInfo, is_sequence_pattern, parse_sequence_pattern, probe_video, read_image
from vidharm.io._oiio import read_pixels


@pytest.mark.parametrize(
    ("pattern", "frame", "name"),
    [
        ("out/frame.%05d.png", 12, "frame.00012.png"),
        ("out/frame.%d.png", 12, "frame.12.png"),
        ("out/frame.####.exr", 7, "frame.0007.exr"),
        ("out/f_#.tif", 1234, "f_1234.tif"),  # more digits than the padding: the number is never cut
        ("out/%03d.jpg", 5, "005.jpg"),
        ("out/plate.%05d.dpx", 86400, "plate.86400.dpx"),
    ],
)
def test_pattern_names_files_by_source_frame(pattern: str, frame: int, name: str) -> None:
    assert is_sequence_pattern(pattern)
    parsed = parse_sequence_pattern(pattern)
    assert parsed.path(frame) == Path("out") / name


def test_plain_video_paths_are_not_patterns() -> None:
    assert not is_sequence_pattern("out/clip.mp4")
    assert not is_sequence_pattern("out%05d/clip.mp4")  # a field in the folder is not a sequence


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("out/frame.png", "exactly one frame number field"),
        ("out/f.%04d.%04d.png", "exactly one frame number field"),
        ("out/f.##.%04d.png", "exactly one frame number field"),
        ("out%02d/f.%04d.png", "in the file name, not the folder"),
        ("out/f.%04d.mp4", "unsupported image-sequence extension"),
        ("out/f.%04d", "unsupported image-sequence extension"),
    ],
)
def test_bad_patterns_are_refused_with_a_reason(pattern: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_sequence_pattern(pattern)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_keeps_the_frames_bit_depth(tmp_path: Path, dtype: type) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, (5, 7, 3), endpoint=True).astype(dtype)
    writer = SequenceWriter(tmp_path / "seq" / "f.%04d.png")  # the folder is created
    path = writer.write(3, image)
    assert path == tmp_path / "seq" / "f.0003.png"
    back = read_image(path)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, image)
    assert [p.name for p in (tmp_path / "seq").iterdir()] == ["f.0003.png"]  # no temp file left


def test_exr_holds_code_values_scaled_to_one(tmp_path: Path) -> None:
    image = np.array([[[0, 1, 65535], [32768, 12345, 7]]], np.uint16)
    path = SequenceWriter(tmp_path / "f.####.exr").write(0, image)
    pixels, _, layout = read_pixels(path)
    assert layout.channel_types == ("float",) * 3 and pixels.dtype == np.float32
    np.testing.assert_array_equal(np.round(pixels * 65535).astype(np.uint16), image)  # exact for 16-bit levels
    eight = np.array([[[0, 128, 255]]], np.uint8)
    pixels = read_pixels(SequenceWriter(tmp_path / "g.####.exr").write(0, eight))[0]
    np.testing.assert_allclose(pixels, eight / 255.0, rtol=0, atol=1e-7)


@pytest.mark.parametrize(("dtype", "sample"), [(np.float16, "half"), (np.float32, "float")])
def test_exr_keeps_float_frames_and_their_precision(tmp_path: Path, dtype: type, sample: str) -> None:
    image = np.array([[[-2.5, 0.0, 1.0], [1e4, 0.1, -1e-3]]], dtype)  # scene-linear: beyond [0, 1] both ways
    path = SequenceWriter(tmp_path / "f.####.exr").write(3, image)
    back, _, layout = read_pixels(path)
    assert layout.channel_types == (sample,) * 3
    np.testing.assert_array_equal(back, image.astype(np.float32))


def test_jpeg_refuses_16_bit_frames(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="uint8"):
        SequenceWriter(tmp_path / "f.%04d.jpg").write(0, np.zeros((2, 2, 3), np.uint16))


def test_pending_skips_finished_frames_unless_forced(tmp_path: Path) -> None:
    pattern = tmp_path / "f.%03d.png"
    SequenceWriter(pattern).write(1, np.zeros((2, 2, 3), np.uint8))
    assert SequenceWriter(pattern).pending(range(3)) == [0, 2]
    assert SequenceWriter(pattern, force=True).pending(range(3)) == [0, 1, 2]


def test_remove_stale_temps_only_touches_the_given_frames(tmp_path: Path) -> None:
    writer = SequenceWriter(tmp_path / "f.%03d.png")
    mine = tmp_path / ".f.001.tmp-0123abcd.png"  # what a killed run leaves (atomic_path's temp name)
    other = tmp_path / ".f.007.tmp-0123abcd.png"  # another task's frame: not ours to delete
    unrelated = tmp_path / "notes.txt"
    for p in (mine, other, unrelated):
        p.write_text("x")
    assert writer.remove_stale_temps([0, 1, 2]) == [mine]
    assert not mine.exists() and other.exists() and unrelated.exists()


class _HalfWritten:
    """Stands in for OpenCV's encoded buffer: writing it writes half a file, then the run is interrupted."""

    def tofile(self, path: object) -> None:
        Path(str(path)).write_bytes(b"half a png")
        raise KeyboardInterrupt


def test_an_interrupted_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidharm.io._images as images

    writer = SequenceWriter(tmp_path / "f.%03d.png")
    monkeypatch.setattr(images.cv2, "imencode", lambda ext, image: (True, _HalfWritten()))
    with pytest.raises(KeyboardInterrupt):
        writer.write(4, np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_png_refuses_float_frames(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="float32"):
        SequenceWriter(tmp_path / "f.%04d.png").write(0, np.zeros((2, 2, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def _info(path: Path, first_frame: int) -> VideoInfo:
    from fractions import Fraction

    from vidharm.io import ColorTags

    tags = ColorTags(None, None, "gbr", "pc")
    return VideoInfo(path, 2, 2, Fraction(24), Fraction(1, 24), 3, None, "png", "rgb24", 8, False, tags, False, 0,
                     first_frame=first_frame)  # fmt: skip


def test_numbering_follows_the_source(tmp_path: Path) -> None:
    writer = SequenceWriter(tmp_path / "out" / "o.####.png", like=_info(tmp_path / "clip.mp4", 1001))
    assert writer.write(0, np.zeros((2, 2, 3), np.uint8)).name == "o.1001.png"
    assert writer.path(2).name == "o.1003.png"
    assert writer.pending(range(3)) == [1, 2]  # frame indices, as the pipeline counts them
    assert SequenceWriter(tmp_path / "v" / "o.####.png").path(0).name == "o.0000.png"  # no source: from 0


def test_refuses_to_overwrite_the_source_frames(tmp_path: Path) -> None:
    for n in (7, 8):
        SequenceWriter(tmp_path / "s.%04d.png").write(n, np.zeros((2, 2, 3), np.uint8))
    info = probe_video(tmp_path / "s.%04d.png")
    with pytest.raises(UsageError, match="overwrite the source"):
        SequenceWriter(tmp_path / "s.####.png", like=info)  # another spelling of the same files


@pytest.mark.parametrize("suffix", [".png", ".tif", ".exr", ".dpx"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_alpha_is_written_as_a_fourth_channel(tmp_path: Path, suffix: str, dtype: type) -> None:
    rng = np.random.default_rng(1)
    peak = np.iinfo(dtype).max
    image = rng.integers(0, peak, (3, 5, 3), endpoint=True).astype(dtype)
    alpha = rng.integers(0, peak, (3, 5), endpoint=True).astype(dtype)
    path = SequenceWriter(tmp_path / f"f.%04d{suffix}").write(0, image, alpha=alpha)
    back, back_alpha, layout = read_pixels(path, alpha=True)
    assert layout.alpha is not None and back_alpha is not None
    if suffix == ".exr":  # integer frames become float code values
        back, back_alpha = np.round(back * peak).astype(dtype), np.round(back_alpha * peak).astype(dtype)
    np.testing.assert_array_equal(back, image)
    np.testing.assert_array_equal(back_alpha, alpha)
    rgba = np.concatenate([image, alpha[:, :, None]], axis=2)  # an RGBA frame is the same as image + alpha
    again = SequenceWriter(tmp_path / f"g.%04d{suffix}").write(0, rgba)
    assert np.array_equal(read_pixels(again, alpha=True)[1], read_pixels(path, alpha=True)[1])


def test_alpha_must_match_the_image(tmp_path: Path) -> None:
    writer = SequenceWriter(tmp_path / "f.%04d.png")
    with pytest.raises(ShapeError, match="alpha"):
        writer.write(0, np.zeros((2, 2, 3), np.uint16), alpha=np.zeros((2, 2), np.uint8))
    with pytest.raises(ShapeError, match="alpha"):
        SequenceWriter(tmp_path / "f.%04d.exr").write(0, np.zeros((2, 2, 3), np.float32), alpha=np.zeros((3, 2)))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_dpx_keeps_the_frames_depth(tmp_path: Path, dtype: type) -> None:
    image = np.random.default_rng(2).integers(0, np.iinfo(dtype).max, (4, 6, 3), endpoint=True).astype(dtype)
    back, _, layout = read_pixels(SequenceWriter(tmp_path / "p.%05d.dpx").write(86400, image))
    assert layout.format_name == "dpx" and layout.bit_depth == np.iinfo(dtype).bits
    np.testing.assert_array_equal(back, image)


def test_dpx_refuses_float_frames(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="write .exr for float"):
        SequenceWriter(tmp_path / "p.%05d.dpx").write(0, np.zeros((2, 2, 3), np.float32))


def test_float_tiff_goes_through_openimageio(tmp_path: Path) -> None:
    image = np.array([[[-0.25, 0.5, 3.0]]], np.float32)
    back, _, layout = read_pixels(SequenceWriter(tmp_path / "f.%04d.tif").write(0, image))
    assert layout.channel_types == ("float",) * 3
    np.testing.assert_array_equal(back, image)


def test_an_interrupted_exr_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidharm.io._oiio as oiio_module

    def interrupted(path: Path, spec: object, pixels: np.ndarray) -> None:
        with oiio_module.atomic_path(path) as temp:
            temp.write_bytes(b"half an exr")
            raise KeyboardInterrupt

    monkeypatch.setattr(oiio_module, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        SequenceWriter(tmp_path / "f.%04d.exr").write(0, np.zeros((2, 2, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bits", [10, 12])
def test_10_and_12_bit_dpx_rounds_to_the_nearest_code(tmp_path: Path, bits: int) -> None:
    from vidharm.io._oiio import write_oiio

    levels = np.arange(0, 65536, 7, dtype=np.uint16)
    image = np.repeat(levels[None, :, None], 3, axis=2)
    write_oiio(tmp_path / "a.dpx", image, bits=bits)
    back, _, layout = read_pixels(tmp_path / "a.dpx")
    assert layout.bit_depth == bits
    codes = back[0, :, 0].astype(np.int64) >> (16 - bits)
    expected = np.round(levels.astype(np.int64) * ((1 << bits) - 1) / 65535).astype(np.int64)
    np.testing.assert_array_equal(codes, expected)
