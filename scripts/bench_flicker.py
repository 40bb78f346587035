"""The flicker benchmark: build composites from real clips, harmonize them, measure flicker against the truth.

For each sequence of ../shared/data/video (DAVIS blackswan and breakdance, 24 fps) and each perturbation kind
(``constant``: one colour transform for the clip, as HYouTube; ``drift``: a slowly moving one), this

1. builds a lossless composite and ground-truth clip (``vidharm.pipeline.benchmark.make_benchmark``, seeded);
2. analyzes the composite once with the model (default ``stats``: analytic, no weights; ``--model harmonizer``
   for the network with its bundled weights or ``--weights PATH``; ``--model hdnet_lite --weights PATH
   --transfer affine|poly2|local`` for HDNet, whose 256-px result reaches the frame as a global colour
   transform or a smoothed grid of local affine transforms), then smooths the track with smoothing ``off``
   (per frame), ``ema`` (causal) and ``zero_lag`` (offline) at the default half-life, and renders each
   losslessly (FFV1); this is exactly what ``process_video --analyze-stride 1`` does, with the shared analysis
   done once instead of three times;
3. evaluates each output, and the composite itself (``identity``), against the ground truth
   (``vidharm.pipeline.flicker.evaluate_clip``).

It prints a markdown table averaged over the clips (each clip weighs the same; the ratios are the means of the
per-clip ratios), the aims of issue 4 per clip and on the mean (TL <= 1.3 x the ground-truth floor, TL <= 0.3 x
per-frame TL, fMSE no worse than per frame), and one table per clip. A diagnostic ``clip-constant`` row renders
the clip's mean per-frame arguments on every frame: it cannot flicker, so on the constant clips TL above it is
the part of TL that flicker causes.

Measurement choices: TL as CO2Net computes it, at 256x256 (flow from the ground truth); fMSE / fPSNR at the
clips' 854x480; E_warp (Lai et al.; flow from the composite) at half size, 427x240 (``--warp-scale``), which
is ~4x cheaper than full size; "fg luma change" is the mean |change| of the foreground's mean Rec.709 luma
between frames (flow-free), and "change error" its difference from the ground truth's change. Flow is OpenCV
DIS, not FlowNet2: the numbers compare our methods with one another, not with published tables.

``--compare SPEC ...`` runs the whole benchmark for several models one after the other (each in its own
folder under ``--work``) and prints one table of them all; a SPEC is ``MODEL[:TRANSFER][=WEIGHTS]``, e.g.
``stats harmonizer hdnet_lite:affine=runs/h/weights.pt hdnet_lite:local=runs/h/weights.pt``.

Usage: .venv/bin/python scripts/bench_flicker.py [--model stats] [--weights PATH] [--transfer local]
           [--work build/flicker_bench] [--compare SPEC ...]
Costs about 5.5 CPU-minutes, spread over two worker processes: an estimated 3 minutes of wall time on 2 idle
cores; 12 minutes were measured on 2 cores shared with other jobs (load average 11-15). ``--no-clip-constant``
skips a fifth of the work; ``--warp-scale 0.25`` makes the E_warp pass (about a third of an evaluation) cheaper.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import torch  # noqa: E402

from vidharm.errors import UsageError  # noqa: E402
from vidharm.models import get_model_config  # noqa: E402
from vidharm.pipeline import (  # noqa: E402
    ParamsTrack,
    ProcessConfig,
    analyze,
    open_clip,
    render_video,
    smooth,
    write_params,
)
from vidharm.pipeline.benchmark import PERTURBATION_KINDS, make_benchmark  # noqa: E402
from vidharm.pipeline.flicker import evaluate_clip, write_report  # noqa: E402
from vidharm.pipeline.methods import TRANSFERS  # noqa: E402
from vidharm.temporal import DEFAULT_HALF_LIFE_S  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "video"
SEQUENCES = ("blackswan", "breakdance")
MODES = ("off", "ema", "zero_lag")
METHODS = ("identity", "per-frame", "ema", "zero-lag", "clip-constant")
_MODE_NAME = {"off": "per-frame", "ema": "ema", "zero_lag": "zero-lag"}
# Summary keys averaged over clips, in table order.
_KEYS = ("tl", "tl_gt", "tl_ratio", "fmse", "fpsnr", "e_warp", "e_warp_fg", "fg_luma_change", "fg_luma_change_gt",
         "fg_luma_change_error")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with frames/<seq>/ and masks/<seq>/")
    p.add_argument("--sequences", nargs="+", default=list(SEQUENCES), help="sequences to use")
    p.add_argument("--kinds", nargs="+", default=list(PERTURBATION_KINDS), choices=PERTURBATION_KINDS)
    p.add_argument("--work", type=Path, default=ROOT / "build" / "flicker_bench", help="where clips and reports go")
    p.add_argument("--model", default="stats", help="stats (default, no weights), harmonizer, or an HDNet model")
    p.add_argument("--weights", type=Path, help="checkpoint (harmonizer: default the bundled weights; HDNet: needed)")
    p.add_argument("--transfer", default="local", choices=TRANSFERS, help="how HDNet's 256-px result is carried over")
    p.add_argument("--compare", nargs="+", metavar="SPEC", help="benchmark several MODEL[:TRANSFER][=WEIGHTS] specs")
    p.add_argument("--half-life", type=float, default=DEFAULT_HALF_LIFE_S, help="smoothing half-life in seconds")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate of the frame folders (DAVIS: 24)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the perturbations")
    p.add_argument("--warp-scale", type=float, default=0.5, help="scale E_warp is computed at (1 = full size)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (clips and evaluations run in parallel)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--json", type=Path, help="also write all summaries here")
    p.add_argument("--no-clip-constant", action="store_true", help="skip the clip-constant diagnostic row")
    p.add_argument("--tables-only", action="store_true", help="print the tables from the reports of an earlier run")
    args = p.parse_args(argv)
    try:
        args.specs = [parse_spec(spec) for spec in args.compare] if args.compare else None
        for model, _, weights in args.specs or [(args.model, args.transfer, args.weights)]:
            check_model(model, weights)
    except ValueError as exc:
        p.error(str(exc))
    args.methods = tuple(m for m in METHODS if not (args.no_clip_constant and m == "clip-constant"))
    return args


def parse_spec(spec: str) -> tuple[str, str, Path | None]:
    """``MODEL[:TRANSFER][=WEIGHTS]`` -> (model, transfer, weights)."""
    head, _, weights = spec.partition("=")
    model, _, transfer = head.partition(":")
    transfer = transfer or "local"
    if transfer not in TRANSFERS:
        raise ValueError(f"--compare {spec}: transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    return model, transfer, Path(weights) if weights else None


def check_model(model: str, weights: Path | None) -> None:
    """Refuse, before any work, a model that needs weights and has none, or a weights file that is missing."""
    try:
        config = get_model_config(model)
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    if weights is not None and not weights.is_file():
        raise ValueError(f"{weights}: no such checkpoint; give the path of trained weights for {model}")
    if weights is None and model != "stats" and config.bundled_weights is None:
        raise ValueError(f"{model} has no bundled weights; give them: --weights PATH (or {model}=PATH in --compare)")


def spec_label(model: str, transfer: str, with_transfer: bool) -> str:
    return f"{model} ({transfer})" if with_transfer else model


def prepare_clip(args: argparse.Namespace, seq: str, kind: str, seed: int) -> dict[str, Any]:
    """Build one benchmark clip and render it with each smoothing; returns the paths to evaluate."""
    torch.set_num_threads(max(1, args.threads))
    folder = args.work / f"{seq}_{kind}"
    bench = make_benchmark(
        args.data / "frames" / seq, args.data / "masks" / seq, folder, kind=kind, seed=seed, fps=args.fps,
        overwrite=True,
    )  # fmt: skip
    # Every frame analysed (process's automatic stride is 1 with smoothing off only): one analysis serves all three.
    base = ProcessConfig(model=args.model, weights=str(args.weights) if args.weights else None, device="cpu",
                         codec="ffv1", half_life_s=args.half_life, transfer=args.transfer,
                         analyze_stride=1)  # fmt: skip
    inp = open_clip(bench.composite, bench.masks)
    track = analyze(inp, base)
    outputs = {"identity": str(bench.composite)}
    tracks = {_MODE_NAME[mode]: smooth(track, mode=mode, half_life_s=args.half_life) for mode in MODES}
    if "clip-constant" in args.methods:
        tracks["clip-constant"] = clip_constant(track)
    for method, rows in tracks.items():
        out = folder / f"out_{method}.mkv"
        render_video(inp, rows, out, base)
        write_params(rows, folder / f"params_{method}.json")
        outputs[method] = str(out)
    return {"folder": str(folder), "masks": str(bench.masks), "gt": str(bench.ground_truth),
            "composite": str(bench.composite), "frames": bench.num_frames, "outputs": outputs}  # fmt: skip


def evaluate_method(args: argparse.Namespace, clip: dict[str, Any], method: str) -> dict[str, Any]:
    """Evaluate one output of a prepared clip against its ground truth; returns the report's summary."""
    report = evaluate_clip(clip["outputs"][method], clip["masks"], clip["gt"], clip["composite"],
                           warp_scale=args.warp_scale)  # fmt: skip
    write_report(report, Path(clip["folder"]) / f"flicker_{method}.json")
    return dict(report["summary"])


