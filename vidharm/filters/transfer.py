"""Carry a low-resolution harmonization to full resolution by fitting colour transforms.

A harmonizer that only runs at 256x256 (HDNet) gives a pair (source = the composite at 256, target =
its harmonized output at 256). We fit a colour mapping source -> target over the foreground and apply it
to the full-resolution composite, so full-resolution detail is kept and only colours change.

Two models:

* **Global** (:func:`fit_color_transform` / :func:`apply_color_transform`): one polynomial colour map per
  frame. ``degree=1`` is affine, ``out = A @ [r, g, b, 1]`` (3x4 = 12 coefficients); ``degree=2`` adds the
  second-order terms, ``out = A @ [r, g, b, r*r, g*g, b*b, r*g, r*b, g*b, 1]`` (3x10 = 30 coefficients).
  The coefficient vector is the matrix ``A`` flattened row-major (output channel major), so
  ``coeffs.view(B, 3, F)[:, c, f]`` is the weight of feature ``f`` in output channel ``c``. The map is
  linear in the coefficients, so averaging coefficient vectors over time (EMA) averages the outputs.
* **Local grid** (:func:`fit_local_affine_grid` / :func:`apply_local_affine_grid`): one affine map per
  cell of a coarse grid, fitted with bilinear (tent) spatial weights and shrunk towards the global
  affine fit, then interpolated bilinearly per pixel and applied to that pixel's own full-resolution
  colour. Like the fast guided filter (He & Sun 2015) the coefficients are smooth and the edges come from
  the full-resolution image. With a third grid entry (``grid=(gh, gw, bins)``) the grid gains a
  luminance axis (a bilateral grid as in bilateral guided upsampling, Chen et al. 2016): cells are also
  split by the guide's luminance and sliced per pixel with the full-resolution guide, so two regions of
  a cell with different brightness get different maps (edge-aware).

Fits solve ridge-regularised weighted least squares in float64:
``min_A sum_i w_i |A phi_i - t_i|^2 + lam |A - A_prior|^2`` with ``A_prior`` the identity (global) or the
global fit (cells), so empty, tiny or flat foregrounds fall back to the prior instead of blowing up.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vidharm.errors import ShapeError, UsageError

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_LOCAL_RIDGE",
    "DEFAULT_RIDGE",
    "apply_color_transform",
    "apply_local_affine_grid",
    "color_transform_size",
    "fit_color_transform",
    "fit_local_affine_grid",
    "identity_color_transform",
]

# Ridge towards the prior per unit of foreground weight, in colour-variance units: feature directions whose
# foreground variance is well under this (std 1e-3, a quarter of an 8-bit level, i.e. quantisation noise)
# keep the prior instead of being fitted from noise; real colour variation (std >= 0.01) is fitted to < 1 %.
DEFAULT_RIDGE = 1e-6
# Extra ridge for grid cells, per pixel of cell area: keeps cells with little or flat foreground on the global fit.
DEFAULT_LOCAL_RIDGE = 1e-4
DEFAULT_GRID = (8, 8)
# Absolute ridge so an empty mask gives exactly the prior.
_EMPTY_RIDGE = 1e-6
# Rec. 709 luma weights for the bilateral grid's luminance axis.
_LUMA = (0.2126, 0.7152, 0.0722)
# Working-memory budget per strip when applying at full resolution.
_STRIP_BYTES = 64 * 1024 * 1024
_FEATURES = {1: 4, 2: 10}


def color_transform_size(degree: int) -> int:
    """Number of coefficients of a global colour transform: 12 for degree 1, 30 for degree 2.

    Args:
        degree: 1 (affine) or 2 (second-order polynomial).

    Returns:
        3 times the number of features.

    Raises:
        UsageError: degree is not 1 or 2.

    Example:
        >>> color_transform_size(1), color_transform_size(2)
        (12, 30)
    """
    return 3 * _num_features(degree)


def _num_features(degree: int) -> int:
    if degree not in _FEATURES:
        raise UsageError(f"colour transform degree must be 1 (affine) or 2 (quadratic), got {degree!r}")
    return _FEATURES[degree]


def identity_color_transform(
    degree: int = 1, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """Coefficients of the identity colour transform.

    Args:
        degree: 1 (12 coefficients) or 2 (30 coefficients).
        dtype: dtype of the result.
        device: device of the result.

    Returns:
        (K,) vector: the row-major 3xF matrix with ones on the r, g, b diagonal and zeros elsewhere.

    Raises:
        UsageError: degree is not 1 or 2.

    Example:
        >>> identity_color_transform(1).view(3, 4)
        tensor([[1., 0., 0., 0.],
                [0., 1., 0., 0.],
                [0., 0., 1., 0.]])
    """
    f = _num_features(degree)
    eye = torch.zeros(3, f, dtype=dtype, device=device)
    eye[0, 0] = eye[1, 1] = eye[2, 2] = 1.0
    return eye.reshape(-1)


def _features(image: Tensor, degree: int) -> Tensor:
    """(B, 3, ...) -> (B, F, ...): [r, g, b, (r^2, g^2, b^2, rg, rb, gb,) 1]."""
    r, g, b = image[:, 0], image[:, 1], image[:, 2]
    parts = [r, g, b]
    if degree == 2:
        parts += [r * r, g * g, b * b, r * g, r * b, g * b]
    parts.append(torch.ones_like(r))
    return torch.stack(parts, dim=1)


def _check_image(name: str, image: Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ShapeError(f"{name}: expected (B, 3, H, W) RGB, got {tuple(image.shape)}; pass NCHW float images")


def _check_fit_inputs(source: Tensor, target: Tensor, mask: Tensor) -> None:
    _check_image("source", source)
    if target.shape != source.shape:
        raise ShapeError(
            f"target: expected the source's shape {tuple(source.shape)}, got {tuple(target.shape)}; "
            "fit on the model's input and output at the same size"
        )
    b, _, h, w = source.shape
    if mask.dim() != 4 or tuple(mask.shape) != (b, 1, h, w):
        raise ShapeError(
            f"mask: expected (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(mask.shape)}; resize it to the source"
        )


def _solve_ridge(gram: Tensor, cross: Tensor, prior: Tensor, lam: Tensor) -> Tensor:
    """argmin_A tr(A G A^T) - 2 tr(A C^T) + lam |A - P|^2 for batched G (..., F, F), C and P (..., 3, F)."""
    f = gram.shape[-1]
    eye = torch.eye(f, dtype=gram.dtype, device=gram.device)
    lhs = gram + lam[..., None, None] * eye
    rhs = cross + lam[..., None, None] * prior
    return torch.linalg.solve(lhs, rhs.transpose(-1, -2)).transpose(-1, -2)


def fit_color_transform(
    source: Tensor, target: Tensor, mask: Tensor, degree: int = 1, ridge: float = DEFAULT_RIDGE
) -> Tensor:
    """Least-squares fit of a global colour map source -> target over the foreground.

    Args:
        source: (B, 3, h, w) RGB in [0, 1], what the harmonizer saw (e.g. the 256x256 composite).
        target: (B, 3, h, w) RGB in [0, 1], what it returned.
        mask: (B, 1, h, w) in [0, 1]; pixel weights of the fit (background pixels are ignored).
        degree: 1 (affine, 12 coefficients) or 2 (second-order polynomial, 30 coefficients).
        ridge: regularisation towards the identity per unit of foreground weight (>= 0).

    Returns:
        (B, K) coefficients, K = 12 or 30, row-major 3xF matrices (see the module docstring); the
        identity where the mask is empty.

    Raises:
        ShapeError: shapes do not match.
        UsageError: degree is not 1 or 2, or ridge < 0.

    Example:
        >>> src = torch.rand(1, 3, 16, 16)
        >>> coeffs = fit_color_transform(src, 0.5 * src + 0.25, torch.ones(1, 1, 16, 16))
        >>> coeffs.view(3, 4)[0].round(decimals=3)
        tensor([0.5000, 0.0000, 0.0000, 0.2500])
    """
    _check_fit_inputs(source, target, mask)
    f = _num_features(degree)
    if ridge < 0:
        raise UsageError(f"ridge must be >= 0, got {ridge}; use the default {DEFAULT_RIDGE}")
    b = source.shape[0]
    phi = _features(source.double(), degree).reshape(b, f, -1)
    t = target.double().reshape(b, 3, -1)
    w = mask.double().reshape(b, 1, -1)
    gram = (phi * w) @ phi.transpose(1, 2)
    cross = (t * w) @ phi.transpose(1, 2)
    lam = ridge * w.sum(dim=(1, 2)) + _EMPTY_RIDGE
    prior = identity_color_transform(degree, torch.float64, source.device).view(3, f).expand(b, 3, f)
    coeffs = _solve_ridge(gram, cross, prior, lam)
    return coeffs.reshape(b, 3 * f).to(source.dtype)


def _global_pixels(image: Tensor, matrix: Tensor, degree: int) -> Tensor:
    """image (B, 3, H, W), matrix (B, 3, F) -> (B, 3, H, W) unclamped, as 1x1 convolutions in row strips."""
    b, _, h, w = image.shape
    f = matrix.shape[-1]
    itemsize = torch.finfo(image.dtype).bits // 8
    strip = max(1, _STRIP_BYTES // max(1, (f + 3) * w * itemsize))
    out = torch.empty_like(image)
    for i in range(b):
        weight = matrix[i, :, : f - 1, None, None].contiguous()
        bias = matrix[i, :, f - 1].contiguous()
        for top in range(0, h, strip):
            rows = image[i : i + 1, :, top : top + strip]
            feats = rows if degree == 1 else _features(rows, 2)[:, :-1]
            out[i : i + 1, :, top : top + strip] = torch.nn.functional.conv2d(feats, weight, bias)
    return out


def _affine_pixels(image: Tensor, matrix: Tensor) -> Tensor:
    """image (B, 3, S, W), per-pixel affine matrix (B, 3, 4, S, W) -> (B, 3, S, W) unclamped."""
    out = matrix[:, :, 3].clone()
    for k in range(3):
        out = out + matrix[:, :, k] * image[:, k : k + 1]
    return out


def _blend(out: Tensor, image: Tensor, mask: Tensor | None) -> Tensor:
    out = out.clamp(0.0, 1.0)
    if mask is None:
        return out
    b, _, h, w = image.shape
    if mask.dim() != 4 or tuple(mask.shape) != (b, 1, h, w):
        raise ShapeError(
            f"mask: expected (B, 1, H, W) = {(b, 1, h, w)}, got {tuple(mask.shape)}; resize it to the image"
        )
    mask = mask.to(out.dtype)
    return out * mask + image * (1.0 - mask)


def apply_color_transform(image: Tensor, coeffs: Tensor, degree: int = 1, mask: Tensor | None = None) -> Tensor:
    """Apply a global colour transform to an image of any size.

    Args:
        image: (B, 3, H, W) RGB in [0, 1], typically the full-resolution composite.
        coeffs: (B, K) from :func:`fit_color_transform` (or smoothed over time), or (K,) for all frames.
        degree: 1 or 2; must match K (12 or 30).
        mask: optional (B, 1, H, W) in [0, 1]; if given the result is blended back over ``image`` with it.

    Returns:
        (B, 3, H, W) in [0, 1] (clamped).

    Raises:
        ShapeError: image or coefficient shapes are wrong.
        UsageError: degree is not 1 or 2.

    Example:
        >>> image = torch.rand(1, 3, 5, 7)
        >>> torch.equal(apply_color_transform(image, identity_color_transform(2), degree=2), image)
        True
    """
    _check_image("image", image)
    f = _num_features(degree)
    b = image.shape[0]
    if coeffs.dim() == 1:
        coeffs = coeffs.expand(b, -1)
    if coeffs.dim() != 2 or coeffs.shape[1] != 3 * f or coeffs.shape[0] not in (1, b):
        raise ShapeError(
            f"coeffs: expected (B, {3 * f}) for degree {degree} with B = {b}, got {tuple(coeffs.shape)}; "
            "fit with the same degree"
        )
    matrix = coeffs.to(image.dtype).reshape(-1, 3, f).expand(b, 3, f)
    return _blend(_global_pixels(image, matrix, degree), image, mask)


def _interp_matrix(n_out: int, n_cells: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(n_out, n_cells) bilinear weights of cell centres at (i + 0.5) / n_cells (align_corners=False, clamped)."""
    lo, hi, frac = _interp_rows(n_out, n_cells, device)
    weights = torch.zeros(n_out, n_cells, dtype=torch.float64, device=device)
    rows = torch.arange(n_out, device=device)
    weights[rows, lo] += 1.0 - frac
    weights[rows, hi] += frac
    return weights.to(dtype)


