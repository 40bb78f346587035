"""Synthetic composites from real photos: the training families and a separate evaluation family.

A composite is a real image whose foreground has been colour-shifted: ``p * mask + real * (1 - mask)`` with
``p`` a perturbed copy of the whole image. Training families (:func:`make_training_batch`):

* ``filters`` (Harmonizer paper): the six white-box filters applied to the whole image in *reverse* order
  (shadow, highlight, saturation, contrast, brightness, temperature) with arguments drawn uniformly from
  ``+-AUGMENT_RANGES``; every intermediate composite is kept as the per-step target of the restore chain.
* ``lut``: a random smooth 3D colour LUT (5x5x5 lattice: a random 3x3 colour matrix and offset near the
  identity plus per-vertex jitter, applied trilinearly). The filters cannot express it exactly.
* ``curves``: one random monotone tone curve (piecewise linear through 6 jittered points) on all channels.
* ``identity``: the real image itself (all filter arguments 0), so the model learns to leave harmonious
  images alone.

The evaluation family (:func:`perturb_for_eval`) is deliberately none of these: per-channel gain, then
per-channel gamma, then a hue rotation about the grey axis and a saturation scale around Rec. 601 luma.
(Any colour map can be written as some 3D LUT, so "different" means a different generator and parameter
distribution, not a disjoint function class.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from vidharm.errors import UsageError
from vidharm.filters import (
    AUGMENT_RANGES,
    FILTER_NAMES,
    NUM_ARGS,
    adjust_brightness,
    adjust_contrast,
    adjust_highlight,
    adjust_saturation,
    adjust_shadow,
    adjust_temperature,
    composite,
)

__all__ = [
    "FAMILIES",
    "FILTER_FUNCTIONS",
    "TrainingBatch",
    "sample_filter_args",
    "perturb_with_filters",
    "restore_steps",
    "inverse_filter_args",
    "apply_random_lut",
    "apply_random_curve",
    "perturb_for_eval",
    "make_training_batch",
]

FAMILIES: tuple[str, ...] = ("filters", "lut", "curves", "identity")
"""Training perturbation families, in the order of their codes in :attr:`TrainingBatch.family`."""

FILTER_FUNCTIONS: tuple[Callable[[Tensor, Tensor], Tensor], ...] = (
    adjust_temperature,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    adjust_highlight,
    adjust_shadow,
)
"""The filter functions in :data:`vidharm.filters.FILTER_NAMES` order."""

_RANGES = torch.tensor([AUGMENT_RANGES[name] for name in FILTER_NAMES])


@dataclass(frozen=True)
class TrainingBatch:
    """A batch of synthetic (or real) composites with everything the losses need.

    Attributes:
        real: (B, 3, H, W) ground truth in [0, 1].
        mask: (B, 1, H, W) foreground alpha in [0, 1].
        composite: (B, 3, H, W) network input in [0, 1].
        targets: six (B, 3, H, W) per-step targets of the restore chain (the last is ``real``).
        args: (B, 6) perturbation arguments (0 for non-filter samples).
        family: (B,) int64 index into :data:`FAMILIES` (-1 for a real composite).
    """

    real: Tensor
    mask: Tensor
    composite: Tensor
    targets: tuple[Tensor, ...]
    args: Tensor
    family: Tensor

    @property
    def stepwise(self) -> Tensor:
        """(B,) bool: samples with per-step targets (the filter family and unperturbed samples)."""
        return (self.family == FAMILIES.index("filters")) | (self.family == FAMILIES.index("identity"))


def sample_filter_args(batch: int, generator: torch.Generator, scale: float = 1.0) -> Tensor:
    """Draw perturbation arguments uniformly in ``+-scale * AUGMENT_RANGES`` (the paper's ranges).

    Args:
        batch: number of rows.
        generator: the random source.
        scale: multiplies the ranges (1 = the paper's).

    Returns:
        (B, 6) arguments in :data:`vidharm.filters.FILTER_NAMES` order.

    Example:
        >>> args = sample_filter_args(1000, torch.Generator().manual_seed(0))
        >>> bool((args.abs().max(0).values <= torch.tensor([0.3, 0.5, 0.5, 0.6, 0.4, 0.4])).all())
        True
    """
    u = torch.rand(batch, NUM_ARGS, generator=generator) * 2 - 1
    return u * _RANGES * scale


def perturb_with_filters(image: Tensor, mask: Tensor, args: Tensor) -> list[Tensor]:
    """Apply the six filters in reverse order to the whole image and composite each step over the mask.

    Args:
        image: (B, 3, H, W) real image in [0, 1].
        mask: (B, 1, H, W) foreground alpha in [0, 1].
        args: (B, 6) arguments in FILTER_NAMES order (clamped to [-1, 1]).

    Returns:
        Seven composites: ``[image, after shadow, after highlight, ..., after temperature]``; the last is the
        network input and, reversed, they are the targets of the restore chain.

    Example:
        >>> image, mask = torch.rand(2, 3, 8, 8), torch.ones(2, 1, 8, 8)
        >>> steps = perturb_with_filters(image, mask, torch.zeros(2, 6))
        >>> len(steps), torch.allclose(steps[-1], image, atol=1e-4)
        (7, True)
    """
    args = args.to(image).clamp(-1, 1)
    z = image
    out = [image]
    for i in reversed(range(NUM_ARGS)):
        z = FILTER_FUNCTIONS[i](z, args[:, i])
        out.append(composite(z, image, mask))
    return out


def restore_steps(image: Tensor, mask: Tensor, args: Tensor) -> list[Tensor]:
    """Run the restore chain in FILTER_NAMES order, keeping each step's composite (training needs them all).

    The last element equals ``composite(apply_filters(image, args), image, mask)``.

    Args:
        image: (B, 3, H, W) composite in [0, 1].
        mask: (B, 1, H, W) foreground alpha in [0, 1].
        args: (B, 6) raw predicted arguments (clamped to [-1, 1] here).

    Returns:
        Six (B, 3, H, W) composites, one after each filter.

    Example:
        >>> from vidharm.filters import apply_filters
        >>> image, mask = torch.rand(2, 3, 8, 8), torch.ones(2, 1, 8, 8)
        >>> args = torch.tensor([[0.1, -0.2, 0.3, 0.2, 0.1, -0.1]] * 2)
        >>> torch.allclose(restore_steps(image, mask, args)[-1], apply_filters(image, args), atol=1e-6)
        True
    """
    args = args.to(image).clamp(-1, 1)
    z = image
    out = []
    for i in range(NUM_ARGS):
        z = FILTER_FUNCTIONS[i](z, args[:, i])
        out.append(composite(z, image, mask))
    return out


def inverse_filter_args(args: Tensor) -> Tensor:
    """Arguments that undo each filter applied alone with ``args`` (exact where the filter is invertible).

    Exact (up to float error and clipping) for brightness (``-a``: the gains ``1 + a`` and ``1 / (1 + a)``
    cancel), saturation with ``a < 0`` (``-a``: desaturation keeps HSL lightness, and re-saturating with
    ``-a`` divides the chroma by ``1 + a``), highlight (``-a / (1 + a)``) and shadow (``-a / (1 - a)``), the
    last two because ``x -> x ** (1 - a)`` inverts to exponent ``1 / (1 - a)``. Temperature and contrast get
    ``-a``, which is only approximate (their statistics and the ``floor`` quirk change between the passes),
    as is saturation with ``a > 0`` (its gain depends on the per-pixel saturation).

    Args:
        args: (B, 6) arguments in FILTER_NAMES order, each in (-1, 1).

    Returns:
        (B, 6) inverse arguments.

    Example:
        >>> inverse_filter_args(torch.tensor([[0.1, -0.5, 0.2, -0.4, 0.5, 0.5]]))
        tensor([[-0.1000,  0.5000, -0.2000,  0.4000, -0.3333, -1.0000]])
    """
    inv = -args.clone()
    inv[:, 4] = -args[:, 4] / (1 + args[:, 4])
    inv[:, 5] = -args[:, 5] / (1 - args[:, 5])
    return inv


def apply_random_lut(image: Tensor, generator: torch.Generator, strength: float | Tensor = 1.0) -> Tensor:
    """Map colours through a random smooth 3D LUT near the identity (trilinear on a 5x5x5 lattice).

    Args:
        image: (B, 3, H, W) RGB in [0, 1].
        generator: the random source (one LUT per image).
        strength: scales the random departure from the identity; a float or a (B,) tensor (per image).

    Returns:
        (B, 3, H, W) mapped image in [0, 1].

    Example:
        >>> image = torch.rand(2, 3, 8, 8)
        >>> torch.allclose(apply_random_lut(image, torch.Generator().manual_seed(0), strength=0.0), image, atol=1e-5)
        True
    """
    batch, n = image.shape[0], 5
    k = torch.as_tensor(strength, dtype=torch.float32).expand(batch).reshape(batch, 1, 1)
    axis = torch.linspace(0, 1, n)
    b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
    grid = torch.stack([r, g, b], dim=0).reshape(3, -1)  # (3, n^3) lattice colours, x = R fastest
    matrix = torch.eye(3) + 0.12 * k * torch.randn(batch, 3, 3, generator=generator)
    offset = 0.05 * k * torch.randn(batch, 3, 1, generator=generator)
    jitter = 0.04 * k * torch.randn(batch, 3, grid.shape[1], generator=generator)
    centre = 0.5
    values = matrix @ (grid - centre) + centre + offset + jitter
    lut = values.clamp(0, 1).reshape(batch, 3, n, n, n).to(image)
    coords = (image.permute(0, 2, 3, 1) * 2 - 1).unsqueeze(1)  # (B, 1, H, W, 3), (x, y, z) = (R, G, B)
    out = F.grid_sample(lut, coords, mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0].clamp(0, 1)


def apply_random_curve(image: Tensor, generator: torch.Generator, strength: float | Tensor = 1.0) -> Tensor:
    """Apply one random monotone tone curve (piecewise linear, 6 points) to all channels alike.

    Args:
        image: (B, 3, H, W) RGB in [0, 1].
        generator: the random source (one curve per image).
        strength: scales the random departure from the identity; a float or a (B,) tensor (per image).

    Returns:
        (B, 3, H, W) image in [0, 1].

    Example:
        >>> image = torch.rand(1, 3, 8, 8)
        >>> torch.allclose(apply_random_curve(image, torch.Generator().manual_seed(0), 0.0), image, atol=1e-6)
        True
    """
    batch, knots = image.shape[0], 6
    x = torch.linspace(0, 1, knots)
    k = torch.as_tensor(strength, dtype=torch.float32).expand(batch).reshape(batch, 1)
    y = x + 0.1 * k * torch.randn(batch, knots, generator=generator)
    y = torch.sort(y.clamp(0, 1), dim=1).values.to(image)  # monotone
    pos = image.clamp(0, 1) * (knots - 1)
    idx = pos.floor().clamp(max=knots - 2).long()
    frac = pos - idx
    flat_idx = idx.flatten(1)
    y0 = torch.gather(y, 1, flat_idx).view_as(image)
    y1 = torch.gather(y, 1, flat_idx + 1).view_as(image)
    return (y0 + (y1 - y0) * frac).clamp(0, 1)


_LUMA601 = (0.299, 0.587, 0.114)


def perturb_for_eval(image: Tensor, generator: torch.Generator) -> Tensor:
    """The evaluation family: per-channel gain, per-channel gamma, hue rotation and saturation scale.

    Parameters per image: gain in [0.8, 1.2] and gamma in [0.75, 1.35] per channel, a hue rotation about the
    grey axis in [-15, 15] degrees, a saturation scale in [0.6, 1.4] around Rec. 601 luma. None of the
    training families draws from this generator.

    Args:
        image: (B, 3, H, W) RGB in [0, 1].
        generator: the random source.

    Returns:
        (B, 3, H, W) perturbed image in [0, 1] (the whole image; composite it over the mask).

    Example:
        >>> out = perturb_for_eval(torch.rand(2, 3, 8, 8), torch.Generator().manual_seed(0))
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([2, 3, 8, 8]), True, True)
    """
    batch = image.shape[0]

    def uniform(lo: float, hi: float, *shape: int) -> Tensor:
        return (lo + (hi - lo) * torch.rand(batch, *shape, generator=generator)).to(image)

    gain = uniform(0.8, 1.2, 3, 1, 1)
    gamma = uniform(0.75, 1.35, 3, 1, 1)
    angle = uniform(-math.pi / 12, math.pi / 12)
    sat = uniform(0.6, 1.4, 1, 1, 1)
    x = (image * gain).clamp(0, 1) ** gamma
    # Rodrigues rotation about the unit grey axis (1, 1, 1) / sqrt(3).
    k = torch.full((3,), 1 / math.sqrt(3)).to(image)
    cross = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]]).to(image) / math.sqrt(3)
    cos, sin = angle.cos().view(-1, 1, 1), angle.sin().view(-1, 1, 1)
    rot = cos * torch.eye(3).to(image) + sin * cross + (1 - cos) * torch.outer(k, k)
    x = torch.einsum("bij,bjhw->bihw", rot, x)
    luma = (x * torch.tensor(_LUMA601).to(image).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return (luma + (x - luma) * sat).clamp(0, 1)


def make_training_batch(
    real: Tensor,
    mask: Tensor,
    generator: torch.Generator,
    probabilities: tuple[float, float, float, float] = (0.55, 0.2, 0.1, 0.15),
    filter_scale: float = 1.0,
    real_composite: Tensor | None = None,
    p_real_composite: float = 0.0,
    random_magnitude: bool = False,
) -> TrainingBatch:
    """Make composites for a batch of real images, drawing a family per sample.

    Args:
        real: (B, 3, H, W) real images in [0, 1].
        mask: (B, 1, H, W) foreground alphas in [0, 1].
        generator: the random source.
        probabilities: weights of the families ``filters, lut, curves, identity`` (normalised here).
        filter_scale: multiplies the filter argument ranges.
        real_composite: (B, 3, H, W) real composites (iHarmony4), or None.
        p_real_composite: probability of using the real composite instead of a synthetic one.
        random_magnitude: scale each sample's perturbation by a factor drawn from U(0, 1) (filter arguments,
            LUT and curve strength), so mild mismatches are as common as strong ones; off = the paper's
            uniform arguments.

    Returns:
        The :class:`TrainingBatch`.

    Raises:
        UsageError: the probabilities are negative or sum to 0.

    Example:
        >>> real, mask = torch.rand(4, 3, 16, 16), torch.ones(4, 1, 16, 16)
        >>> batch = make_training_batch(real, mask, torch.Generator().manual_seed(0))
        >>> batch.composite.shape, len(batch.targets), batch.family.shape
        (torch.Size([4, 3, 16, 16]), 6, torch.Size([4]))
    """
    probs = torch.tensor(probabilities, dtype=torch.float64)
    if (probs < 0).any() or probs.sum() <= 0:
        raise UsageError(f"probabilities: expected 4 non-negative weights with a positive sum, got {probabilities}")
    batch = real.shape[0]
    family = torch.multinomial(probs / probs.sum(), batch, replacement=True, generator=generator)
    args = sample_filter_args(batch, generator, filter_scale)
    magnitude = torch.rand(batch, generator=generator) if random_magnitude else torch.ones(batch)
    args = torch.where((family == 0)[:, None], args * magnitude[:, None], torch.zeros_like(args))
    steps = perturb_with_filters(real, mask, args)
    comp = steps[-1]
    lut = composite(apply_random_lut(real, generator, magnitude), real, mask)
    curve = composite(apply_random_curve(real, generator, magnitude), real, mask)
    comp = torch.where((family == 1).view(-1, 1, 1, 1), lut, comp)
    comp = torch.where((family == 2).view(-1, 1, 1, 1), curve, comp)
    comp = torch.where((family == 3).view(-1, 1, 1, 1), real, comp)
    if real_composite is not None and p_real_composite > 0:
        use_real = torch.rand(batch, generator=generator) < p_real_composite
        comp = torch.where(use_real.view(-1, 1, 1, 1), real_composite.to(comp), comp)
        family = torch.where(use_real, torch.full_like(family, -1), family)
    # Per-step targets: restore step i undoes filter i, so its target is the composite before filter i was
    # applied in the perturbation: steps[5], steps[4], ..., steps[0] = real.
    targets = tuple(steps[NUM_ARGS - 1 - i] for i in range(NUM_ARGS))
    return TrainingBatch(real=real, mask=mask, composite=comp, targets=targets, args=args, family=family)
