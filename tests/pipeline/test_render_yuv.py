"""Rendering in the clip's own 8-bit 4:2:0: decode keeps the planes, the render filters them, the encoder takes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

import vidharm.pipeline.render as render_module
from vidharm.errors import ShapeError, UsageError
from vidharm.io import VideoFrame, VideoWriter, probe_video, read_frames
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import ProcessConfig, analyze, open_clip, process_video, smooth
from vidharm.pipeline.inputs import iter_frames_masks_alpha
from vidharm.pipeline.methods import Method, method_for_model
from vidharm.pipeline.process import one_pass
from vidharm.pipeline.render import render_output, yuv_render

pytest.importorskip("numba")

ARGS = [0.5, -0.3, 0.4, 0.6, -0.4, 0.3]


def _planes(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray() for frame in container.decode(video=0)]


def _masks(folder: Path) -> list[np.ndarray]:
    import cv2

    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]


def test_decoder_keeps_the_planes_of_8_bit_420_only(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", num_frames=3)
    frames = list(read_frames(clip, planes=True))
    for frame, planes in zip(frames, _planes(clip), strict=True):
        assert frame.planes is not None and frame.planes.shape == (72, 64) and frame.planes.dtype == np.uint8
        np.testing.assert_array_equal(frame.planes, planes)
    assert all(f.planes is None for f in read_frames(clip))  # only when asked
    for name, options in [
        ("b.mkv", {"codec": "ffv1", "pix_fmt": "yuv444p"}),
        ("c.mkv", {"codec": "ffv1", "pix_fmt": "yuv420p10le"}),
        ("d.mkv", {"codec": "ffv1", "pix_fmt": "yuv420p", "width": 63, "height": 47}),
    ]:
        other = write_test_clip(tmp_path / name, num_frames=1, **options)  # type: ignore[arg-type]
        assert next(read_frames(other, planes=True)).planes is None, name


def test_writer_takes_planes_only_in_the_sources_own_format(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "a.mp4", num_frames=2)
    info = probe_video(clip)
    frames = list(read_frames(clip, planes=True))
    with VideoWriter(tmp_path / "out.mkv", info, codec="ffv1", pix_fmt="yuv420p") as writer:
        assert writer.planes_format == "yuv420p"
        for frame in frames:
            assert frame.planes is not None
            writer.write_planes(frame, frame.planes)
        with pytest.raises(ShapeError):
            writer.write_planes(frames[0], frames[0].planes[:-2])  # type: ignore[index]
    for got, want in zip(_planes(tmp_path / "out.mkv"), frames, strict=True):
        np.testing.assert_array_equal(got, want.planes)  # ffv1 is lossless: the planes went through untouched
    with VideoWriter(tmp_path / "rgb.mkv", info, codec="ffv1", pix_fmt="yuv444p") as writer:
        assert writer.planes_format is None
        with pytest.raises(UsageError, match="RGB"):
            writer.write_planes(frames[0], frames[0].planes)  # type: ignore[arg-type]
        writer.write(VideoFrame(0, None, info.time_base, frames[0].image))


def analyze_method(config: ProcessConfig) -> Method:
    return method_for_model(config.model, config.transfer)


def test_yuv_render_applies_where_it_can(clip_with_masks: Callable[..., tuple[Path, Path]], tmp_path: Path) -> None:
    clip, masks = clip_with_masks(num_frames=2)
    inp, config = open_clip(clip, masks), ProcessConfig()
    assert yuv_render(inp, config, analyze_method(config), None, exact=False) == ("bt709", False)
    assert yuv_render(inp, config, analyze_method(config), None, exact=True) is None
    assert yuv_render(inp, ProcessConfig(decoder="decord"), analyze_method(config), None, exact=False) is None
    deep, _ = clip_with_masks(num_frames=2, name="deep.mkv", codec="ffv1", pix_fmt="yuv444p")
    assert yuv_render(open_clip(deep, masks), config, analyze_method(config), None, exact=False) is None
    assert all(item[5] is not None for item in iter_frames_masks_alpha(inp, planes=True))


@pytest.fixture
def lossless(clip_with_masks: Callable[..., tuple[Path, Path]]) -> tuple[Path, Path]:
    """An H.264-style 8-bit 4:2:0 clip stored losslessly (ffv1), so that decoded planes compare exactly."""
    return clip_with_masks(num_frames=6, width=64, height=48, name="lossless.mkv", codec="ffv1", pix_fmt="yuv420p")


def _render(clip: Path, masks: Path, out: Path) -> None:
    """Render fixed, strong arguments (the seeded network's own barely change a frame)."""
    inp = open_clip(clip, masks)
    config = ProcessConfig(codec="ffv1", pix_fmt="yuv420p")
    track = smooth(analyze(inp, config), mode="off", half_life_s=config.half_life_s)
    for row in track.frames:
        row.raw, row.smoothed = list(ARGS), None
    render_output(inp, track, out, config, force=True)


def test_yuv_render_keeps_the_background_and_agrees_with_the_rgb_render(
    lossless: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip, masks = lossless
    _render(clip, masks, tmp_path / "yuv.mkv")
    with monkeypatch.context() as patch:
        patch.setattr(render_module, "yuv_render", lambda *a, **k: None)
        _render(clip, masks, tmp_path / "rgb.mkv")
    source, ours, theirs = _planes(clip), _planes(tmp_path / "yuv.mkv"), _planes(tmp_path / "rgb.mkv")
    assert len(source) == len(ours) == len(theirs) == 6
    for src, yuv, rgb, mask in zip(source, ours, theirs, _masks(masks), strict=True):
        background = mask == 0
        np.testing.assert_array_equal(yuv[:48][background], src[:48][background])
        assert (rgb[:48][background] != src[:48][background]).any()  # the RGB round trip re-rounds it
        fg = mask == 255
        assert np.abs(yuv[:48][fg].astype(int) - src[:48][fg]).mean() > 5  # harmonized
        assert np.abs(yuv[:48][fg].astype(int) - rgb[:48][fg]).mean() < 1.5


def test_one_pass_equals_two_passes_in_yuv(lossless: tuple[Path, Path], tmp_path: Path) -> None:
    clip, masks = lossless
    config = ProcessConfig(codec="ffv1", pix_fmt="yuv420p", analyze_stride=2)
    inp = open_clip(clip, masks)
    assert one_pass(inp, tmp_path / "one.mkv", config)
    assert yuv_render(inp, config, analyze_method(config), None, exact=False) is not None
    process_video(clip, masks, tmp_path / "one.mkv", config)
    track = smooth(analyze(inp, config), mode=config.smoothing, half_life_s=config.half_life_s)
    render_output(inp, track, tmp_path / "two.mkv", config, force=True)
    frames = zip(
        _planes(tmp_path / "one.mkv"), _planes(tmp_path / "two.mkv"), _planes(clip), _masks(masks), strict=True
    )
    for a, b, src, mask in frames:
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a[:48][mask == 0], src[:48][mask == 0])  # rendered in YUV: background kept
