"""Bad input gets one line naming the file and the fix, an exit code per class, and no output file;
awkward but valid input is handled (issue: reliability)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import PROJECT_ROOT

from vidharm.cli import main
from vidharm.io import probe_video, read_frames
from vidharm.io._synth import write_test_clip
from vidharm.models import create_model

USAGE, INPUT, MODEL, OUTPUT = 2, 3, 4, 5


def _masks(folder: Path, n: int, w: int = 64, h: int = 48, value: int = 255) -> Path:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        m[h // 4 : 3 * h // 4, w // 4 : w // 2] = value
        cv2.imwrite(str(folder / f"{i:05d}.png"), m)
    return folder


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for p in [*s.encode(frame), *s.encode()]:
            c.mux(p)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err.strip()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_test_clip(tmp_path / "clip.mp4", num_frames=6, audio="aac")


def _case(name: str, tmp_path: Path, clip: Path) -> tuple[list[str], int, str]:
    masks = _masks(tmp_path / "masks", 6)
    out = tmp_path / "out" / "o.mp4"
    out.parent.mkdir()
    base = ["process", str(clip), str(masks), "-o", str(out), "-q"]
    if name == "missing clip":
        return ["process", str(tmp_path / "gone.mp4"), str(masks), "-o", str(out)], INPUT, "gone.mp4"
    if name == "truncated clip":
        data = clip.read_bytes()
        (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
        return ["process", str(tmp_path / "cut.mp4"), str(masks), "-o", str(out)], INPUT, "cut.mp4"
    if name == "zero-frame clip":
        empty = write_test_clip(tmp_path / "empty.mp4", num_frames=0)
        return ["process", str(empty), str(masks), "-o", str(out)], INPUT, "empty.mp4"
    if name == "not a video":
        (tmp_path / "notes.mp4").write_text("hello")
        return ["process", str(tmp_path / "notes.mp4"), str(masks), "-o", str(out)], INPUT, "notes.mp4"
    if name == "audio only":
        sound = _audio_only(tmp_path / "sound.mp4")
        return ["process", str(sound), str(masks), "-o", str(out)], INPUT, "sound.mp4"
    if name == "mask beyond the clip":
        cv2.imwrite(str(masks / "00099.png"), np.zeros((48, 64), np.uint8))
        return base, INPUT, "00099.png"
    if name == "mask of another aspect":
        cv2.imwrite(str(masks / "00002.png"), np.zeros((64, 64), np.uint8))
        return base, INPUT, "00002.png"
    if name == "non-image in mask folder":
        (masks / "readme.txt").write_text("notes")
        return base, INPUT, "readme.txt"
    if name == "checkpoint with wrong keys":
        state = create_model("harmonizer").state_dict()
        state["regressor.g.weight"] = torch.zeros(3, 3)
        torch.save(state, tmp_path / "bad.pth")
        return [*base, "--model", "harmonizer", "--weights", str(tmp_path / "bad.pth")], MODEL, "regressor.g.weight"
    if name == "not a checkpoint":
        (tmp_path / "junk.pth").write_bytes(os.urandom(1000))
        return [*base, "--model", "harmonizer", "--weights", str(tmp_path / "junk.pth")], MODEL, "junk.pth"
    if name == "missing output folder":
        return ["process", str(clip), str(masks), "-o", str(tmp_path / "nowhere" / "o.mp4")], OUTPUT, "nowhere"
    if name == "unwritable output folder":
        return ["process", str(clip), str(masks), "-o", "/proc/vidharm_o.mp4", "-q"], OUTPUT, "/proc/vidharm_o.mp4"
    if name == "output is the input":
        return ["process", str(clip), str(masks), "-o", str(clip)], USAGE, "overwrite the input"
    raise AssertionError(name)


CASES = [
    "missing clip",
    "truncated clip",
    "zero-frame clip",
    "not a video",
    "audio only",
    "mask beyond the clip",
    "mask of another aspect",
    "non-image in mask folder",
    "checkpoint with wrong keys",
    "not a checkpoint",
    "missing output folder",
    "unwritable output folder",
    "output is the input",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_matrix(name: str, tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, code, fragment = _case(name, tmp_path, clip)
    got, err = _run(argv, capsys)
    assert got == code, err
    assert err.startswith("vidharm: error:") and "\n" not in err and fragment in err, err
    leftovers = [p for p in (tmp_path / "out").iterdir()]
    assert leftovers == [], leftovers


def test_full_disk_leaves_nothing(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    masks = _masks(tmp_path / "masks", 6)
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    code, err = _run(["process", str(clip), str(masks), "-o", str(out_dir / "o.mp4"), "-q"], capsys)
    assert code == OUTPUT and "No space left on device" in err
    assert list(out_dir.iterdir()) == []


def test_nan_in_an_edited_parameter_file(tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    masks = _masks(tmp_path / "masks", 6)
    params = tmp_path / "p.json"
    assert (
        main(["process", str(clip), str(masks), "-o", str(tmp_path / "a.mp4"), "--params-out", str(params), "-q"]) == 0
    )
    params.write_text(
        params.read_text().replace('"smoothed": [', '"smoothed": [NaN, ', 1).replace(", 0.0, 0.0, 0.0]", "]", 0)
    )
    text = params.read_text()
    first = text.index('"smoothed": [NaN, ')
    end = text.index("]", first)
    values = text[first + len('"smoothed": [NaN, ') : end].split(",")
    params.write_text(text[: first + len('"smoothed": [NaN, ')] + ",".join(values[1:]) + text[end:])
    code, err = _run(["render", str(clip), str(masks), str(params), "-o", str(tmp_path / "b.mp4"), "-q"], capsys)
    assert code == INPUT and "finite" in err and "p.json" in err
    assert not (tmp_path / "b.mp4").exists()


# --- awkward but valid ----------------------------------------------------------------------------------


def test_empty_masks_leave_the_clip_alone_with_a_warning(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    masks = _masks(tmp_path / "masks", 6, value=0)
    out = tmp_path / "o.mkv"
    code, err = _run(["process", str(clip), str(masks), "-o", str(out), "--codec", "ffv1", "-q"], capsys)
    assert code == 0 and "empty mask" in err
    for a, b in zip(read_frames(clip), read_frames(out), strict=True):
        np.testing.assert_array_equal(a.image, b.image)


def test_ten_bit_input_stays_ten_bit(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "c10.mkv", num_frames=4, pix_fmt="yuv420p10le")
    masks = _masks(tmp_path / "masks", 4)
    out = tmp_path / "o10.mkv"
    assert main(["process", str(clip), str(masks), "-o", str(out), "-q", "--preset", "ultrafast"]) == 0
    info = probe_video(out)
    assert info.bit_depth == 10
    frames = [f.image for f in read_frames(out)]
    assert frames[0].dtype == np.uint16
    # values that 8 bits cannot hold survive (not multiples of 257 after the 10->16 bit scaling)
    assert np.any(frames[0] % 257 != 0)


def test_rotation_metadata_is_kept(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "phone.mp4", num_frames=4, rotation_deg=90)
    masks = _masks(tmp_path / "masks", 4)
    out = tmp_path / "o.mp4"
    assert main(["process", str(clip), str(masks), "-o", str(out), "-q", "--preset", "ultrafast"]) == 0
    assert probe_video(out).rotation_deg == probe_video(clip).rotation_deg == 90
    assert (probe_video(out).width, probe_video(out).height) == (64, 48)


@pytest.mark.parametrize("audio_seconds", [0.25, 2.0])
def test_audio_shorter_or_longer_than_video(tmp_path: Path, audio_seconds: float) -> None:
    clip = tmp_path / "c.mp4"
    with av.open(str(clip), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="mono")
        for i in range(25):  # 1 s of video
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for p in v.encode(frame):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        samples = int(48000 * audio_seconds)
        for start in range(0, samples, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, start
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    masks = _masks(tmp_path / "masks", 25)
    out = tmp_path / "o.mp4"
    assert main(["process", str(clip), str(masks), "-o", str(out), "-q", "--preset", "ultrafast"]) == 0

    def audio_packets(path: Path) -> list[bytes]:
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]

    assert audio_packets(out) == audio_packets(clip)
    assert len(list(read_frames(out))) == 25


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_promptly_and_cleans_up(tmp_path: Path, sig: int, code: int) -> None:
    # Few frames keep the analysis short; large ones keep the render long enough to interrupt.
    clip = write_test_clip(tmp_path / "long.mp4", num_frames=60, width=640, height=360)
    masks = _masks(tmp_path / "masks", 60, 640, 360)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    argv = ["process", str(clip), str(masks), "-o", str(out_dir / "o.mp4"), "-q", "--preset", "veryslow"]
    # A job started in the background (as CI runners do) inherits SIGINT as ignored; a terminal's Ctrl-C
    # reaches a process with the default disposition, so give the child that.
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidharm.cli", *argv],
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(out_dir.iterdir()) and proc.poll() is None:
        time.sleep(0.02)  # rendering has started once the temporary output exists
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    sent = time.monotonic()
    assert proc.wait(timeout=30) == code
    stopped = time.monotonic() - sent
    assert stopped < 10, f"took {stopped:.1f} s to stop"
    assert list(out_dir.iterdir()) == []


def test_the_console_script_exits_with_the_run_and_its_output_complete(tmp_path: Path) -> None:
    """``vidharm.cli.run`` (the console script) skips interpreter teardown: the exit code, the error line and
    the finished output must survive that."""
    clip = write_test_clip(tmp_path / "c.mp4", num_frames=12)
    masks = _masks(tmp_path / "masks", 12)
    out = tmp_path / "o.mp4"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    script = [sys.executable, "-c", "from vidharm.cli import run; run()"]
    done = subprocess.run([*script, "process", str(clip), str(masks), "-o", str(out), "-q"], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list(read_frames(out))) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4", "masks", "o.mp4", "o.vidharm.yaml"]  # no temporaries
    bad = subprocess.run([*script, "process", str(tmp_path / "missing.mp4"), str(masks), "-o", str(tmp_path / "x.mp4")],
                         env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 3
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]  # one line, flushed before the exit
    assert "no such file" in bad.stderr
