"""Measure the speed-up of a farm-style run on one machine: 2 chunks in parallel against one process.

One process: ``vidharm analyze`` (whole clip), ``smooth``, ``render`` (whole clip), torch using every core.
Two chunks: two ``analyze --frames`` processes at once (one torch thread each), ``smooth``, two
``render --frames`` segment processes at once, then ``concat``. Both write lossless video (ffv1) from the
same commands a farm runs, so the times include each process's start-up (Python, torch, the model), as
they would on a farm. Prints both wall times and their ratio per phase, with the machine's load average
before and after (the machine may be shared with other jobs: read the ratio with the load in mind).

    python scripts/bench_farm.py                      # the sample, 3 repeats
    python scripts/bench_farm.py --clip shot.mp4 --masks shot_masks/ --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _vidharm(args: list[str], threads: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return subprocess.Popen(
        [sys.executable, "-m", "vidharm.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _run_all(commands: list[list[str]], threads: int) -> float:
    """Start ``commands`` together, wait for all; wall seconds. Raises on any failure."""
    start = time.perf_counter()
    procs = [_vidharm(c, threads) for c in commands]
    errors = [p.communicate()[1].decode(errors="replace") for p in procs]
    elapsed = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise SystemExit(f"a vidharm command failed: {commands}\n" + "\n".join(errors))
    return elapsed


def _count_frames(clip: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from vidharm.io import count_frames

    return count_frames(clip)


def _looped(clip: Path, masks: Path, times: int, folder: Path) -> tuple[Path, Path]:
    """The clip played ``times`` times in a row (lossless ffv1, constant frame rate) and its masks, renumbered."""
    sys.path.insert(0, str(ROOT))
    from fractions import Fraction

    from vidharm.io import VideoFrame, VideoWriter, probe_video, read_frames

    info = probe_video(clip)
    n = count = 0
    out = folder / "looped.mkv"
    with VideoWriter(out, info, codec="ffv1") as writer:
        for _ in range(times):
            for frame in read_frames(clip):
                writer.write(VideoFrame(index=count, pts=None, time_base=Fraction(info.time_base), image=frame.image))
                count += 1
    looped_masks = folder / "masks"
    looped_masks.mkdir()
    files = sorted(masks.iterdir())
    for _ in range(times):
        for f in files:
            (looped_masks / f"{n:05d}{f.suffix}").symlink_to(f.resolve())
            n += 1
    return out, looped_masks


def _one_process(clip: str, masks: str, work: Path, cores: int) -> dict[str, float]:
    params = str(work / "params.json")
    return {
        "analyze": _run_all([["analyze", clip, masks, "-o", str(work), "-q"]], cores),
        "smooth": _run_all([["smooth", str(work), "-o", params]], 1),
        "render": _run_all(
            [["render", clip, masks, params, "-o", str(work / "out.mkv"), "--codec", "ffv1", "-q"]], cores
        ),
    }


def _two_chunks(clip: str, masks: str, work: Path, n: int) -> dict[str, float]:
    half = n // 2
    chunks = [f"0-{half - 1}", f"{half}-{n - 1}"]
    params = str(work / "params.json")
    render = [
        ["render", clip, masks, params, "--frames", c, "-o", str(work / f"render.{c}.mkv"), "--codec", "ffv1", "-q"]
        for c in chunks
    ]
    return {
        "analyze": _run_all([["analyze", clip, masks, "--frames", c, "-o", str(work), "-q"] for c in chunks], 1),
        "smooth": _run_all([["smooth", str(work), "-o", params]], 1),
        "render": _run_all(render, 1),
        "concat": _run_all([["concat", str(work), "-o", str(work / "out.mkv"), "--audio-from", clip]], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "dusk.mp4")
    parser.add_argument("--masks", type=Path, default=ROOT / "samples" / "dusk_masks")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (medians are reported)")
    parser.add_argument("--loop", type=int, default=1, help="play the clip this many times (a longer job)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    source = Path(tempfile.mkdtemp(prefix="bench_farm_src_"))
    clip_path, masks_path = args.clip, args.masks
    if args.loop > 1:
        clip_path, masks_path = _looped(args.clip, args.masks, args.loop, source)
    n = _count_frames(clip_path)
    clip, masks = str(clip_path.resolve()), str(masks_path.resolve())
    load_before = os.getloadavg()
    one: list[dict[str, float]] = []
    single: list[dict[str, float]] = []
    two: list[dict[str, float]] = []
    startup = [
        (_run_all([["models"]], cores), _run_all([["models"]], 1), _run_all([["models"], ["models"]], 1))
        for _ in range(args.repeats)
    ]
    for _ in range(args.repeats):
        for runs, fn in (
            (one, lambda w: _one_process(clip, masks, w, cores)),
            (single, lambda w: _one_process(clip, masks, w, 1)),
            (two, lambda w: _two_chunks(clip, masks, w, n)),
        ):
            work = Path(tempfile.mkdtemp(prefix="bench_farm_"))
            try:
                runs.append(fn(work))
            finally:
                shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()

    def median(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in runs)

    shutil.rmtree(source, ignore_errors=True)
    name = args.clip.name + (f" x{args.loop}" if args.loop > 1 else "")
    print(f"clip: {name}, {n} frames; {cores} cores; {args.repeats} repeats (medians); ffv1 output")
    print(
        f"load average (1, 5, 15 min): before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"
    )
    head = f"1 process ({cores} threads)"
    print(
        f"{'phase':<10}{head:>24}{'1 process (1 thread)':>24}{'2 chunks in parallel':>24}"
        f"{'speed-up':>10}{'vs 1 thread':>13}"
    )
    rows = [("start-up", *(statistics.median(s[i] for s in startup) for i in range(3)))]
    rows += [(k, median(one, k), median(single, k), median(two, k)) for k in ("analyze", "smooth", "render", "concat")]
    rows.append(
        ("total", *(statistics.median(sum(r.values()) for r in runs) for runs in (one, single, two)))  # type: ignore[misc]
    )
    for key, a, c, b in rows:
        ratio = f"{a / b:.2f}x" if a and b else "-"
        ratio1 = f"{c / b:.2f}x" if c and b else "-"
        print(f"{key:<10}{a:>22.2f} s{c:>22.2f} s{b:>22.2f} s{ratio:>10}{ratio1:>13}")
    print("start-up: `vidharm models` (interpreter and imports); the 2-chunk column runs two of everything at once")


if __name__ == "__main__":
    main()
