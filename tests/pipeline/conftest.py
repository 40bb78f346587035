"""Fixtures for pipeline tests: tiny synthetic clips with masks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.io._synth import write_test_clip


def write_masks(folder: Path, num_frames: int, width: int, height: int, *, start: int = 0) -> Path:
    """A moving soft-edged rectangle, one PNG per frame (00000.png = frame 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + num_frames):
        mask = np.zeros((height, width), np.uint8)
        x0 = 4 + i
        mask[height // 4 : 3 * height // 4, x0 : x0 + width // 3] = 255
        mask = cv2.GaussianBlur(mask, (5, 5), 1.0)
        cv2.imwrite(str(folder / f"{i:05d}.png"), mask)
    return folder


@pytest.fixture
def clip_with_masks(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """``clip_with_masks(num_frames=8, **write_test_clip kwargs)`` -> (clip, mask folder)."""

    def make(num_frames: int = 8, width: int = 64, height: int = 48, name: str = "clip.mp4", **kwargs: object):
        clip = write_test_clip(tmp_path / name, num_frames=num_frames, width=width, height=height, **kwargs)
        masks = write_masks(tmp_path / f"{Path(name).stem}_masks", num_frames, width, height)
        return clip, masks

    return make
