from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.errors import InputError, MaskError
from vidharm.masks import MaskFolder, fit_mask, open_masks, to_alpha


def _write(path: Path, array: np.ndarray) -> None:
    assert cv2.imwrite(str(path), array)


def test_folder_numbers_files_by_last_digits(tmp_path: Path) -> None:
    for n in (3, 1, 12):
        _write(tmp_path / f"shot_v2.{n:04d}.png", np.full((4, 6), 255, np.uint8))
    folder = MaskFolder(tmp_path)
    assert folder.frame_numbers == [1, 3, 12]
    assert folder.read(12, 6, 4).dtype == np.float32


def test_soft_8_and_16_bit_masks_become_alpha(tmp_path: Path) -> None:
    _write(tmp_path / "00000.png", np.array([[0, 128, 255]], np.uint8))
    _write(tmp_path / "00001.png", np.array([[0, 32768, 65535]], np.uint16))
    folder = MaskFolder(tmp_path)
    np.testing.assert_allclose(folder.read(0, 3, 1)[0], [0, 128 / 255, 1], atol=1e-6)
    np.testing.assert_allclose(folder.read(1, 3, 1)[0], [0, 32768 / 65535, 1], atol=1e-6)


def test_rgba_uses_alpha_and_rgb_uses_luma() -> None:
    rgba = np.zeros((1, 1, 4), np.uint8)
    rgba[..., 3] = 255
    assert to_alpha(rgba)[0, 0] == 1.0
    rgb = np.array([[[255, 255, 255]]], np.uint8)
    assert to_alpha(rgb)[0, 0] == 1.0


def test_same_aspect_is_resized_other_aspect_refused() -> None:
    mask = np.zeros((90, 160), np.float32)
    mask[:, 80:] = 1
    out = fit_mask(mask, 320, 180)
    assert out.shape == (180, 320)
    assert out[:, :150].max() == 0 and out[:, 170:].min() == 1
    with pytest.raises(MaskError, match="another aspect"):
        fit_mask(np.zeros((100, 100), np.float32), 320, 180, "m.png")


def test_odd_sizes_of_same_aspect_are_accepted() -> None:
    # 1921x1081 frames with 960x540 masks: rounding of either size is not another aspect
    assert fit_mask(np.zeros((540, 960), np.float32), 1921, 1081).shape == (1081, 1921)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes.txt": b"hello"}, "not a mask image"),
        ({"matte.png": None}, "no frame number"),
        ({"a_0001.png": None, "b_0001.png": None}, "already has a mask"),
        ({}, "no mask images"),
    ],
)
def test_folder_errors(tmp_path: Path, files: dict[str, bytes | None], message: str) -> None:
    for name, content in files.items():
        if content is None:
            _write(tmp_path / name, np.zeros((2, 2), np.uint8))
        else:
            (tmp_path / name).write_bytes(content)
    with pytest.raises(MaskError, match=message):
        MaskFolder(tmp_path)


def test_missing_folder_and_corrupt_file(tmp_path: Path) -> None:
    with pytest.raises(MaskError, match="not found"):
        open_masks(tmp_path / "nope")
    (tmp_path / "00000.png").write_bytes(b"not a png")
    folder = MaskFolder(tmp_path)
    with pytest.raises(InputError, match="00000.png"):
        folder.read(0, 2, 2)


def test_hidden_files_ignored_and_single_image(tmp_path: Path) -> None:
    _write(tmp_path / "00000.png", np.zeros((2, 2), np.uint8))
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    assert MaskFolder(tmp_path).frame_numbers == [0]
    single = open_masks(tmp_path / "00000.png")
    assert isinstance(single, MaskFolder) and single.frame_numbers == [0]


def test_rgb_8_and_16_bit_masks_keep_their_scale() -> None:
    # regression: RGB masks were averaged to float before scaling, so every non-zero value became 1
    rgb = np.full((2, 2, 3), 51, np.uint8)
    np.testing.assert_allclose(to_alpha(rgb), 0.2, atol=1e-6)
    np.testing.assert_allclose(to_alpha(rgb.astype(np.uint16) * 257), 0.2, atol=1e-6)


def test_folder_opened_for_a_1001_sequence_reads_file_first_frame_plus_position(tmp_path: Path) -> None:
    for n in (1001, 1002, 1003):
        _write(tmp_path / f"matte.{n}.png", np.full((2, 3), 50 * (n - 1000), np.uint8))
    folder = open_masks(tmp_path, first_frame=1001)
    assert isinstance(folder, MaskFolder) and folder.first_frame == 1001
    assert folder.frame_numbers == [1001, 1002, 1003] and folder.positions == [0, 1, 2]
    values = [float(m[0, 0]) for m in folder.iter_masks(range(1, 3), 3, 2)]  # positions 1, 2 = files 1002, 1003
    np.testing.assert_allclose(values, [100 / 255, 150 / 255], atol=1e-6)
    assert folder.fingerprint() == MaskFolder(tmp_path).fingerprint()  # the files, whatever the clip's start
    assert MaskFolder(tmp_path).first_frame == 0  # videos count from 0
    with pytest.raises(MaskError, match="no mask for frame 1000"):
        next(folder.iter_masks(range(-1, 0), 3, 2))
    from vidharm.errors import UsageError

    for bad in (-1, True, 1.5):
        with pytest.raises(UsageError, match="first source frame number"):
            MaskFolder(tmp_path, first_frame=bad)  # type: ignore[arg-type]
