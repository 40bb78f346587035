"""Exports: .cube LUTs (checked against ffmpeg's lut3d), the Nuke script with per-frame LUTs, ONNX."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers import shared_path
from numbered_shot import analyze_numbered_shot, write_numbered_shot

from vidharm.errors import InputError, OutputError, UsageError
from vidharm.filters import measure_filter_stats
from vidharm.io import read_frames, read_image, write_image
from vidharm.io._synth import write_test_clip
from vidharm.masks import to_alpha
from vidharm.models import create_model
from vidharm.pipeline import FrameParams, ParamsTrack, ProcessConfig, process_video, read_params, render_frame
from vidharm.pipeline.export import (
    export_lut,
    export_nuke,
    export_onnx,
    lut_lattice,
    read_cube,
    track_lut,
    write_cube,
)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="the ffmpeg command is not installed")

# Measured LUT error, 33 points, ffmpeg lut3d (tetrahedral) on 8-bit frames vs vidharm's own render, foreground
# only: mean |error| about 0.5 level (ffmpeg truncates instead of rounding: a -0.5 level bias by itself), the
# 99.9th percentile 1-3 levels, the maximum 1-5 levels (in dark or saturated colours where the filters bend).
LUT_MEAN_LEVELS = 1.0
LUT_MAX_LEVELS = 6


def _track(args: list[float], stats: list[float], n: int = 1) -> ParamsTrack:
    rows = [FrameParams(i, None, list(args), list(stats)) for i in range(n)]
    return ParamsTrack({"fps": "25/1", "width": 8, "height": 6, "num_frames": n}, rows)


def _lut3d(tmp_path: Path, image: np.ndarray, cube: Path) -> np.ndarray:
    write_image(tmp_path / "in.png", image)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(tmp_path / "in.png"),
            "-vf",
            f"lut3d=file={cube}",
            str(tmp_path / "o.png"),
        ],
        check=True,
    )
    return read_image(tmp_path / "o.png")


def _error(got: np.ndarray, want: np.ndarray, where: np.ndarray) -> tuple[float, int]:
    diff = np.abs(got.astype(int) - want.astype(int))[where]
    return float(diff.mean()), int(diff.max())


# --- the lattice ------------------------------------------------------------------------------------------------


def test_lattice_equals_render_at_lattice_colours() -> None:
    # 18 points put every lattice colour on an 8-bit level (k * 15), so render_frame sees the same inputs.
    args, stats = [0.2, -0.1, 0.3, 0.4, -0.2, 0.15], [0.42, 0.5, 0.61, 0.47]
    lut = lut_lattice(args, stats, size=18)
    levels = np.arange(18) * 15
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    image = np.stack([r, g, b], axis=-1).reshape(18 * 18, 18, 3).astype(np.uint8)
    rendered = render_frame(image, np.ones(image.shape[:2], np.float32), args, stats)
    assert np.abs(rendered.astype(int) - np.round(lut.reshape(18 * 18, 18, 3) * 255)).max() <= 1


def test_lattice_mix_and_near_identity() -> None:
    stats = [0.5, 0.5, 0.5, 0.5]
    identity = lut_lattice([0.0] * 6, stats, size=5, mix=0.0)
    grid = np.linspace(0, 1, 5)
    np.testing.assert_array_equal(identity[..., 0], np.broadcast_to(grid[:, None, None], (5, 5, 5)))
    np.testing.assert_array_equal(identity[..., 2], np.broadcast_to(grid[None, None, :], (5, 5, 5)))
    # all-zero arguments are the identity up to the reference's epsilons
    assert np.abs(lut_lattice([0.0] * 6, stats, size=5) - identity).max() < 1e-4
    full = lut_lattice([0.0, 0.4, 0, 0, 0, 0], stats, size=5)
    half = lut_lattice([0.0, 0.4, 0, 0, 0, 0], stats, size=5, mix=0.5)
    np.testing.assert_allclose(half, (full + identity) / 2, atol=1e-12)
    for bad in (1, 200, 2.5):
        with pytest.raises(UsageError, match="LUT size"):
            lut_lattice([0.0] * 6, stats, size=bad)  # type: ignore[arg-type]


def test_track_lut_averages_frame_luts() -> None:
    rows = [FrameParams(i, None, [0.0] * 6, [0.5] * 4, smoothed=[0.0, 0.1 * i, 0, 0, 0, 0]) for i in range(4)]
    track = ParamsTrack({"fps": "25/1"}, rows)
    want = (
        lut_lattice([0, 0.1, 0, 0, 0, 0], [0.5] * 4, size=4) + lut_lattice([0, 0.2, 0, 0, 0, 0], [0.5] * 4, size=4)
    ) / 2
    np.testing.assert_allclose(track_lut(track, range(1, 3), size=4), want, atol=1e-12)
    with pytest.raises(InputError, match="no row for frame 9"):
        track_lut(track, 9)
    with pytest.raises(UsageError, match="non-empty"):
        track_lut(track, range(0))


def test_colour_transfer_lut_and_local_refusal(tmp_path: Path) -> None:
    coeffs = [0.8, 0.1, 0.0, 0.05, 0.0, 0.9, 0.0, 0.02, 0.1, 0.0, 0.7, 0.0]  # a 3x4 affine colour map
    rows = [FrameParams(0, None, coeffs, [])]
    lut = track_lut(ParamsTrack({"fps": "25/1", "method": {"kind": "affine"}}, rows), 0, size=3)
    m = np.array(coeffs).reshape(3, 4)
    for rgb in ([0, 0, 0], [1, 0.5, 0], [0.5, 1, 1]):
        index = tuple(int(v * 2) for v in rgb)
        np.testing.assert_allclose(lut[index], np.clip(m[:, :3] @ rgb + m[:, 3], 0, 1), atol=1e-12)
    local = ParamsTrack(
        {"fps": "25/1", "method": {"kind": "local", "grid": [1, 1]}}, [FrameParams(0, None, coeffs, [])]
    )
    with pytest.raises(UsageError, match="no 3D LUT"):
        export_lut(local, tmp_path / "l.cube", 0)
    with pytest.raises(UsageError, match="no 3D LUT"):
        export_nuke(local, tmp_path / "l.nk", clip=tmp_path / "c.mp4", masks=tmp_path)
    assert not list(tmp_path.iterdir())


# --- the .cube file ---------------------------------------------------------------------------------------------


def test_cube_order_is_red_fastest_and_reads_back(tmp_path: Path) -> None:
    lut = lut_lattice([0.1, 0.2, -0.3, 0.3, 0.1, -0.1], [0.4, 0.5, 0.6, 0.45], size=4)
    path = write_cube(lut, tmp_path / "a.cube", title='say "hi"', comments=["first", "second"])
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# first", "# second", "TITLE \"say 'hi'\""]
    data = [list(map(float, line.split())) for line in lines[6:]]
    assert len(data) == 64
    np.testing.assert_allclose(data[1], lut[1, 0, 0], atol=1e-6)  # second entry: red index 1
    np.testing.assert_allclose(data[4], lut[0, 1, 0], atol=1e-6)  # then green
    np.testing.assert_allclose(data[16], lut[0, 0, 1], atol=1e-6)  # blue slowest
    np.testing.assert_allclose(read_cube(path), lut, atol=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LUT_1D_SIZE 2\n0 0 0\n1 1 1\n", "1D LUT"),
        ("0 0 0\n", "no LUT_3D_SIZE"),
        ("LUT_3D_SIZE 2\n0 0 0\n", "1 entries but LUT_3D_SIZE 2 needs 8"),
        ("LUT_3D_SIZE 2\nDOMAIN_MAX 2 2 2\n", "only the domain"),
        ("LUT_3D_SIZE 2\n0 0\n", "not three numbers"),
    ],
)
def test_bad_cube_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "b.cube").write_text(text)
    with pytest.raises(InputError, match=message):
        read_cube(tmp_path / "b.cube")


@needs_ffmpeg
def test_ffmpeg_lut3d_reproduces_vidharm_on_the_foreground(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "clip.mp4", num_frames=4, width=64, height=48)
    (tmp_path / "m").mkdir()
    mask = np.zeros((48, 64), np.uint8)
    mask[10:38, 8:40] = 255
    for i in range(4):
        cv2.imwrite(str(tmp_path / "m" / f"{i:05d}.png"), mask)
    process_video(clip, tmp_path / "m", tmp_path / "o.mkv", ProcessConfig(codec="ffv1"), params_out=tmp_path / "p.json")
    track = read_params(tmp_path / "p.json")
    frame = 2
    cube = export_lut(track, tmp_path / "shot.cube", frame)
    assert "frame 2" in cube.read_text().splitlines()[0]
    source = [f.image for f in read_frames(clip)][frame]
    harmonized = [f.image for f in read_frames(tmp_path / "o.mkv")][frame]
    assert np.abs(harmonized.astype(int) - source)[mask == 255].mean() > 2  # the frame is really changed
    mean, worst = _error(_lut3d(tmp_path, source, cube), harmonized, mask == 255)
    assert mean < LUT_MEAN_LEVELS and worst <= LUT_MAX_LEVELS, (mean, worst)


@needs_ffmpeg
def test_ffmpeg_lut3d_on_a_real_photo(tmp_path: Path) -> None:
    folder = shared_path("data", "images")
    image = read_image(folder / "images" / "00388.jpg")
    mask = to_alpha(read_image(folder / "masks" / "00388.png"))
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        args = create_model("stats")(x, torch.from_numpy(mask)[None, None]).float()
        stats = measure_filter_stats(x, args)
    args_list, stats_list = args[0].tolist(), stats[0].tolist()
    cube = export_lut(_track(args_list, stats_list), tmp_path / "photo.cube", 0)
    want = render_frame(image, mask, args_list, stats_list)
    mean, worst = _error(_lut3d(tmp_path, image, cube), want, mask == 1)
    assert mean < LUT_MEAN_LEVELS and worst <= LUT_MAX_LEVELS, (mean, worst)


# --- Nuke -----------------------------------------------------------------------------------------------------


def test_export_nuke_writes_a_lut_per_frame_and_a_consistent_script(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    for i in range(3, 6):
        write_image(tmp_path / "masks" / f"matte_{i:04d}.png", np.zeros((6, 8), np.uint8))
    rows = [
        FrameParams(i, None, [0.0] * 6, [0.5] * 4, smoothed=[0.01 * i, 0.1, 0, 0, 0, -0.02 * i]) for i in range(3, 6)
    ]
    track = ParamsTrack({"fps": "24000/1001", "width": 8, "height": 6, "clip": "plate.mov"}, rows)
    nk = export_nuke(
        track, tmp_path / "shot.nk", clip=tmp_path / "plate.mov", masks=tmp_path / "masks", size=5, mix=0.7
    )
    text = nk.read_text()
    cubes = sorted((tmp_path / "shot_cubes").iterdir())
    assert [c.name for c in cubes] == ["shot.0003.cube", "shot.0004.cube", "shot.0005.cube"]
    for row, cube in zip(rows, cubes, strict=True):
        np.testing.assert_allclose(read_cube(cube), lut_lattice(row.smoothed, row.stats, size=5), atol=1e-6)
    assert text.count("{") == text.count("}")
    assert "first_frame 3" in text and "last_frame 5" in text and "fps 23.976" in text
    assert f'file "{(tmp_path / "masks").resolve()}/matte_%04d.png"' in text
    assert re.search(r'file ".*/shot_cubes/shot\.\[format %04d \[frame\]\]\.cube"', text)
    assert "Keymix {" in text and " mix 0.7" in text and "maskChannel rgba.red" in text
    assert text.count(" raw true") == 2 and "time_offset -1" in text
    assert " shadow {{curve x3 -0.06 x4 -0.08 x5 -0.1}}" in text
    # the stack order puts the plate on top (input 0, B), the graded plate next (A), the matte last (mask)
    assert (
        text.index("push $N_vidharm_plate") > text.index("push $N_vidharm_graded") > text.index("push $N_vidharm_matte")
    )


# --- ONNX -----------------------------------------------------------------------------------------------------


def _tiny_weights(folder: Path) -> tuple[torch.nn.Module, ProcessConfig]:
    torch.manual_seed(0)
    model = create_model("harmonizer_tiny").eval()
    torch.save(model.state_dict(), folder / "tiny.pth")
    return model, ProcessConfig(model="harmonizer_tiny", weights=str(folder / "tiny.pth"), device="cpu")


def test_export_onnx_matches_pytorch(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, config = _tiny_weights(tmp_path)
    worst = export_onnx(config, tmp_path / "h.onnx")
    assert worst is not None and worst < 1e-4
    # the batch axis is dynamic, and the graph is the model's argument prediction with the given weights
    session = ort.InferenceSession(str(tmp_path / "h.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "mask"]
    image, mask = torch.rand(3, 3, 64, 64), torch.rand(3, 1, 64, 64)
    got = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})[0]
    with torch.inference_mode():
        want = model(image, mask).numpy()
    assert got.shape == (3, 6)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_export_onnx_refuses_image_models_and_leaves_nothing(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    torch.save(create_model("hdnet_tiny").state_dict(), tmp_path / "hdnet.pth")
    with pytest.raises(UsageError, match="argument-predicting"):
        export_onnx(ProcessConfig(model="hdnet_tiny", weights=str(tmp_path / "hdnet.pth")), tmp_path / "x.onnx")
    _, config = _tiny_weights(tmp_path)
    with pytest.raises(OutputError, match="differ by"):
        export_onnx(config, tmp_path / "y.onnx", atol=0.0, rtol=0.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hdnet.pth", "tiny.pth"]


def test_export_onnx_of_the_parity_weights_passes_its_check(tmp_path: Path) -> None:
    """Regression: the seeded parity weights predict raw arguments of ~100, which ONNX Runtime's float32
    summation order moves by ~5e-4; an absolute 1e-4 check refused every export of them."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    weights = shared_path("parity", "harmonizer", "weights_seed0.pth")
    config = ProcessConfig(model="harmonizer", weights=str(weights), device="cpu")
    worst = export_onnx(config, tmp_path / "h.onnx")
    assert worst is not None and 0 < worst < 1e-2
    with pytest.raises(OutputError, match="differ by"):
        export_onnx(config, tmp_path / "strict.onnx", rtol=0.0)


