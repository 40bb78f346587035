"""The training loop: ``train(model_name, data, config, out_dir, resume, on_step)``.

A run directory holds ``config.yaml`` (the resolved config), ``run.json`` (model, data, split, versions),
``train_log.csv`` and ``val_log.csv`` (metrics), ``last.ckpt`` (model + optimiser + step; written every
``checkpoint_every`` steps and at the end), ``best.pt`` (the weights with the lowest validation fMSE on the
evaluation family) and ``weights.pt`` (the final weights). Creating a file named ``STOP`` in the run
directory ends the run cleanly at the next step (checkpoint written), as does ``max_minutes``.

Every step draws its batch and perturbations from a generator seeded by ``(seed, step)``, so a resumed run
sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidharm.config import config_to_dict, dump_config
from vidharm.errors import CheckpointError, UsageError
from vidharm.models import create_model, get_model_config, load_checkpoint, resolve_device
from vidharm.models.harmonizer import Harmonizer
from vidharm.models.hdnet import HDNet
from vidharm.train.config import TrainConfig
from vidharm.train.data import Dataset, ImageCache, open_dataset
from vidharm.train.losses import foreground_mse, harmonizer_loss, region_contrastive_loss
from vidharm.train.perturb import (
    TrainingBatch,
    inverse_filter_args,
    make_training_batch,
    perturb_for_eval,
    perturb_with_filters,
    restore_steps,
    sample_filter_args,
)

__all__ = [
    "CHECKPOINT_FORMAT",
    "TrainProgress",
    "TrainResult",
    "train",
    "build_model",
    "compute_loss",
    "export_weights",
    "resolve_model_name",
    "StyleEncoder",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "vidharm-train-1"
"""Value of the ``format`` entry of a training checkpoint."""

_TRAIN_FIELDS = [
    "step",
    "elapsed_s",
    "lr",
    "loss",
    "fmse",
    "loss_stepwise",
    "loss_final",
    "loss_args",
    "loss_contrastive",
]


@dataclass(frozen=True)
class TrainProgress:
    """What ``on_step`` receives after every step.

    Attributes:
        step: steps done so far (1-based after the first step).
        total_steps: the configured number of steps.
        loss: this step's total loss.
        lr: learning rate used.
        elapsed_s: training seconds so far (across resumes).
        val: validation metrics when this step validated, else None.
    """

    step: int
    total_steps: int
    loss: float
    lr: float
    elapsed_s: float
    val: dict[str, float] | None = None


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its files and how far it got.

    Attributes:
        out_dir: the run directory.
        step: steps done.
        stopped_early: True when ``max_minutes`` or a ``STOP`` file ended the run before ``steps``.
        checkpoint: ``last.ckpt``.
        weights: ``weights.pt``, the final fp32 state_dict.
        best_weights: ``best.pt`` (lowest validation fMSE), or None if no validation ran.
        val: the last validation metrics.
        model: the registry name trained, which loads ``weights`` (``hdnet_lite_fusion`` when
            ``hdnet_style_fusion`` turned ``hdnet_lite`` into its fusion variant).
    """

    out_dir: Path
    step: int
    stopped_early: bool
    checkpoint: Path
    weights: Path
    best_weights: Path | None
    val: dict[str, float] = field(default_factory=dict)
    model: str = ""


def _is_harmonizer(model: nn.Module) -> bool:
    return isinstance(model, Harmonizer)


def resolve_model_name(model_name: str, config: TrainConfig) -> str:
    """The registry name a run trains: ``model_name``, or its style-fusion variant when
    ``config.hdnet_style_fusion`` is set (``hdnet_lite`` -> ``hdnet_lite_fusion``).

    Args:
        model_name: a registered model name.
        config: the training config.

    Returns:
        The name to build, save under and load the weights with.

    Raises:
        UsageError: ``hdnet_style_fusion`` set for a model that has no fusion variant (Harmonizer, stats).

    Example:
        >>> resolve_model_name("hdnet_lite", TrainConfig(hdnet_style_fusion=True))
        'hdnet_lite_fusion'
    """
    from vidharm.models.hdnet import FUSION_VARIANTS

    get_model_config(model_name)  # unknown names fail here, with the nearest suggestion
    if not config.hdnet_style_fusion or model_name in FUSION_VARIANTS.values():
        return model_name
    if model_name not in FUSION_VARIANTS:
        raise UsageError(
            f"hdnet_style_fusion: {model_name!r} has no style-fusion variant (only {', '.join(FUSION_VARIANTS)} do); "
            "set hdnet_style_fusion=false or train an HDNet model"
        )
    return FUSION_VARIANTS[model_name]


