"""OpenJD job templates: valid for openjd-model, PATH parameters for path mapping, run by the openjd-cli runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import PROJECT_ROOT

from vidharm.errors import UsageError
from vidharm.farm import (
    ShotPlan,
    build_openjd_template,
    export_openjd,
    make_shot,
    plan_chunks,
    plan_shot,
    validate_openjd_template,
)
from vidharm.io import read_frames
from vidharm.pipeline import ProcessConfig, analyze, open_clip, process_video, read_params, smooth, write_params

SAMPLE = PROJECT_ROOT / "samples" / "dusk.mp4"
SAMPLE_MASKS = PROJECT_ROOT / "samples" / "dusk_masks"


def _openjd_model() -> object:
    return pytest.importorskip("openjd.model", reason="openjd-model is not installed (pip install 'vidharm[farm]')")


def _openjd_cli() -> Path:
    pytest.importorskip("openjd.cli", reason="openjd-cli is not installed (pip install 'vidharm[farm]')")
    exe = Path(sys.executable).with_name("openjd")
    if not exe.exists():
        pytest.skip(f"{exe} is missing: openjd-cli has no console script in this environment")
    return exe


def _vidharm_command(tmp_path: Path) -> Path:
    """A vidharm executable for the runner's subprocesses: this interpreter, this checkout, one torch thread."""
    script = tmp_path / "vidharm"
    script.write_text(
        f'#!/bin/sh\nOMP_NUM_THREADS=1 PYTHONPATH="{PROJECT_ROOT}" exec "{sys.executable}" -m vidharm.cli "$@"\n'
    )
    script.chmod(0o755)
    return script


def _create_job(template: dict[str, object], values: dict[str, str], template_dir: Path) -> object:
    model = _openjd_model()
    decoded = model.decode_job_template(template=template)  # type: ignore[attr-defined]
    params = model.preprocess_job_parameters(  # type: ignore[attr-defined]
        job_template=decoded,
        job_parameter_values=dict(values),
        job_template_dir=template_dir,
        current_working_dir=template_dir,
    )
    return model.create_job(job_template=decoded, job_parameter_values=params)  # type: ignore[attr-defined]


def test_template_validates_and_every_path_is_a_path_parameter(tmp_path: Path) -> None:
    shot = make_shot("a.mp4", "a_masks", "out/a.mkv", base=tmp_path, options={"codec": "ffv1", "mix": "0.5"})
    plan = ShotPlan(shot, 250, plan_chunks(250, 100))
    template, values = build_openjd_template([plan], name="vidharm a", template_dir=tmp_path)
    assert validate_openjd_template(template) is True or _openjd_model() is None
    steps = {s["name"]: s for s in template["steps"]}
    assert list(steps) == ["Analyze", "Smooth", "Render", "Concat"]
    assert [s.get("dependencies") for s in template["steps"]][1:] == [
        [{"dependsOn": "Analyze"}],
        [{"dependsOn": "Smooth"}],
        [{"dependsOn": "Render"}],
    ]
    frames = steps["Render"]["parameterSpace"]["taskParameterDefinitions"][0]["range"]
    assert frames == ["0-99", "100-199", "200-249"]
    paths = {d["name"] for d in template["parameterDefinitions"] if d["type"] == "PATH"}
    assert paths == {"Clip", "Masks", "WorkDir", "Output"}
    for step in template["steps"]:
        args = step["script"]["actions"]["onRun"]["args"]
        assert args[0] == "--openjd-progress"
        # no literal path of this machine in the commands: each comes from a (mappable) PATH parameter
        assert not any(str(tmp_path) in a for a in args)
    assert "--mix" in steps["Render"]["script"]["actions"]["onRun"]["args"]
    assert values["Clip"] == str(tmp_path / "a.mp4")
    # defaults inside the template's folder are relative (OpenJD refuses absolute PATH defaults)
    assert {d["name"]: d.get("default") for d in template["parameterDefinitions"]}["Output"] == "out/a.mkv"
    job = _create_job(template, values, tmp_path)
    assert [s.name for s in job.steps] == ["Analyze", "Smooth", "Render", "Concat"]  # type: ignore[attr-defined]


def test_sequence_output_has_no_concat_step(tmp_path: Path) -> None:
    shot = make_shot("a.mp4", "a_masks", "seq/a.%05d.png", base=tmp_path)
    template, values = build_openjd_template([ShotPlan(shot, 10, plan_chunks(10, 4))], name="a", template_dir=tmp_path)
    validate_openjd_template(template)
    assert [s["name"] for s in template["steps"]] == ["Analyze", "Smooth", "Render"]
    render = template["steps"][2]["script"]["actions"]["onRun"]["args"]
    assert render[render.index("-o") + 1] == "{{Param.OutputDir}}/a.%05d.png"
    assert values["OutputDir"] == str(tmp_path / "seq")


