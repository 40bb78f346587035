"""Render keeps a clip's alpha (whatever the masks), picks the codec from the source, and moves the timecode
of a partial render; the frame iterator that carries the alpha."""

from __future__ import annotations

import logging
from pathlib import Path

import av
import numpy as np
import pytest

from vidharm.config import dump_config, load_config
from vidharm.io import probe_video, read_frames, read_image, write_image
from vidharm.io._synth import write_test_clip
from vidharm.pipeline import (
    ParamsTrack,
    ProcessConfig,
    analyze,
    iter_frames_and_masks,
    iter_frames_masks_alpha,
    open_clip,
    open_layers,
    render_output,
    smooth,
)

FRAMES, WIDTH, HEIGHT = 5, 48, 32
CONFIG = ProcessConfig(device="cpu")  # codec None: chosen from the source


def _need(codec: str) -> None:
    try:
        av.Codec(codec, "w")
    except ValueError:
        pytest.skip(f"encoder {codec} is not in this PyAV build")


def _masks(folder: Path) -> Path:
    folder.mkdir()
    for i in range(FRAMES):
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        mask[4:20, 4 + i : 24 + i] = 255
        write_image(folder / f"{i:05d}.png", mask)
    return folder


@pytest.fixture(scope="module")
def argb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ParamsTrack]:
    """An 8-bit QuickTime Animation clip with alpha (lossless), its masks and a track made with the masks."""
    _need("qtrle")
    folder = tmp_path_factory.mktemp("argb")
    clip = write_test_clip(
        folder / "fg.mov", num_frames=FRAMES, width=WIDTH, height=HEIGHT, codec="qtrle", pix_fmt="argb"
    )
    masks = _masks(folder / "masks")
    track = smooth(analyze(open_clip(clip, masks), CONFIG), mode="off", half_life_s=0)
    return clip, masks, track


def _alphas(path: Path | str) -> list[np.ndarray]:
    out = []
    for frame in read_frames(path, alpha=True):
        assert frame.alpha is not None
        out.append(frame.alpha)
    return out


def test_codec_defaults_to_none_and_round_trips_through_the_config(tmp_path: Path) -> None:
    assert ProcessConfig().codec is None
    saved = tmp_path / "c.yaml"
    saved.write_text(dump_config(ProcessConfig()))
    assert load_config(ProcessConfig, saved) == ProcessConfig()
    saved.write_text(dump_config(ProcessConfig(codec="ffv1")))
    assert load_config(ProcessConfig, saved).codec == "ffv1"
    assert load_config(ProcessConfig, None, ["codec=null"]).codec is None


