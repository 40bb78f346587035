from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from vidharm.errors import UsageError
from vidharm.filters import measure_filter_stats
from vidharm.io._synth import pattern_frame
from vidharm.pipeline import ParamsTrack, ProcessConfig, analyze, frame_histogram, open_clip, stats_from_histograms
from vidharm.pipeline.analyze import analyze_stream, load_model, resize_for_model, to_model_input
from vidharm.pipeline.inputs import iter_frames_masks_alpha, iter_stats_masks


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_histogram_stats_equal_full_frame_stats(dtype: type) -> None:
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    image = rng.integers(0, top + 1, size=(37, 53, 3), dtype=dtype)
    image[:5] = top  # some saturated pixels so the clamps matter
    args = torch.tensor([[0.4, 0.6, 0.3, 0.1, 0.0, 0.0], [-0.7, -0.2, 0.0, 0.0, 0.5, 0.5], [1.5, 2.0, 0, 0, 0, 0]])
    x = torch.from_numpy(image.astype(np.float64) / top).permute(2, 0, 1)[None].expand(3, -1, -1, -1)
    expected = measure_filter_stats(x, args.double())
    hist = torch.from_numpy(np.stack([frame_histogram(image)] * 3))
    got = stats_from_histograms(hist, args)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


# --- the fast network input, and analysing at a stride (issue 8) ---------------------------------------------


