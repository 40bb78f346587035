"""Flicker evaluation of clips on disk: known answers on synthetic clips, input checks, JSON, plot and table."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from vidharm.errors import InputError, MaskError, UsageError
from vidharm.io import VideoWriter, write_image
from vidharm.pipeline.benchmark import make_benchmark, open_frames
from vidharm.pipeline.flicker import evaluate_clip, format_clip_report, write_report

H, W = 32, 48
D = 4  # the foreground's oscillation in 0-255 levels


def background() -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return np.stack([60 + 2 * xx, 50 + 3 * yy, 120 + xx - yy], axis=-1).astype(np.uint8)


def mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[8:24, 16:32] = 255
    return m


def write_folder(folder: Path, images: Sequence[np.ndarray], first: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        write_image(folder / f"{first + i:05d}.png", image)
    return folder


def oscillating(n: int) -> list[np.ndarray]:
    """A static scene whose foreground alternates +D / -D levels: flicker of a known size."""
    frames = []
    for i in range(n):
        image = background().astype(int)
        image[mask() > 0] += D if i % 2 == 0 else -D
        frames.append(image.astype(np.uint8))
    return frames


def to_video(folder: Path, path: Path) -> Path:
    source = open_frames(folder)
    with VideoWriter(path, source.info, codec="ffv1", crf=None, preset=None) as writer:
        for frame in source.iter_frames():
            writer.write(frame)
    return path


@pytest.fixture
def clips(tmp_path: Path) -> dict[str, Path]:
    n = 5
    return {
        "out": write_folder(tmp_path / "out", oscillating(n)),
        "gt": write_folder(tmp_path / "gt", [background()] * n),
        "comp": write_folder(tmp_path / "comp", [background()] * n),
        "masks": write_folder(tmp_path / "masks", [mask()] * n),
    }


def test_oscillation_known_values(clips: dict[str, Path]) -> None:
    report = evaluate_clip(clips["out"], clips["masks"], clips["gt"], clips["comp"], tl_size=None)
    s = report["summary"]
    assert (s["frames"], s["pairs"]) == (5, 4)
    # Static ground truth: zero flow, confidence = mask; each pair differs by 2D on 3 channels.
    assert s["tl"] == pytest.approx(3 * (2 * D) ** 2)
    assert s["tl_gt"] == 0.0 and s["tl_ratio"] is None
    assert s["fg_luma_change"] == pytest.approx(2 * D)  # luma weights sum to 1
    assert s["fg_luma_change_gt"] == 0.0
    assert s["fg_luma_change_error"] == pytest.approx(2 * D)
    assert s["e_warp_fg"] == pytest.approx((2 * D / 255) ** 2)
    assert s["e_warp"] == pytest.approx((2 * D / 255) ** 2 * 16 * 16 / (H * W))
    assert s["fmse"] == pytest.approx(D**2)
    assert s["mse"] == pytest.approx(D**2 * 16 * 16 / (H * W))
    assert s["fpsnr"] == pytest.approx(10 * np.log10(255**2 / D**2))
    assert [r["frame"] for r in report["per_frame"]] == [0, 1, 2, 3, 4]
    assert report["settings"]["e_warp_size"] == [W, H]
    assert report["inputs"]["ground_truth"] == str(clips["gt"])


def test_output_equal_to_ground_truth_sits_on_the_floor(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # A textured scene panning one pixel per frame, so the flow is not trivial and the floor is not zero.
    wide = rng.integers(0, 256, (H, W + 8, 3)).astype(np.uint8)
    frames = [np.ascontiguousarray(wide[:, i : i + W]) for i in range(4)]
    gt = write_folder(tmp_path / "gt", frames)
    masks = write_folder(tmp_path / "m", [mask()] * 4)
    report = evaluate_clip(gt, masks, gt, gt, tl_size=None)
    s = report["summary"]
    assert s["tl"] == pytest.approx(s["tl_gt"]) and s["tl_gt"] > 0
    assert s["tl_ratio"] == pytest.approx(1.0)
    assert s["fmse"] == 0.0 and s["fpsnr"] == float("inf")
    assert s["fg_luma_change_error"] == pytest.approx(0.0, abs=1e-9)


def test_video_files_give_the_same_report_as_folders(clips: dict[str, Path], tmp_path: Path) -> None:
    videos = {k: to_video(v, tmp_path / f"{k}.mkv") for k, v in clips.items() if k != "masks"}
    a = evaluate_clip(clips["out"], clips["masks"], clips["gt"], clips["comp"])
    b = evaluate_clip(videos["out"], clips["masks"], videos["gt"], videos["comp"])
    for key in ("tl", "tl_gt", "fmse", "e_warp", "e_warp_fg", "fg_luma_change", "fg_luma_change_error"):
        assert a["summary"][key] == pytest.approx(b["summary"][key], abs=1e-12)
    assert b["inputs"]["fps"] == "24"


def test_reduced_warp_scale_runs_a_second_pass(clips: dict[str, Path]) -> None:
    stages: list[tuple[str, int]] = []
    ticks: list[str] = []

    def progress(stage: str, total: int) -> Callable[[int], None]:
        stages.append((stage, total))
        return lambda n: ticks.append(stage)

    full = evaluate_clip(clips["out"], clips["masks"], clips["gt"], clips["comp"], tl_size=None)
    half = evaluate_clip(
        clips["out"], clips["masks"], clips["gt"], clips["comp"], tl_size=None, warp_scale=0.5, progress=progress
    )
    assert stages == [("evaluate", 5), ("e_warp", 5)] and len(ticks) == 10
    assert half["settings"]["e_warp_size"] == [W // 2, H // 2]
    # The box is aligned to even pixels, so area-halving keeps a uniform, binary foreground: same E_warp.
    assert half["summary"]["e_warp_fg"] == pytest.approx(full["summary"]["e_warp_fg"])
    assert half["summary"]["e_warp"] == pytest.approx(full["summary"]["e_warp"])
    # Everything else is computed at full size, unchanged.
    assert half["summary"]["fmse"] == full["summary"]["fmse"] and half["summary"]["tl"] == full["summary"]["tl"]


def test_without_ground_truth_only_flow_free_and_warp_metrics(clips: dict[str, Path]) -> None:
    s = evaluate_clip(clips["out"], clips["masks"], composite=clips["comp"])["summary"]
    assert s["tl"] is None and s["fmse"] is None and s["fg_luma_change_error"] is None and s["tl_ratio"] is None
    assert s["fg_luma_change"] == pytest.approx(2 * D) and s["e_warp_fg"] is not None
    s = evaluate_clip(clips["out"], clips["masks"])["summary"]
    assert s["e_warp"] is None and s["fg_luma_change"] == pytest.approx(2 * D)


def test_frames_labelled_with_the_folders_numbers(tmp_path: Path) -> None:
    out = write_folder(tmp_path / "out", oscillating(3), first=101)
    masks = write_folder(tmp_path / "m", [mask()] * 3, first=101)
    report = evaluate_clip(out, masks)
    assert [r["frame"] for r in report["per_frame"]] == [101, 102, 103]
    assert [r["frame"] for r in report["per_pair"]] == [101, 102]


def test_json_and_plot_written(clips: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    json_out, plot_out = tmp_path / "r.json", tmp_path / "r.png"
    report = evaluate_clip(
        clips["gt"], clips["masks"], clips["gt"], clips["comp"], json_out=json_out, plot_out=plot_out, tl_size=None
    )
    data = json.loads(json_out.read_text())
    assert data["schema"] == "vidharm.flicker_report" and data["version"] == 1
    assert data["summary"]["fpsnr"] == "inf"  # identical frames; JSON has no infinity
    assert data["summary"]["tl"] == report["summary"]["tl"]
    assert len(data["per_frame"]) == 5 and len(data["per_pair"]) == 4
    assert plot_out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_report_keeps_nan_and_inf_as_strings(tmp_path: Path) -> None:
    path = write_report({"a": [float("nan"), -float("inf"), np.float64(2.5)]}, tmp_path / "x.json")
    assert json.loads(path.read_text()) == {"a": ["nan", "-inf", 2.5]}


def test_table_lists_metrics_and_ratio(clips: dict[str, Path]) -> None:
    report = evaluate_clip(clips["out"], clips["masks"], clips["gt"], clips["comp"], tl_size=None)
    text = format_clip_report(report)
    assert text.splitlines()[0] == f"output: {clips['out']} (5 frames, {W}x{H})"
    lines = text.splitlines()
    labels = [line[:40].strip() for line in lines]
    assert "fg luma |change - gt change|" in labels
    assert labels.index("fg luma |change - gt change|") == labels.index("same on ground truth") + 1
    assert any(line.startswith("TL, CO2Net") and line.endswith("192.0000") for line in lines)
    with pytest.raises(UsageError, match="evaluate_clip"):
        format_clip_report({"summary": {}})


def test_benchmark_composite_scores_against_its_ground_truth(tmp_path: Path) -> None:
    frames = write_folder(tmp_path / "f", [background()] * 4)
    masks = write_folder(tmp_path / "m", [mask()] * 4)
    bench = make_benchmark(frames, masks, tmp_path / "b", kind="constant", seed=0)
    s = evaluate_clip(bench.composite, bench.masks, bench.ground_truth, bench.composite, tl_size=None)["summary"]
    # A constant perturbation of a static scene does not flicker, but is off in colour.
    assert s["tl"] == pytest.approx(0.0, abs=1e-9) and s["fg_luma_change"] == pytest.approx(0.0, abs=1e-9)
    assert s["fmse"] > 10
    drift = make_benchmark(frames, masks, tmp_path / "d", kind="drift", seed=0)
    s = evaluate_clip(drift.composite, drift.masks, drift.ground_truth, tl_size=None)["summary"]
    assert s["fg_luma_change"] > 0 and s["tl"] > 0


# --- bad input -------------------------------------------------------------------------------------------------


def test_ground_truth_or_composite_of_another_length(clips: dict[str, Path], tmp_path: Path) -> None:
    short = write_folder(tmp_path / "short", [background()] * 4)
    with pytest.raises(InputError, match="ground truth has 4 frames but the output .* has 5"):
        evaluate_clip(clips["out"], clips["masks"], short)
    with pytest.raises(InputError, match="composite has 4 frames"):
        evaluate_clip(clips["out"], clips["masks"], clips["gt"], short)


def test_ground_truth_of_another_size(clips: dict[str, Path], tmp_path: Path) -> None:
    big = write_folder(tmp_path / "big", [np.zeros((H * 2, W * 2, 3), np.uint8)] * 5)
    with pytest.raises(InputError, match=f"is {W * 2}x{H * 2} but the output .* is {W}x{H}"):
        evaluate_clip(clips["out"], clips["masks"], big)


def test_masks_missing_extra_or_of_another_aspect(clips: dict[str, Path], tmp_path: Path) -> None:
    few = write_folder(tmp_path / "few", [mask()] * 4)
    with pytest.raises(MaskError, match="no masks for 1 of 5 frames .first: frame 4"):
        evaluate_clip(clips["out"], few)
    many = write_folder(tmp_path / "many", [mask()] * 7)
    with pytest.raises(MaskError, match="2 masks are for frames that out lacks"):
        evaluate_clip(clips["out"], many)
    square = write_folder(tmp_path / "square", [np.zeros((H, H), np.uint8)] * 5)
    with pytest.raises(MaskError, match="another aspect"):
        evaluate_clip(clips["out"], square)
    # Half-size masks of the same aspect are resized (bilinear: soft edges take in a little background).
    half = write_folder(tmp_path / "half", [mask()[::2, ::2]] * 5)
    assert 0.9 * 2 * D < evaluate_clip(clips["out"], half)["summary"]["fg_luma_change"] < 2 * D


def test_mask_video_of_another_length(clips: dict[str, Path], tmp_path: Path) -> None:
    rgb_masks = write_folder(tmp_path / "rgbm", [np.repeat(mask()[..., None], 3, axis=2)] * 6)
    video = to_video(rgb_masks, tmp_path / "matte.mkv")
    with pytest.raises(MaskError, match="6 frames but .* has 5"):
        evaluate_clip(clips["out"], video)
    ok = to_video(write_folder(tmp_path / "rgbm5", [np.repeat(mask()[..., None], 3, axis=2)] * 5), tmp_path / "m5.mkv")
    assert evaluate_clip(clips["out"], ok)["summary"]["fg_luma_change"] == pytest.approx(2 * D)


def test_usage_errors(clips: dict[str, Path]) -> None:
    with pytest.raises(UsageError, match="warp_scale"):
        evaluate_clip(clips["out"], clips["masks"], warp_scale=0)
    with pytest.raises(UsageError, match="tl_size"):
        evaluate_clip(clips["out"], clips["masks"], tl_size=0)
    with pytest.raises(UsageError, match="preset"):
        evaluate_clip(clips["out"], clips["masks"], preset="slowest")
    with pytest.raises(InputError, match="no such file"):
        evaluate_clip(clips["out"].parent / "nothing", clips["masks"])
