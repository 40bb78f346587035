"""Where the argument network runs (issue 8): ONNX Runtime on the CPU, PyTorch elsewhere, the same arguments."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vidharm.errors import UsageError
from vidharm.models import create_model
from vidharm.pipeline import ProcessConfig, analyze, open_clip
from vidharm.pipeline.runtime import cache_dir, onnx_args, uses_onnxruntime

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _tiny(folder: Path, seed: int = 0) -> ProcessConfig:
    torch.manual_seed(seed)
    torch.save(create_model("harmonizer_tiny").state_dict(), folder / f"tiny{seed}.pth")
    return ProcessConfig(model="harmonizer_tiny", weights=str(folder / f"tiny{seed}.pth"), device="cpu")


def test_onnxruntime_and_torch_give_the_same_arguments(clip_with_masks, tmp_path: Path) -> None:
    clip, masks = clip_with_masks(num_frames=6)
    config = _tiny(tmp_path)
    inp = open_clip(clip, masks)
    onnx = analyze(inp, ProcessConfig(**{**config.__dict__, "runtime": "onnxruntime"}))
    plain = analyze(inp, ProcessConfig(**{**config.__dict__, "runtime": "torch"}))
    auto = analyze(inp, config)
    assert onnx.header["runtime"].startswith("onnxruntime ") and plain.header["runtime"].startswith("torch ")
    assert auto.header["runtime"] == onnx.header["runtime"]  # auto: ONNX Runtime on the CPU
    got = np.array([r.raw for r in onnx.frames])
    want = np.array([r.raw for r in plain.frames])
    assert got.shape == (6, 6) and np.abs(want).max() > 1e-3  # seeded weights predict something
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert [r.stats for r in auto.frames] == [r.stats for r in onnx.frames]


def test_the_export_is_cached_by_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDHARM_CACHE_DIR", str(tmp_path / "cache"))
    from vidharm.pipeline import runtime

    exports: list[Path] = []
    real = runtime.export_graph

    def counted(model, size, path, **kw):  # type: ignore[no-untyped-def]
        exports.append(Path(path))
        real(model, size, path, **kw)

    monkeypatch.setattr(runtime, "export_graph", counted)
    model = create_model("harmonizer_tiny").eval()
    image, mask = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)), np.full((2, 64, 64), 0.5)
    first = onnx_args(model, "harmonizer_tiny", 64, 1)(image, mask)
    again = onnx_args(model, "harmonizer_tiny", 64, 1)(image, mask)
    assert len(exports) == 1 and exports[0].parent == cache_dir() / "onnx"
    np.testing.assert_array_equal(first, again)
    with torch.no_grad():
        next(model.parameters()).add_(0.5)  # other weights: another file
    changed = onnx_args(model, "harmonizer_tiny", 64, 1)(image, mask)
    assert len(exports) == 2 and exports[1] != exports[0] and not np.array_equal(changed, first)
    with torch.inference_mode():
        want = model(torch.from_numpy(image).float().permute(0, 3, 1, 2), torch.from_numpy(mask).float()[:, None])
    np.testing.assert_allclose(changed, want.numpy(), atol=1e-4)
    # a damaged cache file is exported again, with a warning
    exports[1].write_bytes(b"not a model")
    onnx_args(model, "harmonizer_tiny", 64, 1)
    assert len(exports) == 3 and exports[2] == exports[1]


def test_an_unwritable_cache_exports_for_the_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("VIDHARM_CACHE_DIR", str(blocked))
    model = create_model("harmonizer_tiny").eval()
    with caplog.at_level(logging.WARNING):
        run = onnx_args(model, "harmonizer_tiny", 64, 1)
    assert "cannot be written" in caplog.text
    assert run(np.zeros((1, 64, 64, 3)), np.zeros((1, 64, 64))).shape == (1, 6)
    assert blocked.read_text().startswith("a file")


def test_which_runtime_runs_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    net = create_model("harmonizer_tiny")
    stats = create_model("stats")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert uses_onnxruntime("auto", "harmonizer_tiny", net, "filters", cpu)
    assert not uses_onnxruntime("auto", "stats", stats, "filters", cpu)  # analytic: nothing to export
    assert not uses_onnxruntime("auto", "harmonizer_tiny", net, "filters", cuda)
    assert not uses_onnxruntime("auto", "hdnet_tiny", net, "local", cpu)  # an image model's output is fitted
    assert not uses_onnxruntime("torch", "harmonizer_tiny", net, "filters", cpu)
    with pytest.raises(UsageError, match="only an argument network"):
        uses_onnxruntime("onnxruntime", "stats", stats, "filters", cpu)
    with pytest.raises(UsageError, match="expected one of"):
        uses_onnxruntime("tensorrt", "harmonizer_tiny", net, "filters", cpu)
    with pytest.raises(UsageError, match="runtime"):
        ProcessConfig(runtime="tensorrt")

    from vidharm.pipeline import runtime

    monkeypatch.setattr(runtime, "_onnxruntime", lambda: None)  # as where the package is not installed
    assert not uses_onnxruntime("auto", "harmonizer_tiny", net, "filters", cpu)  # auto falls back to torch
    with pytest.raises(UsageError, match="not installed"):
        uses_onnxruntime("onnxruntime", "harmonizer_tiny", net, "filters", cpu)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIDHARM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "vidharm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "vidharm"
