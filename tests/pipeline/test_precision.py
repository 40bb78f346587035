"""Precision of 16-bit and float frames through analysis and render (issue 11, item 4).

A 16-bit or float input harmonized with zero arguments comes back identical (within half a 16-bit step, or
1e-5 for float); where the mask is 0 every value survives exactly, also above 1 and below 0; inside the mask
values outside [0, 1] follow the documented extension rule and are never NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vidharm.filters import apply_filters, apply_filters_unbounded, measure_filter_stats
from vidharm.io import ColorManagement, open_color_management, read_frames
from vidharm.pipeline import ProcessConfig, analyze, open_clip, render_frame
from vidharm.pipeline.analyze import analysis_frame, frame_histogram, resize_for_model, to_model_input
from vidharm.pipeline.render import render_video

ZERO = [0.0] * 6
ARGS = [0.25, -0.3, 0.4, 0.5, 0.35, -0.25]
# Colour management off, and scene-linear ACEScg / log ACEScct through the ACES config built into OpenColorIO.
SPACES = [None, "ACEScg", "ACEScct"]


def _color(name: str | None) -> ColorManagement | None:
    return None if name is None else open_color_management(name)


def _mask(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Zero on the left third, soft in the middle, one on the right."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.float32)
    mask[:, width // 3 : 2 * width // 3] = rng.uniform(0.05, 1, (height, 2 * width // 3 - width // 3))
    mask[:, 2 * width // 3 :] = 1
    return mask


def _bits(image: np.ndarray) -> np.ndarray:
    """The float32 bit patterns, so that NaN == NaN and -0.0 != 0.0 in comparisons."""
    return image.view(np.uint32)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("exact", [False, True])
def test_16bit_zero_arguments_come_back_identical(space: str | None, exact: bool) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 65536, (24, 30, 3)).astype(np.uint16)
    image[0, :3] = [[0, 0, 0], [65535, 65535, 65535], [1, 65534, 32768]]
    out = render_frame(image, np.ones((24, 30), np.float32), ZERO, exact=exact, color=_color(space))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("space", SPACES)
def test_16bit_results_keep_16bit_precision(space: str | None) -> None:
    """A smooth 16-bit ramp, brightened: the result has thousands of levels (not 256) and follows the float math."""
    ramp = np.linspace(0, 65535, 4096).round().astype(np.uint16)
    image = np.stack([ramp, ramp // 2 + 10000, 65535 - ramp], axis=-1).reshape(64, 64, 3)
    args = [0.1, 0.3, 0.2, 0.1, 0.0, 0.0]
    mask = np.ones((64, 64), np.float32)
    out = render_frame(image, mask, args, color=_color(space))
    assert out.dtype == np.uint16
    assert len(np.unique(out[..., 0])) > 1000  # an 8-bit round trip would leave at most 256
    assert np.abs(out.astype(np.int64) - image).max() > 1000  # the arguments did something
    if space is None:
        # Within one level of the float64 filter arithmetic on the 16-bit values.
        x = torch.from_numpy(image.astype(np.float64) / 65535).permute(2, 0, 1)[None]
        want = apply_filters(x, torch.tensor([args], dtype=torch.float64))[0].permute(1, 2, 0).numpy() * 65535
        assert np.abs(out - want).max() <= 1.0
    # The float path on the same values, rounded once at the end: the 16-bit result is that to within a level.
    floats = render_frame(image.astype(np.float32) / 65535, mask, args, color=_color(space))
    assert np.abs(out - np.clip(floats, 0, 1) * 65535).max() <= 1.0


@pytest.mark.parametrize("space", SPACES)
def test_float_zero_arguments_within_1e5(space: str | None) -> None:
    rng = np.random.default_rng(2)
    image = rng.uniform(-0.25, 1.0, (20, 24, 3)).astype(np.float32)
    out = render_frame(image, np.ones((20, 24), np.float32), ZERO, color=_color(space))
    assert out.dtype == np.float32
    assert np.abs(out - image).max() <= 1e-5
    # Scene-linear highlights: within 1e-5 of their magnitude (the reference filters' own 1e-6 guards, e.g. the
    # brightness gain 1 / (1 + 1e-6) at amount 0, scaled by the slope of the conversion back).
    bright = rng.uniform(1.0, 1000.0, (20, 24, 3)).astype(np.float32)
    out = render_frame(bright, np.ones((20, 24), np.float32), ZERO, color=_color(space))
    assert (np.abs(out - bright) <= 1e-5 * np.abs(bright)).all()


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("stats", [None, [0.4, 0.5, 0.6, 0.5]])
def test_where_the_mask_is_zero_every_float_value_survives_exactly(
    space: str | None, stats: list[float] | None
) -> None:
    rng = np.random.default_rng(3)
    # Linear values up to 50, or ACEScct code values up to 1.4 (linear 3e4; ACEScct 50 would overflow).
    image = rng.uniform(-2, 50, (16, 18, 3)).astype(np.float32) / (35 if space == "ACEScct" else 1)
    image[0, 0] = [np.nan, np.inf, -np.inf]
    image[1, 0] = [-0.0, 1e30, -1e-30]
    image[2, 0] = [65504.0, 1.0 + 2**-23, -7.0]
    mask = _mask(16, 18)
    out = render_frame(image, mask, ARGS, stats, color=_color(space))
    keep = mask == 0
    np.testing.assert_array_equal(_bits(out[keep]), _bits(image[keep]))
    assert np.isfinite(out[~keep]).all()
    assert not np.array_equal(out[mask == 1], image[mask == 1])


@pytest.mark.parametrize("space", SPACES)
def test_a_nan_pixel_inside_the_mask_is_left_as_it_is(space: str | None) -> None:
    image = np.full((4, 4, 3), 0.3, np.float32)
    image[1, 1] = [np.nan, 0.3, 0.3]
    out = render_frame(image, np.ones((4, 4), np.float32), ARGS, [0.3, 0.3, 0.3, 0.3], color=_color(space))
    np.testing.assert_array_equal(_bits(out[1, 1]), _bits(image[1, 1]))
    assert np.isfinite(out[0]).all() and not np.allclose(out[0], 0.3)


@settings(max_examples=60, deadline=None)
@given(
    image=arrays(
        np.float32,
        (3, 4, 3),
        elements=st.one_of(st.floats(-1e4, 1e4, width=32), st.floats(-0.0625, 1.0625, width=32)),
    ),
    space=st.sampled_from(SPACES),
    args=st.lists(st.floats(-1.5, 1.5), min_size=6, max_size=6),
)
def test_values_outside_the_analysis_range_are_never_nan(
    image: np.ndarray, space: str | None, args: list[float]
) -> None:
    mask = np.array([[0, 0.5, 1, 1]] * 3, np.float32)
    out = render_frame(image, mask, args, color=_color(space))
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(_bits(out[mask == 0]), _bits(image[mask == 0]))


def test_float_render_is_the_documented_rule() -> None:
    """Without colour management a float frame gets x + mask * (f(x) - x), f the unbounded filters."""
    rng = np.random.default_rng(4)
    image = rng.uniform(-0.5, 3.0, (8, 9, 3)).astype(np.float32)
    mask = _mask(8, 9)
    stats = [0.45, 0.5, 0.55, 0.5]
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    f = apply_filters_unbounded(x, torch.tensor([ARGS]), torch.tensor([stats]))[0].permute(1, 2, 0).numpy()
    want = np.where((mask == 0)[..., None], image, image + mask[..., None] * (f - image))
    np.testing.assert_allclose(render_frame(image, mask, ARGS, stats), want, atol=1e-6)


@pytest.mark.parametrize("space", SPACES)
def test_foreground_only_path_equals_the_whole_frame(space: str | None) -> None:
    """With statistics given only the foreground is converted and filtered: the same numbers as the whole frame."""
    color = _color(space)
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 4, (12, 15, 3)).astype(np.float32)
    mask = _mask(12, 15)
    analysis = color.to_analysis(image) if color is not None else image
    clipped = torch.from_numpy(analysis).permute(2, 0, 1)[None].clamp(0, 1)
    stats = measure_filter_stats(clipped, torch.tensor([ARGS]))[0].tolist()
    whole = render_frame(image, mask, ARGS, None, color=color)  # measures: the whole-frame path
    np.testing.assert_array_equal(render_frame(image, mask, ARGS, stats, color=color), whole)


def test_analysis_frame_and_model_inputs_of_deep_and_float_frames() -> None:
    rng = np.random.default_rng(6)
    u16 = rng.integers(0, 65536, (9, 7, 3)).astype(np.uint16)
    assert analysis_frame(u16) is u16
    assert analysis_frame(u16, open_color_management("srgb_tx")) is u16  # the analysis space itself
    floats = rng.uniform(-0.5, 1.5, (9, 7, 3)).astype(np.float32)
    quantised = analysis_frame(floats)
    assert quantised.dtype == np.uint16
    assert np.abs(quantised / 65535 - np.clip(floats, 0, 1)).max() <= 0.5 / 65535 + 1e-7
    acescg = open_color_management("ACEScg")
    managed = analysis_frame(floats, acescg)
    want = np.clip(acescg.to_analysis(floats), 0, 1)
    assert np.abs(managed / 65535 - want).max() <= 0.5 / 65535 + 1e-7
    # Histograms of float frames are those of their 16-bit levels; resizes agree with the torch resize.
    np.testing.assert_array_equal(frame_histogram(floats), frame_histogram(quantised))
    mask = rng.uniform(0, 1, (9, 7)).astype(np.float32)
    small, _ = resize_for_model(floats, mask, 4)
    torch_small, _ = to_model_input(floats, mask, 4, torch.device("cpu"))
    np.testing.assert_allclose(small, torch_small[0].permute(1, 2, 0).numpy(), atol=1e-6)
    assert small.min() >= 0 and small.max() <= 1


@pytest.mark.parametrize("space", [None, "ACEScct"])
def test_16bit_video_at_zero_arguments_is_bit_exact_through_analyze_and_render(
    tmp_path: Path, clip_with_masks: Callable[..., tuple[Path, Path]], space: str | None
) -> None:
    clip, masks = clip_with_masks(num_frames=4, name="deep.mkv", codec="ffv1", pix_fmt="gbrp16le", color=None)
    config = ProcessConfig(codec="ffv1", colorspace=space, device="cpu")
    inp = open_clip(clip, masks)
    track = analyze(inp, config)
    assert track.header["color"] == (None if space is None else open_color_management(space).describe())
    for row in track.frames:
        row.smoothed = list(ZERO)
    out = tmp_path / "out.mkv"
    render_video(inp, track, out, config)
    for a, b in zip(read_frames(clip), read_frames(out), strict=True):
        assert b.image.dtype == np.uint16
        np.testing.assert_array_equal(a.image, b.image)
    # And with the arguments analyze found, the background (mask 0) is still bit-exact and 16-bit.
    track = analyze(inp, config)
    render_video(inp, track, out, config)
    masks_iter = inp.masks.iter_masks(inp.frames, 64, 48)
    for a, b, m in zip(read_frames(clip), read_frames(out), masks_iter, strict=True):
        np.testing.assert_array_equal(a.image[m == 0], b.image[m == 0])
        assert not np.array_equal(a.image[m == 1], b.image[m == 1])
        assert (b.image[m == 1] % 257 != 0).any()  # not 8-bit levels scaled up
