"""Layers (--fg/--bg): the filters grade the foreground element, composited over the untouched background."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from vidharm.errors import InputError, UsageError
from vidharm.filters import apply_filters
from vidharm.io import read_frames, read_image, write_image
from vidharm.pipeline import ParamsTrack, ProcessConfig, read_params
from vidharm.pipeline.analyze import frame_histogram, stats_from_histograms
from vidharm.pipeline.inputs import alpha_levels, flatten_layers, open_clip, open_layers
from vidharm.pipeline.layers import (
    check_layers_source,
    check_premultiplied,
    premultiply,
    render_layer_frame,
    render_layers,
    unpremultiply,
)
from vidharm.pipeline.process import process_layers, process_video
from vidharm.pipeline.render import render_frame

ARGS = [0.3, -0.2, 0.25, 0.2, -0.15, 0.1]
STATS = [0.45, 0.5, 0.55, 0.5]
# Columns of the synthetic alpha: background, soft edge (a quarter, a half, three quarters) and opaque core.
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _layers(dtype: type = np.float32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fg, alpha, bg of 10x20: alpha runs through ALPHAS in bands of 4 columns."""
    rng = np.random.default_rng(seed)
    fg = rng.uniform(0.15, 0.85, (10, 20, 3)).astype(np.float32)
    bg = rng.uniform(0.15, 0.85, (10, 20, 3)).astype(np.float32)
    alpha = np.repeat(np.array(ALPHAS, np.float32), 4)[None].repeat(10, 0)
    if dtype == np.float32:
        return fg, alpha, bg
    peak = np.iinfo(dtype).max
    return np.rint(fg * peak).astype(dtype), alpha, np.rint(bg * peak).astype(dtype)


def _filtered(x: np.ndarray) -> np.ndarray:
    """The six filters with ARGS/STATS on a float (H, W, 3) image, in float64 reference arithmetic."""
    t = torch.from_numpy(x.astype(np.float64)).permute(2, 0, 1)[None]
    out = apply_filters(t, torch.tensor([ARGS], dtype=torch.float64), torch.tensor([STATS], dtype=torch.float64))
    return out[0].permute(1, 2, 0).numpy()


def _band(alpha: float) -> slice:
    i = ALPHAS.index(alpha)
    return slice(4 * i, 4 * i + 4)


def test_layered_render_is_graded_fg_over_untouched_bg() -> None:
    fg, a, bg = _layers()
    out, graded = render_layer_frame(fg, a, bg, ARGS, STATS)
    expected = _filtered(fg) * a[..., None] + bg * (1 - a[..., None])
    np.testing.assert_allclose(out, expected, atol=2e-6)
    np.testing.assert_allclose(graded[:, _band(1.0)], _filtered(fg)[:, _band(1.0)], atol=2e-6)
    # At a half-covered edge pixel the background's share is the background as it came, never graded.
    half = _band(0.5)
    np.testing.assert_allclose(out[:, half] - 0.5 * _filtered(fg)[:, half], 0.5 * bg[:, half], atol=2e-6)


def test_layered_differs_from_flattened_exactly_at_soft_edges() -> None:
    fg, a, bg = _layers()
    composite = flatten_layers(fg, a, bg)
    flat = render_frame(composite, a, ARGS, STATS)
    layered, _ = render_layer_frame(fg, a, bg, ARGS, STATS)
    for value in (0.0, 1.0):
        np.testing.assert_allclose(layered[:, _band(value)], flat[:, _band(value)], atol=2e-6)
    f_fg, f_c = _filtered(fg), _filtered(composite.astype(np.float64))
    for value in (0.25, 0.5, 0.75):
        band = _band(value)
        # flat = f(c) a + c (1 - a) grades the background mixed into c; layered = f(fg) a + bg (1 - a).
        expected = value * (f_c[:, band] - f_fg[:, band]) + (1 - value) * (composite[:, band] - bg[:, band])
        np.testing.assert_allclose(flat[:, band] - layered[:, band], expected, atol=2e-6)
        assert float(np.abs(flat[:, band] - layered[:, band]).max()) > 0.01


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_layers_follow_the_float_math_within_a_level(dtype: type) -> None:
    fg, a, bg = _layers(dtype)
    peak = float(np.iinfo(dtype).max)
    out, graded = render_layer_frame(fg, a, bg, ARGS, STATS)
    assert out.dtype == dtype and graded.dtype == dtype
    expected = _filtered(fg / peak) * a[..., None] + bg / peak * (1 - a[..., None])
    assert float(np.abs(out / peak - expected).max()) <= 1.5 / peak
    np.testing.assert_array_equal(out[:, _band(0.0)], bg[:, _band(0.0)])  # background exactly
    exact, _ = render_layer_frame(fg, a, bg, ARGS, STATS, exact=True)
    assert int(np.abs(exact.astype(np.int64) - out).max()) <= 1


