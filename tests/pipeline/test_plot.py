"""The parameter plot: written as a PNG, atomically, for filter and colour-transfer tracks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vidharm.errors import InputError, OutputError, UsageError
from vidharm.pipeline import FrameParams, ParamsTrack, smooth
from vidharm.pipeline.edit import apply_keyframes, lock_args, read_keyframes
from vidharm.pipeline.plot import plot_params


def _track(n: int = 40) -> ParamsTrack:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        raw = [round(float(v), 4) for v in 0.3 * np.sin(i / 5 + np.arange(6)) + rng.normal(0, 0.05, 6)]
        rows.append(FrameParams(i, i * 512, raw, [0.5] * 4, signature=[1.0, 0.0] if i < 20 else [0.0, 1.0]))
    track = ParamsTrack({"fps": "25/1", "time_base": "1/12800", "clip": "/x/shot.mp4", "model": "stats"}, rows)
    return smooth(track, mode="ema", half_life_s=0.3)


def _png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None
    return image


def test_plot_is_written_with_cuts_and_edits(tmp_path: Path) -> None:
    track = _track()
    assert track.header["smoothing"]["cuts"] == [20]
    edited = lock_args(apply_keyframes(track, read_keyframes(text="frame,contrast\n5,0.2\n30,-0.2\n")), {"shadow": 0})
    plain, marked = tmp_path / "plain.png", tmp_path / "edited.png"
    assert plot_params(track, plain) == plain
    plot_params(edited, marked, dpi=50)
    assert _png(plain).shape == (800, 1200, 3)
    assert _png(marked).shape == (400, 600, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edited.png", "plain.png"]  # no temp files left


def test_plot_differs_when_the_track_differs(tmp_path: Path) -> None:
    track = _track()
    plot_params(track, tmp_path / "a.png", title="t", dpi=40)
    plot_params(lock_args(track, {"brightness": 0.9}), tmp_path / "b.png", title="t", dpi=40)
    assert np.abs(_png(tmp_path / "a.png").astype(int) - _png(tmp_path / "b.png")).sum() > 0


def test_colour_transfer_track_plots_its_coefficients(tmp_path: Path) -> None:
    rows = [FrameParams(i, None, [0.01 * i] * 12, []) for i in range(5)]
    plot_params(ParamsTrack({"fps": "25/1", "method": {"kind": "affine"}}, rows), tmp_path / "c.png", dpi=40)
    local = [FrameParams(i, None, [0.0] * (2 * 2 * 12), []) for i in range(3)]
    header = {"fps": "25/1", "method": {"kind": "local", "grid": [2, 2]}}
    plot_params(ParamsTrack(header, local), tmp_path / "l.png", dpi=40)
    assert _png(tmp_path / "c.png").shape == _png(tmp_path / "l.png").shape == (320, 480, 3)


def test_plot_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no rows"):
        plot_params(ParamsTrack({"fps": "25/1"}, []), tmp_path / "e.png")
    with pytest.raises(UsageError, match=".png"):
        plot_params(_track(3), tmp_path / "e.jpg")
    with pytest.raises(OutputError, match="does not exist"):
        plot_params(_track(3), tmp_path / "missing" / "e.png")


def test_plot_axis_cuts_and_keyframes_use_source_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A track of a sequence numbered from 1001 is drawn against 1001..; cuts and edits are stored as positions."""
    import vidharm.pipeline.plot as plot

    track = _track()
    numbered = ParamsTrack({**track.header, "first_frame": 1001}, track.frames)
    edited = apply_keyframes(numbered, read_keyframes(text="frame,contrast\n1005,0.2\n1030,-0.2\n"))
    figures = []
    monkeypatch.setattr(plot, "_save", lambda fig, out: figures.append(fig) or out)
    plot_params(edited, tmp_path / "p.png")
    panels = figures[0].axes
    raw_line = panels[0].get_lines()[0]
    assert list(raw_line.get_xdata()[[0, -1]]) == [1001, 1040]
    cut = [ln for ln in panels[0].get_lines() if ln.get_linestyle() == "--"]
    assert [list(ln.get_xdata()) for ln in cut] == [[1021, 1021]]  # the cut stored at position 20
    contrast = panels[2]
    keys = [ln for ln in contrast.get_lines() if ln.get_label() == "keyframe"]
    assert list(keys[0].get_xdata()) == [1005, 1030]
