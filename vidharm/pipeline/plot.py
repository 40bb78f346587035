"""A picture of a parameter track: the six argument tracks over time, raw and smoothed, with the cuts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vidharm.errors import InputError, OutputError, UsageError
from vidharm.filters import FILTER_NAMES
from vidharm.io import atomic_path
from vidharm.pipeline.params import ParamsTrack

__all__ = ["plot_params"]


def _edited_keys(track: ParamsTrack) -> dict[str, list[int]]:
    """Argument -> source frames of the keyframes recorded by the edits in the header (for markers)."""
    keys: dict[str, list[int]] = {}
    for edit in track.header.get("edits") or []:
        if isinstance(edit, dict) and isinstance(edit.get("args"), dict):
            for name, pairs in edit["args"].items():
                keys.setdefault(name, []).extend(
                    track.source_frame(int(p[0])) for p in pairs if isinstance(p, list) and p
                )
    return keys


def _locked(header: dict[str, Any]) -> dict[str, float]:
    locked: dict[str, float] = {}
    for edit in header.get("edits") or []:
        if isinstance(edit, dict) and isinstance(edit.get("lock"), dict):
            locked.update(edit["lock"])
    return locked


def plot_params(track: ParamsTrack, path: str | Path, *, title: str | None = None, dpi: int = 100) -> Path:
    """Write a PNG of the six argument tracks: raw (the model's) and applied (smoothed or edited).

    One panel per argument, against the source frame number (``track.first_frame`` + row position: 1001.. for
    an image sequence numbered from 1001; tracks of image models rendered through a
    colour transform get one panel per output channel with its coefficients instead). Scene cuts recorded
    by the smoothing are dashed vertical lines; the clamp limits +-1 are drawn when a track comes near them;
    keyframes of an edit are marked on the applied curve and locked arguments are named in the panel title.

    Args:
        track: the sidecar.
        path: the PNG to write (atomically); its folder must exist.
        title: the figure title; default names the clip, model and smoothing.
        dpi: resolution (the figure is 12 x 8 inches).

    Returns:
        ``path`` as a Path.

    Raises:
        InputError: the track has no rows.
        UsageError: matplotlib is not installed, or ``path`` does not end in .png.
        OutputError: the file cannot be written.

    Example:
        >>> import tempfile, os
        >>> from vidharm.pipeline.params import FrameParams
        >>> rows = [FrameParams(i, None, [0.1 * (i % 2)] * 6, [0.5] * 4, smoothed=[0.05] * 6) for i in range(6)]
        >>> with tempfile.TemporaryDirectory() as d:
        ...     os.path.getsize(plot_params(ParamsTrack({"fps": "25/1"}, rows), os.path.join(d, "p.png"))) > 0
        True
    """
    if not track.frames:
        raise InputError("the parameter track has no rows to plot")
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise UsageError(f"{out}: expected a .png output path")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise UsageError("plot: expected matplotlib to be installed, got ImportError; pip install matplotlib") from exc
    frames = np.array([track.source_frame(r.frame) for r in track.frames])
    method = track.method
    raw = track.raw_array()
    applied = np.array([r.applied()[0] for r in track.frames], dtype=np.float64).reshape(len(frames), -1)
    if method.kind != "filters":
        return _plot_coefficients(track, frames, raw, applied, out, title, dpi, Figure, FigureCanvasAgg)
    smoothing = track.header.get("smoothing")
    cuts = _cuts(track)
    keys = _edited_keys(track)
    locked = _locked(track.header)
    if title is None:
        clip = Path(str(track.header.get("clip", "clip"))).name
        how = (
            f"{smoothing.get('mode')}, half-life {float(smoothing.get('half_life_s') or 0):.3g} s"
            if isinstance(smoothing, dict)
            else "not smoothed"
        )
        if isinstance(smoothing, dict) and smoothing.get("ranges"):
            how += f" (then {len(smoothing['ranges'])} range settings)"
        edited = ", edited" if track.header.get("edits") else ""
        title = f"{clip}: model {track.header.get('model', '?')}, {how}{edited}"
    fig = Figure(figsize=(12, 8), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 2, sharex=True).ravel()
    for i, (ax, name) in enumerate(zip(axes, FILTER_NAMES, strict=True)):
        ax.plot(frames, raw[:, i], color="0.6", linewidth=0.8, label="raw (model)")
        ax.plot(frames, applied[:, i], color="C0", linewidth=1.4, label="applied (smoothed/edited)")
        if name in keys:
            marked = [f for f in sorted(set(keys[name])) if frames[0] <= f <= frames[-1]]
            ax.plot(marked, np.interp(marked, frames, applied[:, i]), "o", color="C1", markersize=4, label="keyframe")
        for cut in cuts:
            ax.axvline(cut, color="C3", linestyle="--", linewidth=0.8)
        if np.abs(np.concatenate([raw[:, i], applied[:, i]])).max() > 0.8:
            for limit in (-1.0, 1.0):
                ax.axhline(limit, color="k", linestyle=":", linewidth=0.8)
        label = name + (f" (locked at {locked[name]:g})" if name in locked else "")
        ax.set_title(label, fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper right")
    if cuts:
        axes[1].plot([], [], color="C3", linestyle="--", linewidth=0.8, label="scene cut")
        axes[1].legend(fontsize=7, loc="upper right")
    for ax in axes[-2:]:
        ax.set_xlabel("frame")
    fig.suptitle(title, fontsize=10)
    return _save(fig, out)


def _save(fig: Any, out: Path) -> Path:
    fig.tight_layout()
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png")
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the plot ({exc}); check the folder exists and is writable") from exc
    return out


def _cuts(track: ParamsTrack) -> list[int]:
    """Source frames of the scene cuts the smoothing recorded (the header stores positions)."""
    smoothing = track.header.get("smoothing")
    cuts = (smoothing.get("cuts") or []) if isinstance(smoothing, dict) else []
    return [track.source_frame(int(c)) for c in cuts]


def _plot_coefficients(
    track: ParamsTrack,
    frames: np.ndarray,
    raw: np.ndarray,
    applied: np.ndarray,
    out: Path,
    title: str | None,
    dpi: int,
    figure: Any,
    canvas: Any,
) -> Path:
    """Colour-transform rows: one panel per output channel with its coefficients (a local grid's cell mean)."""
    method = track.method
    if method.kind == "local":
        cells = method.grid[0] * method.grid[1]
        raw = raw.reshape(len(frames), cells, 12).mean(axis=1)
        applied = applied.reshape(len(frames), cells, 12).mean(axis=1)
    per_channel = raw.shape[1] // 3
    fig = figure(figsize=(12, 8), dpi=dpi)
    canvas(fig)
    axes = fig.subplots(3, 1, sharex=True)
    for c, (ax, channel) in enumerate(zip(axes, ("red", "green", "blue"), strict=True)):
        for k in range(per_channel):
            column = c * per_channel + k
            ax.plot(frames, raw[:, column], color=f"C{k % 10}", linewidth=0.6, alpha=0.5)
            ax.plot(frames, applied[:, column], color=f"C{k % 10}", linewidth=1.2, label=f"m{column}")
        for cut in _cuts(track):
            ax.axvline(cut, color="C3", linestyle="--", linewidth=0.8)
        mean = " (mean over cells)" if method.kind == "local" else ""
        ax.set_title(f"output {channel}: coefficients{mean}; thin = raw, thick = applied", fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="upper right", ncol=min(per_channel, 10))
    axes[-1].set_xlabel("frame")
    clip = Path(str(track.header.get("clip", "clip"))).name
    fig.suptitle(title or f"{clip}: model {track.header.get('model', '?')}, {method.kind} colour transfer", fontsize=10)
    return _save(fig, out)
