"""Tests for checkpoint reading and strict loading (vidharm/models/_checkpoint.py)."""

from __future__ import annotations

import logging
import pathlib
import pickle
import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from vidharm.errors import CheckpointError
from vidharm.models import LoadResult, create_model, load_checkpoint, load_state_dict_file
from vidharm.models.harmonizer import checkpoint_filter_fn


@pytest.fixture
def tiny_state() -> OrderedDict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("harmonizer_tiny")
    # Make every tensor distinguishable from a fresh init so a silent non-load would be caught.
    return OrderedDict((k, v + 0.5 if v.is_floating_point() else v + 3) for k, v in model.state_dict().items())


def _assert_state_equal(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    got = model.state_dict()
    assert list(got) == list(state) or set(got) == set(state)
    for key, value in state.items():
        assert torch.equal(got[key], value.to(got[key].dtype)), key


class _Payload:
    """Unpickling this would run code (touch a file); weights_only must refuse it before that."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (pathlib.Path.touch, (self.target,))


# ---------------------------------------------------------------- load_state_dict_file


def test_roundtrip_through_create_model(tmp_path: Path, tiny_state: dict) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(tiny_state, path)
    model = create_model("harmonizer_tiny", checkpoint=path)
    _assert_state_equal(model, tiny_state)
    assert not model.training


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match=r"nope\.pth: no such file"):
        load_state_dict_file(path)
    with pytest.raises(CheckpointError, match="no such file"):
        create_model("harmonizer_tiny", checkpoint=path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is a directory"):
        load_state_dict_file(tmp_path)


@pytest.mark.parametrize(
    "content", [b"", b"definitely not a checkpoint" * 10, b"PK\x03\x04" + b"\x00" * 40], ids=["empty", "text", "zip"]
)
def test_garbage_bytes(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"garbage\.pth"):
        load_state_dict_file(path)


def test_truncated_file(tmp_path: Path, tiny_state: dict) -> None:
    path = tmp_path / "cut.pth"
    torch.save(tiny_state, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth.*truncated"):
        load_state_dict_file(path)


def test_pickle_with_code_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "payload": _Payload(target)}, path)
    with pytest.raises(CheckpointError, match="refused: the file contains Python objects beyond tensors"):
        load_state_dict_file(path)
    assert not target.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_plain_pickle_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=4))
    with pytest.raises(CheckpointError, match=r"plain\.pkl"):
        load_state_dict_file(path)


def test_non_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match=r"list\.pth: holds a list, expected a dict"):
        load_state_dict_file(path)


# ---------------------------------------------------------------- strict matching


def test_wrong_key_names_it(tmp_path: Path, tiny_state: dict) -> None:
    state = OrderedDict(tiny_state)
    state["backbone._conv_fg.weights"] = state.pop("backbone._conv_fg.weight")
    path = tmp_path / "renamed.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"renamed\.pth.*missing key 'backbone\._conv_fg\.weight'.*1 unexpected"):
        create_model("harmonizer_tiny", checkpoint=path)


def test_unexpected_key_names_it(tiny_state: dict) -> None:
    state = OrderedDict(tiny_state)
    state["regressor.extra.bias"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"unexpected key 'regressor\.extra\.bias'"):
        load_checkpoint(create_model("harmonizer_tiny"), state)


def test_wrong_shape_names_key_and_shapes(tmp_path: Path, tiny_state: dict) -> None:
    state = OrderedDict(tiny_state)
    state["regressor.f.weight"] = torch.zeros(3, 5)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    expected = tuple(tiny_state["regressor.f.weight"].shape)
    message = f"'regressor.f.weight' has shape (3, 5), the model expects {expected}"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        create_model("harmonizer_tiny", checkpoint=path)


def test_full_model_rejects_tiny_weights(tmp_path: Path, tiny_state: dict) -> None:
    path = tmp_path / "tiny.pth"
    torch.save(tiny_state, path)
    with pytest.raises(CheckpointError, match="does not fit Harmonizer"):
        create_model("harmonizer", checkpoint=path)


def test_non_tensor_value_names_key(tiny_state: dict) -> None:
    state = dict(tiny_state)
    state["regressor.f.bias"] = [0.0] * 8
    with pytest.raises(CheckpointError, match=r"'regressor\.f\.bias' is a list"):
        load_checkpoint(create_model("harmonizer_tiny"), state)


def test_failed_strict_load_leaves_model_untouched(tiny_state: dict) -> None:
    model = create_model("harmonizer_tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(tiny_state)
    del state["regressor.g.bias"]
    with pytest.raises(CheckpointError, match="missing key 'regressor.g.bias'"):
        load_checkpoint(model, state)
    _assert_state_equal(model, before)


# ---------------------------------------------------------------- layouts and dtypes


def test_training_layout_accepted(tmp_path: Path, tiny_state: dict) -> None:
    # The official trainer saves {epoch, model, optimizer, lrer} with DataParallel + task-wrapper prefixes.
    model = create_model("harmonizer_tiny")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[25, 50])
    checkpoint = {
        "epoch": 7,
        "model": OrderedDict((f"module.model.{k}", v) for k, v in tiny_state.items()),
        "optimizer": optimizer.state_dict(),
        "lrer": scheduler.state_dict(),
    }
    path = tmp_path / "checkpoint_7.ckpt"
    torch.save(checkpoint, path)
    _assert_state_equal(create_model("harmonizer_tiny", checkpoint=path), tiny_state)


def test_module_prefix_accepted(tiny_state: dict) -> None:
    model = create_model("harmonizer_tiny")
    load_checkpoint(model, {f"module.{k}": v for k, v in tiny_state.items()}, filter_fn=checkpoint_filter_fn)
    _assert_state_equal(model, tiny_state)


def test_filter_fn_strips_only_shared_prefixes() -> None:
    plain = {"backbone.x": torch.zeros(1), "regressor.y": torch.zeros(1)}
    assert checkpoint_filter_fn(plain).keys() == plain.keys()
    mixed = {"module.backbone.x": torch.zeros(1), "regressor.y": torch.zeros(1)}
    assert checkpoint_filter_fn(mixed).keys() == mixed.keys()
    wrapped = {"model": {"module.model.backbone.x": torch.zeros(1)}, "epoch": 1}
    assert list(checkpoint_filter_fn(wrapped)) == ["backbone.x"]


def test_half_precision_file_is_upcast(tmp_path: Path, tiny_state: dict) -> None:
    path = tmp_path / "half.pth"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in tiny_state.items()}, path)
    model = create_model("harmonizer_tiny", checkpoint=path)
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            assert value.dtype == torch.float32
            assert torch.equal(value, tiny_state[key].half().float()), key


def test_model_dtype_and_device_kept(tiny_state: dict, device: torch.device) -> None:
    model = create_model("harmonizer_tiny").to(device=device, dtype=torch.float64)
    load_checkpoint(model, tiny_state)
    param = model.regressor.f.weight
    assert param.dtype == torch.float64 and param.device.type == device.type
    assert torch.equal(param.cpu(), tiny_state["regressor.f.weight"].double())


def test_non_strict_loads_what_fits_and_logs(tiny_state: dict, caplog: pytest.LogCaptureFixture) -> None:
    model = create_model("harmonizer_tiny")
    kept = model.regressor.f.weight.detach().clone()
    state = dict(tiny_state)
    state["regressor.f.weight"] = torch.zeros(2, 2)
    del state["regressor.g.bias"]
    state["extra"] = torch.zeros(1)
    with caplog.at_level(logging.WARNING, logger="vidharm.models._checkpoint"):
        result = load_checkpoint(model, state, strict=False)
    assert result == LoadResult(
        missing=("regressor.g.bias",), unexpected=("extra",), mismatched=("regressor.f.weight",)
    )
    assert "regressor.g.bias" in caplog.text and "extra" in caplog.text and "regressor.f.weight" in caplog.text
    assert torch.equal(model.regressor.f.weight, kept)
    assert torch.equal(model.regressor.g.weight, tiny_state["regressor.g.weight"])


def test_strict_load_returns_empty_result(tiny_state: dict, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert load_checkpoint(create_model("harmonizer_tiny"), tiny_state) == LoadResult()
    assert caplog.text == ""


def test_mapped_load_leaves_no_tie_to_the_file(tmp_path: Path, tiny_state: dict) -> None:
    # load_checkpoint maps the file; the model must own its weights once it returns.
    path = tmp_path / "w.pth"
    torch.save(tiny_state, path)
    model = create_model("harmonizer_tiny")
    load_checkpoint(model, path)
    path.write_bytes(b"")  # truncated after loading: a model still reading the mapping would fault or change
    _assert_state_equal(model, tiny_state)


def test_legacy_format_file_loads(tmp_path: Path, tiny_state: dict) -> None:
    # Files saved before the zip format cannot be mapped; they are read instead.
    path = tmp_path / "legacy.pth"
    torch.save(tiny_state, path, _use_new_zipfile_serialization=False)
    model = create_model("harmonizer_tiny")
    assert load_checkpoint(model, path) == LoadResult()
    _assert_state_equal(model, tiny_state)
    assert set(load_state_dict_file(path, mmap=True)) == set(tiny_state)
