"""White-box editing of a parameter track: keyframe CSVs, locked arguments, per-range smoothing, stills by hand.

A person edits what render applies, never the network: every function here takes a
:class:`~vidharm.pipeline.params.ParamsTrack` and returns a new one whose ``smoothed``/``smoothed_stats`` are
the values to render (``raw`` keeps the model's prediction, so a plot shows the edit against it).

The keyframe CSV (:func:`read_keyframes`)::

    frame,brightness,contrast,half_life_s,smoothing
    0,0.10,,,
    48,0.25,-0.1,,
    120,,,1.5,zero_lag

* ``frame`` comes first: the source frame number (an image sequence's file number, so a CSV for
  ``plate.1001.exr`` .. starts at 1001; a video counts from 0; the base track's ``header.first_frame`` maps it
  to its row, see :mod:`vidharm.pipeline.params`). Then any of the six arguments (``temperature``,
  ``brightness``, ``contrast``, ``saturation``, ``highlight``, ``shadow``) and the smoothing columns
  ``half_life_s`` and ``smoothing``, in any order. Names are case-insensitive; blank lines and lines starting
  with ``#`` are skipped. Tracks of image models rendered through a colour transform name their coefficients
  instead (``m0`` .. ``m11`` for ``affine``; ``read_keyframes(..., names=track.method.arg_names)``).
* An argument cell is an absolute value (the raw argument; the filters clamp it to [-1, 1]). An empty cell
  is no keyframe, so each argument has its own keyframes. Between its keyframes an argument is interpolated
  linearly in frame number, and before its first and after its last keyframe it holds that value. A
  keyframed argument is rendered exactly as interpolated (no smoothing on top: the ramp is already smooth).
* ``half_life_s`` (seconds, >= 0; 0 is off) and ``smoothing`` (``ema``, ``zero_lag``, ``off``) set the
  smoothing of the arguments the CSV does not keyframe, and of the filters' statistics, from that row's
  frame on, until a later row sets them again; a cell left empty keeps the setting in force (a half-life
  > 0 given while the mode is ``off`` switches it to ``ema``). Before the first such row the base track's
  own settings hold, and those frames keep their values (exactly, for ``ema`` and ``off``; ``zero_lag``
  looks ahead, so they may move slightly). The half-life changes continuously at a row: the smoother runs on
  a time axis stretched by ``1 / half_life_s`` (an EMA with a per-step weight ``1 - 2 ** (-dt / h)``), so the
  state carries over instead of restarting. Scene cuts still restart it.

Mix (the strength of the harmonization) is applied at render time, not in the track: ``render_frame(...,
mix=m)`` multiplies the mask by ``m``, which is exactly ``out = input + m * (harmonized - input)``.

The contrast pivot (the fourth statistic) is the mean of the frame after temperature and brightness; when an
edit changes those two, the pivot is rescaled by the ratio of that mean computed from the stored channel
means with the new and the old arguments. That is exact where neither gain clips a pixel, and an estimate
otherwise (analyze the clip again for exact statistics).
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from vidharm.errors import InputError, UsageError
from vidharm.filters import FILTER_NAMES, NUM_ARGS, adjust_brightness, adjust_temperature
from vidharm.pipeline.analyze import analyze
from vidharm.pipeline.inputs import ClipInput
from vidharm.pipeline.params import ParamsTrack, round_args
from vidharm.pipeline.settings import SMOOTHING_MODES, ProcessConfig
from vidharm.temporal import detect_scene_cuts, smooth_track

__all__ = [
    "SMOOTHING_COLUMNS",
    "Keyframes",
    "read_keyframes",
    "apply_keyframes",
    "lock_args",
    "parse_locks",
    "parse_arg_values",
    "neutral_track",
]

log = logging.getLogger(__name__)

SMOOTHING_COLUMNS: tuple[str, ...] = ("half_life_s", "smoothing")
"""Optional keyframe-CSV columns that set the smoothing from a row's frame on."""

