"""The six white-box filters of Harmonizer (Ke et al., ECCV 2022) as pure, differentiable functions.

Each public ``adjust_*`` validates its inputs and calls a private ``_*`` kernel; the chain in
:mod:`vidharm.filters._chain` validates once and calls the kernels directly. Every filter acts on
gamma-encoded sRGB in [0, 1], takes one amount per image and ends with ``clamp(0, 1)``, as the
reference filter modules do. Amounts are *not* clamped here: the chain clamps them to [-1, 1].
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidharm.errors import InputError, ShapeError, check_shape

__all__ = [
    "adjust_temperature",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_highlight",
    "adjust_shadow",
]

# The reference guards its divisions with 1e-6 and its power curves with 1e-9; both change numbers.
_EPS = 1e-6
_POW_EPS = 1e-9


def _check_image(image: Tensor, name: str = "image") -> None:
    if not isinstance(image, Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor of shape (B, 3, H, W), got {type(image).__name__}")
    check_shape(name, image.shape, (None, 3, None, None))
    if not image.is_floating_point():
        raise InputError(
            f"{name}: expected a floating tensor with values in [0, 1], got dtype {image.dtype}; "
            "convert with image.float() / 255"
        )


def _check_all_finite(name: str, values: Tensor) -> None:
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise InputError(
            f"{name}: value at index {index} is {values[index].item()}; every value must be a finite number "
            "(check the regressor output or the parameter file)"
        )


def _as_amount(amount: Tensor | float, image: Tensor, name: str = "amount") -> Tensor:
    """Check ``amount`` against ``image`` and return it as a (B, 1, 1, 1) tensor in the image's dtype."""
    batch = image.shape[0]
    if isinstance(amount, Tensor):
        check_shape(name, amount.shape, (batch,))
        if not (amount.is_floating_point() or amount.dtype in (torch.int32, torch.int64)):
            raise InputError(f"{name}: expected a float tensor of shape ({batch},), got dtype {amount.dtype}")
        _check_all_finite(name, amount)
        return amount.to(device=image.device, dtype=image.dtype).view(batch, 1, 1, 1)
    if isinstance(amount, (int, float)) and not isinstance(amount, bool):
        _check_all_finite(name, torch.tensor([float(amount)]))
        return torch.full((batch, 1, 1, 1), float(amount), device=image.device, dtype=image.dtype)
    raise InputError(f"{name}: expected a tensor of shape ({batch},) or a float, got {type(amount).__name__}")


def _temperature(x: Tensor, a: Tensor, mean_rgb: Tensor) -> Tensor:
    # mean_rgb (B, 3, 1, 1). Warming (a > 0) adds |a| to the blue mean and cooling adds it to the red mean;
    # green moves by |a|/2 for any a != 0. The gains re-centre each channel on the shifted grey level.
    gray = mean_rgb.mean(dim=1, keepdim=True)
    base = gray / (mean_rgb + _EPS)
    shift = torch.cat([torch.relu(-a), a.abs() / 2, torch.relu(a)], dim=1)
    shifted = mean_rgb + shift
    gray_shifted = shifted.mean(dim=1, keepdim=True)
    gain = gray_shifted / (shifted + _EPS) + 1 - base
    return (gain * x).clamp(0, 1)


def _brightness(x: Tensor, a: Tensor) -> Tensor:
    # The reference scales V in HSV; with H and S kept that is exactly a multiply of R, G and B.
    alpha = torch.where(a >= 0, 1 / (1 - a + _EPS), 1 + a)
    return (alpha * x).clamp(0, 1)


def _contrast(x: Tensor, a: Tensor, pivot: Tensor) -> Tensor:
    # pivot (B, 1, 1, 1). The floor() of the reference makes positive amounts piecewise constant (zero
    # gradient) and turns 0 < a < 1/255 into a slight contrast *reduction*; both are kept for parity.
    positive = 255 / (256 - torch.floor(255 * a)) - 1
    gain = torch.where(a > 0, positive, a)
    return (x + (x - pivot) * gain).clamp(0, 1)


