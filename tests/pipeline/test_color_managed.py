"""Colour-managed analysis, render and export (issue 11, items 3 and 8).

Where the filters act: ``out = x + mask * (from(f(a)) - from(a))`` with ``a = to(x)`` in the config's sRGB
texture space; a plain sRGB clip gives the same result with and without colour management; a .cube of a
colour-managed track, wrapped in the OCIO conversions its comments name, reproduces the render.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from vidharm.errors import InputError, UsageError
from vidharm.filters import apply_filters_unbounded, measure_filter_stats
from vidharm.io import open_color_management, read_frames
from vidharm.pipeline import ProcessConfig, analyze, open_clip, process_video, read_params, render_frame
from vidharm.pipeline.analyze import analysis_frame
from vidharm.pipeline.export import export_lut, export_nuke, lut_lattice, read_cube
from vidharm.pipeline.params import FrameParams, ParamsTrack
from vidharm.pipeline.render import render_video, track_color_management

SRGB = "sRGB Encoded Rec.709 (sRGB)"
ARGS = [0.2, -0.3, 0.4, 0.5, 0.3, -0.2]
STATS = [0.4, 0.45, 0.5, 0.42]

ClipMaker = Callable[..., tuple[Path, Path]]


def _frame_mask(height: int = 20, width: int = 24) -> np.ndarray:
    mask = np.zeros((height, width), np.float32)
    mask[:, width // 3 :] = np.linspace(0.1, 1, width - width // 3, dtype=np.float32)
    return mask


def test_a_plain_srgb_clip_gives_the_same_result_with_and_without_colour_management(
    tmp_path: Path, clip_with_masks: ClipMaker
) -> None:
    clip, masks = clip_with_masks(num_frames=5)
    plain, managed = tmp_path / "plain.mkv", tmp_path / "managed.mkv"
    base = ProcessConfig(codec="ffv1", device="cpu")
    a = process_video(clip, masks, plain, base)
    b = process_video(clip, masks, managed, dataclasses.replace(base, colorspace="srgb_tx"))
    assert a.header["color"] is None
    assert b.header["color"]["colorspace"] == SRGB and b.header["color"]["analysis_space"] == SRGB
    assert [(r.raw, r.stats, r.smoothed) for r in a.frames] == [(r.raw, r.stats, r.smoothed) for r in b.frames]
    for x, y in zip(read_frames(plain), read_frames(managed), strict=True):
        np.testing.assert_array_equal(x.image, y.image)


def test_the_general_colour_path_on_srgb_equals_the_code_value_path() -> None:
    """Forcing the OCIO path (identity conversions) changes no 8-bit level: the same arithmetic, not a shortcut."""
    srgb = open_color_management("srgb_tx")
    forced = dataclasses.replace(srgb, is_identity=False)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    mask = _frame_mask()
    lut = render_frame(image, mask, ARGS, STATS)
    general = render_frame(image, mask, ARGS, STATS, color=forced)
    assert np.abs(general.astype(int) - lut).max() <= 1
    assert (general == lut).mean() > 0.99
    # Analysis sees the same values: 16-bit levels of the 8-bit ones (257 x level).
    np.testing.assert_array_equal(analysis_frame(image, forced), image.astype(np.uint16) * 257)


def test_managed_render_is_the_documented_formula() -> None:
    cm = open_color_management("ACEScg")
    rng = np.random.default_rng(1)
    image = rng.uniform(-0.05, 6.0, (20, 24, 3)).astype(np.float32)
    mask = _frame_mask()
    a = cm.to_analysis(image)
    t = torch.from_numpy(a).permute(2, 0, 1)[None]
    fa = apply_filters_unbounded(t, torch.tensor([ARGS]), torch.tensor([STATS]))[0].permute(1, 2, 0).numpy()
    want = image + mask[..., None] * (cm.from_analysis(np.ascontiguousarray(fa)) - cm.from_analysis(a))
    want = np.where((mask == 0)[..., None], image, want)
    got = render_frame(image, mask, ARGS, STATS, color=cm)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # Not the same as filtering the linear values as if they were code values.
    assert np.abs(got - render_frame(image, mask, ARGS, STATS)).max() > 0.05


def test_analysis_statistics_are_measured_in_the_analysis_space(tmp_path: Path, clip_with_masks: ClipMaker) -> None:
    clip, masks = clip_with_masks(num_frames=2, name="deep.mkv", codec="ffv1", pix_fmt="gbrp16le", color=None)
    config = ProcessConfig(colorspace="ACEScct", device="cpu")
    track = analyze(open_clip(clip, masks), config)
    cm = open_color_management("ACEScct")
    for row, frame in zip(track.frames, read_frames(clip), strict=True):
        a = cm.to_analysis(frame.image.astype(np.float32) / 65535)
        x = torch.from_numpy(np.clip(a, 0, 1)).permute(2, 0, 1)[None].double()
        want = measure_filter_stats(x, torch.tensor([row.raw], dtype=torch.float64))[0].numpy()
        np.testing.assert_allclose(row.stats, want, atol=2e-5)
        code_values = measure_filter_stats(
            torch.from_numpy(frame.image / 65535).permute(2, 0, 1)[None], torch.zeros(1, 6)
        )
        assert np.abs(np.array(row.stats[:3]) - code_values[0, :3].numpy()).max() > 0.01


def _track(color: dict[str, str] | None) -> ParamsTrack:
    header = {"fps": "24/1", "width": 4, "height": 4, "color": color}
    return ParamsTrack(header, [FrameParams(0, 0, list(ARGS), list(STATS)), FrameParams(1, 1, [0.0] * 6, list(STATS))])


def test_render_uses_the_colour_management_of_the_analysis() -> None:
    acescg = open_color_management("ACEScg").describe()
    assert track_color_management(_track(None), ProcessConfig()) is None
    assert track_color_management(_track(acescg), ProcessConfig()).colorspace == "ACEScg"
    assert track_color_management(_track(acescg), ProcessConfig(colorspace="lin_ap1")).colorspace == "ACEScg"
    with pytest.raises(UsageError, match="analysed in colour space 'ACEScg'.*'ACEScct'"):
        track_color_management(_track(acescg), ProcessConfig(colorspace="ACEScct"))
    with pytest.raises(UsageError, match="analysed without colour management"):
        track_color_management(_track(None), ProcessConfig(colorspace="ACEScg"))
    gone = {**acescg, "config": "/nowhere/config.ocio"}
    with pytest.raises(InputError, match="/nowhere/config.ocio"):
        track_color_management(_track(gone), ProcessConfig())
    with pytest.raises(UsageError, match="--colorspace"):
        ProcessConfig(ocio="/some/config.ocio")


def test_a_mismatched_render_writes_nothing(tmp_path: Path, clip_with_masks: ClipMaker) -> None:
    clip, masks = clip_with_masks(num_frames=2)
    inp = open_clip(clip, masks)
    track = analyze(inp, ProcessConfig(colorspace="srgb_tx", device="cpu"))
    out = tmp_path / "out.mkv"
    with pytest.raises(UsageError, match="render with the same --colorspace"):
        render_video(inp, track, out, ProcessConfig(colorspace="ACEScg", codec="ffv1"))
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def _ocio_chain(cm_colorspace: str, analysis: str, cube: Path, image: np.ndarray) -> np.ndarray:
    """The chain the .cube's comments name, run by OpenColorIO itself."""
    import PyOpenColorIO as ocio

    config = ocio.Config.CreateFromFile(open_color_management(cm_colorspace).config)
    group = ocio.GroupTransform()
    group.appendTransform(ocio.ColorSpaceTransform(src=cm_colorspace, dst=analysis))
    group.appendTransform(ocio.FileTransform(src=str(cube), interpolation=ocio.INTERP_TETRAHEDRAL))
    group.appendTransform(ocio.ColorSpaceTransform(src=analysis, dst=cm_colorspace))
    out = np.ascontiguousarray(image, dtype=np.float32).copy()
    config.getProcessor(group).getDefaultCPUProcessor().applyRGB(out)
    return out


