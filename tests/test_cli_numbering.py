"""Source frame numbers everywhere: a PNG sequence numbered 1001-1010 with mattes numbered like the plate, sparse
keyframes 1001 and 1006, ``--frames 1003-1005``, and farm jobs whose tasks run 1001-based ranges and reproduce
``vidharm process`` bit for bit (the commands of the exported OpenJD template are run here, in any order)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from vidharm.cli import main
from vidharm.io import read_frames, read_image, write_image
from vidharm.pipeline import read_params

H, W, N, FIRST = 32, 48, 10, 1001
NUMBERS = list(range(FIRST, FIRST + N))
KEYS = (1001, 1006)


def _box(i: int) -> tuple[slice, slice]:
    return slice(8, 24), slice(6 + 2 * i, 22 + 2 * i)


def _matte(i: int) -> np.ndarray:
    matte = np.zeros((H, W), np.uint8)
    matte[_box(i)] = 255
    return matte


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A plate ``plate.1001.png`` .. ``plate.1010.png`` (a warm box moving right over noise), its mattes
    ``matte.1001.png`` .., keyframes 1001 and 1006 only, an RGBA element and a background layer, all numbered 1001.."""
    d = tmp_path_factory.mktemp("numbering")
    for sub in ("plate", "mattes", "keys", "fg", "bg", "stats"):
        (d / sub).mkdir()
    rng = np.random.default_rng(3)
    background = (rng.random((H, W, 3)) * 90 + 80).astype(np.uint8)  # a still, textured plate: flow can follow
    texture = (rng.random((16, 16, 3)) * 40).astype(np.uint8)
    for i, n in enumerate(NUMBERS):
        plate = background.copy()
        plate[_box(i)] = np.array((200, 70, 20), np.uint8) + texture  # a warm textured box moving right
        write_image(d / "plate" / f"plate.{n}.png", plate)
        write_image(d / "mattes" / f"matte.{n}.png", _matte(i))
        if n in KEYS:
            write_image(d / "keys" / f"matte.{n}.png", _matte(i))
            stats = np.full((H, W), 255, np.uint8)
            stats[:, W - 8 :] = 0  # a bar on the right that is not background
            write_image(d / "stats" / f"bars.{n}.png", stats)
        element = np.dstack([np.full((H, W, 3), (210, 100, 60), np.uint8), _matte(i)])
        write_image(d / "fg" / f"fg.{n}.png", element)
        write_image(d / "bg" / f"bg.{n}.png", background)
    return {
        "dir": d,
        "clip": d / "plate" / "plate.%04d.png",
        "mattes": d / "mattes",
        "keys": d / "keys",
        "stats": d / "stats",
        "fg": d / "fg" / "fg.####.png",
        "bg": d / "bg" / "bg.%04d.png",
    }


def _files(folder: Path, glob: str = "*.png") -> list[str]:
    return sorted(p.name for p in folder.glob(glob))