def _saturation(x: Tensor, a: Tensor) -> Tensor:
    # Photoshop-style HSL saturation; a = 0 takes the a >= 0 branch, so it is not an exact identity.
    cmax = x.amax(dim=1, keepdim=True)
    cmin = x.amin(dim=1, keepdim=True)
    delta = cmax - cmin
    lightness = (cmax + cmin) / 2
    sat = torch.where(lightness < 0.5, delta / (cmax + cmin + _EPS), delta / (2 - cmax - cmin + _EPS))
    b = torch.where(a + sat > 1, sat, 1 - a)
    gain = 1 / (b + _EPS) - 1
    more = x + (x - lightness) * gain
    less = lightness + (x - lightness) * (1 + a)
    return torch.where(a >= 0, more, less).clamp(0, 1)


def _highlight(x: Tensor, a: Tensor) -> Tensor:
    return (1 - torch.pow(1 - x + _POW_EPS, 1 + a).clamp(0, 1)).clamp(0, 1)


def _shadow(x: Tensor, a: Tensor) -> Tensor:
    return torch.pow(x + _POW_EPS, 1 - a).clamp(0, 1)


def adjust_temperature(image: Tensor, amount: Tensor | float, mean_rgb: Tensor | None = None) -> Tensor:
    """Warm (amount > 0) or cool (amount < 0) the image with per-channel gains from its global means.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1] (gamma-encoded sRGB).
        amount: (B,) per-image amount, meaningful in [-1, 1]; not clamped here. A float applies to all.
        mean_rgb: (B, 3) per-channel means to use instead of measuring them on ``image`` (the whole
            image, background included, as the reference does); values in [0, 1].

    Returns:
        (B, 3, H, W) filtered image in [0, 1].

    Raises:
        ShapeError: ``image``, ``amount`` or ``mean_rgb`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``amount``/``mean_rgb`` holds NaN or inf.

    Example:
        >>> image = torch.full((1, 3, 2, 2), 0.5)
        >>> adjust_temperature(image, torch.tensor([0.2]))[0, :, 0, 0]
        tensor([0.6000, 0.5000, 0.4286])
    """
    _check_image(image)
    a = _as_amount(amount, image)
    if mean_rgb is None:
        means = image.mean(dim=(2, 3))
    else:
        if not isinstance(mean_rgb, Tensor):
            raise ShapeError(f"mean_rgb: expected a tensor of shape ({image.shape[0]}, 3), got {type(mean_rgb)}")
        check_shape("mean_rgb", mean_rgb.shape, (image.shape[0], 3))
        _check_all_finite("mean_rgb", mean_rgb)
        means = mean_rgb.to(device=image.device, dtype=image.dtype)
    return _temperature(image, a, means.view(-1, 3, 1, 1))


def adjust_brightness(image: Tensor, amount: Tensor | float) -> Tensor:
    """Scale R, G and B by ``1/(1 - a + 1e-6)`` for a >= 0 or ``1 + a`` for a < 0.

    The reference scales V in HSV through kornia; that equals this plain multiply to <= 4e-7 for every
    amount except a = 1 (gain 1e6), where kornia's HSV epsilon leaks through (see the parity README).

    Args:
        image: (B, 3, H, W) float RGB in [0, 1].
        amount: (B,) per-image amount, meaningful in [-1, 1]; not clamped. A float applies to all.

    Returns:
        (B, 3, H, W) filtered image in [0, 1].

    Raises:
        ShapeError: ``image`` or ``amount`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``amount`` holds NaN or inf.

    Example:
        >>> adjust_brightness(torch.full((1, 3, 1, 1), 0.5), torch.tensor([-0.5])).flatten()
        tensor([0.2500, 0.2500, 0.2500])
    """
    _check_image(image)
    return _brightness(image, _as_amount(amount, image))


