"""Fixtures for the farm tests: tiny synthetic clips with numbered masks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vidharm.io import write_image
from vidharm.io._synth import write_test_clip


@pytest.fixture
def clip_with_masks(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """``clip_with_masks(num_frames=6, name="clip.mp4", **write_test_clip kwargs)`` -> (clip, mask folder)."""

    def make(num_frames: int = 6, width: int = 64, height: int = 48, name: str = "clip.mp4", **kwargs: object):
        clip = write_test_clip(tmp_path / name, num_frames=num_frames, width=width, height=height, **kwargs)
        folder = tmp_path / f"{Path(name).stem}_masks"
        folder.mkdir()
        for i in range(num_frames):
            mask = np.zeros((height, width), np.uint8)
            mask[height // 4 : 3 * height // 4, 4 + i : 4 + i + width // 3] = 255
            write_image(folder / f"{i:05d}.png", mask)
        return clip, folder

    return make