_DECIMALS = 6  # as smooth() stores smoothed values
# Warped-time step of an "off" row: 2 ** -60 underflows 1 - alpha to 0, so the EMA takes the sample as is.
_OFF_STEP = 60.0


@dataclass(frozen=True)
class Keyframes:
    """A parsed keyframe CSV (see the module docstring).

    Attributes:
        source: where it came from, for messages (a path, or ``<string>``).
        args: per argument name, its keyframes as ``(frame, value)`` pairs with increasing frames.
        smoothing: ``(frame, mode or None, half_life_s or None)`` for each row that sets the smoothing.
        lines: the CSV line of each row's frame, for messages.

    Example:
        >>> keys = Keyframes("<string>", {"brightness": ((0, 0.0), (10, 1.0))})
        >>> keys.curve("brightness", np.array([-5, 0, 5, 10, 20])).tolist()
        [0.0, 0.0, 0.5, 1.0, 1.0]
    """

    source: str
    args: Mapping[str, tuple[tuple[int, float], ...]]
    smoothing: tuple[tuple[int, str | None, float | None], ...] = ()
    lines: Mapping[int, int] = field(default_factory=dict)

    @property
    def frames(self) -> list[int]:
        """Every frame a row names, ascending."""
        found = {f for keys in self.args.values() for f, _ in keys} | {f for f, _, _ in self.smoothing}
        return sorted(found)

    def curve(self, name: str, frames: np.ndarray) -> np.ndarray:
        """The argument ``name`` at ``frames``: linear between keyframes, held outside them (float64)."""
        keys = self.args[name]
        return np.interp(
            np.asarray(frames, dtype=np.float64),
            np.array([f for f, _ in keys], dtype=np.float64),
            np.array([v for _, v in keys], dtype=np.float64),
        )


def _nearest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? " if close else ""


def _number(text: str, where: str, *, what: str = "a number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number; expected {what} (use . as the decimal point)") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: {text!r} is not finite; every value must be a finite number")
    return value