@pytest.mark.slow
def test_export_onnx_full_harmonizer(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    torch.save(create_model("harmonizer").state_dict(), tmp_path / "h.pth")
    config = ProcessConfig(model="harmonizer", weights=str(tmp_path / "h.pth"), device="cpu")
    worst = export_onnx(config, tmp_path / "h.onnx")
    assert worst is not None and worst < 1e-4


def test_export_nuke_of_a_sequence_numbered_from_1001_uses_source_numbers(tmp_path: Path) -> None:
    """Regression: the script said first_frame 0 and named its LUTs .0000.cube while its Reads run 1001..."""
    clip, mattes = write_numbered_shot(tmp_path)
    track = analyze_numbered_shot(clip, mattes)
    nk = export_nuke(track, tmp_path / "shot.nk", clip=clip, masks=mattes, size=3)
    text = nk.read_text()
    cubes = tmp_path / "shot_cubes"
    assert sorted(p.name for p in cubes.iterdir()) == [f"shot.{n}.cube" for n in range(1001, 1007)]
    assert 'TITLE "vidharm frame 1003"' in (cubes / "shot.1003.cube").read_text()
    row = track.row(2)  # position 2 is file 1003
    np.testing.assert_allclose(read_cube(cubes / "shot.1003.cube"), lut_lattice(*row.applied(), size=3), atol=1e-6)
    assert " first_frame 1001\n last_frame 1006\n" in text
    # the plate is read at its file numbers (no TimeOffset), as the mattes are
    plate = text[text.index(f'file "{clip.resolve()}"') :]
    assert plate.startswith(f'file "{clip.resolve()}"\n first 1001\n last 1006\n origfirst 1001\n origlast 1006\n')
    assert f'file "{mattes.resolve()}/matte.%04d.png"\n first 1001\n last 1006\n' in text
    assert "TimeOffset" not in text
    # the OCIOFileTransform's [format %04d [frame]] names an existing LUT on every frame of the script
    expression = re.search(r'file "(.*)\[format %04d \[frame\]\]\.cube"', text)
    assert expression is not None
    for frame in range(1001, 1007):
        assert Path(f"{expression.group(1)}{frame:04d}.cube").is_file()
    assert re.search(r" brightness \{\{curve x1001 \S+ x1002 \S+ x1003 \S+ x1004 \S+ x1005 \S+ x1006 \S+\}\}", text)
    # a sidecar written before first_frame was recorded takes the clip's; a matte video is shifted onto 1001
    old = ParamsTrack({k: v for k, v in track.header.items() if k != "first_frame"}, track.frames)
    matte_movie = write_test_clip(tmp_path / "matte.mp4", num_frames=6, width=32, height=24)
    again = export_nuke(old, tmp_path / "old.nk", clip=clip, masks=matte_movie, size=2).read_text()
    assert sorted(p.name for p in (tmp_path / "old_cubes").iterdir())[0] == "old.1001.cube"
    assert " first_frame 1001" in again and "TimeOffset {\n time_offset 1000\n name vidharm_Matte" in again


def test_export_lut_takes_and_names_source_frames_of_a_sequence(tmp_path: Path) -> None:
    clip, mattes = write_numbered_shot(tmp_path)
    track = analyze_numbered_shot(clip, mattes)
    cube = export_lut(track, tmp_path / "f.cube", 1003, size=3)
    assert 'TITLE "vidharm frame 1003"' in cube.read_text() and "frame 1003\n" in cube.read_text()
    np.testing.assert_allclose(read_cube(cube), lut_lattice(*track.row(2).applied(), size=3), atol=1e-6)
    mean = export_lut(track, tmp_path / "m.cube", range(1002, 1005), size=3)
    assert 'TITLE "vidharm frame 1002-1004"' in mean.read_text()
    with pytest.raises(InputError, match=r"no row for frame 3 \(it covers 1001-1006\)"):
        export_lut(track, tmp_path / "x.cube", 3, size=3)