def adjust_contrast(image: Tensor, amount: Tensor | float, pivot: Tensor | None = None) -> Tensor:
    """Stretch (a > 0) or flatten (a < 0) values around the image's global mean.

    For a > 0 the gain is ``255/(256 - floor(255 a)) - 1`` (reference quirk: no gradient, and a slight
    reduction for 0 < a < 1/255); for a <= 0 it is ``a``.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1].
        amount: (B,) per-image amount, meaningful in [-1, 1]; not clamped. A float applies to all.
        pivot: (B,) value to stretch around, in [0, 1]; None measures the mean over all channels and
            pixels of ``image``.

    Returns:
        (B, 3, H, W) filtered image in [0, 1].

    Raises:
        ShapeError: ``image``, ``amount`` or ``pivot`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``amount``/``pivot`` holds NaN or inf.

    Example:
        >>> image = torch.tensor([0.25, 0.75]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
        >>> adjust_contrast(image, torch.tensor([-0.5]))[0, 0]
        tensor([[0.3750, 0.6250]])
    """
    _check_image(image)
    a = _as_amount(amount, image)
    if pivot is None:
        centre = image.mean(dim=(1, 2, 3))
    else:
        centre = _as_amount(pivot, image, "pivot").view(-1)
    return _contrast(image, a, centre.view(-1, 1, 1, 1))


def adjust_saturation(image: Tensor, amount: Tensor | float) -> Tensor:
    """Raise (a > 0) or lower (a < 0) HSL saturation per pixel, Photoshop style.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1].
        amount: (B,) per-image amount, meaningful in [-1, 1] (-1 gives grey); not clamped. A float
            applies to all.

    Returns:
        (B, 3, H, W) filtered image in [0, 1].

    Raises:
        ShapeError: ``image`` or ``amount`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``amount`` holds NaN or inf.

    Example:
        >>> image = torch.tensor([0.6, 0.4, 0.4]).view(1, 3, 1, 1)
        >>> adjust_saturation(image, torch.tensor([-1.0])).flatten()
        tensor([0.5000, 0.5000, 0.5000])
    """
    _check_image(image)
    return _saturation(image, _as_amount(amount, image))


def adjust_highlight(image: Tensor, amount: Tensor | float) -> Tensor:
    """Brighten (a > 0) or darken (a < 0) highlights: ``1 - (1 - x + 1e-9)^(1 + a)``.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1].
        amount: (B,) per-image amount, meaningful in [-1, 1] (-1 gives black); not clamped. A float
            applies to all.

    Returns:
        (B, 3, H, W) filtered image in [0, 1].

    Raises:
        ShapeError: ``image`` or ``amount`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``amount`` holds NaN or inf.

    Example:
        >>> adjust_highlight(torch.full((1, 3, 1, 1), 0.5), torch.tensor([1.0])).flatten()
        tensor([0.7500, 0.7500, 0.7500])
    """
    _check_image(image)
    return _highlight(image, _as_amount(amount, image))


def adjust_shadow(image: Tensor, amount: Tensor | float) -> Tensor:
    """Lift (a > 0) or deepen (a < 0) shadows: ``(x + 1e-9)^(1 - a)``.

    Args:
        image: (B, 3, H, W) float RGB in [0, 1].
        amount: (B,) per-image amount, meaningful in [-1, 1] (+1 gives white); not clamped. A float
            applies to all.

    Returns:
        (B, 3, H, W) filtered image in [0, 1].

    Raises:
        ShapeError: ``image`` or ``amount`` has the wrong shape.
        InputError: ``image`` is not floating point, or ``amount`` holds NaN or inf.

    Example:
        >>> adjust_shadow(torch.full((1, 3, 1, 1), 0.25), torch.tensor([0.5])).flatten()
        tensor([0.5000, 0.5000, 0.5000])
    """
    _check_image(image)
    return _shadow(image, _as_amount(amount, image))