def read_keyframes(
    path: str | Path | None = None, *, text: str | None = None, names: Sequence[str] = FILTER_NAMES
) -> Keyframes:
    """Read and validate a keyframe CSV.

    Args:
        path: the CSV file (UTF-8, a byte-order mark is accepted), or None with ``text``.
        text: the CSV content itself, instead of ``path``.
        names: the argument columns allowed: the six filter arguments, or ``track.method.arg_names`` of
            the base track (colour-transform coefficients such as ``m0`` .. ``m11``).

    Returns:
        The keyframes, with each argument's keys in frame order.

    Raises:
        InputError: missing or unreadable file; no ``frame`` first column; an unknown column (the message
            names the nearest valid one); a repeated column; a cell that is not a number, or is NaN or
            infinite; a frame that is not a whole number >= 0; frames not in increasing order or repeated; a
            negative half-life or an unknown smoothing mode; or nothing to apply.

    Example:
        >>> keys = read_keyframes(text="frame,brightness,smoothing\\n0,0.1,\\n24,,off\\n48,0.3,\\n")
        >>> keys.args["brightness"], keys.smoothing
        (((0, 0.1), (48, 0.3)), ((24, 'off', None),))
    """
    if text is None:
        if path is None:
            raise UsageError("read_keyframes: give a path or text")
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"{source}: keyframe file not found; check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{source}: cannot read the keyframe CSV ({exc}); save it as UTF-8 text") from None
    else:
        source = "<string>" if path is None else str(path)
        text = text.removeprefix("\ufeff")
    names = [n.lower() for n in names]
    known = ("frame", *names, *SMOOTHING_COLUMNS)
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    args: dict[str, list[tuple[int, float]]] = {}
    smoothing: list[tuple[int, str | None, float | None]] = []
    lines: dict[int, int] = {}
    previous: int | None = None
    for cells in reader:
        line = reader.line_num
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = [c.lower() for c in cells]
            _check_header(source, header, known, line)
            args = {name: [] for name in header[1:] if name in names}
            continue
        where = f"{source} line {line}"
        if len(cells) > len(header) and any(cells[len(header) :]):
            raise InputError(
                f"{where}: {len(cells)} cells but the header names {len(header)} columns; "
                "remove the extra cells or name their column"
            )
        cells += [""] * (len(header) - len(cells))
        frame = _frame(cells[0], where)
        if previous is not None and frame <= previous:
            if frame == previous:
                raise InputError(
                    f"{where}: frame {frame} appears twice (also line {lines[frame]}); keep one row per frame"
                )
            raise InputError(f"{where}: frame {frame} comes after frame {previous}; sort the rows by frame")
        previous = frame
        lines[frame] = line
        mode: str | None = None
        half_life: float | None = None
        for name, cell in zip(header[1:], cells[1 : len(header)], strict=True):
            if not cell:
                continue
            if name in args:
                args[name].append((frame, _number(cell, f"{where}, column {name}")))
            elif name == "half_life_s":
                half_life = _number(cell, f"{where}, column half_life_s", what="seconds >= 0")
                if half_life < 0:
                    raise InputError(f"{where}: half_life_s is {cell}; expected seconds >= 0 (0 turns smoothing off)")
            else:
                mode = cell.lower()
                if mode not in SMOOTHING_MODES:
                    raise InputError(
                        f"{where}: smoothing {cell!r} is not one of {', '.join(SMOOTHING_MODES)}; "
                        f"{_nearest(mode, SMOOTHING_MODES)}fix the cell"
                    )
        if mode is not None or half_life is not None:
            smoothing.append((frame, mode, half_life))
    if header is None:
        raise InputError(f"{source}: the keyframe CSV is empty; expected a header line such as frame,{names[0]}")
    if not any(args.values()) and not smoothing:
        raise InputError(
            f"{source}: no keyframe and no smoothing setting in any row; add rows such as 0,0.1 under the header"
        )
    empty = [name for name, keys in args.items() if not keys]
    if empty:
        log.warning("%s: column %s has no values; the base track is used for it", source, ", ".join(empty))
    return Keyframes(
        source=source,
        args={name: tuple(keys) for name, keys in args.items() if keys},
        smoothing=tuple(smoothing),
        lines=lines,
    )


def _check_header(source: str, header: list[str], known: Sequence[str], line: int) -> None:
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        raise InputError(
            f"{source} line {line}: the header {header[0]!r} is not comma-separated; save the CSV with commas"
        )
    if header[0] != "frame":
        raise InputError(
            f"{source} line {line}: the first column must be 'frame', got {header[0]!r}; "
            f"expected a header such as frame,brightness,contrast"
        )
    seen: set[str] = set()
    for name in header[1:]:
        if name not in known or name == "frame":
            listed = ", ".join(known[1:]) if len(known) <= 12 else f"{', '.join(known[1:7])} ... {known[-3]}"
            raise InputError(
                f"{source} line {line}: unknown column {name!r}; {_nearest(name, known[1:])}"
                f"the columns are frame, then any of {listed}, {', '.join(SMOOTHING_COLUMNS)}"
            )
        if name in seen:
            raise InputError(f"{source} line {line}: column {name!r} appears twice; keep one")
        seen.add(name)


def _frame(cell: str, where: str) -> int:
    try:
        value = float(cell)
    except ValueError:
        raise InputError(f"{where}: frame {cell!r} is not a number; expected a frame number such as 120") from None
    if not math.isfinite(value) or value != int(value) or value < 0:
        raise InputError(f"{where}: frame {cell!r} is not a frame number; expected a whole number >= 0")
    return int(value)


