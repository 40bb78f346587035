"""``vidharm eval images``: MSE, fMSE, PSNR and fPSNR of identity, ``stats`` and trained models on held-out data.

Photo folders: the held-out split of :func:`vidharm.train.open_dataset` (the same split training uses, so
training never saw these images), with composites made at native resolution by

* ``eval``: the evaluation family (:func:`vidharm.train.perturb.perturb_for_eval`: per-channel gain and gamma,
  hue rotation, saturation scale), which no training family draws from: the headline numbers;
* ``filters``: the training family (the six filters in reverse order), for reference;
* ``clean`` (on request): the real photo itself as the composite, measuring the harm done to an image that
  is already harmonious (identity scores 0 there).

iHarmony4 folders: the real composites of the test lists (set ``real``). Composites are rounded to 8 bits as
a saved image would be; every method's output is rounded to 8 bits before scoring. Each image's composite is
seeded by its position in the sorted held-out list, so the sets are identical between runs and methods.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidharm.errors import UsageError
from vidharm.filters import apply_filters, composite
from vidharm.metrics import fmse, fpsnr, mse, psnr
from vidharm.models import create_model
from vidharm.train.data import load_sample, open_dataset
from vidharm.train.perturb import perturb_for_eval, perturb_with_filters, sample_filter_args

__all__ = ["EvalRow", "EvalReport", "evaluate_images", "format_eval_table", "EVAL_SETS"]

EVAL_SETS: Mapping[str, str] = {
    "eval": "held-out photos, evaluation family (gain/gamma/hue/saturation; not used in training)",
    "filters": "held-out photos, training family (six filters, reverse order)",
    "real": "real composites with ground truth (iHarmony4 test lists)",
    "clean": "held-out photos, unperturbed (identity scores 0: a harmonious image must be left alone)",
}
"""Names and descriptions of the evaluation sets."""

_SEED_EVAL = 1234
_SEED_FILTERS = 5678


@dataclass(frozen=True)
class EvalRow:
    """Means over the images of one set for one method (metrics on the 0-255 scale).

    Attributes:
        set: ``eval``, ``filters`` or ``real``.
        method: ``identity``, a model name, or ``name=weights``.
        images: number of images.
        mse: mean MSE.
        psnr: mean PSNR in dB (images with identical output and target are left out of the mean).
        fmse: mean foreground MSE.
        fpsnr: mean foreground PSNR in dB (same exclusion).
        fmse_median: median foreground MSE.
        better_than_identity: fraction of images whose fMSE is below the identity's.
    """

    set: str
    method: str
    images: int
    mse: float
    psnr: float
    fmse: float
    fpsnr: float
    fmse_median: float
    better_than_identity: float


@dataclass(frozen=True)
class EvalReport:
    """All rows plus what was evaluated.

    Attributes:
        rows: one :class:`EvalRow` per (set, method).
        data: the dataset folder.
        held_out: number of held-out items.
        notes: free-form facts (held-out groups, sizes) for the model card; ``per_image_fmse`` maps
            ``"set/method"`` to the foreground MSE of every image, in held-out order (for paired comparisons).
    """

    rows: tuple[EvalRow, ...]
    data: str
    held_out: int
    notes: dict[str, object] = field(default_factory=dict)

    def row(self, set_name: str, method: str) -> EvalRow:
        """The row of ``method`` on ``set_name``.

        Raises:
            UsageError: no such row.
        """
        for r in self.rows:
            if r.set == set_name and r.method == method:
                return r
        raise UsageError(
            f"no row for set {set_name!r} and method {method!r}; have {[(r.set, r.method) for r in self.rows]}"
        )


def _to_u8(x: Tensor) -> np.ndarray:
    return (x[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _from_u8(a: np.ndarray) -> Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255


@torch.no_grad()
def _run(model: nn.Module | None, comp: Tensor, mask: Tensor) -> Tensor:
    if model is None:
        return comp
    num_outputs = getattr(getattr(model, "config", None), "num_outputs", 6)
    if num_outputs == 6:
        args = model(comp, mask).to(comp)
        return composite(apply_filters(comp, args), comp, mask)
    size = getattr(model.config, "input_size", 256)  # type: ignore[union-attr]
    c = F.interpolate(comp, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    m = F.interpolate(mask, size=(size, size), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    out = model(c, m)
    out = F.interpolate(out, size=comp.shape[2:], mode="bilinear", align_corners=False).clamp(0, 1)
    return out * mask + comp * (1 - mask)


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(statistics.fmean(finite)) if finite else math.inf


def evaluate_images(
    data: str | Path,
    methods: Sequence[str] = ("identity", "stats", "harmonizer"),
    weights: Mapping[str, str | Path] | None = None,
    *,
    sets: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    limit: int | None = None,
    device: str = "cpu",
    on_image: Callable[[int, int], None] | None = None,
) -> EvalReport:
    """Score identity, ``stats`` and trained models on held-out composites (see the module docstring).

    Args:
        data: a photo folder or iHarmony4 folder (as for training).
        methods: ``identity`` and registered model names; a model without ``weights`` entry loads its bundled
            weights (``harmonizer``) or needs none (``stats``).
        weights: model name -> checkpoint path, for trained weights.
        sets: sets to build, default ``("eval", "filters")`` for photo folders and ``("real",)`` for iHarmony4.
        val_fraction: must match training's, so the split is the same.
        split_seed: must match training's.
        limit: score only the first ``limit`` held-out items (quick checks).
        device: torch device for the models.
        on_image: called as ``on_image(done, total)`` after each image.

    Returns:
        The :class:`EvalReport` (format it with :func:`format_eval_table`).

    Raises:
        InputError: the dataset is missing or malformed.
        MaskError: images without masks.
        UsageError: an unknown method or set.
        CheckpointError: weights that cannot be loaded.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> root = Path(tempfile.mkdtemp()); (root / "images").mkdir(); (root / "masks").mkdir()
        >>> for i in range(5):
        ...     write_image(root / "images" / f"{i}.png", np.random.randint(0, 255, (16, 16, 3), np.uint8))
        ...     write_image(root / "masks" / f"{i}.png", np.pad(np.full((8, 8), 255, np.uint8), 4))
        >>> report = evaluate_images(root, methods=("identity",), sets=("eval",))
        >>> report.rows[0].method, report.rows[0].images
        ('identity', 1)
    """
    dataset = open_dataset(data, val_fraction, split_seed)
    default_sets = ("real",) if dataset.kind == "iharmony4" else ("eval", "filters")
    sets = tuple(sets) if sets is not None else default_sets
    for name in sets:
        if name not in EVAL_SETS:
            raise UsageError(f"unknown evaluation set {name!r}; choose from {sorted(EVAL_SETS)}")
        if name == "real" and dataset.kind != "iharmony4":
            raise UsageError(f"set 'real' needs real composites (iHarmony4 layout); {data} is a photo folder")
    weights = dict(weights or {})
    dev = torch.device(device)
    models: dict[str, nn.Module | None] = {}
    for method in methods:
        if method == "identity":
            models[method] = None
        elif method in weights:
            models[f"{method}={Path(weights[method]).name}"] = create_model(method, checkpoint=weights[method]).to(dev)
        else:
            models[method] = create_model(method, pretrained=method not in ("stats",)).to(dev)
    items = list(dataset.held_out)[: limit if limit is not None else None]
    scores: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    for index, sample in enumerate(items):
        real, mask, real_comp = load_sample(sample, None)
        real, mask = real[None], mask[None]
        for set_name in sets:
            if set_name == "real":
                comp = real_comp[None]  # type: ignore[index]
            elif set_name == "clean":
                comp = real
            elif set_name == "eval":
                shifted = perturb_for_eval(real, torch.Generator().manual_seed(_SEED_EVAL + index))
                comp = composite(shifted, real, mask)
            else:
                args = sample_filter_args(1, torch.Generator().manual_seed(_SEED_FILTERS + index))
                comp = perturb_with_filters(real, mask, args)[-1]
            comp = _from_u8(_to_u8(comp))
            target, m = _to_u8(real), mask[0, 0].numpy()
            for method, model in models.items():
                pred = _to_u8(_run(model, comp.to(dev), mask.to(dev)).cpu())
                scores.setdefault((set_name, method), []).append(
                    (mse(pred, target), psnr(pred, target), fmse(pred, target, m), fpsnr(pred, target, m))
                )
        if on_image is not None:
            on_image(index + 1, len(items))
    rows = []
    for set_name in sets:
        ident = [s[2] for s in scores.get((set_name, "identity"), [])]
        for method in models:
            vals = scores.get((set_name, method), [])
            if not vals:
                continue
            fm = [v[2] for v in vals]
            better = sum(a < b for a, b in zip(fm, ident, strict=False)) / len(fm) if ident else math.nan
            rows.append(
                EvalRow(
                    set=set_name,
                    method=method,
                    images=len(vals),
                    mse=float(statistics.fmean(v[0] for v in vals)),
                    psnr=_finite_mean([v[1] for v in vals]),
                    fmse=float(statistics.fmean(x for x in fm if not math.isnan(x))),
                    fpsnr=_finite_mean([v[3] for v in vals]),
                    fmse_median=float(statistics.median(fm)),
                    better_than_identity=better,
                )
            )
    per_image = {f"{s}/{m}": [v[2] for v in vals] for (s, m), vals in scores.items()}
    notes: dict[str, object] = {
        "held_out_groups": dataset.held_out_groups,
        "sets": {s: EVAL_SETS[s] for s in sets},
        "per_image_fmse": per_image,
    }
    return EvalReport(tuple(rows), str(data), len(items), notes)


def format_eval_table(report: EvalReport) -> str:
    """The report as a Markdown table (one row per set and method), preceded by a line per set.

    Args:
        report: from :func:`evaluate_images`.

    Returns:
        Markdown text.

    Example:
        >>> row = EvalRow("eval", "identity", 2, 10.0, 40.0, 50.0, 31.0, 45.0, 0.0)
        >>> print(format_eval_table(EvalReport((row,), "data", 2)))
        | set | method | images | MSE | PSNR | fMSE | fPSNR | fMSE median | beats identity |
        |---|---|---|---|---|---|---|---|---|
        | eval | identity | 2 | 10.0 | 40.00 | 50.0 | 31.00 | 45.0 | - |
    """
    lines = [
        "| set | method | images | MSE | PSNR | fMSE | fPSNR | fMSE median | beats identity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        better = (
            "-"
            if r.method == "identity" or math.isnan(r.better_than_identity)
            else f"{100 * r.better_than_identity:.0f}%"
        )
        lines.append(
            f"| {r.set} | {r.method} | {r.images} | {r.mse:.1f} | {r.psnr:.2f} | {r.fmse:.1f} | {r.fpsnr:.2f} | "
            f"{r.fmse_median:.1f} | {better} |"
        )
    return "\n".join(lines)
