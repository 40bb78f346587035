"""Tests for vidharm/temporal/_smooth.py: EMA and zero-lag smoothing of parameter tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidharm.errors import InputError, ShapeError, UsageError
from vidharm.temporal import DEFAULT_HALF_LIFE_S, SMOOTH_MODES, ema_alpha, smooth_track


def _uniform(n: int, fps: float, start: float = 0.0) -> np.ndarray:
    return start + np.arange(n) / fps


def _local_linear_reference(x: np.ndarray, t: np.ndarray, half_life_s: float) -> np.ndarray:
    """O(T^2) weighted least squares, one line fit per output, to check the recursive version."""
    out = np.empty_like(x)
    for i in range(len(t)):
        d = t - t[i]
        w = np.exp2(-np.abs(d) / half_life_s)
        design = np.stack([np.ones_like(d), d], axis=1)
        coef = np.linalg.solve(design.T @ (design * w[:, None]), (design * w[:, None]).T @ x)
        out[i] = coef[0]
    return out


# ---- ema_alpha


def test_ema_alpha_reference_values() -> None:
    assert ema_alpha(1.0, 1.0) == 0.5
    assert ema_alpha(2.0, 1.0) == pytest.approx(1 - 2**-0.5, abs=1e-15)
    assert ema_alpha(0.0, 0.04) == 1.0
    assert ema_alpha(math.inf, 0.04) == 0.0
    assert ema_alpha(1.0, 0.0) == 0.0


def test_default_half_life_reproduces_official_demo_at_25fps() -> None:
    # Harmonizer's video demo: s = 0.96 s + 0.04 a at a hard-coded 25 fps.
    assert ema_alpha(DEFAULT_HALF_LIFE_S, 1 / 25) == pytest.approx(0.04, abs=1e-14)
    rng = np.random.default_rng(0)
    raw = rng.uniform(-1, 1, (60, 6))
    state = raw[0].copy()
    expected = [state.copy()]
    for a in raw[1:]:
        state = 0.96 * state + 0.04 * a
        expected.append(state.copy())
    got = smooth_track(raw, _uniform(60, 25.0), half_life_s=DEFAULT_HALF_LIFE_S)
    np.testing.assert_allclose(got, np.array(expected), atol=1e-12)


def test_ema_alpha_rejects_bad_values() -> None:
    with pytest.raises(UsageError, match="half_life_s"):
        ema_alpha(-1.0, 0.04)
    with pytest.raises(UsageError, match="half_life_s"):
        ema_alpha(math.nan, 0.04)
    with pytest.raises(InputError, match="dt_s"):
        ema_alpha(1.0, -0.04)


# ---- causal EMA


def test_ema_step_reaches_half_after_one_half_life() -> None:
    # Step first seen at frame k: the new value is held over (t[k-1], t[k]], so the curve is
    # 1 - 2**(-(t - t[k-1]) / h) and equals 0.5 exactly one half-life after t[k-1].
    fps, half_life, k = 100.0, 0.25, 10
    track = np.zeros((80, 1))
    track[k:] = 1.0
    times = _uniform(80, fps)
    out = smooth_track(track, times, half_life_s=half_life)[:, 0]
    assert out[:k] == pytest.approx(0.0, abs=0.0)
    assert out[k - 1 + 25] == pytest.approx(0.5, abs=1e-12)
    expected = 1.0 - np.exp2(-(times[k:] - times[k - 1]) / half_life)
    np.testing.assert_allclose(out[k:], expected, atol=1e-12)


def test_ema_same_curve_at_25_and_50_fps() -> None:
    # The same step in time (after t = 0.4 s) sampled at two frame rates gives the same values at shared times.
    half_life = 0.3
    t25, t50 = _uniform(50, 25.0), _uniform(100, 50.0)
    x25 = (t25 > 0.4 + 1e-9).astype(float)[:, None]
    x50 = (t50 > 0.4 + 1e-9).astype(float)[:, None]
    y25 = smooth_track(x25, t25, half_life_s=half_life)[:, 0]
    y50 = smooth_track(x50, t50, half_life_s=half_life)[:, 0]
    np.testing.assert_allclose(y25, y50[::2], atol=1e-12)
    assert 0.1 < y25[15] < 0.9  # the comparison is made while the curve is still rising


def test_ema_variable_frame_rate_matches_continuous_solution() -> None:
    rng = np.random.default_rng(1)
    times = np.cumsum(rng.uniform(0.005, 0.09, 120))
    jump_row = 40
    track = np.where(np.arange(120) >= jump_row, 2.0, -1.0)[:, None]
    half_life = 0.2
    out = smooth_track(track, times, half_life_s=half_life)[:, 0]
    expected = 2.0 - 3.0 * np.exp2(-(times[jump_row:] - times[jump_row - 1]) / half_life)
    np.testing.assert_allclose(out[jump_row:], expected, atol=1e-12)
    np.testing.assert_array_equal(out[:jump_row], -1.0)


def test_ema_two_vfr_grids_agree_at_shared_times() -> None:
    # A piecewise-constant signal whose jumps fall on sample times of both grids.
    rng = np.random.default_rng(2)
    shared = np.sort(rng.uniform(0, 4, 15))
    grid_a = np.unique(np.concatenate([shared, rng.uniform(0, 4, 40)]))
    grid_b = np.unique(np.concatenate([shared, rng.uniform(0, 4, 25)]))
    jumps = shared[[3, 8, 12]]

    def signal(t: np.ndarray) -> np.ndarray:
        # Value on (jump_i, jump_i+1]: held from the right end, like a sample.
        return np.searchsorted(jumps, t, side="left").astype(float)[:, None]

    # Both grids start (at different times) on value 0, which holds until the first jump, so their states agree.
    assert signal(grid_a)[0, 0] == signal(grid_b)[0, 0] == 0.0
    ya = smooth_track(signal(grid_a), grid_a, half_life_s=0.5)[:, 0]
    yb = smooth_track(signal(grid_b), grid_b, half_life_s=0.5)[:, 0]
    ia, ib = np.searchsorted(grid_a, shared), np.searchsorted(grid_b, shared)
    np.testing.assert_allclose(ya[ia], yb[ib], atol=1e-12)
    assert len(np.unique(ya[ia].round(6))) > 5


def test_ema_output_stays_within_input_range() -> None:
    rng = np.random.default_rng(3)
    track = rng.normal(size=(200, 4)) * 3
    out = smooth_track(track, np.cumsum(rng.uniform(0.01, 0.1, 200)), half_life_s=0.3)
    assert (out >= track.min(axis=0) - 1e-12).all() and (out <= track.max(axis=0) + 1e-12).all()


# ---- cuts


@pytest.mark.parametrize("mode", SMOOTH_MODES)
def test_cut_resets_state_without_leakage(mode: str) -> None:
    rng = np.random.default_rng(4)
    times = _uniform(60, 25.0)
    first = rng.normal(0.0, 0.1, (30, 3))
    second = rng.normal(5.0, 0.1, (30, 3))
    track = np.concatenate([first, second])
    out = smooth_track(track, times, half_life_s=0.5, mode=mode, cuts=[30])
    alone_first = smooth_track(first, times[:30], half_life_s=0.5, mode=mode)
    alone_second = smooth_track(second, times[30:], half_life_s=0.5, mode=mode)
    np.testing.assert_array_equal(out[:30], alone_first)
    np.testing.assert_array_equal(out[30:], alone_second)
    if mode == "ema":
        np.testing.assert_array_equal(out[30], second[0])  # the first frame after a cut initialises the state


def test_cut_edge_values_and_order_do_not_matter() -> None:
    rng = np.random.default_rng(5)
    track = rng.normal(size=(20, 2))
    times = _uniform(20, 10.0)
    base = smooth_track(track, times, half_life_s=0.3, cuts=[12, 5])
    np.testing.assert_array_equal(smooth_track(track, times, half_life_s=0.3, cuts=[0, 5, 12, 12, 20]), base)


def test_cut_out_of_range_rejected() -> None:
    with pytest.raises(InputError, match="cuts"):
        smooth_track(np.zeros((5, 1)), _uniform(5, 25.0), half_life_s=0.5, cuts=[6])
    with pytest.raises(InputError, match="cuts"):
        smooth_track(np.zeros((5, 1)), _uniform(5, 25.0), half_life_s=0.5, cuts=[2.5])  # type: ignore[list-item]


# ---- zero lag


def test_zero_lag_reproduces_ramp_exactly_with_vfr() -> None:
    rng = np.random.default_rng(6)
    times = 100.0 + np.cumsum(rng.uniform(0.01, 0.08, 150))
    ramp = np.stack([3.0 * times - 7.0, -0.5 * times, 0.01 * times + 1.0], axis=1)
    for half_life in (0.05, DEFAULT_HALF_LIFE_S, 3.0, math.inf):
        out = smooth_track(ramp, times, half_life_s=half_life, mode="zero_lag")
        np.testing.assert_allclose(out, ramp, rtol=0, atol=1e-9)
    # No droop at the ends in particular (where a padded or one-sided filter sags).
    out = smooth_track(ramp, times, half_life_s=1.0, mode="zero_lag")
    np.testing.assert_allclose(out[[0, -1]], ramp[[0, -1]], atol=1e-9)


def test_zero_lag_step_is_point_symmetric() -> None:
    track = np.zeros((40, 1))
    track[20:] = 1.0
    out = smooth_track(track, _uniform(40, 25.0), half_life_s=0.2, mode="zero_lag")[:, 0]
    np.testing.assert_allclose(out + out[::-1], 1.0, atol=1e-12)
    assert out[19] == pytest.approx(1.0 - out[20], abs=1e-12) and 0.0 < out[19] < 0.5


def test_zero_lag_has_no_phase_shift_on_a_sine() -> None:
    times = _uniform(400, 25.0)
    track = np.sin(2 * np.pi * 0.5 * times)[:, None]
    out = smooth_track(track, times, half_life_s=0.1, mode="zero_lag")[:, 0]
    interior = slice(100, 300)
    lags = np.arange(-5, 6)
    corr = [np.dot(track[interior, 0], np.roll(out, -lag)[interior]) for lag in lags]
    assert lags[int(np.argmax(corr))] == 0
    ema = smooth_track(track, times, half_life_s=0.1, mode="ema")[:, 0]
    corr_ema = [np.dot(track[interior, 0], np.roll(ema, -lag)[interior]) for lag in lags]
    assert lags[int(np.argmax(corr_ema))] > 0  # the causal EMA lags


def test_zero_lag_matches_direct_weighted_least_squares() -> None:
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.uniform(0.01, 0.08, 90))
    track = rng.normal(size=(90, 3)).cumsum(axis=0)
    out = smooth_track(track, times, half_life_s=0.2, mode="zero_lag")
    np.testing.assert_allclose(out, _local_linear_reference(track, times, 0.2), atol=1e-10)


def test_zero_lag_interior_is_the_normalised_two_sided_kernel() -> None:
    # On a uniform grid, far from the ends, the slope term drops out by symmetry: the output is the
    # Laplace-kernel weighted mean with weights r**|k|, r = 2**(-dt / h).
    rng = np.random.default_rng(8)
    n, fps, half_life = 301, 25.0, 0.1
    track = rng.normal(size=(n, 1))
    out = smooth_track(track, _uniform(n, fps), half_life_s=half_life, mode="zero_lag")
    k = np.arange(n) - 150
    w = np.exp2(-np.abs(k) / fps / half_life)
    assert out[150, 0] == pytest.approx(np.sum(w * track[:, 0]) / np.sum(w), abs=1e-10)


def test_zero_lag_with_infinite_half_life_is_a_line_fit() -> None:
    rng = np.random.default_rng(9)
    times = np.cumsum(rng.uniform(0.01, 0.08, 50))
    track = rng.normal(size=(50, 1))
    out = smooth_track(track, times, half_life_s=math.inf, mode="zero_lag")[:, 0]
    slope, intercept = np.polyfit(times, track[:, 0], 1)
    np.testing.assert_allclose(out, slope * times + intercept, atol=1e-10)


def test_zero_lag_short_segments_pass_through() -> None:
    track = np.array([[1.0], [3.0], [-2.0]])
    out = smooth_track(track, _uniform(3, 25.0), half_life_s=1.0, mode="zero_lag", cuts=[1])
    np.testing.assert_array_equal(out, track)


def test_zero_lag_tiny_half_life_falls_back_to_the_samples() -> None:
    rng = np.random.default_rng(10)
    track = rng.normal(size=(10, 2))
    out = smooth_track(track, _uniform(10, 25.0), half_life_s=1e-9, mode="zero_lag")
    np.testing.assert_allclose(out, track, atol=1e-12)


def test_zero_lag_reduces_noise_more_than_ema() -> None:
    rng = np.random.default_rng(11)
    noise = rng.normal(size=(3000, 1))
    times = _uniform(3000, 25.0)
    zl = smooth_track(noise, times, half_life_s=DEFAULT_HALF_LIFE_S, mode="zero_lag")[100:-100].var()
    ema = smooth_track(noise, times, half_life_s=DEFAULT_HALF_LIFE_S, mode="ema")[100:-100].var()
    # Theory for r = 0.96: EMA 0.0204, two-sided 0.0102.
    assert ema == pytest.approx(0.04 / 1.96, rel=0.3)
    assert zl < 0.7 * ema


# ---- identities and errors


@pytest.mark.parametrize("mode", SMOOTH_MODES)
def test_half_life_zero_returns_a_copy(mode: str) -> None:
    track = np.random.default_rng(12).normal(size=(8, 6))
    out = smooth_track(track, _uniform(8, 25.0), half_life_s=0.0, mode=mode)
    np.testing.assert_array_equal(out, track)
    out[0, 0] += 1.0
    assert out[0, 0] != track[0, 0]


@pytest.mark.parametrize("mode", SMOOTH_MODES)
def test_constant_track_returned_exactly(mode: str) -> None:
    track = np.tile(np.array([0.1, -0.7, 0.3333333333333333, 1e-17, 5.0, -2.2]), (37, 1))
    times = np.cumsum(np.random.default_rng(13).uniform(0.01, 0.1, 37))
    out = smooth_track(track, times, half_life_s=0.4, mode=mode, cuts=[10])
    np.testing.assert_array_equal(out, track)
    assert out.dtype == np.float64


def test_empty_track_and_single_row() -> None:
    assert smooth_track(np.zeros((0, 6)), np.zeros(0), half_life_s=1.0).shape == (0, 6)
    np.testing.assert_array_equal(
        smooth_track(np.ones((1, 6)), np.zeros(1), half_life_s=1.0, mode="zero_lag"), np.ones((1, 6))
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_track_rejected(bad: float) -> None:
    track = np.zeros((5, 2))
    track[3, 1] = bad
    with pytest.raises(InputError, match="row 3"):
        smooth_track(track, _uniform(5, 25.0), half_life_s=0.5)


def test_unknown_mode_lists_valid_modes() -> None:
    with pytest.raises(UsageError, match="ema, zero_lag"):
        smooth_track(np.zeros((3, 1)), _uniform(3, 25.0), half_life_s=0.5, mode="gauss")


def test_shape_and_time_errors() -> None:
    with pytest.raises(ShapeError, match=r"\(T, D\)"):
        smooth_track(np.zeros(5), _uniform(5, 25.0), half_life_s=0.5)
    with pytest.raises(ShapeError, match="times_s"):
        smooth_track(np.zeros((5, 1)), _uniform(4, 25.0), half_life_s=0.5)
    with pytest.raises(InputError, match="strictly increasing"):
        smooth_track(np.zeros((3, 1)), np.array([0.0, 0.04, 0.04]), half_life_s=0.5)
    with pytest.raises(InputError, match="times_s"):
        smooth_track(np.zeros((3, 1)), np.array([0.0, math.nan, 0.1]), half_life_s=0.5)
    with pytest.raises(UsageError, match="half_life_s"):
        smooth_track(np.zeros((3, 1)), _uniform(3, 25.0), half_life_s=-0.1)


# ---- properties

_times = st.lists(st.floats(1e-3, 0.5), min_size=1, max_size=40).map(lambda d: np.cumsum(np.array(d)))


@settings(max_examples=60, deadline=None)
@given(
    times=_times,
    value=st.floats(-1e6, 1e6, allow_nan=False),
    half_life=st.one_of(st.just(0.0), st.floats(1e-4, 1e3), st.just(math.inf)),
    mode=st.sampled_from(SMOOTH_MODES),
    cut=st.integers(0, 40),
)
def test_property_constant_track_is_returned(
    times: np.ndarray, value: float, half_life: float, mode: str, cut: int
) -> None:
    track = np.full((len(times), 3), value)
    out = smooth_track(track, times, half_life_s=half_life, mode=mode, cuts=[min(cut, len(times))])
    np.testing.assert_array_equal(out, track)


@settings(max_examples=60, deadline=None)
@given(
    times=_times,
    seed=st.integers(0, 2**32 - 1),
    half_life=st.floats(1e-4, 1e3),
    scale=st.floats(1e-3, 1e3),
)
def test_property_ema_stays_within_input_range(times: np.ndarray, seed: int, half_life: float, scale: float) -> None:
    track = np.random.default_rng(seed).normal(size=(len(times), 2)) * scale
    out = smooth_track(track, times, half_life_s=half_life, mode="ema")
    tol = 1e-12 * scale
    assert (out >= track.min(axis=0) - tol).all() and (out <= track.max(axis=0) + tol).all()
