"""Opening inputs: a clip's own alpha as its mask, layers, and their checks (real files made here)."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.errors import InputError, MaskError, ShapeError, UsageError
from vidharm.io import read_image, write_image
from vidharm.io._synth import write_test_clip
from vidharm.masks import ClipAlpha, MaskFolder
from vidharm.pipeline import ProcessConfig
from vidharm.pipeline.inputs import (
    first_frame_of,
    flatten_layers,
    frame_positions,
    iter_frames_and_masks,
    iter_layers,
    match_depth,
    open_clip,
    open_layers,
)
from vidharm.pipeline.process import process_video

H, W = 32, 48


def _rgba(i: int) -> np.ndarray:
    """8-bit RGBA: a colour ramp, and an alpha ramp across the width that shifts with the frame."""
    yy, xx = np.mgrid[:H, :W]
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 4 * xx, 6 * yy, 90 + i
    rgba[..., 3] = np.clip((xx - 10 - 2 * i) * 16, 0, 255)
    return rgba


def _png_sequence(folder: Path, n: int = 3, first: int = 1001) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        write_image(folder / f"shot.{first + i}.png", _rgba(i))
    return folder / "shot.%04d.png"


def _alpha_movie(path: Path, codec: str, pix_fmt: str, n: int = 3) -> Path:
    """A .mov with alpha written by PyAV (qtrle argb and png rgba are lossless, prores_ks 4444 is not)."""
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_rgba(i), format="rgba").reformat(format=pix_fmt)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_mask_from_alpha_of_an_rgba_png_sequence(tmp_path: Path) -> None:
    clip = _png_sequence(tmp_path / "seq")
    inp = open_clip(clip, mask_from_alpha=True)
    assert isinstance(inp.masks, ClipAlpha) and inp.frames == range(3)
    items = list(iter_frames_and_masks(inp))
    assert [frame for frame, *_ in items] == [0, 1, 2]
    for i, (_, _, image, mask) in enumerate(items):
        assert image.shape == (H, W, 3) and mask.dtype == np.float32
        np.testing.assert_array_equal(image, _rgba(i)[..., :3])
        np.testing.assert_allclose(mask, _rgba(i)[..., 3] / 255.0, atol=1e-7)
    # The mask source alone gives the same masks (decoding the clip on its own).
    for mask, (*_, expected) in zip(inp.masks.iter_masks(range(1, 3), W, H), items[1:], strict=True):
        np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize(("codec", "pix_fmt"), [("qtrle", "argb"), ("png", "rgba")])
def test_mask_from_alpha_of_a_lossless_movie(tmp_path: Path, codec: str, pix_fmt: str) -> None:
    clip = _alpha_movie(tmp_path / f"{codec}.mov", codec, pix_fmt)
    inp = open_clip(clip, mask_from_alpha=True, frames=range(1, 3))
    masks = [mask for *_, mask in iter_frames_and_masks(inp)]
    assert len(masks) == 2
    for i, mask in enumerate(masks, start=1):
        np.testing.assert_allclose(mask, _rgba(i)[..., 3] / 255.0, atol=1e-7)


def test_mask_from_alpha_of_prores_4444_is_16_bit(tmp_path: Path) -> None:
    clip = _alpha_movie(tmp_path / "p.mov", "prores_ks", "yuva444p10le", n=2)
    masks = [mask for *_, mask in iter_frames_and_masks(open_clip(clip, mask_from_alpha=True))]
    for i, mask in enumerate(masks):
        # 16-bit decoded alpha divided by 65535 (ProRes keeps alpha to 12 bits or more: within half an 8-bit level)
        assert float(np.abs(mask - _rgba(i)[..., 3] / 255.0).max()) < 0.5 / 255
        assert len(np.unique(mask)) > 10


def test_mask_from_alpha_end_to_end(tmp_path: Path) -> None:
    clip = _png_sequence(tmp_path / "seq")
    (tmp_path / "masks").mkdir()
    for i in range(3):
        write_image(tmp_path / "masks" / f"{1001 + i:05d}.png", _rgba(i)[..., 3])
    config = ProcessConfig(smoothing="off")
    own = process_video(clip, None, tmp_path / "a" / "a.%04d.png", config, mask_from_alpha=True)
    folder = process_video(clip, tmp_path / "masks", tmp_path / "b" / "b.%04d.png", config)
    assert [r.raw for r in own.frames] == [r.raw for r in folder.frames]
    assert own.header["masks_fingerprint"] == "alpha:shot.%04d.png"
    for i in range(3):
        rgba = read_image(tmp_path / "a" / f"a.{1001 + i}.png", keep_alpha=True)  # the clip's alpha is kept
        np.testing.assert_array_equal(rgba[..., 3], _rgba(i)[..., 3])
        np.testing.assert_array_equal(rgba[..., :3], read_image(tmp_path / "b" / f"b.{1001 + i}.png"))


def test_clip_without_alpha_is_refused(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "plain.mp4", num_frames=2)
    with pytest.raises(InputError, match="has no alpha channel .*give a mask folder or mask video"):
        open_clip(clip, mask_from_alpha=True)


def test_masks_and_mask_from_alpha_are_exclusive(tmp_path: Path) -> None:
    clip = _png_sequence(tmp_path / "seq")
    with pytest.raises(UsageError, match="not both"):
        open_clip(clip, tmp_path, mask_from_alpha=True)
    with pytest.raises(UsageError, match="--mask-from-alpha"):
        open_clip(clip)


def _layer_files(tmp_path: Path, n: int = 3, *, size: tuple[int, int] = (H, W)) -> tuple[Path, Path]:
    fg = _png_sequence(tmp_path / "fg", n)
    (tmp_path / "bg").mkdir()
    for i in range(n):
        write_image(tmp_path / "bg" / f"bg.{i:04d}.png", np.full((*size, 3), 40 + i, np.uint8))
    return fg, tmp_path / "bg" / "bg.%04d.png"


def test_open_layers_and_their_composite(tmp_path: Path) -> None:
    fg, bg = _layer_files(tmp_path)
    inp = open_layers(fg, bg)
    assert inp.clip == bg and inp.foreground is not None and inp.foreground.path == fg
    assert isinstance(inp.masks, ClipAlpha) and inp.num_frames == 3
    layers = list(iter_layers(inp))
    flattened = list(iter_frames_and_masks(inp))
    for i, ((frame, _, f, a, b), (frame2, _, c, m)) in enumerate(zip(layers, flattened, strict=True)):
        assert frame == frame2 == i
        np.testing.assert_array_equal(f, _rgba(i)[..., :3])
        np.testing.assert_array_equal(b, np.full((H, W, 3), 40 + i, np.uint8))
        np.testing.assert_array_equal(a, m)
        np.testing.assert_array_equal(c, flatten_layers(f, a, b))
        np.testing.assert_array_equal(c[a == 0], b[a == 0])
        np.testing.assert_array_equal(c[a == 1], f[a == 1])


def test_open_layers_refuses_bad_layers(tmp_path: Path) -> None:
    fg, bg = _layer_files(tmp_path)
    (tmp_path / "short").mkdir()
    for i in range(2):
        write_image(tmp_path / "short" / f"s.{i:04d}.png", np.zeros((H, W, 3), np.uint8))
    with pytest.raises(InputError, match="foreground has 3 frames but the background s.%04d.png has 2"):
        open_layers(fg, tmp_path / "short" / "s.%04d.png")
    (tmp_path / "big").mkdir()
    for i in range(3):
        write_image(tmp_path / "big" / f"b.{i:04d}.png", np.zeros((H, W + 2, 3), np.uint8))
    with pytest.raises(InputError, match=f"foreground is {W}x{H} but the background"):
        open_layers(fg, tmp_path / "big" / "b.%04d.png")
    with pytest.raises(InputError, match="no alpha channel .*--alpha"):
        open_layers(bg, fg)
    (tmp_path / "alpha").mkdir()
    write_image(tmp_path / "alpha" / "00000.png", np.zeros((H, W), np.uint8))
    with pytest.raises(MaskError, match="no alpha for 2 of 3 frames .*vidharm masks propagate"):
        open_layers(bg, fg, tmp_path / "alpha")
    for i in (1, 2):
        write_image(tmp_path / "alpha" / f"{i:05d}.png", np.full((H, W), 255, np.uint8))
    inp = open_layers(bg, fg, tmp_path / "alpha", premultiplied=True)
    assert isinstance(inp.masks, MaskFolder) and inp.foreground is not None and inp.foreground.premultiplied
    assert [float(a.mean()) for *_, a, _ in iter_layers(inp)] == [0.0, 1.0, 1.0]


def test_flatten_layers_math() -> None:
    fg = np.array([[[200, 100, 0], [200, 100, 0], [200, 100, 0]]], np.uint8)
    bg = np.full((1, 3, 3), 50, np.uint8)
    a = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert flatten_layers(fg, a, bg)[0].tolist() == [[50, 50, 50], [125, 75, 25], [200, 100, 0]]
    premultiplied = np.array([[[0, 0, 0], [100, 50, 0], [200, 100, 0]]], np.uint8)
    assert flatten_layers(premultiplied, a, bg, premultiplied=True)[0].tolist() == [
        [50, 50, 50],
        [125, 75, 25],
        [200, 100, 0],
    ]
    f = flatten_layers(fg.astype(np.float32) / 255, a, bg.astype(np.float32) / 255)
    assert f.dtype == np.float32 and abs(float(f[0, 1, 0]) - 0.5 * (200 + 50) / 255) < 1e-6
    with pytest.raises(ShapeError, match="one shape and dtype"):
        flatten_layers(fg, a, bg.astype(np.uint16))


def test_match_depth() -> None:
    a8, b16 = np.full((1, 1, 3), 255, np.uint8), np.full((1, 1, 3), 7, np.uint16)
    x, y = match_depth(a8, b16)
    assert x.dtype == y.dtype == np.uint16 and int(x[0, 0, 0]) == 65535 and y is b16
    x, y = match_depth(a8, np.zeros((1, 1, 3), np.float32))
    assert x.dtype == np.float32 and float(x[0, 0, 0]) == 1.0
    same = np.zeros((1, 1, 3), np.uint8)
    assert match_depth(same, a8)[0] is same


def _numbered_masks(folder: Path, numbers: list[int] | range) -> Path:
    folder.mkdir()
    for n in numbers:
        write_image(folder / f"matte.{n}.png", _rgba(0)[..., 3])
    return folder


def test_masks_and_frames_take_source_numbers_of_a_1001_sequence(tmp_path: Path) -> None:
    clip = _png_sequence(tmp_path / "seq", n=4)
    masks = _numbered_masks(tmp_path / "m", range(1001, 1005))
    inp = open_clip(clip, masks, range(1002, 1004))
    assert (inp.first_frame, inp.frames, inp.source_frames) == (1001, range(1, 3), range(1002, 1004))
    assert isinstance(inp.masks, MaskFolder) and inp.masks.first_frame == 1001
    assert [frame for frame, *_ in iter_frames_and_masks(inp)] == [1, 2]  # rows count clip positions
    assert open_clip(clip, masks).frames == range(4)
    assert first_frame_of(clip) == 1001 and first_frame_of(tmp_path / "clip.mp4") == 0
    stats = _numbered_masks(tmp_path / "s", [1001, 1004])  # keyframes of a statistics mask, numbered the same
    assert open_clip(clip, masks, stats_mask=stats).stats_mask is not None


@pytest.mark.parametrize(
    ("numbers", "message"),
    [
        (
            range(0, 4),
            r"the mask files are numbered 0-3 but shot.%04d.png's frames are 1001-1004; .*number them from 1001",
        ),
        ([5, 1001, 1002, 1003, 1004], r"matte.5.png: mask for frame 5 is before shot.%04d.png's first frame 1001"),
        ([1001, 1002, 1003, 1004, 1005], r"matte.1005.png: masks for frame 1005 but shot.%04d.png has 4 frames"),
        ([1001, 1004], r"no masks for 2 of 4 frames \(1002-1003\); give one mask per frame, numbered as the clip's "),
    ],
)
def test_misnumbered_masks_name_source_numbers(tmp_path: Path, numbers: list[int], message: str) -> None:
    clip = _png_sequence(tmp_path / "seq", n=4)
    masks = _numbered_masks(tmp_path / "m", numbers)
    with pytest.raises(MaskError, match=message):
        open_clip(clip, masks, propagate=False)
    stats = re.sub(r"\bmasks? (?=files|for)", "statistics mask ", message).split("; give")[0]
    with pytest.raises(MaskError, match=stats):
        open_clip(clip, _numbered_masks(tmp_path / "full", range(1001, 1005)), stats_mask=masks, propagate=False)


def test_frames_outside_the_source_range_are_refused(tmp_path: Path) -> None:
    clip = _png_sequence(tmp_path / "seq", n=4)
    masks = _numbered_masks(tmp_path / "m", range(1001, 1005))
    for frames in (range(0, 3), range(1003, 1006), range(1002, 1002)):
        with pytest.raises(InputError, match=r"are outside the clip \(frames 1001-1004\).*--frames within 1001-1004"):
            open_clip(clip, masks, frames)
    assert frame_positions(clip, range(1003, 1010), 1001) == range(2, 9)  # no frame count: the start is checked
    with pytest.raises(InputError, match="frames 7-9 are outside the clip \\(frames from 1001\\)"):
        frame_positions(clip, range(7, 10), 1001)
    with pytest.raises(UsageError, match="frame count"):
        frame_positions(clip, None, 1001)


def test_layers_alpha_folder_follows_the_foreground_and_frames_the_background(tmp_path: Path) -> None:
    fg = _png_sequence(tmp_path / "fg", n=3, first=1001)
    (tmp_path / "bg").mkdir()
    for i in range(3):
        write_image(tmp_path / "bg" / f"bg.{7 + i:04d}.png", np.full((H, W, 3), 40 + i, np.uint8))
    bg = tmp_path / "bg" / "bg.%04d.png"
    alpha = _numbered_masks(tmp_path / "alpha", range(1001, 1004))  # the element's numbers
    inp = open_layers(fg, bg, alpha, range(8, 10))  # the plate's numbers
    assert (inp.first_frame, inp.frames, inp.source_frames) == (7, range(1, 3), range(8, 10))
    with pytest.raises(MaskError, match="the alpha files are numbered 7-9 but shot.%04d.png's frames are 1001-1003"):
        open_layers(fg, bg, _numbered_masks(tmp_path / "wrong", range(7, 10)))