def _interp_rows(n_out: int, n_cells: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Per output row: the two cells and the weight of the second, the sparse form of :func:`_interp_matrix`."""
    pos = (torch.arange(n_out, dtype=torch.float64, device=device) + 0.5) * (n_cells / n_out) - 0.5
    pos = pos.clamp(0.0, n_cells - 1.0)
    lo = pos.floor().long().clamp(max=n_cells - 1)
    hi = (lo + 1).clamp(max=n_cells - 1)
    return lo, hi, pos - lo


def _luma(image: Tensor) -> Tensor:
    """(B, 3, H, W) or (B, 1, H, W) in [0, 1] -> (B, H, W) in [0, 1]."""
    if image.shape[1] == 1:
        return image[:, 0].clamp(0.0, 1.0)
    return (_LUMA[0] * image[:, 0] + _LUMA[1] * image[:, 1] + _LUMA[2] * image[:, 2]).clamp(0.0, 1.0)


def _bin_weights(luma: Tensor, bins: int) -> Tensor:
    """(B, H, W) luminance -> (B, bins, H, W) tent weights over bin centres k / (bins - 1), summing to 1."""
    centres = torch.arange(bins, dtype=luma.dtype, device=luma.device).view(1, bins, 1, 1)
    return (1.0 - (luma.unsqueeze(1) * (bins - 1) - centres).abs()).clamp(min=0.0)


def _parse_grid(grid: tuple[int, ...]) -> tuple[int, int, int]:
    if len(grid) not in (2, 3) or any(int(g) != g or g < 1 for g in grid):
        raise UsageError(f"grid: expected (gh, gw) or (gh, gw, bins) of positive integers, got {grid!r}; e.g. (8, 8)")
    bins = int(grid[2]) if len(grid) == 3 else 1
    if len(grid) == 3 and bins < 2:
        raise UsageError(f"grid: a luminance axis needs at least 2 bins, got {bins}; use (gh, gw) for none")
    return int(grid[0]), int(grid[1]), bins


def fit_local_affine_grid(
    source: Tensor,
    target: Tensor,
    mask: Tensor,
    grid: tuple[int, ...] = DEFAULT_GRID,
    ridge: float = DEFAULT_RIDGE,
    local_ridge: float = DEFAULT_LOCAL_RIDGE,
) -> Tensor:
    """Fit one affine colour map per grid cell (optionally per luminance bin), shrunk towards the global fit.

    Cell (i, j) uses the bilinear weights its centre ((i + 0.5) / gh, (j + 0.5) / gw) receives in
    :func:`apply_local_affine_grid`, times the mask; a luminance axis adds tent weights over ``bins``
    evenly spaced levels of the source's Rec. 709 luma. Each cell solves the weighted least squares with
    ridge ``local_ridge * cell_area + ridge * cell_weight`` towards the global affine fit (itself fitted
    with ``ridge`` towards the identity), so cells with no, little or flat foreground keep the global map.

    Args:
        source: (B, 3, h, w) RGB in [0, 1], what the harmonizer saw.
        target: (B, 3, h, w) RGB in [0, 1], what it returned.
        mask: (B, 1, h, w) in [0, 1]; pixel weights (background ignored).
        grid: (gh, gw) cells, or (gh, gw, bins) with a luminance axis of ``bins`` >= 2 levels.
        ridge: as in :func:`fit_color_transform` (>= 0).
        local_ridge: extra ridge per pixel of cell area towards the global fit (>= 0).

    Returns:
        (B, gh, gw, 12) or (B, gh, gw, bins, 12): row-major 3x4 affine matrices as in
        :func:`fit_color_transform` with degree 1.

    Raises:
        ShapeError: shapes do not match.
        UsageError: a bad grid or a negative ridge.

    Example:
        >>> src = torch.rand(1, 3, 32, 32)
        >>> cells = fit_local_affine_grid(src, src.flip(-1), torch.ones(1, 1, 32, 32), grid=(4, 4))
        >>> cells.shape
        torch.Size([1, 4, 4, 12])
    """
    _check_fit_inputs(source, target, mask)
    gh, gw, bins = _parse_grid(grid)
    if ridge < 0 or local_ridge < 0:
        raise UsageError(f"ridge and local_ridge must be >= 0, got {ridge} and {local_ridge}")
    b, _, h, w = source.shape
    dev = source.device
    global_fit = fit_color_transform(source.double(), target.double(), mask.double(), 1, ridge).view(b, 3, 4)

    phi = _features(source.double(), 1)  # (B, 4, h, w)
    wmask = mask.double()
    # Per-pixel sufficient statistics: phi phi^T (16) and t phi^T (12), weighted by the mask.
    stats = (
        torch.cat(
            [
                (phi.unsqueeze(2) * phi.unsqueeze(1)).reshape(b, 16, h, w),
                (target.double().unsqueeze(2) * phi.unsqueeze(1)).reshape(b, 12, h, w),
            ],
            dim=1,
        )
        * wmask
    )
    wy = _interp_matrix(h, gh, torch.float64, dev)
    wx = _interp_matrix(w, gw, torch.float64, dev)
    if bins == 1:
        cells = torch.einsum("yi,bcyx,xj->bijc", wy, stats, wx)  # (B, gh, gw, 28)
    else:
        level = _bin_weights(_luma(source.double()), bins)
        cells = torch.stack(
            [torch.einsum("yi,bcyx,xj->bijc", wy, stats * level[:, k : k + 1], wx) for k in range(bins)], dim=3
        )  # (B, gh, gw, bins, 28)
    gram = cells[..., :16].reshape(*cells.shape[:-1], 4, 4)
    cross = cells[..., 16:].reshape(*cells.shape[:-1], 3, 4)
    area = h * w / (gh * gw * bins)
    lam = local_ridge * area + ridge * gram[..., 3, 3] + _EMPTY_RIDGE
    prior = global_fit.view(b, *([1] * (cells.dim() - 2)), 3, 4).expand(*cells.shape[:-1], 3, 4)
    coeffs = _solve_ridge(gram, cross, prior, lam)
    return coeffs.reshape(*cells.shape[:-1], 12).to(source.dtype)


def apply_local_affine_grid(
    image: Tensor, grid_coeffs: Tensor, guide: Tensor | None = None, mask: Tensor | None = None
) -> Tensor:
    """Apply a grid of affine colour maps to a full-resolution image, interpolating coefficients per pixel.

    Coefficients are interpolated bilinearly between cell centres (the weights used to fit them; borders
    clamp), and for a bilateral grid linearly along the luminance axis at the guide pixel's luma, then
    each pixel's own colour is mapped. Works in strips of rows to bound memory at 4K.

    Args:
        image: (B, 3, H, W) RGB in [0, 1], any size (odd sizes fine).
        grid_coeffs: (B, gh, gw, 12) or (B, gh, gw, bins, 12) from :func:`fit_local_affine_grid`.
        guide: only for a bilateral grid: (B, 3, H, W) RGB or (B, 1, H, W) luma in [0, 1] whose
            luminance selects the bin; defaults to ``image``.
        mask: optional (B, 1, H, W) in [0, 1]; if given the result is blended back over ``image`` with it.

    Returns:
        (B, 3, H, W) in [0, 1] (clamped).

    Raises:
        ShapeError: shapes do not match.
        UsageError: a guide given with a grid that has no luminance axis.

    Example:
        >>> image = torch.rand(1, 3, 7, 9)
        >>> ident = identity_color_transform(1).expand(1, 2, 3, 12)
        >>> bool((apply_local_affine_grid(image, ident) - image).abs().max() < 1e-6)
        True
    """
    _check_image("image", image)
    b, _, h, w = image.shape
    bilateral = grid_coeffs.dim() == 5
    if grid_coeffs.dim() not in (4, 5) or grid_coeffs.shape[-1] != 12 or grid_coeffs.shape[0] not in (1, b):
        raise ShapeError(
            f"grid_coeffs: expected (B, gh, gw, 12) or (B, gh, gw, bins, 12) with B = {b}, "
            f"got {tuple(grid_coeffs.shape)}; pass fit_local_affine_grid's output"
        )
    if guide is not None and not bilateral:
        raise UsageError(
            "guide: only a bilateral grid (fitted with grid=(gh, gw, bins)) uses a guide; drop it or refit with bins"
        )
    gh, gw = grid_coeffs.shape[1], grid_coeffs.shape[2]
    bins = grid_coeffs.shape[3] if bilateral else 1
    if bilateral and bins < 2:
        raise ShapeError(f"grid_coeffs: a luminance axis needs at least 2 bins, got {bins}")
    dtype, dev = image.dtype, image.device
    coeffs = grid_coeffs.to(dtype).expand(b, *grid_coeffs.shape[1:])
    if not bilateral:
        coeffs = coeffs.unsqueeze(3)
    # (B, bins, 12, gh, gw) then interpolate along width once: (B, bins, 12, gh, W).
    coeffs = coeffs.permute(0, 3, 4, 1, 2)
    wx = _interp_matrix(w, gw, dtype, dev)
    along_w = torch.einsum("bnkij,xj->bnkix", coeffs, wx)
    lo, hi, frac = _interp_rows(h, gh, dev)
    frac = frac.to(dtype)
    if bilateral:
        if guide is None:
            guide = image
        if guide.dim() != 4 or guide.shape[1] not in (1, 3) or tuple(guide.shape[2:]) != (h, w):
            raise ShapeError(
                f"guide: expected (B, 3 or 1, {h}, {w}) like the image, got {tuple(guide.shape)}; "
                "pass the full-resolution frame"
            )
        guide_luma = _luma(guide.to(dtype)).expand(b, h, w)
    itemsize = torch.finfo(dtype).bits // 8
    strip = max(1, _STRIP_BYTES // max(1, b * (bins + 16) * w * itemsize))
    out_strips = []
    for top in range(0, h, strip):
        rows = slice(top, min(h, top + strip))
        image_rows = image[:, :, rows]
        if not bilateral:
            # Bilinear in y: lerp between the two cell rows around each pixel row; (B, 12, S, W).
            coef = torch.lerp(along_w[:, 0, :, lo[rows]], along_w[:, 0, :, hi[rows]], frac[rows, None])
            out_strips.append(_affine_pixels(image_rows, coef.reshape(b, 3, 4, -1, w)))
            continue
        # Bilateral: blend the per-bin results with the guide's tent weights; bins a strip never touches are skipped.
        level = _bin_weights(guide_luma[:, rows], bins)  # (B, bins, S, W)
        acc = torch.zeros_like(image_rows)
        for k in range(bins):
            weight_k = level[:, k : k + 1]
            if not bool(weight_k.any()):
                continue
            coef = torch.lerp(along_w[:, k, :, lo[rows]], along_w[:, k, :, hi[rows]], frac[rows, None])
            acc = acc + weight_k * _affine_pixels(image_rows, coef.reshape(b, 3, 4, -1, w))
        out_strips.append(acc)
    out = torch.cat(out_strips, dim=2) if len(out_strips) > 1 else out_strips[0]
    return _blend(out, image, mask)
