"""Keyframe masks: `vidharm masks propagate`, `masks check`, and `process` with a sparse folder."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidharm.cli import main
from vidharm.io import read_frames
from vidharm.masks import mask_iou

N, W, H = 16, 128, 96


def _disk(i: int) -> np.ndarray:
    mask = np.zeros((H, W), np.float32)
    cv2.circle(mask, (24 + 4 * i, 48), 18, 1.0, -1, lineType=cv2.LINE_AA)
    return mask


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A textured disk moving 4 px a frame over a textured background; true masks; keyframes 0, 7, 15."""
    d = tmp_path_factory.mktemp("moving")
    rng = np.random.default_rng(3)
    background = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (5, 5), 1.5)
    texture = cv2.GaussianBlur(rng.integers(0, 255, (H, W, 3), dtype=np.uint8), (3, 3), 1.0)
    clip = d / "moving.mkv"
    truth = d / "truth"
    keys = d / "keys"
    truth.mkdir()
    keys.mkdir()
    with av.open(str(clip), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = W, H, "bgr0"
        for i in range(N):
            m = _disk(i)
            fg = np.roll(texture, 4 * i, axis=1)
            frame = (fg * m[..., None] + background * (1 - m[..., None])).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 24)
            for p in s.encode(vf):
                c.mux(p)
            png = np.round(m * 255).astype(np.uint8)
            cv2.imwrite(str(truth / f"{i:05d}.png"), png)
            if i in (0, 7, 15):
                cv2.imwrite(str(keys / f"{i:05d}.png"), png)
        for p in s.encode():
            c.mux(p)
    return {"dir": d, "clip": clip, "truth": truth, "keys": keys}


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image.astype(np.float32) / np.iinfo(image.dtype).max


def test_propagate_fills_every_frame_and_keeps_keyframes(moving: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "full"
    assert main(["masks", "propagate", str(moving["clip"]), str(moving["keys"]), "-o", str(out), "-q"]) == 0
    files = sorted(out.glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(N)]
    for i in (0, 7, 15):
        np.testing.assert_array_equal(_read(out / f"{i:05d}.png"), _read(moving["keys"] / f"{i:05d}.png"))
    ious = [mask_iou(_read(out / f"{i:05d}.png"), _read(moving["truth"] / f"{i:05d}.png")) for i in range(N)]
    assert min(ious) > 0.85, ious
    soft = _read(out / "00003.png")
    assert ((soft > 0.05) & (soft < 0.95)).any()  # soft edges stay soft


def test_process_with_sparse_masks_equals_process_with_the_propagated_folder(
    moving: dict[str, Path], tmp_path: Path
) -> None:
    full = tmp_path / "full"
    assert main(["masks", "propagate", str(moving["clip"]), str(moving["keys"]), "-o", str(full), "-q"]) == 0
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    assert main(["process", str(moving["clip"]), str(moving["keys"]), "-o", str(a), "--codec", "ffv1", "-q"]) == 0
    assert main(["process", str(moving["clip"]), str(full), "-o", str(b), "--codec", "ffv1", "-q"]) == 0
    for x, y in zip(read_frames(a), read_frames(b), strict=True):
        np.testing.assert_array_equal(x.image, y.image)


def test_check_prints_leave_one_out(moving: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["masks", "check", str(moving["clip"]), str(moving["keys"])]) == 0
    out = capsys.readouterr().out
    assert "IoU" in out and "boundary" in out.lower()
    rows = [ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0] in {"0", "7", "15"}]
    assert len(rows) == 3 and all(0.5 < float(r[2]) <= 1.0 for r in rows), out


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (
            lambda d: (d / "matte.png").write_bytes(cv2.imencode(".png", np.zeros((H, W), np.uint8))[1]),
            "no frame number",
        ),
        (lambda d: cv2.imwrite(str(d / "00040.png"), np.zeros((H, W), np.uint8)), "frame 40"),
        (lambda d: cv2.imwrite(str(d / "00001.png"), np.zeros((50, 50), np.uint8)), "another aspect"),
        (lambda d: None, "no mask images"),
    ],
)
def test_bad_keyframe_folders(
    moving: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], make, fragment: str
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    make(keys)
    out = tmp_path / "full"
    assert main(["masks", "propagate", str(moving["clip"]), str(keys), "-o", str(out), "-q"]) == 3
    assert fragment in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
