"""Model registry: ``@register_model(config)`` on a factory, then ``create_model(name, ...)``."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

from torch import Tensor, nn

from vidharm.errors import CheckpointError, UsageError
from vidharm.models._checkpoint import load_checkpoint

__all__ = [
    "ModelConfig",
    "register_model",
    "create_model",
    "list_models",
    "get_model_config",
    "bundled_weights_path",
    "WEIGHTS_DIR",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Folder of the weight files that ship inside the package (see its MODEL_CARD.md)."""

FilterFn = Callable[[Mapping[str, Any]], Mapping[str, Tensor]]
Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """What a registered model expects and where its weights come from.

    Attributes:
        name: registry name, e.g. ``"harmonizer"``.
        num_outputs: outputs per image (6 filter arguments for Harmonizer, 3 channels for an image model).
        input_size: side of the square network input in pixels (the model resizes to it).
        normalisation: how pixels enter the network, e.g. ``"rgb01"`` (RGB in [0, 1]) or ``"rgb-11"``.
        weight_source: where the weights come from (bundled file and/or official URL or description).
        sha256: hex digest of the bundled weight file (checked before loading), else of the official file, or
            None where unknown.
        bundled_weights: file name inside ``vidharm/models/weights/`` loaded by ``pretrained=True``, or None.
        licence: licence of the weights (the code is ours).
        description: one line for ``vidharm models``.

    Example:
        >>> ModelConfig(name="demo", num_outputs=6).input_size
        256
    """

    name: str
    num_outputs: int
    input_size: int = 256
    normalisation: str = "rgb01"
    weight_source: str = "none"
    sha256: str | None = None
    licence: str = "unknown"
    description: str = ""
    bundled_weights: str | None = None


@dataclass(frozen=True)
class _Entry:
    config: ModelConfig
    factory: Callable[..., nn.Module]
    filter_fn: FilterFn | None


_REGISTRY: dict[str, _Entry] = {}


def register_model(config: ModelConfig, filter_fn: FilterFn | None = None) -> Callable[[Factory], Factory]:
    """Decorator that registers a factory ``fn(**kwargs) -> nn.Module`` under ``config.name``.

    Args:
        config: the model's :class:`ModelConfig`.
        filter_fn: maps a loaded checkpoint (official inference or training layout) to the model's
            state_dict keys; None uses the file as it is.

    Returns:
        The decorator; it returns the factory unchanged.

    Raises:
        UsageError: another factory is already registered under this name.

    Example:
        >>> @register_model(ModelConfig(name="doc_identity", num_outputs=3))
        ... def doc_identity(**kwargs):
        ...     return nn.Identity()
        >>> "doc_identity" in list_models()
        True
        >>> _REGISTRY.pop("doc_identity").config.name  # keep the doctest from leaking into the registry
        'doc_identity'
    """

    def decorate(factory: Factory) -> Factory:
        if config.name in _REGISTRY:
            raise UsageError(
                f"model name {config.name!r} is already registered by {_REGISTRY[config.name].factory.__qualname__}; "
                "pick another name"
            )
        _REGISTRY[config.name] = _Entry(config, factory, filter_fn)
        return factory

    return decorate


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {sorted(_REGISTRY)}"
        raise UsageError(f"unknown model {name!r}; {hint} (vidharm.models.list_models() lists them)") from None


def list_models() -> list[str]:
    """Names of all registered models, sorted.

    Returns:
        The registry names.

    Example:
        >>> "harmonizer" in list_models()
        True
    """
    return sorted(_REGISTRY)


def get_model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` a model was registered with.

    Args:
        name: registry name.

    Returns:
        The config.

    Raises:
        UsageError: no model has that name (the message suggests the nearest one).

    Example:
        >>> get_model_config("harmonizer").input_size
        256
    """
    return _entry(name).config


def bundled_weights_path(name: str) -> Path | None:
    """Path of the weight file bundled for model ``name``, or None where none ships.

    Args:
        name: registry name.

    Returns:
        The file path (it exists in an intact install), or None.

    Raises:
        UsageError: no model has that name.

    Example:
        >>> bundled_weights_path("stats") is None
        True
    """
    config = _entry(name).config
    return WEIGHTS_DIR / config.bundled_weights if config.bundled_weights else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundled_checkpoint(entry: _Entry) -> Path:
    config = entry.config
    path = bundled_weights_path(config.name)
    if path is None:
        raise CheckpointError(
            f"model {config.name!r}: no pretrained weights ship with vidharm yet (official source: "
            f"{config.weight_source}); download them and pass --weights PATH (create_model(..., checkpoint=PATH))"
        )
    if not path.is_file():
        raise CheckpointError(
            f"model {config.name!r}: the bundled weights {path} are missing from this install; reinstall vidharm "
            "or pass --weights PATH"
        )
    if config.sha256 is not None:
        found = _sha256(path)
        if found != config.sha256:
            raise CheckpointError(
                f"model {config.name!r}: bundled weights {path} have sha256 {found[:16]}..., expected "
                f"{config.sha256[:16]}...; the file is damaged or replaced: reinstall vidharm or pass --weights PATH"
            )
    return path


def create_model(
    name: str,
    pretrained: bool = False,
    checkpoint: str | PathLike[str] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model, optionally load weights strictly, and return it in eval mode.

    Args:
        name: registry name (see :func:`list_models`).
        pretrained: load the weights bundled with vidharm (``harmonizer``: trained by vidharm, see
            ``vidharm/models/weights/MODEL_CARD.md``); their sha256 is checked first. Models without bundled
            weights raise unless ``checkpoint`` is given (which always takes precedence).
        checkpoint: path of a state_dict file (official inference or training layout); loaded with
            ``weights_only=True`` through the model's checkpoint filter and ``strict=True``.
        **kwargs: passed to the model's factory.

    Returns:
        The model in eval mode on the CPU, with ``model.config`` set to its :class:`ModelConfig`.

    Raises:
        UsageError: unknown name.
        CheckpointError: ``pretrained=True`` without ``checkpoint`` for a model with no bundled weights, a
            bundled file that is missing or fails its sha256, or a checkpoint that cannot be read or does not
            match the model.

    Example:
        >>> model = create_model("harmonizer_tiny")
        >>> model.config.name, model.training
        ('harmonizer_tiny', False)
    """
    entry = _entry(name)
    if pretrained and checkpoint is None:
        checkpoint = _bundled_checkpoint(entry)
    model = entry.factory(**kwargs)
    # A plain attribute (not a submodule or buffer): it is not saved in the state_dict.
    model.config = entry.config  # type: ignore[assignment]
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, filter_fn=entry.filter_fn, strict=True)
    return model.eval()