def build_model(model_name: str, config: TrainConfig) -> nn.Module:
    """Create a trainable model with the training initialisation (Harmonizer: official init, heads near 0).

    Args:
        model_name: a registered Harmonizer or HDNet model (``harmonizer``, ``harmonizer_tiny``, ``hdnet``,
            ``hdnet_lite``, ``hdnet_tiny``, or a ``*_fusion`` variant); with ``config.hdnet_style_fusion`` an
            HDNet name is replaced by its fusion variant (:func:`resolve_model_name`).
        config: the training config (image size, drop-connect, BN momentum, seed, style fusion).

    Returns:
        The model in train mode on the CPU.

    Raises:
        UsageError: unknown model, one that has nothing to train (``stats``), or style fusion asked of a model
            without a fusion variant.

    Example:
        >>> build_model("harmonizer_tiny", TrainConfig(image_size=64)).input_size
        64
    """
    model_name = resolve_model_name(model_name, config)
    cfg = get_model_config(model_name)
    torch.manual_seed(config.seed)
    probe = create_model(model_name)
    if isinstance(probe, Harmonizer):
        model = create_model(model_name, input_size=config.image_size, drop_connect_rate=config.drop_connect_rate)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, mode="fan_in", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Start at the identity (all arguments ~0): the last linear layer of every head is near zero.
        for head in model.regressor.headers:  # type: ignore[union-attr]
            nn.init.normal_(head[1].weight, std=1e-3)  # type: ignore[index]
            nn.init.zeros_(head[1].bias)  # type: ignore[index]
    elif isinstance(probe, HDNet):
        model = probe
    else:
        raise UsageError(
            f"model {cfg.name!r} has no trainable network (analytic); train one of harmonizer, hdnet, hdnet_lite"
        )
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = config.bn_momentum
    return model.train()


