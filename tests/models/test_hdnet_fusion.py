"""Tests for HDNet's optional external style fusion (vidharm/models/hdnet: StyleFusion, HDNet(style_fusion=...)).

Fusion off must be the reference network key for key and output for output; fusion on adds its keys after the
reference's, starts as the identity, gets gradients from the first step and never touches mask-0 positions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidharm.errors import CheckpointError, UsageError
from vidharm.models import create_model, get_model_config, list_models, load_checkpoint
from vidharm.models.hdnet import (
    DEFAULT_FUSION_STAGES,
    FUSION_STAGES,
    FUSION_VARIANTS,
    HDNet,
    StyleFusion,
    checkpoint_filter_fn,
)

PARITY_ATOL = 2e-5  # parity/README.md: HDNet net_output / harmonized
NUM_REFERENCE_KEYS = 65
FUSION_KEYS = [f"model_layer{s}fusion.proj.{p}" for s in DEFAULT_FUSION_STAGES for p in ("weight", "bias")]


def _mask(b: int, h: int, w: int) -> torch.Tensor:
    mask = torch.zeros(b, 1, h, w)
    mask[:, :, h // 4 : 3 * h // 4, w // 5 : 3 * w // 5] = 1
    return mask


def _randomise_fusion(model: HDNet, std: float = 0.3, seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "fusion." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)


# --- fusion off is the reference network ------------------------------------------------------------------------


def test_fusion_off_keeps_the_reference_key_layout() -> None:
    plain, explicit = HDNet(ngf=8), HDNet(ngf=8, style_fusion=())
    assert list(plain.state_dict()) == list(explicit.state_dict())
    assert len(plain.state_dict()) == NUM_REFERENCE_KEYS
    assert not any("fusion" in k for k in plain.state_dict())


def test_fusion_keys_come_after_the_reference_keys() -> None:
    keys = list(HDNet(ngf=2, style_fusion=DEFAULT_FUSION_STAGES).state_dict())
    assert keys[:NUM_REFERENCE_KEYS] == list(HDNet(ngf=2).state_dict())
    assert keys[NUM_REFERENCE_KEYS:] == FUSION_KEYS


def test_fusion_draws_nothing_from_the_seeded_init() -> None:
    torch.manual_seed(3)
    plain = HDNet(ngf=2)
    torch.manual_seed(3)
    fused = HDNet(ngf=2, style_fusion=FUSION_STAGES)
    fused_sd = fused.state_dict()
    for key, value in plain.state_dict().items():
        assert torch.equal(value, fused_sd[key]), key
    assert all(fused_sd[k].abs().sum() == 0 for k in fused_sd if "fusion." in k)


@pytest.mark.parametrize("stages", [DEFAULT_FUSION_STAGES, FUSION_STAGES, (72,), (13,)])
def test_fusion_starts_as_the_identity(stages: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    plain = HDNet(ngf=2).eval()
    fused = HDNet(ngf=2, style_fusion=stages).eval()
    fused.load_state_dict(plain.state_dict(), strict=False)
    image, mask = torch.rand(2, 3, 40, 24), _mask(2, 40, 24)
    with torch.no_grad():
        assert torch.equal(fused(image, mask), plain(image, mask))


def test_reference_weights_in_a_fused_network_reproduce_the_parity_fixture(shared) -> None:  # noqa: ANN001
    # The parity weights are the reference layout: loaded into the fused ngf=32 network (fine-tuning start,
    # fusion keys missing), the untrained fusion leaves the reference outputs untouched.
    cases = np.load(shared("parity", "hdnet", "cases.npz"))
    model = create_model("hdnet_fusion")
    result = load_checkpoint(model, shared("parity", "hdnet", "weights_seed0.pth"), checkpoint_filter_fn, strict=False)
    assert sorted(result.missing) == sorted(FUSION_KEYS) and not result.unexpected and not result.mismatched
    k = 0
    x = torch.from_numpy(cases[f"case{k}_input"]).permute(2, 0, 1)[None]
    mask = torch.from_numpy(cases[f"case{k}_mask"])[None, None]
    with torch.no_grad():
        net = model.net_output(x, mask)
    expected = torch.from_numpy(cases[f"case{k}_net_output"]).permute(2, 0, 1)[None]
    torch.testing.assert_close(net, expected, atol=PARITY_ATOL, rtol=0)


# --- checkpoints ---------------------------------------------------------------------------------------------------


def test_fused_checkpoint_into_the_reference_model_names_the_first_fusion_key() -> None:
    with pytest.raises(CheckpointError, match="unexpected key 'model_layer11fusion.proj.weight'"):
        load_checkpoint(HDNet(ngf=2), create_model("hdnet_fusion_tiny").state_dict(), checkpoint_filter_fn)


def test_reference_checkpoint_into_the_fused_model_names_the_missing_key() -> None:
    with pytest.raises(CheckpointError, match="missing key 'model_layer11fusion.proj.weight'"):
        load_checkpoint(create_model("hdnet_fusion_tiny"), HDNet(ngf=2).state_dict(), checkpoint_filter_fn)


def test_fused_checkpoint_round_trips_through_the_registry(tmp_path) -> None:  # noqa: ANN001
    source = create_model("hdnet_fusion_tiny")
    _randomise_fusion(source)
    path = tmp_path / "fused.pt"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = create_model("hdnet_fusion_tiny", checkpoint=path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# --- registry and constructor --------------------------------------------------------------------------------------


def test_registered_fusion_variants() -> None:
    assert set(FUSION_VARIANTS.values()) <= set(list_models())
    for plain, fused in FUSION_VARIANTS.items():
        a, b = create_model(plain), create_model(fused)
        assert a.ngf == b.ngf and a.style_fusion == () and b.style_fusion == DEFAULT_FUSION_STAGES
        assert get_model_config(fused).input_size == get_model_config(plain).input_size
        assert get_model_config(fused).num_outputs == 3


def test_fusion_parameter_count_is_small() -> None:
    # proj maps 4 C statistics to 2 C values at C = 4, 2, 1 x ngf (stages 11, 12, 13).
    ngf = 8
    extra = sum(4 * c * 2 * c + 2 * c for c in (4 * ngf, 2 * ngf, ngf))
    plain = sum(p.numel() for p in create_model("hdnet_lite").parameters())
    fused = sum(p.numel() for p in create_model("hdnet_lite_fusion").parameters())
    assert fused - plain == extra == 10_864


@pytest.mark.parametrize("stages", [(14,), (11, 7)])
def test_unknown_fusion_stage_is_a_usage_error(stages: tuple[int, ...]) -> None:
    with pytest.raises(UsageError, match=r"style_fusion stages must be among .*use \(11, 12, 13\)"):
        HDNet(ngf=2, style_fusion=stages)


def test_stages_are_kept_in_decoder_order() -> None:
    assert HDNet(ngf=2, style_fusion=(13, 72, 11)).style_fusion == (72, 11, 13)


# --- shapes, gradients, mask-0 behaviour --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(16, 16), (24, 40), (72, 56), (16, 136)])
def test_fused_network_shapes_at_non_square_sizes(size: tuple[int, int]) -> None:
    model = HDNet(ngf=2, style_fusion=FUSION_STAGES).eval()
    _randomise_fusion(model)
    image, mask = torch.rand(2, 3, *size), _mask(2, *size)
    with torch.no_grad():
        out = model(image, mask)
    assert out.shape == image.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("size", [(37, 53), (301, 171)])
def test_odd_frame_through_the_pipeline_path(size: tuple[int, int]) -> None:
    # Odd frames never reach the network as they are: resize to 256^2, harmonize, fit and apply the colour map.
    from vidharm.filters.transfer import apply_color_transform, fit_color_transform

    model = create_model("hdnet_fusion_tiny")
    _randomise_fusion(model)
    frame, mask = torch.rand(1, 3, *size), _mask(1, *size)
    image256 = F.interpolate(frame, size=(256, 256), mode="bilinear", align_corners=False)
    mask256 = F.interpolate(mask, size=(256, 256), mode="bilinear", align_corners=False)
    with torch.no_grad():
        out256 = model(image256, mask256)
    coeffs = fit_color_transform(image256, out256, mask256, 1)
    out = apply_color_transform(frame, coeffs, 1, mask=mask)
    assert out.shape == frame.shape and torch.isfinite(out).all()
    assert torch.equal(out[..., mask[0, 0] == 0], frame[..., mask[0, 0] == 0])


def test_gradients_reach_the_fusion_parameters_from_the_first_step() -> None:
    model = create_model("hdnet_fusion_tiny").train()  # fusion at its zero initialisation
    image, mask = torch.rand(2, 3, 32, 32), _mask(2, 32, 32)
    target = torch.rand(2, 3, 32, 32)
    ((model(image, mask) - target) ** 2 * mask).mean().backward()
    for key in FUSION_KEYS:
        grad = model.get_parameter(key).grad
        assert grad is not None and torch.isfinite(grad).all(), key
        assert grad.abs().sum() > 0, key


def test_one_step_makes_the_fused_network_differ_from_the_plain_one() -> None:
    torch.manual_seed(0)
    plain = HDNet(ngf=2)
    torch.manual_seed(0)
    model = HDNet(ngf=2, style_fusion=DEFAULT_FUSION_STAGES).train()
    image, mask = torch.rand(2, 3, 32, 32), _mask(2, 32, 32)
    fusion_params = [p for n, p in model.named_parameters() if "fusion." in n]
    torch.optim.SGD(fusion_params, lr=1.0).zero_grad()
    (model(image, mask) * mask).sum().backward()
    torch.optim.SGD(fusion_params, lr=1.0).step()
    with torch.no_grad():
        a, b = plain.eval()(image, mask), model.eval()(image, mask)
    inside = mask.expand_as(a) > 0
    assert not torch.allclose(a[inside], b[inside])
    assert torch.equal(a[~inside], b[~inside])


def test_style_fusion_leaves_mask0_positions_exactly() -> None:
    torch.manual_seed(0)
    fusion = StyleFusion(3, 5)
    with torch.no_grad():
        fusion.proj.weight.normal_(0, 1)
        fusion.proj.bias.normal_(0, 1)
    decoder, encoder = torch.randn(2, 5, 8, 12), torch.randn(2, 3, 8, 12)
    mask = torch.zeros(2, 1, 16, 24)  # at twice the feature size: nearest-resized like every HDNet block
    mask[..., 4:12, 2:14] = 1
    out = fusion(decoder, encoder, mask)
    m = F.interpolate(mask, size=(8, 12), mode="nearest").expand_as(decoder) > 0
    assert torch.equal(out[~m], decoder[~m])
    assert not torch.allclose(out[m], decoder[m])


def test_style_fusion_without_foreground_is_the_identity_and_without_background_is_finite() -> None:
    torch.manual_seed(0)
    fusion = StyleFusion(2, 2)
    with torch.no_grad():
        fusion.proj.weight.normal_(0, 1)
        fusion.proj.bias.normal_(0, 1)
    decoder, encoder = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)
    assert torch.equal(fusion(decoder, encoder, torch.zeros(1, 1, 4, 4)), decoder)
    assert torch.isfinite(fusion(decoder, encoder, torch.ones(1, 1, 4, 4))).all()


def test_style_fusion_moves_foreground_mean_by_beta_and_std_by_gamma() -> None:
    fusion = StyleFusion(1, 2)
    gamma, beta = torch.tensor([0.5, -0.25]), torch.tensor([2.0, -1.0])
    with torch.no_grad():
        fusion.proj.bias.copy_(torch.cat([gamma, beta]))  # weight 0: constant gamma, beta
    decoder = torch.randn(1, 2, 8, 8) * torch.tensor([3.0, 0.5]).view(1, 2, 1, 1) + 1
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1
    out = fusion(decoder, torch.randn(1, 1, 8, 8), mask)
    fg_in, fg_out = decoder[..., :4, :], out[..., :4, :]
    torch.testing.assert_close(fg_out.mean(dim=(2, 3)), fg_in.mean(dim=(2, 3)) + beta[None], atol=1e-5, rtol=0)
    std_in, std_out = fg_in.std(dim=(2, 3), unbiased=False), fg_out.std(dim=(2, 3), unbiased=False)
    torch.testing.assert_close(std_out, std_in + gamma[None], atol=1e-3, rtol=1e-3)


def test_style_depends_only_on_region_statistics_of_the_encoder() -> None:
    # Shuffling the encoder's background pixels among themselves (and the foreground's) changes nothing.
    torch.manual_seed(0)
    fusion = StyleFusion(3, 3)
    with torch.no_grad():
        fusion.proj.weight.normal_(0, 1)
    decoder, encoder = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 1:4, 2:5] = 1
    flat, m = encoder.flatten(2).clone(), mask.flatten(2)[0, 0] > 0
    for region in (m, ~m):
        idx = torch.nonzero(region).flatten()
        flat[..., idx] = flat[..., idx[torch.randperm(idx.numel())]]
    shuffled = flat.view_as(encoder)
    assert not torch.equal(shuffled, encoder)
    torch.testing.assert_close(fusion(decoder, shuffled, mask), fusion(decoder, encoder, mask))


def test_background_statistics_of_the_encoder_drive_the_foreground() -> None:
    torch.manual_seed(0)
    fusion = StyleFusion(2, 2)
    with torch.no_grad():
        fusion.proj.weight.normal_(0, 1)
    decoder, encoder = torch.randn(1, 2, 6, 6), torch.randn(1, 2, 6, 6)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., :3, :] = 1
    brighter = encoder.clone()
    brighter[..., 3:, :] += 1.0  # background only
    a, b = fusion(decoder, encoder, mask), fusion(decoder, brighter, mask)
    assert not torch.allclose(a[..., :3, :], b[..., :3, :])
    assert torch.equal(a[..., 3:, :], b[..., 3:, :])


def test_style_fusion_gradcheck_float64() -> None:
    torch.manual_seed(0)
    fusion = StyleFusion(2, 2).double()
    with torch.no_grad():
        fusion.proj.weight.normal_(0, 0.5)
        fusion.proj.bias.normal_(0, 0.5)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    mask[..., 1:3, :3] = 1
    decoder = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    encoder = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d, e: fusion(d, e, mask), (decoder, encoder))