def _same_images(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        np.testing.assert_array_equal(read_image(a / name, keep_alpha=True), read_image(b / name, keep_alpha=True))


def test_process_reads_mattes_numbered_like_the_plate(shot: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = tmp_path / "p.json"
    argv = ["process", str(shot["clip"]), str(shot["mattes"]), "-o", str(out / "o.####.png"), "-q"]
    assert main([*argv, "--params-out", str(params)]) == 0
    assert _files(out) == [f"o.{n}.png" for n in NUMBERS]
    for i, n in enumerate(NUMBERS):
        source, result = read_image(shot["dir"] / "plate" / f"plate.{n}.png"), read_image(out / f"o.{n}.png")
        outside = _matte(i) == 0
        np.testing.assert_array_equal(result[outside], source[outside])  # the background is kept exactly
        assert not np.array_equal(result[_box(i)], source[_box(i)])  # the matte of frame n is used at frame n
    # Sidecar rows are clip positions (documented); the header says which frames were analysed.
    assert [r.frame for r in read_params(params).frames] == list(range(N))


def test_mattes_numbered_from_0_on_a_1001_sequence_are_refused_with_the_fix(
    shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a plate-numbered matte folder used to fail as 'beyond the clip'; now a 0-based one is named."""
    zero = tmp_path / "zero"
    zero.mkdir()
    for i in range(N):
        write_image(zero / f"{i:05d}.png", _matte(i))
    out = tmp_path / "o.####.png"
    assert main(["process", str(shot["clip"]), str(zero), "-o", str(out), "-q"]) == 3
    err = capsys.readouterr().err
    assert "the mask files are numbered 0-9 but plate.%04d.png's frames are 1001-1010" in err
    assert "number them from 1001" in err
    (zero / "00000.png").rename(zero / "01001.png")  # one mask inside, the others before the clip
    assert main(["process", str(shot["clip"]), str(zero), "-o", str(out), "-q"]) == 3
    assert "mask for frame 1 is before plate.%04d.png's first frame 1001" in capsys.readouterr().err
    assert not list(tmp_path.glob("o.*.png"))


def test_sparse_keyframes_1001_and_1006_propagate_in_process_and_masks_propagate(
    shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filled = tmp_path / "filled"
    assert main(["masks", "propagate", str(shot["clip"]), str(shot["keys"]), "-o", str(filled), "-q"]) == 0
    assert _files(filled) == [f"{n:05d}.png" for n in NUMBERS]  # numbered like the plate
    for n in KEYS:  # the keyframes come back exactly, at their own numbers
        np.testing.assert_array_equal(read_image(filled / f"{n:05d}.png"), _matte(n - FIRST).astype(np.uint16) * 257)
    middle = read_image(filled / "01003.png").astype(np.float64) / 65535 > 0.5
    iou = [(middle & (_matte(i) > 0)).sum() / (middle | (_matte(i) > 0)).sum() for i in range(N)]
    # Frame 1003's mask sits near the box of 1003 (DIS on 48x32 frames is rough), away from keyframe 1006's.
    assert int(np.argmax(iou)) in (1, 2, 3) and iou[2] > 0.6 > iou[5]

    capsys.readouterr()
    assert main(["masks", "check", str(shot["clip"]), str(shot["keys"])]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == ["1001", "1006", "mean"]

    sparse, full = tmp_path / "sparse", tmp_path / "full"
    clip = str(shot["clip"])
    assert main(["process", clip, str(shot["keys"]), "-o", str(sparse / "o.####.png"), "-q"]) == 0
    assert main(["process", clip, str(filled), "-o", str(full / "o.####.png"), "-q"]) == 0
    assert _files(sparse) == [f"o.{n}.png" for n in NUMBERS]
    _same_images(sparse, full, _files(sparse))  # propagated on the fly == propagated by the command


def test_frames_take_source_numbers(shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip, mattes = str(shot["clip"]), str(shot["mattes"])
    params, whole = tmp_path / "p.json", tmp_path / "whole"
    assert main(["process", clip, mattes, "-o", str(whole / "o.####.png"), "--params-out", str(params), "-q"]) == 0
    part = tmp_path / "part"
    assert main(["render", clip, mattes, str(params), "--frames", "1003-1005", "-o", str(part / "o.####.png")]) == 0
    assert _files(part) == ["o.1003.png", "o.1004.png", "o.1005.png"]
    _same_images(part, whole, _files(part))

    assert main(["analyze", clip, mattes, "--frames", "1003-1005", "-o", str(tmp_path / "work")]) == 0
    assert "analyze.001003-001005.json (frames 1003-1005)" in capsys.readouterr().err
    assert _files(tmp_path / "work", "*.json") == ["analyze.001003-001005.json"]

    for frames in ("3-5", "1009-1011"):
        assert main(["render", clip, mattes, str(params), "--frames", frames, "-o", str(tmp_path / "x.####.png")]) == 3
        assert "are outside the clip (frames 1001-1010)" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*.png"))

    lut = tmp_path / "f.cube"
    assert main(["export", "lut", clip, mattes, "--params", str(params), "--frame", "1004", "-o", str(lut)]) == 0
    assert lut.read_text().count("\n") > 33**3


def _fill(arg: str, values: dict[str, str], frames: str | None) -> str:
    arg = re.sub(r"\{\{Param\.(\w+)\}\}", lambda m: values[m.group(1)], arg)
    return arg.replace("{{Task.Param.Frames}}", frames) if frames is not None else arg


def _run_job(job: Path) -> list[list[str]]:
    """Run every task of an exported template with ``main``, tasks of a step in reverse order; the ranges."""
    template = yaml.safe_load(job.read_text())
    values = yaml.safe_load(job.with_name(job.stem + ".params.yaml").read_text())
    ranges = []
    for step in template["steps"]:
        space = step.get("parameterSpace")
        frames = space["taskParameterDefinitions"][0]["range"] if space else [None]
        ranges.append([f for f in frames if f is not None])
        for chunk in reversed(frames):
            args = [_fill(a, values, chunk) for a in step["script"]["actions"]["onRun"]["args"]]
            assert main(args) == 0, args
    return ranges


def test_farm_job_of_a_1001_sequence_runs_source_ranges_and_equals_process(
    shot: dict[str, Path], tmp_path: Path
) -> None:
    """Image-sequence and lossless-video output, with a sparse statistics mask and --fps: chunks == process."""
    clip, mattes, stats = str(shot["clip"]), str(shot["mattes"]), str(shot["stats"])
    options = ["--fps", "25", "--stats-mask", stats]
    ref = tmp_path / "ref"
    assert main(["process", clip, mattes, "-o", str(ref / "o.####.png"), *options, "-q"]) == 0
    assert main(["process", clip, mattes, "-o", str(tmp_path / "ref.mkv"), "--codec", "ffv1", *options, "-q"]) == 0

    job = tmp_path / "job.yaml"
    out = tmp_path / "out" / "o.####.png"
    argv = ["farm", "export", clip, mattes, "--chunk", "4", "-o", str(job), "--render-output", str(out), *options]
    assert main(argv) == 0
    template = yaml.safe_load(job.read_text())
    assert template["name"] == "vidharm plate"
    assert {d["name"] for d in template["parameterDefinitions"]} >= {"ClipDir", "Masks", "StatsMask", "OutputDir"}
    assert _run_job(job) == [["1001-1004", "1005-1008", "1009-1010"], [], ["1001-1004", "1005-1008", "1009-1010"]]
    work = tmp_path / "out_work"
    assert _files(work, "analyze.*.json") == [
        "analyze.001001-001004.json",
        "analyze.001005-001008.json",
        "analyze.001009-001010.json",
    ]
    assert read_params(work / "params.json").header["stats_mask"] == stats
    assert _files(out.parent) == [f"o.{n}.png" for n in NUMBERS]
    _same_images(out.parent, ref, _files(ref))

    video = tmp_path / "video.yaml"
    argv = ["farm", "export", clip, mattes, "--chunk", "3", "-o", str(video), *options, "--codec", "ffv1"]
    assert main([*argv, "--render-output", str(tmp_path / "v" / "out.mkv")]) == 0
    ranges = _run_job(video)
    assert ranges[0] == ["1001-1003", "1004-1006", "1007-1009", "1010-1010"] and ranges[3] == []
    segments = sorted((tmp_path / "v" / "out_work").glob("render.*.segment.json"))
    assert [p.name for p in segments][0] == "render.1001-1003.segment.json"
    assert yaml.safe_load(segments[0].read_text())["frames"] == [1001, 1003]
    a, b = list(read_frames(tmp_path / "v" / "out.mkv")), list(read_frames(tmp_path / "ref.mkv"))
    assert len(a) == N and [f.pts for f in a] == [f.pts for f in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)


def test_farm_job_of_layers_and_of_a_clip_that_is_its_own_mask(shot: dict[str, Path], tmp_path: Path) -> None:
    fg, bg = str(shot["fg"]), str(shot["bg"])
    ref = tmp_path / "ref"
    assert main(["process", "--fg", fg, "--bg", bg, "-o", str(ref / "c.####.png"), "-q"]) == 0
    job = tmp_path / "layers.yaml"
    out = tmp_path / "layers" / "c.####.png"
    argv = ["farm", "export", "--fg", fg, "--bg", bg, "--chunk", "6", "-o", str(job), "--render-output", str(out)]
    assert main(argv) == 0
    analyze = yaml.safe_load(job.read_text())["steps"][0]["script"]["actions"]["onRun"]["args"]
    assert analyze[1:6] == [
        "analyze",
        "--fg",
        "{{Param.ForegroundDir}}/fg.####.png",
        "--bg",
        "{{Param.ClipDir}}/bg.%04d.png",
    ]
    assert _run_job(job)[0] == ["1001-1006", "1007-1010"]
    assert _files(out.parent) == [f"c.{n}.png" for n in NUMBERS]
    _same_images(out.parent, ref, _files(ref))

    ref_alpha = tmp_path / "ref_alpha"
    assert main(["process", fg, "--mask-from-alpha", "-o", str(ref_alpha / "a.####.png"), "-q"]) == 0
    job = tmp_path / "alpha.yaml"
    out = tmp_path / "alpha" / "a.####.png"
    assert (
        main(["farm", "export", fg, "--mask-from-alpha", "--chunk", "4", "-o", str(job), "--render-output", str(out)])
        == 0
    )
    steps = yaml.safe_load(job.read_text())["steps"]
    for step in (steps[0], steps[2]):
        args = step["script"]["actions"]["onRun"]["args"]
        assert "--mask-from-alpha" in args and "{{Param.Masks}}" not in args
    _run_job(job)
    assert _files(out.parent) == _files(ref_alpha) == [f"a.{n}.png" for n in NUMBERS]
    _same_images(out.parent, ref_alpha, _files(ref_alpha))


def test_farm_export_refuses_bad_layer_and_alpha_combinations(
    shot: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = str(tmp_path / "j.yaml")
    fg, bg, clip, mattes = str(shot["fg"]), str(shot["bg"]), str(shot["clip"]), str(shot["mattes"])
    cases = [
        (["--fg", fg], "--fg needs --bg"),
        (["--fg", fg, "--bg", bg, clip], "with --fg/--bg give no clip"),
        (["--fg", fg, "--bg", bg, "--mask-from-alpha"], "mask_from_alpha is for a flattened clip"),
        ([clip, mattes, "--mask-from-alpha"], "either masks or mask_from_alpha"),
        ([clip, "--alpha", mattes], "--alpha goes with --fg/--bg"),
        ([clip], "give the masks (folder or video) after the clip, --mask-from-alpha"),
        ([clip, mattes, "--premultiplied"], "premultiplied goes with layers"),
        ([], "give a clip and its masks"),
    ]
    for argv, message in cases:
        assert main(["farm", "export", *argv, "-o", job]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert main(["farm", "export", str(shot["dir"] / "plate" / "plate.%04d.png"), str(shot["keys"]), "-o", job]) == 0
    zero = tmp_path / "zero"
    zero.mkdir()
    write_image(zero / "00000.png", _matte(0))
    assert main(["farm", "export", clip, str(zero), "-o", job]) == 3  # misnumbered masks fail at export
    assert "number them from 1001" in capsys.readouterr().err


def test_layers_alpha_folder_follows_the_foreground_numbering(shot: dict[str, Path], tmp_path: Path) -> None:
    """``--alpha`` numbered like the element (1001..) is its matte; the result equals the element's own alpha."""
    fg, bg = str(shot["fg"]), str(shot["bg"])
    own, given = tmp_path / "own", tmp_path / "given"
    assert main(["process", "--fg", fg, "--bg", bg, "-o", str(own / "c.####.png"), "-q"]) == 0
    argv = ["process", "--fg", fg, "--bg", bg, "--alpha", str(shot["mattes"]), "-o", str(given / "c.####.png")]
    assert main([*argv, "-q"]) == 0
    _same_images(own, given, _files(own))


def test_farm_export_keeps_zero_values_and_passes_the_new_flags(shot: dict[str, Path], tmp_path: Path) -> None:
    """--crf 0 and --mix 0 are values, not unset switches (0 == False); --colorspace/--fps reach the commands."""
    job = tmp_path / "j.yaml"
    argv = ["farm", "export", str(shot["clip"]), str(shot["mattes"]), "-o", str(job), "--crf", "0", "--mix", "0"]
    assert main([*argv, "--fps", "25", "--colorspace", "ACEScg", "--ocio", "ocio://studio-config-latest"]) == 0
    steps = {s["name"]: s["script"]["actions"]["onRun"]["args"] for s in yaml.safe_load(job.read_text())["steps"]}
    render = steps["Render"]
    assert render[render.index("--crf") + 1] == "0" and render[render.index("--mix") + 1] == "0.0"
    for name in ("Analyze", "Render"):
        args = steps[name]
        assert [args[args.index(f) + 1] for f in ("--fps", "--colorspace", "--ocio")] == [
            "25",
            "ACEScg",
            "ocio://studio-config-latest",
        ]