def test_premultiplied_foreground_gives_the_straight_result() -> None:
    fg, a, bg = _layers(np.uint16)
    straight, _ = render_layer_frame(fg, a, bg, ARGS, STATS)
    premul, _ = render_layer_frame(premultiply(fg, a), a, bg, ARGS, STATS, premultiplied=True)
    assert int(np.abs(straight.astype(np.int64) - premul).max()) <= 2


def test_mix_zero_returns_the_plain_composite() -> None:
    fg, a, bg = _layers(np.uint8)
    out, _ = render_layer_frame(fg, a, bg, ARGS, STATS, mix=0.0)
    np.testing.assert_array_equal(out, flatten_layers(fg, a, bg))


def test_missing_stats_are_measured_on_the_composite() -> None:
    fg, a, bg = _layers(np.uint8)
    measured, _ = render_layer_frame(fg, a, bg, ARGS)
    hist = torch.from_numpy(frame_histogram(flatten_layers(fg, a, bg)))[None]
    stats = stats_from_histograms(hist, torch.tensor([ARGS], dtype=torch.float64))[0].tolist()
    with_stats, _ = render_layer_frame(fg, a, bg, ARGS, stats)
    np.testing.assert_array_equal(measured, with_stats)
    own = stats_from_histograms(torch.from_numpy(frame_histogram(fg))[None], torch.tensor([ARGS]))[0].tolist()
    assert not np.array_equal(measured, render_layer_frame(fg, a, bg, ARGS, own)[0])  # not fg's own statistics


def test_unpremultiply_and_premultiply() -> None:
    color = np.array([[[100, 50, 0], [0, 0, 0], [30, 30, 30]]], np.uint8)
    alpha = np.array([[0.5, 0.0, 0.1]], np.float32)
    straight = unpremultiply(color, alpha)
    assert straight[0, 0].tolist() == [200, 100, 0]
    assert straight[0, 1].tolist() == [0, 0, 0]  # no colour where there is no alpha
    assert straight[0, 2].tolist() == [255, 255, 255]  # 30 / 0.1 clipped: above the alpha is invalid
    assert premultiply(straight, alpha)[0, 0].tolist() == [100, 50, 0]
    f = np.array([[[2.0, 0.5, 0.25]]], np.float32)
    np.testing.assert_allclose(unpremultiply(premultiply(f, np.array([[0.5]], np.float32)), np.array([[0.5]])), f)
    assert alpha_levels(np.array([[0.5]], np.float32), np.zeros(1, np.uint16)).tolist() == [[32768]]


def test_check_premultiplied_warns_on_contradictions(caplog: pytest.LogCaptureFixture) -> None:
    fg, a, _ = _layers(np.uint8)
    fg[:] = 230  # bright straight colour at every soft edge
    with caplog.at_level(logging.WARNING, logger="vidharm.pipeline.layers"):
        check_premultiplied(fg, a, True)
    assert "drop --premultiplied" in caplog.text
    caplog.clear()
    soft = np.tile(np.linspace(0.1, 0.9, 20, dtype=np.float32), (10, 1))
    with caplog.at_level(logging.WARNING, logger="vidharm.pipeline.layers"):
        check_premultiplied(premultiply(fg, soft), soft, False)
        assert "add --premultiplied" in caplog.text
        caplog.clear()
        check_premultiplied(fg, soft, False)  # straight and said so: quiet
        check_premultiplied(premultiply(fg, soft), soft, True)
    assert caplog.text == ""


# --- end to end, on files made here ------------------------------------------------------------------------


