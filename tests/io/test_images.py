"""Tests for vidharm/io/_images.py: read_image and write_image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidharm.errors import InputError, OutputError, ShapeError, UsageError
from vidharm.io import read_image, write_image


def _rgb(dtype: type = np.uint8) -> np.ndarray:
    peak = np.iinfo(dtype).max
    rng = np.random.default_rng(0)
    image = rng.integers(0, peak, size=(5, 7, 3), endpoint=True).astype(dtype)
    image[0, 0] = (peak, 0, 0)  # pure red, to pin the channel order
    return image


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_round_trip_keeps_depth_and_order(tmp_path, suffix, dtype):
    image = _rgb(dtype)
    path = tmp_path / f"a{suffix}"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == dtype
    assert np.array_equal(back, image)


def test_files_are_rgb_for_other_tools(tmp_path):
    path = tmp_path / "red.png"
    write_image(path, _rgb())
    # OpenCV itself reads BGR: red is in the last channel there.
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[0, 0].tolist() == [0, 0, 255]
    assert read_image(path)[0, 0].tolist() == [255, 0, 0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_round_trip(tmp_path, dtype):
    image = _rgb(dtype)[:, :, 1].copy()
    write_image(tmp_path / "g.png", image)
    back = read_image(tmp_path / "g.png")
    assert back.shape == (5, 7) and back.dtype == dtype
    assert np.array_equal(back, image)


def test_alpha_is_dropped_unless_kept(tmp_path):
    rgba = np.concatenate([_rgb(), np.full((5, 7, 1), 128, np.uint8)], axis=-1)
    write_image(tmp_path / "a.png", rgba)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgba[:, :, :3])
    assert np.array_equal(read_image(tmp_path / "a.png", keep_alpha=True), rgba)


def test_jpeg_round_trip_is_close(tmp_path):
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, :8] = (200, 40, 30)
    image[:, 8:] = (20, 90, 220)
    write_image(tmp_path / "a.jpg", image)
    back = read_image(tmp_path / "a.jpg")
    assert back.shape == image.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - image).mean() < 6


def test_write_is_atomic_and_leaves_no_temp(tmp_path):
    write_image(tmp_path / "a.png", _rgb())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize(
    ("name", "image", "error", "match"),
    [
        ("a.bmp", _rgb(), UsageError, r"unsupported image extension"),
        ("a.jpg", _rgb(np.uint16), UsageError, r"\.jpg holds uint8 images, got uint16"),
        ("a.png", _rgb().astype(np.float32), UsageError, r"got float32"),
        ("a.jpg", np.zeros((4, 4, 4), np.uint8), UsageError, r"JPEG has no alpha"),
        ("a.png", np.zeros((4, 4, 2), np.uint8), ShapeError, r"expected shape"),
        ("a.png", np.zeros((4,), np.uint8), ShapeError, r"expected shape"),
    ],
)
def test_write_image_refuses(tmp_path, name, image, error, match):
    with pytest.raises(error, match=match):
        write_image(tmp_path / name, image)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_folder(tmp_path):
    with pytest.raises(OutputError, match=r"does not exist"):
        write_image(tmp_path / "missing" / "a.png", _rgb())


def test_read_image_errors(tmp_path):
    with pytest.raises(InputError, match=r"nope\.png: no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match=r"is a folder"):
        read_image(tmp_path)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InputError, match=r"text\.png: not an image"):
        read_image(tmp_path / "text.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.png: not an image"):
        read_image(tmp_path / "empty.png")


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_exr_round_trip_keeps_float_values(tmp_path, dtype):
    image = np.array([[[-1.5, 0.0, 1.0], [300.0, 0.25, -0.001]]], dtype)
    write_image(tmp_path / "a.exr", image)
    back = read_image(tmp_path / "a.exr")
    assert back.dtype == np.float32 and back.shape == (1, 2, 3)
    assert np.array_equal(back, image.astype(np.float32))


def test_exr_alpha_is_dropped_unless_kept(tmp_path):
    rgba = np.random.default_rng(0).random((3, 4, 4)).astype(np.float32)
    write_image(tmp_path / "a.exr", rgba)
    assert np.array_equal(read_image(tmp_path / "a.exr"), rgba[:, :, :3])
    assert np.array_equal(read_image(tmp_path / "a.exr", keep_alpha=True), rgba)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_dpx_round_trip(tmp_path, dtype):
    image = _rgb(dtype)
    write_image(tmp_path / "a.dpx", image)
    back = read_image(tmp_path / "a.dpx")
    assert back.dtype == dtype and np.array_equal(back, image)


def test_grey_exr_reads_as_grey(tmp_path):
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(3, 2, 1, "half")
    spec.channelnames = ("Y",)
    out = oiio.ImageOutput.create(str(tmp_path / "g.exr"))
    out.open(str(tmp_path / "g.exr"), spec)
    out.write_image(np.full((2, 3, 1), 0.5, np.float16))
    out.close()
    back = read_image(tmp_path / "g.exr")
    assert back.shape == (2, 3) and back.dtype == np.float32 and (back == 0.5).all()


def test_unreadable_exr_is_an_input_error(tmp_path):
    (tmp_path / "bad.exr").write_text("not an exr")
    with pytest.raises(InputError, match=r"bad\.exr: not an image OpenImageIO can read"):
        read_image(tmp_path / "bad.exr")
    with pytest.raises(UsageError, match=r"\.dpx holds uint8 or uint16 images, got float32"):
        write_image(tmp_path / "a.dpx", np.zeros((2, 2, 3), np.float32))
