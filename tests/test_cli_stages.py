"""The command line's stage and editing commands: analyze/smooth/render, export, plot, qc, image --args."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import PROJECT_ROOT

from vidharm.cli import main
from vidharm.io import read_frames
from vidharm.pipeline import read_params

SAMPLE = PROJECT_ROOT / "samples" / "dusk.mp4"
MASKS = PROJECT_ROOT / "samples" / "dusk_masks"


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stages")
    out, params = d / "process.mkv", d / "process.json"
    assert (
        main(["process", str(SAMPLE), str(MASKS), "-o", str(out), "--codec", "ffv1", "--params-out", str(params), "-q"])
        == 0
    )
    return {"dir": d, "out": out, "params": params}


def _pixels(path: Path) -> list[np.ndarray]:
    return [f.image for f in read_frames(path)]


def test_analyze_in_uneven_chunks_smooth_render_equals_process(processed: dict[str, Path]) -> None:
    d = processed["dir"]
    work = d / "work"
    for chunk in ("40-71", "0-12", "13-39"):  # any order, uneven sizes
        assert main(["analyze", str(SAMPLE), str(MASKS), "--frames", chunk, "-o", str(work), "-q"]) == 0
    assert len(list(work.glob("analyze.*.json"))) == 3
    assert main(["smooth", str(work), "-o", str(d / "params.json")]) == 0
    joined = read_params(d / "params.json")
    assert [f.smoothed for f in joined.frames] == [f.smoothed for f in read_params(processed["params"]).frames]
    out = d / "render.mkv"
    assert (
        main(["render", str(SAMPLE), str(MASKS), str(d / "params.json"), "-o", str(out), "--codec", "ffv1", "-q"]) == 0
    )
    for a, b in zip(_pixels(out), _pixels(processed["out"]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_analyze_picks_its_automatic_stride_from_the_smoothing_to_come(
    processed: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert read_params(processed["params"]).header["analyze_stride"] == 7  # 24 fps: key frames 0.27 s apart
    every, auto = tmp_path / "every.json", tmp_path / "auto.json"
    assert main(["analyze", str(SAMPLE), str(MASKS), "--smoothing", "off", "-o", str(every), "-q"]) == 0
    assert main(["analyze", str(SAMPLE), str(MASKS), "--frames", "0-20", "-o", str(auto), "-q"]) == 0
    assert read_params(every).header["analyze_stride"] == 1 and read_params(auto).header["analyze_stride"] == 7
    capsys.readouterr()
    assert main(["smooth", str(every), "-o", str(tmp_path / "a.json"), "--smoothing", "off"]) == 0
    assert "interpolated" not in capsys.readouterr().err
    assert main(["smooth", str(auto), "-o", str(tmp_path / "b.json"), "--smoothing", "off"]) == 0
    assert "analysed at analyze_stride 7" in capsys.readouterr().err  # the interpolation stays: the user is told


def test_smooth_names_overlaps_and_gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for chunk in ("0-9", "5-12", "20-30"):
        assert main(["analyze", str(SAMPLE), str(MASKS), "--frames", chunk, "-o", str(tmp_path / chunk), "-q"]) == 0
    overlap = [str(tmp_path / "0-9"), str(tmp_path / "5-12")]
    assert main(["smooth", *overlap, "-o", str(tmp_path / "p.json")]) == 3
    assert "frame 5 is in both" in capsys.readouterr().err
    gap = [str(tmp_path / "0-9"), str(tmp_path / "20-30")]
    assert main(["smooth", *gap, "-o", str(tmp_path / "p.json")]) == 3
    assert "frames 10-19 are in no chunk" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_render_csv_lock_and_mix(processed: dict[str, Path], tmp_path: Path) -> None:
    csv = tmp_path / "edit.csv"
    csv.write_text("frame,saturation\n0,-0.5\n71,-0.5\n")
    out = tmp_path / "edited.mkv"
    argv = ["render", str(SAMPLE), str(MASKS), str(csv), "--base", str(processed["params"]), "-o", str(out)]
    assert main([*argv, "--codec", "ffv1", "--params-out", str(tmp_path / "e.json"), "-q"]) == 0
    edited, base = read_params(tmp_path / "e.json"), read_params(processed["params"])
    for e, b in zip(edited.frames, base.frames, strict=True):
        assert e.applied()[0][3] == -0.5
        assert e.applied()[0][:3] == b.applied()[0][:3] and e.applied()[0][4:] == b.applied()[0][4:]
    # mix 0 gives back the input, lock pins an argument
    none = tmp_path / "none.mkv"
    argv = ["render", str(SAMPLE), str(MASKS), str(processed["params"]), "-o", str(none), "--codec", "ffv1"]
    assert main([*argv, "--mix", "0", "--lock", "brightness=0.2", "--params-out", str(tmp_path / "l.json"), "-q"]) == 0
    assert all(f.applied()[0][1] == 0.2 for f in read_params(tmp_path / "l.json").frames)
    for a, b in zip(_pixels(none), _pixels(SAMPLE), strict=True):
        np.testing.assert_array_equal(a, b)


def test_export_lut_plot_and_qc(processed: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cube = tmp_path / "shot.cube"
    assert (
        main(
            [
                "export",
                "lut",
                str(SAMPLE),
                str(MASKS),
                "--frame",
                "36",
                "--params",
                str(processed["params"]),
                "-o",
                str(cube),
            ]
        )
        == 0
    )
    text = cube.read_text()
    assert "LUT_3D_SIZE 33" in text and len([ln for ln in text.splitlines() if ln[:1].isdigit()]) == 33**3
    png = tmp_path / "params.png"
    assert main(["plot", str(processed["params"]), "-o", str(png)]) == 0
    assert cv2.imread(str(png)) is not None
    capsys.readouterr()
    assert main(["qc", str(processed["params"]), "--max-jump", "0.0001", "--strict"]) == 1
    assert "jump" in capsys.readouterr().out


def test_image_with_given_args(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = next(read_frames(SAMPLE)).image
    cv2.imwrite(str(tmp_path / "c.png"), frame[..., ::-1])
    argv = ["image", str(tmp_path / "c.png"), str(MASKS / "00000.png"), "-o", str(tmp_path / "h.png")]
    assert main([*argv, "--args", "brightness=0.3"]) == 0
    assert "brightness=+0.300" in capsys.readouterr().out
    mask = cv2.imread(str(MASKS / "00000.png"), cv2.IMREAD_GRAYSCALE)
    out = cv2.imread(str(tmp_path / "h.png"))[..., ::-1]
    assert out[mask == 255].mean() > frame[mask == 255].mean() + 10
    np.testing.assert_array_equal(out[mask == 0], frame[mask == 0])


def test_eval_flicker_against_itself(
    processed: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "flicker.json"
    argv = ["eval", "flicker", str(processed["out"]), str(MASKS), "--gt", str(processed["out"]), "--json", str(report)]
    assert main([*argv, "--tl-size", "64", "--flow-preset", "ultrafast", "-q"]) == 0
    assert "TL" in capsys.readouterr().out
    data = __import__("json").loads(report.read_text())
    assert data["summary"]["tl_ratio"] == pytest.approx(1.0)
