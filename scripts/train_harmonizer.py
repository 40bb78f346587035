"""Train the shipped Harmonizer weights (the same as `vidharm train harmonizer`, without the CLI).

Usage: python scripts/train_harmonizer.py DATA OUT_DIR [--config configs/train_harmonizer.yaml] [--resume]
           [--set key=value ...]
Progress goes to OUT_DIR/train_log.csv and val_log.csv; `touch OUT_DIR/STOP` ends the run cleanly.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from vidharm.train import load_train_config, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model", default="harmonizer")
    parser.add_argument(
        "--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs/train_harmonizer.yaml"
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    ns = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    config = load_train_config(ns.config, ns.overrides)

    def report(progress: object) -> None:
        if progress.val:  # type: ignore[attr-defined]
            logging.info("step %d val %s", progress.step, progress.val)  # type: ignore[attr-defined]

    result = train(ns.model, ns.data, config, ns.out_dir, resume=ns.resume, on_step=report)
    logging.info("done: %s", result)


if __name__ == "__main__":
    main()