def _worker_init(threads: int) -> None:
    torch.set_num_threads(max(1, threads))
    cv2.setNumThreads(1)


def clip_constant(track: ParamsTrack) -> ParamsTrack:
    """Diagnostic: the clip's mean raw arguments and statistics on every frame, so the filters are one fixed
    colour function for the whole clip. It cannot flicker, so its TL is the least any smoothing of this
    model's estimates can reach (the floor scaled by how the model's colours stretch the texture)."""
    args = [round(float(v), 6) for v in track.raw_array().mean(axis=0)]
    stats = [round(float(v), 6) for v in track.stats_array().mean(axis=0)]
    frames = [dataclasses.replace(f, smoothed=args, smoothed_stats=stats) for f in track.frames]
    return ParamsTrack(header={**track.header, "smoothing": {"mode": "clip-constant"}}, frames=frames)


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def table(rows: dict[str, dict[str, float | None]]) -> str:
    head = ("| method | TL | TL / floor | TL / per-frame TL | fMSE | fPSNR (dB) | E_warp fg (x1e-3) | fg luma change "
            "| change error |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    lines = [head]
    floor = next(iter(rows.values()))["tl_gt"]
    change_gt = next(iter(rows.values()))["fg_luma_change_gt"]
    lines.append(f"| ground truth | {fmt(floor)} | 1.00 | | 0 | inf | | {fmt(change_gt, 3)} | 0 |")
    for method, s in rows.items():
        ewarp = None if s["e_warp_fg"] is None else s["e_warp_fg"] * 1e3
        lines.append(
            f"| {method} | {fmt(s['tl'])} | {fmt(s['tl_ratio'])} | {fmt(s['tl_vs_per_frame'])} | {fmt(s['fmse'], 1)} "
            f"| {fmt(s['fpsnr'])} | {fmt(ewarp, 3)} | {fmt(s['fg_luma_change'], 3)} "
            f"| {fmt(s['fg_luma_change_error'], 3)} |"
        )
    return "\n".join(lines)


def with_ratios(clip: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """The table's keys of one clip, with TL / per-frame TL added (TL / floor is the report's ``tl_ratio``)."""
    base = clip["per-frame"]["tl"]
    rows: dict[str, dict[str, float | None]] = {}
    for method in clip:
        rows[method] = {k: clip[method].get(k) for k in _KEYS}
        tl = clip[method]["tl"]
        rows[method]["tl_vs_per_frame"] = tl / base if tl is not None and base else None
    return rows


def average(per_clip: list[dict[str, dict[str, float | None]]]) -> dict[str, dict[str, float | None]]:
    """Mean over clips of every value, ratios included (so TL / floor is the mean of the per-clip ratios)."""
    out: dict[str, dict[str, float | None]] = {}
    for method in per_clip[0]:
        out[method] = {}
        for key in per_clip[0][method]:
            values = [c[method][key] for c in per_clip]
            ok = all(v is not None and math.isfinite(v) for v in values)
            out[method][key] = sum(values) / len(values) if ok else None  # type: ignore[arg-type]
    return out


def aims(named: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """A table of the aims of issue 4 for the smoothed methods, per clip and on the mean."""
    lines = ["| clip | method | TL / floor <= 1.3 | TL / per-frame TL <= 0.3 | fMSE <= per-frame fMSE |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name, rows in named.items():
        for method in ("ema", "zero-lag"):
            s, pf = rows[method], rows["per-frame"]
            cells = [
                _check(s["tl_ratio"], 1.3, 2),
                _check(s["tl_vs_per_frame"], 0.3, 2),
                _check(s["fmse"], pf["fmse"], 1),
            ]
            lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _check(value: float | None, limit: float | None, digits: int) -> str:
    if value is None or limit is None:
        return "n/a"
    return f"{'yes' if value <= limit else 'no'} ({value:.{digits}f} vs {limit:.{digits}f})"


def flicker_share(names: list[str], per_clip: list[dict[str, dict[str, Any]]]) -> list[str]:
    """TL above the clip-constant reference on the constant-perturbation clips, where that reference is the
    right flicker-free output of the model (the ideal arguments do not change over such a clip)."""
    lines = []
    for name, clip in zip(names, per_clip, strict=True):
        ref = clip["clip-constant"]["tl"] if "clip-constant" in clip else None
        if not name.endswith("constant") or ref is None:
            continue
        parts = []
        for method in ("per-frame", "ema", "zero-lag"):
            tl = clip[method]["tl"]
            parts.append(f"{method} {fmt(None if tl is None else tl - ref)}")
        lines.append(f"- {name}: clip-constant TL {fmt(ref)}; TL above it: " + ", ".join(parts))
    return lines


def run_all(args: argparse.Namespace, jobs: list[tuple[str, str, int]], start: float) -> list[dict[str, Any]]:
    """Prepare every clip, then evaluate every output, on ``args.jobs`` worker processes."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=context, initializer=_worker_init,
                             initargs=(args.threads,)) as pool:  # fmt: skip
        clips = list(pool.map(prepare_clip, *zip(*[(args, *job) for job in jobs], strict=True)))
        log_time(start, "clips built and rendered")
        # Longest clips first, so the workers finish together.
        tasks = sorted(((c, m) for c in range(len(clips)) for m in args.methods), key=lambda t: -clips[t[0]]["frames"])
        futures = {t: pool.submit(evaluate_method, args, clips[t[0]], t[1]) for t in tasks}
        per_clip = [{m: futures[(c, m)].result() for m in args.methods} for c in range(len(clips))]
        log_time(start, "evaluated")
    return per_clip


def load_summaries(folder: Path, methods: tuple[str, ...]) -> dict[str, Any]:
    """Method -> summary from the reports an earlier run wrote in ``folder``."""
    out = {}
    for method in methods:
        path = folder / f"flicker_{method}.json"
        if not path.exists():
            raise SystemExit(f"{path}: no report from an earlier run; run without --tables-only first")
        summary = json.loads(path.read_text())["summary"]
        out[method] = {k: float(v) if isinstance(v, str) else v for k, v in summary.items()}
    return out


def benchmark(args: argparse.Namespace, start: float) -> tuple[list[str], list[dict[str, Any]]]:
    """Run (or, with ``--tables-only``, reload) one model's benchmark; returns clip names and per-clip summaries."""
    args.work.mkdir(parents=True, exist_ok=True)
    jobs = [(seq, kind, args.seed + 100 * i + j) for i, seq in enumerate(args.sequences)
            for j, kind in enumerate(args.kinds)]  # fmt: skip
    names = [f"{seq}, {kind}" for seq, kind, _ in jobs]
    if args.tables_only:
        per_clip = [load_summaries(args.work / f"{seq}_{kind}", args.methods) for seq, kind, _ in jobs]
    else:
        per_clip = run_all(args, jobs, start)
    return names, per_clip


def compare(args: argparse.Namespace, start: float) -> int:
    """``--compare``: every spec's benchmark in ``WORK/<model>_<transfer>``, then one table of the means."""
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    names: list[str] = []
    for model, transfer, weights in args.specs:
        image_model = get_model_config(model).num_outputs == 3
        label = spec_label(model, transfer, image_model)
        sub = argparse.Namespace(**{**vars(args), "model": model, "transfer": transfer, "weights": weights,
                                    "work": args.work / (f"{model}_{transfer}" if image_model else model)})  # fmt: skip
        log_time(start, f"{label}: start")
        names, per_clip = benchmark(sub, start)
        results[label] = average([with_ratios(clip) for clip in per_clip])
    print(f"## Flicker benchmark, {len(results)} models, half-life {args.half_life:.3f} s\n")
    print(f"Mean over {len(names)} clips ({'; '.join(names)}); TL at 256x256, flow OpenCV DIS; fMSE at full size; "
          "ratios are means of the per-clip ratios.\n")  # fmt: skip
    print(compare_table(results))
    if not args.tables_only:
        print(f"\n(total {time.monotonic() - start:.0f} s)")
    if args.json is not None:
        write_report({"mean": results, "clips": names, "specs": [list(map(str, s)) for s in args.specs]}, args.json)
    return 0


def compare_table(results: dict[str, dict[str, dict[str, float | None]]]) -> str:
    """One row per model and smoothing (identity and the ground truth once), the flicker columns only."""
    first = next(iter(results.values()))
    lines = ["| model | smoothing | TL | TL / floor | TL / per-frame TL | fMSE | fPSNR (dB) | fg luma change error |",
             "|---|---|---:|---:|---:|---:|---:|---:|",
             f"| ground truth | | {fmt(first['identity']['tl_gt'])} | 1.00 | | 0 | inf | 0 |"]  # fmt: skip
    rows = [("identity (composite)", "", {**first["identity"], "tl_vs_per_frame": None})]
    rows += [(label, m, r[m]) for label, r in results.items() for m in r if m != "identity"]
    for label, method, s in rows:
        per_frame = "" if s["tl_vs_per_frame"] is None else fmt(s["tl_vs_per_frame"])
        lines.append(
            f"| {label} | {method} | {fmt(s['tl'])} | {fmt(s['tl_ratio'])} | {per_frame} "
            f"| {fmt(s['fmse'], 1)} | {fmt(s['fpsnr'])} | {fmt(s['fg_luma_change_error'], 3)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.monotonic()
    if args.specs:
        return compare(args, start)
    names, per_clip = benchmark(args, start)
    tables = [with_ratios(clip) for clip in per_clip]
    rows = average(tables)
    weights = f"weights {args.weights}" if args.weights else ("no weights" if args.model == "stats" else "bundled")
    transfer = f", transfer {args.transfer}" if get_model_config(args.model).num_outputs == 3 else ""
    print(f"## Flicker benchmark: model `{args.model}` ({weights}{transfer}), half-life {args.half_life:.3f} s\n")
    print(f"Mean over {len(per_clip)} clips ({'; '.join(names)}); TL at 256x256, E_warp at scale "
          f"{args.warp_scale}, fMSE at full size, flow OpenCV DIS.\n")  # fmt: skip
    print(table(rows))
    print("\nAims of issue 4, per clip and on the mean:\n")
    print(aims({**dict(zip(names, tables, strict=True)), "mean": rows}))
    share = flicker_share(names, per_clip)
    if share:
        print("\nFlicker's share of TL (constant clips; clip-constant = the clip's mean arguments on every frame):")
        print("\n".join(share))
    for name, clip_rows in zip(names, tables, strict=True):
        print(f"\n### {name}\n")
        print(table(clip_rows))
    if not args.tables_only:
        print(f"\n(total {time.monotonic() - start:.0f} s)")
    if args.json is not None:
        write_report({"mean": rows, "clips": dict(zip(names, tables, strict=True))}, args.json)
    return 0


def log_time(start: float, what: str) -> None:
    print(f"[{time.monotonic() - start:6.1f} s] {what}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
