"""YAML presets and ``--set key=value`` overrides for frozen config dataclasses.

Each configurable package defines one frozen dataclass; :func:`load_config` fills it from a YAML file that
may set only that dataclass's fields, then applies ``key=value`` overrides (parsed by the field's type,
never with ``eval``). An unknown key is an error that suggests the nearest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from vidharm.errors import InputError, UsageError

__all__ = ["load_config", "apply_overrides", "config_to_dict", "dump_config"]

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown_key(key: str, valid: Iterable[str], where: str) -> UsageError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
    return UsageError(f"unknown key '{key}' in {where}; {hint}")


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """Convert ``value`` (from YAML or a ``--set`` string) to the field type ``kind``."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in {"none", "null", ""}):
            if type(None) in args:
                return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, option)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0] if errors else f"{key}: cannot use {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UsageError(f"{key}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin in (tuple, list):
        items = value
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(items, (list, tuple)):
            raise UsageError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else str
        return (
            tuple(_coerce(key, v, inner) for v in items) if origin is tuple else [_coerce(key, v, inner) for v in items]
        )
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise UsageError(f"{key}: expected true or false, got {value!r}")
    if kind in (int, float):
        if isinstance(value, bool):
            raise UsageError(f"{key}: expected a number, got {value!r}")
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise UsageError(f"{key}: expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
        if kind is int and isinstance(value, float) and value != number:
            raise UsageError(f"{key}: expected an integer, got {value!r}")
        return number
    if kind is str:
        if not isinstance(value, (str, int, float)):
            raise UsageError(f"{key}: expected text, got {value!r}")
        return str(value)
    return value


def apply_overrides(config: T, overrides: Mapping[str, Any] | Iterable[str]) -> T:
    """Return a copy of ``config`` with fields replaced, values converted by the field's type.

    Args:
        config: a frozen dataclass instance.
        overrides: a mapping of field name to value, or ``"key=value"`` strings as given to ``--set``.

    Returns:
        The updated dataclass instance.

    Raises:
        UsageError: an unknown key (with the nearest valid one), a malformed ``key=value`` or a bad value.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class C:
        ...     crf: int = 18
        ...     codec: str = "libx264"
        >>> apply_overrides(C(), ["crf=0", "codec=ffv1"])
        C(crf=0, codec='ffv1')
    """
    if not isinstance(overrides, Mapping):
        pairs: dict[str, Any] = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--set expects key=value, got {item!r}")
            pairs[key.strip()] = value.strip()
        overrides = pairs
    types_ = _field_types(type(config))
    changes = {}
    for key, value in overrides.items():
        if key not in types_:
            raise _unknown_key(key, types_, type(config).__name__)
        changes[key] = _coerce(key, value, types_[key])
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """Build ``cls`` from its defaults, then a YAML file, then ``key=value`` overrides.

    Args:
        cls: the frozen config dataclass.
        path: a YAML file holding a mapping of field names, or None.
        overrides: ``"key=value"`` strings, applied last.

    Returns:
        The resolved config.

    Raises:
        InputError: the YAML file is missing or not a mapping.
        UsageError: an unknown key or a bad value.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class C:
        ...     half_life_s: float = 0.5
        >>> load_config(C, None, ["half_life_s=1"])
        C(half_life_s=1.0)
    """
    import yaml

    config = cls()
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise InputError(f"{path}: cannot read the config file ({exc.strerror}); check the path") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid YAML ({exc}); fix the file") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
        try:
            config = apply_overrides(config, data)
        except UsageError as exc:
            raise UsageError(f"{path}: {exc}") from None
    return apply_overrides(config, list(overrides))


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON-compatible data (tuples become lists).

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class C:
        ...     a: int = 1
        >>> config_to_dict(C())
        {'a': 1}
    """
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def dump_config(config: Any) -> str:
    """The resolved config as YAML text, to be written beside a run's outputs.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class C:
        ...     a: int = 1
        >>> dump_config(C())
        'a: 1\\n'
    """
    import yaml

    return yaml.safe_dump(config_to_dict(config), sort_keys=False)
