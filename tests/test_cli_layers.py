"""CLI: --mask-from-alpha, --stats-mask and layers (--fg/--bg/--alpha/--premultiplied/--write-fg) end to end."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.cli import main
from vidharm.io import read_frames, write_image
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import read_params
from vidharm.pipeline.inputs import flatten_layers

H, W, N = 32, 48, 4


def _element(i: int) -> np.ndarray:
    """RGBA 8-bit: a warm disc with a soft edge, moving right."""
    yy, xx = np.mgrid[:H, :W]
    a = np.clip((9.0 - np.hypot(yy - 16, xx - 14 - 2 * i)) / 4.0, 0, 1)
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., :3] = (205, 125, 70)
    rgba[..., 3] = np.rint(a * 255)
    return rgba


def _plate(i: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return np.stack([40 + 3 * xx, 70 + 2 * yy, 150 + i + 0 * xx], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("layers")
    for sub in ("fg", "bg", "alpha", "bars"):
        (d / sub).mkdir()
    mov = d / "comp.mov"  # QuickTime Animation: the element flattened over the plate, its matte in the alpha
    with av.open(str(mov), "w") as out:
        stream = out.add_stream("qtrle", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = W, H, "argb"
        for i in range(N):
            a = _element(i)[..., 3].astype(np.float32) / 255
            rgba = np.dstack([flatten_layers(_element(i)[..., :3], a, _plate(i)), _element(i)[..., 3]])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format="argb")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    for i in range(N):
        write_image(d / "fg" / f"fg.{1001 + i}.png", _element(i))
        write_image(d / "bg" / f"bg.{1001 + i}.png", _plate(i))
        write_image(d / "alpha" / f"{i:05d}.png", _element(i)[..., 3])
    matte = np.full((H, W), 255, np.uint8)
    matte[:4], matte[-4:] = 0, 0
    write_image(d / "bars.png", matte)
    return {
        "dir": d,
        "mov": mov,
        "fg": d / "fg" / "fg.%04d.png",
        "bg": d / "bg" / "bg.%04d.png",
        "alpha": d / "alpha",
        "bars": d / "bars.png",
        "plain": write_test_clip(d / "plain.mp4", num_frames=N, width=W, height=H),
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fg", "{fg}"], "--fg needs --bg"),
        (["--bg", "{bg}"], "--bg needs --fg"),
        (["{plain}", "--fg", "{fg}", "--bg", "{bg}"], "give no clip or masks"),
        (["--fg", "{fg}", "--bg", "{bg}", "--mask-from-alpha"], "--mask-from-alpha is for a clip"),
        (["{mov}", "{alpha}", "--mask-from-alpha"], "not both"),
        (["{mov}"], "--mask-from-alpha to use its own alpha"),
        (["{mov}", "--mask-from-alpha", "--write-fg", "e.%04d.png"], "--write-fg goes with --fg/--bg"),
        (["{mov}", "{alpha}", "--alpha", "{alpha}"], "--alpha goes with --fg/--bg"),
        (["{mov}", "{alpha}", "--premultiplied"], "--premultiplied goes with --fg/--bg"),
        ([], "give a clip and its masks"),
    ],
)
def test_bad_combinations_are_usage_errors(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    assert main(["process", *args, "-o", str(tmp_path / "o.mkv"), "-q"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_clip_without_alpha_is_an_input_error(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main(["process", str(files["plain"]), "--mask-from-alpha", "-o", str(tmp_path / "o.mkv"), "-q"]) == 3
    assert "has no alpha channel" in capsys.readouterr().err
    assert main(["process", "--fg", str(files["plain"]), "--bg", str(files["mov"]), "-o", str(tmp_path / "o.mkv")]) == 3
    assert "--alpha" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_process_with_mask_from_alpha(files: dict[str, Path], tmp_path: Path) -> None:
    own, given = tmp_path / "own.mkv", tmp_path / "given.mkv"
    base = ["--codec", "ffv1", "--smoothing", "off", "-q"]
    assert (
        main(
            [
                "process",
                str(files["mov"]),
                "--mask-from-alpha",
                "-o",
                str(own),
                "--params-out",
                str(tmp_path / "a.json"),
                *base,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "process",
                str(files["mov"]),
                str(files["alpha"]),
                "-o",
                str(given),
                "--params-out",
                str(tmp_path / "b.json"),
                *base,
            ]
        )
        == 0
    )
    a, b = read_params(tmp_path / "a.json"), read_params(tmp_path / "b.json")
    assert [r.raw for r in a.frames] == [r.raw for r in b.frames]
    for i, (x, y) in enumerate(zip(read_frames(own, alpha=True), read_frames(given), strict=True)):
        np.testing.assert_array_equal(x.image, y.image)
        assert x.alpha is not None  # a clip that is its own mask keeps its alpha in the output
        np.testing.assert_array_equal(x.alpha, _element(i)[..., 3])


def test_process_with_stats_mask(files: dict[str, Path], tmp_path: Path) -> None:
    common = [str(files["mov"]), "--mask-from-alpha", "--smoothing", "off", "--codec", "ffv1", "-q"]
    assert (
        main(
            [
                "process",
                *common,
                "--stats-mask",
                str(files["bars"]),
                "-o",
                str(tmp_path / "s.mkv"),
                "--params-out",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    assert main(["process", *common, "-o", str(tmp_path / "n.mkv"), "--params-out", str(tmp_path / "n.json")]) == 0
    masked, plain = read_params(tmp_path / "s.json"), read_params(tmp_path / "n.json")
    assert masked.header["stats_mask"] == str(files["bars"])
    assert [r.stats for r in masked.frames] != [r.stats for r in plain.frames]
    # The farm's analyze stage with the same flags gives the same sidecar rows.
    assert (
        main(["analyze", *common[:4], "--stats-mask", str(files["bars"]), "-o", str(tmp_path / "an.json"), "-q"])
        == 0  # fmt: skip
    )
    assert [r.raw for r in read_params(tmp_path / "an.json").frames] == [r.raw for r in masked.frames]


def test_layers_process_and_farm_stages_agree(files: dict[str, Path], tmp_path: Path) -> None:
    layers = ["--fg", str(files["fg"]), "--bg", str(files["bg"])]
    out, element = tmp_path / "comp" / "c.%04d.png", tmp_path / "elem" / "e.%04d.png"
    argv = ["process", *layers, "-o", str(out), "--write-fg", str(element), "--params-out", str(tmp_path / "p.json")]
    assert main([*argv, "--smoothing", "off", "-q"]) == 0
    names = [f"c.{1001 + i}.png" for i in range(N)]
    assert sorted(p.name for p in out.parent.glob("c.*.png")) == names
    elements = list(read_frames(element, alpha=True))
    assert len(elements) == N and all(e.alpha is not None for e in elements)
    for e, i in zip(elements, range(N), strict=True):
        np.testing.assert_array_equal(e.alpha, _element(i)[..., 3])
    # analyze + smooth + render on the same layers reproduce process exactly.
    assert main(["analyze", *layers, "-o", str(tmp_path / "work"), "--smoothing", "off", "-q"]) == 0
    assert main(["smooth", str(tmp_path / "work"), "-o", str(tmp_path / "s.json"), "--smoothing", "off"]) == 0
    farm, farm_element = tmp_path / "farm" / "f.%04d.png", tmp_path / "farm_elem" / "g.%04d.png"
    render = ["render", *layers, str(tmp_path / "s.json"), "-o", str(farm), "--write-fg", str(farm_element), "-q"]
    assert main(render) == 0
    for x, y in zip(read_frames(out), read_frames(farm), strict=True):
        np.testing.assert_array_equal(x.image, y.image)
    for x, y in zip(elements, read_frames(farm_element, alpha=True), strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.alpha, y.alpha)
    # A sidecar analyzed from layers is not rendered onto another clip.
    flat = tmp_path / "flat" / "x.%04d.png"
    assert (
        main(["render", str(files["mov"]), str(tmp_path / "s.json"), "-o", str(flat), "--mask-from-alpha", "-q"]) == 3
    )


def test_render_layers_with_alpha_masks_and_the_wrong_sidecar(files: dict[str, Path], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    layers = ["--fg", str(files["fg"]), "--bg", str(files["bg"])]
    assert (
        main(
            [
                "process",
                *layers,
                "-o",
                str(tmp_path / "a.mkv"),
                "--codec",
                "ffv1",
                "--params-out",
                str(tmp_path / "p.json"),
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # The same sidecar rendered as premultiplied layers is refused: it was analyzed as straight.
    code = main(["render", *layers, "--premultiplied", str(tmp_path / "p.json"), "-o", str(tmp_path / "b.mkv"), "-q"])
    assert code == 3 and "--premultiplied" in capsys.readouterr().err
    assert not (tmp_path / "b.mkv").exists()
