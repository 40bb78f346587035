"""The vidharm error tree and small input checks shared by every package.

Every error subclasses :class:`VidharmError` and the matching builtin, so callers can catch either.
Each class carries the process exit code the command line uses for its family:

* 2 -- usage (bad flags, bad values given on the command line),
* 3 -- input (clip, masks, parameter files that cannot be used),
* 4 -- model (checkpoint missing, not a checkpoint, wrong keys or shapes),
* 5 -- output (cannot write the result).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "VidharmError",
    "UsageError",
    "InputError",
    "MaskError",
    "ShapeError",
    "CheckpointError",
    "OutputError",
    "check_shape",
    "check_finite",
]


class VidharmError(Exception):
    """Base of all vidharm errors; ``exit_code`` is what the command line exits with."""

    exit_code: int = 1


class UsageError(VidharmError, ValueError):
    """A flag or setting has a value that cannot be used."""

    exit_code = 2


class InputError(VidharmError, ValueError):
    """An input file (clip, image, parameter file) is missing, unreadable or inconsistent."""

    exit_code = 3


class MaskError(InputError):
    """Masks are missing, unreadable, or do not match the clip."""


class ShapeError(VidharmError, ValueError):
    """A tensor or array has the wrong shape."""

    exit_code = 3


class CheckpointError(VidharmError, ValueError):
    """A checkpoint is missing, is not a checkpoint, or does not match the model."""

    exit_code = 4


class OutputError(VidharmError, OSError):
    """The output cannot be written."""

    exit_code = 5


def check_shape(name: str, shape: Sequence[int], expected: Sequence[int | None]) -> None:
    """Raise ShapeError unless ``shape`` matches ``expected`` (``None`` matches any size).

    Args:
        name: what the array is called in the message, e.g. ``"image"``.
        shape: the actual shape.
        expected: the wanted shape; ``None`` entries match any size.

    Raises:
        ShapeError: rank or a fixed size differs.

    Example:
        >>> check_shape("args", (2, 6), (None, 6))
        >>> check_shape("args", (2, 5), (None, 6))
        Traceback (most recent call last):
        ...
        vidharm.errors.ShapeError: args: expected shape (B, 6), got (2, 5)
    """
    ok = len(shape) == len(expected) and all(e is None or e == s for s, e in zip(shape, expected, strict=True))
    if not ok:
        letters = iter("BCHWXYZ")
        want = ", ".join(next(letters) if e is None else str(e) for e in expected)
        raise ShapeError(f"{name}: expected shape ({want}), got {tuple(shape)}")


def check_finite(name: str, values: Sequence[float]) -> None:
    """Raise InputError if any value is NaN or infinite.

    Args:
        name: what the values are, for the message.
        values: the numbers to check.

    Raises:
        InputError: a value is not finite.

    Example:
        >>> check_finite("raw", [0.1, -0.2])
        >>> check_finite("raw", [0.1, float("nan")])
        Traceback (most recent call last):
        ...
        vidharm.errors.InputError: raw: value 1 is nan; every value must be a finite number
    """
    for i, v in enumerate(values):
        if not math.isfinite(v):
            raise InputError(f"{name}: value {i} is {v}; every value must be a finite number")
