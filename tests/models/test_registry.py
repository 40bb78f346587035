"""Tests for the model registry (vidharm/models/_registry.py) and registry-driven forward/backward checks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from vidharm.errors import CheckpointError, UsageError
from vidharm.models import ModelConfig, _registry, create_model, get_model_config, list_models, register_model


def _num_parameters(name: str) -> int:
    return sum(p.numel() for p in create_model(name).parameters())


# Forward/backward runs on the tiny variants and on parameter-free models (e.g. the analytic "stats");
# full-size models are covered by their own parity tests.
_FULL_SIZE = [name for name in list_models() if not name.endswith("_tiny") and _num_parameters(name) > 0]
_CHECKED = [name for name in list_models() if name not in _FULL_SIZE]


def test_builtin_models_registered() -> None:
    names = list_models()
    assert names == sorted(names)
    assert {"harmonizer", "harmonizer_tiny"} <= set(names)


@pytest.mark.parametrize("name", _FULL_SIZE)
def test_every_model_with_parameters_has_a_tiny_variant(name: str) -> None:
    # Variants of one family (hdnet, hdnet_lite) share the family's tiny model.
    family = name.split("_")[0]
    assert any(n.split("_")[0] == family and n.endswith("_tiny") for n in list_models()), f"{name} has no tiny variant"


@pytest.mark.parametrize("name", list_models())
def test_config_is_frozen_and_consistent(name: str) -> None:
    config = get_model_config(name)
    assert isinstance(config, ModelConfig) and config.name == name
    assert config.input_size > 0 and config.num_outputs > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.input_size = 1  # type: ignore[misc]


def test_unknown_name_suggests_nearest() -> None:
    with pytest.raises(UsageError, match="unknown model 'harmoniser'; did you mean 'harmonizer'"):
        create_model("harmoniser")
    with pytest.raises(UsageError, match="did you mean 'harmonizer_tiny'"):
        get_model_config("harmonizer_tin")
    with pytest.raises(UsageError, match="choose one of"):
        create_model("zzzzzzzz")


def test_pretrained_without_weights_explains() -> None:
    with pytest.raises(CheckpointError, match=r"no pretrained weights ship.*--weights"):
        create_model("hdnet", pretrained=True)


def test_create_model_sets_config_eval_and_kwargs() -> None:
    model = create_model("harmonizer_tiny", input_size=32)
    assert model.config is get_model_config("harmonizer_tiny")
    assert not model.training
    assert model.input_size == 32


def test_duplicate_registration_refused() -> None:
    config = ModelConfig(name="_test_duplicate", num_outputs=1)
    try:
        register_model(config)(lambda **kw: nn.Identity())
        with pytest.raises(UsageError, match="already registered"):
            register_model(config)(lambda **kw: nn.Identity())
    finally:
        _registry._REGISTRY.pop("_test_duplicate", None)


def test_registered_filter_fn_is_applied(tmp_path) -> None:  # noqa: ANN001
    calls = []

    def filter_fn(state):  # noqa: ANN001, ANN202
        calls.append(sorted(state))
        return {k.removeprefix("wrapped."): v for k, v in state.items()}

    config = ModelConfig(name="_test_filter", num_outputs=1)
    try:
        register_model(config, filter_fn=filter_fn)(lambda **kw: nn.Linear(2, 1))
        path = tmp_path / "w.pth"
        torch.save({"wrapped.weight": torch.ones(1, 2), "wrapped.bias": torch.zeros(1)}, path)
        model = create_model("_test_filter", checkpoint=path)
        assert calls == [["wrapped.bias", "wrapped.weight"]]
        assert torch.equal(model.weight, torch.ones(1, 2))
    finally:
        _registry._REGISTRY.pop("_test_filter", None)


def _inputs(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, size, size, generator=gen)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    blob = (1.5 - 3 * (xx**2 + yy**2)).clamp(0, 1)  # soft-edged disc: foreground, background and fractional alpha
    mask = torch.stack([blob, blob.flip(0).roll(size // 4, 1)])[:, None]
    return image.to(device), mask.to(device)


@pytest.mark.parametrize("name", _CHECKED)
def test_forward_backward(name: str, device: torch.device) -> None:
    torch.manual_seed(0)
    model = create_model(name).to(device).train()
    unused = set(getattr(model, "unused_parameters", ()))
    params = dict(model.named_parameters())
    assert unused <= set(params), f"{name}: unused_parameters lists names the model lacks: {unused - set(params)}"

    image, mask = _inputs(min(get_model_config(name).input_size, 64), device)
    image.requires_grad_()
    out = model(image, mask)
    assert isinstance(out, torch.Tensor) and out.shape[0] == 2
    assert torch.isfinite(out).all(), f"{name}: non-finite output"
    if not out.requires_grad:
        assert not params, f"{name}: output does not depend on any of its parameters"
        return
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1)).to(out)
    (out * weights).sum().backward()
    for pname, param in params.items():
        if pname in unused or not param.requires_grad:
            continue
        assert param.grad is not None, f"{name}: parameter {pname} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name}: parameter {pname} has a non-finite gradient"
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values()) or not params
