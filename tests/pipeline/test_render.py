"""render_frame's two paths (vidharm/pipeline/render.py): lookup tables by default, torch with exact=True."""

from __future__ import annotations

import numpy as np
import pytest

from vidharm.errors import UsageError
from vidharm.pipeline import render_frame
from vidharm.pipeline.methods import Method


def _frame(dtype: type = np.uint8, shape: tuple[int, int] = (40, 56)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = rng.integers(0, np.iinfo(dtype).max + 1, size=(*shape, 3), dtype=dtype)
    mask = np.zeros(shape, np.float32)
    mask[8:30, 10:40] = 1.0
    mask[8:30, 40:50] = np.linspace(1, 0, 10, dtype=np.float32)  # a soft edge ending at 0
    return image, mask


ARGS = [0.2, -0.3, 0.4, 0.5, 0.3, 0.35]
STATS = [0.45, 0.5, 0.55, 0.48]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("mix", [1.0, 0.5])
def test_lookup_tables_within_one_level_of_torch(dtype: type, mix: float) -> None:
    image, mask = _frame(dtype)
    fast = render_frame(image, mask, ARGS, STATS, mix=mix)
    exact = render_frame(image, mask, ARGS, STATS, mix=mix, exact=True)
    assert fast.dtype == exact.dtype == dtype
    assert np.abs(fast.astype(np.int64) - exact.astype(np.int64)).max() <= 1
    np.testing.assert_array_equal(fast[mask == 0], image[mask == 0])
    assert (fast[mask == 1] != image[mask == 1]).any()


def test_statistics_measured_when_not_given() -> None:
    image, mask = _frame()
    fast = render_frame(image, mask, ARGS)
    exact = render_frame(image, mask, ARGS, exact=True)
    assert np.abs(fast.astype(np.int64) - exact.astype(np.int64)).max() <= 1


def test_mix_zero_returns_the_image() -> None:
    image, mask = _frame()
    np.testing.assert_array_equal(render_frame(image, mask, ARGS, STATS, mix=0.0), image)
    with pytest.raises(UsageError, match="between 0 and 1"):
        render_frame(image, mask, ARGS, STATS, mix=-0.1)


def test_colour_transforms_keep_the_torch_path() -> None:
    image, mask = _frame()
    identity = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0, 0]
    shifted = [1.0, 0, 0, 0.1, 0, 1.0, 0, 0, 0, 0, 1.0, -0.1]
    np.testing.assert_array_equal(render_frame(image, mask, identity, method=Method("affine")), image)
    a = render_frame(image, mask, shifted, method=Method("affine"))
    np.testing.assert_array_equal(a, render_frame(image, mask, shifted, method=Method("affine"), exact=True))
    assert (a[mask == 1] != image[mask == 1]).any()