class StyleEncoder(nn.Module):
    """A frozen copy of the first layers of the model's own encoder; its features give the patch styles.

    Harmonizer: both stems and MBConv blocks 0-2 (24 channels at 1/4 size for B0); both stems see the RGB
    image with a constant mask channel (1 for the foreground stem, 0 for the background stem), so the
    features depend on colours only. HDNet: ``model_layer0`` then ``model_layer1``'s convolution, before its
    instance norm (which would erase the statistics a style is made of), at 1/2 size. The copy is refreshed
    from the training model every ``contrastive_refresh`` steps; its parameters never get gradients.

    Args:
        model: a :class:`Harmonizer` or :class:`HDNet`.

    Example:
        >>> enc = StyleEncoder(create_model("harmonizer_tiny"))
        >>> enc(torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.kind = "harmonizer" if _is_harmonizer(model) else "hdnet"
        self.layers = self._extract(model)
        self.refresh(model)

    def _extract(self, model: nn.Module) -> nn.ModuleDict:
        parts: dict[str, nn.Module]
        if isinstance(model, Harmonizer):
            bb = model.backbone
            parts = {"conv_fg": bb._conv_fg, "bn_fg": bb._bn_fg, "conv_bg": bb._conv_bg, "bn_bg": bb._bn_bg}
            parts["blocks"] = nn.Sequential(*list(bb._blocks)[:3])
        elif isinstance(model, HDNet):
            parts = {"layer0": model.model_layer0, "layer1": model.model_layer1[1]}
        else:
            raise UsageError(f"StyleEncoder: expected a Harmonizer or HDNet, got {type(model).__name__}")
        return nn.ModuleDict({k: copy.deepcopy(v) for k, v in parts.items()})

    def refresh(self, model: nn.Module) -> None:
        """Copy the current weights of ``model``'s encoder layers into this frozen copy."""
        self.layers.load_state_dict(self._extract(model).state_dict())
        self.layers.eval()
        for p in self.layers.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> StyleEncoder:  # always eval: BN uses running statistics
        super().train(False)
        return self

    def forward(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> (B, C, h, w) features."""
        ones = torch.ones_like(image[:, :1])
        if self.kind == "harmonizer":
            lay = self.layers
            fg = F.silu(lay["bn_fg"](lay["conv_fg"](torch.cat([image, ones], 1))))
            bg = F.silu(lay["bn_bg"](lay["conv_bg"](torch.cat([image, 0 * ones], 1))))
            return lay["blocks"](torch.cat([fg, bg], 1))
        x = image * 2 - 1
        if self.layers["layer0"].in_channels == 4:
            x = torch.cat([x, 0 * ones], 1)
        return self.layers["layer1"](F.leaky_relu(self.layers["layer0"](x), 0.2))


def export_weights(source: str | Path | dict[str, Any], path: str | Path, half: bool = True) -> Path:
    """Write a plain state_dict (fp16 floats by default) for shipping; loads with ``weights_only=True``.

    Args:
        source: a training checkpoint file or dict (its ``model`` entry is used) or a state_dict.
        path: output file.
        half: store floating tensors as float16 (integer buffers such as ``num_batches_tracked`` are kept).

    Returns:
        ``path``.

    Raises:
        CheckpointError: ``source`` cannot be read.

    Example:
        >>> import tempfile, os
        >>> out = export_weights({"w": torch.ones(2)}, os.path.join(tempfile.mkdtemp(), "w.pt"))
        >>> torch.load(out, weights_only=True)["w"].dtype
        torch.float16
    """
    if isinstance(source, (str, Path)):
        from vidharm.models import load_state_dict_file

        source = load_state_dict_file(source)
    state = source.get("model", source) if isinstance(source.get("model"), dict) else source
    out = {
        k: (v.detach().to("cpu", torch.float16) if half and v.is_floating_point() else v.detach().cpu()).clone()
        for k, v in state.items()
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return path


def compute_loss(
    model: nn.Module,
    batch: TrainingBatch,
    config: TrainConfig,
    style: StyleEncoder | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The training loss of one batch: Harmonizer's cascade loss (+ argument term) or HDNet's foreground MSE,
    plus the region-wise contrastive loss when ``style`` is given and ``config.contrastive_weight > 0``.

    Args:
        model: a :class:`Harmonizer` or :class:`HDNet` (train or eval mode).
        batch: from :func:`vidharm.train.perturb.make_training_batch`.
        config: the weights of the terms.
        style: the frozen style encoder for the contrastive term, or None.
        generator: random source of the contrastive patch sampling.
        device: where to compute (default: the batch's device).

    Returns:
        ``(loss, parts)``: the scalar to minimise, its named parts (``loss_stepwise``, ``loss_final``,
        ``loss_args``, ``loss_contrastive``, where present) and ``fmse``, the batch's foreground MSE on the
        0-255 scale (a metric, no gradient).

    Example:
        >>> from vidharm.train.perturb import make_training_batch
        >>> model = build_model("harmonizer_tiny", TrainConfig(image_size=64))
        >>> batch = make_training_batch(torch.rand(2, 3, 64, 64), torch.ones(2, 1, 64, 64), torch.Generator())
        >>> loss, parts = compute_loss(model, batch, TrainConfig(image_size=64))
        >>> sorted(parts)
        ['fmse', 'loss_final', 'loss_stepwise']
    """
    device = device if device is not None else batch.composite.device
    comp, real, mask = batch.composite.to(device), batch.real.to(device), batch.mask.to(device)
    parts: dict[str, Tensor] = {}
    if _is_harmonizer(model):
        args = model(comp, mask)
        outs = restore_steps(comp, mask, args)
        targets = [t.to(device) for t in batch.targets]
        loss, parts["loss_stepwise"], parts["loss_final"] = harmonizer_loss(
            outs, targets, mask, batch.stepwise.to(device), config.final_weight, config.dynamic_floor
        )
        output = outs[-1]
        if config.arg_weight > 0:
            target_args = inverse_filter_args(batch.args).to(device)
            sel = batch.stepwise.to(device).float()
            arg_loss = (((args - target_args) ** 2).mean(1) * sel).sum() / len(sel)
            parts["loss_args"] = arg_loss
            loss = loss + config.arg_weight * arg_loss
    else:
        output = model(comp, mask)
        loss = foreground_mse(output, real, mask, config.hdnet_min_area)
        parts["loss_final"] = loss
    if style is not None and config.contrastive_weight > 0:
        with torch.no_grad():
            f_real, f_comp = style(real), style(comp)
        c_loss = region_contrastive_loss(
            style(output),
            f_real,
            f_comp,
            mask,
            generator if generator is not None else torch.Generator().manual_seed(0),
            config.contrastive_patches,
            config.contrastive_patch,
            config.contrastive_temperature,
        )
        parts["loss_contrastive"] = c_loss
        loss = loss + config.contrastive_weight * c_loss
    with torch.no_grad():
        parts["fmse"] = _fmse255(output.detach(), real, mask).mean()
    return loss, parts


def _load_init_weights(model: nn.Module, model_name: str, path: str) -> None:
    """Fine-tuning start: the model's own layout strictly; a fusion variant also takes its plain model's weights
    (its fusion layers then keep their identity initialisation)."""
    from vidharm.models.hdnet import FUSION_VARIANTS

    plain = next((k for k, v in FUSION_VARIANTS.items() if v == model_name), None)
    try:
        source = create_model(model_name, checkpoint=path)
    except CheckpointError:
        if plain is None:
            raise
        source = create_model(plain, checkpoint=path)  # raises with the plain model's first bad key
        logger.info("init_weights %s: %s weights; the style-fusion layers start at the identity", path, plain)
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=plain is None)
    if unexpected or any("fusion." not in k for k in missing):
        raise CheckpointError(
            f"init_weights {path}: expected the weights of {model_name} or {plain}, got keys that fit neither "
            f"(first: {(missing + unexpected)[:3]}); pass a checkpoint trained for one of them"
        )


