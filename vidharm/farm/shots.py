"""Shots to export as farm jobs: one from the command line, or many from a CSV or YAML shot list.

A shot list names, per shot, the clip, the masks and the output (video file or image-sequence pattern),
optionally a ``name``, a ``work`` folder, a ``chunk`` size and any of the options of :data:`SHOT_OPTIONS`
(the command-line options of analyze, smooth and render). CSV: one row per shot, a header row naming the
columns, empty cells unset, ``set`` as ``key=value;key=value``. YAML: a list of mappings, or a mapping with
``shots`` (that list) and ``defaults`` (options for every shot). Relative paths are relative to the list's
folder.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidharm.config import load_config
from vidharm.errors import InputError, UsageError
from vidharm.pipeline import ProcessConfig
from vidharm.pipeline.render import check_mix, is_sequence_pattern

__all__ = ["SHOT_OPTIONS", "DEFAULT_CHUNK", "Shot", "make_shot", "read_shot_list"]

DEFAULT_CHUNK = 100

#: Shot options: name -> (command-line flag, phases that take it, whether the value is a path).
SHOT_OPTIONS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "model": ("--model", ("analyze",), False),
    "weights": ("--weights", ("analyze",), True),
    "device": ("--device", ("analyze", "render"), False),
    "config": ("--config", ("analyze", "smooth", "render"), True),
    "batch_size": ("--batch-size", ("analyze",), False),
    "transfer": ("--transfer", ("analyze",), False),
    "decoder": ("--decoder", ("analyze", "render"), False),
    "smoothing": ("--smoothing", ("smooth",), False),
    "ema_half_life": ("--ema-half-life", ("smooth",), False),
    "codec": ("--codec", ("render",), False),
    "crf": ("--crf", ("render",), False),
    "preset": ("--preset", ("render",), False),
    "pix_fmt": ("--pix-fmt", ("render",), False),
    "mix": ("--mix", ("render",), False),
    "lock": ("--lock", ("render",), False),
    "set": ("--set", ("analyze", "smooth", "render"), False),
}
_SHOT_KEYS = ("name", "clip", "masks", "output", "work", "chunk")
# Shot options that are ProcessConfig fields (validated at export time, where mistakes are cheap).
_CONFIG_FIELDS = {
    "model": "model",
    "weights": "weights",
    "device": "device",
    "batch_size": "batch_size",
    "transfer": "transfer",
    "decoder": "decoder",
    "smoothing": "smoothing",
    "ema_half_life": "half_life_s",
    "codec": "codec",
    "crf": "crf",
    "preset": "preset",
    "pix_fmt": "pix_fmt",
}


@dataclass(frozen=True)
class Shot:
    """One shot to harmonize on the farm.

    Attributes:
        name: a short name (job and step names, file names).
        clip: the input video.
        masks: folder of numbered masks or a mask video.
        output: the final video, or an image-sequence pattern (``out/frame.%05d.png``).
        work: folder for sidecars, parameters and video segments.
        chunk: frames per analyze/render task.
        options: :data:`SHOT_OPTIONS` values as text (``set``: a list of ``key=value``).
    """

    name: str
    clip: Path
    masks: Path
    output: Path
    work: Path
    chunk: int = DEFAULT_CHUNK
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_sequence(self) -> bool:
        """Whether the output is an image sequence (no concat phase)."""
        return is_sequence_pattern(self.output)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "shot"


def _default_work(output: Path) -> Path:
    if is_sequence_pattern(output):
        return output.parent.with_name(output.parent.name + "_work")
    return output.with_name(output.stem + "_work")


def _nearest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(valid)}"


def _check_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    valid = sorted(SHOT_OPTIONS)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in SHOT_OPTIONS:
            raise UsageError(f"{where}: unknown option {key!r}; {_nearest(key, valid + list(_SHOT_KEYS))}")
        if value is None or value == "":
            continue
        if key == "set":
            items = value if isinstance(value, list) else [s for s in str(value).split(";") if s.strip()]
            out[key] = [str(s).strip() for s in items]
        else:
            out[key] = str(value)
    sets = [f"{_CONFIG_FIELDS[k]}={v}" for k, v in out.items() if k in _CONFIG_FIELDS]
    config = out.get("config")
    if config is not None and not Path(config).is_file():
        raise InputError(f"{where}: config file {config} not found; check the path")
    try:
        load_config(ProcessConfig, config, [*sets, *out.get("set", [])])
        if "mix" in out:
            check_mix(float(out["mix"]))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return out


def make_shot(
    clip: str | Path,
    masks: str | Path,
    output: str | Path | None = None,
    *,
    name: str | None = None,
    work: str | Path | None = None,
    chunk: int | str | None = None,
    options: Mapping[str, Any] | None = None,
    base: Path | None = None,
    where: str | None = None,
) -> Shot:
    """A checked :class:`Shot` with defaults filled in (nothing is read but the config file).

    Args:
        clip: the input video.
        masks: masks folder or mask video.
        output: the final video or sequence pattern; default ``<clip stem>_harmonized<clip suffix>`` beside it.
        name: shot name; default the clip's stem.
        work: work folder; default ``<output stem>_work`` beside the output (``<folder>_work`` for sequences).
        chunk: frames per task (default :data:`DEFAULT_CHUNK`).
        options: :data:`SHOT_OPTIONS` values.
        base: folder that relative paths are relative to (default: the current folder).
        where: how messages name the shot (default ``shot <name>``).

    Raises:
        UsageError: an unknown option (with the nearest valid name), a bad value, a chunk below 1.
        InputError: the config file named is missing.

    Example:
        >>> shot = make_shot("a/dusk.mp4", "a/masks", options={"codec": "ffv1"}, base=Path("/farm"))
        >>> shot.name, shot.output.as_posix(), shot.work.as_posix(), shot.chunk
        ('dusk', '/farm/a/dusk_harmonized.mp4', '/farm/a/dusk_harmonized_work', 100)
    """
    base = base or Path.cwd()
    clip_path = base / Path(clip)
    out = base / Path(output) if output else clip_path.with_name(f"{clip_path.stem}_harmonized{clip_path.suffix}")
    where = where or f"shot {name or clip_path.stem}"
    try:
        size = int(chunk) if chunk not in (None, "") else DEFAULT_CHUNK  # type: ignore[arg-type]
    except ValueError:
        raise UsageError(f"{where}: chunk must be a whole number of frames, got {chunk!r}") from None
    if size < 1:
        raise UsageError(f"{where}: chunk must be at least 1 frame, got {size}")
    opts = dict(options or {})
    for key in ("config", "weights"):
        if opts.get(key):
            opts[key] = str(base / Path(str(opts[key])))
    return Shot(
        name=_safe_name(name or clip_path.stem),
        clip=clip_path,
        masks=base / Path(masks),
        output=out,
        work=base / Path(work) if work else _default_work(out),
        chunk=size,
        options=_check_options(opts, where),
    )


def _rows_from_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames:
            raise InputError(f"{path}: empty shot list; expected a header row such as clip,masks,output")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return [r for r in rows if any(r.values())]


def _rows_from_yaml(path: Path) -> list[dict[str, Any]]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc}); fix the shot list") from None
    defaults: dict[str, Any] = {}
    if isinstance(data, dict):
        defaults = data.get("defaults") or {}
        unknown = set(data) - {"shots", "defaults"}
        if unknown or not isinstance(defaults, dict):
            raise InputError(f"{path}: a YAML shot list is a list of shots, or a mapping with shots and defaults")
        data = data.get("shots")
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError(f"{path}: expected a list of shots (mappings with clip, masks, output)")
    return [{**defaults, **row} for row in data]


def read_shot_list(path: str | Path, defaults: Mapping[str, Any] | None = None) -> list[Shot]:
    """Read a CSV or YAML shot list (see the module docstring).

    Args:
        path: ``.csv``, ``.yaml`` or ``.yml``.
        defaults: options for every shot (e.g. from the command line); the list's values win.

    Returns:
        The shots in list order, names made unique (``a``, ``a_2``).

    Raises:
        InputError: unreadable list, a shot without clip or masks, no shots.
        UsageError: unknown columns or options (with the nearest valid name), bad values.
    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "shots.csv").write_text("clip,masks,output,codec\\na.mp4,a_masks,out/a.mkv,ffv1\\n")
        >>> (shot,) = read_shot_list(folder / "shots.csv", defaults={"preset": "ultrafast"})
        >>> shot.name, shot.output.relative_to(folder).as_posix(), shot.options
        ('a', 'out/a.mkv', {'preset': 'ultrafast', 'codec': 'ffv1'})
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: shot list not found; check the path")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _rows_from_csv(path)
    elif suffix in (".yaml", ".yml"):
        rows = _rows_from_yaml(path)
    else:
        raise UsageError(f"{path}: a shot list is .csv, .yaml or .yml, got {path.suffix!r}")
    if not rows:
        raise InputError(f"{path}: no shots in the list")
    shots: list[Shot] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        where = f"{path.name}, shot {i}"
        for key in ("clip", "masks"):
            if not row.get(key):
                raise InputError(f"{where}: no {key}; every shot needs clip, masks and (optionally) output")
        options = {**(defaults or {}), **{k: v for k, v in row.items() if k not in _SHOT_KEYS}}
        shot = make_shot(
            row["clip"],
            row["masks"],
            row.get("output") or None,
            name=row.get("name") or None,
            work=row.get("work") or None,
            chunk=row.get("chunk") or (defaults or {}).get("chunk"),
            options={k: v for k, v in options.items() if k != "chunk"},
            base=path.parent.resolve(),
            where=where,
        )
        count = seen.get(shot.name, 0) + 1
        seen[shot.name] = count
        if count > 1:
            shot = Shot(**{**shot.__dict__, "name": f"{shot.name}_{count}"})
        shots.append(shot)
    return shots
