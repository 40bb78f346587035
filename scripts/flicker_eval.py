"""Evaluate how much a harmonized clip flickers: the same as ``vidharm eval flicker`` (see its --help).

Prints a table of CO2Net's TL (at 256x256) with the ground-truth floor and their ratio, Lai et al.'s E_warp,
the flow-free change of the foreground's mean luma, and MSE / PSNR / fMSE / fPSNR against the ground truth;
optionally writes the per-frame report as JSON and a PNG of the per-frame curves.

Usage:
  python scripts/flicker_eval.py OUTPUT MASKS [--gt GT] [--composite COMPOSITE] [--json report.json]
      [--plot curves.png] [--tl-size 256] [--warp-scale 1.0] [--flow-preset medium]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from vidharm.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["eval", "flicker", *sys.argv[1:]]))
