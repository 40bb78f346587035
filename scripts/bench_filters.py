"""Benchmark and accuracy check of the filter render at 1080p: per-frame lookup tables vs the torch arithmetic.

Issue 8, goal 2: applying the six filters to a 1080p frame on the CPU in at most 5 ms, within one level of
``apply_filters``. For real frames (the DAVIS sequences of ../shared/data/video, upscaled to 1920x1080 with
their masks) and a spread of arguments (zeros, the training augmentation ranges, and extremes) it prints:

* accuracy: the largest and the mean |LUT - torch| in 8-bit levels, over every pixel, with the masks'
  soft-edged blend; and the same for 16-bit frames (the 8-bit frames times 257 plus noise);
* time per frame, wall-clock median (and CPU time) of building the tables and applying them, on the whole
  frame (``mask=None``, every pixel filtered) and with the clip's mask (work only where the mask is > 0),
  with 1 and 2 threads; the same arguments with saturation 0 (the per-channel direct table); and, for
  comparison, the exact torch path (``render_frame(..., exact=True)``:
  uint8 -> float32 -> filters -> composite -> uint8).

The machine's load average and the CPU that other processes used while the timings ran are printed with the
table, because the box is shared. Usage:

    .venv/bin/python scripts/bench_filters.py [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vidharm.filters import (  # noqa: E402
    AUGMENT_RANGES,
    FILTER_NAMES,
    apply_filter_luts,
    apply_filters,
    build_filter_luts,
    composite,
    lut_backend,
    measure_filter_stats,
)
from vidharm.pipeline import render_frame  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "video"
SIZE = (1920, 1080)


class CpuMeter:
    """Load average and the CPU other processes used over a span (from /proc; zeros where unavailable)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
            busy = sum(int(v) for v in fields) - int(fields[3]) - int(fields[4])
            total_s = busy / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            total_s = 0.0
        own = time.process_time()
        return time.perf_counter(), total_s, own

    def stop(self) -> dict[str, float]:
        wall, busy, own = self._sample()
        elapsed = max(wall - self.start[0], 1e-9)
        foreign = max(0.0, (busy - self.start[1]) - (own - self.start[2])) / elapsed
        return {"load_avg_1min": os.getloadavg()[0], "foreign_cores": foreign}


