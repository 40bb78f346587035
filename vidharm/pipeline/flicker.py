"""Flicker evaluation of a harmonized clip: TL with its ground-truth floor, E_warp, foreground brightness change,
and the image metrics against a ground truth; a table, a JSON report and a plot.

Clips stream from disk (video files or folders of numbered frames) into
:func:`vidharm.metrics.evaluate_flicker`; only two frames are held at a time. Flow is OpenCV's DIS, not the
FlowNet2 of the published figures, so TL and E_warp are comparable among our own runs (and the ground-truth
floor shows the flow's own share), not with the papers' tables.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidharm.errors import InputError, UsageError
from vidharm.io import atomic_path, prefetch
from vidharm.masks import MaskFolder, MaskVideo, open_masks
from vidharm.metrics import DEFAULT_FLOW_PRESET, FLOW_PRESETS, TL_SIZE, evaluate_flicker, format_flicker_table
from vidharm.metrics import plot_flicker as _plot_flicker
from vidharm.pipeline.benchmark import FrameSource, check_masks_cover, iter_source_masks, open_frames

__all__ = ["REPORT_SCHEMA", "evaluate_clip", "format_clip_report", "write_report"]

log = logging.getLogger(__name__)

REPORT_SCHEMA = "vidharm.flicker_report"
"""``schema`` entry of the JSON report :func:`evaluate_clip` writes."""

Progress = Callable[[str, int], Callable[[int], None]]


def evaluate_clip(
    output: str | Path,
    masks: str | Path,
    ground_truth: str | Path | None = None,
    composite: str | Path | None = None,
    *,
    json_out: str | Path | None = None,
    plot_out: str | Path | None = None,
    tl_size: int | None = TL_SIZE,
    warp_scale: float = 1.0,
    preset: str = DEFAULT_FLOW_PRESET,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure how much a harmonized clip flickers, and how close it is to the ground truth.

    Per frame: foreground luma (mask-weighted Rec.709 mean), and with ``ground_truth`` MSE, PSNR, fMSE, fPSNR
    at the clip's resolution. Per frame pair: the change of foreground luma (flow-free); with
    ``ground_truth``, CO2Net's TL at ``tl_size``² with its ground-truth floor (flow from the ground truth),
    and the flow-free change error ``|d(out) - d(gt)|`` of the foreground luma changes; with ``composite``,
    Lai et al.'s E_warp (flow from the composite), whole frame and foreground-weighted.

    Args:
        output: the harmonized clip: a video or a folder of numbered frames.
        masks: a folder of numbered mask images (numbered as the output's frames: a video's from 0) or a
            mask video with one frame per output frame; masks of another size but the same aspect are resized.
        ground_truth: the real clip (video or frame folder) of the same size and length, or None.
        composite: the unharmonized input clip of the same size and length (for E_warp's flow), or None.
        json_out: where to write the report as JSON (atomically), or None.
        plot_out: where to write a PNG of the per-frame curves (needs matplotlib), or None.
        tl_size: square side TL is computed at (CO2Net: 256); None keeps the clip's size.
        warp_scale: scale in (0, 1] of the frames E_warp is computed at (1 = full size, as Lai et al.); a
            smaller one runs a second, cheaper pass over output, composite and masks (0.5 is ~4x cheaper).
        preset: OpenCV DIS preset of the flows, one of :data:`vidharm.metrics.FLOW_PRESETS`.
        progress: ``progress(stage, total)`` returns a per-frame callback, for progress bars; stages
            ``evaluate`` and, with ``composite`` and ``warp_scale < 1``, ``e_warp``.

    Returns:
        The report: ``schema``, ``version``, ``inputs`` (paths, frames, size, fps), ``settings`` and the
        ``per_frame``, ``per_pair`` and ``summary`` of :func:`vidharm.metrics.evaluate_flicker`, where
        ``per_pair`` rows and the summary also hold ``fg_luma_change_error`` and the summary ``tl_ratio``
        (TL / floor). Values that cannot be computed are None; PSNRs may be ``inf`` (identical frames).

    Raises:
        InputError: unreadable clips, or a ground truth or composite whose size or length differs from the
            output's.
        MaskError: masks missing for some frames, masks beyond the clip, a mask video of another length,
            masks of another aspect.
        UsageError: bad ``tl_size``, ``warp_scale`` or ``preset``.
        OutputError: the JSON or PNG cannot be written.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ("out", "gt", "m"):
        ...     (root / name).mkdir()
        >>> for i, level in enumerate((100, 104, 100)):  # the foreground brightens by 4 levels, then back
        ...     write_image(root / "gt" / f"{i:05d}.png", np.full((32, 32, 3), 100, np.uint8))
        ...     out = np.full((32, 32, 3), 100, np.uint8); out[8:24, 8:24] = level
        ...     write_image(root / "out" / f"{i:05d}.png", out)
        ...     write_image(root / "m" / f"{i:05d}.png", np.pad(np.full((16, 16), 255, np.uint8), 8))
        >>> report = evaluate_clip(root / "out", root / "m", root / "gt", tl_size=None)
        >>> s = report["summary"]
        >>> [round(s[k], 6) for k in ("fg_luma_change", "fg_luma_change_error", "tl", "tl_gt")]  # TL: 3 * 4**2
        [4.0, 4.0, 48.0, 0.0]
    """
    if tl_size is not None and (isinstance(tl_size, bool) or not isinstance(tl_size, int) or tl_size <= 0):
        raise UsageError(f"tl_size: expected a positive integer side or None, got {tl_size!r}; CO2Net uses {TL_SIZE}")
    if not (isinstance(warp_scale, (int, float)) and 0.0 < warp_scale <= 1.0):
        raise UsageError(f"warp_scale: expected a scale in (0, 1] (1 = full size), got {warp_scale!r}")
    if preset not in FLOW_PRESETS:
        raise UsageError(f"preset: expected one of {', '.join(FLOW_PRESETS)}, got {preset!r}")
    out_src = open_frames(output)
    mask_src = open_masks(masks)
    check_masks_cover(out_src, mask_src)
    gt_src = None if ground_truth is None else _open_matching(ground_truth, out_src, "ground truth")
    comp_src = None if composite is None else _open_matching(composite, out_src, "composite")
    n = out_src.num_frames
    separate_warp = comp_src is not None and warp_scale < 1.0

    tick = progress("evaluate", n) if progress else None
    stream = _stream(out_src, mask_src, gt_src, None if separate_warp else comp_src, 1.0, tick)
    report = evaluate_flicker(prefetch(stream, maxsize=4), tl_size=tl_size, preset=preset)
    if separate_warp and comp_src is not None:
        tick = progress("e_warp", n) if progress else None
        small = evaluate_flicker(
            prefetch(_stream(out_src, mask_src, None, comp_src, warp_scale, tick), maxsize=4),
            tl_size=tl_size,
            preset=preset,
        )
        for row, other in zip(report["per_pair"], small["per_pair"], strict=True):
            row["e_warp"], row["e_warp_fg"] = other["e_warp"], other["e_warp_fg"]
        for key in ("e_warp", "e_warp_fg"):
            report["summary"][key] = small["summary"][key]
    _add_derived(report)
    full = {
        "schema": REPORT_SCHEMA,
        "version": 1,
        "inputs": {
            "output": str(out_src.path),
            "masks": str(Path(masks)),
            "ground_truth": None if gt_src is None else str(gt_src.path),
            "composite": None if comp_src is None else str(comp_src.path),
            "frames": n,
            "width": out_src.width,
            "height": out_src.height,
            "fps": None if out_src.is_folder else str(out_src.fps),
        },
        "settings": {
            "flow": f"OpenCV DIS, preset {preset}",
            "tl_size": tl_size,
            "warp_scale": warp_scale,
            "e_warp_size": None if comp_src is None else list(_scaled_size(out_src.width, out_src.height, warp_scale)),
            "image_metrics_size": [out_src.width, out_src.height],
        },
        **report,
    }
    # Frame labels: the output's own numbers (a frame folder may start elsewhere than 0).
    numbers = out_src.frame_numbers
    for row in full["per_frame"]:
        row["frame"] = numbers[row["frame"]]
    for row in full["per_pair"]:
        row["frame"] = numbers[row["frame"]]
    if json_out is not None:
        write_report(full, json_out)
    if plot_out is not None:
        _plot_flicker(full, Path(plot_out))
    return full


