"""End-to-end benchmark of ``vidharm process`` against a bare ffmpeg transcode and a reference-style loop.

Issue 8, goals 1 and 3, measured side by side in one run on clips this script makes (in ``--work``, default
/tmp/vidharm_bench; nothing is committed): a 1920x1080 30 fps ``testsrc2`` clip with light noise (about
10 Mbit/s, x264 crf 18, bt709) and a 440 Hz AAC track, and a matching mask video (a moving soft-edged
ellipse, about 19 % of the frame).

* throughput (goal 1), on a clip of ``--seconds`` (>= 20): whole runs, start-up included, of
  ``ffmpeg -i clip -c:v libx264 -preset veryfast -crf 18 -c:a copy`` and of ``vidharm process clip masks
  --model harmonizer --weights W --preset veryfast --crf 18 --set analyze_stride=K`` (audio copied by both),
  alternated ``--repeats`` times; the ratio is taken within each round and the median reported. The network
  runs in ONNX Runtime (``--runtime auto``, where onnxruntime is installed); ``--torch-runtime`` adds a run per
  round with ``--runtime torch``. One untimed warm-up run first fills the network and numba caches. With the default
  causal smoothing (EMA) ``process`` analyses, smooths and renders in one decode; ``--two-pass`` adds a third run
  per round with ``--smoothing zero_lag``, which decodes the clip (and the masks) twice, as every run did before;
* the reference-style loop (the official demo's structure: every frame decoded into memory first, the network
  and the filters in torch float32 per frame at full resolution, OpenCV's writer, no audio) on a 75-frame cut
  of the clip, as the issue measured the demo, with ours and ffmpeg on the same cut;
* peak memory (goal 3): maximum resident set of each run (``/usr/bin/time``), and ours on 10 s vs 60 s clips.

The model is the harmonizer architecture with the seeded parity weights (../shared/parity/harmonizer/
weights_seed0.pth, not trained: speed does not depend on the weights' values). Every row also shows the
1-minute load average and the CPU other processes used during the run (in cores), since the box is shared.

``--stride-study`` instead measures what analysing every k-th frame costs in accuracy: on the DAVIS
sequences of ../shared/data/video (and the synthetic clip) it analyses at stride 1 and k, smooths both with
the default EMA, and compares the stride's error with the smoother's own effect.

Usage:
    .venv/bin/python scripts/bench_pipeline.py [--seconds 20] [--stride 8] [--repeats 2] [--two-pass]
    .venv/bin/python scripts/bench_pipeline.py --stride-study
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

WEIGHTS = ROOT.parent / "shared" / "parity" / "harmonizer" / "weights_seed0.pth"
DATA = ROOT.parent / "shared" / "data" / "video"
WIDTH, HEIGHT, FPS = 1920, 1080, 30
REFERENCE_FRAMES = 75
TIME = "/usr/bin/time"


# --- clips -----------------------------------------------------------------------------------------------------


def make_clip(path: Path, seconds: float) -> tuple[Path, Path]:
    """The test clip and its mask video (made once, reused)."""
    masks = path.with_name(path.stem + "_mask.mp4")
    if path.exists() and masks.exists():
        return path, masks
    import cv2

    print(f"making {path.name} ({seconds:g} s) and its mask video ...", file=sys.stderr)
    subprocess.run(
        ["ffmpeg", "-y", "-v", "error", "-f", "lavfi",
         "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-vf", "noise=alls=2:allf=t",
         "-c:v", "libx264", "-crf", "18", "-preset", "fast", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
         "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv", "-c:a", "aac", "-b:a", "128k",
         str(path)],
        check=True,
    )  # fmt: skip
    encoder = subprocess.Popen(
        ["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS),
         "-i", "-", "-c:v", "libx264", "-crf", "12", "-preset", "fast", "-pix_fmt", "yuv420p", str(masks)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert encoder.stdin is not None
    for i in range(round(seconds * FPS)):
        t = i / FPS
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        centre = (int(WIDTH / 2 + WIDTH / 4 * math.sin(t * 0.7)), int(HEIGHT / 2 + HEIGHT / 8 * math.cos(t * 0.5)))
        cv2.ellipse(mask, centre, (420, 300), 15 * math.sin(t), 0, 360, 255, -1)
        encoder.stdin.write(cv2.GaussianBlur(mask, (0, 0), 6).tobytes())
    encoder.stdin.close()
    if encoder.wait() != 0:
        raise RuntimeError("ffmpeg failed to write the mask video")
    return path, masks


def cut_clip(clip: Path, masks: Path, frames: int, work: Path) -> tuple[Path, Path]:
    """The first ``frames`` frames of a clip and its masks (stream copy of the clip: it starts on a keyframe)."""
    out, out_masks = work / f"cut{frames}.mp4", work / f"cut{frames}_mask.mp4"
    if not out.exists():
        duration = f"{frames / FPS:.4f}"
        for src, dst, extra in ((clip, out, ["-c:a", "copy"]), (masks, out_masks, [])):
            subprocess.run(
                ["ffmpeg", "-y", "-v", "error", "-i", str(src), "-frames:v", str(frames), "-t", duration,
                 "-c:v", "libx264", "-crf", "12" if src is masks else "18", "-preset", "fast", *extra, str(dst)],
                check=True,
            )  # fmt: skip
    return out, out_masks


def count_frames(path: Path) -> int:
    from vidharm.io import count_frames as count

    return count(path)


# --- measuring runs --------------------------------------------------------------------------------------------


def _busy_seconds() -> float:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def measure(command: list[str], label: str) -> dict[str, Any]:
    """Run ``command`` to completion; wall time, CPU, peak RSS, and the machine's other load meanwhile."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        timed = [TIME, "-f", "%e %U %S %M", "-o", report.name, *command] if Path(TIME).exists() else command
        busy, start = _busy_seconds(), time.perf_counter()
        result = subprocess.run(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        busy = _busy_seconds() - busy
        if result.returncode != 0:
            raise RuntimeError(f"{label} failed ({result.returncode}): {result.stderr[-2000:]}")
        fields = report.read().split()
    if Path(TIME).exists() and len(fields) >= 4:
        elapsed, user, system, rss_kb = float(fields[-4]), float(fields[-3]), float(fields[-2]), int(fields[-1])
    else:  # no /usr/bin/time: wall only; peak RSS from getrusage covers all children so far (an upper bound)
        import resource

        elapsed, user, system = wall, float("nan"), float("nan")
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    cpu = user + system
    return {
        "label": label,
        "wall_s": elapsed,
        "cpu_s": cpu,
        "peak_rss_mb": rss_kb / 1024,
        "load_avg_1min": os.getloadavg()[0],
        "other_cores": max(0.0, (busy - cpu) / wall) if math.isfinite(busy) and math.isfinite(cpu) else float("nan"),
    }


def ffmpeg_command(clip: Path, out: Path) -> list[str]:
    return ["ffmpeg", "-y", "-v", "error", "-i", str(clip), "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
            "-c:a", "copy", str(out)]  # fmt: skip


def vidharm_command(clip: Path, masks: Path, out: Path, weights: Path, stride: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-c", "from vidharm.cli import run; run()",
        "process", str(clip), str(masks), "-o", str(out), "--model", "harmonizer", "--weights", str(weights),
        "--preset", "veryfast", "--crf", "18", "--set", f"analyze_stride={stride}", "-q", *extra,
    ]  # fmt: skip


def reference_command(clip: Path, masks: Path, out: Path, weights: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--reference-loop", str(clip), str(masks), str(out),
            "--weights", str(weights)]  # fmt: skip


def reference_loop(clip: Path, masks: Path, out: Path, weights: Path) -> None:
    """The official demo's structure: read every frame first, then per frame torch float32 at full size."""
    import cv2
    import torch

    from vidharm.filters import apply_filters, composite
    from vidharm.models import create_model

    def read_all(path: Path, gray: bool) -> list[np.ndarray]:
        capture, frames = cv2.VideoCapture(str(path)), []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if gray else frame[..., ::-1].copy())
        capture.release()
        return frames

    frames, mattes = read_all(clip, False), read_all(masks, True)
    model = create_model("harmonizer", checkpoint=weights).eval()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    smoothed = None
    with torch.no_grad():
        for frame, matte in zip(frames, mattes, strict=False):
            x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
            m = torch.from_numpy(matte)[None, None].float() / 255
            args = model(x, m)
            smoothed = args if smoothed is None else smoothed + 0.04 * (args - smoothed)  # the demo's EMA
            y = composite(apply_filters(x, smoothed), x, m)
            writer.write(np.ascontiguousarray((y[0].permute(1, 2, 0) * 255).byte().numpy()[..., ::-1]))
    writer.release()


