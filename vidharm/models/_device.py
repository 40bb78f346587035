"""Which torch device a run uses."""

from __future__ import annotations

import torch

from vidharm.errors import UsageError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto`` becomes ``cuda`` when a CUDA device is present, else ``cpu``.

    Raises:
        UsageError: CUDA asked for but not available, or an unknown device name.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"device: expected auto, cpu or cuda[:N], got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device: cuda was asked for but no CUDA device is available; use --device cpu or auto")
    return device
