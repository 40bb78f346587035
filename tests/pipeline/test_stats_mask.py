"""The statistics mask: where the background is measured, independent of the foreground mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidharm.errors import MaskError
from vidharm.io import write_image
from vidharm.masks import PropagatedMasks, StillMask
from vidharm.pipeline import ProcessConfig, analyze
from vidharm.pipeline.analyze import masked_model_input, measured_pixels, reflect_fill, resize_for_model
from vidharm.pipeline.inputs import open_clip

H, W, BAR = 48, 64, 8
WILD = (255, 0, 255)


def _frame(i: int, bars: tuple[int, int, int]) -> np.ndarray:
    """A textured bluish plate with a warm, dark foreground square and letterbox bars of colour ``bars``."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[:H, :W]
    plate = np.stack([70 + xx, 100 + yy, 160 + 0 * xx], -1) + rng.integers(-12, 12, (H, W, 3))
    plate[18:34, 12 + i : 32 + i] = (150, 70, 40)
    plate[:BAR], plate[-BAR:] = bars, bars
    return np.clip(plate, 0, 255).astype(np.uint8)


def _clip(folder: Path, bars: tuple[int, int, int], n: int = 3) -> Path:
    """A lossless RGB PNG sequence (``f.0000.png`` ...), so the bars' colour cannot bleed into the picture."""
    folder.mkdir(parents=True)
    for i in range(n):
        write_image(folder / f"f.{i:04d}.png", _frame(i, bars))
    return folder / "f.%04d.png"


def _masks(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        mask = np.zeros((H, W), np.uint8)
        mask[18:34, 12 + i : 32 + i] = 255
        write_image(folder / f"{i:05d}.png", mask)
    return folder


def _bars_matte(path: Path) -> Path:
    matte = np.full((H, W), 255, np.uint8)
    matte[:BAR], matte[-BAR:] = 0, 0
    write_image(path, matte)
    return path


@pytest.fixture
def shots(tmp_path: Path) -> dict[str, Path]:
    return {
        "black": _clip(tmp_path / "black", (0, 0, 0)),
        "wild": _clip(tmp_path / "wild", WILD),
        "masks": _masks(tmp_path / "masks"),
        "matte": _bars_matte(tmp_path / "bars.png"),
    }


def _analyze(clip: Path, masks: Path, stats_mask: Path | None, model: torch.nn.Module | None = None):  # noqa: ANN202
    config = ProcessConfig(smoothing="off")
    return analyze(open_clip(clip, masks, stats_mask=stats_mask), config, model=model)


def test_letterbox_bars_do_not_change_the_stats_model(shots: dict[str, Path]) -> None:
    black = _analyze(shots["black"], shots["masks"], shots["matte"])
    wild = _analyze(shots["wild"], shots["masks"], shots["matte"])
    assert [r.raw for r in black.frames] == [r.raw for r in wild.frames]
    assert [r.stats for r in black.frames] == [r.stats for r in wild.frames]
    assert any(any(abs(v) > 0.02 for v in r.raw) for r in black.frames)  # a real correction, not all zeros
    # Without the statistics mask the bars count as background, and their colour moves the arguments.
    plain_black = _analyze(shots["black"], shots["masks"], None)
    plain_wild = _analyze(shots["wild"], shots["masks"], None)
    assert [r.raw for r in plain_black.frames] != [r.raw for r in plain_wild.frames]
    assert [r.stats for r in plain_black.frames] != [r.stats for r in plain_wild.frames]
    assert black.header["stats_mask"] == str(shots["matte"])
    assert black.header["stats_mask_fingerprint"].startswith("still:")
    assert "stats_mask" not in plain_black.header


class _Probe(torch.nn.Module):
    """Stands in for a network: a fixed random projection of every input value, so any input change shows."""

    def __init__(self, size: int = 256) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("weight", torch.randn(4 * size * size, 6, generator=generator) / size)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat([image, mask], dim=1).flatten(1) @ self.weight


def test_letterbox_bars_do_not_change_the_network_input(shots: dict[str, Path]) -> None:
    net = _Probe()
    black = _analyze(shots["black"], shots["masks"], shots["matte"], net)
    wild = _analyze(shots["wild"], shots["masks"], shots["matte"], net)
    assert [r.raw for r in black.frames] == [r.raw for r in wild.frames]
    plain_black = _analyze(shots["black"], shots["masks"], None, net)
    plain_wild = _analyze(shots["wild"], shots["masks"], None, net)
    assert [r.raw for r in plain_black.frames] != [r.raw for r in plain_wild.frames]


def test_filter_statistics_count_only_measured_pixels(shots: dict[str, Path]) -> None:
    track = _analyze(shots["wild"], shots["masks"], shots["matte"])
    for row in track.frames:
        picture = _frame(row.frame, WILD)[BAR:-BAR].reshape(-1, 3) / 255.0
        np.testing.assert_allclose(row.stats[:3], picture.mean(0), atol=1e-6)


def test_measured_pixels_keep_the_foreground() -> None:
    mask = np.array([[1.0, 0.6, 0.4, 0.0]], np.float32)
    stats = np.zeros((1, 4), np.float32)
    assert measured_pixels(mask, stats).tolist() == [[True, True, False, False]]
    assert measured_pixels(mask, np.ones((1, 4))).all()


def test_reflect_fill_mirrors_the_region() -> None:
    image = np.arange(7, dtype=np.float32).reshape(1, 7, 1)
    sources = np.array([[False, False, True, True, True, False, False]])
    # left of the region mirrors its left edge, right of it its right edge
    assert reflect_fill(image, sources)[0, :, 0].tolist() == [4.0, 3.0, 2.0, 3.0, 4.0, 3.0, 2.0]
    wide = np.array([[False, False, False, False, True, True, False]])  # mirror images off the region: nearest
    assert reflect_fill(image, wide)[0, :, 0].tolist() == [4.0, 4.0, 4.0, 5.0, 4.0, 5.0, 4.0]
    assert reflect_fill(image, np.ones((1, 7), bool)).tolist() == image.tolist()
    assert reflect_fill(image, np.zeros((1, 7), bool)).tolist() == [[[0.5]] * 7]


def test_reflect_fill_copies_only_source_values() -> None:
    rng = np.random.default_rng(1)
    image = rng.random((40, 50, 3)).astype(np.float32)
    sources = rng.random((40, 50)) > 0.7
    sources[10:30, 10:40] = False
    filled = reflect_fill(image, sources)
    np.testing.assert_array_equal(filled[sources], image[sources])
    allowed = {tuple(v) for v in image[sources].tolist()}
    assert all(tuple(v) in allowed for v in filled[~sources].tolist())


def test_masked_model_input_ignores_every_excluded_pixel() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (90, 120, 3)).astype(np.uint8)
    mask = np.zeros((90, 120), np.float32)
    mask[30:60, 40:80] = 1
    stats = np.ones((90, 120), np.float32)
    stats[:20], stats[:, 100:] = 0, 0  # a bar and a garbage column
    measured = measured_pixels(mask, stats)
    other = image.copy()
    other[~measured] = rng.integers(0, 256, (int((~measured).sum()), 3))
    a, m = masked_model_input(image, mask, measured, 32)
    b, n = masked_model_input(other, mask, measured, 32)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m, n)
    assert a.dtype == np.float32 and a.shape == (32, 32, 3) and 0 <= a.min() and a.max() <= 1
    # With nothing excluded it is exactly the plain resize.
    everything = np.ones((90, 120), bool)
    for x, y in zip(masked_model_input(image, mask, everything, 32), resize_for_model(image, mask, 32), strict=True):
        np.testing.assert_array_equal(x, y)
    # The foreground, away from excluded pixels, is the plain resize too.
    plain, _ = resize_for_model(image, mask, 32)
    np.testing.assert_allclose(a[12:20, 12:24], plain[12:20, 12:24], atol=1e-6)


