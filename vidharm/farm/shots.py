"""Shots to export as farm jobs: one from the command line, or many from a CSV or YAML shot list.

A shot list names, per shot, the clip, the masks and the output (video file or image-sequence pattern),
optionally a ``name``, a ``work`` folder, a ``chunk`` size and any of the options of :data:`SHOT_OPTIONS`
(the command-line options of analyze, smooth and render). A clip that is its own mask sets
``mask_from_alpha: true`` and gives no masks. Layers give ``fg`` (the foreground element), ``bg`` (the
background plate) and optionally ``alpha`` (the foreground's alpha as masks) instead of ``clip`` and ``masks``.
CSV: one row per shot, a header row naming the columns, empty cells unset, ``set`` as ``key=value;key=value``,
switches (``mask_from_alpha``, ``premultiplied``) as ``true``/``false``. YAML: a list of mappings, or a mapping
with ``shots`` (that list) and ``defaults`` (options for every shot). Relative paths are relative to the list's
folder.

Frame numbers are the source's: a shot's chunks cover ``first_frame .. first_frame + num_frames - 1`` (0-based for
a video, from the first file number for an image sequence), and its mask folders are numbered the same way.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vidharm.config import load_config
from vidharm.errors import InputError, UsageError, VidharmError
from vidharm.pipeline import ProcessConfig, color_management
from vidharm.pipeline.render import check_mix, is_sequence_pattern

__all__ = ["SHOT_OPTIONS", "SWITCHES", "DEFAULT_CHUNK", "Shot", "is_path_value", "make_shot", "read_shot_list"]

DEFAULT_CHUNK = 100

#: Shot options: name -> (command-line flag, phases that take it, whether the value is a path). A path value
#: becomes a PATH job parameter (``ocio`` only when it is a file, not an ``ocio://`` URI); a switch
#: (:data:`SWITCHES`) is the bare flag when true.
SHOT_OPTIONS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "model": ("--model", ("analyze",), False),
    "weights": ("--weights", ("analyze",), True),
    "device": ("--device", ("analyze", "render"), False),
    "config": ("--config", ("analyze", "smooth", "render"), True),
    "batch_size": ("--batch-size", ("analyze",), False),
    "runtime": ("--runtime", ("analyze",), False),
    "analyze_stride": ("--analyze-stride", ("analyze",), False),
    "transfer": ("--transfer", ("analyze",), False),
    "decoder": ("--decoder", ("analyze", "render"), False),
    "fps": ("--fps", ("analyze", "render"), False),
    "colorspace": ("--colorspace", ("analyze", "render"), False),
    "ocio": ("--ocio", ("analyze", "render"), True),
    "stats_mask": ("--stats-mask", ("analyze",), True),
    "mask_from_alpha": ("--mask-from-alpha", ("analyze", "render"), False),
    "premultiplied": ("--premultiplied", ("analyze", "render"), False),
    "smoothing": ("--smoothing", ("analyze", "smooth"), False),  # analyze: it chooses the automatic stride
    "ema_half_life": ("--ema-half-life", ("analyze", "smooth"), False),
    "codec": ("--codec", ("render",), False),
    "crf": ("--crf", ("render",), False),
    "preset": ("--preset", ("render",), False),
    "pix_fmt": ("--pix-fmt", ("render",), False),
    "mix": ("--mix", ("render",), False),
    "lock": ("--lock", ("render",), False),
    "set": ("--set", ("analyze", "smooth", "render"), False),
}
#: Options that are on/off flags: ``true``/``false`` in a shot list, the bare flag in the commands.
SWITCHES = ("mask_from_alpha", "premultiplied")
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_SHOT_KEYS = ("name", "clip", "masks", "output", "work", "chunk", "fg", "bg", "alpha")
# Shot options that are ProcessConfig fields (validated at export time, where mistakes are cheap).
_CONFIG_FIELDS = {
    "model": "model",
    "weights": "weights",
    "device": "device",
    "batch_size": "batch_size",
    "runtime": "runtime",
    "analyze_stride": "analyze_stride",
    "transfer": "transfer",
    "decoder": "decoder",
    "colorspace": "colorspace",
    "ocio": "ocio",
    "smoothing": "smoothing",
    "ema_half_life": "half_life_s",
    "codec": "codec",
    "crf": "crf",
    "preset": "preset",
    "pix_fmt": "pix_fmt",
}
# Options whose value is a path relative to the shot list's folder (or the current one).
_RELATIVE = ("config", "weights", "stats_mask", "ocio")


def is_path_value(key: str, value: str) -> bool:
    """Whether option ``key`` with ``value`` names a file or folder (a PATH job parameter).

    Example:
        >>> is_path_value("ocio", "/show/config.ocio"), is_path_value("ocio", "ocio://studio-config-latest")
        (True, False)
    """
    return SHOT_OPTIONS[key][2] and not (key == "ocio" and str(value).startswith("ocio://"))


@dataclass(frozen=True)
class Shot:
    """One shot to harmonize on the farm.

    Attributes:
        name: a short name (job and step names, file names).
        clip: the input video or image-sequence pattern; with layers, the background plate.
        masks: folder of numbered masks or a mask video; with layers, the foreground's alpha; None for a clip
            that is its own mask (option ``mask_from_alpha``) or a foreground with its own alpha.
        output: the final video, or an image-sequence pattern (``out/frame.%05d.png``).
        work: folder for sidecars, parameters and video segments.
        chunk: frames per analyze/render task.
        options: :data:`SHOT_OPTIONS` values as text (``set``: a list of ``key=value``; switches: True).
        foreground: the foreground layer (``--fg``) over ``clip``, or None for a flattened composite.
    """

    name: str
    clip: Path
    masks: Path | None
    output: Path
    work: Path
    chunk: int = DEFAULT_CHUNK
    options: dict[str, Any] = field(default_factory=dict)
    foreground: Path | None = None

    @property
    def is_sequence(self) -> bool:
        """Whether the output is an image sequence (no concat phase)."""
        return is_sequence_pattern(self.output)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.") or "shot"


def _stem(clip: Path) -> str:
    """A clip's stem; for an image-sequence pattern without its frame token (``plate.%04d.exr`` -> ``plate``)."""
    return re.sub(r"%0?\d*d|#+|@+", "", clip.stem).strip("._-") or clip.stem