def _pivot_base(args: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """Mean over channels of the stored channel means after temperature and brightness (clips ignored)."""
    means = torch.from_numpy(np.ascontiguousarray(stats[:, :3], dtype=np.float64))
    a = torch.from_numpy(np.clip(args[:, :2], -1.0, 1.0).astype(np.float64))
    z = adjust_brightness(adjust_temperature(means.view(-1, 3, 1, 1), a[:, 0], mean_rgb=means), a[:, 1])
    return z.mean(dim=(1, 2, 3)).numpy()


def _follow_pivot(old_args: np.ndarray, new_args: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """``stats`` with the pivot rescaled on the rows whose temperature or brightness changed (filters only)."""
    if stats.shape[1] != 4 or old_args.shape[1] != NUM_ARGS:
        return stats
    changed = np.any(old_args[:, :2] != new_args[:, :2], axis=1)
    if not changed.any():
        return stats
    out = stats.copy()
    before = _pivot_base(old_args[changed], stats[changed])
    after = _pivot_base(new_args[changed], stats[changed])
    ratio = np.divide(after, before, out=np.ones_like(after), where=before > 0)
    out[changed, 3] = np.clip(stats[changed, 3] * ratio, 0.0, 1.0)
    return out


def _applied(track: ParamsTrack) -> tuple[np.ndarray, np.ndarray]:
    method, n = track.method, len(track.frames)
    args = np.array([r.applied()[0] for r in track.frames], dtype=np.float64).reshape(n, method.num_args)
    stats = np.array([r.applied()[1] for r in track.frames], dtype=np.float64).reshape(n, len(method.stats_names))
    return args, stats


def _merge(new: np.ndarray, old: np.ndarray, stored: list[float]) -> list[float]:
    # Values an edit did not change are kept as stored, so it never re-rounds what it did not touch.
    rounded = round_args(new, _DECIMALS)
    return [r if n != o else p for n, o, p, r in zip(new, old, stored, rounded, strict=True)]


def _with_applied(track: ParamsTrack, args: np.ndarray, stats: np.ndarray, header: dict[str, object]) -> ParamsTrack:
    old_args, old_stats = _applied(track)
    rows = []
    for row, a, s, oa, os_ in zip(track.frames, args, stats, old_args, old_stats, strict=True):
        applied_args, applied_stats = row.applied()
        rows.append(
            dataclasses.replace(
                row, smoothed=_merge(a, oa, list(applied_args)), smoothed_stats=_merge(s, os_, list(applied_stats))
            )
        )
    return ParamsTrack(header=header, frames=rows)


def _edits(header: Mapping[str, object], entry: dict[str, object]) -> dict[str, object]:
    previous = header.get("edits")
    return {**header, "edits": [*(previous if isinstance(previous, list) else []), entry]}


def _cuts(track: ParamsTrack) -> list[int]:
    """Row indices where a shot starts: the base's recorded cuts, else detected from the signatures."""
    smoothing = track.header.get("smoothing")
    recorded = smoothing.get("cuts") if isinstance(smoothing, dict) else None
    if isinstance(smoothing, dict) and smoothing.get("mode") not in (None, "off") and smoothing.get("half_life_s"):
        frames = set(recorded or [])
    else:
        signatures = [r.signature for r in track.frames]
        if len(signatures) < 2 or any(s is None for s in signatures):
            return []
        return detect_scene_cuts(np.array(signatures, dtype=np.float64))
    return [i for i, r in enumerate(track.frames) if r.frame in frames]


def _smooth_ranges(track: ParamsTrack, keys: Keyframes, values: np.ndarray, cuts: list[int]) -> tuple[np.ndarray, int]:
    """Smooth ``values`` (T, D) with the settings in force at each row; returns it and the first changed row."""
    base = track.header.get("smoothing")
    mode = str(base.get("mode")) if isinstance(base, dict) and base.get("mode") else "off"
    half_life = float(base.get("half_life_s") or 0.0) if isinstance(base, dict) else 0.0
    frames = np.array([track.source_frame(r.frame) for r in track.frames])  # the CSV's numbers
    settings = list(keys.smoothing)
    modes: list[str] = []
    half_lives: list[float] = []
    k = 0
    for f in frames:
        while k < len(settings) and settings[k][0] <= f:
            _, new_mode, new_half_life = settings[k]
            if new_half_life is not None:
                half_life = new_half_life
                if new_mode is None and mode == "off" and half_life > 0:
                    mode = "ema"
            if new_mode is not None:
                mode = new_mode
            k += 1
        modes.append(mode if half_life > 0 else "off")
        half_lives.append(half_life)
    times = track.times_s()
    steps = np.diff(times, prepend=times[0])
    warped = np.cumsum([s / h if m != "off" else _OFF_STEP for s, m, h in zip(steps, modes, half_lives, strict=True)])
    out = values.copy()
    on = np.array([m != "off" for m in modes])
    for m in set(modes) - {"off"}:
        extra: list[int] = []
        if m == "zero_lag":  # the two-sided fit must not reach into an unsmoothed stretch
            extra = [i for i in range(1, len(modes)) if on[i] != on[i - 1]]
        smoothed = smooth_track(values, warped, half_life_s=1.0, mode=m, cuts=sorted({*cuts, *extra}))
        rows = np.array([x == m for x in modes])
        out[rows] = smoothed[rows]
    first = int(np.searchsorted(frames, settings[0][0])) if settings else len(frames)
    return out, first


def apply_keyframes(base: ParamsTrack, keys: Keyframes) -> ParamsTrack:
    """Merge keyframed values (and per-range smoothing) over a base track.

    Keyframed arguments replace the base's applied values on every row (interpolated, held outside the
    keys). The other arguments keep the base's applied values, unless the CSV sets smoothing: then they,
    and the statistics, are smoothed again from the base's ``raw`` and ``stats`` with the settings in force
    at each row. The contrast pivot follows edits of temperature and brightness (module docstring).

    Args:
        base: the sidecar to edit (from analyze, or :func:`neutral_track` where there is none).
        keys: from :func:`read_keyframes`.

    The CSV's frames are source numbers: row ``i`` of ``base`` is source frame ``base.first_frame + i``.

    Returns:
        A new track; ``raw`` is kept, ``smoothed``/``smoothed_stats`` are what render applies, and
        ``header["edits"]`` records the keyframes (their frames as clip positions, like the rows).

    Raises:
        InputError: the base has no rows, or a keyframe lies outside the clip (both named in source numbers).

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> rows = [FrameParams(i, None, [0.0] * 6, [0.5] * 4) for i in range(5)]
        >>> base = ParamsTrack({"fps": "25/1", "num_frames": 5}, rows)
        >>> keys = read_keyframes(text="frame,saturation\\n1,0.2\\n3,0.6\\n")
        >>> [r.smoothed[3] for r in apply_keyframes(base, keys).frames]
        [0.2, 0.2, 0.4, 0.6, 0.6]
    """
    if not base.frames:
        raise InputError(f"{keys.source}: the base parameter track has no rows to edit")
    method = base.method
    for name in keys.args:
        if name not in method.arg_names:
            raise InputError(
                f"{keys.source}: column {name!r} is not a value of this track's {method.kind!r} rows; "
                f"{_nearest(name, method.arg_names)}read the CSV with names=track.method.arg_names"
            )
    offset = base.first_frame
    first, last = base.source_frame(base.frames[0].frame), base.source_frame(base.frames[-1].frame)
    total = base.header.get("num_frames")
    limit = (offset, offset + int(total) - 1) if isinstance(total, int) and total > 0 else (first, last)
    for frame in keys.frames:
        if not limit[0] <= frame <= limit[1]:
            line = keys.lines.get(frame)
            raise InputError(
                f"{keys.source}{f' line {line}' if line else ''}: frame {frame} is outside the clip "
                f"(frames {limit[0]}-{limit[1]}); frame numbers are the source's (an image sequence's file "
                "numbers): fix the frame number"
            )
    old_args, old_stats = _applied(base)
    args, stats = old_args.copy(), old_stats.copy()
    cuts = _cuts(base) if keys.smoothing else []
    if keys.smoothing:
        values = np.concatenate([base.raw_array(), base.stats_array()], axis=1)
        smoothed, start = _smooth_ranges(base, keys, values, cuts)
        # Rows before the first setting depend only on earlier rows unless the base smoother looks ahead.
        setting = base.header.get("smoothing")
        keep = 0 if isinstance(setting, dict) and setting.get("mode") == "zero_lag" else start
        args[keep:] = smoothed[keep:, : method.num_args]
        stats[keep:] = smoothed[keep:, method.num_args :]
    # The (re-)smoothed statistics belong with the (re-)smoothed arguments; only keyframes move the pivot.
    smoothed_args = args.copy()
    frames = np.array([base.source_frame(r.frame) for r in base.frames])
    for name in keys.args:
        args[:, method.arg_names.index(name)] = keys.curve(name, frames)
    stats = _follow_pivot(smoothed_args, args, stats)
    header = _edits(
        base.header,
        {
            "keyframes": keys.source,
            # Recorded as clip positions, as every frame number inside a sidecar is.
            "args": {name: [[f - offset, v] for f, v in kf] for name, kf in keys.args.items()},
            "smoothing": [[f - offset, m, h] for f, m, h in keys.smoothing],
        },
    )
    if keys.smoothing:
        setting = base.header.get("smoothing")
        before = setting if isinstance(setting, dict) else {"mode": "off", "half_life_s": 0.0}
        ranges = [[f - offset, m, h] for f, m, h in keys.smoothing]
        header["smoothing"] = {**before, "cuts": [base.frames[i].frame for i in cuts], "ranges": ranges}
    return _with_applied(base, args, stats, header)


def lock_args(track: ParamsTrack, locks: Mapping[str, float]) -> ParamsTrack:
    """Hold chosen arguments at fixed values on every row.

    Args:
        track: the track to edit.
        locks: argument name -> value (raw; the filters clamp to [-1, 1]), e.g. ``{"brightness": 0.0}``.

    Returns:
        A new track with those arguments' applied values replaced (the contrast pivot follows temperature
        and brightness; see the module docstring) and ``header["edits"]`` recording the lock.

    Raises:
        UsageError: an unknown argument name (the message names the nearest) or a value that is not finite.

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> track = ParamsTrack({"fps": "25/1"}, [FrameParams(0, None, [0.3] * 6, [0.5] * 4)])
        >>> lock_args(track, {"contrast": 0.0}).frames[0].smoothed
        [0.3, 0.3, 0.0, 0.3, 0.3, 0.3]
    """
    names = track.method.arg_names
    for name, value in locks.items():
        if name not in names:
            listed = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])} ..."
            raise UsageError(f"lock: unknown argument {name!r}; {_nearest(name, names)}choose from {listed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UsageError(f"lock: {name} must be locked at a finite number, got {value!r}")
    if not locks:
        return track
    old_args, stats = _applied(track)
    args = old_args.copy()
    for name, value in locks.items():
        args[:, names.index(name)] = float(value)
    stats = _follow_pivot(old_args, args, stats)
    header = _edits(track.header, {"lock": {name: float(v) for name, v in locks.items()}})
    return _with_applied(track, args, stats, header)


def parse_locks(text: str, names: Sequence[str] = FILTER_NAMES) -> dict[str, float]:
    """Parse ``--lock``: comma-separated names, each optionally ``=value`` (default 0).

    Args:
        text: e.g. ``"brightness,contrast=0.2"``.
        names: the names allowed (``track.method.arg_names``; the six filter arguments by default).

    Returns:
        Name -> value.

    Raises:
        UsageError: an empty item, an unknown name (nearest one named), a repeated name, or a bad value.

    Example:
        >>> parse_locks("brightness, contrast=0.2")
        {'brightness': 0.0, 'contrast': 0.2}
    """
    locks: dict[str, float] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if not name:
            raise UsageError(f"--lock {text!r}: an empty name; expected e.g. brightness,contrast=0.2")
        if name not in names:
            listed = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])} ..."
            raise UsageError(f"--lock: unknown argument {name!r}; {_nearest(name, names)}choose from {listed}")
        if name in locks:
            raise UsageError(f"--lock: {name} is given twice; give each argument once")
        locks[name] = _cli_number(value.strip() or "0", f"--lock {name}")
    return locks