@pytest.mark.parametrize("shape", [(48, 64), (9, 7), (1080, 1920), (300, 257)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_resize_for_model_equals_the_torch_resize(shape: tuple[int, int], dtype: type) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, np.iinfo(dtype).max + 1, size=(*shape, 3), dtype=dtype)
    mask = rng.random(shape, dtype=np.float32)
    small, small_mask = resize_for_model(image, mask, 256)
    x, m = to_model_input(image, mask, 256, torch.device("cpu"))
    assert small.dtype == np.float32 and small.shape == (256, 256, 3)
    np.testing.assert_allclose(small, x[0].permute(1, 2, 0).numpy(), rtol=0, atol=3e-7)
    np.testing.assert_allclose(small_mask, m[0, 0].numpy(), rtol=0, atol=3e-7)


def test_analyze_stride_must_be_0_for_auto_or_a_positive_integer() -> None:
    for bad in (-1, -2, 1.5, True):
        with pytest.raises(UsageError, match="analyze_stride"):
            ProcessConfig(analyze_stride=bad)  # type: ignore[arg-type]
    assert ProcessConfig().analyze_stride == 0 and ProcessConfig(analyze_stride=1).analyze_stride == 1


def test_auto_stride_keys_every_0_4_half_lives_and_every_frame_without_smoothing(tmp_path: Path) -> None:
    clip = _write_clip(tmp_path / "clip.mkv", 11, cut=None)  # 25 fps: 0.4 x 0.679 s x 25 = 6.8 -> 7
    inp = open_clip(clip, write_masks(tmp_path / "masks", 11, 64, 48))
    auto = analyze(inp, ProcessConfig(model="stats", device="cpu"))
    seven = analyze(inp, ProcessConfig(model="stats", device="cpu", analyze_stride=7))
    assert auto.header["analyze_stride"] == 7 and _raws(auto).tolist() == _raws(seven).tolist()
    off = analyze(inp, ProcessConfig(model="stats", device="cpu", smoothing="off"))
    still = analyze(inp, ProcessConfig(model="stats", device="cpu", half_life_s=0))
    every = analyze(inp, ProcessConfig(model="stats", device="cpu", analyze_stride=1))
    assert off.header["analyze_stride"] == still.header["analyze_stride"] == 1
    assert _raws(off).tolist() == _raws(every).tolist() != _raws(auto).tolist()
    slow = analyze(inp, ProcessConfig(model="stats", device="cpu", half_life_s=0.3))  # 0.4 x 0.3 x 25 = 3
    assert slow.header["analyze_stride"] == 3


def _scene(index: int, height: int, width: int, cut: int | None) -> np.ndarray:
    frame = pattern_frame(index, height, width)
    if cut is not None and index >= cut:  # another shot: other colours, darker
        frame = (frame[..., ::-1] // 3).copy()
    return frame


def _write_clip(path: Path, frames: int, cut: int | None, width: int = 64, height: int = 48) -> Path:
    """A lossless RGB clip (ffv1), with a hard cut to another shot at ``cut``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_scene(i, height, width, cut), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_masks(folder: Path, frames: int, width: int, height: int) -> Path:
    """A soft-edged rectangle moving right, one PNG per frame."""
    folder.mkdir()
    for i in range(frames):
        mask = np.zeros((height, width), np.uint8)
        mask[height // 4 : 3 * height // 4, 4 + i : 4 + i + width // 3] = 255
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.GaussianBlur(mask, (5, 5), 1.0))
    return folder


def _raws(track: ParamsTrack) -> np.ndarray:
    return np.array([f.raw for f in track.frames])


def test_stride_analyses_every_kth_frame_and_interpolates_between(tmp_path: Path) -> None:
    clip = _write_clip(tmp_path / "clip.mkv", 11, cut=None)
    inp = open_clip(clip, write_masks(tmp_path / "masks", 11, 64, 48))
    full = analyze(inp, ProcessConfig(model="stats", device="cpu", analyze_stride=1))
    strided = analyze(inp, ProcessConfig(model="stats", device="cpu", analyze_stride=4, batch_size=2))
    assert strided.header["analyze_stride"] == 4 and full.header["analyze_stride"] == 1
    assert [f.frame for f in strided.frames] == list(range(11))
    a, b = _raws(full), _raws(strided)
    keys = [0, 4, 8, 10]  # every 4th frame and the last
    np.testing.assert_array_equal(b[keys], a[keys])
    for frame in (1, 2, 3, 5, 9):
        left = max(k for k in keys if k < frame)
        right = min(k for k in keys if k > frame)
        expected = a[left] + (frame - left) / (right - left) * (a[right] - a[left])
        np.testing.assert_allclose(b[frame], expected, atol=5.1e-5)  # rows are rounded to 4 decimals
    assert not np.allclose(b[[1, 2, 3, 5, 9]], a[[1, 2, 3, 5, 9]], atol=1e-3)  # the frames moved: a real test
    for x, y in zip(full.frames, strided.frames, strict=True):
        assert x.stats[:3] == y.stats[:3]  # per-channel means do not depend on the arguments
        assert (x.signature, x.mask_area, x.pts) == (y.signature, y.mask_area, y.pts)


def test_stride_never_interpolates_across_a_scene_cut(tmp_path: Path) -> None:
    clip = _write_clip(tmp_path / "cut.mkv", 12, cut=7)
    inp = open_clip(clip, write_masks(tmp_path / "masks", 12, 64, 48))
    full = analyze(inp, ProcessConfig(model="stats", device="cpu", analyze_stride=1))
    strided = analyze(inp, ProcessConfig(model="stats", device="cpu", analyze_stride=4))
    a, b = _raws(full), _raws(strided)
    keys = [0, 4, 6, 7, 8, 11]  # stride keys, the last frame, and both sides of the cut (6 | 7)
    np.testing.assert_array_equal(b[keys], a[keys])
    np.testing.assert_allclose(b[5], (a[4] + a[6]) / 2, atol=5.1e-5)  # rows are rounded to 4 decimals
    np.testing.assert_allclose(b[9], a[8] + (a[11] - a[8]) / 3, atol=5.1e-5)  # rows are rounded to 4 decimals


@pytest.mark.parametrize("stride", [1, 4])
def test_analyze_stream_gives_each_row_within_a_stride_with_its_frame(clip_with_masks, stride: int) -> None:
    # The one-pass render holds every frame until its row comes out: rows must not wait for a whole batch.
    clip, masks = clip_with_masks(num_frames=19)
    inp = open_clip(clip, masks)
    config = ProcessConfig(analyze_stride=stride, batch_size=8)
    items = zip(iter_frames_masks_alpha(inp), iter_stats_masks(inp), strict=False)
    measured: list[int] = []
    rows, lags = [], []
    net = load_model(config, torch.device("cpu"))
    for row, item in analyze_stream(inp, config, net, items, carry=True, on_frame=measured.append):
        frame, _pts, image, mask, _alpha, _planes = item
        assert frame == row.frame and image.shape == (48, 64, 3) and mask.shape == (48, 64)
        lags.append(len(measured) - row.frame)
        rows.append(row)
    assert [r.frame for r in rows] == list(range(19))
    assert max(lags) <= stride
    assert rows == analyze(inp, config).frames


# --- frames held for the one-pass render: masks packed to their 8-bit levels, given back bit for bit ----------


def test_mask_packer_packs_only_what_comes_back_bit_for_bit() -> None:
    from vidharm.pipeline.analyze import _Levels, _MaskPacker

    levels = np.random.default_rng(2).integers(0, 256, size=(1080, 1920), dtype=np.uint8)
    mask = levels.astype(np.float32) / np.float32(255)  # as the mask sources divide
    packer = _MaskPacker()
    item = (3, 1536, np.zeros((1080, 1920, 3), np.uint8), mask, None)
    packed = packer.pack(item)
    assert isinstance(packed[3], _Levels) and packed[3].levels.nbytes == mask.nbytes // 4
    assert packed[:3] == item[:3] and packed[4:] == item[4:]
    back = packer.unpack(packed)[3]
    assert back.dtype == np.float32 and np.array_equal(back.view(np.uint32), mask.view(np.uint32))
    assert packer.unpack(item) is item

    frozen = mask.copy()
    frozen.flags.writeable = False  # possibly one array shared by every frame: left alone
    assert packer.pack((0, 0, None, frozen)) == (0, 0, None, frozen)
    negative_zero = mask.copy()
    negative_zero[0, 0] = -0.0  # equal to level 0 as a number, not as bits
    assert packer.pack((0, 0, None, negative_zero))[3] is negative_zero
    assert not packer.enabled  # one mask that does not pack: the source's others are not tried
    assert packer.pack(item)[3] is mask


@pytest.mark.parametrize("scale", [255, 65535])
def test_carried_masks_are_the_sources_bit_for_bit(clip_with_masks, scale: int) -> None:
    # Frames waiting for the next key frame hold their mask packed; what comes out must be the mask that went in.
    clip, masks = clip_with_masks(num_frames=11)
    inp = open_clip(clip, masks)
    config = ProcessConfig(analyze_stride=4)
    rng = np.random.default_rng(3)
    given = [rng.integers(0, scale + 1, size=(48, 64)).astype(np.float32) / np.float32(scale) for _ in range(11)]
    items = (((*item[:3], m, *item[4:]), None) for item, m in zip(iter_frames_masks_alpha(inp), given, strict=True))
    net = load_model(config, torch.device("cpu"))
    out = [item[3] for _row, item in analyze_stream(inp, config, net, items, carry=True)]
    assert len(out) == 11
    for got, want in zip(out, given, strict=True):
        assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))


# --- statistics measured on a regular sample of the frame (issue 8: low-resolution statistics) ---------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize(("shape", "step"), [((1080, 1920), 3), ((50, 61), 3), ((9, 7), 2), ((9, 7), 1)])
def test_subsample_is_every_step_th_pixel(dtype: type, shape: tuple[int, int], step: int) -> None:
    from vidharm.pipeline.analyze import subsample

    rng = np.random.default_rng(3)
    for plane in (rng.uniform(0, 200, size=(*shape, 3)).astype(dtype), rng.uniform(0, 1, size=shape).astype(dtype)):
        got = subsample(plane, step)
        assert got.flags.c_contiguous and got.dtype == plane.dtype
        np.testing.assert_array_equal(got, plane[::step, ::step])


def test_stats_step_keeps_enough_samples() -> None:
    from vidharm.pipeline.analyze import STATS_SAMPLES, stats_step

    for height, width in [(1080, 1920), (2160, 3840), (720, 1280), (480, 854), (4320, 7680), (1, 1), (1556, 2048)]:
        step = stats_step(height, width)
        assert step >= 1
        assert -(-height // step) * -(-width // step) >= min(STATS_SAMPLES, height * width)
        # and not lavish: a step one larger would sample fewer than twice the target
        assert step == 1 or -(-height // (step + 1)) * -(-width // (step + 1)) < 2 * STATS_SAMPLES


def test_sampled_statistics_match_the_full_frame_on_real_frames(shared) -> None:
    # The filters' statistics from analyze's sample of a 1080p frame against the full frame's: under 0.1 level.
    from vidharm.pipeline.analyze import _measure

    folder = shared("data", "video", "frames", "breakdance")
    masks = shared("data", "video", "masks", "breakdance")
    args = torch.tensor([[0.5, -0.5, 0.3, 0.2, 0.1, 0.1], [-0.7, 0.8, -0.2, 0.0, 0.0, 0.0]], dtype=torch.float64)
    for name in ("00000", "00033"):
        image = cv2.resize(
            cv2.imread(str(folder / f"{name}.jpg"))[..., ::-1], (1920, 1080), interpolation=cv2.INTER_CUBIC
        )
        mask = cv2.resize(cv2.imread(str(masks / f"{name}.png"), cv2.IMREAD_GRAYSCALE), (1920, 1080))
        alpha = mask.astype(np.float32) / 255
        _, _, signature, area, hist, make = _measure((0, 0, image, alpha), 256, True)
        full = stats_from_histograms(torch.from_numpy(frame_histogram(image))[None].expand(2, -1, -1), args)
        sampled = stats_from_histograms(torch.from_numpy(hist)[None].expand(2, -1, -1), args)
        assert float((full - sampled).abs().max()) * 255 < 0.1
        assert hist.sum(axis=1).tolist() == [360 * 640] * 3
        assert area == pytest.approx(float(alpha.mean(dtype=np.float64)), abs=1e-6)
        assert len(signature) > 0
        small_image, small_mask = make()  # the network input still comes from the full frame
        np.testing.assert_array_equal(small_mask, resize_for_model(image, alpha, 256)[1])


def test_chunks_analysed_at_a_stride_give_the_whole_clips_rows(tmp_path: Path) -> None:
    """Regression: each chunk counted its key frames from its own first frame and keyed its own last frame, so a
    farm run at a stride differed from ``process`` near every chunk boundary."""
    clip = _write_clip(tmp_path / "cut.mkv", 23, cut=14)
    inp = open_clip(clip, write_masks(tmp_path / "masks", 23, 64, 48))
    config = ProcessConfig(model="stats", device="cpu", analyze_stride=4)
    whole = analyze(inp, config)
    parts = (range(9, 17), range(0, 9), range(17, 23))  # uneven, out of order, one across the cut
    chunks = [analyze(open_clip(clip, tmp_path / "masks", frames=part), config) for part in parts]
    rows = sorted((f for track in chunks for f in track.frames), key=lambda f: f.frame)
    assert [(f.frame, f.raw, f.stats, f.signature) for f in rows] == [
        (f.frame, f.raw, f.stats, f.signature) for f in whole.frames
    ]
    assert [track.header["frames"] for track in chunks] == [[9, 16], [0, 8], [17, 22]]
    every = ProcessConfig(model="stats", device="cpu", analyze_stride=1)
    one = analyze(open_clip(clip, tmp_path / "masks", frames=range(9, 17)), every)
    assert [f.raw for f in one.frames] != [f.raw for f in rows[9:17]]  # the stride interpolated some: a real test
