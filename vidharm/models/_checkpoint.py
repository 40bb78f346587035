"""Safe, strict checkpoint loading: ``weights_only=True`` and errors that name the offending key."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vidharm.errors import CheckpointError

__all__ = ["LoadResult", "load_state_dict_file", "load_checkpoint"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadResult:
    """What a non-strict load skipped (all empty after a strict load).

    Attributes:
        missing: model keys the checkpoint lacks (left at their current values).
        unexpected: checkpoint keys the model does not have (ignored).
        mismatched: keys present in both with different shapes (left at their current values).
    """

    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()


def load_state_dict_file(path: str | PathLike[str], *, mmap: bool = False) -> dict[str, Any]:
    """Read a ``torch.save`` file with ``weights_only=True`` onto the CPU.

    Args:
        path: the file, e.g. ``harmonizer.pth`` (plain state_dict) or a training ``.ckpt`` (a dict
            with a ``model`` entry); the per-model checkpoint filter unpacks the latter.
        mmap: map the tensors' bytes from the file instead of reading them (files in the zip format
            ``torch.save`` writes since torch 1.6; older files are read). For a dict that is copied into a model
            and dropped: no second copy of the weights stays in the heap. The file must not change while the
            dict is alive.

    Returns:
        The top-level dict as stored (usually key -> tensor).

    Raises:
        CheckpointError: the file is missing, a directory, not a torch file, truncated, carries Python
            objects beyond tensors, or does not hold a dict. The message names the file.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "w.pth")
        >>> torch.save({"w": torch.ones(2)}, path)
        >>> load_state_dict_file(path)
        {'w': tensor([1., 1.])}
    """
    file = Path(path)
    if not file.exists():
        raise CheckpointError(f"checkpoint {file}: no such file; pass the path of a downloaded .pth state_dict")
    if file.is_dir():
        raise CheckpointError(f"checkpoint {file}: is a directory, expected a .pth file; pass the file inside it")
    try:
        loaded = _torch_load(file, mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text:
            raise CheckpointError(
                f"checkpoint {file}: refused: the file contains Python objects beyond tensors; only plain "
                "state_dicts are loaded (re-save it as torch.save(model.state_dict(), path) where you trust it)"
            ) from None
        raise CheckpointError(
            f"checkpoint {file}: cannot be read as a weights-only torch checkpoint ({_unpickler_detail(text)}); "
            "expected a file written by torch.save(state_dict, path)"
        ) from None
    except Exception as exc:  # torch.load raises RuntimeError, EOFError, KeyError... for damaged files
        raise CheckpointError(
            f"checkpoint {file}: not a readable torch checkpoint, or truncated ({type(exc).__name__}: "
            f"{_last_line(str(exc))}); download it again"
        ) from None
    if not isinstance(loaded, dict):
        raise CheckpointError(
            f"checkpoint {file}: holds a {type(loaded).__name__}, expected a dict of tensors (a state_dict); "
            "save model.state_dict() rather than the model or a list"
        )
    return loaded


def _torch_load(file: Path, mmap: bool) -> Any:
    if mmap:
        try:
            return torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "_use_new_zipfile_serialization" not in str(exc):
                raise
            # A legacy (pre-zip) file cannot be mapped: read it.
    return torch.load(file, map_location="cpu", weights_only=True)


def _unpickler_detail(text: str) -> str:
    # torch wraps the useful part ("Unsupported operand 149") in several lines of generic advice.
    detail = text.partition("WeightsUnpickler error:")[2].partition("Check the documentation")[0]
    return " ".join(detail.split()) or "unsupported pickle content"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "no detail"
    return line if len(line) <= 160 else line[:157] + "..."


def _shape(shape: torch.Size) -> str:
    return str(tuple(shape))


def load_checkpoint(
    model: nn.Module,
    path_or_state_dict: str | PathLike[str] | Mapping[str, Any],
    filter_fn: Callable[[Mapping[str, Any]], Mapping[str, Tensor]] | None = None,
    strict: bool = True,
) -> LoadResult:
    """Load weights into ``model``; strict by default, naming the first key that does not fit.

    Floating tensors are cast to the dtype of the model's tensor (so float16 files load into float32
    models); the model keeps its device.

    Args:
        model: the module to fill.
        path_or_state_dict: a file path (read with :func:`load_state_dict_file`) or an in-memory dict.
        filter_fn: maps the loaded dict to the model's key layout (e.g. strips ``module.model.``).
        strict: raise on any missing, unexpected or mis-shaped key. ``False`` is for fine-tuning: it
            loads what fits and logs what it skipped.

    Returns:
        A :class:`LoadResult` listing what was skipped (empty when strict).

    Raises:
        CheckpointError: unreadable file, a non-tensor value, or (strict) a key mismatch; the message
            names the file, the first offending key and, for shapes, expected and found.

    Example:
        >>> layer = nn.Linear(2, 1)
        >>> load_checkpoint(layer, {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)})
        LoadResult(missing=(), unexpected=(), mismatched=())
        >>> try:
        ...     load_checkpoint(layer, {"weight": torch.zeros(2, 2), "bias": torch.zeros(1)})
        ... except CheckpointError as err:
        ...     print(str(err).split(";")[0])
        checkpoint (in-memory state_dict) does not fit Linear: key 'weight' has shape (2, 2), the model expects (1, 2)
    """
    if isinstance(path_or_state_dict, Mapping):
        source = "checkpoint (in-memory state_dict)"
        raw: Mapping[str, Any] = path_or_state_dict
    else:
        source = f"checkpoint {Path(path_or_state_dict)}"
        # Mapped, not read: the weights are copied into the model below and the dict dropped, so the file's
        # pages leave with it instead of a heap copy of the weights (about 15 MB for the harmonizer) staying.
        raw = load_state_dict_file(path_or_state_dict, mmap=True)
    state = dict(filter_fn(raw)) if filter_fn is not None else dict(raw)
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{source}: entry {key!r} is a {type(value).__name__}, expected a tensor; "
                "pass a state_dict (a training checkpoint needs the model's checkpoint filter)"
            )

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    name = type(model).__name__
    if strict and (missing or unexpected or mismatched):
        counts = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(mismatched)} mis-shaped"
        fix = "check that the file belongs to this model and variant"
        if missing:
            what = f"missing key {missing[0]!r}"
        elif unexpected:
            what = f"unexpected key {unexpected[0]!r}"
        else:
            key = mismatched[0]
            what = f"key {key!r} has shape {_shape(state[key].shape)}, the model expects {_shape(expected[key].shape)}"
        raise CheckpointError(f"{source} does not fit {name}: {what}; {counts} in all; {fix}")

    skipped = set(mismatched)
    to_load = {}
    for key, value in state.items():
        if key not in expected or key in skipped:
            continue
        target = expected[key]
        to_load[key] = value.to(target.dtype) if value.is_floating_point() and target.is_floating_point() else value
    model.load_state_dict(to_load, strict=strict)
    result = LoadResult(tuple(missing), tuple(unexpected), tuple(mismatched))
    if missing or unexpected or mismatched:
        logger.warning(
            "%s loaded non-strictly into %s: skipped %d missing %s, %d unexpected %s, %d mis-shaped %s",
            source,
            name,
            len(missing),
            missing[:5],
            len(unexpected),
            unexpected[:5],
            len(mismatched),
            mismatched[:5],
        )
    return result
