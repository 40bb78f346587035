"""Held-out report: HDNet-lite trained with and without external style fusion, side by side, plus identity.

One command reproduces the tables. For each training seed (``--seeds``, default 0 and 1) it

1. trains the two arms with ``vidharm.train.train`` from one YAML (default ``configs/train_hdnet_fusion.yaml``:
   region-wise contrastive loss on at weight 0.01, 320 steps at 128 px, batch 8, one torch thread) into
   ``WORK/seedN/plain`` and ``WORK/seedN/fusion``, once with ``hdnet_style_fusion=false`` and once with ``true``:
   same seed, same batches and perturbations (every step's batch is drawn from a generator seeded by the step),
   same initial reference weights (the fusion layers start as the identity and draw nothing from the random
   stream), same step count. A run folder that already holds the final ``weights.pt`` is reused; one with only
   ``last.ckpt`` is resumed;
2. scores identity and the two final weights (``weights.pt``, not ``best.pt``, whose selection saw held-out
   images) on the held-out split with ``vidharm.train.evaluate_images``, i.e. ``vidharm eval images``: the
   evaluation family (``eval``), the training family (``filters``) and clean photos (``clean``), HDNet run at
   its pipeline size 256 and its output upsampled to the photo's size, 8-bit, 0-255 scale;
3. prints the Markdown table, the training budget, and a paired comparison per set (per-image fMSE of fusion
   minus plain: mean with a seeded bootstrap 95 % interval, the share of images where fusion is better, and a
   two-sided sign-test p-value), and saves it as ``WORK/seedN/report.json``.

With several seeds it ends with the paired comparisons of all seeds side by side: the per-image statistics
say how sure one run's difference is over images, the spread between seeds how much of it is the run itself.

Usage:
    nice -n 10 .venv/bin/python scripts/report_style_fusion.py [--seeds 0,1] [--jobs 2]
        [--data ../shared/data/images] [--config configs/train_hdnet_fusion.yaml] [--set KEY=VALUE]
        [--work build/runs/style_fusion] [--limit N] [--skip-train] [--reuse-eval] [--json PATH]

Cost on the shared 2-core CPU (load 5-9 from other jobs): 8-10 minutes of training per arm (both arms in
parallel with ``--jobs 2``) and 6-8 minutes of evaluation, per seed. The weights stay in the (git-ignored)
work folder; they are not shipped.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import multiprocessing
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vidharm.train import EvalReport, EvalRow, evaluate_images, format_eval_table, load_train_config, train  # noqa: E402
from vidharm.train.loop import resolve_model_name  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "images"
DEFAULT_CONFIG = ROOT / "configs" / "train_hdnet_fusion.yaml"
ARMS = {"plain": False, "fusion": True}
SETS = ("eval", "filters", "clean")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="photos+masks folder (training and held-out)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training YAML shared by both arms")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override for both arms")
    p.add_argument("--model", default="hdnet_lite", help="the plain HDNet model (its fusion variant is the other)")
    p.add_argument("--work", type=Path, default=ROOT / "build" / "runs" / "style_fusion", help="run folders")
    p.add_argument("--jobs", type=int, default=1, help="train the two arms in this many processes (1 or 2)")
    p.add_argument("--skip-train", action="store_true", help="only evaluate existing weights")
    p.add_argument("--sets", default=",".join(SETS), help="evaluation sets (eval, filters, clean)")
    p.add_argument("--limit", type=int, help="score only the first N held-out images")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the evaluation")
    p.add_argument("--seeds", default="0,1", help="comma-separated training seeds; one pair of runs per seed")
    p.add_argument("--reuse-eval", action="store_true", help="print a seed's saved report.json instead of rescoring")
    p.add_argument("--json", type=Path, help="write the report here (default WORK/report.json)")
    args = p.parse_args(argv)
    for key in ("hdnet_style_fusion", "seed"):
        if any(s.split("=", 1)[0].strip() == key for s in args.set):
            p.error(f"--set {key}=... is set by the script (per arm / per --seeds); leave it out")
    try:
        args.seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        p.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    return args


def arm_overrides(args: argparse.Namespace, arm: str, seed: int) -> list[str]:
    return [*args.set, f"seed={seed}", f"hdnet_style_fusion={'true' if ARMS[arm] else 'false'}"]


def train_arm(args: argparse.Namespace, arm: str, seed: int) -> dict[str, Any]:
    """Train (or resume, or reuse) one arm of one seed; returns its model name, weights and budget."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s seed {seed} {arm}: %(message)s")
    config = load_train_config(args.config, arm_overrides(args, arm, seed))
    name = resolve_model_name(args.model, config)
    out = args.work / f"seed{seed}" / arm
    weights = out / "weights.pt"
    if args.skip_train or weights.exists():
        if not weights.exists():
            raise SystemExit(f"{weights}: no trained weights; run without --skip-train first")
    else:
        last = out / "last.ckpt"
        start = time.monotonic()

        def progress(p: Any) -> None:
            if p.step % 20 == 0:
                logging.info("step %d/%d loss %.4f (%.0f s)", p.step, p.total_steps, p.loss, time.monotonic() - start)

        train(args.model, args.data, config, out, resume=last.exists(), on_step=progress)
    return {"arm": arm, "model": name, "weights": str(weights), **budget(out)}


