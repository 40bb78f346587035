"""Score identity, stats and trained weights on held-out data (the same as `vidharm eval images`).

Usage: python scripts/eval_images.py DATA [--weights harmonizer=PATH] [--methods identity,stats,harmonizer]
           [--limit N] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import torch

from vidharm.train import evaluate_images, format_eval_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--methods", default="identity,stats,harmonizer")
    parser.add_argument("--weights", action="append", default=[], help="NAME=PATH")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(ns.threads)
    weights = dict(item.split("=", 1) for item in ns.weights)

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            logging.info("%d/%d images", done, total)

    report = evaluate_images(
        ns.data, methods=tuple(ns.methods.split(",")), weights=weights, limit=ns.limit, on_image=progress
    )
    print(format_eval_table(report))
    if ns.json:
        ns.json.write_text(json.dumps({"rows": [dataclasses.asdict(r) for r in report.rows], **report.notes}, indent=1))


if __name__ == "__main__":
    main()
