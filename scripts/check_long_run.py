#!/usr/bin/env python3
"""Long-run check: a 10-minute synthetic clip through `vidharm process`, peak memory at the start and the end.

Makes a clip (moving test pattern, 24 fps, small frames so it runs in minutes on 2 cores) and a mask video
of the same length with ffmpeg, runs `vidharm process` as a child process, samples its resident memory
(VmRSS from /proc) every half second, and prints the peak over each tenth of the run. `process` decodes
the clip twice (analyze, then render); the render pass loads numba's compiled lookup-table kernel (about
100 MB, once), so it sits a step higher. Within each pass a streaming pipeline stays flat; a leak or a clip
held in memory shows as a ramp, and as growth with clip length.

Usage: python scripts/check_long_run.py [--minutes 10] [--size 320x180] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--keep", type=Path, help="keep the clip, masks and output in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="vidharm_long_"))
    work.mkdir(parents=True, exist_ok=True)
    seconds = int(args.minutes * 60)
    clip, masks, out = work / "long.mp4", work / "long_masks.mkv", work / "long_out.mp4"
    lavfi = ["ffmpeg", "-y", "-v", "error", "-f", "lavfi"]
    subprocess.run(
        [
            *lavfi,
            "-i",
            f"testsrc2=size={args.size}:rate=24:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=330:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            str(clip),
        ],
        check=True,
    )
    w, h = (int(v) for v in args.size.split("x"))
    subprocess.run(
        [
            *lavfi,
            "-i",
            f"color=black:size={args.size}:rate=24:duration={seconds}",
            "-vf",
            f"drawbox=x='{w // 4}+{w // 4}*sin(t)':y={h // 4}:w={w // 3}:h={h // 2}:color=white:t=fill",
            "-c:v",
            "ffv1",
            str(masks),
        ],
        check=True,
    )
    cmd = [
        sys.executable,
        "-m",
        "vidharm.cli",
        "process",
        str(clip),
        str(masks),
        "-o",
        str(out),
        "-q",
        "--preset",
        "veryfast",
    ]
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        rss = _rss_mb(proc.pid)
        if rss is not None:
            samples.append((time.monotonic() - start, rss))
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    if proc.returncode != 0 or not samples:
        print(f"vidharm process failed with exit code {proc.returncode}", file=sys.stderr)
        return 1
    tenth = elapsed / 10
    deciles = [max((r for t, r in samples if k * tenth <= t <= (k + 1) * tenth), default=0.0) for k in range(10)]
    first, last = deciles[0] or samples[0][1], deciles[-1] or samples[-1][1]
    frames = seconds * 24
    print(
        f"clip: {args.minutes:g} min, {frames} frames at {args.size}; run {elapsed:.0f} s ({frames / elapsed:.1f} fps)"
    )
    print("| tenth of the run | " + " | ".join(str(k + 1) for k in range(10)) + " | whole run |")
    print("| --- " * 12 + "|")
    print("| peak RSS (MB) | " + " | ".join(f"{r:.0f}" for r in deciles) + f" | {max(r for _, r in samples):.0f} |")
    print(f"growth from the first to the last tenth: {100 * (last - first) / first:+.1f} %")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