def budget(out: Path) -> dict[str, Any]:
    """Steps, training seconds and the resolved config of a finished run (from its logs and checkpoint)."""
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    state = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)
    config = state.get("config", {})
    return {
        "steps": int(state["step"]),
        "train_s": round(float(state.get("elapsed_s", 0.0)), 1),
        "images_seen": int(state["step"]) * int(config.get("batch_size", 0)),
        "final_train_loss": float(rows[-1]["loss"]) if rows else math.nan,
        "config": config,
    }


def paired(a: list[float], b: list[float], seed: int = 0, rounds: int = 2000) -> dict[str, float]:
    """Paired comparison of per-image fMSE ``a`` (fusion) against ``b`` (plain): mean of a - b with a bootstrap
    95 % interval, the share of images where a < b, and a two-sided sign-test p-value (ties dropped)."""
    diff = [x - y for x, y in zip(a, b, strict=True) if math.isfinite(x) and math.isfinite(y)]
    rng = random.Random(seed)
    n = len(diff)
    means = sorted(statistics.fmean(rng.choices(diff, k=n)) for _ in range(rounds))
    wins, losses = sum(d < 0 for d in diff), sum(d > 0 for d in diff)
    k, m = min(wins, losses), wins + losses
    p = min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2**m) if m else 1.0
    return {
        "images": n,
        "mean_diff": statistics.fmean(diff),
        "ci_low": means[int(0.025 * rounds)],
        "ci_high": means[int(0.975 * rounds) - 1],
        "fusion_better": wins / n if n else math.nan,
        "sign_test_p": p,
    }


def evaluate_seed(args: argparse.Namespace, seed: int, arms: list[dict[str, Any]]) -> dict[str, Any]:
    """Score identity and both arms of one seed on the held-out split; returns the JSON-able result."""
    torch.set_num_threads(max(1, args.threads))
    sets = tuple(s.strip() for s in args.sets.split(",") if s.strip())
    names = [a["model"] for a in arms]

    def progress(i: int, total: int) -> None:
        if i % 50 == 0 or i == total:
            logging.info("seed %d: evaluated %d/%d held-out images", seed, i, total)

    start = time.monotonic()
    report = evaluate_images(
        args.data, ("identity", *names), {a["model"]: a["weights"] for a in arms}, sets=sets, limit=args.limit,
        on_image=progress,
    )  # fmt: skip
    per_image: dict[str, list[float]] = report.notes["per_image_fmse"]  # type: ignore[assignment]
    label = {a["model"]: f"{a['model']}={Path(a['weights']).name}" for a in arms}
    comparisons = {
        s: paired(per_image[f"{s}/{label[names[1]]}"], per_image[f"{s}/{label[names[0]]}"], seed=17) for s in sets
    }
    return {
        "seed": seed,
        "data": str(args.data),
        "held_out": report.held_out,
        "rows": [dataclasses.asdict(r) for r in report.rows],
        "arms": arms,
        "paired_fmse_fusion_minus_plain": comparisons,
        "eval_s": round(time.monotonic() - start, 1),
        "config_file": str(args.config),
        "overrides": {arm: arm_overrides(args, arm, seed) for arm in ARMS},
    }


