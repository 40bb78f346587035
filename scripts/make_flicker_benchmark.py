"""Make a HYouTube-style flicker benchmark clip from a real clip with masks.

Writes, into OUT_DIR: ``composite.mkv`` (the foreground recoloured by a seeded random colour transform:
exposure, white balance, gamma, contrast, saturation), ``ground_truth.mkv`` (the untouched clip), ``masks/``
(numbered from 0) and ``benchmark.json`` (settings and every frame's transform). Both clips are lossless
(FFV1 RGB), so metrics against the ground truth see only the perturbation and the harmonizer.

Usage:
  .venv/bin/python scripts/make_flicker_benchmark.py SOURCE MASKS OUT_DIR [--kind constant|drift] [--seed 0]
      [--fps 24] [--strength 1.0] [--drift-period 2.0] [--codec ffv1] [--force]

SOURCE is a video or a folder of numbered frames (e.g. ../shared/data/video/frames/blackswan, DAVIS JPEGs at
24 fps); MASKS a folder of numbered masks or a mask video. Then harmonize and evaluate, e.g.:
  vidharm process OUT_DIR/composite.mkv OUT_DIR/masks --codec ffv1 -o OUT_DIR/out.mkv
  .venv/bin/python scripts/flicker_eval.py OUT_DIR/out.mkv OUT_DIR/masks --gt OUT_DIR/ground_truth.mkv \\
      --composite OUT_DIR/composite.mkv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from vidharm.errors import VidharmError  # noqa: E402
from vidharm.pipeline.benchmark import (  # noqa: E402
    DEFAULT_DRIFT_PERIOD_S,
    DEFAULT_FOLDER_FPS,
    PERTURBATION_KINDS,
    make_benchmark,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path, help="a video, or a folder of numbered frames")
    p.add_argument("masks", type=Path, help="folder of numbered mask images, or a mask video")
    p.add_argument("out_dir", type=Path, help="output folder (created; its parent must exist)")
    p.add_argument("--kind", choices=PERTURBATION_KINDS, default="constant", help="constant (default) or drift")
    p.add_argument("--seed", type=int, default=0, help="random seed of the colour transform")
    p.add_argument("--fps", type=float, help=f"frame rate of a frame folder (default {DEFAULT_FOLDER_FPS})")
    p.add_argument("--strength", type=float, default=1.0, help="scale of the perturbation ranges (default 1)")
    p.add_argument("--drift-period", type=float, default=DEFAULT_DRIFT_PERIOD_S, help="seconds per drift step")
    p.add_argument("--codec", choices=("ffv1", "libx264rgb", "libx264"), default="ffv1", help="lossless encoder")
    p.add_argument("--force", action="store_true", help="replace an earlier benchmark in OUT_DIR")
    args = p.parse_args(argv)
    try:
        clip = make_benchmark(
            args.source,
            args.masks,
            args.out_dir,
            kind=args.kind,
            seed=args.seed,
            fps=args.fps,
            strength=args.strength,
            drift_period_s=args.drift_period,
            codec=args.codec,
            overwrite=args.force,
        )
    except VidharmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"{clip.num_frames} frames, {clip.kind}, seed {clip.seed}")
    for label, path in (
        ("composite", clip.composite),
        ("ground truth", clip.ground_truth),
        ("masks", clip.masks),
        ("manifest", clip.manifest),
    ):
        print(f"{label:>12}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
