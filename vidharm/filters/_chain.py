"""The Harmonizer filter chain, its global statistics, and the final soft-alpha composite."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import Tensor

from vidharm.errors import InputError, ShapeError, check_shape
from vidharm.filters._adjust import (
    _brightness,
    _check_all_finite,
    _check_image,
    _contrast,
    _highlight,
    _saturation,
    _shadow,
    _temperature,
)

__all__ = [
    "FILTER_NAMES",
    "NUM_ARGS",
    "NUM_STATS",
    "AUGMENT_RANGES",
    "measure_filter_stats",
    "apply_filters",
    "apply_filters_unbounded",
    "carry_excess",
    "composite",
]

FILTER_NAMES: tuple[str, ...] = ("temperature", "brightness", "contrast", "saturation", "highlight", "shadow")
"""Filter order of the chain and of the columns of ``args`` (the regressor's ``headers.0..5``)."""

NUM_ARGS = len(FILTER_NAMES)
"""Number of filter arguments per image (columns of ``args``)."""

NUM_STATS = 4
"""Columns of the chain statistics: mean R, mean G, mean B of the input, and the contrast pivot."""

AUGMENT_RANGES: Mapping[str, float] = MappingProxyType(
    {"temperature": 0.3, "brightness": 0.5, "contrast": 0.5, "saturation": 0.6, "highlight": 0.4, "shadow": 0.4}
)
"""Half-width of the uniform range each filter's amount is drawn from by training augmentation (read-only)."""


def _check_args(args: Tensor, batch: int) -> None:
    if not isinstance(args, Tensor):
        raise ShapeError(f"args: expected a tensor of shape ({batch}, {NUM_ARGS}), got {type(args).__name__}")
    check_shape("args", args.shape, (batch, NUM_ARGS))
    _check_all_finite("args", args)


def _check_stats(stats: Tensor, batch: int) -> None:
    if not isinstance(stats, Tensor):
        raise ShapeError(f"stats: expected a tensor of shape ({batch}, {NUM_STATS}), got {type(stats).__name__}")
    check_shape("stats", stats.shape, (batch, NUM_STATS))
    _check_all_finite("stats", stats)


def _prepare(image: Tensor, args: Tensor) -> list[Tensor]:
    """Validate and return the clamped amounts as six (B, 1, 1, 1) tensors in the image's dtype."""
    _check_image(image)
    _check_args(args, image.shape[0])
    clamped = args.to(device=image.device, dtype=image.dtype).clamp(-1, 1)
    return [clamped[:, i].view(-1, 1, 1, 1) for i in range(NUM_ARGS)]


def _first_half(image: Tensor, amounts: list[Tensor], stats: Tensor | None) -> tuple[Tensor, Tensor]:
    """Temperature and brightness; returns the image after them and the (B, 3) means used."""
    means = image.mean(dim=(2, 3)) if stats is None else stats[:, :3]
    z = _temperature(image, amounts[0], means.view(-1, 3, 1, 1))
    return _brightness(z, amounts[1]), means


def measure_filter_stats(image: Tensor, args: Tensor) -> Tensor:
    """Measure the global statistics the filter chain uses, so they can be stored, smoothed or shared.

    The chain needs two global reductions: the per-channel means of its input (temperature) and the
    mean over all channels and pixels of the image after temperature and brightness (contrast pivot).
    Both include the background, as in the reference.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1], the whole frame.
        args: (B, 6) raw filter arguments in :data:`FILTER_NAMES` order; clamped to [-1, 1] here.

    Returns:
        (B, 4) ``[mean_r, mean_g, mean_b, contrast_pivot]`` in [0, 1], in the image's dtype.

    Raises:
        ShapeError: ``image`` is not (B, 3, H, W) or ``args`` is not (B, 6).
        InputError: ``image`` is not floating point, or ``args`` holds NaN or inf.

    Example:
        >>> image = torch.full((1, 3, 4, 4), 0.25)
        >>> measure_filter_stats(image, torch.tensor([[0.0, -0.5, 0.0, 0.0, 0.0, 0.0]]))
        tensor([[0.2500, 0.2500, 0.2500, 0.1250]])
    """
    amounts = _prepare(image, args)
    z, means = _first_half(image, amounts, None)
    return torch.cat([means, z.mean(dim=(1, 2, 3)).unsqueeze(1)], dim=1)


def apply_filters(image: Tensor, args: Tensor, stats: Tensor | None = None) -> Tensor:
    """Run the six filters in :data:`FILTER_NAMES` order on the whole image (background included).

    With ``stats=None`` the global statistics are measured on the fly, exactly as the reference does;
    passing ``measure_filter_stats(image, args)`` gives a bit-identical result, and passing other
    (smoothed, or measured on a downscaled frame) statistics renders with those instead.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1], any resolution.
        args: (B, 6) raw filter arguments; each is clamped to [-1, 1] before use.
        stats: (B, 4) ``[mean_r, mean_g, mean_b, contrast_pivot]`` in [0, 1], or None to measure.

    Returns:
        (B, 3, H, W) filtered image in [0, 1] (not yet blended with the mask; see :func:`composite`).

    Raises:
        ShapeError: ``image``, ``args`` or ``stats`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``args``/``stats`` holds NaN or inf.

    Example:
        >>> image = torch.rand(2, 3, 8, 8)
        >>> args = torch.tensor([[0.1, -0.2, 0.3, 1.5, 0.0, -0.1], [0.0] * 6])
        >>> out = apply_filters(image, args)
        >>> out.shape
        torch.Size([2, 3, 8, 8])
        >>> torch.equal(out, apply_filters(image, args, measure_filter_stats(image, args)))
        True
    """
    amounts = _prepare(image, args)
    if stats is not None:
        _check_stats(stats, image.shape[0])
        stats = stats.to(device=image.device, dtype=image.dtype)
    z, _ = _first_half(image, amounts, stats)
    pivot = z.mean(dim=(1, 2, 3)) if stats is None else stats[:, 3]
    z = _contrast(z, amounts[2], pivot.view(-1, 1, 1, 1))
    z = _saturation(z, amounts[3])
    z = _highlight(z, amounts[4])
    return _shadow(z, amounts[5])


def carry_excess(filtered: Tensor, image: Tensor) -> Tensor:
    """Add the part of ``image`` outside [0, 1] to ``filtered``: ``filtered + (image - clamp(image, 0, 1))``.

    The rule for values beyond the filters' domain (scene-linear highlights above 1, negative values after a
    gamut conversion): the filters see ``clamp(image, 0, 1)`` and the excess is carried over unchanged. The
    result is continuous in ``image``, equals ``filtered`` wherever ``image`` is in [0, 1], and is finite
    wherever both inputs are.

    Args:
        filtered: (B, 3, H, W) the filters' result on ``image.clamp(0, 1)``, in [0, 1].
        image: (B, 3, H, W) float RGB, any finite values.

    Returns:
        (B, 3, H, W) in the image's dtype, unbounded.

    Raises:
        ShapeError: the shapes differ.
        InputError: a tensor is not floating point.

    Example:
        >>> image = torch.tensor([-0.5, 0.5, 3.0]).view(1, 3, 1, 1)
        >>> carry_excess(torch.full((1, 3, 1, 1), 0.8), image).flatten()
        tensor([0.3000, 0.8000, 2.8000])
    """
    _check_image(image)
    _check_image(filtered, "filtered")
    check_shape("filtered", filtered.shape, tuple(image.shape))
    return filtered + (image - image.clamp(0, 1))


def apply_filters_unbounded(image: Tensor, args: Tensor, stats: Tensor | None = None) -> Tensor:
    """The six filters extended to values outside [0, 1]: ``apply_filters(clamp(x)) + (x - clamp(x))``.

    The filters' curves are defined on [0, 1] only (highlight and shadow raise ``1 - x`` and ``x`` to powers,
    undefined for negative bases), so values outside are split into the clamped part, which is filtered, and
    the excess, which is carried over unchanged (:func:`carry_excess`). The statistics (channel means, contrast
    pivot) are those of the clamped image. For an image in [0, 1] this is exactly :func:`apply_filters`; for
    any finite image and arguments the result is finite and continuous in the image.

    Args:
        image: (B, 3, H, W) float RGB, any finite values (e.g. an sRGB encoding of scene-linear light).
        args: (B, 6) raw filter arguments; each is clamped to [-1, 1] before use.
        stats: (B, 4) statistics of the clamped image (see :func:`measure_filter_stats`), or None to measure.

    Returns:
        (B, 3, H, W) filtered image; values outside [0, 1] where the excess of ``image`` carries them.

    Raises:
        ShapeError: ``image``, ``args`` or ``stats`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``args``/``stats`` holds NaN or inf.

    Example:
        >>> image = torch.tensor([0.25, 0.5, 2.0]).view(1, 3, 1, 1)
        >>> apply_filters_unbounded(image, torch.tensor([[0.0, -0.5, 0.0, 0.0, 0.0, 0.0]])).flatten()
        tensor([0.1250, 0.2500, 1.5000])
    """
    _check_image(image)
    clamped = image.clamp(0, 1)
    return carry_excess(apply_filters(clamped, args, stats), image)


def composite(filtered: Tensor, image: Tensor, mask: Tensor) -> Tensor:
    """Blend the filtered image over the original: ``filtered * mask + image * (1 - mask)``.

    Where ``mask == 0`` the result is ``image`` bit for bit (the background is never touched).

    Args:
        filtered: (B, 3, H, W) filtered image in [0, 1].
        image: (B, 3, H, W) original image in [0, 1].
        mask: (B, 1, H, W) foreground alpha in [0, 1] (soft values allowed).

    Returns:
        (B, 3, H, W) composite in [0, 1].

    Raises:
        ShapeError: the shapes do not agree.
        InputError: a tensor is not floating point.

    Example:
        >>> image = torch.zeros(1, 3, 1, 2)
        >>> mask = torch.tensor([[[[0.0, 0.5]]]])
        >>> composite(torch.ones(1, 3, 1, 2), image, mask)[0, 0]
        tensor([[0.0000, 0.5000]])
    """
    _check_image(image)
    _check_image(filtered, "filtered")
    check_shape("filtered", filtered.shape, tuple(image.shape))
    batch, _, height, width = image.shape
    if not isinstance(mask, Tensor):
        raise ShapeError(f"mask: expected a tensor of shape ({batch}, 1, {height}, {width}), got {type(mask)}")
    check_shape("mask", mask.shape, (batch, 1, height, width))
    if not mask.is_floating_point():
        raise InputError(f"mask: expected a floating tensor in [0, 1], got dtype {mask.dtype}; use mask.float() / 255")
    blended = filtered * mask + image * (1 - mask)
    return torch.where(mask == 0, image, blended)