@pytest.mark.parametrize("mix", [1.0, 0.5])
def test_cube_of_a_colour_managed_track_reproduces_the_render_inside_the_ocio_chain(tmp_path: Path, mix: float) -> None:
    cm = open_color_management("ACEScg")
    track = _track(cm.describe())
    cube = export_lut(track, tmp_path / f"frame_{mix}.cube", 0, size=65, mix=mix)
    text = cube.read_text()
    assert "ColorSpaceTransform 'ACEScg' -> 'sRGB Encoded Rec.709 (sRGB)'" in text
    assert "ColorSpaceTransform 'sRGB Encoded Rec.709 (sRGB)' -> 'ACEScg'" in text
    # Plate values whose analysis encoding lies in the LUT's domain [0, 1] (scene-linear 0 to 1 in Rec.709).
    rng = np.random.default_rng(2)
    plate = cm.from_analysis(rng.uniform(0, 1, (30, 40, 3)).astype(np.float32))
    chained = _ocio_chain("ACEScg", cm.analysis_space, cube, plate)
    rendered = render_frame(plate, np.ones((30, 40), np.float32), ARGS, STATS, mix=mix, color=cm)
    error = np.abs(cm.to_analysis(chained) - cm.to_analysis(rendered))  # in the analysis space's code values
    assert error.mean() < 0.5 / 255 and error.max() < 2.5 / 255
    # The same LUT applied to the plate's values without the wrap is far off.
    import PyOpenColorIO as ocio

    raw = np.ascontiguousarray(plate).copy()
    transform = ocio.FileTransform(src=str(cube), interpolation=ocio.INTERP_TETRAHEDRAL)
    ocio.Config.CreateRaw().getProcessor(transform).getDefaultCPUProcessor().applyRGB(raw)
    assert np.abs(cm.to_analysis(raw) - cm.to_analysis(rendered)).mean() > 10 / 255
    if mix != 1.0:  # the entries follow the blend in the plate's space, not in the analysis space
        assert np.abs(read_cube(cube) - lut_lattice(ARGS, STATS, size=65, mix=mix)).max() > 0.005


