"""`vidharm process` on compositing masters: a ProRes 4444 clip keeps its alpha, ProRes 422 HQ keeps 10 bits.

Tiny clips (64x48, 6 frames) are made here with PyAV; the analytic ``stats`` model needs no weights.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidharm.cli import main
from vidharm.io import probe_video, read_frames
from vidharm.io._synth import write_test_clip

FRAMES, WIDTH, HEIGHT = 6, 64, 48

# The writer keeps alpha (tests/io/test_alpha.py); the render loop must hand it the decoded alpha, and
# ProcessConfig.codec must default to None (chosen from the source). Strict: passing them fails too, to remind
# whoever wires that to drop these markers.
NEEDS_PIPELINE_ALPHA = pytest.mark.xfail(
    strict=True, reason="pipeline render does not yet pass the decoded alpha to VideoWriter (io helper's report)"
)
NEEDS_AUTO_CODEC = pytest.mark.xfail(
    strict=True, reason="ProcessConfig.codec still defaults to libx264 instead of None = from the source"
)


def _need(codec: str) -> None:
    try:
        av.Codec(codec, "w")
    except ValueError:
        pytest.skip(f"encoder {codec} is not in this PyAV build")


def _masks(folder: Path) -> Path:
    """A 16x16 foreground square in the top-left corner of every frame; rows 24 and below are background."""
    folder.mkdir()
    for i in range(FRAMES):
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[4:20, 4 + i : 20 + i] = 255
        assert cv2.imwrite(str(folder / f"{i:05d}.png"), mask)
    return folder


def _ramp(index: int) -> np.ndarray:
    """Grey, 10-bit codes 300 + x + 8 y + index (consecutive codes along each row), on the 16-bit scale."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    codes = (300 + xx + 8 * yy + index) << 6
    return np.repeat(codes.astype(np.uint16)[..., None], 3, axis=-1)


def _alpha_source(tmp_path: Path) -> Path:
    _need("prores_ks")
    return write_test_clip(
        tmp_path / "fg.mov",
        num_frames=FRAMES,
        codec="prores_ks",
        pix_fmt="yuva444p10le",
        options={"profile": "4444"},
    )


def _check_alpha_kept(src: Path, out: Path) -> None:
    info = probe_video(out)
    assert info.has_alpha and info.codec == "prores" and info.profile == "4444"
    before = list(read_frames(src, alpha=True))
    after = list(read_frames(out, alpha=True))
    assert len(after) == FRAMES
    for a, b in zip(before, after, strict=True):
        assert a.alpha is not None and b.alpha is not None and b.alpha.dtype == np.uint16
        # ProRes 4444 quantises alpha to 10 bits on the way in: one code each way.
        assert np.abs(a.alpha.astype(np.int64) - b.alpha.astype(np.int64)).max() <= 2 * 64 + 32


@NEEDS_PIPELINE_ALPHA
def test_process_keeps_the_alpha_of_a_prores_4444_clip(tmp_path: Path) -> None:
    src, masks, out = _alpha_source(tmp_path), _masks(tmp_path / "masks"), tmp_path / "out.mov"
    assert main(["process", str(src), str(masks), "-o", str(out), "--codec", "prores_ks", "-q"]) == 0
    _check_alpha_kept(src, out)


@NEEDS_AUTO_CODEC
def test_process_without_a_codec_picks_prores_4444_for_an_alpha_mov(tmp_path: Path) -> None:
    src, masks, out = _alpha_source(tmp_path), _masks(tmp_path / "masks"), tmp_path / "out.mov"
    assert main(["process", str(src), str(masks), "-o", str(out), "-q"]) == 0
    _check_alpha_kept(src, out)


def test_process_keeps_ten_bit_prores_422_hq(tmp_path: Path) -> None:
    _need("prores_ks")
    src = write_test_clip(
        tmp_path / "hq.mov",
        num_frames=FRAMES,
        codec="prores_ks",
        pix_fmt="yuv422p10le",
        options={"profile": "hq"},
        pattern=_ramp,
    )
    masks, out = _masks(tmp_path / "masks"), tmp_path / "out.mov"
    assert main(["process", str(src), str(masks), "-o", str(out), "--codec", "prores_ks", "-q"]) == 0
    info = probe_video(out)
    assert (info.profile, info.pix_fmt, info.bit_depth) == ("HQ", "yuv422p10le", 10)
    for frame in read_frames(out):
        assert frame.image.dtype == np.uint16
        # The background rows: within a fraction of a 10-bit code of the ramp, neighbouring codes still apart
        # (an 8-bit path merges each four codes into one level: at most 17 of a row's 64, 1 code off on average).
        got = frame.image[24:, :, 1].astype(np.float64) / 64
        ideal = _ramp(frame.index)[24:, :, 1].astype(np.float64) / 64
        assert np.abs(got - ideal).mean() < 0.6
        assert np.median([len(np.unique(np.round(row))) for row in got]) >= 45