def _lr_at(step: int, config: TrainConfig) -> float:
    return config.lr * config.lr_gamma ** sum(1 for s in config.lr_decay_steps if step >= s)


def _step_generator(config: TrainConfig, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(config.seed * 1_000_003 + step)


def _read_resume(path: Path, model_name: str, model: nn.Module) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(f"resume: {path} does not exist; train without --resume first, or give the right folder")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"resume: {path} is not a readable training checkpoint ({type(exc).__name__}); delete it or start afresh"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"resume: {path} is not a vidharm training checkpoint (expected format {CHECKPOINT_FORMAT!r}); "
            "resume from the last.ckpt that `vidharm train` wrote"
        )
    if state.get("model_name") != model_name:
        raise CheckpointError(
            f"resume: {path} was written for model {state.get('model_name')!r}, not {model_name!r}; "
            f"resume with `vidharm train {state.get('model_name')}` or use another --out folder"
        )
    load_checkpoint(model, state["model"], strict=True)
    return state


def _val_sets(data: Dataset, config: TrainConfig) -> list[tuple[str, Tensor, Tensor, Tensor]]:
    """Fixed validation composites at the training size: (name, composite, real, mask)."""
    items = list(data.held_out)[: config.val_images]
    if not items:
        return []
    cache = ImageCache(items, config.image_size)
    real, mask, comp = cache.batch(range(len(items)))
    if comp is not None:
        return [("real", comp, real, mask)]
    from vidharm.filters import composite

    shifted = composite(perturb_for_eval(real, torch.Generator().manual_seed(1234)), real, mask)
    args = sample_filter_args(real.shape[0], torch.Generator().manual_seed(5678), config.filter_scale)
    filtered = perturb_with_filters(real, mask, args)[-1]
    return [("eval", shifted, real, mask), ("filters", filtered, real, mask)]


def _fmse255(pred: Tensor, real: Tensor, mask: Tensor) -> Tensor:
    area = mask.sum(dim=(1, 2, 3)).clamp_min(1e-6)
    return ((mask * (pred - real) * 255) ** 2).sum(dim=(1, 2, 3)) / (3 * area)