def _write_layers(folder: Path, n: int = 4, *, premultiplied: bool = False) -> tuple[Path, Path]:
    """An RGBA PNG foreground (a soft disc moving right, numbered from 1001) and an RGB background plate."""
    (folder / "fg").mkdir(parents=True)
    (folder / "bg").mkdir()
    yy, xx = np.mgrid[:48, :64]
    for i in range(n):
        bg = np.stack([40 + 2 * xx, 80 + yy, 150 + 0 * xx], -1).astype(np.uint8)
        a = np.clip((13.0 - np.hypot(yy - 24, xx - 20 - 3 * i)) / 5.0, 0, 1).astype(np.float32)
        a = np.rint(a * 255) / np.float32(255)
        colour = np.empty((48, 64, 3), np.uint8)
        colour[:] = (210, 120, 60)
        if premultiplied:
            colour = premultiply(colour, a)
        write_image(folder / "fg" / f"fg.{1001 + i}.png", np.dstack([colour, alpha_levels(a, colour)]))
        write_image(folder / "bg" / f"bg.{1001 + i}.png", bg)
    return folder / "fg" / "fg.%04d.png", folder / "bg" / "bg.%04d.png"


def _frames(pattern: Path, *, alpha: bool = False) -> list:
    return list(read_frames(pattern, alpha=alpha))


def test_process_layers_renders_composite_and_element(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path)
    config = ProcessConfig(smoothing="off")
    out, element = tmp_path / "out" / "comp.%04d.png", tmp_path / "elem" / "elem.%04d.png"
    track = process_layers(fg, bg, out, config, write_fg=element, params_out=tmp_path / "p.json")
    assert sorted(p.name for p in out.parent.glob("comp.*.png")) == [f"comp.{1001 + i}.png" for i in range(4)]
    assert sorted(p.name for p in element.parent.iterdir()) == [f"elem.{1001 + i}.png" for i in range(4)]
    assert track.header["foreground"] == str(fg) and track.header["premultiplied"] is False
    for row, f, b, o, e in zip(
        track.frames, _frames(fg, alpha=True), _frames(bg), _frames(out), _frames(element, alpha=True), strict=True
    ):
        a = f.alpha.astype(np.float32) / 255
        expected, graded = render_layer_frame(f.image, a, b.image, *row.applied())
        np.testing.assert_array_equal(o.image, expected)
        np.testing.assert_array_equal(o.image[a == 0], b.image[a == 0])  # the plate, untouched
        np.testing.assert_array_equal(e.alpha, f.alpha)  # the element keeps its alpha ...
        np.testing.assert_array_equal(e.image, premultiply(graded, a))  # ... with premultiplied graded colour
        over = e.image.astype(np.float32) + b.image * (1 - a[..., None])  # the comp of the written element
        assert float(np.abs(over - o.image).max()) <= 1.0
    # The graded element really changed where it is opaque.
    assert np.abs(_frames(element, alpha=True)[0].image.astype(int) - _frames(fg)[0].image).max() > 3


def test_analysis_of_layers_is_analysis_of_their_composite(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path, n=3)
    (tmp_path / "flat").mkdir()
    (tmp_path / "alpha").mkdir()
    for f, b in zip(_frames(fg, alpha=True), _frames(bg), strict=True):
        a = f.alpha.astype(np.float32) / 255
        write_image(tmp_path / "flat" / f"flat.{f.index:04d}.png", flatten_layers(f.image, a, b.image))
        write_image(tmp_path / "alpha" / f"{f.index:05d}.png", f.alpha)
    config = ProcessConfig(smoothing="off")
    layered = process_layers(fg, bg, tmp_path / "l" / "l.%04d.png", config)
    flat = process_video(tmp_path / "flat" / "flat.%04d.png", tmp_path / "alpha", tmp_path / "f" / "f.%04d.png", config)
    assert [r.raw for r in layered.frames] == [r.raw for r in flat.frames]
    assert [r.stats for r in layered.frames] == [r.stats for r in flat.frames]


