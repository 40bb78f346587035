"""Tests for the Harmonizer network (vidharm/models/harmonizer/): parity with the reference fixtures,
key layout, padding, input handling, dtypes and memory formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import shared_path
from torch import Tensor

from vidharm.errors import InputError, ShapeError
from vidharm.filters import (
    adjust_brightness,
    adjust_contrast,
    adjust_highlight,
    adjust_saturation,
    adjust_shadow,
    adjust_temperature,
    apply_filters,
    composite,
)
from vidharm.models import create_model
from vidharm.models.harmonizer import Harmonizer
from vidharm.models.harmonizer._efficientnet import _SameConv2d

NUM_KEYS = 392  # research/harmonizer.md 3.2
NUM_PARAMS = 4_726_882
NUM_CASES = 4


def _assert_parity(got: np.ndarray, want: np.ndarray, what: str) -> None:
    # parity/README.md: >= 99.999 % of values within 2e-5 and max abs <= 5e-3 (the shadow curve's unbounded
    # slope at 0 lets single near-black values move by ~1e-3 between CPUs / thread counts).
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert diff.max() <= 5e-3, f"{what}: max abs diff {diff.max():.3g} > 5e-3"
    assert (diff <= 2e-5).mean() >= 0.99999, f"{what}: only {(diff <= 2e-5).mean():.6%} of values within 2e-5"


def _hwc(t: Tensor) -> np.ndarray:
    return t[0].permute(1, 2, 0).cpu().numpy()


@pytest.fixture(scope="module")
def cases() -> dict[str, np.ndarray]:
    with np.load(shared_path("parity", "harmonizer", "cases.npz")) as data:
        return {key: data[key] for key in data.files}


def _case(cases: dict[str, np.ndarray], k: int) -> tuple[Tensor, Tensor]:
    comp = torch.from_numpy(cases[f"case{k}_composite"]).permute(2, 0, 1).float().div(255)[None]
    mask = torch.from_numpy(cases[f"case{k}_mask"])[None, None]
    return comp, mask


@pytest.fixture(scope="module")
def model() -> Harmonizer:
    return create_model("harmonizer", checkpoint=shared_path("parity", "harmonizer", "weights_seed0.pth"))


@pytest.fixture(scope="module")
def predictions(model: Harmonizer, cases: dict[str, np.ndarray]) -> list[dict[str, Tensor]]:
    """enc32x, pooled and args per case, each computed once (the full B0 at 256x256 per case)."""
    results = []
    with torch.no_grad():
        for k in range(NUM_CASES):
            comp, mask = _case(cases, k)
            enc = model.encode(comp, mask)
            pooled = F.adaptive_avg_pool2d(enc, 1).flatten(1)
            results.append({"enc": enc, "pooled": pooled, "args": model.regressor(pooled)})
    return results


# ---------------------------------------------------------------- layout


def test_state_dict_layout_matches_reference_file() -> None:
    reference = torch.load(shared_path("parity", "harmonizer", "weights_seed0.pth"), weights_only=True)
    ours = Harmonizer().state_dict()
    assert len(ours) == NUM_KEYS == len(reference)
    assert set(ours) == set(reference)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference.items()}


def test_parameter_count() -> None:
    model = Harmonizer()
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMS
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 50 and all(bn.eps == 1e-3 and bn.momentum == 0.01 for bn in bns)


def test_strict_load_reproduces_every_tensor(model: Harmonizer) -> None:
    reference = torch.load(shared_path("parity", "harmonizer", "weights_seed0.pth"), weights_only=True)
    state = model.state_dict()
    for key, value in reference.items():
        assert torch.equal(state[key], value), key
    assert not model.training


# ---------------------------------------------------------------- parity


@pytest.mark.parametrize("k", range(NUM_CASES))
def test_args_and_pooled_match_reference(k: int, predictions: list, cases: dict[str, np.ndarray]) -> None:
    got = predictions[k]
    np.testing.assert_allclose(got["pooled"][0].numpy(), cases[f"case{k}_pooled"], atol=5e-5, rtol=0)
    np.testing.assert_allclose(got["args"][0].numpy(), cases[f"case{k}_args"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(cases["args"][k], cases[f"case{k}_args"])


def test_enc32x_matches_reference(predictions: list, cases: dict[str, np.ndarray]) -> None:
    enc = predictions[3]["enc"]
    assert enc.shape == (1, 1280, 8, 8)
    # parity/README.md: enc32x differs by up to 1.3e-5 between thread counts.
    np.testing.assert_allclose(enc[0].numpy(), cases["case3_enc32x"], atol=5e-5, rtol=0)


def test_forward_and_features_agree_with_parts(model: Harmonizer, predictions: list, cases: dict) -> None:
    comp, mask = _case(cases, 3)
    with torch.no_grad():
        assert torch.equal(model.features(comp, mask), predictions[3]["pooled"])
        assert torch.equal(model(comp, mask), predictions[3]["args"])


@pytest.mark.parametrize("k", range(NUM_CASES))
def test_full_resolution_outputs_match_reference(k: int, predictions: list, cases: dict[str, np.ndarray]) -> None:
    comp, mask = _case(cases, k)
    out = composite(apply_filters(comp, predictions[k]["args"]), comp, mask)
    _assert_parity(_hwc(out), cases[f"case{k}_output"], f"case{k}_output")
    background = (mask == 0).expand_as(comp)
    assert torch.equal(out[background], comp[background])


def test_chain_steps_match_reference(cases: dict[str, np.ndarray]) -> None:
    comp, mask = _case(cases, 3)
    args = torch.from_numpy(cases["case3_args"])[None].clamp(-1, 1)
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_highlight, adjust_shadow)
    z = adjust_temperature(comp, args[:, 0])
    steps = [z]
    for i, op in enumerate(ops):
        z = op(z, args[:, i + 1])
        steps.append(z)
    for i, step in enumerate(steps):
        _assert_parity(_hwc(step), cases["case3_chain_steps"][i], f"chain step {i + 1}")
    assert torch.equal(steps[-1], apply_filters(comp, args))
    _assert_parity(_hwc(composite(steps[-1], comp, mask)), cases["case3_output"], "case3_output")


def test_harmonize_is_filters_plus_composite(model: Harmonizer, predictions: list, cases: dict) -> None:
    comp, mask = _case(cases, 2)
    with torch.no_grad():
        out = model.harmonize(comp, mask)
    assert torch.equal(out, composite(apply_filters(comp, predictions[2]["args"]), comp, mask))


# ---------------------------------------------------------------- padding and inputs


@pytest.mark.parametrize(
    ("kernel", "size", "pads"),
    [(3, 16, (0, 1, 0, 1)), (5, 16, (1, 2, 1, 2)), (3, 15, (1, 1, 1, 1)), (5, 15, (2, 2, 2, 2))],
)
def test_same_padding_is_tensorflow_style(kernel: int, size: int, pads: tuple[int, ...]) -> None:
    # Regression guard: PyTorch's symmetric padding=k//2 on stride-2 convs shifts the sampling grid by one
    # pixel relative to the reference's TF "SAME" padding (research 1.2) and breaks parity.
    conv = _SameConv2d(2, 4, kernel, stride=2, bias=False)
    x = torch.randn(1, 2, size, size)
    with torch.no_grad():
        got = conv(x)
        assert torch.equal(got, F.conv2d(F.pad(x, pads), conv.weight, stride=2))
        assert got.shape[-2:] == (-(-size // 2),) * 2
        if size % 2 == 0:
            assert not torch.allclose(got, F.conv2d(x, conv.weight, stride=2, padding=kernel // 2))


def test_any_resolution_and_batch() -> None:
    model = Harmonizer().eval()
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 97, 131, generator=gen)
    mask = torch.rand(2, 1, 97, 131, generator=gen)
    with torch.no_grad():
        args = model(image, mask)
        single = model(image[1:], mask[1:])
    assert args.shape == (2, 6)
    torch.testing.assert_close(args[1:], single, atol=1e-5, rtol=0)


def test_bad_inputs() -> None:
    model = Harmonizer().eval()
    with pytest.raises(ShapeError, match="mask"):
        model(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 31))
    with pytest.raises(ShapeError, match="mask"):
        model(torch.rand(2, 3, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(ShapeError, match="image"):
        model(torch.rand(1, 4, 32, 32), torch.rand(1, 1, 32, 32))
    with pytest.raises(InputError, match="floating"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.rand(1, 1, 32, 32))


def test_mask_matters(model: Harmonizer) -> None:
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = model(image, torch.zeros(1, 1, 64, 64))
        b = model(image, torch.ones(1, 1, 64, 64))
    assert (a - b).abs().max() > 1e-3


def test_float64_and_channels_last(model: Harmonizer, cases: dict[str, np.ndarray]) -> None:
    comp, mask = _case(cases, 3)
    want = torch.from_numpy(cases["case3_args"])[None]
    double = create_model("harmonizer").double()
    double.load_state_dict(model.state_dict())
    cl = create_model("harmonizer").to(memory_format=torch.channels_last)
    cl.load_state_dict(model.state_dict())
    with torch.no_grad():
        got64 = double(comp.double(), mask.double())
        got_cl = cl(comp.contiguous(memory_format=torch.channels_last), mask)
    assert got64.dtype == torch.float64
    torch.testing.assert_close(got64.float(), want, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_cl, want, atol=1e-5, rtol=0)


def test_device(model: Harmonizer, cases: dict[str, np.ndarray], device: torch.device) -> None:
    comp, mask = _case(cases, 0)
    moved = create_model("harmonizer").to(device)
    moved.load_state_dict(model.state_dict())
    with torch.no_grad():
        got = moved(comp.to(device), mask.to(device))
    assert got.device.type == device.type
    torch.testing.assert_close(got.cpu(), torch.from_numpy(cases["case0_args"])[None], atol=1e-5, rtol=0)


def test_drop_connect_only_in_training() -> None:
    torch.manual_seed(0)
    tiny = create_model("harmonizer_tiny", drop_connect_rate=0.9)
    image, mask = torch.rand(8, 3, 64, 64), torch.rand(8, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(tiny(image, mask), tiny(image, mask))
        tiny.train()
        # Batch statistics are the same for both calls, so any difference comes from stochastic depth.
        assert not torch.equal(tiny(image, mask), tiny(image, mask))