def format_clip_report(report: dict[str, Any]) -> str:
    """The terminal table of an :func:`evaluate_clip` report: inputs, then one line per available metric.

    Args:
        report: the dict :func:`evaluate_clip` returns.

    Returns:
        Text lines joined by newlines.

    Raises:
        UsageError: ``report`` is not such a report.

    Example:
        >>> report = {"inputs": {"output": "o.mkv", "frames": 3, "width": 8, "height": 8},
        ...           "summary": {"frames": 3, "pairs": 2, "tl": 2.0, "tl_gt": 1.0, "tl_ratio": 2.0}}
        >>> print(format_clip_report(report))
        output: o.mkv (3 frames, 8x8)
        metric                                   value
        frames                                       3
        pairs                                        2
        TL, CO2Net (256x256)                    2.0000
          ground-truth floor                    1.0000
        TL / ground-truth floor                 2.0000
    """
    if not isinstance(report, dict) or not isinstance(report.get("summary"), dict) or "inputs" not in report:
        raise UsageError("report: expected the dict evaluate_clip returns, with 'inputs' and 'summary'")
    inputs, summary = report["inputs"], report["summary"]
    lines = [f"output: {inputs['output']} ({inputs['frames']} frames, {inputs['width']}x{inputs['height']})"]
    for key, label in (("ground_truth", "ground truth"), ("composite", "composite")):
        if inputs.get(key):
            lines.append(f"{label}: {inputs[key]}")
    table = format_flicker_table(report).split("\n")
    width = len(table[0]) - 10
    extra = []
    if summary.get("tl_ratio") is not None:
        extra.append(("TL / ground-truth floor", f"{summary['tl_ratio']:.4f}", "  ground-truth floor"))
    if summary.get("fg_luma_change_error") is not None:
        extra.append(
            ("fg luma |change - gt change|", f"{summary['fg_luma_change_error']:.4f}", "  same on ground truth")
        )
    for label, text, after in extra:
        row = f"{label:<{width}}{text:>10}"
        anchor = next((i for i, line in enumerate(table) if line.startswith(after)), len(table) - 1)
        table.insert(anchor + 1, row)
    return "\n".join(lines + table)


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write a report as JSON, atomically; non-finite numbers become the strings ``"inf"``, ``"-inf"``, ``"nan"``.

    Args:
        report: a JSON-like dict (such as :func:`evaluate_clip`'s).
        path: the file to write; its folder must exist.

    Returns:
        The path written.

    Raises:
        OutputError: the file cannot be written.

    Example:
        >>> import tempfile
        >>> path = write_report({"psnr": math.inf, "tl": 1.5}, Path(tempfile.mkdtemp()) / "r.json")
        >>> path.read_text()
        '{\\n "psnr": "inf",\\n "tl": 1.5\\n}\\n'
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_json_safe(report), indent=1, allow_nan=False) + "\n")
    return path


