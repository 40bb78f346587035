"""Keyframe folders numbered by source frame: propagation on an image sequence that starts at 1001 (8-bit and
scene-linear EXR), chunk invariance, and write_masks naming files by source number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import MaskError
from vidharm.io import VideoFrame, probe_video, write_image
from vidharm.io._oiio import write_exr
from vidharm.masks import ClipAlpha, MaskFolder, PropagatedMasks, write_masks

H, W, N, FIRST = 40, 56, 8, 1001


def _frame(i: int) -> np.ndarray:
    """A still textured background with a textured square moving 2 px a frame, as float in [0, 1]."""
    rng = np.random.default_rng(5)
    image = rng.random((H, W, 3)) * 0.4 + 0.3
    image[10:26, 8 + 2 * i : 24 + 2 * i] = rng.random((16, 16, 3)) * 0.2 + np.array([0.8, 0.3, 0.1])
    return image


def _key(i: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[10:26, 8 + 2 * i : 24 + 2 * i] = 255
    return mask


@pytest.fixture(params=["png", "exr"])
def sequence(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, MaskFolder]:
    """A plate numbered 1001.. (8-bit PNG, or float EXR with values above 1) and keyframes 1001 and 1005."""
    (tmp_path / "plate").mkdir()
    (tmp_path / "keys").mkdir()
    for i in range(N):
        path = tmp_path / "plate" / f"p.{FIRST + i}.{request.param}"
        if request.param == "png":
            write_image(path, np.rint(_frame(i) * 255).astype(np.uint8))
        else:
            write_exr(path, (_frame(i) ** 2.2 * 1.5).astype(np.float32))  # scene-linear, highlights above 1
    for n in (1001, 1005):
        write_image(tmp_path / "keys" / f"matte.{n}.png", _key(n - FIRST))
    return tmp_path / "plate" / f"p.%04d.{request.param}", MaskFolder(tmp_path / "keys", first_frame=FIRST)


def test_keyframes_numbered_like_the_plate_propagate_and_any_chunking_agrees(
    sequence: tuple[Path, MaskFolder],
) -> None:
    clip, keys = sequence
    masks = PropagatedMasks(keys, clip, N)
    assert masks.keyframes == [1001, 1005]
    whole = list(masks.iter_masks(range(N), W, H))
    assert len(whole) == N
    np.testing.assert_array_equal(whole[0], _key(0) / np.float32(255))  # position 0 is keyframe 1001, exactly
    np.testing.assert_array_equal(whole[4], _key(4) / np.float32(255))  # position 4 is keyframe 1005
    inside = [float(m[10:26, 8 + 2 * i : 24 + 2 * i].mean()) for i, m in enumerate(whole)]
    assert min(inside) > 0.5  # each propagated mask follows the square (float EXR frames too)
    parts = [m for r in (range(0, 3), range(3, 6), range(6, N)) for m in masks.iter_masks(r, W, H)]
    for a, b in zip(parts, whole, strict=True):
        np.testing.assert_array_equal(a, b)


def test_write_masks_names_files_by_source_number_and_reads_back(
    sequence: tuple[Path, MaskFolder], tmp_path: Path
) -> None:
    clip, keys = sequence
    out = write_masks(PropagatedMasks(keys, clip, N), range(2, 5), W, H, tmp_path / "out", first_frame=FIRST)
    assert sorted(p.name for p in out.iterdir()) == ["01003.png", "01004.png", "01005.png"]
    again = MaskFolder(out, first_frame=FIRST)
    np.testing.assert_allclose(next(again.iter_masks(range(4, 5), W, H)), _key(4) / 255.0, atol=1e-7)


def test_clip_alpha_names_the_source_frame_in_messages(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    for n in (1001, 1002):
        write_image(tmp_path / "s" / f"a.{n}.png", np.full((4, 6, 4), 255, np.uint8))
    source = ClipAlpha(tmp_path / "s" / "a.%04d.png")
    assert probe_video(tmp_path / "s" / "a.%04d.png").first_frame == 1001
    frame = VideoFrame(1, 1, source.info.time_base, np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(MaskError, match="frame 1002 was decoded without its alpha"):
        source.mask_of(frame, 6, 4)