def test_lattice_without_mix_is_the_filters_in_the_analysis_space() -> None:
    cm = open_color_management("ACEScg")
    np.testing.assert_array_equal(lut_lattice(ARGS, STATS, size=5, color=cm), lut_lattice(ARGS, STATS, size=5))


def test_nuke_script_wraps_the_luts_in_ocio_conversions(tmp_path: Path) -> None:
    from vidharm.io import write_image

    (tmp_path / "m").mkdir()
    for f in (0, 1):
        write_image(tmp_path / "m" / f"{f:05d}.png", np.zeros((4, 4), np.uint8))
    track = _track(open_color_management("ACEScct").describe())
    nk = export_nuke(track, tmp_path / "shot.nk", clip=tmp_path / "c.exr", masks=tmp_path / "m", size=3).read_text()
    to_analysis = nk.index('OCIOColorSpace {\n in_colorspace "ACEScct"\n out_colorspace "sRGB Encoded Rec.709 (sRGB)"')
    file_transform = nk.index("OCIOFileTransform {")
    back = nk.index('OCIOColorSpace {\n in_colorspace "sRGB Encoded Rec.709 (sRGB)"\n out_colorspace "ACEScct"')
    assert to_analysis < file_transform < back < nk.index("Keymix {")
    assert "colour-managed (OCIO config studio-config" in nk
    plain = export_nuke(_track(None), tmp_path / "plain.nk", clip=tmp_path / "c.exr", masks=tmp_path / "m", size=3)
    assert "OCIOColorSpace" not in plain.read_text()


def test_sidecar_round_trip_keeps_the_colour_record(tmp_path: Path) -> None:
    from vidharm.pipeline import write_params

    record = open_color_management("ACEScg").describe()
    write_params(_track(record), tmp_path / "p.json")
    assert read_params(tmp_path / "p.json").header["color"] == record