def test_alpha_masks_and_premultiplied_foreground(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path / "s", n=2)
    pfg, _ = _write_layers(tmp_path / "p", n=2, premultiplied=True)
    config = ProcessConfig(smoothing="off")
    straight = process_layers(fg, bg, tmp_path / "a" / "a.%04d.png", config)
    premul = process_layers(pfg, bg, tmp_path / "b" / "b.%04d.png", config, premultiplied=True)
    assert premul.header["premultiplied"] is True
    for x, y in zip(_frames(tmp_path / "a" / "a.%04d.png"), _frames(tmp_path / "b" / "b.%04d.png"), strict=True):
        assert int(np.abs(x.image.astype(int) - y.image).max()) <= 2
    # The alpha from a mask folder instead of the foreground's own channel gives the same render.
    (tmp_path / "alpha").mkdir()
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in _frames(fg, alpha=True):
        write_image(tmp_path / "alpha" / f"{1001 + f.index:05d}.png", f.alpha)  # numbered like the element
        write_image(plain / f"fg.{1001 + f.index}.png", f.image)
    masked = process_layers(plain / "fg.%04d.png", bg, tmp_path / "c" / "c.%04d.png", config, alpha=tmp_path / "alpha")
    assert [r.raw for r in masked.frames] == [r.raw for r in straight.frames]
    for x, y in zip(_frames(tmp_path / "a" / "a.%04d.png"), _frames(tmp_path / "c" / "c.%04d.png"), strict=True):
        np.testing.assert_array_equal(x.image, y.image)


def test_layers_with_a_stats_mask(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path, n=2)
    matte = np.full((48, 64), 255, np.uint8)
    matte[:, 48:] = 0  # the right of the plate is not to be measured
    write_image(tmp_path / "matte.png", matte)
    config = ProcessConfig(smoothing="off")
    masked = process_layers(fg, bg, tmp_path / "a" / "a.%04d.png", config, stats_mask=tmp_path / "matte.png")
    plain = process_layers(fg, bg, tmp_path / "b" / "b.%04d.png", config)
    assert masked.header["stats_mask"] == str(tmp_path / "matte.png")
    assert [r.stats for r in masked.frames] != [r.stats for r in plain.frames]
    for row, f, b in zip(masked.frames, _frames(fg, alpha=True), _frames(bg), strict=True):
        a = f.alpha.astype(np.float32) / 255
        counted = flatten_layers(f.image, a, b.image)[:, :48].reshape(-1, 3) / 255.0  # the foreground is left of 48
        np.testing.assert_allclose(row.stats[:3], counted.mean(0), atol=1e-6)


def test_write_fg_as_prores_4444_keeps_alpha(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path, n=2)
    process_layers(
        fg, bg, tmp_path / "comp.mkv", ProcessConfig(smoothing="off", codec="ffv1"), write_fg=tmp_path / "e.mov"
    )
    frames = _frames(tmp_path / "e.mov", alpha=True)
    sources = _frames(fg, alpha=True)
    assert len(frames) == 2 and frames[0].alpha is not None
    for e, f in zip(frames, sources, strict=True):
        # ProRes 4444 stores alpha at 12 bits and colour lossily: the alpha comes back within half an 8-bit level.
        assert float(np.abs(e.alpha / 65535.0 - f.alpha / 255.0).max()) < 0.5 / 255
        assert float(np.abs(e.image[f.alpha == 0] / 65535.0).max()) < 0.01  # premultiplied: black outside


def test_render_layers_refuses_other_sources(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path, n=2)
    config = ProcessConfig(smoothing="off")
    track = process_layers(fg, bg, tmp_path / "a" / "a.%04d.png", config)
    inp = open_layers(fg, bg, premultiplied=True)
    with pytest.raises(InputError, match="use the same --premultiplied"):
        render_layers(inp, track, tmp_path / "b" / "b.%04d.png", config)
    flat_track = ParamsTrack(header={k: v for k, v in track.header.items() if k != "foreground"}, frames=track.frames)
    with pytest.raises(InputError, match="flattened clip"):
        check_layers_source(flat_track, open_layers(fg, bg))
    with pytest.raises(UsageError, match="not a layered input"):
        check_layers_source(track, open_clip(fg, mask_from_alpha=True))
    with pytest.raises(UsageError, match="image sequence"):
        render_layers(open_layers(fg, bg), track, tmp_path / "c" / "c.%04d.png", config, write_fg=tmp_path / "e.mp4")


def test_sidecar_round_trip_keeps_layer_keys(tmp_path: Path) -> None:
    fg, bg = _write_layers(tmp_path, n=2)
    process_layers(
        fg, bg, tmp_path / "a" / "a.%04d.png", ProcessConfig(smoothing="off"), params_out=tmp_path / "p.json"
    )
    header = read_params(tmp_path / "p.json").header
    assert header["foreground"] == str(fg) and len(header["foreground_fingerprint"]) == 64
    assert header["masks"] == str(fg)  # the foreground's own alpha is the mask
    assert read_image(tmp_path / "a" / "a.1001.png").shape == (48, 64, 3)
