"""The command line with colour management: --colorspace and --ocio on process, render and export (issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.cli import main
from vidharm.io import read_frames
from vidharm.io._synth import write_test_clip

HEIGHT, WIDTH = 32, 40


def _box() -> np.ndarray:
    box = np.zeros((HEIGHT, WIDTH), bool)
    box[8:24, 10:30] = True
    return box


def _write_exr(path: Path, image: np.ndarray) -> None:
    import OpenImageIO as oiio

    out = oiio.ImageOutput.create(str(path))
    assert out is not None, oiio.geterror()
    out.open(str(path), oiio.ImageSpec(image.shape[1], image.shape[0], 3, "float"))
    out.write_image(np.ascontiguousarray(image, dtype=np.float32))
    out.close()


def _read_exr(path: Path) -> np.ndarray:
    import OpenImageIO as oiio

    return np.asarray(oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT))


def _masks(folder: Path, count: int, first: int = 0) -> Path:
    """Masks numbered like the clip's frames: from ``first`` (a sequence's first file number, 0 for a video)."""
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{first + i:05d}.png"), _box().astype(np.uint8) * 255)
    return folder


@pytest.fixture
def exr_shot(tmp_path: Path) -> tuple[Path, Path, list[np.ndarray]]:
    """Three scene-linear ACEScg frames numbered from 1001, with values above 1 and below 0, and their masks."""
    rng = np.random.default_rng(0)
    (tmp_path / "plate").mkdir()
    frames = []
    for f in range(1001, 1004):
        image = rng.uniform(0.0, 4.0, (HEIGHT, WIDTH, 3)).astype(np.float32)
        image[0, 0] = [-0.1, 8.0, 0.5]  # background, outside [0, 1]
        image[12, 12] = [-0.02, 16.0, 0.25]  # foreground, outside [0, 1]
        _write_exr(tmp_path / "plate" / f"shot.{f:04d}.exr", image)
        frames.append(image)
    return tmp_path / "plate" / "shot.%04d.exr", _masks(tmp_path / "masks", 3, 1001), frames


def test_process_exr_sequence_in_acescg(tmp_path: Path, exr_shot: tuple[Path, Path, list[np.ndarray]]) -> None:
    plate, masks, frames = exr_shot
    out = tmp_path / "out" / "shot.%04d.exr"
    params = tmp_path / "params.json"
    code = main(
        ["process", str(plate), str(masks), "-o", str(out), "--colorspace", "ACEScg", "--params-out", str(params), "-q"]
    )
    assert code == 0
    header = json.loads(params.read_text())["header"]
    assert header["color"]["colorspace"] == "ACEScg"
    assert header["color"]["analysis_space"] == "sRGB Encoded Rec.709 (sRGB)"
    box = _box()
    for f, image in zip(range(1001, 1004), frames, strict=True):
        result = _read_exr(tmp_path / "out" / f"shot.{f:04d}.exr")
        assert result.dtype == np.float32 and np.isfinite(result).all()
        np.testing.assert_array_equal(result[~box], image[~box])  # background bit-exact, 8.0 and -0.1 included
        assert not np.array_equal(result[box], image[box])
        assert result[12, 12, 1] > 4.0  # the highlight above the analysis white is carried, not clipped


def test_render_zero_arguments_gives_the_plate_back(
    tmp_path: Path, exr_shot: tuple[Path, Path, list[np.ndarray]]
) -> None:
    plate, masks, frames = exr_shot
    params = tmp_path / "params.json"
    assert main(["analyze", str(plate), str(masks), "-o", str(params), "--colorspace", "ACEScg", "-q"]) == 0
    data = json.loads(params.read_text())
    for row in data["frames"]:
        row["raw"] = [0.0] * 6
    params.write_text(json.dumps(data))
    out = tmp_path / "zero" / "shot.####.exr"
    # The colour space comes from the parameter file.
    assert main(["render", str(plate), str(masks), str(params), "-o", str(out), "-q"]) == 0
    for f, image in zip(range(1001, 1004), frames, strict=True):
        result = _read_exr(tmp_path / "zero" / f"shot.{f:04d}.exr")
        assert np.abs(result - image).max() <= 1e-5 * max(1.0, float(np.abs(image).max()))


def test_process_16bit_video_in_acescct_keeps_16_bits(tmp_path: Path) -> None:
    clip = write_test_clip(
        tmp_path / "deep.mkv", num_frames=3, width=WIDTH, height=HEIGHT, codec="ffv1", pix_fmt="gbrp16le", color=None
    )
    masks = _masks(tmp_path / "masks", 3)
    out = tmp_path / "out.mkv"
    assert (
        main(["process", str(clip), str(masks), "-o", str(out), "--codec", "ffv1", "--colorspace", "ACEScct", "-q"])
        == 0
    )
    box = _box()
    for a, b in zip(read_frames(clip), read_frames(out), strict=True):
        assert b.image.dtype == np.uint16
        np.testing.assert_array_equal(a.image[~box], b.image[~box])
        assert (b.image[box] % 257 != 0).any()


def test_bad_colour_input_is_refused_before_anything_is_written(
    tmp_path: Path, exr_shot: tuple[Path, Path, list[np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    plate, masks, _ = exr_shot
    out = tmp_path / "out" / "shot.%04d.exr"
    assert main(["process", str(plate), str(masks), "-o", str(out), "--colorspace", "ACEScgg", "-q"]) == 2
    err = capsys.readouterr().err
    assert "'ACEScgg' is not in the OCIO config" in err and "'ACEScg'" in err and err.count("\n") == 1
    missing = tmp_path / "no" / "config.ocio"
    args = ["--colorspace", "ACEScg", "--ocio", str(missing), "-q"]
    assert main(["process", str(plate), str(masks), "-o", str(out), *args]) == 3
    assert str(missing) in capsys.readouterr().err
    assert main(["process", str(plate), str(masks), "-o", str(out), "--ocio", str(missing), "-q"]) == 2
    assert "--colorspace" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.exr"))
    # A render must use the colour space the parameters were analysed in.
    params = tmp_path / "params.json"
    assert main(["analyze", str(plate), str(masks), "-o", str(params), "--colorspace", "ACEScg", "-q"]) == 0
    capsys.readouterr()
    code = main(["render", str(plate), str(masks), str(params), "-o", str(out), "--colorspace", "ACEScct", "-q"])
    assert code == 2
    assert "analysed in colour space 'ACEScg'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.exr"))


def test_export_lut_of_a_colour_managed_sidecar_names_the_ocio_wrap(
    tmp_path: Path, exr_shot: tuple[Path, Path, list[np.ndarray]]
) -> None:
    plate, masks, _ = exr_shot
    params = tmp_path / "params.json"
    assert main(["analyze", str(plate), str(masks), "-o", str(params), "--colorspace", "ACEScg", "-q"]) == 0
    frame = 1001 + json.loads(params.read_text())["frames"][0]["frame"]  # --frame takes source numbers
    cube = tmp_path / "f.cube"
    code = main(
        ["export", "lut", str(plate), str(masks), "--params", str(params), "--frame", str(frame), "-o", str(cube)]
    )
    assert code == 0
    text = cube.read_text()
    assert "ColorSpaceTransform 'ACEScg' -> 'sRGB Encoded Rec.709 (sRGB)'" in text
