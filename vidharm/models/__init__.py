"""Model registry, checkpoint loading and the networks (Harmonizer, HDNet).

``create_model(name, checkpoint=path)`` builds a registered model and strictly loads its weights.
Importing this package registers every built-in model.
"""

# ruff: noqa: I001  (the registry must be imported before the model packages that register on import)
from __future__ import annotations

from vidharm.models._checkpoint import LoadResult, load_checkpoint, load_state_dict_file
from vidharm.models._device import resolve_device
from vidharm.models._registry import ModelConfig, create_model, get_model_config, list_models, register_model

from vidharm.models import harmonizer as harmonizer  # registers harmonizer, harmonizer_tiny, stats
from vidharm.models import hdnet as hdnet  # registers the HDNet models

__all__ = [
    "ModelConfig",
    "register_model",
    "create_model",
    "list_models",
    "get_model_config",
    "load_state_dict_file",
    "load_checkpoint",
    "LoadResult",
    "resolve_device",
    "harmonizer",
    "hdnet",
]
