"""Streaming flicker report over a clip: per-frame and per-pair metrics, a summary, a text table and a plot."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vidharm.errors import OutputError, ShapeError, UsageError
from vidharm.metrics._checks import as_image, as_mask
from vidharm.metrics._flow import DEFAULT_FLOW_PRESET
from vidharm.metrics._image import fmse, fpsnr, mse, psnr
from vidharm.metrics._temporal import (
    TL_SIZE,
    _tl_confidence,
    _tl_inputs,
    _tl_value,
    _warp_errors,
    foreground_luma,
)

__all__ = ["FlickerFrame", "evaluate_flicker", "format_flicker_table", "plot_flicker"]

FlickerFrame = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]
"""One item of the stream: (output, mask, ground truth or None, input composite or None)."""

_FRAME_KEYS = ("fg_luma", "fg_luma_gt", "mse", "psnr", "fmse", "fpsnr")
_PAIR_KEYS = ("fg_luma_change", "fg_luma_change_gt", "tl", "tl_gt", "e_warp", "e_warp_fg")

# (summary key, label) in table order.
_ROWS = (
    ("fg_luma_change", "fg luma mean |change| (0-255)"),
    ("fg_luma_change_gt", "  same on ground truth"),
    ("tl", f"TL, CO2Net ({TL_SIZE}x{TL_SIZE})"),
    ("tl_gt", "  ground-truth floor"),
    ("e_warp", "E_warp, Lai et al. (whole frame)"),
    ("e_warp_fg", "E_warp, foreground only"),
    ("mse", "MSE"),
    ("psnr", "PSNR (dB, range 255)"),
    ("fmse", "fMSE"),
    ("fpsnr", "fPSNR (dB)"),
)


def evaluate_flicker(
    frames: Iterable[FlickerFrame],
    *,
    first_frame: int = 0,
    tl_size: int | None = TL_SIZE,
    preset: str = DEFAULT_FLOW_PRESET,
) -> dict[str, Any]:
    """Temporal-consistency and image metrics for a clip, consuming frames one at a time.

    Only the current and the previous frame are held. Per frame: foreground luma (output, and ground truth
    when given), and MSE, PSNR, fMSE, fPSNR when the ground truth is given. Per consecutive pair: the change
    of foreground luma; CO2Net's TL and its ground-truth floor when both frames have ground truth; Lai et
    al.'s E_warp (whole frame, and weighted by the foreground mask of the first frame) when both frames have
    the input composite.

    Args:
        frames: iterable of ``(out, mask, gt, inp)``: ``out`` (H, W, 3) RGB output on the 0-255 scale
            (uint8, float, or uint16 rescaled by 1/257); ``mask`` (H, W) foreground in [0, 1]; ``gt`` the
            ground-truth frame or None; ``inp`` the unprocessed input composite or None. All frames one size.
        first_frame: source frame number of the first item, used to label rows.
        tl_size: square side TL is computed at (CO2Net: 256); None keeps the frames' size.
        preset: DIS preset for the flows.

    Returns:
        ``{"per_frame": [...], "per_pair": [...], "summary": {...}}``. Per-frame rows have ``frame`` and
        ``fg_luma``, ``fg_luma_gt``, ``mse``, ``psnr``, ``fmse``, ``fpsnr``; per-pair rows have ``frame``
        (the first frame of the pair) and ``fg_luma_change``, ``fg_luma_change_gt``, ``tl``, ``tl_gt``,
        ``e_warp``, ``e_warp_fg``. ``None`` marks a value that could not be computed (no ground truth or
        input, empty mask); PSNR values may be ``inf``. The summary holds ``frames``, ``pairs``, and for
        each key the mean over the rows where it is not None (None if there are none); its
        ``fg_luma_change`` equals ``mean_abs_change`` of the per-frame lumas.

    Raises:
        ShapeError: a frame's arrays differ in size, or the size changes within the clip.
        InputError: NaN or inf values.
        MaskError: mask values outside [0, 1].
        UsageError: bad ``tl_size`` or preset.

    Example:
        >>> out = np.full((16, 16, 3), 120.0)
        >>> mask = np.zeros((16, 16)); mask[4:12, 4:12] = 1.0
        >>> report = evaluate_flicker([(out, mask, out, out)] * 3, tl_size=None)
        >>> report["summary"]["tl"], report["summary"]["e_warp"], report["summary"]["fg_luma_change"]
        (0.0, 0.0, 0.0)
    """
    if tl_size is not None and (isinstance(tl_size, bool) or not isinstance(tl_size, int) or tl_size <= 0):
        raise UsageError(f"tl_size: expected a positive integer side or None, got {tl_size!r}; CO2Net uses {TL_SIZE}")
    per_frame: list[dict[str, Any]] = []
    per_pair: list[dict[str, Any]] = []
    prev: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None] | None = None
    prev_row: dict[str, Any] | None = None
    for index, item in enumerate(frames):
        current = _frame_arrays(item, index, None if prev is None else prev[0].shape)
        row = _frame_row(first_frame + index, *current)
        per_frame.append(row)
        if prev is not None and prev_row is not None:
            per_pair.append(_pair_row(first_frame + index - 1, prev, current, prev_row, row, tl_size, preset))
        prev, prev_row = current, row
    summary: dict[str, Any] = {"frames": len(per_frame), "pairs": len(per_pair)}
    for key in _FRAME_KEYS:
        summary[key] = _mean(r[key] for r in per_frame)
    for key in _PAIR_KEYS:
        summary[key] = _mean(r[key] for r in per_pair)
    return {"per_frame": per_frame, "per_pair": per_pair, "summary": summary}


def format_flicker_table(report: dict[str, Any]) -> str:
    """A plain-text table of a flicker report's summary (rows with no value are left out).

    Args:
        report: the dict :func:`evaluate_flicker` returns.

    Returns:
        Lines ``metric  value`` joined by newlines, starting with frame and pair counts.

    Raises:
        UsageError: ``report`` has no ``summary``.

    Example:
        >>> print(format_flicker_table({"summary": {"frames": 3, "pairs": 2, "tl": 1.5}}))
        metric                                   value
        frames                                       3
        pairs                                        2
        TL, CO2Net (256x256)                    1.5000
    """
    summary = report.get("summary") if isinstance(report, dict) else None
    if not isinstance(summary, dict):
        raise UsageError("report: expected the dict evaluate_flicker returns, with a 'summary' entry")
    width = max(len(label) for _, label in _ROWS) + 4
    lines = [f"{'metric':<{width}}{'value':>10}"]
    for key in ("frames", "pairs"):
        if summary.get(key) is not None:
            lines.append(f"{key:<{width}}{int(summary[key]):>10d}")
    for key, label in _ROWS:
        value = summary.get(key)
        if value is None:
            continue
        # E_warp lives on the [0, 1]^2 scale, so it needs more digits.
        text = f"{value:.6f}" if key.startswith("e_warp") else f"{value:.4f}"
        lines.append(f"{label:<{width}}{text:>10}")
    return "\n".join(lines)


def plot_flicker(report: dict[str, Any], path: str | Path) -> Path:
    """Write a PNG of a flicker report's per-frame and per-pair curves (needs matplotlib).

    Panels, each drawn only when it has data: foreground luma per frame (output and ground truth); its
    frame-to-frame change; TL with its ground-truth floor; E_warp (whole frame and foreground); fMSE.

    Args:
        report: the dict :func:`evaluate_flicker` returns.
        path: the PNG to write; its folder must exist.

    Returns:
        The path written.

    Raises:
        UsageError: matplotlib is not installed, or ``report`` is not a flicker report.
        OutputError: the file cannot be written.

    Example:
        >>> import tempfile, os
        >>> report = evaluate_flicker([(np.full((8, 8, 3), v), np.ones((8, 8)), None, None) for v in (10, 20, 15)])
        >>> with tempfile.TemporaryDirectory() as d:
        ...     os.path.getsize(plot_flicker(report, os.path.join(d, "flicker.png"))) > 0
        True
    """
    if not (isinstance(report, dict) and "per_frame" in report and "per_pair" in report):
        raise UsageError("report: expected the dict evaluate_flicker returns, with 'per_frame' and 'per_pair'")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise UsageError(
            "plot_flicker: expected matplotlib to be installed, got ImportError; pip install matplotlib"
        ) from exc
    frames, pairs = report["per_frame"], report["per_pair"]
    panels = [
        ("foreground luma (0-255)", frames, (("fg_luma", "output"), ("fg_luma_gt", "ground truth"))),
        ("|change| of foreground luma", pairs, (("fg_luma_change", "output"), ("fg_luma_change_gt", "ground truth"))),
        ("TL (CO2Net)", pairs, (("tl", "output"), ("tl_gt", "ground-truth floor"))),
        ("E_warp (Lai et al.)", pairs, (("e_warp", "whole frame"), ("e_warp_fg", "foreground"))),
        ("fMSE", frames, (("fmse", "output"),)),
    ]
    drawn = [p for p in panels if any(r.get(k) is not None for r in p[1] for k, _ in p[2])]
    fig = Figure(figsize=(10, 2.4 * max(1, len(drawn))), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(1, len(drawn)), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, rows, series) in zip(axes, drawn, strict=False):
        for key, label in series:
            x = [r["frame"] for r in rows if r.get(key) is not None and math.isfinite(r[key])]
            y = [r[key] for r in rows if r.get(key) is not None and math.isfinite(r[key])]
            if x:
                ax.plot(x, y, marker=".", linewidth=1, label=label)
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("frame (pairs at their first frame)")
    fig.tight_layout()
    out = Path(path)
    try:
        fig.savefig(out, format="png")
    except OSError as exc:
        raise OutputError(f"plot_flicker: cannot write {out}: {exc}; check the folder exists and is writable") from exc
    return out


def _frame_arrays(
    item: Any, index: int, size: tuple[int, ...] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if not isinstance(item, (tuple, list)) or len(item) != 4:
        raise ShapeError(f"frames[{index}]: expected a tuple (out, mask, gt or None, input or None), got {type(item)}")
    out = as_image(f"frames[{index}].out", item[0])
    if out.ndim != 3 or out.shape[2] != 3:
        raise ShapeError(f"frames[{index}].out: expected shape (H, W, 3) RGB, got {out.shape}")
    if size is not None and out.shape != size:
        raise ShapeError(
            f"frames[{index}].out: expected the clip's size {size}, got {out.shape}; resize every frame alike"
        )
    mask = as_mask(f"frames[{index}].mask", item[1], out.shape[:2])
    extra: list[np.ndarray | None] = []
    for name, a in (("gt", item[2]), ("input", item[3])):
        if a is None:
            extra.append(None)
            continue
        arr = as_image(f"frames[{index}].{name}", a)
        if arr.shape != out.shape:
            raise ShapeError(f"frames[{index}].{name}: expected shape {out.shape} like the output, got {arr.shape}")
        extra.append(arr)
    return out, mask, extra[0], extra[1]


def _frame_row(
    frame: int, out: np.ndarray, mask: np.ndarray, gt: np.ndarray | None, inp: np.ndarray | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"frame": frame, "fg_luma": _finite_or_none(foreground_luma(out, mask))}
    row["fg_luma_gt"] = None if gt is None else _finite_or_none(foreground_luma(gt, mask))
    if gt is None:
        row.update(mse=None, psnr=None, fmse=None, fpsnr=None)
    else:
        row["mse"] = mse(out, gt)
        row["psnr"] = psnr(out, gt)
        row["fmse"] = _finite_or_none(fmse(out, gt, mask))
        row["fpsnr"] = None if row["fmse"] is None else fpsnr(out, gt, mask)
    return row


def _pair_row(
    frame: int,
    prev: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    cur: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    prev_row: dict[str, Any],
    row: dict[str, Any],
    tl_size: int | None,
    preset: str,
) -> dict[str, Any]:
    pair: dict[str, Any] = {"frame": frame}
    pair["fg_luma_change"] = _abs_change(prev_row["fg_luma"], row["fg_luma"])
    pair["fg_luma_change_gt"] = _abs_change(prev_row["fg_luma_gt"], row["fg_luma_gt"])
    (o0, m0, g0, i0), (o1, m1, g1, i1) = prev, cur
    if g0 is not None and g1 is not None:
        so0, so1, sg0, sg1, sm0, _ = _tl_inputs(o0, o1, g0, g1, m0, m1, tl_size)
        flow, conf = _tl_confidence(sg0, sg1, sm0, preset)
        pair["tl"] = _finite_or_none(_tl_value(so0, so1, flow, conf))
        pair["tl_gt"] = _finite_or_none(_tl_value(sg0, sg1, flow, conf))
    else:
        pair["tl"] = pair["tl_gt"] = None
    if i0 is not None and i1 is not None:
        whole, fg = _warp_errors(o0, o1, i0, i1, [None, m0], preset)
        pair["e_warp"], pair["e_warp_fg"] = whole, _finite_or_none(fg)
    else:
        pair["e_warp"] = pair["e_warp_fg"] = None
    return pair


def _abs_change(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else abs(b - a)


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
