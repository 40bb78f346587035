"""harmonize_image with colour management: the model and the statistics see the analysis space."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidharm.io import read_image, write_image
from vidharm.pipeline import ProcessConfig, analysis_frame, color_management, harmonize_image

HEIGHT, WIDTH = 24, 32


def _scene(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(5)
    image = rng.uniform(0.0, 2.0, (HEIGHT, WIDTH, 3)).astype(np.float32)
    image[6:18, 8:24] *= np.float32([1.6, 0.8, 0.5])  # a warm foreground on a neutral background
    box = np.zeros((HEIGHT, WIDTH), np.uint8)
    box[6:18, 8:24] = 255
    write_image(tmp_path / "comp.exr", image)
    write_image(tmp_path / "mask.png", box)
    return tmp_path / "comp.exr", tmp_path / "mask.png", image


def test_prediction_is_made_on_the_analysis_space_image(tmp_path: Path) -> None:
    comp, mask, image = _scene(tmp_path)
    managed = ProcessConfig(device="cpu", colorspace="ACEScg")
    seen = analysis_frame(image, color_management(managed))
    write_image(tmp_path / "seen.png", seen)  # 16-bit: what the model and the statistics see
    row = harmonize_image(comp, mask, None, managed)
    expected = harmonize_image(tmp_path / "seen.png", mask, None, ProcessConfig(device="cpu"))
    assert row.keys() == expected.keys()
    np.testing.assert_allclose(list(row.values()), list(expected.values()), atol=1e-6)
    unmanaged = harmonize_image(comp, mask, None, ProcessConfig(device="cpu"))
    assert max(abs(row[k] - unmanaged[k]) for k in row) > 1e-3  # code values would predict otherwise


def test_zero_arguments_give_the_image_back(tmp_path: Path) -> None:
    comp, mask, image = _scene(tmp_path)
    out = tmp_path / "out.exr"
    harmonize_image(comp, mask, out, ProcessConfig(device="cpu", colorspace="ACEScg"), args=[0.0] * 6)
    np.testing.assert_array_equal(read_image(out), image)
