from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError
from vidharm.pipeline import FrameParams, ParamsTrack, read_params, write_params


def _track() -> ParamsTrack:
    rows = [
        FrameParams(i, i * 512, [0.1 * i, 0, 0, 0, 0, -0.1], [0.4, 0.5, 0.6, 0.5], smoothed=[0.0] * 6) for i in range(3)
    ]
    return ParamsTrack(header={"fps": "24/1", "time_base": "1/12288", "width": 8, "height": 6}, frames=rows)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    write_params(_track(), path)
    back = read_params(path)
    assert [f.frame for f in back.frames] == [0, 1, 2]
    np.testing.assert_allclose(back.raw_array(), _track().raw_array())
    np.testing.assert_allclose(back.times_s(), [0, 1 / 24, 2 / 24])
    data = json.loads(path.read_text())
    assert data["schema"] == "vidharm.params" and data["version"] == 1
    assert set(data["frames"][0]) == {"frame", "pts", "raw", "smoothed", "stats", "smoothed_stats", "signature"}
    assert data["frames"][0]["stats"]["contrast_pivot"] == 0.5


def _edit(tmp_path: Path, change) -> Path:
    path = tmp_path / "p.json"
    write_params(_track(), path)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["frames"][1].__setitem__("raw", [0, 0, float("nan"), 0, 0, 0]), "finite"),
        (lambda d: d["frames"][1].__setitem__("smoothed", [0, 0, float("inf"), 0, 0, 0]), "finite"),
        (lambda d: d["frames"][1].__setitem__("raw", [0, 0]), "list of 6"),
        (lambda d: d["frames"][2].__setitem__("frame", 1), "appears twice"),
        (lambda d: d.__setitem__("schema", "other"), "not a vidharm parameter file"),
        (lambda d: d.__setitem__("version", 99), "newer"),
        (lambda d: d["header"].__setitem__("fps", "fast"), "frame rate"),
        (lambda d: d["frames"][0]["stats"].pop("mean_r"), "must map"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, change, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_params(_edit(tmp_path, change))


def test_not_json_and_missing(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        read_params(tmp_path / "x.json")
    with pytest.raises(InputError, match="not found"):
        read_params(tmp_path / "none.json")


def test_row_lookup() -> None:
    track = _track()
    assert track.row(2).frame == 2
    with pytest.raises(InputError, match="no row for frame 7"):
        track.row(7)
    assert track.row(1).applied()[0] == [0.0] * 6


def test_first_frame_is_recorded_and_defaults_to_0(tmp_path: Path) -> None:
    """Rows are positions; header.first_frame converts them to source numbers (absent in older sidecars: 0)."""
    path = tmp_path / "p.json"
    write_params(_track(), path)
    old = read_params(path)
    assert old.first_frame == 0 and old.source_frame(2) == 2
    numbered = _track()
    numbered.header["first_frame"] = 1001
    write_params(numbered, path)
    back = read_params(path)
    assert back.first_frame == 1001 and back.source_frame(2) == 1003 and back.row(2).frame == 2
    assert json.loads(path.read_text())["version"] == 1  # an optional header key: no new schema version
    with pytest.raises(InputError, match=r"no row for frame 1004 \(it covers 1001-1003\)"):
        back.row(3)
    for bad in (-1, 1.5, "1001", True, None):
        data = json.loads(path.read_text())
        data["header"]["first_frame"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(InputError, match="header.first_frame must be the clip's first source frame number"):
            read_params(path)
