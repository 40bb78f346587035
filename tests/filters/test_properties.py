"""Property tests: for any image and any arguments the chain stays finite, in range, and keeps the background."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vidharm.errors import InputError
from vidharm.filters import apply_filters, apply_filters_unbounded, composite, measure_filter_stats

# Arguments anywhere, the clamp limits and far beyond them included.
ARG = st.one_of(st.sampled_from([-1.0, 1.0, 0.0, -1e6, 1e6]), st.floats(-3.0, 3.0, allow_nan=False))
SIZE = st.integers(1, 9)


@st.composite
def frames(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h, w = draw(SIZE), draw(SIZE)
    image = draw(arrays(np.uint8, (h, w, 3)))
    mask = draw(arrays(np.uint8, (h, w), elements=st.sampled_from([0, 0, 64, 255])))
    args = draw(st.lists(ARG, min_size=6, max_size=6))
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    m = torch.from_numpy(mask)[None, None].float() / 255
    return x, m, torch.tensor([args], dtype=torch.float32)


@settings(max_examples=200, deadline=None)
@given(frames())
def test_outputs_finite_in_range_and_background_kept(case: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    x, m, args = case
    out = apply_filters(x, args)
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    blended = composite(out, x, m)
    assert torch.equal(blended[m.expand_as(x) == 0], x[m.expand_as(x) == 0])
    stats = measure_filter_stats(x, args)
    assert torch.isfinite(stats).all()
    assert torch.equal(apply_filters(x, args, stats), out)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@settings(max_examples=20, deadline=None)
@given(position=st.integers(0, 5))
def test_nan_and_inf_arguments_are_rejected(bad: float, position: int) -> None:
    args = torch.zeros(1, 6)
    args[0, position] = bad
    with pytest.raises(InputError):
        apply_filters(torch.rand(1, 3, 4, 4), args)


# Analysis-space values of colour-managed frames: far outside [0, 1] both ways (float32 range), and near the limits.
UNBOUNDED = st.one_of(
    st.floats(-1e30, 1e30).map(np.float32),
    st.floats(-0.01, 1.01).map(np.float32),
    st.sampled_from([0.0, 1.0, -0.0, float(np.float32(1e-30)), float(np.float32(1 - 1e-7))]),
)


@settings(max_examples=200, deadline=None)
@given(
    image=arrays(
        np.float32, st.tuples(st.integers(1, 4), st.integers(1, 4), st.just(3)), elements=UNBOUNDED.map(float)
    ),
    args=st.lists(ARG, min_size=6, max_size=6),
)
def test_unbounded_filters_are_finite_and_carry_the_excess(image: np.ndarray, args: list[float]) -> None:
    """The rule for values outside [0, 1]: never NaN, and out - x is bounded as for in-range values."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    out = apply_filters_unbounded(x, torch.tensor([args]))
    assert torch.isfinite(out).all()
    # filter(clamp(x)) is in [0, 1], so out - (x - clamp(x)) stays in [0, 1] (float32 rounding of huge x aside).
    core = out.double() - (x.double() - x.clamp(0, 1).double())
    tolerance = 1e-6 + 1e-6 * x.double().abs()
    assert (core >= -tolerance).all() and (core <= 1 + tolerance).all()
