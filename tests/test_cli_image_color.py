"""`vidharm image` with float images and colour management: an ACEScg EXR with --colorspace ACEScg keeps its
background bit for bit and its values above 1, and comes back a float EXR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from vidharm.cli import main
from vidharm.io import read_image, write_image

HEIGHT, WIDTH = 24, 32
ARGS = "0.2,-0.3,0.1,0.2,0,0"  # warmer, darker, more contrast, more saturated: every pixel of the box moves


def _box() -> np.ndarray:
    box = np.zeros((HEIGHT, WIDTH), bool)
    box[6:18, 8:24] = True
    return box


@pytest.fixture
def acescg(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A scene-linear ACEScg float EXR with values above 1 and below 0 inside and outside the box, and its mask."""
    rng = np.random.default_rng(3)
    image = rng.uniform(0.0, 3.0, (HEIGHT, WIDTH, 3)).astype(np.float32)
    image[0, 0] = [-0.1, 8.0, 0.5]  # background, outside [0, 1]
    image[10, 12] = [0.5, 16.0, 2.0]  # foreground highlight, far above the analysis white
    write_image(tmp_path / "comp.exr", image)
    write_image(tmp_path / "mask.png", _box().astype(np.uint8) * 255)
    return tmp_path / "comp.exr", tmp_path / "mask.png", image


def _channel_format(path: Path) -> str:
    spec = oiio.ImageInput.open(str(path)).spec()
    return str(spec.format)


@pytest.mark.parametrize("given", ["--args", "predicted"])
def test_acescg_exr_keeps_background_and_highlights(
    tmp_path: Path, acescg: tuple[Path, Path, np.ndarray], given: str
) -> None:
    comp, mask, image = acescg
    out = tmp_path / "out.exr"
    extra = ["--args", ARGS] if given == "--args" else []
    assert main(["image", str(comp), str(mask), "-o", str(out), "--colorspace", "ACEScg", "-q", *extra]) == 0
    result = read_image(out)
    assert result.dtype == np.float32 and _channel_format(out) == "float"
    box = _box()
    np.testing.assert_array_equal(result[~box], image[~box])  # bit-exact, 8.0 and -0.1 included
    assert np.isfinite(result).all()
    if given == "--args":
        assert np.abs(result[box] - image[box]).min() > 0  # every foreground pixel graded
        assert result[10, 12, 1] > 4.0  # the highlight is carried past the analysis white, not clipped to it


def test_float_exr_without_colour_management_is_code_values(
    tmp_path: Path, acescg: tuple[Path, Path, np.ndarray]
) -> None:
    comp, mask, image = acescg
    assert main(["image", str(comp), str(mask), "--args", ARGS, "-q"]) == 0
    out = tmp_path / "comp_harmonized.exr"  # the default output of an EXR is an EXR
    result = read_image(out)
    box = _box()
    np.testing.assert_array_equal(result[~box], image[~box])
    assert not np.array_equal(result[box], image[box]) and result[10, 12, 1] > 1.0


def test_managed_and_unmanaged_differ_in_the_foreground_only(
    tmp_path: Path, acescg: tuple[Path, Path, np.ndarray]
) -> None:
    comp, mask, _ = acescg
    a, b = tmp_path / "a.exr", tmp_path / "b.exr"
    assert main(["image", str(comp), str(mask), "-o", str(a), "--args", ARGS, "-q"]) == 0
    assert main(["image", str(comp), str(mask), "-o", str(b), "--args", ARGS, "--colorspace", "ACEScg", "-q"]) == 0
    box = _box()
    ra, rb = read_image(a), read_image(b)
    np.testing.assert_array_equal(ra[~box], rb[~box])
    assert np.abs(ra[box] - rb[box]).max() > 1e-3  # the filters act in another space


def test_identity_colorspace_gives_the_unmanaged_8_bit_result(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    write_image(tmp_path / "comp.png", rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    write_image(tmp_path / "mask.png", _box().astype(np.uint8) * 255)
    plain, managed = tmp_path / "plain.png", tmp_path / "managed.png"
    common = ["image", str(tmp_path / "comp.png"), str(tmp_path / "mask.png"), "-q"]
    assert main([*common, "-o", str(plain)]) == 0
    assert main([*common, "-o", str(managed), "--colorspace", "srgb_tx"]) == 0  # the analysis space itself
    np.testing.assert_array_equal(read_image(managed), read_image(plain))


def test_float_image_to_png_is_refused(
    tmp_path: Path, acescg: tuple[Path, Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    comp, mask, _ = acescg
    out = tmp_path / "out.png"
    assert main(["image", str(comp), str(mask), "-o", str(out), "--args", ARGS, "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "float32" in err and not out.exists()


def test_unknown_colorspace_is_a_usage_error(
    tmp_path: Path, acescg: tuple[Path, Path, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    comp, mask, _ = acescg
    out = tmp_path / "out.exr"
    assert main(["image", str(comp), str(mask), "-o", str(out), "--colorspace", "ACEScgg", "-q"]) == 2
    assert "ACEScg" in capsys.readouterr().err and not out.exists()
