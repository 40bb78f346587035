"""Where the argument network runs: PyTorch, or ONNX Runtime on the CPU (about 3 times faster there).

On a CPU, with one thread, the Harmonizer network at 256 x 256 takes about 18 ms a frame in ONNX Runtime and
47-56 ms in PyTorch (scripts/bench_pipeline.py prints both). ``ProcessConfig.runtime``:

* ``auto`` (default): ONNX Runtime for a network that predicts filter arguments (``harmonizer``) on the CPU
  when the ``onnxruntime`` package is installed (the ``[onnx]`` extra); PyTorch otherwise (CUDA, the analytic
  ``stats`` model, HDNet, whose output is an image fitted afterwards);
* ``torch``: always PyTorch;
* ``onnxruntime``: ONNX Runtime, an error where it cannot be used.

The loaded PyTorch model is exported once (:func:`export_graph`) to a cache folder, keyed by a hash of its
weights, the model name, the torch version and the opset: ``$VIDHARM_CACHE_DIR``, else
``$XDG_CACHE_HOME/vidharm``, else ``~/.cache/vidharm``. A cache that cannot be written costs an export per run
(about 1.5 s), with a warning; a damaged cache file is exported again. ONNX Runtime's arguments match
PyTorch's to about 1e-4 (float32 summation order), well under what any filter shows; the sidecar header names
the runtime (``runtime``), and runs to be compared bit for bit should use the same one.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vidharm.errors import OutputError, UsageError
from vidharm.io import atomic_path

__all__ = ["RUNTIMES", "OnnxArgs", "cache_dir", "export_graph", "onnx_args", "runtime_name", "uses_onnxruntime"]

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "torch", "onnxruntime")
"""Valid ``ProcessConfig.runtime`` values."""

OPSET = 17
_CACHE_VERSION = 1  # part of the cache key: bump when the exported graph changes


class _ArgsGraph(nn.Module):
    """What the ONNX graph computes: image (B, 3, S, S) and mask (B, 1, S, S) -> args (B, 6)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return self.model(image, mask)


def export_graph(model: nn.Module, size: int, path: str | Path, *, opset: int = OPSET) -> None:
    """Export ``model(image, mask) -> args`` as ONNX (batch axis dynamic), written atomically.

    Args:
        model: an argument-predicting model on the CPU, in eval mode.
        size: its square input side S; the graph takes ``image`` (B, 3, S, S) and ``mask`` (B, 1, S, S) float32
            in [0, 1] and returns ``args`` (B, 6).
        path: the ``.onnx`` to write.
        opset: ONNX opset version.

    Raises:
        UsageError: the ``onnx`` package is missing.
        OutputError: the export fails or the file cannot be written.
    """
    try:
        importlib.import_module("onnx")  # the TorchScript exporter serialises through it
    except ImportError as exc:
        raise UsageError("ONNX export: expected the onnx package; pip install 'vidharm[onnx]'") from exc
    graph = _ArgsGraph(model).eval()
    gen = torch.Generator().manual_seed(0)
    example = (torch.rand(1, 3, size, size, generator=gen), torch.rand(1, 1, size, size, generator=gen))
    with atomic_path(Path(path)) as tmp:
        try:
            with warnings.catch_warnings():
                # Shape checks run once at trace time (constant sizes); the tracer warns about each of them.
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    graph,
                    example,
                    str(tmp),
                    dynamo=False,
                    input_names=["image", "mask"],
                    output_names=["args"],
                    dynamic_axes={"image": {0: "batch"}, "mask": {0: "batch"}, "args": {0: "batch"}},
                    opset_version=opset,
                )
        except Exception as exc:  # the exporter raises many unrelated types
            raise OutputError(f"ONNX export of {type(model).__name__} failed ({exc}); try another opset") from exc


