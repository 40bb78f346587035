"""Image-sequence output: pattern parsing, native bit depth, EXR, skipping finished frames, stale temp files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import UsageError
from vidharm.io import SequenceWriter, is_sequence_pattern, parse_sequence_pattern, read_image
from vidharm.io import _sequence as sequence


@pytest.mark.parametrize(
    ("pattern", "frame", "name"),
    [
        ("out/frame.%05d.png", 12, "frame.00012.png"),
        ("out/frame.%d.png", 12, "frame.12.png"),
        ("out/frame.####.exr", 7, "frame.0007.exr"),
        ("out/f_#.tif", 1234, "f_1234.tif"),  # more digits than the padding: the number is never cut
        ("out/%03d.jpg", 5, "005.jpg"),
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
    if sequence._exr_backend() != "openexr":
        pytest.skip("the OpenEXR package is not installed (pip install OpenEXR)")
    import OpenEXR

    image = np.array([[[0, 1, 65535], [32768, 12345, 7]]], np.uint16)
    path = SequenceWriter(tmp_path / "f.####.exr").write(0, image)
    with OpenEXR.File(str(path)) as exr:
        pixels = exr.channels()["RGB"].pixels
    assert pixels.dtype == np.float32
    np.testing.assert_array_equal(np.round(pixels * 65535).astype(np.uint16), image)  # exact for 16-bit levels
    eight = np.array([[[0, 128, 255]]], np.uint8)
    with OpenEXR.File(str(SequenceWriter(tmp_path / "g.####.exr").write(0, eight))) as exr:
        np.testing.assert_allclose(exr.channels()["RGB"].pixels, eight / 255.0, rtol=0, atol=1e-7)


def test_exr_without_a_library_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sequence, "_exr_backend", lambda: None)
    with pytest.raises(UsageError, match="EXR output needs the OpenEXR package"):
        SequenceWriter(tmp_path / "f.%04d.exr")


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