def test_stats_mask_sources(tmp_path: Path, shots: dict[str, Path]) -> None:
    inp = open_clip(shots["black"], shots["masks"], stats_mask=shots["matte"])
    assert isinstance(inp.stats_mask, StillMask)  # one image holds for every frame
    masks = list(inp.stats_mask.iter_masks(inp.frames, W, H))
    assert len(masks) == 3 and masks[0][0, 0] == 0 and masks[0][H // 2, 0] == 1
    sparse = tmp_path / "sparse"
    sparse.mkdir()
    write_image(sparse / "00000.png", np.full((H, W), 255, np.uint8))
    inp = open_clip(shots["black"], shots["masks"], stats_mask=sparse)
    assert isinstance(inp.stats_mask, PropagatedMasks)  # keyframes are propagated, as foreground masks are
    with pytest.raises(MaskError, match="no statistics mask for 2 of 3 frames"):
        open_clip(shots["black"], shots["masks"], stats_mask=sparse, propagate=False)
    write_image(sparse / "00009.png", np.full((H, W), 255, np.uint8))
    with pytest.raises(MaskError, match="statistics mask for frame 9"):
        open_clip(shots["black"], shots["masks"], stats_mask=sparse)
    with pytest.raises(MaskError, match="statistics mask not found"):
        open_clip(shots["black"], shots["masks"], stats_mask=tmp_path / "nope")
    write_image(tmp_path / "tall.png", np.full((64, 16), 255, np.uint8))
    with pytest.raises(MaskError, match="another aspect"):
        _analyze(shots["black"], shots["masks"], tmp_path / "tall.png")
