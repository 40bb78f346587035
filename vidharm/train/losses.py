"""Training losses: Harmonizer's per-step masked loss with dynamic normalisation, HDNet's foreground MSE, and
the region-wise contrastive style loss.

Harmonizer (official training code, research note section 5), per sample with mask ``m`` and images ``p, g``:

* step loss ``L = sum(m * sqrt((p - g)^2 + 1e-6)) / (sum(m) + 1e-6) + 10 * sum(m * (p - g)^2) / (sum(m) + 1e-6)``
  (numerators sum over channels and pixels, denominators over mask pixels);
* dynamic normalisation over the six restore steps, ``sg`` = stop-gradient:
  ``S = sg(L_1) + sum_{i>=2} max(sg(L_i) - sg(L_{i-1}), 0) + 1e-9`` and
  ``loss = L_1 / S + sum_{i>=2} max((L_i - sg(L_{i-1})) / S, 0)``, averaged over the batch;
* samples without per-step targets (LUT, curve and real composites) get ``final_weight * L_6`` (the official
  "coarse" loss on real composites uses weight 10).

HDNet: ``sum(m * (p - g)^2) / max(C * sum(m), min_area)`` per sample, the foreground-normalised MSE of the
iHarmony4 training codes, averaged over the batch.

Region-wise contrastive loss (:func:`region_contrastive_loss`): the "style" of a patch is the channel mean and
standard deviation of a feature map over that patch, concatenated and L2-normalised. For each sample we take
``num_patches`` random patches lying inside the foreground (at least 90 % mask) and ``num_patches`` lying in
the background (at most 10 % mask). Anchors are the harmonized image's foreground patches; the positive of
each anchor is the mean style of the real image's background patches; the negatives are the composite's
foreground patches (at the anchors' places). InfoNCE with temperature ``tau``:
``-log(exp(a.p / tau) / (exp(a.p / tau) + sum_n exp(a.n / tau)))``, averaged over anchors; samples without
enough foreground or background patches are skipped. The features come from a frozen copy of the model's own
encoder (see :mod:`vidharm.train.loop`), so the loss moves the output image, not the feature extractor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from vidharm.errors import ShapeError, check_shape

__all__ = [
    "masked_step_loss",
    "dynamic_cascade_loss",
    "harmonizer_loss",
    "foreground_mse",
    "patch_styles",
    "region_contrastive_loss",
]

_CHARBONNIER_EPS = 1e-6
_MSE_WEIGHT = 10.0


def masked_step_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Harmonizer's per-sample masked Charbonnier + 10 x MSE.

    Args:
        pred: (B, 3, H, W) restored image in [0, 1].
        target: (B, 3, H, W) target in [0, 1].
        mask: (B, 1, H, W) foreground alpha in [0, 1].

    Returns:
        (B,) losses (0-ish where pred == target; the Charbonnier term has a floor of 3e-3 per unit mask).

    Raises:
        ShapeError: the shapes do not agree.

    Example:
        >>> mask = torch.ones(1, 1, 2, 2)
        >>> masked_step_loss(torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2), mask)
        tensor([9.0000])
    """
    check_shape("target", target.shape, tuple(pred.shape))
    check_shape("mask", mask.shape, (pred.shape[0], 1, pred.shape[2], pred.shape[3]))
    diff2 = (pred - target) ** 2
    area = mask.sum(dim=(1, 2, 3)) + 1e-6
    charb = (mask * torch.sqrt(diff2 + _CHARBONNIER_EPS)).sum(dim=(1, 2, 3)) / area
    mse = (mask * diff2).sum(dim=(1, 2, 3)) / area
    return charb + _MSE_WEIGHT * mse


