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


def test_process_keeps_the_alpha_of_a_prores_4444_clip(tmp_path: Path) -> None:
    src, masks, out = _alpha_source(tmp_path), _masks(tmp_path / "masks"), tmp_path / "out.mov"
    assert main(["process", str(src), str(masks), "-o", str(out), "--codec", "prores_ks", "-q"]) == 0
    _check_alpha_kept(src, out)


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


def _rgba_png_sequence(folder: Path) -> list[np.ndarray]:
    """RGBA PNGs shot.1001.png ...: a grey ramp, opaque in a moving square, half transparent beside it."""
    folder.mkdir()
    alphas = []
    for i in range(FRAMES):
        rgba = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
        rgba[..., :3] = np.linspace(40, 200, WIDTH, dtype=np.uint8)[None, :, None]
        rgba[4:20, 4 + i : 20 + i, 3] = 255
        rgba[4:20, 20 + i : 28 + i, 3] = 128
        assert cv2.imwrite(str(folder / f"shot.{1001 + i}.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
        alphas.append(rgba[..., 3])
    return alphas


def test_png_sequence_with_mask_from_alpha_to_a_mov(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: render_video gave every clip as the audio source, so an image sequence rendered to a video
    failed with "no such file" (the pattern is no file); it keeps its alpha in ProRes 4444 now."""
    _need("prores_ks")
    alphas = _rgba_png_sequence(tmp_path / "seq")
    out = tmp_path / "out.mov"
    code = main(["process", str(tmp_path / "seq" / "shot.%04d.png"), "--mask-from-alpha", "-o", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    info = probe_video(out)
    assert (info.codec, info.profile, info.has_alpha, info.has_audio) == ("prores", "4444", True, False)
    frames = list(read_frames(out, alpha=True))
    assert len(frames) == FRAMES
    for frame, alpha in zip(frames, alphas, strict=True):
        assert frame.alpha is not None
        # 8-bit alpha through ProRes 4444's 16-bit decode: within a 10-bit code of the source level.
        np.testing.assert_allclose(frame.alpha / 65535, alpha / 255, atol=2 / 1023)


def test_qc_proxy_of_an_alpha_clip_writes_no_alpha_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, masks = _alpha_source(tmp_path), _masks(tmp_path / "masks")
    params, out = tmp_path / "p.json", tmp_path / "out.mov"
    assert main(["process", str(src), str(masks), "-o", str(out), "--params-out", str(params), "-q"]) == 0
    capsys.readouterr()
    proxy = tmp_path / "proxy.mp4"
    code = main(["qc", str(params), "--clip", str(src), "--masks", str(masks), "--proxy", str(proxy), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "WARNING" not in err
    assert not probe_video(proxy).has_alpha
