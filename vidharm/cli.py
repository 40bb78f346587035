"""The ``vidharm`` command line; the only module that prints.

Exit codes: 0 success, 1 unexpected internal error, 2 usage, 3 bad input, 4 model or checkpoint,
5 output cannot be written, 130 interrupted (Ctrl-C), 143 terminated.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

from vidharm.errors import VidharmError

__all__ = ["main", "run", "build_parser"]

log = logging.getLogger("vidharm")

# Set by --openjd-progress (or VIDHARM_OPENJD_PROGRESS=1): print OpenJD progress lines on stdout.
_OPENJD_PROGRESS = False

_EPILOG_PROCESS = """\
examples:
  vidharm process clip.mp4 masks/ -o clip_harmonized.mp4
  vidharm process clip.mp4 matte.mp4 --model harmonizer --weights harmonizer.pth --ema-half-life 1
  vidharm process clip.mp4 masks/ --codec ffv1 -o clip_lossless.mkv --params-out params.json
  vidharm process clip.mov --mask-from-alpha -o out.mov           (the clip's alpha channel is the mask)
  vidharm process clip.mp4 masks/ --stats-mask bars.png -o out.mp4 (measure the background only where white)
  vidharm process --fg elem.%04d.png --bg plate.mov -o comp.mov --write-fg graded.%04d.png

masks: a folder of numbered images (8/16-bit, soft edges are alpha) or a mask video of the same length.
Mask files carry the clip's source frame numbers: 00012.png is frame 12 of a video (counting from 0), and
matte.1001.png the first frame of an image sequence plate.1001.exr ...; --frames takes the same numbers.
Masks of another size but the same aspect are resized. Only the foreground changes: where a mask is 0 the
output pixels are the decoded input's.

models: 'stats' (default) needs no download: it moves the foreground's white balance, exposure, contrast,
saturation and tonal range part of the way towards the background's. 'harmonizer' is the Harmonizer
network (Ke et al. 2022): weights trained here ship with vidharm (small, conservative; see the README), or
pass the official harmonizer.pth with --weights. 'hdnet' needs --weights.
"""


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--model",
        help="model name: stats (default, no weights), harmonizer (bundled weights trained here, or --weights), "
        "hdnet, hdnet_lite (need --weights)",
    )
    g.add_argument("--weights", metavar="PATH", help="checkpoint (official harmonizer.pth layout or a training .ckpt)")
    g.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda, cuda:N")
    g.add_argument("--config", metavar="YAML", type=Path, help="settings preset, e.g. configs/default.yaml")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override a setting (repeatable)")


def _add_clip_and_masks(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    p.add_argument(
        "clip",
        type=Path,
        nargs="?" if optional else None,
        help="input video, or an image sequence: shot.%%04d.exr or shot.####.exr (EXR, PNG, TIFF, DPX; frames "
        "numbered from its first file)" + ("; none with --fg/--bg" if optional else ""),
    )
    p.add_argument(
        "masks",
        type=Path,
        nargs="?" if optional else None,
        help="folder of numbered mask images, or a mask video" + ("; none with --mask-from-alpha" if optional else ""),
    )
    p.add_argument(
        "--fps",
        type=_fps_arg,
        metavar="RATE",
        help="frame rate of an image-sequence clip, e.g. 24, 25, 23.976 or 24000/1001 (default 24; videos have their "
        "own)",
    )


def _add_layer_options(p: argparse.ArgumentParser, *, analysis: bool, element: bool) -> None:
    g = p.add_argument_group("alpha, layers and statistics mask")
    g.add_argument(
        "--mask-from-alpha",
        action="store_true",
        help="the clip's own alpha channel is the mask (ProRes 4444, QuickTime Animation, RGBA PNG sequence); "
        "give no masks",
    )
    if analysis:
        g.add_argument(
            "--stats-mask",
            type=Path,
            metavar="DIR",
            help="where the background may be measured (white) and not (black: letterbox bars, sky, garbage): one "
            "image for every frame, a folder of numbered masks (keyframes are propagated) or a mask video",
        )
    g.add_argument("--fg", type=Path, metavar="FG", help="foreground layer (clip or sequence), instead of a clip")
    g.add_argument("--bg", type=Path, metavar="BG", help="background plate for --fg, same size and length")
    g.add_argument(
        "--alpha",
        type=Path,
        metavar="MASKS",
        help="with --fg: its alpha as masks (folder with every frame, or a mask video); default: its own alpha",
    )
    g.add_argument(
        "--premultiplied",
        action="store_true",
        help="with --fg: its colour is premultiplied by its alpha (default straight, as PNG/TIFF store it)",
    )
    if element:
        g.add_argument(
            "--write-fg",
            type=Path,
            metavar="PATH",
            help="with --fg: also write the graded foreground element, premultiplied with alpha: elem.%%04d.png "
            "(RGBA) or elem.mov (ProRes 4444)",
        )


def _open_inputs(args: argparse.Namespace, frames: range | None = None) -> Any:
    """The clip and masks, or the layers, that --fg/--bg/--mask-from-alpha/--stats-mask describe, checked."""
    from vidharm.pipeline.inputs import open_clip, open_layers

    _check_input_flags(args)
    stats = getattr(args, "stats_mask", None)
    if args.fg is None:
        fps = _clip_fps(args)
        return open_clip(args.clip, args.masks, frames, fps=fps, mask_from_alpha=args.mask_from_alpha, stats_mask=stats)
    return open_layers(
        args.fg, args.bg, args.alpha, frames, premultiplied=args.premultiplied, stats_mask=stats, fps=_layers_fps(args)
    )


def _layers_fps(args: argparse.Namespace) -> Any:
    """``--fps`` for layers; for image-sequence layers without it, says on stderr which rate is used."""
    from vidharm.pipeline.inputs import DEFAULT_SEQUENCE_FPS, is_sequence_source

    if args.fps is None and not getattr(args, "quiet", False) and any(map(is_sequence_source, (args.fg, args.bg))):
        print(
            f"vidharm: the layers are image sequences, which carry no frame rate: using {DEFAULT_SEQUENCE_FPS} fps "
            "(set it with --fps)",
            file=sys.stderr,
        )
    return args.fps


def _check_input_flags(args: argparse.Namespace) -> None:
    """Refuse bad combinations of the clip, masks, --mask-from-alpha, --fg/--bg, --alpha, --premultiplied, --write-fg.

    Raises:
        UsageError: naming the combination and the fix.
    """
    from vidharm.errors import UsageError

    fg, bg = args.fg, args.bg
    if (fg is None) != (bg is None):
        given, missing = ("--fg", "--bg") if fg is not None else ("--bg", "--fg")
        raise UsageError(f"{given} needs {missing}: give the foreground layer with --fg and the background with --bg")
    if fg is not None:
        if args.clip is not None or args.masks is not None:
            extra = " ".join(str(p) for p in (args.clip, args.masks) if p is not None)
            raise UsageError(
                f"{extra}: with --fg/--bg give no clip or masks; the foreground's alpha is its own alpha channel, "
                f"or --alpha MASKS"
            )
        if args.mask_from_alpha:
            raise UsageError("--mask-from-alpha is for a clip; with --fg the foreground's own alpha is the default")
        return
    for flag, value in (
        ("--alpha", args.alpha),
        ("--premultiplied", args.premultiplied),
        ("--write-fg", getattr(args, "write_fg", None)),
    ):
        if value:
            raise UsageError(f"{flag} goes with --fg/--bg (layers); for a flattened clip give its masks instead")
    if args.clip is None:
        raise UsageError("give a clip and its masks (or --mask-from-alpha), or layers with --fg and --bg")
    if args.masks is not None and args.mask_from_alpha:
        raise UsageError(
            f"{args.masks}: give either masks or --mask-from-alpha, not both (the clip's alpha replaces the masks)"
        )
    if args.masks is None and not args.mask_from_alpha:
        raise UsageError(
            f"{args.clip}: give its masks (folder of numbered images or a mask video) after the clip, or "
            f"--mask-from-alpha to use its own alpha channel"
        )


def _clip_fps(args: argparse.Namespace) -> Any:
    """``--fps``; for an image-sequence clip without it, says on stderr which rate is used (unless ``-q``)."""
    from vidharm.pipeline.inputs import DEFAULT_SEQUENCE_FPS, is_sequence_source

    quiet = getattr(args, "quiet", False)
    if args.fps is None and args.clip is not None and not quiet and is_sequence_source(args.clip):
        print(
            f"vidharm: {args.clip} is an image sequence, which carries no frame rate: using {DEFAULT_SEQUENCE_FPS} fps "
            "(set it with --fps)",
            file=sys.stderr,
        )
    return args.fps


def _fps_arg(text: str) -> str:
    """A positive frame rate (24, 23.976, 24000/1001), kept as text: vidharm.io reads it exactly."""
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        value = Fraction(0)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive frame rate such as 24, 25 or 24000/1001, got {text!r}")
    return text


def _add_color_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("colour management (OpenColorIO)")
    g.add_argument(
        "--colorspace",
        metavar="NAME",
        help="the frames' colour space in the OCIO config (e.g. ACEScg, ACEScct, srgb_tx): analysis sees them in the "
        "config's sRGB texture space and the output stays in NAME (default: none, frames are code values)",
    )
    g.add_argument(
        "--ocio",
        metavar="CONFIG",
        help="OCIO config file (or ocio:// URI) naming --colorspace (default: $OCIO, else the ACES studio config "
        "built into OpenColorIO)",
    )


def _add_smoothing_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("temporal smoothing")
    g.add_argument(
        "--ema-half-life",
        type=float,
        metavar="SECONDS",
        help="half-life of the smoothing of the arguments, in seconds of video (fps-aware; 0 disables)",
    )
    g.add_argument("--smoothing", choices=("ema", "zero_lag", "off"), help="ema (causal, default), zero_lag, off")


def _add_encoding_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("image models (hdnet)")
    g.add_argument(
        "--transfer",
        choices=("local", "affine", "poly2"),
        help="how HDNet's 256-px result reaches full resolution: local (grid of local colour transforms, default), "
        "affine or poly2 (one global colour transform)",
    )
    g = p.add_argument_group("encoding")
    g.add_argument(
        "--codec",
        help="encoder: libx264, libx265, ffv1 (lossless RGB), libx264rgb, prores_ks ... (default: from the source: "
        "ProRes stays ProRes in its profile, a clip with alpha gets prores_ks 4444 in .mov or ffv1 in .mkv, "
        "else libx264)",
    )
    g.add_argument("--crf", type=int, help="quality for x264/x265 (default 18; 0 is lossless)")
    g.add_argument("--preset", help="x264/x265 speed preset (default medium; veryfast for drafts)")
    g.add_argument("--pix-fmt", help="output pixel format (default: suited to the codec and the source)")
    g.add_argument("--decoder", choices=("pyav", "decord"), help="video decoder (decord is an optional extra)")
    g.add_argument("--batch-size", type=int, help="frames per network call (default 8)")
    g.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnxruntime"),  # vidharm.pipeline.runtime.RUNTIMES (not imported for --help)
        help="where the argument network runs: auto (default: ONNX Runtime on the CPU when it is installed, about "
        "3x faster there; else PyTorch), torch, onnxruntime",
    )
    g.add_argument(
        "--analyze-stride",
        type=int,
        metavar="K",
        help="run the network on every K-th frame of the clip (and around cuts), interpolating between; 1: every "
        "frame; default 0 (auto): key frames 0.4 smoothing half-lives apart (8 at 30 fps with the default "
        "half-life), every frame with --smoothing off or an HDNet model",
    )


def _frames_arg(text: str) -> range:
    """``A-B`` (inclusive) or ``N`` as a range of source frame numbers."""
    first, sep, last = text.partition("-")
    try:
        a = int(first)
        b = int(last) if sep else a
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a source frame or an inclusive range like 0-249 (1001-1100 for a sequence from 1001), "
            f"got {text!r}"
        ) from None
    if a < 0 or b < a:
        raise argparse.ArgumentTypeError(f"expected 0 <= first <= last, got {text!r}")
    return range(a, b + 1)


def _mix_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a strength between 0 and 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="vidharm",
        description="Harmonize composited video: make a foreground match its background's light and colour.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    parser.add_argument(
        "--openjd-progress",
        action="store_true",
        help="print 'openjd_progress: <percent>' lines on stdout for farm runners (also VIDHARM_OPENJD_PROGRESS=1)",
    )
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
    _add_clip_and_masks(p, optional=True)
    _add_layer_options(p, analysis=True, element=True)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output video, or an image sequence out.####.exr / out.%%04d.png (numbered as the clip's frames) "
        "(default: <clip>_harmonized.<ext> beside the clip)",
    )
    _add_model_options(p)
    _add_color_options(p)
    _add_smoothing_options(p)
    _add_encoding_options(p)
    p.add_argument("--params-out", type=Path, metavar="JSON", help="write the per-frame parameter sidecar here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "image",
        help="harmonize a single composite image",
        description="Harmonize one composite image with its foreground mask, at full resolution.",
    )
    p.add_argument(
        "composite", type=Path, help="composite image (PNG, JPEG, TIFF, DPX: 8 or 16 bit; EXR, float TIFF: float)"
    )
    p.add_argument("mask", type=Path, help="foreground mask image (same size or same aspect)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="output image (default: <composite>_harmonized.png, .exr/.tif/.dpx for such a composite)",
    )
    _add_model_options(p)
    _add_color_options(p)
    p.add_argument(
        "--args",
        metavar="T,B,C,S,H,SH",
        help="apply these six filter arguments instead of predicting (also name=value,...; others 0)",
    )
    p.add_argument("--mix", type=_mix_arg, default=1.0, help="strength of the harmonization, 0 to 1 (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the arguments")

    p = sub.add_parser(
        "analyze",
        help="predict per-frame arguments for a frame range (farm phase 1)",
        description="Analyze a frame range: run the model on every frame and write the raw arguments and the "
        "statistics the filters need as a small sidecar. Chunks of one clip are joined by `vidharm smooth`.",
    )
    _add_clip_and_masks(p, optional=True)
    _add_layer_options(p, analysis=True, element=False)
    p.add_argument("--frames", type=_frames_arg, metavar="A-B", help="inclusive source frame range (default: all)")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="sidecar .json, or a folder (gets analyze.A-B.json)"
    )
    _add_model_options(p)
    _add_color_options(p)
    p.add_argument("--batch-size", type=int, help="frames per network call (default 8)")
    p.add_argument("--decoder", choices=("pyav", "decord"), help="video decoder")
    g = p.add_argument_group(
        "the smoothing `vidharm smooth` will use: here it only chooses the automatic --analyze-stride"
    )
    g.add_argument("--ema-half-life", type=float, metavar="SECONDS", help="half-life in seconds (default 0.68)")
    g.add_argument("--smoothing", choices=("ema", "zero_lag", "off"), help="off analyses every frame (default ema)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "smooth",
        help="join analyze sidecars and smooth the whole track (farm phase 2)",
        description="Join the sidecars of all chunks (overlaps and gaps are errors) and smooth the whole "
        "argument track once; the result is the same format as process --params-out.",
    )
    p.add_argument("inputs", type=Path, nargs="+", help="sidecar files, or folders holding analyze.*.json")
    p.add_argument("-o", "--output", type=Path, required=True, help="the smoothed parameter file (.json)")
    p.add_argument("--config", metavar="YAML", type=Path, help="settings preset")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override a setting")
    _add_smoothing_options(p)

    p = sub.add_parser(
        "render",
        help="render a clip from a parameter file, no network (farm phase 3, edits)",
        description="Apply a parameter file to a clip: the `smoothed` values of a sidecar (never smoothed "
        "again), or a CSV of values at a few frames (frame, then any of the six arguments; linear between rows, "
        "held outside; optional smoothing columns), merged over --base.",
    )
    _add_clip_and_masks(p, optional=True)
    _add_layer_options(p, analysis=False, element=True)
    p.add_argument("params", type=Path, help="parameter sidecar (.json) or keyframe CSV (.csv)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output video (with --frames: a segment for vidharm concat), or an image sequence: out/frame.%%05d.png "
        "or out/frame.####.exr (8/16-bit PNG/TIFF/DPX, half/float EXR; files numbered as the clip's frames, an EXR "
        "clip's header kept)",
    )
    p.add_argument(
        "--frames", type=_frames_arg, metavar="A-B", help="render only this inclusive range of source frame numbers"
    )
    p.add_argument("--force", action="store_true", help="image sequences: rewrite frames whose file already exists")
    p.add_argument("--base", type=Path, metavar="JSON", help="with a CSV: the sidecar the CSV's columns edit")
    p.add_argument("--mix", type=_mix_arg, default=1.0, help="strength of the harmonization, 0 to 1 (default 1)")
    p.add_argument(
        "--lock", metavar="NAMES", help="hold arguments fixed: 'brightness,contrast' (at 0) or 'contrast=0.2'"
    )
    p.add_argument("--params-out", type=Path, metavar="JSON", help="write the parameters that were rendered")
    p.add_argument("--device", help="auto, cpu, cuda")
    p.add_argument("--config", metavar="YAML", type=Path, help="settings preset")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override a setting")
    _add_color_options(p)
    _add_encoding_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    export = sub.add_parser("export", help="export the harmonization: .cube LUT, Nuke script, ONNX model")
    ex = export.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = ex.add_parser(
        "lut",
        help="one frame's harmonization (or a range's mean) as a .cube 3D LUT",
        description="Write the harmonization of one frame, or the mean over a range, as a 3D LUT (.cube) that "
        "Nuke, Resolve and ffmpeg's lut3d read, with the frame's statistics baked in. It applies to the whole "
        "image: use it through the matte. Without --params the frames are analysed now (unsmoothed).",
    )
    _add_clip_and_masks(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--frame", type=int, help="the frame to export")
    which.add_argument("--frames", type=_frames_arg, metavar="A-B", help="average over this inclusive range")
    p.add_argument("-o", "--output", type=Path, required=True, help="the .cube file")
    p.add_argument("--params", type=Path, metavar="JSON", help="take the (smoothed) values from this sidecar")
    p.add_argument("--size", type=int, default=33, help="lattice points per axis (default 33; 65 is finer)")
    p.add_argument("--mix", type=_mix_arg, default=1.0, help="strength, 0 to 1")
    _add_model_options(p)
    _add_color_options(p)
    p = ex.add_parser(
        "nuke",
        help="a Nuke script reproducing the harmonization per frame",
        description="Write a Nuke script that reads the plate and the matte and grades the foreground with a "
        "numbered .cube per frame (the six filters depend on per-frame statistics, which no single stock node "
        "expresses), keyed through the matte.",
    )
    _add_clip_and_masks(p)
    p.add_argument("-o", "--output", type=Path, required=True, help="the .nk file")
    p.add_argument("--params", type=Path, metavar="JSON", help="sidecar to reproduce (default: analyze + smooth now)")
    p.add_argument("--cube-dir", type=Path, help="folder for the per-frame LUTs (default <stem>_cubes)")
    p.add_argument("--size", type=int, default=33, help="lattice points per axis")
    p.add_argument("--mix", type=_mix_arg, default=1.0, help="strength, 0 to 1")
    _add_model_options(p)
    _add_color_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p = ex.add_parser(
        "onnx",
        help="the Harmonizer network as ONNX, checked with ONNX Runtime",
        description="Export the argument-predicting network as ONNX: inputs image (B,3,256,256) and mask "
        "(B,1,256,256) in [0,1], output args (B,6) in filter order. Needs the [onnx] extra.",
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime comparison")
    _add_model_options(p)

    p = sub.add_parser("plot", help="plot the six argument tracks, raw and smoothed, with cuts")
    p.add_argument("params", type=Path, help="parameter sidecar (.json)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    p.add_argument("--title", help="plot title")

    p = sub.add_parser(
        "qc",
        help="flag clamped arguments, jumps, tiny masks and cuts; optional before/after proxy",
        description="Check a parameter file: arguments at their clamp limits, jumps between frames, empty or "
        "tiny masks, scene cuts. --proxy writes a small side-by-side before/after clip for review.",
    )
    p.add_argument("params", type=Path, help="parameter sidecar (.json)")
    p.add_argument("--clip", type=Path, help="the clip (needed for --proxy)")
    p.add_argument("--masks", type=Path, help="the masks (needed for --proxy, or mask areas of old sidecars)")
    p.add_argument("--max-jump", type=float, default=0.1, help="largest frame-to-frame change not flagged")
    p.add_argument("--min-mask-area", type=float, default=0.001, help="smallest foreground fraction not flagged")
    p.add_argument("--clamp-margin", type=float, default=0.01, help="flag arguments this close to +-1")
    p.add_argument("--strict", action="store_true", help="exit 1 when anything is flagged as a warning")
    p.add_argument("--proxy", type=Path, metavar="MP4", help="write a side-by-side before/after review clip")
    p.add_argument("--max-width", type=int, default=960, help="width of the proxy (default 960)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "concat",
        help="join rendered video segments losslessly and add the source's audio (farm phase 4)",
        description="Join the video segments of `vidharm render --frames` (each has a .segment.json beside it) in "
        "frame order, without re-encoding, and add the audio of --audio-from. Overlaps, gaps and segments of "
        "another clip or parameter file are errors.",
    )
    p.add_argument("segments", type=Path, nargs="+", help="segment videos or folders holding them, any order")
    p.add_argument("-o", "--output", type=Path, required=True, help="the joined video (same container as segments)")
    p.add_argument("--audio-from", type=Path, metavar="CLIP", help="add this file's audio (normally the source clip)")

    farm = sub.add_parser("farm", help="render-farm jobs: export Open Job Description job templates")
    fs = farm.add_subparsers(dest="farm_command", metavar="WHAT", required=True)
    p = fs.add_parser(
        "export",
        help="write an OpenJD job template: analyze tasks, smooth, render tasks, concat",
        description="Write an Open Job Description job template (and its parameter values, <stem>.params.yaml) "
        "that runs analyze tasks over frame chunks, smooth, render tasks and concat. Run it on one machine with "
        "`openjd run job.yaml -p file://job.params.yaml`, or submit it to a farm (AWS Deadline Cloud); every path "
        "is a PATH parameter, so path-mapping rules apply. SOURCE is a clip (then MASKS follows, or "
        "--mask-from-alpha) or a shot list (.csv or .yaml: clip, masks, output, options per shot); layers are "
        "--fg/--bg instead. Task frame ranges are source frame numbers (1001-1100 ... for a sequence from 1001).",
    )
    p.add_argument("source", type=Path, nargs="?", help="input video or image sequence, or a shot list (.csv, .yaml)")
    p.add_argument("masks", type=Path, nargs="?", help="masks folder or mask video (not with a shot list)")
    p.add_argument(
        "--fps",
        type=_fps_arg,
        metavar="RATE",
        help="frame rate of image-sequence inputs, passed to every task (default 24; videos have their own)",
    )
    _add_layer_options(p, analysis=True, element=False)
    _add_color_options(p)
    p.add_argument("--format", choices=("openjd",), default="openjd", help="job description format (openjd)")
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="job template .yaml (a folder: one job per shot of a list)"
    )
    p.add_argument("--chunk", type=int, help="frames per analyze/render task (default 100)")
    p.add_argument("--render-output", type=Path, metavar="PATH", help="final video or sequence pattern of the shot")
    p.add_argument("--work", type=Path, metavar="DIR", help="work folder (default <output stem>_work beside it)")
    p.add_argument("--layout", choices=("job-per-shot", "step-per-shot"), default="job-per-shot", help="shot lists")
    p.add_argument(
        "--command",
        dest="vidharm_command",
        default="vidharm",
        help="the vidharm executable on the workers (default vidharm)",
    )
    _add_model_options(p)
    _add_smoothing_options(p)
    _add_encoding_options(p)
    p.add_argument("--mix", type=_mix_arg, help="strength of the harmonization, 0 to 1 (default 1)")
    p.add_argument("--lock", metavar="NAMES", help="hold arguments fixed in the render tasks")

    ev = sub.add_parser("eval", help="evaluate results: flicker of a harmonized clip")
    evs = ev.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = evs.add_parser(
        "flicker",
        help="temporal flicker (TL, E_warp, brightness change) and accuracy of a harmonized clip",
        description="Measure flicker and accuracy of a harmonized clip: CO2Net's TL at 256x256 (flow from ground "
        "truth t+1 to t) with the ground truth's own floor and their ratio, Lai et al.'s E_warp (flow on the "
        "input frames), the flow-free frame-to-frame change of the foreground's mean luma, and MSE, fMSE, PSNR, "
        "fPSNR against the ground truth. Flow is OpenCV DIS, so the numbers compare vidharm runs with one "
        "another, not with published tables (FlowNet2). Clips are videos or folders of numbered frames.",
    )
    p.add_argument("output", type=Path, help="harmonized clip: a video or a folder of numbered frames")
    p.add_argument("masks", type=Path, help="folder of numbered mask images, or a mask video")
    p.add_argument("--gt", type=Path, help="ground-truth clip (TL and its floor, MSE, fMSE, PSNR, fPSNR)")
    p.add_argument("--composite", type=Path, help="the unharmonized input clip (E_warp's flow)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the full per-frame report as JSON")
    p.add_argument("--plot", type=Path, metavar="PNG", help="write a plot of the per-frame curves")
    p.add_argument("--tl-size", type=int, default=256, help="square side TL is computed at (default 256)")
    p.add_argument("--warp-scale", type=float, default=1.0, help="scale E_warp is computed at (default 1 = full)")
    p.add_argument("--flow-preset", choices=("ultrafast", "fast", "medium"), default="medium", help="OpenCV DIS preset")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    p = evs.add_parser(
        "images",
        help="MSE/fMSE/PSNR/fPSNR of identity, stats and the trained model on held-out images",
        description="Evaluate on the held-out split of a training folder (never trained on): composites made with a "
        "perturbation family unlike training's, the training family itself, clean images (any change is harm) "
        "and real iHarmony4 composites where the folder has them. Prints a Markdown table.",
    )
    p.add_argument("--data", type=Path, required=True, help="photos+masks folder or iHarmony4 layout")
    p.add_argument("--methods", default="identity,stats,harmonizer", help="comma-separated methods to compare")
    p.add_argument(
        "--weights",
        metavar="[METHOD=]PATH",
        action="append",
        default=[],
        help="checkpoint of a method in --methods, e.g. hdnet_lite=runs/h/weights.pt; a bare PATH is harmonizer's "
        "(default: its bundled weights); repeatable",
    )
    p.add_argument("--limit", type=int, help="evaluate at most this many held-out images")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser(
        "train",
        help="train harmonizer or hdnet (lite on CPU) on photos with masks or iHarmony4",
        description="Train a model. From plain photos with masks, composites are made by the six filters in "
        "reverse order with random arguments, random 3D LUTs/curves the filters cannot express, and unperturbed "
        "samples. Configured by YAML (configs/train_*.yaml) and --set key=value; resumable; progress bar, "
        "periodic validation, CSV metrics log. `hdnet` trains HDNet-lite (ngf=8), the CPU size.",
    )
    p.add_argument("model", choices=("harmonizer", "hdnet", "hdnet_full"), help="what to train")
    p.add_argument("--data", type=Path, required=True, help="photos+masks folder or iHarmony4 layout")
    p.add_argument("-o", "--output", type=Path, required=True, help="run folder (checkpoints, logs, weights)")
    p.add_argument("--config", metavar="YAML", type=Path, help="training preset (default configs/train_<model>.yaml)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="override a setting")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    masks = sub.add_parser("masks", help="keyframe masks: propagate to every frame, check propagation quality")
    mk = masks.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = mk.add_parser(
        "propagate",
        help="fill a keyframe mask folder to every frame by optical flow",
        description="Propagate masks given for a few keyframes (numbered files) to every frame of the clip with "
        "dense optical flow (OpenCV DIS), forwards and backwards, blended by distance with a forward-backward "
        "consistency check. Keyframes are kept exactly. Keyframe files carry the clip's source frame numbers "
        "(matte.1001.png for plate.1001.exr). Writes 16-bit PNGs NNNNN.png by source number, so the matte can be "
        "checked or fixed before a render. `vidharm process` does the same on the fly for a sparse folder.",
    )
    p.add_argument("clip", type=Path, help="input video or image sequence (shot.%%04d.exr)")
    p.add_argument("masks", type=Path, help="folder of keyframe masks (numbered by source frame)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the full mask sequence")
    p.add_argument("--decoder", choices=("pyav", "decord"), default="pyav", help="video decoder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p = mk.add_parser(
        "check",
        help="leave-one-out quality of propagation on the given keyframes",
        description="Drop each keyframe in turn, propagate from the others, and measure IoU and boundary F-score "
        "against the dropped one. Needs at least two keyframes.",
    )
    p.add_argument("clip", type=Path, help="input video or image sequence (shot.%%04d.exr)")
    p.add_argument("masks", type=Path, help="folder of keyframe masks (numbered by source frame)")

    sub.add_parser("models", help="list the available models", description="List the registered models.")
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from vidharm.config import load_config
    from vidharm.pipeline import ProcessConfig, color_management
    from vidharm.pipeline.settings import configure_threads, tune_allocator

    flags = {
        "model": getattr(args, "model", None),
        "weights": getattr(args, "weights", None),
        "device": getattr(args, "device", None),
        "half_life_s": getattr(args, "ema_half_life", None),
        "transfer": getattr(args, "transfer", None),
        "smoothing": getattr(args, "smoothing", None),
        "codec": getattr(args, "codec", None),
        "crf": getattr(args, "crf", None),
        "preset": getattr(args, "preset", None),
        "pix_fmt": getattr(args, "pix_fmt", None),
        "decoder": getattr(args, "decoder", None),
        "batch_size": getattr(args, "batch_size", None),
        "runtime": getattr(args, "runtime", None),
        "analyze_stride": getattr(args, "analyze_stride", None),
        "colorspace": getattr(args, "colorspace", None),
        "ocio": getattr(args, "ocio", None),
    }
    explicit = [f"{k}={v}" for k, v in flags.items() if v is not None]
    config = load_config(ProcessConfig, getattr(args, "config", None), [*explicit, *getattr(args, "set", [])])
    configure_threads(config.torch_threads)
    tune_allocator()  # frame buffers freed in batches are reused instead of faulted in again
    color_management(config)  # an unknown colour space or a missing OCIO config fails before any work starts
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
        return _openjd_progress(stage, total, bar.update) if _OPENJD_PROGRESS else bar.update

    def close(self) -> None:
        for bar in self.bars:
            bar.close()
        self.bars.clear()


def _openjd_progress(stage: str, total: int, update: Callable[[int], None]) -> Callable[[int], None]:
    """Wrap a progress callback to also print OpenJD progress lines (on stdout, each whole percent once)."""
    done, shown = 0, -1
    print(f"openjd_status: {stage}", flush=True)

    def on_frames(n: int) -> None:
        nonlocal done, shown
        update(n)
        done += n
        percent = int(100 * done / max(total, 1))
        if percent != shown:
            shown = percent
            print(f"openjd_progress: {min(percent, 100)}", flush=True)

    return on_frames


def _openjd_done() -> None:
    if _OPENJD_PROGRESS:
        print("openjd_progress: 100", flush=True)


def _cmd_process(args: argparse.Namespace) -> int:
    from vidharm.pipeline import process_layers, process_video

    config = _settings(args)
    _check_input_flags(args)
    source = args.clip if args.fg is None else args.bg
    output = args.output or source.with_name(f"{source.stem}_harmonized{source.suffix or '.mp4'}")
    start = time.perf_counter()
    progress = _Progress(args.quiet)
    try:
        if args.fg is not None:
            track = process_layers(
                args.fg,
                args.bg,
                output,
                config,
                alpha=args.alpha,
                premultiplied=args.premultiplied,
                stats_mask=args.stats_mask,
                write_fg=args.write_fg,
                params_out=args.params_out,
                progress=progress,
                fps=_layers_fps(args),
            )
        else:
            track = process_video(
                args.clip,
                args.masks,
                output,
                config,
                params_out=args.params_out,
                progress=progress,
                fps=_clip_fps(args),
                mask_from_alpha=args.mask_from_alpha,
                stats_mask=args.stats_mask,
            )
    finally:
        progress.close()
    if not args.quiet:
        n = len(track.frames)
        elapsed = time.perf_counter() - start
        print(f"wrote {output} ({n} frames in {elapsed:.1f} s, {n / elapsed:.1f} fps)", file=sys.stderr)
    return 0


def _cmd_image(args: argparse.Namespace) -> int:
    from vidharm.pipeline import harmonize_image
    from vidharm.pipeline.edit import parse_arg_values

    config = _settings(args)
    suffix = args.composite.suffix if args.composite.suffix.lower() in (".exr", ".tif", ".tiff", ".dpx") else ".png"
    output = args.output or args.composite.with_name(f"{args.composite.stem}_harmonized{suffix}")
    given = parse_arg_values(args.args) if args.args else None
    raw = harmonize_image(args.composite, args.mask, output, config, args=given, mix=args.mix)
    if not args.quiet:
        if len(raw) <= 12:
            print("  ".join(f"{n}={v:+.3f}" for n, v in raw.items()))
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from vidharm.models import get_model_config, list_models

    names = list_models()
    width = max(map(len, names)) + 2
    for name in names:
        print(f"{name:<{width}}{get_model_config(name).description}")
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from vidharm.pipeline import analysis_span, analyze, load_model, resolve_device, write_params

    config = _settings(args)
    inp = _open_inputs(args, args.frames)
    out = args.output
    work = out.suffix.lower() != ".json"
    frames = inp.source_frames  # sidecar names and messages use source frame numbers (1001-1100 for a sequence)
    if work:
        out.mkdir(parents=True, exist_ok=True)
        out = out / f"analyze.{frames.start:06d}-{frames.stop - 1:06d}.json"
    model = load_model(config, resolve_device(config.device))
    progress = _Progress(args.quiet)
    try:
        measured = len(analysis_span(inp, config))  # a chunk also reads the key frames around it
        track = analyze(inp, config, model=model, on_frame=progress("analyze", measured))
    finally:
        progress.close()
    if work:
        from vidharm.farm import check_work_folder

        check_work_folder(out.parent, track.header)
    write_params(track, out)
    if not args.quiet:
        print(f"wrote {out} (frames {frames.start}-{frames.stop - 1})", file=sys.stderr)
    return 0


def _cmd_smooth(args: argparse.Namespace) -> int:
    from vidharm.pipeline import read_params, smooth, write_params
    from vidharm.pipeline.smooth import join_tracks

    config = _settings(args)
    files: list[Path] = []
    for path in args.inputs:
        if path.is_dir():
            found = sorted(path.glob("analyze.*.json"))
            if not found:
                from vidharm.errors import InputError

                raise InputError(f"{path}: no analyze.*.json sidecars in the folder; run vidharm analyze first")
            files += found
        else:
            files.append(path)
    from vidharm.farm import check_sidecars_agree

    tracks = [read_params(f) for f in files]
    check_sidecars_agree([t.header for t in tracks], [str(f) for f in files])
    track = join_tracks(tracks, [str(f) for f in files])
    stride = track.header.get("analyze_stride") or 1
    if stride > 1 and not config.smooths:
        log.warning(
            "the sidecars were analysed at analyze_stride %d: without smoothing, the rows between key frames stay "
            "interpolated; for per-frame arguments run vidharm analyze with --smoothing off (or --analyze-stride 1)",
            stride,
        )
    write_params(smooth(track, mode=config.smoothing, half_life_s=config.half_life_s), args.output)
    _openjd_done()
    print(f"wrote {args.output} ({len(track.frames)} frames from {len(files)} sidecars)", file=sys.stderr)
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from vidharm.errors import UsageError
    from vidharm.farm import check_track_source
    from vidharm.pipeline import read_params, write_params
    from vidharm.pipeline.edit import apply_keyframes, lock_args, neutral_track, parse_locks, read_keyframes
    from vidharm.pipeline.layers import render_layers
    from vidharm.pipeline.process import check_output_path
    from vidharm.pipeline.render import is_sequence_pattern, render_output

    config = _settings(args)
    _check_input_flags(args)
    masks = args.masks if args.fg is None else args.alpha
    if not is_sequence_pattern(args.output):
        sources = (args.clip, args.masks, args.fg, args.bg, args.alpha, args.params)
        check_output_path(args.output, *(p for p in sources if p is not None))
    elif masks is not None and args.output.parent.resolve() == masks.resolve():
        raise UsageError(f"{args.output}: the image sequence would go into the masks folder; choose another folder")
    inp = _open_inputs(args, args.frames)
    if args.params.suffix.lower() == ".csv":
        base = read_params(args.base) if args.base else neutral_track(inp, device=config.device, decoder=config.decoder)
        base.header.setdefault("first_frame", inp.first_frame)  # --base written before first_frame was recorded
        track = apply_keyframes(base, read_keyframes(args.params, names=base.method.arg_names))
    elif args.base:
        raise UsageError("--base goes with a keyframe CSV; a .json parameter file is rendered as it is")
    else:
        track = read_params(args.params)
    if args.params.suffix.lower() != ".csv" or args.base:
        check_track_source(track, inp, name=str(args.base or args.params))
    if args.lock:
        track = lock_args(track, parse_locks(args.lock, track.method.arg_names))
    progress = _Progress(args.quiet)
    try:
        render = render_output if inp.foreground is None else functools.partial(render_layers, write_fg=args.write_fg)
        rendered = render(
            inp,
            track,
            args.output,
            config,
            on_frame=progress("render", len(inp.frames)),
            mix=args.mix,
            force=args.force,
            segment_info=args.frames is not None,
        )
    finally:
        progress.close()
    if args.params_out:
        write_params(track, args.params_out)
    if not args.quiet:
        skipped = len(inp.frames) - rendered
        note = f" ({skipped} finished frames skipped; --force rewrites them)" if skipped else ""
        print(f"wrote {args.output}{note}", file=sys.stderr)
    return 0


def _cmd_concat(args: argparse.Namespace) -> int:
    from vidharm.pipeline.segments import concat_segments

    joined = concat_segments(args.segments, args.output, audio_from=args.audio_from)
    _openjd_done()
    print(
        f"wrote {args.output} (frames {joined[0].first}-{joined[-1].last} from {len(joined)} segments)",
        file=sys.stderr,
    )
    return 0


_SHOT_FLAGS = (
    "fps",
    "colorspace",
    "ocio",
    "stats_mask",
    "mask_from_alpha",
    "premultiplied",
    "model",
    "weights",
    "device",
    "config",
    "set",
    "smoothing",
    "ema_half_life",
    "transfer",
    "codec",
    "crf",
    "preset",
    "pix_fmt",
    "decoder",
    "batch_size",
    "runtime",
    "analyze_stride",
    "mix",
    "lock",
)


def _cmd_farm(args: argparse.Namespace) -> int:
    from vidharm.errors import UsageError
    from vidharm.farm import export_openjd, make_shot, read_shot_list

    given = {k: getattr(args, k) for k in _SHOT_FLAGS}
    # `is`, not `in`: --crf 0 and --mix 0 are values (0 == False), an unset switch is False.
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None and v is not False and v != []}
    for key in ("config", "weights", "stats_mask", "ocio"):
        if key in options and not str(options[key]).startswith("ocio://"):
            options[key] = str(Path(options[key]).resolve())
    if args.fg is not None or args.bg is not None:
        if args.fg is None or args.bg is None:
            raise UsageError("--fg needs --bg (and --bg --fg): give the foreground layer and the background plate")
        if args.source is not None or args.masks is not None:
            raise UsageError("with --fg/--bg give no clip, masks or shot list; the foreground's alpha is --alpha")
        shots = [
            make_shot(
                args.bg,
                args.alpha,
                args.render_output,
                foreground=args.fg,
                work=args.work,
                chunk=args.chunk,
                options=options,
            )
        ]
    elif args.alpha is not None:
        raise UsageError("--alpha goes with --fg/--bg (layers); for a clip give its masks")
    elif args.source is None:
        raise UsageError("give a clip and its masks (or --mask-from-alpha), a shot list, or layers with --fg and --bg")
    elif args.source.suffix.lower() in (".csv", ".yaml", ".yml"):
        if args.masks is not None or args.render_output or args.work:
            raise UsageError("a shot list names each shot's masks, output and work folder; give only the list")
        defaults = {**options, "chunk": args.chunk} if args.chunk else options
        shots = read_shot_list(args.source, defaults=defaults)
    elif args.masks is None and not args.mask_from_alpha:
        raise UsageError(
            f"{args.source}: give the masks (folder or video) after the clip, --mask-from-alpha, or a shot list "
            "(.csv/.yaml)"
        )
    else:
        shots = [
            make_shot(args.source, args.masks, args.render_output, work=args.work, chunk=args.chunk, options=options)
        ]
    written = export_openjd(shots, args.output, layout=args.layout, command=args.vidharm_command)
    for path in written:
        print(f"wrote {path} and {path.stem}.params.yaml", file=sys.stderr)
    first = written[0]
    print(
        f"run on this machine: openjd run {first} -p file://{first.with_name(first.stem + '.params.yaml')}",
        file=sys.stderr,
    )
    return 0


def _track_for_export(args: argparse.Namespace, frames: range | None) -> Any:
    from vidharm.pipeline import analyze, open_clip, read_params, smooth

    if args.params:
        return read_params(args.params)
    config = _settings(args)
    track = analyze(open_clip(args.clip, args.masks, frames, fps=_clip_fps(args)), config)
    return smooth(track, mode=config.smoothing, half_life_s=config.half_life_s) if frames is None else track


def _cmd_export(args: argparse.Namespace) -> int:
    from vidharm.pipeline.export import export_lut, export_nuke, export_onnx

    if args.what == "lut":
        from vidharm.pipeline.inputs import first_frame_of, frame_positions

        frames = range(args.frame, args.frame + 1) if args.frame is not None else args.frames
        track = _track_for_export(args, frames)
        # --frame/--frames are source numbers, as export_lut takes them; a sidecar written before first_frame was
        # recorded gets the clip's. frame_positions checks them against the clip, naming its frames.
        first = track.header.setdefault("first_frame", first_frame_of(args.clip))
        frame_positions(args.clip, frames, first, track.header.get("num_frames"))
        export_lut(track, args.output, frames, size=args.size, mix=args.mix, ocio=args.ocio)
    elif args.what == "nuke":
        progress = _Progress(args.quiet)
        try:
            track = _track_for_export(args, None)
            export_nuke(
                track,
                args.output,
                clip=args.clip,
                masks=args.masks,
                cube_dir=args.cube_dir,
                size=args.size,
                mix=args.mix,
                on_frame=progress("cubes", len(track.frames)),
                ocio=args.ocio,
            )
        finally:
            progress.close()
    else:
        diff = export_onnx(_settings(args), args.output, opset=args.opset, check=not args.no_check)
        if diff is not None:
            print(f"ONNX Runtime matches PyTorch: max |difference| {diff:.2e}")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from vidharm.pipeline import read_params
    from vidharm.pipeline.plot import plot_params

    plot_params(read_params(args.params), args.output, title=args.title)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _cmd_qc(args: argparse.Namespace) -> int:
    from vidharm.errors import UsageError
    from vidharm.pipeline import open_clip, read_params
    from vidharm.pipeline.qc import check_track, format_flags, measure_mask_areas, write_proxy

    track = read_params(args.params)
    inp = None
    if args.clip:
        from vidharm.pipeline.inputs import first_frame_of

        # Flags name source frames; a sidecar written before first_frame was recorded gets the clip's.
        track.header.setdefault("first_frame", first_frame_of(args.clip))
    if args.clip and args.masks:
        first = track.first_frame  # sidecar rows are clip positions; open_clip takes source numbers
        inp = open_clip(args.clip, args.masks, range(first + track.frames[0].frame, first + track.frames[-1].frame + 1))
    if args.proxy and inp is None:
        raise UsageError("--proxy needs --clip and --masks")
    areas = measure_mask_areas(inp) if inp is not None and any(f.mask_area is None for f in track.frames) else None
    flags = check_track(
        track,
        mask_areas=areas,
        clamp_margin=args.clamp_margin,
        max_jump=args.max_jump,
        min_mask_area=args.min_mask_area,
    )
    print(format_flags(flags))
    if args.proxy and inp is not None:
        progress = _Progress(args.quiet)
        try:
            write_proxy(inp, track, args.proxy, max_width=args.max_width, on_frame=progress("proxy", len(inp.frames)))
        finally:
            progress.close()
        print(f"wrote {args.proxy}", file=sys.stderr)
    return 1 if args.strict and any(f.severity == "warning" for f in flags) else 0


def _cmd_masks(args: argparse.Namespace) -> int:
    from vidharm.pipeline.keyframes import check_keyframes, propagate_to_folder

    if args.what == "check":
        print(check_keyframes(args.clip, args.masks))
        return 0
    progress = _Progress(args.quiet)
    try:
        n = propagate_to_folder(args.clip, args.masks, args.output, decoder=args.decoder, progress=progress)
    finally:
        progress.close()
    if not args.quiet:
        print(f"wrote {n} masks to {args.output}", file=sys.stderr)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.what == "images":
        return _cmd_eval_images(args)
    from vidharm.pipeline.flicker import evaluate_clip, format_clip_report

    progress = _Progress(args.quiet)
    try:
        report = evaluate_clip(
            args.output,
            args.masks,
            args.gt,
            args.composite,
            json_out=args.json,
            plot_out=args.plot,
            tl_size=args.tl_size,
            warp_scale=args.warp_scale,
            preset=args.flow_preset,
            progress=progress,
        )
    finally:
        progress.close()
    print(format_clip_report(report))
    for path in (args.json, args.plot):
        if path is not None:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def _cmd_eval_images(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vidharm.errors import UsageError
    from vidharm.train import evaluate_images, format_eval_table

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    weights: dict[str, str] = {}
    for item in args.weights:
        method, sep, path = item.rpartition("=")
        method = method if sep else "harmonizer"
        if method not in methods:
            raise UsageError(f"--weights {item}: {method} is not in --methods ({', '.join(methods)}); add it there")
        weights[method] = path
    bar = tqdm(desc="evaluate", unit="image", disable=args.quiet, dynamic_ncols=True)

    def on_image(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = evaluate_images(
            args.data, methods, weights or None, limit=args.limit, device=args.device, on_image=on_image
        )
    finally:
        bar.close()
    print(format_eval_table(report))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from vidharm.train import load_train_config, train

    name = {"harmonizer": "harmonizer", "hdnet": "hdnet_lite", "hdnet_full": "hdnet"}[args.model]
    preset = args.config or _PRESETS / f"train_{'harmonizer' if name == 'harmonizer' else 'hdnet'}.yaml"
    config = load_train_config(preset if preset.exists() else None, args.set)
    bar = tqdm(desc="train", unit="step", disable=args.quiet, dynamic_ncols=True)

    def on_step(p: Any) -> None:
        bar.total = p.total_steps
        bar.update(p.step - bar.n)
        postfix = {"loss": f"{p.loss:.4f}", "lr": f"{p.lr:.1e}"}
        if p.val:
            postfix.update({k: f"{v:.1f}" for k, v in p.val.items() if isinstance(v, float)})
        bar.set_postfix(postfix, refresh=False)

    try:
        result = train(name, args.data, config, args.output, resume=args.resume, on_step=on_step)
    finally:
        bar.close()
    print(f"trained {result.model} to step {result.step}; weights: {result.weights}", file=sys.stderr)
    return 0


_PRESETS = Path(__file__).resolve().parents[1] / "configs"


_COMMANDS = {
    "process": _cmd_process,
    "image": _cmd_image,
    "analyze": _cmd_analyze,
    "smooth": _cmd_smooth,
    "render": _cmd_render,
    "export": _cmd_export,
    "plot": _cmd_plot,
    "qc": _cmd_qc,
    "models": _cmd_models,
    "masks": _cmd_masks,
    "eval": _cmd_eval,
    "train": _cmd_train,
    "concat": _cmd_concat,
    "farm": _cmd_farm,
}


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (farm schedulers, kill) unwinds like Ctrl-C, so temporary outputs are removed on the way out.
    raise SystemExit(128 + signum)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``, letting the optional clip/masks positionals come after options.

    argparse fills optional positionals (``nargs="?"``) only from the words before the first option, so in
    ``process clip.mp4 -o out.mp4 masks/`` the masks would be left over; give them to the first empty slot.
    """
    args, extra = parser.parse_known_args(argv)
    for word in list(extra):
        slot = next((name for name in ("clip", "masks") if hasattr(args, name) and getattr(args, name) is None), None)
        if slot is None or word.startswith("-"):
            break
        setattr(args, slot, Path(word))
        extra.remove(word)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = _parse(parser, argv)
    global _OPENJD_PROGRESS
    _OPENJD_PROGRESS = bool(args.openjd_progress) or os.environ.get("VIDHARM_OPENJD_PROGRESS", "") not in ("", "0")
    # Warnings go to this run's stderr, whatever handlers the host process (a test runner, a farm wrapper) has.
    logger = logging.getLogger("vidharm")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("vidharm: %(levelname)s: %(message)s"))
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.WARNING)
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
        message = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        print(f"vidharm: unexpected error: {message} (rerun with --debug for details)", file=sys.stderr)
        return 1
    finally:
        logger.handlers, logger.level, logger.propagate = saved


def run() -> NoReturn:
    """The ``vidharm`` console script: :func:`main`, then exit without tearing the interpreter down.

    Finalising the interpreter after a run frees every object PyTorch, numba and ONNX Runtime made, one by one:
    0.2-0.4 s of every process, which a farm pays per chunk. By the time :func:`main` returns, every output is
    closed and renamed into place (or removed), so the exit handlers are run and the streams flushed, and the
    process ends there.
    """
    code = main()
    atexit._run_exitfuncs()  # logging's flush, weakref finalizers of temporary folders, ...
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