# --- the benchmark ---------------------------------------------------------------------------------------------


def row(run: dict[str, Any], frames: int, baseline: dict[str, Any] | None) -> str:
    fps = frames / run["wall_s"]
    if baseline:
        ratio = f"{baseline['wall_s'] / run['wall_s']:.2f}"
    else:
        ratio = "1.00" if run["label"].startswith("ffmpeg") else "-"
    return (
        f"| {run['label']} | {frames} | {run['wall_s']:.1f} | {fps:.1f} | {ratio} | {run['cpu_s']:.1f} | "
        f"{run['peak_rss_mb']:.0f} | {run['load_avg_1min']:.1f} | {run['other_cores']:.2f} |"
    )


HEADER = (
    "| run | frames | wall s | fps | x ffmpeg | CPU s | peak RSS MB | load avg | other processes (cores) |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def benchmark(opts: argparse.Namespace) -> dict[str, Any]:
    work = opts.work
    work.mkdir(parents=True, exist_ok=True)
    extra = ["--set", f"batch_size={opts.batch_size}"]
    clip, masks = make_clip(work / f"clip{opts.seconds:g}s.mp4", opts.seconds)
    frames = count_frames(clip)
    out = work / "out"
    out.mkdir(exist_ok=True)
    results: dict[str, Any] = {"frames": frames, "rounds": []}

    # A first run on a machine exports the network for ONNX Runtime (~1.5 s, cached) and compiles numba's
    # kernels (cached on disk): done once here, on a short cut, so that the timed runs are the steady state.
    warm, warm_masks = cut_clip(clip, masks, REFERENCE_FRAMES, work)
    measure(vidharm_command(warm, warm_masks, out / "warm.mp4", opts.weights, opts.stride, extra), "warm-up")
    # Throughput: alternate the whole runs so slow phases of the shared machine hit all of them.
    for r in range(opts.repeats):
        ff = measure(ffmpeg_command(clip, out / "ffmpeg.mp4"), "ffmpeg libx264 veryfast")
        ours = measure(
            vidharm_command(clip, masks, out / "ours.mp4", opts.weights, opts.stride, extra),
            f"vidharm process (stride {opts.stride})",
        )
        entry = {"ffmpeg": ff, "ours": ours, "ratio": ff["wall_s"] / ours["wall_s"]}
        if opts.torch_runtime:
            entry["torch"] = measure(
                vidharm_command(
                    clip, masks, out / "ours_torch.mp4", opts.weights, opts.stride, [*extra, "--runtime", "torch"]
                ),
                f"vidharm process, network in PyTorch (--runtime torch, stride {opts.stride})",
            )
        if opts.two_pass:
            entry["two_pass"] = measure(
                vidharm_command(
                    clip, masks, out / "ours2.mp4", opts.weights, opts.stride, [*extra, "--smoothing", "zero_lag"]
                ),
                f"vidharm process, two passes (--smoothing zero_lag, stride {opts.stride})",
            )
        results["rounds"].append(entry)
        print(f"round {r + 1}: ffmpeg {ff['wall_s']:.1f} s, ours {ours['wall_s']:.1f} s", file=sys.stderr)
    ratios = [r["ratio"] for r in results["rounds"]]
    print(
        f"\n## Throughput, {WIDTH}x{HEIGHT} {FPS} fps, {frames} frames ({opts.seconds:g} s), {os.cpu_count()} cores\n"
    )
    print(HEADER)
    for r in results["rounds"]:
        print(row(r["ffmpeg"], frames, None))
        print(row(r["ours"], frames, r["ffmpeg"]))
        if "two_pass" in r:
            print(row(r["two_pass"], frames, r["ffmpeg"]))
        if "torch" in r:
            print(row(r["torch"], frames, r["ffmpeg"]))
    print(f"\nvidharm / ffmpeg throughput: median {statistics.median(ratios):.2f} over {len(ratios)} round(s)")
    results["median_ratio"] = statistics.median(ratios)
    if opts.two_pass:
        two = [r["ffmpeg"]["wall_s"] / r["two_pass"]["wall_s"] for r in results["rounds"]]
        print(f"two passes / ffmpeg throughput: median {statistics.median(two):.2f}")
        results["median_ratio_two_pass"] = statistics.median(two)

    # The reference-style loop holds every frame: run it, ours and ffmpeg on a 75-frame cut.
    if not opts.skip_reference:
        short, short_masks = cut_clip(clip, masks, REFERENCE_FRAMES, work)
        n = count_frames(short)
        ff = measure(ffmpeg_command(short, out / "ffmpeg_short.mp4"), "ffmpeg libx264 veryfast")
        ours = measure(
            vidharm_command(short, short_masks, out / "ours_short.mp4", opts.weights, opts.stride, extra),
            f"vidharm process (stride {opts.stride})",
        )
        ref = measure(
            reference_command(short, short_masks, out / "reference.mp4", opts.weights), "reference-style loop"
        )
        print(f"\n## {n}-frame cut: ours, ffmpeg and the reference-style loop\n")
        print(HEADER)
        for run in (ff, ours, ref):
            print(row(run, n, None if run is ff else ff))
        print(
            f"\nvidharm vs reference-style: {ref['wall_s'] / ours['wall_s']:.1f}x the throughput, "
            f"{ours['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x the peak memory"
        )
        results["short"] = {"frames": n, "ffmpeg": ff, "ours": ours, "reference": ref}

    # Memory against clip length.
    if not opts.skip_memory:
        runs = []
        for seconds in (10, 60):
            c, m = make_clip(work / f"clip{seconds}s.mp4", seconds)
            runs.append(
                (
                    count_frames(c),
                    measure(
                        vidharm_command(c, m, out / f"ours{seconds}.mp4", opts.weights, opts.stride, extra),
                        f"vidharm process, {seconds} s clip",
                    ),
                )
            )
        print("\n## Peak memory against clip length\n")
        print(HEADER)
        for n, run in runs:
            print(row(run, n, None))
        a, b = runs[0][1]["peak_rss_mb"], runs[1][1]["peak_rss_mb"]
        print(f"\n60 s / 10 s peak memory: {b / a:.3f}")
        results["memory"] = {"10s": runs[0][1], "60s": runs[1][1], "ratio": b / a}
    return results


# --- the stride study ------------------------------------------------------------------------------------------


def _sequence_clip(name: str, work: Path) -> tuple[Path, Path]:
    clip = work / f"{name}.mkv"
    if not clip.exists():
        subprocess.run(
            ["ffmpeg", "-y", "-v", "error", "-framerate", "24", "-i", str(DATA / "frames" / name / "%05d.jpg"),
             "-c:v", "ffv1", str(clip)],
            check=True,
        )  # fmt: skip
    return clip, DATA / "masks" / name


def _smoothed(track: Any) -> np.ndarray:
    return np.array([f.smoothed for f in track.frames], dtype=np.float64)


def stride_study(opts: argparse.Namespace) -> dict[str, Any]:
    import torch

    from vidharm.models import create_model
    from vidharm.pipeline import ProcessConfig, analyze, open_clip, smooth
    from vidharm.pipeline.analyze import resize_for_model, to_model_input
    from vidharm.pipeline.inputs import iter_frames_and_masks
    from vidharm.temporal import DEFAULT_HALF_LIFE_S

    work = opts.work
    work.mkdir(parents=True, exist_ok=True)
    clips = [_sequence_clip(n, work) for n in ("blackswan", "breakdance") if (DATA / "frames" / n).exists()]
    if opts.include_synthetic:
        clip, masks = make_clip(work / "clip10s.mp4", 10)
        clips.append((clip, masks))
    strides = [1, 2, 3, 4, 6, 8, 10, 12, 16]
    # (label, model, weights): the analytic model, the shipped trained weights where present, the parity weights.
    models: list[tuple[str, str, str | None]] = [("stats", "stats", None)]
    if any((ROOT / "vidharm" / "models" / "weights").glob("harmonizer*.pt")):
        models.append(("harmonizer (shipped weights)", "harmonizer", None))
    if not opts.trained_only:
        models.append(("harmonizer (parity weights)", "harmonizer", str(opts.weights)))
    report: dict[str, Any] = {}
    print(f"\n## Analysing every k-th frame: error against the smoother's own effect (EMA, half-life "
          f"{DEFAULT_HALF_LIFE_S:.3f} s)\n")  # fmt: skip
    print("Errors are mean (max) |difference| of the six raw arguments over all frames of the clips.\n")
    print("| model | k | stride error before smoothing | stride error after smoothing | smoother's own effect |")
    print("|---|---|---|---|---|")
    for label, model, weights in models:
        per_k: dict[int, list[np.ndarray]] = {k: [] for k in strides}
        raw_err: dict[int, list[np.ndarray]] = {k: [] for k in strides}
        effect: list[np.ndarray] = []
        for clip, masks in clips:
            inp = open_clip(clip, masks)
            base = ProcessConfig(model=model, weights=weights, device="cpu")
            tracks = {}
            for k in strides:
                config = ProcessConfig(model=model, weights=weights, device="cpu", analyze_stride=k)
                raw = analyze(inp, config)
                tracks[k] = (raw, smooth(raw, mode=base.smoothing, half_life_s=base.half_life_s))
            ref_raw, ref_smooth = tracks[1]
            effect.append(np.abs(_smoothed(ref_smooth) - ref_raw.raw_array()))
            for k in strides:
                per_k[k].append(np.abs(_smoothed(tracks[k][1]) - _smoothed(ref_smooth)))
                raw_err[k].append(np.abs(tracks[k][0].raw_array() - ref_raw.raw_array()))
        own = np.concatenate(effect)
        report[label] = {"smoother_effect_mean": float(own.mean()), "strides": {}}
        for k in strides[1:]:
            after, before = np.concatenate(per_k[k]), np.concatenate(raw_err[k])
            report[label]["strides"][k] = {
                "after_mean": float(after.mean()),
                "after_max": float(after.max()),
                "before_mean": float(before.mean()),
            }
            print(
                f"| {label} | {k} | {before.mean():.4f} ({before.max():.4f}) | {after.mean():.4f} ({after.max():.4f}) "
                f"| {own.mean():.4f} ({own.max():.4f}) |"
            )
    # The cheap network input (gathered bilinear taps) against the reference's full-resolution float resize.
    worst = 0.0
    net = create_model("harmonizer", checkpoint=opts.weights).eval()
    for clip, masks in clips:
        inp = open_clip(clip, masks)
        for i, (_frame, _pts, image, mask) in enumerate(iter_frames_and_masks(inp)):
            if i % 10:
                continue
            small, small_mask = resize_for_model(image, mask, 256)
            with torch.inference_mode():
                fast = net(torch.from_numpy(small).permute(2, 0, 1)[None], torch.from_numpy(small_mask)[None, None])
                slow = net(*to_model_input(image, mask, 256, torch.device("cpu")))
            worst = max(worst, float((fast - slow).abs().max()))
    print(f"\nnetwork input via resize_for_model vs the full-resolution torch resize: max |d raw| = {worst:.2e}")
    report["input_path_max_raw_difference"] = worst
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidharm_bench")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the throughput clip (>= 20)")
    parser.add_argument("--stride", type=int, default=8, help="analyze_stride for vidharm process")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="alternated ffmpeg/vidharm rounds")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--skip-reference", action="store_true", help="skip the reference-style loop")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 10 s / 60 s memory runs")
    parser.add_argument("--two-pass", action="store_true", help="also time the two-pass path (--smoothing zero_lag)")
    parser.add_argument(
        "--torch-runtime", action="store_true", help="also time the network in PyTorch instead of ONNX Runtime"
    )
    parser.add_argument("--stride-study", action="store_true", help="measure the error of analysing every k-th frame")
    parser.add_argument("--include-synthetic", action="store_true", help="stride study: add the 10 s 1080p clip")
    parser.add_argument("--trained-only", action="store_true", help="stride study: skip the parity weights")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument(
        "--reference-loop", nargs=3, type=Path, metavar=("CLIP", "MASKS", "OUT"), help=argparse.SUPPRESS
    )
    opts = parser.parse_args()
    if opts.reference_loop:
        reference_loop(*opts.reference_loop, opts.weights)
        return 0
    if not opts.weights.exists():
        parser.error(f"{opts.weights}: weights not found; pass --weights")
    if shutil.which("ffmpeg") is None:
        parser.error("ffmpeg is not installed")
    results = stride_study(opts) if opts.stride_study else benchmark(opts)
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
