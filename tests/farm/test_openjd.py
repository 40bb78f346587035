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
    Shot,
    ShotPlan,
    build_openjd_template,
    export_openjd,
    make_shot,
    plan_chunks,
    plan_shot,
    validate_openjd_template,
)
from vidharm.io import read_frames, read_image, write_image
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


def _args(template: dict[str, object], step: str) -> list[str]:
    steps = {s["name"]: s for s in template["steps"]}  # type: ignore[attr-defined]
    return steps[step]["script"]["actions"]["onRun"]["args"]  # type: ignore[no-any-return]


def _flag(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def test_new_shot_options_reach_the_commands_of_their_phases(tmp_path: Path) -> None:
    """fps, colorspace and ocio go to analyze and render, stats_mask to analyze, mask_from_alpha replaces masks."""
    (tmp_path / "config.ocio").write_text("ocio_profile_version: 2\n")
    (tmp_path / "bars").mkdir()
    options = {
        "fps": "25",
        "colorspace": "ACEScg",
        "ocio": str(tmp_path / "config.ocio"),
        "stats_mask": str(tmp_path / "bars"),
        "mask_from_alpha": True,
        "analyze_stride": "2",
    }
    shot = Shot("a", tmp_path / "plate" / "a.%04d.exr", None, tmp_path / "out.mov", tmp_path / "w", 4, options)
    plan = ShotPlan(shot, 10, plan_chunks(10, 4, 1001), first_frame=1001)
    template, values = build_openjd_template([plan], name="a", template_dir=tmp_path)
    assert validate_openjd_template(template) is True or _openjd_model() is None
    analyze, smooth_args, render = _args(template, "Analyze"), _args(template, "Smooth"), _args(template, "Render")
    for args in (analyze, render):
        assert (_flag(args, "--fps"), _flag(args, "--colorspace")) == ("25", "ACEScg")
        assert _flag(args, "--ocio") == "{{Param.Ocio}}" and "--mask-from-alpha" in args
        assert args[2] == "{{Param.ClipDir}}/a.%04d.exr" and "{{Param.Masks}}" not in args
    assert _flag(analyze, "--stats-mask") == "{{Param.StatsMask}}" and "--stats-mask" not in render
    assert _flag(analyze, "--analyze-stride") == "2" and "--analyze-stride" not in render
    assert not {"--fps", "--colorspace", "--ocio", "--stats-mask", "--mask-from-alpha"} & set(smooth_args)
    assert smooth_args[2] == "{{Param.WorkDir}}/analyze.001001-001004.json"
    assert template["steps"][0]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == [
        "1001-1004",
        "1005-1008",
        "1009-1010",
    ]
    kinds = {d["name"]: d.get("objectType") for d in template["parameterDefinitions"]}
    assert {k: kinds[k] for k in ("ClipDir", "Ocio", "StatsMask")} == {
        "ClipDir": "DIRECTORY",
        "Ocio": "FILE",
        "StatsMask": "DIRECTORY",
    }
    assert "Masks" not in kinds and values["ClipDir"] == str(tmp_path / "plate")
    assert "--audio-from" not in _args(template, "Concat")  # an image sequence has no audio
    _create_job(template, values, tmp_path)

    uri = Shot("b", tmp_path / "b.mov", tmp_path / "m", tmp_path / "b.mkv", tmp_path / "wb", 4,
               {"colorspace": "ACEScg", "ocio": "ocio://studio-config-latest"})  # fmt: skip
    template, values = build_openjd_template([ShotPlan(uri, 3, plan_chunks(3, 4))], name="b", template_dir=tmp_path)
    assert _flag(_args(template, "Analyze"), "--ocio") == "ocio://studio-config-latest" and "Ocio" not in values


def test_layers_become_fg_bg_and_alpha_arguments(tmp_path: Path) -> None:
    shot = Shot("l", tmp_path / "bg.mov", tmp_path / "alpha", tmp_path / "o.mov", tmp_path / "w", 5,
                {"premultiplied": True}, foreground=tmp_path / "fg" / "fg.####.png")  # fmt: skip
    template, values = build_openjd_template([ShotPlan(shot, 9, plan_chunks(9, 5))], name="l", template_dir=tmp_path)
    assert validate_openjd_template(template) is True or _openjd_model() is None
    for step in ("Analyze", "Render"):
        args = _args(template, step)
        assert args[2:8] == [
            "--fg",
            "{{Param.ForegroundDir}}/fg.####.png",
            "--bg",
            "{{Param.Clip}}",
            "--alpha",
            "{{Param.Masks}}",
        ]
        assert "--premultiplied" in args
    assert _flag(_args(template, "Concat"), "--audio-from") == "{{Param.Clip}}"
    assert values["ForegroundDir"] == str(tmp_path / "fg") and values["Clip"] == str(tmp_path / "bg.mov")


def test_plan_shot_opens_a_sequence_with_its_options_and_plans_source_ranges(tmp_path: Path) -> None:
    (tmp_path / "plate").mkdir()
    (tmp_path / "mattes").mkdir()
    for n in range(1001, 1008):
        write_image(tmp_path / "plate" / f"p.{n}.png", np.full((8, 12, 3), n % 200, np.uint8))
        write_image(tmp_path / "mattes" / f"m.{n}.png", np.full((8, 12), 255, np.uint8))
    shot = make_shot(tmp_path / "plate" / "p.%04d.png", tmp_path / "mattes", chunk=3, options={"fps": "25"})
    plan = plan_shot(shot)
    assert (plan.num_frames, plan.first_frame) == (7, 1001)
    assert plan.chunks == [range(1001, 1004), range(1004, 1007), range(1007, 1008)]
    with pytest.raises(UsageError, match="a video has its own frame rate"):
        plan_shot(make_shot(SAMPLE, SAMPLE_MASKS, options={"fps": "25"}))


@pytest.mark.slow
def test_openjd_runs_a_1001_sequence_job_equal_to_process(tmp_path: Path) -> None:
    """A PNG sequence numbered 1001-1006 with plate-numbered mattes, under openjd-cli: files 1001-1006 == process."""
    exe = _openjd_cli()
    (tmp_path / "plate").mkdir()
    (tmp_path / "mattes").mkdir()
    rng = np.random.default_rng(2)
    for n in range(1001, 1007):
        image = (rng.random((24, 32, 3)) * 120 + 60).astype(np.uint8)
        image[6:18, 8:20] = (230, 80, 30)
        matte = np.zeros((24, 32), np.uint8)
        matte[6:18, 8:20] = 255
        write_image(tmp_path / "plate" / f"plate.{n}.png", image)
        write_image(tmp_path / "mattes" / f"matte.{n}.png", matte)
    clip = tmp_path / "plate" / "plate.%04d.png"
    shot = make_shot(clip, tmp_path / "mattes", tmp_path / "out" / "o.####.png", chunk=4, options={"fps": "25"})
    (job,) = export_openjd([shot], tmp_path / "job.yaml", command=str(_vidharm_command(tmp_path)))
    run = subprocess.run(
        [str(exe), "run", str(job), "-p", f"file://{tmp_path / 'job.params.yaml'}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    process_video(clip, tmp_path / "mattes", tmp_path / "ref" / "r.%04d.png", ProcessConfig(device="cpu"), fps="25")
    for n in range(1001, 1007):
        np.testing.assert_array_equal(
            read_image(tmp_path / "out" / f"o.{n}.png"), read_image(tmp_path / "ref" / f"r.{n}.png")
        )
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [f"o.{n}.png" for n in range(1001, 1007)]
