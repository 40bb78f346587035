"""Benchmark keyframe mask propagation on the DAVIS sequences in ../shared/data/video.

For each sequence (854x480 JPEG frames with a true mask on every frame) and each keyframe spacing, keyframes are
every ``spacing`` frames plus the last frame; the other frames are propagated and scored against their true masks
(IoU and DAVIS boundary F). The script prints:

1. per spacing: mean and worst IoU / boundary F over the propagated frames;
2. IoU against the distance to the nearest keyframe (pooled over spacings and sequences);
3. leave-one-out (what ``vidharm masks check`` reports) with keyframes every 8 frames;
4. propagation speed at 1920x1080 (frames upscaled) on this machine's CPU, between two keyframes and after the
   last one, as frames per second (wall clock, which other work on the machine slows) and CPU seconds per frame,
   for the default setting and for a fast one ("ultrafast", flow_size 384).

Run: ``.venv/bin/python scripts/bench_propagation.py`` (about 3 to 5 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vidharm.masks.evaluate import boundary_f_score, format_loo_table, leave_one_out, mask_iou  # noqa: E402
from vidharm.masks.propagate import DEFAULT_FLOW_PRESET, DEFAULT_FLOW_SIZE, propagate_masks  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"


def load_sequence(root: Path, name: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    frame_files = sorted((root / "frames" / name).glob("*.jpg"))
    mask_files = sorted((root / "masks" / name).glob("*.png"))
    if not frame_files or len(frame_files) != len(mask_files):
        raise SystemExit(f"{root}/{{frames,masks}}/{name}: expected as many JPEG frames as PNG masks (at least one)")
    frames = [cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for f in frame_files]
    masks = [cv2.imread(str(m), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0 for m in mask_files]
    return frames, masks


def keyframes_every(spacing: int, num_frames: int) -> list[int]:
    return sorted(set(range(0, num_frames, spacing)) | {num_frames - 1})


def score_spacing(
    frames: list[np.ndarray], masks: list[np.ndarray], spacing: int, flow_size: int, preset: str
) -> list[tuple[int, float, float]]:
    """(distance to nearest keyframe, IoU, boundary F) for every propagated frame."""
    keys = keyframes_every(spacing, len(frames))
    rows = []
    for t, mask in propagate_masks(
        frames, {k: masks[k] for k in keys}, len(frames), flow_size=flow_size, preset=preset
    ):
        if t in keys:
            continue
        distance = min(abs(t - k) for k in keys)
        rows.append((distance, mask_iou(mask, masks[t]), boundary_f_score(mask, masks[t])))
    return rows


def measure_speed(
    frames: list[np.ndarray], masks: list[np.ndarray], count: int, flow_size: int, preset: str
) -> list[tuple[float, float]]:
    """At 1920x1080: (frames per second, CPU seconds per frame) between two keyframes, then after the last one."""
    big = [cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_LINEAR) for f in frames[:count]]
    big_masks = [cv2.resize(m, (1920, 1080), interpolation=cv2.INTER_LINEAR) for m in (masks[0], masks[count - 1])]
    results = []
    for keys in ({0: big_masks[0], count - 1: big_masks[1]}, {0: big_masks[0]}):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in propagate_masks(big, keys, count, flow_size=flow_size, preset=preset):
            pass
        propagated = count - len(keys)
        results.append((propagated / (time.perf_counter() - wall), (time.process_time() - cpu) / propagated))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="folder with frames/<seq> and masks/<seq>")
    parser.add_argument("--sequences", default="blackswan,breakdance")
    parser.add_argument("--spacings", default="2,4,8,16,32", help="keyframe spacings to test")
    parser.add_argument("--loo-spacing", type=int, default=8, help="keyframe spacing for the leave-one-out table")
    parser.add_argument("--speed-frames", type=int, default=16, help="frames upscaled to 1080p for the speed test")
    parser.add_argument("--flow-size", type=int, default=DEFAULT_FLOW_SIZE)
    parser.add_argument("--preset", default=DEFAULT_FLOW_PRESET)
    args = parser.parse_args()

    spacings = [int(s) for s in args.spacings.split(",")]
    sequences = {name: load_sequence(args.data, name) for name in args.sequences.split(",")}
    began = time.perf_counter()
    print(
        f"flow_size={args.flow_size} preset={args.preset} cv2 {cv2.__version__}, {cv2.getNumThreads()} threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )

    print("\n1. Keyframes every N frames (plus the last frame); scores over the propagated frames")
    print(f"{'sequence':<11} {'N':>3} {'frames':>6} {'mean IoU':>9} {'min IoU':>8} {'mean F':>7} {'min F':>6}")
    by_distance: dict[int, list[tuple[float, float]]] = defaultdict(list)
    by_seq_distance: dict[tuple[str, int], list[float]] = defaultdict(list)
    good_spacing: dict[str, int] = defaultdict(int)
    for name, (frames, masks) in sequences.items():
        for spacing in spacings:
            rows = score_spacing(frames, masks, spacing, args.flow_size, args.preset)
            ious, fs = [r[1] for r in rows], [r[2] for r in rows]
            print(
                f"{name:<11} {spacing:>3} {len(rows):>6} {np.mean(ious):>9.3f} {np.min(ious):>8.3f} "
                f"{np.mean(fs):>7.3f} {np.min(fs):>6.3f}",
                flush=True,
            )
            for distance, iou, f in rows:
                by_distance[distance].append((iou, f))
                by_seq_distance[(name, distance)].append(iou)
            if np.mean(ious) > 0.9:
                good_spacing[name] = max(good_spacing[name], spacing)
    for name in sequences:
        print(f"{name}: largest keyframe spacing with mean IoU above 0.9: {good_spacing[name] or 'none'}")

    print("\n2. IoU against distance to the nearest keyframe (all spacings pooled)")
    names = list(sequences)
    print(f"{'distance':>8} {'frames':>6} {'mean IoU':>9} {'mean F':>7}  " + "  ".join(f"{n[:10]:>10}" for n in names))
    for distance in sorted(by_distance):
        values = np.array(by_distance[distance])
        per_seq = [
            np.mean(by_seq_distance[(n, distance)]) if by_seq_distance[(n, distance)] else float("nan") for n in names
        ]
        print(
            f"{distance:>8} {len(values):>6} {values[:, 0].mean():>9.3f} {values[:, 1].mean():>7.3f}  "
            + "  ".join(f"{v:>10.3f}" for v in per_seq)
        )
    for n in names:
        ok = [d for d in sorted({d for (s, d) in by_seq_distance if s == n}) if np.mean(by_seq_distance[(n, d)]) > 0.9]
        longest = 0
        while longest + 1 in ok:
            longest += 1
        if longest:
            print(f"{n}: mean IoU stays above 0.9 up to distance {longest} to the nearest keyframe")
        else:
            print(f"{n}: mean IoU is below 0.9 even at distance 1 ({np.mean(by_seq_distance[(n, 1)]):.3f})")

    print(f"\n3. Leave-one-out with keyframes every {args.loo_spacing} frames (plus the last)")
    for name, (frames, masks) in sequences.items():
        keys = keyframes_every(args.loo_spacing, len(frames))
        rows = leave_one_out(
            frames, {k: masks[k] for k in keys}, len(frames), flow_size=args.flow_size, preset=args.preset
        )
        print(f"{name}:\n{format_loo_table(rows)}", flush=True)

    print(f"\n4. Speed at 1920x1080 ({args.speed_frames} frames of {names[0]} upscaled; wall clock and CPU time)")
    print(f"{'preset':>9} {'flow_size':>9}  {'between keyframes':>24}  {'after the last keyframe':>24}")
    frames, masks = sequences[names[0]]
    for preset, flow_size in dict.fromkeys([(args.preset, args.flow_size), ("ultrafast", 384)]):
        (fps_2, cpu_2), (fps_1, cpu_1) = measure_speed(frames, masks, args.speed_frames, flow_size, preset)
        print(
            f"{preset:>9} {flow_size:>9}  {fps_2:>6.2f} fps {cpu_2:>6.2f} CPU s/frame  "
            f"{fps_1:>6.2f} fps {cpu_1:>6.2f} CPU s/frame",
            flush=True,
        )
    print(
        f"\ntotal {time.perf_counter() - began:.0f} s wall, {time.process_time():.0f} s CPU; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