def _cli_number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number; expected e.g. 0.2") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: {text!r} is not finite; expected a finite number")
    return value


def parse_arg_values(text: str) -> list[float]:
    """Parse ``--args``: six numbers in filter order, or ``name=value`` pairs (the others 0).

    Args:
        text: ``"t,b,c,s,h,sh"`` such as ``"0.1,-0.2,0,0,0,0.05"``, or ``"brightness=-0.2,shadow=0.05"``.

    Returns:
        Six raw arguments in :data:`vidharm.filters.FILTER_NAMES` order.

    Raises:
        UsageError: not six numbers, an unknown or repeated name, or a bad value.

    Example:
        >>> parse_arg_values("0.1,-0.2,0,0,0,0.05")
        [0.1, -0.2, 0.0, 0.0, 0.0, 0.05]
        >>> parse_arg_values("brightness=-0.2")
        [0.0, -0.2, 0.0, 0.0, 0.0, 0.0]
    """
    items = [i.strip() for i in text.split(",")]
    if any("=" in i for i in items):
        values = dict.fromkeys(FILTER_NAMES, 0.0)
        seen: set[str] = set()
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().lower()
            if not sep or name not in FILTER_NAMES:
                raise UsageError(
                    f"--args: {item!r} is not name=value with a known name; {_nearest(name, FILTER_NAMES)}"
                    f"the names are {', '.join(FILTER_NAMES)}"
                )
            if name in seen:
                raise UsageError(f"--args: {name} is given twice; give each argument once")
            seen.add(name)
            values[name] = _cli_number(value.strip(), f"--args {name}")
        return list(values.values())
    if len(items) != NUM_ARGS:
        raise UsageError(
            f"--args: expected {NUM_ARGS} comma-separated numbers ({','.join(FILTER_NAMES)}), got {len(items)}"
        )
    return [_cli_number(v, f"--args {name}") for name, v in zip(FILTER_NAMES, items, strict=True)]


class _Neutral(nn.Module):
    """Predicts 0 for every argument (the identity-like edit base; analyze still measures everything else)."""

    def forward(self, image: Tensor, mask: Tensor) -> Tensor:
        return image.new_zeros(image.shape[0], NUM_ARGS)


def neutral_track(inp: ClipInput, *, device: str = "cpu", decoder: str = "pyav") -> ParamsTrack:
    """A track with every argument 0 and the clip's real statistics, for keyframes without ``--base``.

    Decodes the clip once (no network): per-frame histogram statistics, background signatures (for scene
    cuts) and mask areas are measured exactly as analyze does.

    Args:
        inp: the checked clip and masks.
        device: where the (trivial) arithmetic runs.
        decoder: ``pyav`` or ``decord``.

    Returns:
        A track like analyze's, with ``raw`` all 0, unsmoothed, and ``header["model"] == "neutral"``.

    Raises:
        VidharmError: unreadable frames or masks.
    """
    config = ProcessConfig(model="stats", device=device, decoder=decoder)
    track = analyze(inp, config, model=_Neutral())
    header = {**track.header, "model": "neutral", "weights": None, "weights_sha256": None}
    return ParamsTrack(header=header, frames=track.frames)
