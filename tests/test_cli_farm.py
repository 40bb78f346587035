"""Farm commands end to end on the sample: chunking invariance, kill and rerun, fingerprints, concat, farm export.

The sample's first second (24 frames, with its audio and masks) keeps these fast; the whole sample runs through
the OpenJD runner in tests/farm/test_openjd.py (marked slow).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from helpers import PROJECT_ROOT

from vidharm.cli import main
from vidharm.io import VideoWriter, probe_video, read_frames, read_image
from vidharm.pipeline import read_params

SAMPLE = PROJECT_ROOT / "samples" / "dusk.mp4"
SAMPLE_MASKS = PROJECT_ROOT / "samples" / "dusk_masks"
N = 24
# 7 chunks of uneven sizes covering 0-23, in a shuffled order.
CHUNKS = ["0-0", "1-2", "3-5", "6-9", "10-14", "15-18", "19-23"]


def _excerpt(folder: Path, codec: str = "libx264", name: str = "dusk.mp4") -> tuple[Path, Path]:
    """The sample's first N frames (same timestamps, its audio) and their masks."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / name
    with VideoWriter(clip, probe_video(SAMPLE), codec=codec, crf=10, preset="ultrafast", audio_from=SAMPLE) as w:
        for frame in read_frames(SAMPLE, stop=N):
            w.write(frame)
    masks = folder / "masks"
    masks.mkdir(exist_ok=True)
    for i in range(N):
        (masks / f"{i:05d}.png").write_bytes((SAMPLE_MASKS / f"{i:05d}.png").read_bytes())
    return clip, masks


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("farm")
    clip, masks = _excerpt(d / "shot")
    out, params = d / "process.mkv", d / "process.json"
    argv = ["process", str(clip), str(masks), "-o", str(out), "--codec", "ffv1", "--params-out", str(params), "-q"]
    assert main(argv) == 0
    return {"dir": d, "clip": clip, "masks": masks, "out": out, "params": params}


