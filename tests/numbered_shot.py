"""A small PNG image sequence numbered from 1001, with mattes numbered like it, for tests of source frame numbers.

Import it as ``from numbered_shot import ...`` (tests/ is on sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidharm.io import write_image
from vidharm.pipeline import ParamsTrack, ProcessConfig, analyze, open_clip

FIRST = 1001
H, W = 24, 32


def box(i: int) -> tuple[slice, slice]:
    """Where the foreground of position ``i`` (file ``FIRST + i``) is."""
    return slice(6, 18), slice(4 + 2 * i, 14 + 2 * i)


def write_numbered_shot(folder: Path, *, first: int = FIRST, num_frames: int = 6) -> tuple[Path, Path]:
    """``folder/plate/plate.<first>.png`` .. (a warm box moving right over a textured plate whose brightness
    changes per frame) and ``folder/mattes/matte.<first>.png`` ..; returns the pattern and the matte folder."""
    (folder / "plate").mkdir(parents=True)
    (folder / "mattes").mkdir()
    rng = np.random.default_rng(7)
    background = (rng.random((H, W, 3)) * 60 + 70).astype(np.uint8)
    for i in range(num_frames):
        plate = background + np.uint8(2 * i)
        plate[box(i)] = (200, 90, 40)
        matte = np.zeros((H, W), np.uint8)
        matte[box(i)] = 255
        write_image(folder / "plate" / f"plate.{first + i}.png", plate)
        write_image(folder / "mattes" / f"matte.{first + i}.png", matte)
    return folder / "plate" / "plate.%04d.png", folder / "mattes"


def analyze_numbered_shot(clip: Path, mattes: Path, frames: range | None = None) -> ParamsTrack:
    """The analytic (``stats``) model's sidecar of ``frames`` (source numbers; None for all)."""
    return analyze(open_clip(clip, mattes, frames), ProcessConfig(model="stats", device="cpu"))