@torch.no_grad()
def _validate(model: nn.Module, sets: list, device: torch.device, chunk: int = 16) -> dict[str, float]:
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    for name, comp, real, mask in sets:
        preds = []
        for i in range(0, comp.shape[0], chunk):
            c, m = comp[i : i + chunk].to(device), mask[i : i + chunk].to(device)
            preds.append(_predict(model, c, m).cpu())
        pred = torch.cat(preds)
        out[f"val_{name}_fmse"] = float(_fmse255(pred, real, mask).mean())
        out[f"val_{name}_identity_fmse"] = float(_fmse255(comp, real, mask).mean())
    model.train(was_training)
    return out


def _predict(model: nn.Module, comp: Tensor, mask: Tensor) -> Tensor:
    if _is_harmonizer(model):
        return restore_steps(comp, mask, model(comp, mask))[-1]
    return model(comp, mask)


def _append_csv(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _save_checkpoint(path: Path, **state: Any) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(
    model_name: str,
    data: str | Path,
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool | str | Path = False,
    on_step: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train a Harmonizer or HDNet model on a photo folder or iHarmony4, with checkpoints and metrics logs.

    Everything that can fail on the inputs (dataset layout, missing masks, a resume file from another model)
    is checked before the first step.

    Args:
        model_name: ``harmonizer``, ``harmonizer_tiny``, ``hdnet``, ``hdnet_lite`` or ``hdnet_tiny`` (or an HDNet
            ``*_fusion`` variant; ``config.hdnet_style_fusion`` selects it, see :func:`resolve_model_name`; the
            run records and checkpoints the resolved name).
        data: the dataset folder (see :func:`vidharm.train.open_dataset`).
        config: the resolved :class:`TrainConfig`.
        out_dir: the run directory (created).
        resume: False to start afresh (refused if ``out_dir`` already holds ``last.ckpt``), True to continue
            from ``out_dir/last.ckpt``, or the path of a training checkpoint to continue from.
        on_step: called after every step with a :class:`TrainProgress` (the CLI draws its progress bar).

    Returns:
        The :class:`TrainResult`.

    Raises:
        InputError: the dataset is missing, empty or malformed.
        MaskError: images without masks.
        CheckpointError: the resume file is missing, unreadable, or from another model.
        UsageError: an untrainable model, a run already in ``out_dir`` without ``resume``, or a bad device.

    Example:
        >>> import tempfile
        >>> from vidharm.io import write_image
        >>> import numpy as np
        >>> root = Path(tempfile.mkdtemp()); (root / "images").mkdir(); (root / "masks").mkdir()
        >>> for i in range(4):
        ...     write_image(root / "images" / f"{i}.png", np.random.randint(0, 255, (32, 32, 3), np.uint8))
        ...     write_image(root / "masks" / f"{i}.png", np.pad(np.full((16, 16), 255, np.uint8), 8))
        >>> cfg = TrainConfig(image_size=64, batch_size=2, steps=2, val_every=0, val_images=2)
        >>> result = train("harmonizer_tiny", root, cfg, root / "run")
        >>> result.step, sorted(p.name for p in result.out_dir.glob("*.ckpt"))
        (2, ['last.ckpt'])
    """
    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    model_name = resolve_model_name(model_name, config)
    dataset = open_dataset(data, config.val_fraction, config.split_seed)
    model = build_model(model_name, config)
    last = out_dir / "last.ckpt"
    resume_path: Path | None = None
    if resume is True:
        resume_path = last
    elif resume:
        resume_path = Path(resume)
    state: dict[str, Any] | None = None
    if resume_path is not None:
        state = _read_resume(resume_path, model_name, model)
    elif last.exists():
        raise UsageError(
            f"{out_dir} already holds a run (last.ckpt); pass --resume to continue it or choose another --out folder"
        )
    elif config.init_weights:
        _load_init_weights(model, model_name, config.init_weights)

    if config.threads > 0:
        torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    step, elapsed_before, best = 0, 0.0, math.inf
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed_before = int(state["step"]), float(state.get("elapsed_s", 0.0))
        best = float(state.get("best", math.inf))
        logger.info("resuming %s from step %d (%s)", model_name, step, resume_path)
        (out_dir / f"config_resume_{step}.yaml").write_text(dump_config(config))
    else:
        (out_dir / "config.yaml").write_text(dump_config(config))
        for name in ("train_log.csv", "val_log.csv"):
            (out_dir / name).unlink(missing_ok=True)
    run_info = {
        "model": model_name,
        "data": str(Path(data).resolve()),
        "kind": dataset.kind,
        "train_items": len(dataset.train),
        "held_out_items": len(dataset.held_out),
        "held_out_groups": dataset.held_out_groups,
        "held_out_ids": [s.id for s in dataset.held_out],
        "torch": torch.__version__,
        "config": config_to_dict(config),
    }
    (out_dir / "run.json").write_text(json.dumps(run_info, indent=1))

    cache = ImageCache(dataset.train, config.image_size)
    val_sets = _val_sets(dataset, config)
    style = StyleEncoder(model).to(device) if config.contrastive_weight > 0 else None
    probs = (config.p_filters, config.p_lut, config.p_curves, config.p_identity)
    p_real = 0.5 if dataset.kind == "iharmony4" else 0.0
    start = time.monotonic()
    stopped_early = False
    val: dict[str, float] = {}
    sums: dict[str, float] = {}
    count = 0

    def checkpoint() -> None:
        _save_checkpoint(
            last,
            format=CHECKPOINT_FORMAT,
            model_name=model_name,
            step=step,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            config=config_to_dict(config),
            elapsed_s=elapsed_before + time.monotonic() - start,
            best=best,
        )

    model.train()
    while step < config.steps:
        if (out_dir / "STOP").exists() or (
            config.max_minutes > 0 and time.monotonic() - start > 60 * config.max_minutes
        ):
            stopped_early = True
            break
        gen = _step_generator(config, step)
        torch.manual_seed(config.seed * 1_000_003 + step)
        lr = _lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        indices = torch.randperm(len(cache), generator=gen)[: config.batch_size].tolist()
        real, mask, real_comp = cache.batch(indices)
        if config.flip:
            flip = (torch.rand(real.shape[0], generator=gen) < 0.5).view(-1, 1, 1, 1)
            real, mask = torch.where(flip, real.flip(-1), real), torch.where(flip, mask.flip(-1), mask)
            if real_comp is not None:
                real_comp = torch.where(flip, real_comp.flip(-1), real_comp)
        batch = make_training_batch(
            real, mask, gen, probs, config.filter_scale, real_comp, p_real, config.random_magnitude
        )
        if style is not None and step % config.contrastive_refresh == 0:
            style.refresh(model)
        loss, parts = compute_loss(model, batch, config, style, gen, device)
        if not torch.isfinite(loss):
            raise UsageError(
                f"training diverged at step {step + 1} (loss {float(loss)}); lower lr (now {lr}) and resume"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        count += 1
        elapsed = elapsed_before + time.monotonic() - start
        if step % config.log_every == 0 or step == config.steps:
            row = {"step": step, "elapsed_s": round(elapsed, 2), "lr": lr}
            row.update({k: round(v / count, 6) for k, v in sums.items()})
            _append_csv(out_dir / "train_log.csv", _TRAIN_FIELDS, row)
            sums, count = {}, 0
        val_now = None
        if val_sets and ((config.val_every and step % config.val_every == 0) or step == config.steps):
            val = val_now = _validate(model, val_sets, device)
            _append_csv(
                out_dir / "val_log.csv", ["step", "elapsed_s", *val], {"step": step, "elapsed_s": elapsed, **val}
            )
            key = "val_eval_fmse" if "val_eval_fmse" in val else "val_real_fmse"
            if val[key] < best:
                best = val[key]
                torch.save(model.state_dict(), out_dir / "best.pt")
        if step % config.checkpoint_every == 0:
            checkpoint()
        if on_step is not None:
            on_step(TrainProgress(step, config.steps, float(loss.detach()), lr, elapsed, val_now))
    checkpoint()
    weights = out_dir / "weights.pt"
    torch.save(model.state_dict(), weights)
    best_path = out_dir / "best.pt"
    best_weights = best_path if best_path.exists() else None
    return TrainResult(out_dir, step, stopped_early, last, weights, best_weights, val, model=model_name)
