"""Fixtures for the training tests: tiny photo folders written on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidharm.io import write_image


def write_photo_folder(root: Path, count: int = 6, size: int = 32, manifest: str | None = None) -> Path:
    """A photo folder with ``count`` random images and centred square masks."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(count):
        write_image(root / "images" / f"{i:05d}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
        write_image(root / "masks" / f"{i:05d}.png", mask)
    if manifest is not None:
        (root / "manifest.csv").write_text(manifest)
    return root


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return write_photo_folder(tmp_path / "photos")


@pytest.fixture
def make_photos() -> object:
    """The folder writer, for tests that need another size or a manifest."""
    return write_photo_folder