def _open_matching(path: str | Path, like: FrameSource, role: str) -> FrameSource:
    source = open_frames(path)
    if (source.width, source.height) != (like.width, like.height):
        raise InputError(
            f"{source.path}: the {role} is {source.width}x{source.height} but the output {like.path.name} is "
            f"{like.width}x{like.height}; give the {role} clip the output was made from"
        )
    if source.num_frames != like.num_frames:
        raise InputError(
            f"{source.path}: the {role} has {source.num_frames} frames but the output {like.path.name} has "
            f"{like.num_frames}; give the {role} clip the output was made from, whole"
        )
    if not source.is_folder and not like.is_folder and source.fps != like.fps:
        log.warning("%s: the %s runs at %s fps, the output at %s fps", source.path, role, source.fps, like.fps)
    return source


def _scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    if scale >= 1.0:
        return width, height
    return max(8, round(width * scale)), max(8, round(height * scale))


def _stream(
    out: FrameSource,
    masks: MaskFolder | MaskVideo,
    gt: FrameSource | None,
    comp: FrameSource | None,
    scale: float,
    tick: Callable[[int], None] | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
    size = _scaled_size(out.width, out.height, scale) if scale < 1.0 else None

    def shrink(image: np.ndarray) -> np.ndarray:
        return image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    gts = gt.iter_images() if gt is not None else None
    comps = comp.iter_images() if comp is not None else None
    count = 0
    for image, mask in zip(out.iter_images(), iter_source_masks(out, masks), strict=False):
        g = None if gts is None else next(gts, None)
        c = None if comps is None else next(comps, None)
        if (gts is not None and g is None) or (comps is not None and c is None):
            which = gt if g is None and gts is not None else comp
            raise InputError(f"{which.path if which else '?'}: ended after {count} frames; the file is damaged")
        m = mask if size is None else np.clip(shrink(mask), 0.0, 1.0)
        yield (
            shrink(image),
            m,
            None if g is None else shrink(g),
            None if c is None else shrink(c),
        )
        count += 1
        if tick is not None:
            tick(1)
    if count != out.num_frames:
        raise InputError(f"{out.path}: decoded {count} frames but counted {out.num_frames}; the file is damaged")


def _add_derived(report: dict[str, Any]) -> None:
    frames, pairs, summary = report["per_frame"], report["per_pair"], report["summary"]
    errors = []
    for pair, a, b in zip(pairs, frames[:-1], frames[1:], strict=True):
        values = (a["fg_luma"], b["fg_luma"], a["fg_luma_gt"], b["fg_luma_gt"])
        if any(v is None for v in values):
            pair["fg_luma_change_error"] = None
            continue
        pair["fg_luma_change_error"] = abs((values[1] - values[0]) - (values[3] - values[2]))
        errors.append(pair["fg_luma_change_error"])
    summary["fg_luma_change_error"] = float(np.mean(errors)) if errors else None
    tl, floor = summary.get("tl"), summary.get("tl_gt")
    summary["tl_ratio"] = tl / floor if tl is not None and floor else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value