def dynamic_cascade_loss(step_losses: Tensor, floor: float = 0.0) -> Tensor:
    """Harmonizer's dynamic loss over the restore steps, per sample (see the module docstring).

    Args:
        step_losses: (B, K) per-step losses ``L_1..L_K`` (K = 6 for Harmonizer), with gradients.
        floor: lower bound of the normaliser ``S`` (0 = the official loss). The official ``S`` makes every
            sample's loss about 1, so a sample whose error is tiny (an unperturbed or mildly perturbed one)
            gets a gradient weight ``1 / S`` hundreds of times that of a strongly perturbed one; a floor such
            as 0.1 caps that weight.

    Returns:
        (B,) normalised losses; each is about 1 whatever the scale of the errors (the normaliser is
        stop-gradient), so samples with small errors are pushed as hard as those with large ones.

    Raises:
        ShapeError: ``step_losses`` is not 2-D.

    Example:
        >>> dynamic_cascade_loss(torch.tensor([[2.0, 1.0, 3.0]]))
        tensor([1.])
    """
    if step_losses.ndim != 2:
        raise ShapeError(f"step_losses: expected (B, K), got shape {tuple(step_losses.shape)}")
    sg = step_losses.detach()
    total = (sg[:, 0] + torch.relu(sg[:, 1:] - sg[:, :-1]).sum(dim=1) + 1e-9).clamp_min(floor)
    first = step_losses[:, 0] / total
    later = torch.relu((step_losses[:, 1:] - sg[:, :-1]) / total[:, None]).sum(dim=1)
    return first + later


