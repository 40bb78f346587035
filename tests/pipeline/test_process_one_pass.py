"""process_video in one decode (causal smoothing) gives exactly the two-pass result: pixels and sidecar."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError, MaskError, UsageError
from vidharm.io import read_frames
from vidharm.io._synth import pattern_frame, write_test_clip
from vidharm.pipeline import ProcessConfig, analyze, open_clip, process_video, smooth, write_params
from vidharm.pipeline.params import FrameParams, ParamsTrack
from vidharm.pipeline.process import one_pass
from vidharm.pipeline.render import render_output
from vidharm.pipeline.smooth import CausalSmoother

NUM_FRAMES = 14
CUT_AT = 6
# Irregular steps (variable frame rate), in a 1/12800 time base.
VFR_PTS = [0, 512, 1024, 1800, 2048, 2560, 3500, 3584, 4096, 5000, 5120, 5632, 6900, 7168]


def _shot(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Two shots: the moving test pattern, then a dim blue-green scene (a hard cut at CUT_AT)."""
    frame = pattern_frame(index, height, width)
    if index >= CUT_AT:
        frame = (frame // 4 + np.array([10, 60, 120], np.uint8)).astype(np.uint8)
    return frame


@pytest.fixture
def cut_clip(tmp_path: Path, clip_with_masks: Callable[..., tuple[Path, Path]]) -> tuple[Path, Path]:
    """A VFR clip with a scene cut, lossless so that decodes agree exactly, and one mask PNG per frame."""
    return clip_with_masks(
        num_frames=NUM_FRAMES, name="cut.mkv", codec="ffv1", pix_fmt="yuv444p", pattern=_shot, pts=VFR_PTS
    )


def _two_passes(clip: Path, masks: Path, out: Path, config: ProcessConfig) -> ParamsTrack:
    """What process_video did before the one-pass path: analyze, smooth the whole track, render."""
    inp = open_clip(clip, masks)
    track = smooth(analyze(inp, config), mode=config.smoothing, half_life_s=config.half_life_s)
    render_output(inp, track, out, config, force=True)
    return track


def _decoded(path: Path) -> list[np.ndarray]:
    return [f.image for f in read_frames(path)]


@pytest.mark.parametrize("mode", ["ema", "off"])
@pytest.mark.parametrize("stride", [1, 3])
def test_one_pass_equals_two_passes(tmp_path: Path, cut_clip: tuple[Path, Path], mode: str, stride: int) -> None:
    clip, masks = cut_clip
    config = ProcessConfig(codec="ffv1", smoothing=mode, analyze_stride=stride)
    assert one_pass(open_clip(clip, masks), tmp_path / "one.mkv", config)
    one = process_video(clip, masks, tmp_path / "one.mkv", config, params_out=tmp_path / "one.json")
    two = _two_passes(clip, masks, tmp_path / "two.mkv", config)
    write_params(two, tmp_path / "two.json")
    assert (tmp_path / "one.json").read_text() == (tmp_path / "two.json").read_text()
    first, second = _decoded(tmp_path / "one.mkv"), _decoded(tmp_path / "two.mkv")
    assert len(first) == len(second) == NUM_FRAMES
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    # The clip exercises what the smoother needs: a cut (ema only), and timestamps that are not evenly spaced.
    assert one.header["smoothing"]["cuts"] == ([CUT_AT] if mode == "ema" else [])
    assert len({round(b - a, 9) for a, b in zip(one.times_s()[:-1], one.times_s()[1:], strict=True)}) > 2


@pytest.mark.parametrize("mode", ["ema", "off"])
def test_one_pass_png_sequence_equals_two_passes(tmp_path: Path, cut_clip: tuple[Path, Path], mode: str) -> None:
    clip, masks = cut_clip
    config = ProcessConfig(smoothing=mode, analyze_stride=3)
    (tmp_path / "one").mkdir(), (tmp_path / "two").mkdir()
    one = process_video(clip, masks, tmp_path / "one" / "f.%04d.png", config)
    two = _two_passes(clip, masks, tmp_path / "two" / "f.%04d.png", config)
    assert one.to_json() == two.to_json()
    files = sorted(p.name for p in (tmp_path / "one").glob("*.png"))
    assert files == sorted(p.name for p in (tmp_path / "two").glob("*.png")) and len(files) == NUM_FRAMES
    for name in files:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_one_pass_with_the_network_equals_two_passes(tmp_path: Path, cut_clip: tuple[Path, Path]) -> None:
    # The bundled Harmonizer: rows come from network batches, which both paths must form alike.
    clip, masks = cut_clip
    config = ProcessConfig(model="harmonizer", codec="ffv1", analyze_stride=3, batch_size=8)
    one = process_video(clip, masks, tmp_path / "one.mkv", config)
    two = _two_passes(clip, masks, tmp_path / "two.mkv", config)
    assert one.to_json() == two.to_json()
    for a, b in zip(_decoded(tmp_path / "one.mkv"), _decoded(tmp_path / "two.mkv"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_passes_kept_where_one_cannot_do(tmp_path: Path, cut_clip: tuple[Path, Path]) -> None:
    clip, masks = cut_clip
    inp = open_clip(clip, masks)
    assert not one_pass(inp, tmp_path / "out.mkv", ProcessConfig(smoothing="zero_lag"))
    # zero_lag still renders (two passes) and records its smoothing
    track = process_video(clip, masks, tmp_path / "zl.mkv", ProcessConfig(codec="ffv1", smoothing="zero_lag"))
    assert track.header["smoothing"]["mode"] == "zero_lag" and len(_decoded(tmp_path / "zl.mkv")) == NUM_FRAMES


def test_one_pass_short_masks_leave_no_output(tmp_path: Path) -> None:
    # Regression guard: the row count is checked before the output is kept (two passes raised in analyze).
    clip = write_test_clip(tmp_path / "clip.mkv", num_frames=5, codec="ffv1", pix_fmt="yuv444p")
    masks = write_test_clip(tmp_path / "masks.mkv", num_frames=3, codec="ffv1", pix_fmt="yuv444p")
    with pytest.raises(MaskError):
        process_video(clip, masks, tmp_path / "out.mkv", ProcessConfig(codec="ffv1"))
    assert not (tmp_path / "out.mkv").exists()


def _rows(signatures: list[list[float] | None], times: list[int]) -> list[FrameParams]:
    rng = np.random.default_rng(3)
    return [
        FrameParams(i, t, rng.uniform(-1, 1, 6).round(4).tolist(), rng.uniform(0, 1, 4).round(6).tolist(), signature=s)
        for i, (s, t) in enumerate(zip(signatures, times, strict=True))
    ]


@pytest.mark.parametrize("half_life_s", [0.0, 0.05, 0.679, 3.0, float("inf")])
def test_causal_smoother_equals_smooth_exactly(half_life_s: float) -> None:
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.integers(1, 900, 300)).tolist()  # VFR pts in 1/12800
    a, b = rng.dirichlet(np.ones(25)), rng.dirichlet(np.ones(25))
    signatures = [(a if (i // 70) % 2 == 0 else b).round(4).tolist() for i in range(300)]  # cuts at 70, 140, 210, 280
    header = {"fps": "25/1", "time_base": "1/12800"}
    track = ParamsTrack(header, _rows(signatures, times))
    for mode in ("ema", "off"):
        whole = smooth(track, mode=mode, half_life_s=half_life_s)
        smoother = CausalSmoother(header, mode=mode, half_life_s=half_life_s)
        streamed = [smoother.push(row) for row in track.frames]
        assert streamed == whole.frames  # float equality, row by row
        assert smoother.smoothing_header() == whole.header["smoothing"]
        on = mode == "ema" and half_life_s > 0
        assert smoother.smoothing_header()["cuts"] == ([70, 140, 210, 280] if on else [])


def test_causal_smoother_refuses_what_smooth_refuses() -> None:
    header = {"fps": "25/1", "time_base": "1/12800"}
    with pytest.raises(UsageError, match="not causal"):
        CausalSmoother(header, mode="zero_lag", half_life_s=1.0)
    smoother = CausalSmoother(header, mode="ema", half_life_s=1.0)
    rows = _rows([[0.5, 0.5]] * 3, [0, 512, 512])
    smoother.push(rows[0]), smoother.push(rows[1])
    with pytest.raises(InputError, match="strictly increasing"):
        smoother.push(rows[2])
    mixed = CausalSmoother(header, mode="ema", half_life_s=1.0)
    mixed.push(_rows([[0.5, 0.5]], [0])[0])
    with pytest.raises(InputError, match="all or none"):
        mixed.push(_rows([None], [512])[0])


def test_one_pass_fraction_times_match_times_s() -> None:
    # The smoother takes each row's time through ParamsTrack.times_s: pts * time_base, or frame / fps without pts.
    header = {"fps": "30000/1001", "time_base": "1/90000"}
    smoother = CausalSmoother(header, mode="ema", half_life_s=0.5)
    rows = [FrameParams(i, None, [float(i)] * 6, [0.5] * 4, signature=[1.0]) for i in range(5)]
    track = ParamsTrack(header, rows)
    assert [smoother.push(r) for r in rows] == smooth(track, mode="ema", half_life_s=0.5).frames
    assert Fraction(header["fps"]) == track.fps
