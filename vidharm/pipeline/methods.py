"""How a model's per-frame output becomes a parameter row, and how a row is applied at full resolution.

* ``filters``: models that predict the six filter arguments (``stats``, ``harmonizer``). A row holds the
  six raw arguments and the four global statistics the filters take from the frame.
* ``affine`` / ``poly2``: image models (HDNet) run at their input size; a global colour transform (3x4
  affine, or a 3x10 second-order polynomial) is fitted from the network's input to its output over the
  foreground and applied to the full-resolution frame. A row holds its 12 or 30 coefficients.
* ``local``: a grid of local affine colour transforms (default 8x8 cells), fitted the same way and
  interpolated smoothly to full resolution, where each pixel's own colour goes through its cell's
  transform, so local adjustments are not flattened into a global one. A row holds grid x 12 coefficients.

Every kind's row is a flat vector, so smoothing, the farm, editing and plots treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from vidharm.errors import InputError, UsageError
from vidharm.filters import (
    DEFAULT_GRID,
    FILTER_NAMES,
    NUM_ARGS,
    apply_color_transform,
    apply_filters,
    apply_local_affine_grid,
    color_transform_size,
    fit_color_transform,
    fit_local_affine_grid,
)
from vidharm.models import get_model_config

__all__ = ["Method", "TRANSFERS", "STATS_NAMES", "method_for_model"]

#: How an image model's 256-px result is carried to full resolution.
TRANSFERS = ("local", "affine", "poly2")
STATS_NAMES = ("mean_r", "mean_g", "mean_b", "contrast_pivot")
_DEGREE = {"affine": 1, "poly2": 2}


@dataclass(frozen=True)
class Method:
    """A render method: ``filters``, ``affine``, ``poly2`` or ``local`` (with its grid).

    Example:
        >>> Method("affine").num_args, Method("local", (2, 3)).num_args, Method("filters").stats_names[0]
        (12, 72, 'mean_r')
    """

    kind: str
    grid: tuple[int, int] = DEFAULT_GRID

    def __post_init__(self) -> None:
        if self.kind not in ("filters", *TRANSFERS):
            raise UsageError(f"unknown render method {self.kind!r}; expected filters, {', '.join(TRANSFERS)}")

    @property
    def num_args(self) -> int:
        if self.kind == "filters":
            return NUM_ARGS
        if self.kind == "local":
            return self.grid[0] * self.grid[1] * 12
        return color_transform_size(_DEGREE[self.kind])

    @property
    def arg_names(self) -> list[str]:
        if self.kind == "filters":
            return list(FILTER_NAMES)
        if self.kind == "local":
            return [f"cell{r}_{c}.m{k}" for r in range(self.grid[0]) for c in range(self.grid[1]) for k in range(12)]
        return [f"m{k}" for k in range(self.num_args)]

    @property
    def stats_names(self) -> tuple[str, ...]:
        return STATS_NAMES if self.kind == "filters" else ()

    def to_header(self) -> dict[str, Any]:
        return {"kind": self.kind, **({"grid": list(self.grid)} if self.kind == "local" else {})}

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> Method:
        """The method a sidecar was made with (sidecars without one are ``filters``).

        Raises:
            InputError: an unknown method or a malformed grid.
        """
        spec = header.get("method") or {"kind": "filters"}
        try:
            grid = tuple(int(v) for v in spec.get("grid", DEFAULT_GRID))
            if len(grid) != 2 or min(grid) < 1:
                raise ValueError
            return cls(str(spec.get("kind")), (grid[0], grid[1]))
        except (UsageError, ValueError, TypeError, AttributeError):
            raise InputError(f"the parameter file's header.method {spec!r} is not one this vidharm knows") from None

    def predict(self, model: nn.Module, image: Tensor, mask: Tensor) -> Tensor:
        """One row per image from the model run on (B, 3, S, S) images and (B, 1, S, S) masks.

        Returns:
            (B, num_args) float32 raw values.
        """
        out = model(image, mask).float()
        if self.kind == "filters":
            return out
        if self.kind == "local":
            return fit_local_affine_grid(image.float(), out, mask.float(), grid=self.grid).flatten(1)
        return fit_color_transform(image.float(), out, mask.float(), degree=_DEGREE[self.kind])

    def apply(self, image: Tensor, args: Tensor, stats: Tensor | None = None) -> Tensor:
        """Apply rows to full-resolution images (no mask blend).

        Args:
            image: (B, 3, H, W) RGB in [0, 1].
            args: (B, num_args) row values.
            stats: (B, 4) filter statistics for ``filters`` (None measures them on ``image``).

        Returns:
            (B, 3, H, W) in [0, 1].
        """
        if self.kind == "filters":
            return apply_filters(image, args, stats)
        if self.kind == "local":
            grid = args.reshape(args.shape[0], self.grid[0], self.grid[1], 12)
            return apply_local_affine_grid(image, grid)
        return apply_color_transform(image, args, degree=_DEGREE[self.kind])


def method_for_model(model: str, transfer: str) -> Method:
    """The method for a registered model: ``filters`` for argument models, ``transfer`` for image models.

    Raises:
        UsageError: an unknown model or transfer.

    Example:
        >>> method_for_model("stats", "local").kind, method_for_model("hdnet", "affine").kind
        ('filters', 'affine')
    """
    outputs = get_model_config(model).num_outputs
    if outputs == NUM_ARGS:
        return Method("filters")
    if outputs == 3:
        if transfer not in TRANSFERS:
            raise UsageError(f"transfer: expected one of {', '.join(TRANSFERS)}, got {transfer!r}")
        return Method(transfer)
    raise UsageError(f"model {model} has {outputs} outputs per image; vidharm renders 6 arguments or 3 channels")


def stack_rows(values: list[list[float]], device: torch.device) -> Tensor:
    """Rows as a (B, K) float32 tensor on ``device``."""
    return torch.tensor(values, dtype=torch.float32, device=device)
