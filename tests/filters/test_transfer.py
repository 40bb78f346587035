"""Tests for vidharm.filters.transfer: fitting colour maps at 256^2 and applying them at full resolution."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidharm.errors import ShapeError, UsageError
from vidharm.filters import transfer
from vidharm.filters.transfer import (
    apply_color_transform,
    apply_local_affine_grid,
    color_transform_size,
    fit_color_transform,
    fit_local_affine_grid,
    identity_color_transform,
)

FULL = (517, 389)  # odd full-resolution frame
FIT = (256, 256)
A_LEFT = torch.tensor([[0.8, 0.1, 0.0, 0.05], [0.05, 0.7, 0.1, 0.1], [0.0, -0.1, 0.9, 0.12]])
A_RIGHT = torch.tensor([[0.6, 0.0, 0.2, 0.2], [0.0, 0.9, 0.0, 0.02], [0.1, 0.1, 0.6, 0.0]])


def _frame(
    batch: int = 2, size: tuple[int, int] = FULL, seed: int = 0, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Smooth full-range colour regions plus fine texture, in [0.02, 0.98]."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    coarse = torch.rand(batch, 3, h // 24 + 2, w // 24 + 2, generator=gen)
    smooth = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    texture = torch.rand(batch, 3, h, w, generator=gen)
    return (0.75 * smooth + 0.25 * texture).clamp(0.02, 0.98).to(device)


def _down(image: torch.Tensor) -> torch.Tensor:
    return F.interpolate(image, size=FIT, mode="bilinear", align_corners=False, antialias=True)


def _affine(image: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    matrix = matrix.to(image)
    return torch.einsum("cf,bfhw->bchw", matrix[:, :3], image) + matrix[:, 3].view(1, 3, 1, 1)


def _quadratic(image: torch.Tensor) -> torch.Tensor:
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    return torch.cat(
        [
            0.1 + 0.5 * r + 0.3 * r * r - 0.1 * g * b,
            0.1 + 0.6 * g + 0.2 * r * b,
            0.05 + 0.8 * b - 0.2 * b * b + 0.1 * r * g,
        ],
        dim=1,
    )


def _fit_mask(batch: int = 2) -> torch.Tensor:
    mask = torch.zeros(batch, 1, *FIT)
    mask[:, :, 40:220, 30:230] = 1
    return mask


def _rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt())


def test_identity_coefficients_layout() -> None:
    assert color_transform_size(1) == 12 and color_transform_size(2) == 30
    eye2 = identity_color_transform(2).view(3, 10)
    assert torch.equal(eye2[:, :3], torch.eye(3)) and eye2[:, 3:].abs().sum() == 0
    assert identity_color_transform(1, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("degree", [1, 2])
def test_identity_transform_leaves_image(degree: int, device: torch.device) -> None:
    image = _frame(1, (37, 53), device=device)
    out = apply_color_transform(image, identity_color_transform(degree, device=device), degree)
    torch.testing.assert_close(out, image, atol=1e-7, rtol=0)


@pytest.mark.parametrize("degree", [1, 2])
def test_fit_is_identity_when_target_equals_source(degree: int) -> None:
    source = _down(_frame())
    coeffs = fit_color_transform(source, source, _fit_mask(), degree)
    assert coeffs.shape == (2, color_transform_size(degree))
    torch.testing.assert_close(coeffs, identity_color_transform(degree).expand(2, -1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("grid", [(8, 8), (6, 5, 4)])
def test_grid_fit_is_identity_when_target_equals_source(grid: tuple[int, ...]) -> None:
    source = _down(_frame())
    cells = fit_local_affine_grid(source, source, _fit_mask(), grid=grid)
    assert cells.shape == (2, *grid, 12)
    torch.testing.assert_close(cells, identity_color_transform(1).expand_as(cells), atol=1e-5, rtol=0)


def test_affine_change_is_reproduced_at_full_resolution() -> None:
    full = _frame()
    target_full = _affine(full, A_LEFT)
    # Linear resampling commutes with an affine colour map, so the 256^2 pair is exactly related too.
    source, target, mask = _down(full), _down(target_full), _fit_mask()
    global_out = apply_color_transform(full, fit_color_transform(source, target, mask), 1)
    assert (global_out - target_full).abs().max() < 1e-4
    for grid in [(8, 8), (8, 8, 4)]:
        local_out = apply_local_affine_grid(full, fit_local_affine_grid(source, target, mask, grid=grid))
        assert (local_out - target_full).abs().max() < 1e-4, grid


def test_quadratic_change_is_reproduced_at_full_resolution() -> None:
    full = _frame()
    source = _down(full)
    coeffs = fit_color_transform(source, _quadratic(source), _fit_mask(), degree=2)
    out = apply_color_transform(full, coeffs, degree=2)
    # The default ridge (towards the identity) costs ~1e-4 on the weakly excited quadratic terms; without it
    # the fit is exact.
    assert (out - _quadratic(full)).abs().max() < 3e-4
    exact = fit_color_transform(source, _quadratic(source), _fit_mask(), degree=2, ridge=0.0)
    assert (apply_color_transform(full, exact, degree=2) - _quadratic(full)).abs().max() < 1e-5
    # An affine map cannot follow it: the test can tell the two apart.
    affine = apply_color_transform(full, fit_color_transform(source, _quadratic(source), _fit_mask(), 1), 1)
    assert (affine - _quadratic(full)).abs().max() > 1e-2


def test_local_grid_follows_a_spatially_varying_change() -> None:
    full = _frame()
    left = torch.zeros(1, 1, 1, FULL[1])
    left[..., : FULL[1] // 2] = 1
    target_full = _affine(full, A_LEFT) * left + _affine(full, A_RIGHT) * (1 - left)
    source, target, mask = _down(full), _down(target_full), torch.ones(2, 1, *FIT)
    global_err = _rmse(apply_color_transform(full, fit_color_transform(source, target, mask)), target_full)
    local_err = _rmse(apply_local_affine_grid(full, fit_local_affine_grid(source, target, mask)), target_full)
    assert local_err * 3 < global_err, (local_err, global_err)
    # Away from the boundary column the local maps are the true ones.
    far = slice(0, FULL[1] // 2 - 80)
    assert (apply_local_affine_grid(full, fit_local_affine_grid(source, target, mask)) - target_full)[
        ..., far
    ].abs().max() < 2e-3


def test_bilateral_grid_follows_a_brightness_dependent_change() -> None:
    full = _frame()
    luma = (0.2126 * full[:, 0:1] + 0.7152 * full[:, 1:2] + 0.0722 * full[:, 2:3]).clamp(0, 1)
    # Dark pixels get one map, bright pixels another, blended linearly in luma, everywhere in the frame.
    target_full = _affine(full, A_LEFT) * (1 - luma) + _affine(full, A_RIGHT) * luma
    source, target, mask = _down(full), _down(target_full), torch.ones(2, 1, *FIT)
    plain = _rmse(apply_local_affine_grid(full, fit_local_affine_grid(source, target, mask, grid=(4, 4))), target_full)
    bilateral = _rmse(
        apply_local_affine_grid(full, fit_local_affine_grid(source, target, mask, grid=(4, 4, 6))), target_full
    )
    assert bilateral * 2 < plain, (bilateral, plain)


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (3, 250), (257, 2)])
def test_apply_works_on_odd_frame_sizes(size: tuple[int, int]) -> None:
    image = _frame(2, size)
    coeffs = torch.randn(2, 12) * 0.05 + identity_color_transform(1)
    assert apply_color_transform(image, coeffs).shape == image.shape
    for cells in [torch.rand(2, 8, 8, 12), torch.rand(2, 3, 5, 4, 12)]:
        out = apply_local_affine_grid(image, cells)
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1


def test_grid_interpolation_is_bilinear_between_cell_centres() -> None:
    # Zero image: the output is the interpolated offset column, which must match F.interpolate.
    cells = torch.zeros(1, 5, 7, 12)
    offsets = torch.rand(1, 3, 5, 7)
    cells.view(1, 5, 7, 3, 4)[..., 3] = offsets.permute(0, 2, 3, 1)
    out = apply_local_affine_grid(torch.zeros(1, 3, 61, 43), cells)
    expected = F.interpolate(offsets, size=(61, 43), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_strips_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    image = _frame(1, (53, 37))
    cells = torch.rand(1, 4, 4, 3, 12) * 0.5
    coeffs = torch.rand(1, 30) * 0.3
    whole = apply_local_affine_grid(image, cells), apply_color_transform(image, coeffs, 2)
    monkeypatch.setattr(transfer, "_STRIP_BYTES", 1)  # one row per strip
    strips = apply_local_affine_grid(image, cells), apply_color_transform(image, coeffs, 2)
    torch.testing.assert_close(strips[0], whole[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(strips[1], whole[1], atol=1e-6, rtol=0)


def test_fit_ignores_the_background() -> None:
    full = _frame()
    source = _down(full)
    target = _affine(source, A_LEFT)
    mask = _fit_mask()
    garbage = torch.rand_like(target)
    spoiled = target * mask + garbage * (1 - mask)
    torch.testing.assert_close(
        fit_color_transform(source, spoiled, mask), fit_color_transform(source, target, mask), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        fit_local_affine_grid(source, spoiled, mask), fit_local_affine_grid(source, target, mask), atol=1e-5, rtol=0
    )
    # Without the mask the garbage would matter: the check above can fail.
    ones = torch.ones_like(mask)
    assert (fit_color_transform(source, spoiled, ones) - fit_color_transform(source, target, ones)).abs().max() > 1e-2


def test_empty_mask_gives_identity() -> None:
    source = _down(_frame())
    target = torch.rand_like(source)
    empty = torch.zeros(2, 1, *FIT)
    torch.testing.assert_close(
        fit_color_transform(source, target, empty, 2), identity_color_transform(2).expand(2, -1), atol=1e-6, rtol=0
    )
    cells = fit_local_affine_grid(source, target, empty)
    torch.testing.assert_close(cells, identity_color_transform(1).expand_as(cells), atol=1e-6, rtol=0)


def test_flat_foreground_stays_sane() -> None:
    source = torch.full((1, 3, 64, 64), 0.4)
    source[:, 1] = 0.6
    target = source * 0.5 + 0.1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:20, 10:20] = 1
    coeffs = fit_color_transform(source, target, mask, 2)
    # The one colour seen maps onto its target, and the map stays near the identity elsewhere.
    torch.testing.assert_close(
        apply_color_transform(source[..., :1, :1], coeffs, 2), target[..., :1, :1], atol=1e-3, rtol=0
    )
    deviation = (coeffs - identity_color_transform(2)).abs().max()
    assert deviation < 0.5, deviation


def test_fits_are_per_frame() -> None:
    full = _frame()
    source = _down(full)
    target = torch.cat([_affine(source[:1], A_LEFT), _affine(source[1:], A_RIGHT)])
    both = fit_color_transform(source, target, _fit_mask())
    first = fit_color_transform(source[:1], target[:1], _fit_mask(1))
    torch.testing.assert_close(both[:1], first)
    torch.testing.assert_close(both[1].view(3, 4), A_RIGHT, atol=1e-4, rtol=0)


def test_apply_with_mask_keeps_background(device: torch.device) -> None:
    image = _frame(1, (40, 30), device=device)
    mask = torch.zeros(1, 1, 40, 30, device=device)
    mask[..., 5:25, 5:20] = 1
    coeffs = A_LEFT.reshape(1, 12).to(device)
    out = apply_color_transform(image, coeffs, 1, mask=mask)
    assert torch.equal(out[..., mask[0, 0] == 0], image[..., mask[0, 0] == 0])
    assert (out - image)[..., mask[0, 0] == 1].abs().max() > 1e-2
    cells = A_LEFT.reshape(1, 1, 1, 12).expand(1, 3, 3, 12).to(device)
    out_grid = apply_local_affine_grid(image, cells, mask=mask)
    assert torch.equal(out_grid[..., mask[0, 0] == 0], image[..., mask[0, 0] == 0])
    torch.testing.assert_close(out_grid, out, atol=1e-6, rtol=0)


def test_output_is_clamped() -> None:
    image = _frame(1, (20, 20))
    out = apply_color_transform(image, (identity_color_transform(1) * 3).unsqueeze(0))
    assert out.min() >= 0 and out.max() == 1


def test_bad_arguments() -> None:
    image = torch.rand(1, 3, 16, 16)
    mask = torch.ones(1, 1, 16, 16)
    with pytest.raises(UsageError, match="degree"):
        fit_color_transform(image, image, mask, degree=3)
    with pytest.raises(ShapeError, match=r"coeffs: expected \(B, 30\)"):
        apply_color_transform(image, torch.zeros(1, 12), degree=2)
    with pytest.raises(ShapeError, match="target"):
        fit_color_transform(image, image[..., :8], mask)
    with pytest.raises(ShapeError, match="mask"):
        fit_color_transform(image, image, mask[..., :8])
    with pytest.raises(ShapeError, match="source"):
        fit_color_transform(image[:, :2], image[:, :2], mask)
    with pytest.raises(UsageError, match="grid"):
        fit_local_affine_grid(image, image, mask, grid=(0, 4))
    with pytest.raises(UsageError, match="at least 2 bins"):
        fit_local_affine_grid(image, image, mask, grid=(4, 4, 1))
    with pytest.raises(UsageError, match="ridge"):
        fit_color_transform(image, image, mask, ridge=-1.0)
    with pytest.raises(UsageError, match="guide"):
        apply_local_affine_grid(image, torch.zeros(1, 2, 2, 12), guide=image)
    with pytest.raises(ShapeError, match="grid_coeffs"):
        apply_local_affine_grid(image, torch.zeros(1, 2, 2, 9))
    with pytest.raises(ShapeError, match="guide"):
        apply_local_affine_grid(image, torch.zeros(1, 2, 2, 3, 12), guide=image[..., :8])


def test_guide_selects_the_bin() -> None:
    image = torch.full((1, 3, 8, 8), 0.5)
    cells = identity_color_transform(1).repeat(1, 1, 1, 2, 1)  # (1, 1, 1, 2, 12): bins at luma 0 and 1
    cells.view(1, 1, 1, 2, 3, 4)[..., 1, :, 3] = 0.2  # the bright bin adds 0.2
    dark = apply_local_affine_grid(image, cells, guide=torch.zeros(1, 1, 8, 8))
    bright = apply_local_affine_grid(image, cells, guide=torch.ones(1, 1, 8, 8))
    torch.testing.assert_close(dark, image)
    torch.testing.assert_close(bright, image + 0.2)


def test_gradcheck_float64() -> None:
    gen = torch.Generator().manual_seed(1)
    source = torch.rand(1, 3, 6, 6, generator=gen, dtype=torch.float64) * 0.6 + 0.2
    target = (source * 0.9 + 0.05).requires_grad_(True)
    mask = torch.ones(1, 1, 6, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: fit_color_transform(source, t, mask, 2), (target,))
    assert torch.autograd.gradcheck(lambda t: fit_local_affine_grid(source, t, mask, grid=(2, 2)), (target,))
    coeffs = (identity_color_transform(2, dtype=torch.float64) * 0.9).unsqueeze(0).requires_grad_(True)
    image = source.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c, x: apply_color_transform(x, c, 2), (coeffs, image))
    cells = (identity_color_transform(1, dtype=torch.float64) * 0.9).expand(1, 2, 3, 12).clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c, x: apply_local_affine_grid(x, c), (cells, image))
