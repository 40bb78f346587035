"""Frame numbers a person gives or reads from a sidecar are the source's: keyframe CSVs, ``--base``, ``qc`` flags and
``export lut --frame`` on a PNG sequence numbered 1001-1006, also with sidecars written before ``first_frame`` was
recorded (the clip's own first number is taken then)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numbered_shot import box, write_numbered_shot

from vidharm.cli import main
from vidharm.io import read_image
from vidharm.pipeline import read_params, write_params
from vidharm.pipeline.export import lut_lattice, read_cube

NUMBERS = list(range(1001, 1007))


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sequence, its mattes, a stats-model sidecar and the same sidecar without ``first_frame``."""
    d = tmp_path_factory.mktemp("source_frames")
    clip, mattes = write_numbered_shot(d)
    sidecar = d / "p.json"
    argv = ["analyze", str(clip), str(mattes), "-o", str(sidecar), "--model", "stats", "--device", "cpu", "-q"]
    assert main(argv) == 0
    data = json.loads(sidecar.read_text())
    assert data["header"]["first_frame"] == 1001
    del data["header"]["first_frame"]
    (d / "old.json").write_text(json.dumps(data))
    return {"dir": d, "clip": clip, "mattes": mattes, "params": sidecar, "old": d / "old.json"}


def _render(shot: dict[str, Path], out: Path, csv: Path, *extra: str) -> None:
    argv = ["render", str(shot["clip"]), str(shot["mattes"]), str(csv), "-o", str(out / "o.####.png"), "-q"]
    assert main([*argv, "--device", "cpu", *extra]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"o.{n}.png" for n in NUMBERS]


def test_render_keyframe_csv_row_1003_edits_file_1003(shot: dict[str, Path], tmp_path: Path) -> None:
    csv = tmp_path / "keys.csv"
    csv.write_text("frame,brightness\n1001,0\n1002,0\n1003,0.5\n1004,0\n")
    _render(shot, tmp_path / "out", csv)
    plate = shot["dir"] / "plate"
    for n in NUMBERS:  # the neutral base with brightness 0 leaves every file but 1003 as it is
        source, result = read_image(plate / f"plate.{n}.png"), read_image(tmp_path / "out" / f"o.{n}.png")
        if n == 1003:
            assert result[box(2)].astype(int).mean() > source[box(2)].astype(int).mean() + 5  # brighter foreground
        else:
            np.testing.assert_array_equal(result, source)


def test_render_csv_over_a_base_written_before_first_frame_was_recorded(shot: dict[str, Path], tmp_path: Path) -> None:
    csv = tmp_path / "keys.csv"
    csv.write_text("frame,brightness\n1003,0.5\n1005,-0.5\n")
    _render(shot, tmp_path / "new", csv, "--base", str(shot["params"]), "--params-out", str(tmp_path / "new.json"))
    _render(shot, tmp_path / "old", csv, "--base", str(shot["old"]), "--params-out", str(tmp_path / "old.json"))
    for name in (f"o.{n}.png" for n in NUMBERS):
        np.testing.assert_array_equal(read_image(tmp_path / "new" / name), read_image(tmp_path / "old" / name))
    rendered = read_params(tmp_path / "old.json")
    assert rendered.first_frame == 1001
    assert [r.smoothed[1] for r in rendered.frames] == [0.5, 0.5, 0.5, 0.0, -0.5, -0.5]


@pytest.mark.parametrize("which", ["params", "old"])
def test_qc_flags_and_export_lut_frames_are_source_numbers(
    shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], which: str
) -> None:
    track = read_params(shot[which])
    track.frames[2].smoothed = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]  # file 1003 at the brightness clamp
    edited = tmp_path / "edited.json"
    write_params(track, edited)
    capsys.readouterr()
    assert main(["qc", str(edited), "--clip", str(shot["clip"])]) == 0
    assert "frame 1003: brightness at its clamp limit" in capsys.readouterr().out
    cube = tmp_path / "f.cube"
    argv = ["export", "lut", str(shot["clip"]), str(shot["mattes"]), "--params", str(edited), "--frame", "1003"]
    assert main([*argv, "-o", str(cube), "--size", "3"]) == 0
    assert 'TITLE "vidharm frame 1003"' in cube.read_text()
    np.testing.assert_allclose(read_cube(cube), lut_lattice(*track.frames[2].applied(), size=3), atol=1e-6)
    assert main([*argv[:-1], "3", "-o", str(tmp_path / "x.cube")]) == 3
    assert "frame 3 is outside the clip (frames 1001-1006)" in capsys.readouterr().err
