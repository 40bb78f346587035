"""The ``vidharm`` command line; the only module that prints.

Exit codes: 0 success, 1 unexpected internal error, 2 usage, 3 bad input, 4 model or checkpoint,
5 output cannot be written, 130 interrupted (Ctrl-C), 143 terminated.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vidharm.errors import VidharmError

__all__ = ["main", "build_parser"]

log = logging.getLogger("vidharm")

_EPILOG_PROCESS = """\
examples:
  vidharm process clip.mp4 masks/ -o clip_harmonized.mp4
  vidharm process clip.mp4 matte.mp4 --model harmonizer --weights harmonizer.pth --ema-half-life 1
  vidharm process clip.mp4 masks/ --codec ffv1 -o clip_lossless.mkv --params-out params.json

masks: a folder of numbered images (00012.png is frame 12, counting the clip's frames from 0; 8/16-bit,
soft edges are alpha) or a mask video of the same length. Masks of another size but the same aspect are
resized. Only the foreground changes: where a mask is 0 the output pixels are the decoded input's.

models: 'stats' (default) needs no download: it moves the foreground's white balance, exposure, contrast,
saturation and tonal range part of the way towards the background's. 'harmonizer' is the Harmonizer
network (Ke et al. 2022) and needs a checkpoint (--weights), e.g. the official harmonizer.pth.
"""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model", help="model name: stats (default, no weights), harmonizer, hdnet, hdnet_lite (need --weights)"
    )
    g.add_argument("--weights", metavar="PATH", help="checkpoint (official harmonizer.pth layout or a training .ckpt)")
    g.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda, cuda:N")
    g.add_argument("--config", metavar="YAML", type=Path, help="settings preset, e.g. configs/default.yaml")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override a setting (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="vidharm",
        description="Harmonize composited video: make a foreground match its background's light and colour.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "process",
        help="harmonize a video clip (analyze, smooth, render)",
        description="Harmonize a video clip frame by frame: predict six filter arguments per frame, smooth them "
        "over time, apply the filters to the foreground at full resolution and re-encode with the source's "
        "frame rate, timestamps, size, colour tags and audio.",
        epilog=_EPILOG_PROCESS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("clip", type=Path, help="input video")
    p.add_argument("masks", type=Path, help="folder of numbered mask images, or a mask video")
    p.add_argument("-o", "--output", type=Path, help="output video (default: <clip>_harmonized.<ext> beside the clip)")
    _add_model_options(p)
    g = p.add_argument_group("temporal smoothing")
    g.add_argument(
        "--ema-half-life",
        type=float,
        metavar="SECONDS",
        help="half-life of the smoothing of the arguments, in seconds of video (fps-aware; 0 disables)",
    )
    g.add_argument("--smoothing", choices=("ema", "zero_lag", "off"), help="ema (causal, default), zero_lag, off")
    g = p.add_argument_group("image models (hdnet)")
    g.add_argument(
        "--transfer",
        choices=("local", "affine", "poly2"),
        help="how HDNet's 256-px result reaches full resolution: local (grid of local colour transforms, default), "
        "affine or poly2 (one global colour transform)",
    )
    g = p.add_argument_group("encoding")
    g.add_argument("--codec", help="encoder: libx264 (default), libx265, ffv1 (lossless RGB), libx264rgb, prores_ks")
    g.add_argument("--crf", type=int, help="quality for x264/x265 (default 18; 0 is lossless)")
    g.add_argument("--preset", help="x264/x265 speed preset (default medium; veryfast for drafts)")
    g.add_argument("--pix-fmt", help="output pixel format (default: suited to the codec and the source)")
    g.add_argument("--decoder", choices=("pyav", "decord"), help="video decoder (decord is an optional extra)")
    g.add_argument("--batch-size", type=int, help="frames per network call (default 8)")
    p.add_argument("--params-out", type=Path, metavar="JSON", help="write the per-frame parameter sidecar here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "image",
        help="harmonize a single composite image",
        description="Harmonize one composite image with its foreground mask, at full resolution.",
    )
    p.add_argument("composite", type=Path, help="composite image (PNG, JPEG, TIFF; 8 or 16 bit)")
    p.add_argument("mask", type=Path, help="foreground mask image (same size or same aspect)")
    p.add_argument("-o", "--output", type=Path, help="output image (default: <composite>_harmonized.png)")
    _add_model_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the arguments")

    sub.add_parser("models", help="list the available models", description="List the registered models.")
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from vidharm.config import load_config
    from vidharm.pipeline import ProcessConfig

    flags = {
        "model": args.model,
        "weights": args.weights,
        "device": args.device,
        "half_life_s": getattr(args, "ema_half_life", None),
        "transfer": getattr(args, "transfer", None),
        "smoothing": getattr(args, "smoothing", None),
        "codec": getattr(args, "codec", None),
        "crf": getattr(args, "crf", None),
        "preset": getattr(args, "preset", None),
        "pix_fmt": getattr(args, "pix_fmt", None),
        "decoder": getattr(args, "decoder", None),
        "batch_size": getattr(args, "batch_size", None),
    }
    explicit = [f"{k}={v}" for k, v in flags.items() if v is not None]
    config = load_config(ProcessConfig, args.config, [*explicit, *args.set])
    return config


class _Progress:
    """tqdm bars, one per stage, showing frames and frames per second; closed on success or error."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bars: list[Any] = []

    def __call__(self, stage: str, total: int) -> Callable[[int], None]:
        from tqdm import tqdm

        self.close()
        bar = tqdm(total=total, desc=f"{stage:>7}", unit="frame", dynamic_ncols=True, disable=self.quiet)
        self.bars.append(bar)
        return bar.update

    def close(self) -> None:
        for bar in self.bars:
            bar.close()
        self.bars.clear()


def _cmd_process(args: argparse.Namespace) -> int:
    from vidharm.pipeline import process_video

    config = _settings(args)
    output = args.output or args.clip.with_name(f"{args.clip.stem}_harmonized{args.clip.suffix or '.mp4'}")
    start = time.perf_counter()
    progress = _Progress(args.quiet)
    try:
        track = process_video(args.clip, args.masks, output, config, params_out=args.params_out, progress=progress)
    finally:
        progress.close()
    if not args.quiet:
        n = len(track.frames)
        elapsed = time.perf_counter() - start
        print(f"wrote {output} ({n} frames in {elapsed:.1f} s, {n / elapsed:.1f} fps)", file=sys.stderr)
    return 0


def _cmd_image(args: argparse.Namespace) -> int:
    from vidharm.pipeline import harmonize_image

    config = _settings(args)
    output = args.output or args.composite.with_name(f"{args.composite.stem}_harmonized.png")
    raw = harmonize_image(args.composite, args.mask, output, config)
    if not args.quiet:
        if len(raw) <= 12:
            print("  ".join(f"{n}={v:+.3f}" for n, v in raw.items()))
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from vidharm.models import get_model_config, list_models

    for name in list_models():
        cfg = get_model_config(name)
        print(f"{name:<16} {cfg.description}")
    return 0


_COMMANDS = {"process": _cmd_process, "image": _cmd_image, "models": _cmd_models}


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (farm schedulers, kill) unwinds like Ctrl-C, so temporary outputs are removed on the way out.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="vidharm: %(levelname)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return _COMMANDS[args.command](args)
    except VidharmError as exc:
        print(f"vidharm: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vidharm: interrupted; no output was left behind", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if args.debug:
            raise
        print(
            f"vidharm: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