def _default_work(output: Path) -> Path:
    if is_sequence_pattern(output):
        return output.parent.with_name(output.parent.name + "_work")
    return output.with_name(output.stem + "_work")


def _nearest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(valid)}"


def _switch(key: str, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise UsageError(f"{where}: {key} is a switch: expected true or false, got {value!r}")


def _check_fps(value: str, where: str) -> None:
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(0)
    if rate <= 0:
        raise UsageError(f"{where}: fps: expected a positive frame rate such as 24, 25 or 24000/1001, got {value!r}")


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
        elif key in SWITCHES:
            if _switch(key, value, where):
                out[key] = True
        else:
            out[key] = str(value)
    if "fps" in out:
        _check_fps(out["fps"], where)
    sets = [f"{_CONFIG_FIELDS[k]}={v}" for k, v in out.items() if k in _CONFIG_FIELDS]
    for key, what in (("config", "config file"), ("stats_mask", "statistics mask"), ("ocio", "OCIO config")):
        path = out.get(key)
        if path is not None and is_path_value(key, path) and not Path(path).exists():
            raise InputError(f"{where}: {what} {path} not found; check the path")
    config = out.get("config")
    try:
        settings = load_config(ProcessConfig, config, [*sets, *out.get("set", [])])
        if "mix" in out:
            check_mix(float(out["mix"]))
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None
    try:
        color_management(settings)  # an unknown colour space or a bad OCIO config fails here, not on the farm
    except VidharmError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    return out


def make_shot(
    clip: str | Path,
    masks: str | Path | None,
    output: str | Path | None = None,
    *,
    foreground: str | Path | None = None,
    name: str | None = None,
    work: str | Path | None = None,
    chunk: int | str | None = None,
    options: Mapping[str, Any] | None = None,
    base: Path | None = None,
    where: str | None = None,
) -> Shot:
    """A checked :class:`Shot` with defaults filled in (nothing is read but the config files named).

    Args:
        clip: the input video or image-sequence pattern; with ``foreground``, the background plate.
        masks: masks folder or mask video; with ``foreground``, its alpha as masks (None: its own alpha channel);
            None with the ``mask_from_alpha`` option.
        output: the final video or sequence pattern; default ``<clip stem>_harmonized<clip suffix>`` beside it.
        foreground: the foreground layer over ``clip`` (``--fg``), or None for a flattened composite.
        name: shot name; default the clip's stem.
        work: work folder; default ``<output stem>_work`` beside the output (``<folder>_work`` for sequences).
        chunk: frames per task (default :data:`DEFAULT_CHUNK`).
        options: :data:`SHOT_OPTIONS` values.
        base: folder that relative paths are relative to (default: the current folder).
        where: how messages name the shot (default ``shot <name>``).

    Raises:
        UsageError: an unknown option (with the nearest valid name), a bad value, a chunk below 1, masks with
            ``mask_from_alpha`` or neither, ``mask_from_alpha`` with layers, ``premultiplied`` without them.
        InputError: a config file, statistics mask or OCIO config named is missing.

    Example:
        >>> shot = make_shot("a/dusk.mp4", "a/masks", options={"codec": "ffv1"}, base=Path("/farm"))
        >>> shot.name, shot.output.as_posix(), shot.work.as_posix(), shot.chunk
        ('dusk', '/farm/a/dusk_harmonized.mp4', '/farm/a/dusk_harmonized_work', 100)
        >>> make_shot("a/comp.mov", None, options={"mask_from_alpha": "true"}, base=Path("/farm")).options
        {'mask_from_alpha': True}
    """
    base = base or Path.cwd()
    clip_path = base / Path(clip)
    out = base / Path(output) if output else clip_path.with_name(f"{clip_path.stem}_harmonized{clip_path.suffix}")
    where = where or f"shot {name or _stem(clip_path)}"
    try:
        size = int(chunk) if chunk not in (None, "") else DEFAULT_CHUNK  # type: ignore[arg-type]
    except ValueError:
        raise UsageError(f"{where}: chunk must be a whole number of frames, got {chunk!r}") from None
    if size < 1:
        raise UsageError(f"{where}: chunk must be at least 1 frame, got {size}")
    opts = dict(options or {})
    for key in _RELATIVE:
        if opts.get(key) and is_path_value(key, str(opts[key])):
            opts[key] = str(base / Path(str(opts[key])))
    checked = _check_options(opts, where)
    has_masks = masks not in (None, "")
    if foreground not in (None, ""):
        if checked.get("mask_from_alpha"):
            raise UsageError(
                f"{where}: mask_from_alpha is for a flattened clip; with layers (fg/bg) the foreground's own alpha "
                "is the default, or give alpha"
            )
    elif checked.get("premultiplied"):
        raise UsageError(f"{where}: premultiplied goes with layers (fg, bg); a flattened clip has no foreground")
    elif has_masks and checked.get("mask_from_alpha"):
        raise UsageError(f"{where}: give either masks or mask_from_alpha, not both (the clip's alpha is its mask)")
    elif not has_masks and not checked.get("mask_from_alpha"):
        raise UsageError(f"{where}: no masks; give the masks (folder or mask video), or mask_from_alpha: true")
    return Shot(
        name=_safe_name(name or _stem(clip_path)),
        clip=clip_path,
        masks=base / Path(masks) if has_masks else None,  # type: ignore[arg-type]
        output=out,
        work=base / Path(work) if work else _default_work(out),
        chunk=size,
        options=checked,
        foreground=base / Path(foreground) if foreground not in (None, "") else None,  # type: ignore[arg-type]
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


def _shot_inputs(row: Mapping[str, Any], options: Mapping[str, Any], where: str) -> tuple[str, str | None, str | None]:
    """(clip, masks, foreground) of a shot-list row: clip and masks, or fg, bg and alpha (layers)."""
    if row.get("fg") or row.get("bg"):
        given = [k for k in ("clip", "masks") if row.get(k)]
        if given:
            raise InputError(f"{where}: layers take fg, bg and alpha, not {' and '.join(given)}; give one or the other")
        if not (row.get("fg") and row.get("bg")):
            raise InputError(f"{where}: layers need both fg (the foreground element) and bg (the background plate)")
        return str(row["bg"]), (str(row["alpha"]) if row.get("alpha") else None), str(row["fg"])
    if row.get("alpha"):
        raise InputError(f"{where}: alpha goes with layers (fg, bg); for a clip give its masks")
    if not row.get("clip"):
        raise InputError(f"{where}: no clip; every shot needs clip, masks and (optionally) output, or fg and bg")
    alpha = options.get("mask_from_alpha") not in (None, "") and _switch(
        "mask_from_alpha", options["mask_from_alpha"], where
    )
    if not row.get("masks") and not alpha:
        raise InputError(
            f"{where}: no masks; every shot needs clip, masks (or mask_from_alpha: true) and (optionally) output"
        )
    return str(row["clip"]), (str(row["masks"]) if row.get("masks") else None), None


def read_shot_list(path: str | Path, defaults: Mapping[str, Any] | None = None) -> list[Shot]:
    """Read a CSV or YAML shot list (see the module docstring).

    Args:
        path: ``.csv``, ``.yaml`` or ``.yml``.
        defaults: options for every shot (e.g. from the command line); the list's values win.

    Returns:
        The shots in list order, names made unique (``a``, ``a_2``).

    Raises:
        InputError: unreadable list, a shot without clip or masks (or fg and bg), no shots.
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
        options = {**(defaults or {}), **{k: v for k, v in row.items() if k not in _SHOT_KEYS}}
        clip, masks, foreground = _shot_inputs(row, options, where)
        shot = make_shot(
            clip,
            masks,
            row.get("output") or None,
            foreground=foreground,
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