def test_alpha_kept_with_masks_from_a_folder(tmp_path: Path, argb: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, track = argb
    out = tmp_path / "out.mkv"  # codec None + alpha in .mkv: ffv1, lossless
    render_output(open_clip(clip, masks), track, out, CONFIG)
    info = probe_video(out)
    assert info.codec == "ffv1" and info.has_alpha
    for before, after in zip(_alphas(clip), _alphas(out), strict=True):
        np.testing.assert_array_equal(after, before)


def test_alpha_kept_with_mask_from_alpha_exactly(tmp_path: Path, argb: tuple[Path, Path, ParamsTrack]) -> None:
    clip, _, _ = argb
    inp = open_clip(clip, mask_from_alpha=True)
    track = smooth(analyze(inp, CONFIG), mode="off", half_life_s=0)
    out = tmp_path / "out.mkv"
    render_output(inp, track, out, CONFIG)
    for before, after in zip(_alphas(clip), _alphas(out), strict=True):
        np.testing.assert_array_equal(after, before)


def test_image_sequence_output_gets_the_alpha_as_a_fourth_channel(
    tmp_path: Path, argb: tuple[Path, Path, ParamsTrack]
) -> None:
    clip, masks, track = argb
    render_output(open_clip(clip, masks), track, tmp_path / "seq" / "f.%04d.png", CONFIG)
    for i, alpha in enumerate(_alphas(clip)):
        rgba = read_image(tmp_path / "seq" / f"f.{i:04d}.png", keep_alpha=True)
        assert rgba.shape == (HEIGHT, WIDTH, 4)
        np.testing.assert_array_equal(rgba[..., 3], alpha)


def test_jpeg_sequence_drops_the_alpha_with_a_warning(
    tmp_path: Path, argb: tuple[Path, Path, ParamsTrack], caplog: pytest.LogCaptureFixture
) -> None:
    clip, masks, track = argb
    with caplog.at_level(logging.WARNING):
        render_output(open_clip(clip, masks, range(0, 2)), track, tmp_path / "f.%04d.jpg", CONFIG)
    assert read_image(tmp_path / "f.0001.jpg").shape == (HEIGHT, WIDTH, 3)
    assert any("JPEG has no alpha" in r.getMessage() for r in caplog.records)


def test_mp4_output_warns_once_that_the_alpha_is_lost(
    tmp_path: Path, argb: tuple[Path, Path, ParamsTrack], caplog: pytest.LogCaptureFixture
) -> None:
    clip, masks, track = argb
    with caplog.at_level(logging.WARNING):
        render_output(
            open_clip(clip, masks), track, tmp_path / "out.mp4", ProcessConfig(device="cpu", preset="ultrafast")
        )
    info = probe_video(tmp_path / "out.mp4")
    assert info.codec == "h264" and not info.has_alpha
    assert sum("alpha" in r.getMessage() for r in caplog.records) == 1


def test_frame_iterators_agree_and_only_the_variant_carries_alpha(argb: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, _ = argb
    inp = open_clip(clip, masks)
    plain = list(iter_frames_and_masks(inp))
    carried = list(iter_frames_masks_alpha(inp))
    assert [p[0] for p in plain] == [c[0] for c in carried] == list(range(FRAMES))
    for (_, _, image, mask), (_, _, image2, mask2, alpha, _) in zip(plain, carried, strict=True):
        np.testing.assert_array_equal(image, image2)
        np.testing.assert_array_equal(mask, mask2)
        assert alpha is not None and alpha.dtype == image.dtype and alpha.shape == mask.shape
    own = list(iter_frames_masks_alpha(open_clip(clip, mask_from_alpha=True)))
    for _, _, _, mask, alpha, _ in own:  # the mask is this alpha, normalised
        np.testing.assert_allclose(mask, alpha.astype(np.float32) / 255, atol=1e-6)


def test_no_alpha_for_a_clip_without_one_or_for_layers(tmp_path: Path, argb: tuple[Path, Path, ParamsTrack]) -> None:
    clip, masks, _ = argb
    plain = write_test_clip(
        tmp_path / "bg.mov", num_frames=FRAMES, width=WIDTH, height=HEIGHT, codec="qtrle", pix_fmt="rgb24"
    )
    assert all(a is None for *_, a in iter_frames_masks_alpha(open_clip(plain, masks)))
    assert all(a is None for *_, a in iter_frames_masks_alpha(open_layers(clip, plain)))


def test_partial_render_moves_the_timecode_and_skips_the_audio(tmp_path: Path) -> None:
    clip = write_test_clip(
        tmp_path / "tc.mov", num_frames=8, width=WIDTH, height=HEIGHT, timecode="01:00:00:00", audio="aac"
    )
    masks = _masks(tmp_path / "masks")
    track = smooth(analyze(open_clip(clip, masks, range(0, FRAMES)), CONFIG), mode="off", half_life_s=0)
    config = ProcessConfig(device="cpu", preset="ultrafast")
    render_output(open_clip(clip, masks, range(2, 5)), track, tmp_path / "part.mov", config)
    part = probe_video(tmp_path / "part.mov")
    assert part.timecode == "01:00:00:02" and not part.has_audio
    assert len(list(read_frames(tmp_path / "part.mov"))) == 3


def test_whole_render_keeps_timecode_and_audio(tmp_path: Path) -> None:
    clip = write_test_clip(
        tmp_path / "tc.mov", num_frames=FRAMES, width=WIDTH, height=HEIGHT, timecode="01:00:00:00", audio="aac"
    )
    masks = _masks(tmp_path / "masks")
    inp = open_clip(clip, masks)
    render_output(
        inp, smooth(analyze(inp, CONFIG), mode="off", half_life_s=0), tmp_path / "all.mov", ProcessConfig(device="cpu")
    )
    out = probe_video(tmp_path / "all.mov")
    assert out.timecode == "01:00:00:00" and out.has_audio and out.codec == "h264"