def load_frames() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Real frames and masks at 1080p (bilinear upscale), or a synthetic pattern where the data is absent."""
    found = []
    for seq in ("blackswan", "breakdance"):
        for index in (0, 25, 45):
            frame_path = DATA / "frames" / seq / f"{index:05d}.jpg"
            mask_path = DATA / "masks" / seq / f"{index:05d}.png"
            if not (frame_path.exists() and mask_path.exists()):
                continue
            image = cv2.imread(str(frame_path))[..., ::-1]
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
            image = np.ascontiguousarray(cv2.resize(image, SIZE, interpolation=cv2.INTER_LINEAR))
            mask = cv2.GaussianBlur(cv2.resize(mask, SIZE, interpolation=cv2.INTER_LINEAR), (0, 0), 2)
            found.append((f"{seq}/{index:05d}", image, mask))
    if not found:
        print("(../shared/data/video not found: using a synthetic frame)", file=sys.stderr)
        yy, xx = np.mgrid[0 : SIZE[1], 0 : SIZE[0]] / SIZE[0]
        image = np.stack([np.sin(xx * 9), np.cos(yy * 7), np.sin((xx + yy) * 4)], -1) * 0.5 + 0.5
        mask = np.zeros(SIZE[::-1], np.float32)
        cv2.ellipse(mask, (960, 540), (420, 300), 15, 0, 360, 1.0, -1)
        found.append(("synthetic", np.round(image * 255).astype(np.uint8), cv2.GaussianBlur(mask, (0, 0), 6)))
    return found


def argument_sets(seed: int = 0) -> list[tuple[str, list[float]]]:
    rng = np.random.default_rng(seed)
    ranges = np.array([AUGMENT_RANGES[n] for n in FILTER_NAMES])
    sets = [("zeros", [0.0] * 6), ("typical", [0.2, -0.3, 0.4, 0.5, 0.3, 0.35])]
    sets += [(f"augment range #{i}", (rng.uniform(-1, 1, 6) * ranges).tolist()) for i in range(6)]
    sets += [(f"full range #{i}", rng.uniform(-1, 1, 6).tolist()) for i in range(4)]
    sets += [("steep tone", [0.3, 0.2, 0.5, 0.9, -0.95, 0.97])]
    return sets


def reference(image: np.ndarray, args: list[float], stats: list[float], mask: np.ndarray | None) -> np.ndarray:
    peak = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / peak
    with torch.inference_mode():
        out = apply_filters(x, torch.tensor([args]), torch.tensor([stats]))
        if mask is not None:
            out = composite(out, x, torch.from_numpy(mask)[None, None])
        levels = out[0].permute(1, 2, 0).mul(peak).round().clamp(0, peak).numpy().astype(image.dtype)
    return levels if mask is None else np.where((mask == 0)[..., None], image, levels)


def frame_stats(image: np.ndarray, args: list[float]) -> list[float]:
    peak = float(np.iinfo(image.dtype).max)
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / peak
    return measure_filter_stats(x, torch.tensor([args])).view(-1).tolist()


def accuracy(frames: list[tuple[str, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    worst, total, count, worst16, total16, count16 = 0, 0.0, 0, 0, 0.0, 0
    rng = np.random.default_rng(1)
    for f, (_name, image, mask) in enumerate(frames):
        for a, (_label, args) in enumerate(argument_sets(f)):
            stats = frame_stats(image, args)
            for m in (None, mask):
                got = apply_filter_luts(image, build_filter_luts(args, stats), m)
                diff = np.abs(got.astype(np.int64) - reference(image, args, stats, m).astype(np.int64))
                worst, total, count = max(worst, int(diff.max())), total + float(diff.sum()), count + diff.size
            if a % 3 == 0:  # 16-bit: a subset (the torch reference at 16 bit is slow)
                deep = (image[::2, ::2].astype(np.uint16) * 257 + rng.integers(0, 257, image[::2, ::2].shape)).astype(
                    np.uint16
                )
                stats16 = frame_stats(deep, args)
                got = apply_filter_luts(deep, build_filter_luts(args, stats16, depth=16))
                diff = np.abs(got.astype(np.int64) - reference(deep, args, stats16, None).astype(np.int64))
                worst16, total16, count16 = (
                    max(worst16, int(diff.max())),
                    total16 + float(diff.sum()),
                    count16 + diff.size,
                )
    return {
        "max_levels_8bit": worst,
        "mean_levels_8bit": total / count,
        "max_levels_16bit": worst16,
        "mean_levels_16bit": total16 / count16,
        "frames": len(frames),
        "argument_sets": len(argument_sets()),
    }


def timed(fn: Callable[[], object], repeats: int) -> dict[str, float]:
    fn()  # warm up (compilation, caches, thread pools)
    walls, cpus = [], []
    for _ in range(repeats):
        c, t = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return {
        "median_ms": 1e3 * statistics.median(walls),
        "min_ms": 1e3 * min(walls),
        "cpu_ms": 1e3 * statistics.median(cpus),
    }


def timings(frames: list[tuple[str, np.ndarray, np.ndarray]], repeats: int) -> list[dict[str, Any]]:
    _name, image, mask = frames[0]
    args = [0.2, -0.3, 0.4, 0.5, 0.3, 0.35]
    stats = frame_stats(image, args)
    out = np.empty_like(image)
    rows = []

    def lut(m: np.ndarray | None, threads: int, chosen: list[float] = args) -> Callable[[], object]:
        return lambda: apply_filter_luts(image, build_filter_luts(chosen, stats), m, threads=threads, out=out)

    flat = [*args[:3], 0.0, *args[4:]]  # saturation 0: the per-channel direct table, where it is exact
    direct = "direct table" if build_filter_luts(flat, stats).direct is not None else "no direct table"

    area = float((mask > 0).mean())
    cases: list[tuple[str, Callable[[], object]]] = [
        ("build tables only", lambda: build_filter_luts(args, stats)),
        ("LUT, whole frame, 1 thread", lut(None, 1)),
        ("LUT, whole frame, 2 threads", lut(None, 2)),
        (f"LUT, with mask ({area:.0%} > 0), 1 thread", lut(mask, 1)),
        (f"LUT, with mask ({area:.0%} > 0), 2 threads", lut(mask, 2)),
        (f"LUT, saturation 0 ({direct}), whole frame, 1 thread", lut(None, 1, flat)),
    ]
    for threads in (1, 2):
        cases.append(
            (
                f"torch exact, with mask, {threads} thread{'s' if threads > 1 else ''}",
                lambda threads=threads: _with_threads(
                    threads, lambda: render_frame(image, mask, args, stats, exact=True)
                ),
            )
        )
    for label, fn in cases:
        meter = CpuMeter()
        result = timed(fn, repeats if "torch" not in label else max(3, repeats // 3))
        rows.append({"case": label, **result, **meter.stop()})
        print(
            f"  {label:<56} {result['median_ms']:8.2f} ms (min {result['min_ms']:.2f}, cpu {result['cpu_ms']:.2f})",
            file=sys.stderr,
        )
    return rows


def _with_threads(threads: int, fn: Callable[[], object]) -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions per case (median reported)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    frames = load_frames()
    print(f"backend: {lut_backend()}; {len(frames)} frames at {SIZE[0]}x{SIZE[1]}", file=sys.stderr)
    print("timing ...", file=sys.stderr)
    rows = timings(frames, opts.repeats)
    print("accuracy ...", file=sys.stderr)
    acc = accuracy(frames)
    print(f"\n## Filters at {SIZE[0]}x{SIZE[1]} on {os.cpu_count()} CPU cores (LUT backend: {lut_backend()})\n")
    print("| case | median ms | min ms | CPU ms | load avg | other processes (cores) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['median_ms']:.2f} | {r['min_ms']:.2f} | {r['cpu_ms']:.2f} | "
            f"{r['load_avg_1min']:.1f} | {r['foreign_cores']:.2f} |"
        )
    exact = next(r for r in rows if r["case"].startswith("torch exact, with mask, 1"))
    fast = next(r for r in rows if r["case"].startswith("LUT, with mask") and r["case"].endswith("1 thread"))
    speedup = exact["median_ms"] / fast["median_ms"]
    print(f"\nspeed-up of the LUT path over the torch path (with mask, 1 thread): {speedup:.1f}x")
    print(
        f"\naccuracy vs apply_filters (+ composite), {acc['frames']} frames x {acc['argument_sets']} argument sets, "
        f"whole frame and with mask: 8-bit max {acc['max_levels_8bit']} level(s), mean {acc['mean_levels_8bit']:.2e}; "
        f"16-bit (half size) max {acc['max_levels_16bit']} level(s) of 65535, mean {acc['mean_levels_16bit']:.2e}"
    )
    if opts.json:
        opts.json.write_text(json.dumps({"timings": rows, "accuracy": acc}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