def test_shot_list_as_one_job_with_steps_per_shot(tmp_path: Path) -> None:
    (tmp_path / "preset.yaml").write_text("half_life_s: 1.0\n")
    shots = [make_shot(f"{n}.mp4", f"{n}_m", base=tmp_path, name=n, options={"config": "preset.yaml"}) for n in "ab"]
    plans = [ShotPlan(s, 30, plan_chunks(30, 10)) for s in shots]
    template, values = build_openjd_template(plans, name="show", template_dir=tmp_path)
    validate_openjd_template(template)
    names = [s["name"] for s in template["steps"]]
    assert names == [f"{n} {p}" for n in "ab" for p in ("Analyze", "Smooth", "Render", "Concat")]
    assert {"a_Clip", "b_Clip", "a_Config", "b_Config"} <= set(values)
    analyze_b = template["steps"][4]["script"]["actions"]["onRun"]["args"]
    assert "{{Param.b_Clip}}" in analyze_b and "{{Param.b_Config}}" in analyze_b
    _create_job(template, values, tmp_path)
    many = [ShotPlan(make_shot(f"{i}.mp4", "m", base=tmp_path), 5, plan_chunks(5, 5)) for i in range(13)]
    with pytest.raises(UsageError, match="export one job per shot"):
        build_openjd_template(many, name="too many", template_dir=tmp_path)


def test_export_writes_template_and_parameter_values(tmp_path: Path, clip_with_masks: Callable[..., object]) -> None:
    clip, masks = clip_with_masks(num_frames=7)  # type: ignore[misc]
    shot = make_shot(clip, masks, tmp_path / "out.mkv", chunk=3)
    (path,) = export_openjd([shot], tmp_path / "job.yaml")
    template = yaml.safe_load(path.read_text())
    values = yaml.safe_load((tmp_path / "job.params.yaml").read_text())
    assert template["steps"][0]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == ["0-2", "3-5", "6-6"]
    assert values["Clip"] == str(clip) and values["VidharmCommand"] == "vidharm"
    jobs = export_openjd([shot, make_shot(clip, masks, tmp_path / "o2.mkv", name="two")], tmp_path / "jobs")
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == [
        "clip.params.yaml",
        "clip.yaml",
        "two.params.yaml",
        "two.yaml",
    ]
    assert len(jobs) == 2
    with pytest.raises(UsageError, match="is a .yaml file"):
        export_openjd([shot], tmp_path / "job.txt")
    with pytest.raises(UsageError, match="-o is a folder"):
        export_openjd([shot, shot], tmp_path / "jobs.yaml")


def test_runner_maps_paths_and_shows_progress(tmp_path: Path, clip_with_masks: Callable[..., object]) -> None:
    """One step of an exported job under openjd-cli, with every path given as another machine's and mapped."""
    exe = _openjd_cli()
    clip, masks = clip_with_masks(num_frames=6)  # type: ignore[misc]
    config = ProcessConfig(device="cpu")
    shot = make_shot(clip, masks, tmp_path / "out" / "clip.mkv", chunk=4)
    for frames in plan_shot(shot).chunks:  # the Analyze step's work, done here to keep the test fast
        track = analyze(open_clip(clip, masks, frames), config)
        shot.work.mkdir(parents=True, exist_ok=True)
        write_params(track, shot.work / f"analyze.{frames.start:06d}-{frames.stop - 1:06d}.json")
    (job,) = export_openjd([shot], tmp_path / "job.yaml", command=str(_vidharm_command(tmp_path)))
    values = yaml.safe_load((tmp_path / "job.params.yaml").read_text())
    remote = {k: v.replace(str(tmp_path), "/mnt/studio/shot") for k, v in values.items() if k != "VidharmCommand"}
    rules = {
        "version": "pathmapping-1.0",
        "path_mapping_rules": [
            {"source_path_format": "POSIX", "source_path": "/mnt/studio/shot", "destination_path": str(tmp_path)}
        ],
    }
    run = subprocess.run(
        [str(exe), "run", str(job), "-p", json.dumps({**values, **remote}), "--step", "Smooth"]
        + ["--no-run-dependencies", "--path-mapping-rules", json.dumps(rules)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "openjd_progress: 100" in run.stdout
    assert f"wrote {shot.work}/params.json" in run.stdout  # /mnt/studio/shot was mapped to this machine's folder
    expected = smooth(analyze(open_clip(clip, masks), config), mode="ema", half_life_s=config.half_life_s)
    assert [f.smoothed for f in read_params(shot.work / "params.json").frames] == [f.smoothed for f in expected.frames]


@pytest.mark.slow
def test_openjd_runs_the_whole_job_on_the_sample(tmp_path: Path) -> None:
    """analyze tasks -> smooth -> render tasks -> concat under openjd-cli equals vidharm process (ffv1)."""
    exe = _openjd_cli()
    shot = make_shot(SAMPLE, SAMPLE_MASKS, tmp_path / "out" / "dusk.mkv", chunk=30, options={"codec": "ffv1"})
    (job,) = export_openjd([shot], tmp_path / "job.yaml", command=str(_vidharm_command(tmp_path)))
    run = subprocess.run(
        [str(exe), "run", str(job), "-p", f"file://{tmp_path / 'job.params.yaml'}"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Session ended successfully" in run.stdout
    assert run.stdout.count("openjd_progress: 100") == 3 + 1 + 3 + 1  # every task reports its progress
    reference = tmp_path / "process.mkv"
    process_video(SAMPLE, SAMPLE_MASKS, reference, ProcessConfig(device="cpu", codec="ffv1"))
    a, b = list(read_frames(tmp_path / "out" / "dusk.mkv")), list(read_frames(reference))
    assert [f.pts for f in a] == [f.pts for f in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