def cache_dir() -> Path:
    """The folder exported networks are cached in (created on first use).

    Example:
        >>> os.environ["VIDHARM_CACHE_DIR"] = "/tmp/vh-cache"
        >>> cache_dir().as_posix()
        '/tmp/vh-cache'
        >>> del os.environ["VIDHARM_CACHE_DIR"]
    """
    if os.environ.get("VIDHARM_CACHE_DIR"):
        return Path(os.environ["VIDHARM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vidharm"


def _onnxruntime() -> Any | None:
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        return None


def uses_onnxruntime(runtime: str, model_name: str, model: nn.Module, kind: str, device: torch.device) -> bool:
    """Whether the network runs in ONNX Runtime (see the module for the rule of ``auto``).

    Args:
        runtime: a :data:`RUNTIMES` value.
        model_name: the registered name, for messages.
        model: the loaded model.
        kind: the method kind (``filters`` for argument-predicting models).
        device: where PyTorch would run it.

    Raises:
        UsageError: ``onnxruntime`` asked for where it cannot run (not installed, not an argument network, a
            GPU device), or an unknown runtime.
    """
    if runtime not in RUNTIMES:
        raise UsageError(f"runtime: expected one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if runtime == "torch":
        return False
    fits = kind == "filters" and any(True for _ in model.parameters()) and device.type == "cpu"
    if runtime == "auto":
        return fits and _onnxruntime() is not None
    if not fits:
        raise UsageError(
            f"runtime onnxruntime: model {model_name!r} on {device.type} cannot run there (only an argument "
            "network, such as harmonizer, on the CPU); use runtime auto or torch"
        )
    if _onnxruntime() is None:
        raise UsageError("runtime onnxruntime: the onnxruntime package is not installed; pip install 'vidharm[onnx]'")
    return True


def runtime_name(onnx: bool) -> str:
    """The runtime as the sidecar header names it, with its version (``onnxruntime 1.22.0``, ``torch 2.13.0``)."""
    if onnx:
        return f"onnxruntime {importlib.import_module('onnxruntime').__version__}"
    return f"torch {torch.__version__}"


def _weights_key(model: nn.Module, name: str, size: int, opset: int) -> str:
    digest = hashlib.sha256(f"{_CACHE_VERSION}|{name}|{size}|{opset}|{torch.__version__}".encode())
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


class OnnxArgs:
    """An exported argument network in an ONNX Runtime session: ``(B, S, S, 3)`` images to ``(B, 6)`` arguments."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Arguments for (B, S, S, 3) float32 images and (B, S, S) float32 masks in [0, 1]: (B, 6) float32."""
        feeds = {
            "image": np.ascontiguousarray(image.transpose(0, 3, 1, 2), dtype=np.float32),
            "mask": np.ascontiguousarray(mask[:, None], dtype=np.float32),
        }
        return self.session.run(["args"], feeds)[0]


def onnx_args(model: nn.Module, name: str, size: int, threads: int) -> OnnxArgs:
    """``model`` in an ONNX Runtime session on ``threads`` threads, exported to the cache on first use.

    Raises:
        UsageError: onnx or onnxruntime missing.
        OutputError: the export fails.
    """
    ort = _onnxruntime()
    if ort is None:
        raise UsageError("runtime onnxruntime: the onnxruntime package is not installed; pip install 'vidharm[onnx]'")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings about unused initialisers are not the user's concern
    name_key = f"{name}-{_weights_key(model, name, size, OPSET)}.onnx"
    folder = cache_dir() / "onnx"
    path = folder / name_key
    if path.is_file():
        try:
            return OnnxArgs(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
        except Exception as exc:  # noqa: BLE001 - a damaged cache file of any kind is exported again
            log.warning("%s: cannot be loaded (%s); exporting the network again", path, exc)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if writable:
        export_graph(model.cpu(), size, path)
        return OnnxArgs(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
    log.warning("the network cache %s cannot be written; exporting for this run only (set VIDHARM_CACHE_DIR)", folder)
    with tempfile.TemporaryDirectory(prefix="vidharm-onnx-") as scratch:
        export_graph(model.cpu(), size, Path(scratch) / name_key)
        # The session reads the whole file when it is made: the folder can go.
        return OnnxArgs(
            ort.InferenceSession(str(Path(scratch) / name_key), options, providers=["CPUExecutionProvider"])
        )
