"""Smoothing of per-frame parameter tracks: causal EMA and a zero-lag offline smoother.

Both smoothers share one meaning of ``half_life_s``: a sample ``half_life_s`` seconds away in time weighs half
as much as the sample at the current time. Time comes from per-frame timestamps, so the smoothing is the same
at any frame rate, including variable frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vidharm.errors import InputError, ShapeError, UsageError

__all__ = ["DEFAULT_HALF_LIFE_S", "SMOOTH_MODES", "ema_alpha", "smooth_track"]

# The official Harmonizer video demo smooths with s_t = 0.96 s_{t-1} + 0.04 a_t at a hard-coded 25 fps
# (research/harmonizer.md section 4.2 and 7), a time constant of ~0.98 s.
_OFFICIAL_EMA = 0.96
_OFFICIAL_FPS = 25.0

DEFAULT_HALF_LIFE_S: float = math.log(2.0) / (_OFFICIAL_FPS * -math.log(_OFFICIAL_EMA))
"""Default half-life in seconds, ~0.679 s: the official Harmonizer demo's EMA expressed in time.

Why this value: ``ema_alpha(DEFAULT_HALF_LIFE_S, 1 / 25) == 0.04`` (to rounding), so on 25 fps material the
causal EMA reproduces the official demo's ``ema = 0.96`` exactly, which keeps the parity path free of a magic
constant, while other frame rates keep the same ~1 s time constant instead of the demo's frame-count one
(on HYouTube's ~6 fps clips the demo's 0.96 would be a ~2.8 s half-life). A longer half-life would remove more
flicker but lags real lighting changes in the causal mode; the zero-lag mode has no lag, and at the same
half-life about halves the residual noise variance of the EMA (two-sided kernel), so there is no need to lengthen it
to get more smoothing offline.
"""

SMOOTH_MODES: tuple[str, ...] = ("ema", "zero_lag")
"""Valid values of ``smooth_track(mode=...)``."""


def ema_alpha(half_life_s: float, dt_s: float) -> float:
    """Weight of the new sample in one EMA step of ``dt_s`` seconds: ``1 - 2 ** (-dt_s / half_life_s)``.

    Args:
        half_life_s: half-life in seconds, >= 0 (``math.inf`` allowed: the state never moves); 0 means no
            smoothing.
        dt_s: time since the previous sample in seconds, >= 0.

    Returns:
        The weight in [0, 1]; 1.0 when ``half_life_s`` is 0.

    Raises:
        UsageError: ``half_life_s`` is negative or NaN.
        InputError: ``dt_s`` is negative or not finite.

    Example:
        >>> ema_alpha(1.0, 1.0)
        0.5
        >>> round(ema_alpha(DEFAULT_HALF_LIFE_S, 1 / 25), 12)  # the official demo's 1 - 0.96
        0.04
        >>> ema_alpha(0.0, 0.04)
        1.0
    """
    _check_half_life(half_life_s)
    if not math.isfinite(dt_s) or dt_s < 0:
        raise InputError(f"dt_s: expected a finite time step >= 0 seconds, got {dt_s}; pass increasing timestamps")
    if half_life_s == 0:
        return 1.0
    # -expm1 keeps precision when dt << half-life (alpha close to 0).
    return float(-math.expm1(-dt_s / half_life_s * math.log(2.0)))


def smooth_track(
    track: np.ndarray,
    times_s: np.ndarray,
    *,
    half_life_s: float,
    mode: str = "ema",
    cuts: Sequence[int] = (),
) -> np.ndarray:
    """Smooth a per-frame parameter track over time, resetting at scene cuts.

    Modes:

    * ``"ema"``: causal exponential moving average ``s_t = s_{t-1} + a_t (x_t - s_{t-1})`` with
      ``a_t = ema_alpha(half_life_s, times_s[t] - times_s[t-1])``. The first frame of the clip and of each
      segment after a cut initialises the state (as the official demo does with frame 0). Each new sample is
      held over the interval before it, so a step first seen at frame k reaches half its height exactly at
      ``times_s[k - 1] + half_life_s``, whatever the frame rate. Outputs stay within the input's range.
    * ``"zero_lag"``: offline, exponentially weighted local-linear regression. Each output is the value at
      time ``t`` of the straight line fitted by weighted least squares to its segment with weights
      ``2 ** (-|times_s[k] - times_s[t]| / half_life_s)``. The weighted sums come from one causal and one
      anti-causal recursive pass (a forward-backward filter); the line term is the bias correction that makes
      a straight ramp come out exactly (no phase shift anywhere, no droop at the clip's ends, with no padding
      needed), and the symmetric weights make a step come out point-symmetric about its midpoint. Near the
      ends the fit extrapolates, so noise there is damped less and a step close to an end can overshoot.

    Cuts split the track into segments smoothed independently in both modes: nothing leaks across a cut.

    Args:
        track: (T, D) per-frame values (e.g. the 6 raw Harmonizer arguments), any finite floats.
        times_s: (T,) presentation time of each row in seconds, strictly increasing (variable steps allowed).
        half_life_s: half-life in seconds, >= 0; 0 returns an unchanged copy; ``math.inf`` freezes the EMA at
            each segment's first value and makes ``zero_lag`` a plain line fit per segment.
        mode: ``"ema"`` or ``"zero_lag"`` (see :data:`SMOOTH_MODES`).
        cuts: row indices t where a new shot starts (a cut between rows t - 1 and t), each in [0, T];
            0 and T are accepted and change nothing; order and duplicates do not matter.

    Returns:
        (T, D) float64 smoothed track, a new array. Columns constant within a segment come back exactly.

    Raises:
        UsageError: unknown ``mode`` or invalid ``half_life_s``.
        ShapeError: ``track`` is not 2-D or ``times_s`` does not have T entries.
        InputError: NaN/inf in ``track`` or ``times_s``, times not strictly increasing, or a cut out of range.

    Example:
        >>> track = np.array([[0.0], [1.0], [1.0], [1.0]])
        >>> times = np.array([0.0, 1.0, 2.0, 3.0])
        >>> smooth_track(track, times, half_life_s=1.0)[:, 0].tolist()
        [0.0, 0.5, 0.75, 0.875]
        >>> ramp = np.array([[0.0], [2.0], [4.0], [6.0]])
        >>> smooth_track(ramp, times, half_life_s=1.0, mode="zero_lag")[:, 0].round(12).tolist()
        [0.0, 2.0, 4.0, 6.0]
        >>> smooth_track(track, times, half_life_s=1.0, cuts=[1])[:, 0].tolist()
        [0.0, 1.0, 1.0, 1.0]
    """
    if mode not in SMOOTH_MODES:
        raise UsageError(f"mode: expected one of {', '.join(SMOOTH_MODES)}, got {mode!r}; pick one of those")
    _check_half_life(half_life_s)
    x = np.asarray(track)
    if x.ndim != 2:
        raise ShapeError(f"track: expected shape (T, D), got {x.shape}; reshape a single parameter with track[:, None]")
    x = x.astype(np.float64, copy=True)
    n = x.shape[0]
    t = np.asarray(times_s, dtype=np.float64)
    if t.shape != (n,):
        raise ShapeError(f"times_s: expected shape ({n},) to match track's {n} rows, got {t.shape}")
    if not np.isfinite(x).all():
        row = int(np.argwhere(~np.isfinite(x))[0, 0])
        raise InputError(f"track: row {row} holds NaN or inf; every value must be finite (fix the analysis output)")
    if not np.isfinite(t).all():
        raise InputError("times_s: holds NaN or inf; every timestamp must be a finite number of seconds")
    if n > 1 and not (np.diff(t) > 0).all():
        row = int(np.argwhere(np.diff(t) <= 0)[0, 0]) + 1
        raise InputError(
            f"times_s: expected strictly increasing times, got {t[row]} after {t[row - 1]} at row {row}; "
            "drop duplicated frames or fix their timestamps"
        )
    bounds = _segment_bounds(cuts, n)
    if half_life_s == 0 or n == 0:
        return x
    out = np.empty_like(x)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        seg = x[start:stop]
        if mode == "ema":
            out[start:stop] = _ema(seg, t[start:stop], half_life_s)
        else:
            out[start:stop] = _local_linear(seg, t[start:stop], half_life_s)
    return out


def _check_half_life(half_life_s: float) -> None:
    if math.isnan(half_life_s) or half_life_s < 0:
        raise UsageError(
            f"half_life_s: expected seconds >= 0 (0 = no smoothing), got {half_life_s}; "
            f"the default is {DEFAULT_HALF_LIFE_S:.3f}"
        )


def _segment_bounds(cuts: Sequence[int], n: int) -> list[int]:
    inner = set()
    for c in cuts:
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise InputError(f"cuts: expected integer row indices, got {c!r}; pass the rows where new shots start")
        if not 0 <= int(c) <= n:
            raise InputError(f"cuts: expected row indices in [0, {n}], got {int(c)}; cuts index the track's rows")
        if 0 < int(c) < n:
            inner.add(int(c))
    return [0, *sorted(inner), n]


def _ema(x: np.ndarray, t: np.ndarray, half_life_s: float) -> np.ndarray:
    # Step weights for the whole segment at once; the recursion itself is inherently sequential.
    keep = np.exp2(-np.diff(t) / half_life_s)
    out = np.empty_like(x)
    state = x[0].copy()
    out[0] = state
    for k in range(1, x.shape[0]):
        # s + a (x - s) leaves s bit-exact when x == s, so constant tracks come back exactly.
        state = state + (1.0 - keep[k - 1]) * (x[k] - state)
        out[k] = state
    return out


def _local_linear(x: np.ndarray, t: np.ndarray, half_life_s: float) -> np.ndarray:
    n = x.shape[0]
    if n < 3:
        # A line through one or two points reproduces them; there is nothing to smooth.
        return x.copy()
    # Work on deviations from the first value so constant columns are exactly zero all the way through.
    ref = x[0].copy()
    y = x - ref
    dt = np.diff(t)
    r = np.exp2(-dt / half_life_s)
    # Weighted moments about the current time, causal part (k <= i) then anti-causal part (k >= i):
    # m0 = sum w, m1 = sum w d, m2 = sum w d^2, v0 = sum w y, v1 = sum w y d, with d = t_k - t_i.
    c0 = np.empty(n)
    c1 = np.empty(n)
    c2 = np.empty(n)
    cv0 = np.empty_like(y)
    cv1 = np.empty_like(y)
    c0[0], c1[0], c2[0] = 1.0, 0.0, 0.0
    cv0[0], cv1[0] = y[0], 0.0
    for i in range(1, n):
        d, k = dt[i - 1], r[i - 1]
        c0[i] = k * c0[i - 1] + 1.0
        c1[i] = k * (c1[i - 1] - d * c0[i - 1])
        c2[i] = k * (c2[i - 1] - 2.0 * d * c1[i - 1] + d * d * c0[i - 1])
        cv0[i] = k * cv0[i - 1] + y[i]
        cv1[i] = k * (cv1[i - 1] - d * cv0[i - 1])
    b0 = np.empty(n)
    b1 = np.empty(n)
    b2 = np.empty(n)
    bv0 = np.empty_like(y)
    bv1 = np.empty_like(y)
    b0[-1], b1[-1], b2[-1] = 1.0, 0.0, 0.0
    bv0[-1], bv1[-1] = y[-1], 0.0
    for i in range(n - 2, -1, -1):
        d, k = dt[i], r[i]
        b0[i] = k * b0[i + 1] + 1.0
        b1[i] = k * (b1[i + 1] + d * b0[i + 1])
        b2[i] = k * (b2[i + 1] + 2.0 * d * b1[i + 1] + d * d * b0[i + 1])
        bv0[i] = k * bv0[i + 1] + y[i]
        bv1[i] = k * (bv1[i + 1] + d * bv0[i + 1])
    # Both passes include the centre sample (weight 1, d = 0): count it once.
    m0 = c0 + b0 - 1.0
    m1 = c1 + b1
    m2 = c2 + b2
    v0 = cv0 + bv0 - y
    v1 = cv1 + bv1
    det = m0 * m2 - m1 * m1
    # When neighbours carry (numerically) no weight the line is undetermined: fall back to the weighted mean.
    ok = det > 1e-12 * m0 * m2
    safe = np.where(ok, det, 1.0)
    line = (m2[:, None] * v0 - m1[:, None] * v1) / safe[:, None]
    mean = v0 / m0[:, None]
    # Constant columns stay exact: their deviations, and so v0, v1 and the fit, are exactly zero.
    return np.where(ok[:, None], line, mean) + ref
