"""The command line: end to end on the sample, help, progress, exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import PROJECT_ROOT

from vidharm.cli import main
from vidharm.config import load_config
from vidharm.io import count_frames
from vidharm.pipeline import ProcessConfig, read_params

SAMPLE = PROJECT_ROOT / "samples" / "dusk.mp4"
MASKS = PROJECT_ROOT / "samples" / "dusk_masks"


def test_process_on_the_sample_with_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "dusk_harmonized.mp4"
    code = main(
        [
            "process",
            str(SAMPLE),
            str(MASKS),
            "-o",
            str(out),
            "--preset",
            "ultrafast",
            "--params-out",
            str(tmp_path / "p.json"),
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "analyze" in err and "render" in err and "frame/s" in err and "fps" in err
    assert count_frames(out) == 72
    assert len(read_params(tmp_path / "p.json").frames) == 72


def test_quiet_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["process", str(SAMPLE), str(MASKS), "-o", str(tmp_path / "o.mp4"), "-q", "--set", "preset=ultrafast"])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_image_prints_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    from vidharm.io import read_frames

    frame = next(read_frames(SAMPLE)).image
    cv2.imwrite(str(tmp_path / "c.png"), frame[..., ::-1])
    code = main(["image", str(tmp_path / "c.png"), str(MASKS / "00000.png"), "-o", str(tmp_path / "h.png")])
    assert code == 0
    assert "temperature=" in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / "h.png")).shape == frame.shape


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["process", "missing.mp4", str(MASKS)], 3, "missing.mp4"),
        (["process", str(SAMPLE), "no_masks_here/"], 3, "mask folder not found"),
        (["process", str(SAMPLE), str(MASKS), "--model", "hdnet"], 4, "pass --weights"),
        (
            ["process", str(SAMPLE), str(MASKS), "--model", "harmoniser", "--weights", "x.pth"],
            2,
            "did you mean 'harmonizer'",
        ),
        (["process", str(SAMPLE), str(MASKS), "--set", "half_life=1"], 2, "did you mean 'half_life_s'"),
        (["process", str(SAMPLE), str(MASKS), "--model", "harmonizer", "--weights", "nope.pth"], 4, "nope.pth"),
        (["process", str(SAMPLE), str(MASKS), "-o", str(SAMPLE)], 2, "overwrite the input"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    argv: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("vidharm: error:") and message in err and "\n" not in err
    assert not list(tmp_path.glob("*.mp4"))


def test_help_explains(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["process", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("--ema-half-life", "--codec", "--crf", "--weights", "masks", "stats", "-q"):
        assert word in text


def test_console_script_entry_point(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "vidharm.cli", "models"], capture_output=True, text=True, check=True)
    assert "stats" in result.stdout and "harmonizer" in result.stdout


def test_default_preset_matches_built_in_defaults() -> None:
    assert load_config(ProcessConfig, PROJECT_ROOT / "configs" / "default.yaml") == ProcessConfig()
    assert load_config(ProcessConfig, PROJECT_ROOT / "configs" / "lossless.yaml").codec == "ffv1"


def test_background_pixels_of_the_sample_are_kept_losslessly(tmp_path: Path) -> None:
    import cv2

    from vidharm.io import read_frames

    out = tmp_path / "o.mkv"
    assert (
        main(
            [
                "process",
                str(SAMPLE),
                str(MASKS),
                "-o",
                str(out),
                "--config",
                str(PROJECT_ROOT / "configs" / "lossless.yaml"),
                "-q",
            ]
        )
        == 0
    )
    for i, (a, b) in enumerate(zip(read_frames(SAMPLE), read_frames(out), strict=True)):
        if i % 20:
            continue
        mask = cv2.imread(str(MASKS / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(a.image[mask == 0], b.image[mask == 0])
