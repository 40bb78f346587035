"""Image sequences on the command line: process/analyze/render with shot.%04d.png / shot.####.exr in and out,
--fps, numbering kept, EXR headers kept, and bad sequences refused before any frame is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from vidharm.cli import main
from vidharm.io import probe_video, read_frames, write_image
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import read_params

SIZE = (24, 32)
BOX = (slice(6, 18), slice(8, 24))


def _masks(folder: Path, n: int, first: int = 0) -> Path:
    """Masks numbered like the clip's frames: from ``first`` (a sequence's first file number, 0 for a video)."""
    folder.mkdir()
    for i in range(n):
        mask = np.zeros(SIZE, np.uint8)
        mask[BOX] = 255
        write_image(folder / f"{first + i:05d}.png", mask)
    return folder


def _png16_plate(folder: Path, first: int, n: int) -> list[np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        image = (rng.random((*SIZE, 3)) * 65535).astype(np.uint16)
        image[BOX] = (52000, 21000, 9000)  # a warm foreground on a random background
        write_image(folder / f"plate.{first + i:04d}.png", image)
        frames.append(image)
    return frames


def _exr_plate(folder: Path, first: int, n: int) -> list[np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(1)
    frames = []
    for i in range(n):
        image = (rng.random((*SIZE, 3)) * 3 - 0.5).astype(np.float16)  # scene-linear: above 1 and below 0
        spec = oiio.ImageSpec(SIZE[1], SIZE[0], 3, "half")
        spec.attribute("compression", "zip")
        spec.attribute("shot", "sh010")
        path = str(folder / f"plate.{first + i:04d}.exr")
        out = oiio.ImageOutput.create(path)
        out.open(path, spec)
        out.write_image(image)
        out.close()
        frames.append(image.astype(np.float32))
    return frames


def _background(image: np.ndarray) -> np.ndarray:
    keep = np.ones(SIZE, bool)
    keep[BOX] = False
    return image[keep]


def test_png16_sequence_in_and_out_keeps_depth_numbering_and_background(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plate = _png16_plate(tmp_path / "plate", 1001, 4)
    masks = _masks(tmp_path / "masks", 4, 1001)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "comp.####.png"
    params = tmp_path / "p.json"
    argv = ["process", str(tmp_path / "plate" / "plate.%04d.png"), str(masks), "-o", str(out), "--fps", "25"]
    assert main([*argv, "--params-out", str(params)]) == 0
    assert "carries no frame rate" not in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"comp.{n}.png" for n in range(1001, 1005)]
    info = probe_video(tmp_path / "out" / "comp.%04d.png")
    assert (info.first_frame, info.bit_depth, info.num_frames) == (1001, 16, 4)
    frames = list(read_frames(tmp_path / "out" / "comp.####.png"))
    for frame, source in zip(frames, plate, strict=True):
        assert frame.image.dtype == np.uint16
        np.testing.assert_array_equal(_background(frame.image), _background(source))
    assert any(not np.array_equal(f.image[BOX], s[BOX]) for f, s in zip(frames, plate, strict=True))
    assert read_params(params).header["fps"] == "25"


def test_without_fps_the_default_is_stated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _png16_plate(tmp_path / "plate", 7, 2)
    masks = _masks(tmp_path / "masks", 2, 7)
    params = tmp_path / "p.json"
    out = tmp_path / "o.%04d.png"
    assert main(["process", str(tmp_path / "plate" / "plate.%04d.png"), str(masks), "-o", str(out),
                 "--params-out", str(params)]) == 0  # fmt: skip
    assert "using 24 fps (set it with --fps)" in capsys.readouterr().err
    assert read_params(params).header["fps"] == "24"
    assert sorted(p.name for p in tmp_path.glob("o.*.png")) == ["o.0007.png", "o.0008.png"]


def test_exr_sequence_end_to_end_keeps_header_and_values(tmp_path: Path) -> None:
    plate = _exr_plate(tmp_path / "plate", 1001, 3)
    masks = _masks(tmp_path / "masks", 3, 1001)
    argv = ["process", str(tmp_path / "plate" / "plate.%04d.exr"), str(masks), "-o", str(tmp_path / "out.####.exr")]
    assert main([*argv, "--fps", "24", "-q"]) == 0
    for n, source in zip(range(1001, 1004), plate, strict=True):
        inp = oiio.ImageInput.open(str(tmp_path / f"out.{n}.exr"))
        spec = inp.spec()
        image = inp.read_image(0, 0, 0, 3, "float")
        inp.close()
        assert str(spec.format) == "half" and spec.get_string_attribute("shot") == "sh010"
        np.testing.assert_array_equal(_background(image), _background(source))  # values > 1 and < 0 kept exactly
        assert np.isfinite(image).all()


def test_analyze_smooth_render_a_chunk_writes_the_source_numbers(tmp_path: Path) -> None:
    _png16_plate(tmp_path / "plate", 1001, 4)
    masks = _masks(tmp_path / "masks", 4, 1001)
    clip = str(tmp_path / "plate" / "plate.%04d.png")
    assert main(["analyze", clip, str(masks), "-o", str(tmp_path / "work"), "--fps", "25", "-q"]) == 0
    assert main(["smooth", str(tmp_path / "work"), "-o", str(tmp_path / "p.json")]) == 0
    out = tmp_path / "seq" / "c.%04d.png"
    argv = ["render", clip, str(masks), str(tmp_path / "p.json"), "-o", str(out), "--frames", "1002-1003", "-q"]
    assert main(argv) == 0  # --frames takes the source's numbers
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["c.1002.png", "c.1003.png"]


def test_gaps_are_refused_before_anything_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _png16_plate(tmp_path / "plate", 1001, 6)
    (tmp_path / "plate" / "plate.1003.png").unlink()
    (tmp_path / "plate" / "plate.1004.png").unlink()
    masks = _masks(tmp_path / "masks", 6, 1001)
    (tmp_path / "out").mkdir()
    argv = [
        "process",
        str(tmp_path / "plate" / "plate.%04d.png"),
        str(masks),
        "-o",
        str(tmp_path / "out" / "o.%04d.png"),
    ]
    assert main([*argv, "-q"]) == 3
    err = capsys.readouterr().err
    assert "frames 1003-1004 are missing between 1001 and 1006" in err and err.count("\n") == 1
    assert list((tmp_path / "out").iterdir()) == []


def test_mixed_resolution_is_refused_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _png16_plate(tmp_path / "plate", 1, 3)
    write_image(tmp_path / "plate" / "plate.0002.png", np.zeros((12, 16, 3), np.uint16))
    masks = _masks(tmp_path / "masks", 3, 1)
    (tmp_path / "out").mkdir()
    argv = [
        "process",
        str(tmp_path / "plate" / "plate.%04d.png"),
        str(masks),
        "-o",
        str(tmp_path / "out" / "o.%04d.png"),
    ]
    assert main([*argv, "-q"]) == 3
    assert "plate.0002.png: is 16x12" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_fps_for_a_video_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = write_test_clip(tmp_path / "clip.mp4", num_frames=2)
    masks = _masks(tmp_path / "masks", 2)
    assert main(["process", str(clip), str(masks), "-o", str(tmp_path / "o.mp4"), "--fps", "25", "-q"]) == 2
    assert "a video has its own frame rate" in capsys.readouterr().err


def test_a_bad_fps_value_is_refused_by_the_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["process", "a.%04d.png", "masks", "--fps", "fast"])
    assert exit_info.value.code == 2
    assert "positive frame rate" in capsys.readouterr().err