def harmonizer_loss(
    outputs: Sequence[Tensor],
    targets: Sequence[Tensor],
    mask: Tensor,
    stepwise: Tensor,
    final_weight: float = 10.0,
    floor: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Batch loss of the restore chain: dynamic per-step loss where per-step targets exist, else final only.

    Args:
        outputs: K restored composites (B, 3, H, W), one per filter step.
        targets: K per-step targets (B, 3, H, W); only the last is used for non-stepwise samples.
        mask: (B, 1, H, W) foreground alpha in [0, 1].
        stepwise: (B,) bool, True where ``targets`` are meaningful for every step.
        final_weight: weight of the final-output loss of the other samples.
        floor: lower bound of the dynamic normaliser (see :func:`dynamic_cascade_loss`).

    Returns:
        ``(loss, stepwise_part, final_part)``: the scalar to minimise and its two parts (batch means, each over
        the whole batch so they add up to ``loss``).

    Raises:
        ShapeError: the lists differ in length or are empty.

    Example:
        >>> x = torch.rand(2, 3, 4, 4); m = torch.ones(2, 1, 4, 4)
        >>> loss, stepwise_part, final_part = harmonizer_loss([x] * 6, [x] * 6, m, torch.tensor([True, False]))
        >>> round(float(stepwise_part), 3), float(final_part) < 0.02  # the dynamic loss is ~1 per sample
        (0.5, True)
    """
    if len(outputs) != len(targets) or not outputs:
        raise ShapeError(f"outputs and targets: expected equal non-empty lists, got {len(outputs)} and {len(targets)}")
    steps = torch.stack([masked_step_loss(p, g, mask) for p, g in zip(outputs, targets, strict=True)], dim=1)
    batch = steps.shape[0]
    stepwise = stepwise.to(steps.device)
    fine = torch.where(stepwise, dynamic_cascade_loss(steps, floor), torch.zeros_like(steps[:, 0]))
    coarse = torch.where(stepwise, torch.zeros_like(steps[:, 0]), final_weight * steps[:, -1])
    fine_mean, coarse_mean = fine.sum() / batch, coarse.sum() / batch
    return fine_mean + coarse_mean, fine_mean, coarse_mean


def foreground_mse(pred: Tensor, target: Tensor, mask: Tensor, min_area: float = 100.0) -> Tensor:
    """HDNet's foreground-normalised MSE: ``sum(m (p - g)^2) / max(C sum(m), min_area)``, batch mean.

    Args:
        pred: (B, C, H, W) prediction (any fixed scale; HDNet trains on [-1, 1] or [0, 1]).
        target: (B, C, H, W) ground truth, same scale.
        mask: (B, 1, H, W) foreground alpha in [0, 1].
        min_area: lower bound of the denominator (pixels x channels), so tiny masks do not explode.

    Returns:
        Scalar loss.

    Raises:
        ShapeError: the shapes do not agree.

    Example:
        >>> m = torch.zeros(1, 1, 20, 20); m[..., :10, :10] = 1
        >>> float(foreground_mse(torch.ones(1, 3, 20, 20), torch.zeros(1, 3, 20, 20), m))
        1.0
    """
    check_shape("target", target.shape, tuple(pred.shape))
    check_shape("mask", mask.shape, (pred.shape[0], 1, pred.shape[2], pred.shape[3]))
    num = (mask * (pred - target) ** 2).sum(dim=(1, 2, 3))
    den = (pred.shape[1] * mask.sum(dim=(1, 2, 3))).clamp_min(min_area)
    return (num / den).mean()


def patch_styles(features: Tensor, patch: int) -> Tensor:
    """Style of every non-overlapping ``patch`` x ``patch`` cell: channel mean and std, L2-normalised.

    Args:
        features: (B, C, h, w) feature map.
        patch: patch side in feature cells.

    Returns:
        (B, h // patch, w // patch, 2C) unit vectors.

    Example:
        >>> patch_styles(torch.rand(2, 4, 8, 8), 4).shape
        torch.Size([2, 2, 2, 8])
    """
    mean = F.avg_pool2d(features, patch)
    var = (F.avg_pool2d(features**2, patch) - mean**2).clamp_min(0)
    style = torch.cat([mean, torch.sqrt(var + 1e-6)], dim=1).permute(0, 2, 3, 1)
    return F.normalize(style, dim=-1)


def region_contrastive_loss(
    harmonized: Tensor,
    real: Tensor,
    composite: Tensor,
    mask: Tensor,
    generator: torch.Generator,
    num_patches: int = 8,
    patch: int = 4,
    temperature: float = 0.1,
) -> Tensor:
    """Region-wise contrastive loss on style features (see the module docstring).

    Args:
        harmonized: (B, C, h, w) features of the model's output.
        real: (B, C, h, w) features of the real image (positives: its background).
        composite: (B, C, h, w) features of the input composite (negatives: its foreground).
        mask: (B, 1, H, W) foreground alpha in [0, 1] at any resolution (pooled to the patch grid).
        generator: the random source of the patch sampling.
        num_patches: patches sampled per region and sample (fewer where the region has fewer).
        patch: patch side in feature cells.
        temperature: InfoNCE temperature.

    Returns:
        Scalar loss (0 with no gradient where no sample has both regions).

    Raises:
        ShapeError: the feature maps differ in shape.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> m = torch.zeros(1, 1, 16, 16); m[..., :, :8] = 1
        >>> bg = torch.rand(1, 8, 16, 16); fg = torch.rand(1, 8, 16, 16) * 3
        >>> matched = bg.clone(); matched[..., :8] = bg[..., 8:]  # foreground styled like the background
        >>> bool(region_contrastive_loss(matched, bg, fg, m, g) < region_contrastive_loss(fg, bg, fg, m, g))
        True
    """
    check_shape("real", real.shape, tuple(harmonized.shape))
    check_shape("composite", composite.shape, tuple(harmonized.shape))
    anchor_s = patch_styles(harmonized, patch)
    real_s = patch_styles(real, patch)
    comp_s = patch_styles(composite, patch)
    gh, gw = anchor_s.shape[1:3]
    cover = F.adaptive_avg_pool2d(mask.to(harmonized), (gh, gw))[:, 0]  # (B, gh, gw) foreground fraction
    losses = []
    for b in range(harmonized.shape[0]):
        fg_idx = torch.nonzero(cover[b].flatten() >= 0.9).flatten()
        bg_idx = torch.nonzero(cover[b].flatten() <= 0.1).flatten()
        if fg_idx.numel() == 0 or bg_idx.numel() == 0:
            continue
        fg_pick = fg_idx[torch.randperm(fg_idx.numel(), generator=generator)[:num_patches].to(fg_idx.device)]
        bg_pick = bg_idx[torch.randperm(bg_idx.numel(), generator=generator)[:num_patches].to(bg_idx.device)]
        anchors = anchor_s[b].reshape(gh * gw, -1)[fg_pick]  # (P, D)
        positive = F.normalize(real_s[b].reshape(gh * gw, -1)[bg_pick].mean(0), dim=-1)  # (D,)
        negatives = comp_s[b].reshape(gh * gw, -1)[fg_pick]  # (P, D)
        pos = anchors @ positive / temperature  # (P,)
        neg = anchors @ negatives.T / temperature  # (P, P)
        logits = torch.cat([pos[:, None], neg], dim=1)
        losses.append(-torch.log_softmax(logits, dim=1)[:, 0].mean())
    if not losses:
        return harmonized.sum() * 0.0
    return torch.stack(losses).mean()
