"""End-to-end: vidharm process (analyze -> smooth -> render) and vidharm image."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from helpers import PROJECT_ROOT, shared_path

from vidharm.errors import CheckpointError, InputError, MaskError, UsageError
from vidharm.io import probe_video, read_frames
from vidharm.models import create_model
from vidharm.pipeline import ProcessConfig, harmonize_image, process_video, read_params

SAMPLE = PROJECT_ROOT / "samples" / "dusk.mp4"
SAMPLE_MASKS = PROJECT_ROOT / "samples" / "dusk_masks"
FAST = ProcessConfig(preset="ultrafast")


def _frames(path: Path) -> list[np.ndarray]:
    return [f.image for f in read_frames(path)]


def _audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def _video_pts(path: Path) -> list[int]:
    return [f.pts for f in read_frames(path)]


def test_sample_round_trip_keeps_timing_size_tags_and_audio(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    track = process_video(SAMPLE, SAMPLE_MASKS, out, FAST, params_out=tmp_path / "p.json")
    src, dst = probe_video(SAMPLE), probe_video(out)
    assert (dst.width, dst.height, dst.fps) == (src.width, src.height, src.fps)
    assert dst.color == src.color and src.color.matrix == "bt709"
    assert _video_pts(out) == _video_pts(SAMPLE)
    assert len(track.frames) == 72
    assert _audio_packets(out) == _audio_packets(SAMPLE)
    assert (tmp_path / "out.vidharm.yaml").exists()
    # the foreground did change (the sample's sphere is lit by the wrong light)
    a, b = _frames(SAMPLE)[36], _frames(out)[36]
    mask = cv2.imread(str(SAMPLE_MASKS / "00036.png"), cv2.IMREAD_GRAYSCALE)
    assert np.abs(a[mask == 255].astype(int) - b[mask == 255]).mean() > 5


def test_background_is_untouched_with_lossless_output(tmp_path: Path, clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=6, width=66, height=50)
    out = tmp_path / "out.mkv"
    process_video(clip, masks, out, ProcessConfig(codec="ffv1"))
    for i, (src, dst) in enumerate(zip(_frames(clip), _frames(out), strict=True)):
        mask = cv2.imread(str(masks / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
        assert (mask == 0).any() and (mask > 0).any()
        np.testing.assert_array_equal(dst[mask == 0], src[mask == 0])
        assert not np.array_equal(dst[mask == 255], src[mask == 255])


def test_variable_frame_rate_and_odd_size_survive(tmp_path: Path, clip_with_masks) -> None:
    pts = [0, 512, 1536, 1664, 3000, 3100, 5000]
    clip, masks = clip_with_masks(
        num_frames=7, width=65, height=49, pts=pts, time_base=Fraction(1, 12800), pix_fmt="yuv444p"
    )
    out = tmp_path / "out.mp4"
    process_video(clip, masks, out, FAST)
    assert _video_pts(out) == pts
    info = probe_video(out)
    assert (info.width, info.height) == (65, 49)
    assert info.pix_fmt.startswith("yuv444")


def test_sidecar_schema_and_smoothing(tmp_path: Path, clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=8)
    off = process_video(clip, masks, tmp_path / "a.mp4", ProcessConfig(smoothing="off"), params_out=tmp_path / "a.json")
    every = ProcessConfig(half_life_s=1.0, analyze_stride=1)
    on = process_video(clip, masks, tmp_path / "b.mp4", every, params_out=tmp_path / "b.json")
    assert all(f.smoothed == f.raw for f in off.frames)
    assert [f.raw for f in on.frames] == [f.raw for f in off.frames]  # smoothing off analyses every frame too
    back = read_params(tmp_path / "b.json")
    assert back.header["smoothing"]["half_life_s"] == 1.0
    assert back.header["clip_fingerprint"] and back.header["masks_fingerprint"]
    assert back.header["arg_names"] == ["temperature", "brightness", "contrast", "saturation", "highlight", "shadow"]
    raw = np.array([f.raw for f in back.frames])
    smoothed = np.array([f.smoothed for f in back.frames])
    if np.ptp(raw, axis=0).max() > 0:
        assert np.ptp(smoothed, axis=0).max() < np.ptp(raw, axis=0).max()
    assert back.frames[3].pts is not None and json.loads((tmp_path / "b.json").read_text())["version"] == 1


def test_mask_video_is_accepted(tmp_path: Path, clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=5)
    out = tmp_path / "out.mp4"
    a = process_video(clip, masks, tmp_path / "a.mkv", ProcessConfig(codec="ffv1", smoothing="off"))
    # A mask video: the same masks encoded losslessly as RGB.
    mask_video = tmp_path / "masks.mkv"
    imgs = [np.repeat(cv2.imread(str(masks / f"{i:05d}.png"), cv2.IMREAD_GRAYSCALE)[..., None], 3, 2) for i in range(5)]
    with av.open(str(mask_video), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "bgr0"
        for img in imgs:
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    b = process_video(clip, mask_video, out, ProcessConfig(smoothing="off"))
    assert [f.raw for f in b.frames] == [f.raw for f in a.frames]


def test_harmonizer_weights_through_the_pipeline(tmp_path: Path, clip_with_masks) -> None:
    weights = shared_path("parity", "harmonizer", "weights_seed0.pth")
    clip, masks = clip_with_masks(num_frames=3)
    config = ProcessConfig(model="harmonizer", weights=str(weights), smoothing="off", preset="ultrafast")
    track = process_video(clip, masks, tmp_path / "o.mp4", config)
    model = create_model("harmonizer", checkpoint=weights)
    frame = next(read_frames(clip)).image
    mask = cv2.imread(str(masks / "00000.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        expected = model(x, torch.from_numpy(mask)[None, None])[0].tolist()
    np.testing.assert_allclose(track.frames[0].raw, expected, atol=6e-5)
    assert track.header["weights_sha256"] and track.header["model"] == "harmonizer"


def test_image_command_reproduces_the_reference_demo(tmp_path: Path) -> None:
    cases = np.load(shared_path("parity", "harmonizer", "cases.npz"))
    weights = shared_path("parity", "harmonizer", "weights_seed0.pth")
    comp, mask = cases["case0_composite"], cases["case0_mask"]
    cv2.imwrite(str(tmp_path / "comp.png"), comp[..., ::-1])
    cv2.imwrite(str(tmp_path / "mask.png"), np.round(mask * 255).astype(np.uint8))
    config = ProcessConfig(model="harmonizer", weights=str(weights))
    args = harmonize_image(tmp_path / "comp.png", tmp_path / "mask.png", tmp_path / "out.png", config)
    np.testing.assert_allclose(list(args.values()), cases["case0_args"], atol=1e-5)
    out = cv2.imread(str(tmp_path / "out.png"))[..., ::-1].astype(int)
    expected = np.round(cases["case0_output"] * 255).astype(int)
    diff = np.abs(out - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_stats_model_leaves_a_matching_foreground_nearly_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    image = (rng.random((64, 96, 3)) * 200 + 20).astype(np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 30:70] = 255
    cv2.imwrite(str(tmp_path / "c.png"), image)
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    args = harmonize_image(tmp_path / "c.png", tmp_path / "m.png", tmp_path / "o.png", ProcessConfig())
    assert max(abs(v) for v in args.values()) < 0.1


# --- bad input: one clear error, and nothing left at the output path ---------------------------------


def _nothing_written(folder: Path, output: Path) -> None:
    assert not output.exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".") or "tmp" in p.name]


def test_missing_clip(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.mp4"):
        process_video(tmp_path / "nope.mp4", SAMPLE_MASKS, tmp_path / "o.mp4", FAST)
    _nothing_written(tmp_path, tmp_path / "o.mp4")


def test_missing_masks_are_an_error_without_propagation(tmp_path: Path, clip_with_masks) -> None:
    from vidharm.pipeline import open_clip

    clip, masks = clip_with_masks(num_frames=6)
    for i in (2, 3, 5):
        (masks / f"{i:05d}.png").unlink()
    with pytest.raises(MaskError, match=r"no masks for 3 of 6 frames \(2-3, 5\)"):
        open_clip(clip, masks, propagate=False)


def test_mask_numbers_beyond_the_clip(tmp_path: Path, clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=4)
    cv2.imwrite(str(masks / "00009.png"), np.zeros((48, 64), np.uint8))
    with pytest.raises(MaskError, match="frame 9 but clip.mp4 has 4 frames"):
        process_video(clip, masks, tmp_path / "o.mp4", FAST)


def test_masks_of_another_aspect(tmp_path: Path, clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=3)
    cv2.imwrite(str(masks / "00001.png"), np.zeros((50, 50), np.uint8))
    out = tmp_path / "o.mp4"
    with pytest.raises(MaskError, match="another aspect"):
        process_video(clip, masks, out, FAST)
    _nothing_written(tmp_path, out)


def test_checkpoint_with_wrong_keys(tmp_path: Path, clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=2)
    state = create_model("harmonizer").state_dict()
    state["regressor.extra.weight"] = state.pop("regressor.f.weight")
    torch.save(state, tmp_path / "bad.pth")
    out = tmp_path / "o.mp4"
    with pytest.raises(CheckpointError, match="regressor.f.weight"):
        process_video(clip, masks, out, ProcessConfig(model="harmonizer", weights=str(tmp_path / "bad.pth")))
    assert not out.exists()


def test_output_equal_to_input_is_refused(clip_with_masks) -> None:
    clip, masks = clip_with_masks(num_frames=2)
    with pytest.raises(UsageError, match="overwrite the input"):
        process_video(clip, masks, clip, FAST)


def test_decord_decoder_gives_the_same_analysis(tmp_path: Path) -> None:
    pytest.importorskip("decord", reason="decord is the optional [decord] extra")
    a = process_video(SAMPLE, SAMPLE_MASKS, tmp_path / "a.mp4", ProcessConfig(preset="ultrafast", smoothing="off"))
    b = process_video(
        SAMPLE, SAMPLE_MASKS, tmp_path / "b.mp4", ProcessConfig(preset="ultrafast", smoothing="off", decoder="decord")
    )
    assert [f.pts for f in b.frames] == [f.pts for f in a.frames]
    np.testing.assert_allclose(b.raw_array(), a.raw_array(), atol=0.05)