def _audio(path: Path) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as c:
        return [(round(float(p.pts * p.time_base), 3), bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def test_chunked_farm_run_equals_process(shot: dict[str, Path]) -> None:
    """7 uneven chunks in any order, one run twice: sidecars, parameters, PNG frames and lossless video equal
    what `vidharm process` made in one go."""
    d, clip, masks = shot["dir"], str(shot["clip"]), str(shot["masks"])
    order = random.Random(7).sample(CHUNKS, len(CHUNKS))
    work = d / "work"
    for chunk in [*order, order[2]]:  # a chunk analysed twice (a retried task)
        assert main(["analyze", clip, masks, "--frames", chunk, "-o", str(work), "-q"]) == 0
    assert len(list(work.glob("analyze.*.json"))) == 7
    assert main(["smooth", str(work), "-o", str(work / "params.json")]) == 0
    joined, reference = read_params(work / "params.json"), read_params(shot["params"])
    assert [f.smoothed for f in joined.frames] == [f.smoothed for f in reference.frames]
    assert [f.smoothed_stats for f in joined.frames] == [f.smoothed_stats for f in reference.frames]

    params = str(work / "params.json")
    for chunk in [*order, order[4]]:  # image sequence; a chunk rendered twice
        assert main(["render", clip, masks, params, "--frames", chunk, "-o", str(d / "seq" / "f.%05d.png"), "-q"]) == 0
        seg = str(work / f"render.{chunk}.mkv")  # lossless video segments
        assert main(["render", clip, masks, params, "--frames", chunk, "-o", seg, "--codec", "ffv1", "-q"]) == 0
    assert main(["render", clip, masks, params, "-o", str(d / "one" / "f.%05d.png"), "-q"]) == 0  # one chunk
    assert main(["concat", str(work), "-o", str(d / "joined.mkv"), "--audio-from", clip]) == 0

    names = sorted(p.name for p in (d / "seq").iterdir())
    assert names == [f"f.{i:05d}.png" for i in range(N)]  # numbered by source frame, nothing else left
    for frame in read_frames(shot["out"]):
        png = d / "seq" / f"f.{frame.index:05d}.png"
        np.testing.assert_array_equal(read_image(png), frame.image)
        assert png.read_bytes() == (d / "one" / png.name).read_bytes()
    a, b = list(read_frames(d / "joined.mkv")), list(read_frames(shot["out"]))
    assert [f.pts for f in a] == [f.pts for f in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
    assert _audio(d / "joined.mkv") == _audio(shot["out"])


def test_killed_render_then_rerun_and_force(shot: dict[str, Path], tmp_path: Path) -> None:
    clip, masks, params = str(shot["clip"]), str(shot["masks"]), str(shot["params"])
    pattern = str(tmp_path / "seq" / "f.%05d.png")
    assert main(["render", clip, masks, params, "-o", str(tmp_path / "ref" / "f.%05d.png"), "-q"]) == 0
    reference = {p.name: p.read_bytes() for p in (tmp_path / "ref").iterdir()}

    # A farm worker killed without warning (SIGKILL: no clean-up at all) part way through its task.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidharm.cli", "render", clip, masks, params, "-o", pattern, "-q"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list((tmp_path / "seq").glob("f.*.png"))) >= 3 if (tmp_path / "seq").is_dir() else False:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    for png in (tmp_path / "seq").glob("f.*.png"):  # every file there is a complete frame
        assert png.read_bytes() == reference[png.name]

    assert main(["render", clip, masks, params, "-o", pattern, "-q"]) == 0  # the retry
    assert {p.name: p.read_bytes() for p in (tmp_path / "seq").iterdir()} == reference  # temp files gone too

    (tmp_path / "seq" / "f.00005.png").write_bytes(b"not a png")
    assert main(["render", clip, masks, params, "--frames", "4-6", "-o", pattern]) == 0
    assert (tmp_path / "seq" / "f.00005.png").read_bytes() == b"not a png"  # finished frames are skipped
    assert main(["render", clip, masks, params, "--frames", "4-6", "-o", pattern, "--force", "-q"]) == 0
    assert (tmp_path / "seq" / "f.00005.png").read_bytes() == reference["f.00005.png"]
    assert main(["render", clip, masks, params, "-o", f"{masks}/%05d.png", "--force", "-q"]) == 2  # never the masks


def test_work_folders_and_params_of_another_clip_are_refused(
    shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip, masks = str(shot["clip"]), str(shot["masks"])
    other, other_masks = _excerpt(tmp_path / "other", codec="libx264rgb", name="other.mkv")  # same size, other bytes
    work = tmp_path / "work"
    assert main(["analyze", clip, masks, "--frames", "0-3", "-o", str(work), "-q"]) == 0
    capsys.readouterr()
    assert main(["analyze", str(other), str(other_masks), "--frames", "4-7", "-o", str(work), "-q"]) == 3
    assert "analyzed from another clip" in capsys.readouterr().err
    assert [p.name for p in work.iterdir()] == ["analyze.000000-000003.json"]

    stray = tmp_path / "stray"
    assert main(["analyze", str(other), str(other_masks), "--frames", "4-7", "-o", str(stray), "-q"]) == 0
    (work / "analyze.000004-000007.json").write_bytes((stray / "analyze.000004-000007.json").read_bytes())
    capsys.readouterr()
    assert main(["smooth", str(work), "-o", str(tmp_path / "p.json")]) == 3
    assert "analyze.000004-000007.json was analyzed from another clip" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()

    argv = ["render", str(other), str(other_masks), str(shot["params"]), "--frames", "0-1", "-o"]
    assert main([*argv, str(tmp_path / "f.%03d.png"), "-q"]) == 3
    assert "was analyzed from another clip" in capsys.readouterr().err
    assert not list(tmp_path.glob("f.*.png"))


def test_concat_names_gaps_and_progress_lines(
    shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clip, masks, params = str(shot["clip"]), str(shot["masks"]), str(shot["params"])
    capsys.readouterr()
    seg = str(tmp_path / "a.mkv")
    assert main(["--openjd-progress", "render", clip, masks, params, "--frames", "0-9", "-o", seg, "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "openjd_status: render" and out[-1] == "openjd_progress: 100"
    assert all(0 <= float(line.split(": ")[1]) <= 100 for line in out[1:])
    monkeypatch.setenv("VIDHARM_OPENJD_PROGRESS", "1")
    assert main(["render", clip, masks, params, "--frames", "15-23", "-o", str(tmp_path / "b.mkv"), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "openjd_progress: 100"
    assert main(["concat", seg, str(tmp_path / "b.mkv"), "-o", str(tmp_path / "all.mkv")]) == 3
    assert "frames 10-14 are in no segment (between a.mkv and b.mkv)" in capsys.readouterr().err
    assert not (tmp_path / "all.mkv").exists()


def test_farm_export_cli(shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, masks = str(shot["clip"]), str(shot["masks"])
    job = tmp_path / "job.yaml"
    argv = ["farm", "export", "--format", "openjd", clip, masks, "--chunk", "10", "-o", str(job)]
    assert main([*argv, "--codec", "ffv1", "--render-output", str(tmp_path / "out.mkv")]) == 0
    assert "openjd run" in capsys.readouterr().err
    template = yaml.safe_load(job.read_text())
    assert template["specificationVersion"] == "jobtemplate-2023-09"
    assert template["steps"][0]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == ["0-9", "10-19", "20-23"]
    assert yaml.safe_load((tmp_path / "job.params.yaml").read_text())["Output"] == str(tmp_path / "out.mkv")
    openjd_model = pytest.importorskip("openjd.model")
    openjd_model.decode_job_template(template=template)

    (tmp_path / "shots.csv").write_text(
        f"name,clip,masks,output,codec\nsh010,{clip},{masks},{tmp_path}/a.mkv,ffv1\n"
        f"sh020,{clip},{masks},{tmp_path}/b/b.%04d.png,\n"
    )
    assert main(["farm", "export", str(tmp_path / "shots.csv"), "-o", str(tmp_path / "jobs"), "--chunk", "12"]) == 0
    assert sorted(p.name for p in (tmp_path / "jobs").glob("*.yaml")) == [
        "sh010.params.yaml",
        "sh010.yaml",
        "sh020.params.yaml",
        "sh020.yaml",
    ]
    sequence = yaml.safe_load((tmp_path / "jobs" / "sh020.yaml").read_text())
    assert [s["name"] for s in sequence["steps"]] == ["Analyze", "Smooth", "Render"]
    one = tmp_path / "show.yaml"
    assert main(["farm", "export", str(tmp_path / "shots.csv"), "-o", str(one), "--layout", "step-per-shot"]) == 0
    assert len(yaml.safe_load(one.read_text())["steps"]) == 4 + 3
    capsys.readouterr()
    assert main(["farm", "export", clip, "-o", str(job)]) == 2
    assert "give the masks" in capsys.readouterr().err
    (tmp_path / "typo.csv").write_text(f"clip,masks,codek\n{clip},{masks},ffv1\n")
    assert main(["farm", "export", str(tmp_path / "typo.csv"), "-o", str(tmp_path / "t.yaml")]) == 2
    assert "did you mean 'codec'" in capsys.readouterr().err