def print_seed(result: dict[str, Any]) -> None:
    """One seed's Markdown: the evaluation table, the training budget and the paired comparison."""
    arms = result["arms"]
    rows = tuple(EvalRow(**r) for r in result["rows"])
    print(
        f"## Seed {result['seed']}: {arms[0]['model']} vs {arms[1]['model']} ({result['held_out']} held-out images)\n"
    )
    print(format_eval_table(EvalReport(rows, result["data"], result["held_out"])))
    print("\nTraining budget (identical for both arms: same seed, batches, initial weights and steps):\n")
    print("| arm | model | steps | images seen | train time (s) | final train loss |")
    print("|---|---|---:|---:|---:|---:|")
    for a in arms:
        print(f"| {a['arm']} | {a['model']} | {a['steps']} | {a['images_seen']} | {a['train_s']:.0f} "
              f"| {a['final_train_loss']:.4f} |")  # fmt: skip
    cfg = arms[0]["config"]
    print(f"\nimage_size {cfg.get('image_size')}, batch {cfg.get('batch_size')}, lr {cfg.get('lr')} "
          f"(x{cfg.get('lr_gamma')} at {cfg.get('lr_decay_steps')}), contrastive_weight "
          f"{cfg.get('contrastive_weight')}, threads {cfg.get('threads')}, seed {cfg.get('seed')}")  # fmt: skip
    print("\nPaired per-image fMSE, fusion minus plain (negative = fusion better):\n")
    print(paired_table({result["seed"]: result}))


def paired_table(results: dict[int, dict[str, Any]]) -> str:
    lines = ["| seed | set | images | plain fMSE | fusion fMSE | mean difference | bootstrap 95% interval "
             "| fusion better on | sign test p |", "|---|---|---:|---:|---:|---:|---|---:|---:|"]  # fmt: skip
    for seed, result in results.items():
        fmse = {(r["set"], r["method"].split("=")[0]): r["fmse"] for r in result["rows"]}
        plain, fused = (a["model"] for a in result["arms"])
        for s, c in result["paired_fmse_fusion_minus_plain"].items():
            lines.append(
                f"| {seed} | {s} | {c['images']} | {fmse[(s, plain)]:.1f} | {fmse[(s, fused)]:.1f} "
                f"| {c['mean_diff']:+.1f} | [{c['ci_low']:+.1f}, {c['ci_high']:+.1f}] "
                f"| {100 * c['fusion_better']:.0f}% | {c['sign_test_p']:.3g} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results: dict[int, dict[str, Any]] = {}
    for seed in args.seeds:
        work = args.work / f"seed{seed}"
        work.mkdir(parents=True, exist_ok=True)
        saved = work / "report.json"
        if args.reuse_eval and saved.exists():
            results[seed] = json.loads(saved.read_text())
            results[seed].setdefault("seed", seed)
        else:
            if args.jobs > 1 and not args.skip_train:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(min(args.jobs, len(ARMS)), mp_context=context) as pool:
                    arms = list(pool.map(train_arm, [args] * len(ARMS), list(ARMS), [seed] * len(ARMS)))
            else:
                arms = [train_arm(args, arm, seed) for arm in ARMS]
            results[seed] = evaluate_seed(args, seed, arms)
            saved.write_text(json.dumps(results[seed], indent=1, default=str))
        print_seed(results[seed])
        print()
    if len(results) > 1:
        print(f"## All seeds: paired per-image fMSE, fusion minus plain\n\n{paired_table(results)}\n")
        for s in results[args.seeds[0]]["paired_fmse_fusion_minus_plain"]:
            diffs = [r["paired_fmse_fusion_minus_plain"][s]["mean_diff"] for r in results.values()]
            print(f"- {s}: mean difference over {len(diffs)} seeds {statistics.fmean(diffs):+.1f} "
                  f"(per seed {', '.join(f'{d:+.1f}' for d in diffs)})")  # fmt: skip
    out = args.json or args.work / "report.json"
    out.write_text(json.dumps({"seeds": results}, indent=1, default=str))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
