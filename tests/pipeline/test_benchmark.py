"""The flicker benchmark builder: perturbations, frame folders, and the composite / ground-truth clips it writes."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError, MaskError, UsageError
from vidharm.io import VideoWriter, read_frames, write_image
from vidharm.io._synth import write_test_clip
from vidharm.masks import open_masks
from vidharm.pipeline.benchmark import (
    PERTURBATION_RANGES,
    ColorPerturbation,
    apply_perturbation,
    make_benchmark,
    open_frames,
    perturbation_track,
    sample_perturbation,
)

H, W = 24, 32


def frame(i: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    rgb = np.stack([40 + 4 * xx + i, 30 + 6 * yy, 200 - 3 * xx - 2 * yy + i], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def box_mask(i: int) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[6:18, 8 + i : 20 + i] = 255
    return m


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for i in range(6):
        write_image(frames / f"{i:05d}.png", frame(i))
        write_image(masks / f"{i:05d}.png", box_mask(i))
    return frames, masks


# --- perturbations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_zero_perturbation_is_identity(dtype: type) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max + 1, (9, 11, 3)).astype(dtype)
    mask = rng.uniform(0, 1, (9, 11)).astype(np.float32)
    out = apply_perturbation(image, mask, ColorPerturbation())
    assert out.dtype == image.dtype
    np.testing.assert_array_equal(out, image)


def test_background_is_kept_exactly_and_soft_mask_blends() -> None:
    image = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), np.float32)
    mask[0, 0], mask[0, 1] = 1.0, 0.5
    out = apply_perturbation(image, mask, ColorPerturbation(exposure_ev=1.0))
    assert out[0, 0].tolist() == [137, 137, 137]  # 100 * 2 ** (1 / 2.2) = 137.015
    assert out[0, 1].tolist() == [119, 119, 119]  # halfway: (137.015 + 100) / 2 = 118.51
    np.testing.assert_array_equal(out[1:], image[1:])
    np.testing.assert_array_equal(out[0, 2:], image[0, 2:])


def test_each_field_moves_colours_the_documented_way() -> None:
    grey = np.full((1, 1, 3), 128, np.uint8)
    reddish = np.array([[[180, 120, 90]]], np.uint8)
    mask = np.ones((1, 1), np.float32)

    def run(image: np.ndarray, **kw: float) -> np.ndarray:
        return apply_perturbation(image, mask, ColorPerturbation(**kw))[0, 0].astype(int)

    r, g, b = run(grey, temperature=0.1)
    assert r > 128 > b and g == 128  # warmer: red up, blue down, green kept
    assert run(grey, tint=0.05)[1] > 128
    assert (run(grey, exposure_ev=-0.5) < 128).all()
    assert (run(grey, gamma=0.2) < 128).all()  # exponent > 1 darkens mid-tones
    assert (run(np.full((1, 1, 3), 200, np.uint8), contrast=0.2) > 200).all()  # away from mid-grey
    assert (run(np.full((1, 1, 3), 60, np.uint8), contrast=0.2) < 60).all()
    np.testing.assert_array_equal(run(grey, saturation=0.3), [128, 128, 128])  # grey has no chroma
    more = run(reddish, saturation=0.3)
    assert more[0] - more[2] > 180 - 90


def test_apply_errors() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(InputError, match="uint8 or uint16"):
        apply_perturbation(image.astype(np.float32), np.ones((4, 4)), ColorPerturbation())
    with pytest.raises(MaskError, match="shape"):
        apply_perturbation(image, np.ones((3, 4)), ColorPerturbation())
    with pytest.raises(MaskError, match=r"\[0, 1\]"):
        apply_perturbation(image, np.full((4, 4), 255.0), ColorPerturbation())


def test_sample_is_seeded_and_within_ranges() -> None:
    a = sample_perturbation(np.random.default_rng(7))
    assert a == sample_perturbation(np.random.default_rng(7))
    assert a != sample_perturbation(np.random.default_rng(8))
    for _ in range(50):
        p = sample_perturbation(np.random.default_rng(_), strength=0.5)
        for v, r in zip(p.as_array(), PERTURBATION_RANGES.values(), strict=True):
            assert 0.4 * 0.5 * r - 1e-12 <= abs(v) <= 0.5 * r + 1e-12
    assert sample_perturbation(np.random.default_rng(0), strength=0).as_array().tolist() == [0.0] * 6
    with pytest.raises(UsageError, match="strength"):
        sample_perturbation(np.random.default_rng(0), strength=-1)


def test_constant_track_repeats_one_transform() -> None:
    times = np.arange(48) / 24
    track = perturbation_track(times, kind="constant", seed=3)
    assert len(track) == 48 and len(set(track)) == 1
    assert track[0] == sample_perturbation(np.random.default_rng(3))


def test_drift_track_is_slow_and_smooth_through_the_draws() -> None:
    fps, period = 24, 2.0
    times = np.arange(int(5 * fps)) / fps
    track = perturbation_track(times, kind="drift", seed=3, drift_period_s=period)
    values = np.stack([p.as_array() for p in track])
    assert track[0] == perturbation_track(times, kind="constant", seed=3)[0]
    # It visibly moves over the clip ...
    assert (np.abs(values[-1] - values[0]) > 0).all()
    # ... but slowly: a cosine blend moves at most pi/2 * (jump between draws) per period; the draws differ by
    # at most 2 ranges, so per frame at most pi * range / (period * fps).
    ranges = np.array(list(PERTURBATION_RANGES.values()))
    steps = np.abs(np.diff(values, axis=0))
    assert (steps <= math.pi * ranges / (period * fps) + 1e-12).all()
    # Zero rate of change at each draw (t = 2 s is frame 48): the steps either side match (symmetric blend).
    np.testing.assert_allclose(values[49] - values[48], values[48] - values[47], atol=1e-3)
    assert np.abs(values[49] - values[48]).max() < 0.002


def test_track_errors() -> None:
    with pytest.raises(UsageError, match="kind"):
        perturbation_track([0.0], kind="wobble", seed=0)
    with pytest.raises(UsageError, match="drift_period_s"):
        perturbation_track([0.0], kind="drift", seed=0, drift_period_s=0)
    with pytest.raises(InputError, match="times_s"):
        perturbation_track([0.0, -1.0], kind="drift", seed=0)
    assert perturbation_track([], kind="drift", seed=0) == []


# --- frame folders ---------------------------------------------------------------------------------------------


def test_open_frames_orders_by_number_and_skips_hidden(tmp_path: Path) -> None:
    for n in (10, 2, 7):
        write_image(tmp_path / f"shot.{n:04d}.png", np.full((H, W, 3), n, np.uint8))
    (tmp_path / ".DS_Store").write_bytes(b"x")
    source = open_frames(tmp_path, fps=25)
    assert source.frame_numbers == (2, 7, 10)
    assert (source.num_frames, source.width, source.height, source.fps) == (3, W, H, Fraction(25))
    assert [int(im[0, 0, 0]) for im in source.iter_images()] == [2, 7, 10]


def test_open_frames_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_frames(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no frame images"):
        open_frames(empty)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a frame image"):
        open_frames(empty)
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="no frame number"):
        open_frames(other)
    dup = tmp_path / "dup"
    dup.mkdir()
    write_image(dup / "1.png", np.zeros((4, 4, 3), np.uint8))
    write_image(dup / "01.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="already has a file"):
        open_frames(dup)
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    write_image(sizes / "0.png", np.zeros((4, 4, 3), np.uint8))
    write_image(sizes / "1.png", np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(InputError, match="one size"):
        list(open_frames(sizes).iter_images())
    clip = write_test_clip(tmp_path / "c.mp4", num_frames=2)
    with pytest.raises(UsageError, match="own frame rate"):
        open_frames(clip, fps=24)


# --- make_benchmark --------------------------------------------------------------------------------------------


def read_all(path: Path) -> list[np.ndarray]:
    return [f.image for f in read_frames(path)]


@pytest.mark.parametrize("kind", ["constant", "drift"])
def test_benchmark_from_frame_folder(folders: tuple[Path, Path], tmp_path: Path, kind: str) -> None:
    frames, masks = folders
    clip = make_benchmark(frames, masks, tmp_path / "bench", kind=kind, seed=5, strength=1.0)
    gt, comp = read_all(clip.ground_truth), read_all(clip.composite)
    assert clip.num_frames == len(gt) == len(comp) == 6
    mask_files = sorted(p.name for p in clip.masks.iterdir())
    assert mask_files == [f"{i:05d}.png" for i in range(6)]
    manifest = json.loads(clip.manifest.read_text())
    assert (manifest["kind"], manifest["seed"], manifest["num_frames"], manifest["fps"]) == (kind, 5, 6, "24")
    perturbations = [ColorPerturbation(**row["perturbation"]) for row in manifest["frames"]]
    for i in range(6):
        np.testing.assert_array_equal(gt[i], frame(i))  # lossless: the ground truth is the source exactly
        fg = box_mask(i) > 0
        np.testing.assert_array_equal(comp[i][~fg], gt[i][~fg])  # background untouched
        assert np.abs(comp[i][fg].astype(int) - gt[i][fg]).max() > 3  # foreground perturbed
        expected = apply_perturbation(frame(i), box_mask(i) / 255.0, perturbations[i])
        np.testing.assert_array_equal(comp[i], expected)
    written = open_masks(clip.masks)
    np.testing.assert_array_equal(written.read(3, W, H), box_mask(3) / 255.0)
    assert (len(set(perturbations)) == 1) == (kind == "constant")


def test_benchmark_is_reproducible_and_seed_dependent(folders: tuple[Path, Path], tmp_path: Path) -> None:
    frames, masks = folders
    a = make_benchmark(frames, masks, tmp_path / "a", kind="drift", seed=1)
    b = make_benchmark(frames, masks, tmp_path / "b", kind="drift", seed=1)
    c = make_benchmark(frames, masks, tmp_path / "c", kind="drift", seed=2)
    for x, y, z in zip(read_all(a.composite), read_all(b.composite), read_all(c.composite), strict=True):
        np.testing.assert_array_equal(x, y)
        assert not np.array_equal(x, z)


def test_benchmark_refuses_to_overwrite_unless_asked(folders: tuple[Path, Path], tmp_path: Path) -> None:
    frames, masks = folders
    make_benchmark(frames, masks, tmp_path / "bench", kind="constant", seed=0)
    with pytest.raises(UsageError, match="already holds"):
        make_benchmark(frames, masks, tmp_path / "bench", kind="constant", seed=0)
    clip = make_benchmark(frames, masks, tmp_path / "bench", kind="drift", seed=0, overwrite=True)
    assert json.loads(clip.manifest.read_text())["kind"] == "drift"


def test_benchmark_from_video_and_soft_masks(tmp_path: Path) -> None:
    source = write_test_clip(tmp_path / "src.mp4", num_frames=4, width=W, height=H)
    masks = tmp_path / "soft"
    masks.mkdir()
    soft = np.zeros((H, W), np.uint16)
    soft[4:20, 4:28] = 40000  # not a multiple of 257: must survive as 16 bits
    for i in range(4):
        write_image(masks / f"{i:05d}.png", soft)
    clip = make_benchmark(source, masks, tmp_path / "bench", kind="constant", seed=0)
    decoded = read_all(source)
    for a, b in zip(decoded, read_all(clip.ground_truth), strict=True):
        np.testing.assert_array_equal(a, b)  # the decoded source, kept exactly
    np.testing.assert_allclose(open_masks(clip.masks).read(0, W, H), soft / 65535.0, atol=1e-6)
    # The source's timing is kept (Matroska stores milliseconds).
    times = [round(float(f.pts * f.time_base), 3) for f in read_frames(clip.ground_truth)]
    assert times == [round(float(f.pts * f.time_base), 3) for f in read_frames(source)]


def test_benchmark_mask_errors(folders: tuple[Path, Path], tmp_path: Path) -> None:
    frames, masks = folders
    (masks / "00005.png").unlink()
    with pytest.raises(MaskError, match="no masks for 1 of 6 frames"):
        make_benchmark(frames, masks, tmp_path / "a", kind="constant", seed=0)
    write_image(masks / "00005.png", box_mask(5))
    write_image(masks / "00009.png", box_mask(5))
    with pytest.raises(MaskError, match="lacks"):
        make_benchmark(frames, masks, tmp_path / "b", kind="constant", seed=0)
    (masks / "00009.png").unlink()
    write_image(masks / "00002.png", np.zeros((H, H), np.uint8))
    with pytest.raises(MaskError, match="another aspect"):
        make_benchmark(frames, masks, tmp_path / "c", kind="constant", seed=0)


def test_benchmark_mask_video_length_must_match(folders: tuple[Path, Path], tmp_path: Path) -> None:
    frames, _ = folders
    info = open_frames(frames).info
    mask_video = tmp_path / "matte.mkv"
    with VideoWriter(mask_video, info, codec="ffv1", crf=None, preset=None) as writer:
        for f in list(open_frames(frames).iter_frames())[:5]:
            writer.write(f)
    with pytest.raises(MaskError, match="5 frames but"):
        make_benchmark(frames, mask_video, tmp_path / "bench", kind="constant", seed=0)


def test_benchmark_usage_errors(folders: tuple[Path, Path], tmp_path: Path) -> None:
    frames, masks = folders
    with pytest.raises(UsageError, match="kind"):
        make_benchmark(frames, masks, tmp_path / "a", kind="sometimes", seed=0)
    with pytest.raises(UsageError, match="lossless"):
        make_benchmark(frames, masks, tmp_path / "a", kind="constant", seed=0, codec="mpeg4")
    with pytest.raises(UsageError, match="seed"):
        make_benchmark(frames, masks, tmp_path / "a", kind="constant", seed=1.5)  # type: ignore[arg-type]
