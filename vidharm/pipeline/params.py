"""The parameter sidecar: one versioned JSON schema for analyze, smooth, render, the farm and plots.

A sidecar holds a ``header`` (clip geometry and timing, fingerprints of clip and masks, model, weights
sha256, smoothing settings, the names of the arguments and statistics) and one row per frame::

    {"frame": 12, "pts": 6144, "raw": [6 floats], "smoothed": [6 floats] | null,
     "stats": {"mean_r": ..., "mean_g": ..., "mean_b": ..., "contrast_pivot": ...},
     "smoothed_stats": {...} | null, "signature": [floats] | null, "mask_area": float (optional)}

``raw`` are the model's unclamped arguments for the frame (or, for image models such as HDNet, the
coefficients of the colour transform fitted to its output; ``header.method`` says which, see
:mod:`vidharm.pipeline.methods`), rounded to 4 decimals so that machines with different thread counts
render the same pixels; ``stats`` are the global statistics the filters take from
the frame (measured with the raw arguments); ``smoothed``/``smoothed_stats`` are what render applies, so
applying a row to its frame needs nothing else. ``signature`` describes the background for scene-cut
detection. ``mask_area`` (optional, written only when known) is the mean of the frame's mask, the foreground
fraction in [0, 1], for quality checks.

Frame numbers. Rows count the clip's frames from 0 (positions, as :func:`~vidharm.io.read_frames` counts them):
for an image sequence row ``i`` is file ``first_frame + i`` (``plate.1001.exr`` is row 0 when the sequence
starts at 1001); for a video the two are the same. ``header.first_frame`` records that first source number
(absent in sidecars written before it was recorded: read as 0, so they read unchanged); every number a person
gives or reads (keyframe CSVs, quality flags, plots, LUT and Nuke exports, messages) is the source's,
``first_frame + position`` (:attr:`ParamsTrack.first_frame`, :meth:`ParamsTrack.source_frame`). The other frame
numbers stored in the file are positions too: ``header.frames`` (first and last row), ``header.smoothing.cuts``
and ``ranges``, and the keyframes recorded in ``header.edits``. ``first_frame`` is an optional header key that
older readers ignore (the rows mean the same), so it needed no new schema version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vidharm.errors import InputError
from vidharm.io import atomic_path
from vidharm.pipeline.methods import STATS_NAMES, Method

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATS_NAMES",
    "ARG_DECIMALS",
    "round_args",
    "FrameParams",
    "ParamsTrack",
    "read_params",
    "write_params",
]

SCHEMA = "vidharm.params"
SCHEMA_VERSION = 1
#: Raw arguments are stored rounded so renders do not depend on the analysing machine's float noise.
ARG_DECIMALS = 4
_STAT_DECIMALS = 6


def _named(stats: list[float]) -> dict[str, float]:
    return dict(zip(STATS_NAMES, stats, strict=True)) if stats else {}


@dataclass
class FrameParams:
    """One frame's row of the sidecar (see the module docstring)."""

    frame: int
    pts: int | None
    raw: list[float]
    stats: list[float]
    smoothed: list[float] | None = None
    smoothed_stats: list[float] | None = None
    signature: list[float] | None = None
    mask_area: float | None = None

    def applied(self) -> tuple[list[float], list[float]]:
        """The arguments and statistics render applies: the smoothed ones, or raw where not smoothed."""
        return (self.smoothed or self.raw), (self.smoothed_stats or self.stats)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "frame": self.frame,
            "pts": self.pts,
            "raw": self.raw,
            "smoothed": self.smoothed,
            "stats": _named(self.stats),
            "smoothed_stats": None if self.smoothed_stats is None else _named(self.smoothed_stats),
            "signature": self.signature,
        }
        if self.mask_area is not None:
            row["mask_area"] = self.mask_area
        return row


@dataclass
class ParamsTrack:
    """A whole sidecar: header plus rows in frame order.

    Example:
        >>> track = ParamsTrack(header={"fps": "24/1"}, frames=[FrameParams(0, 0, [0.0] * 6, [0.5] * 4)])
        >>> track.raw_array().shape, track.fps
        ((1, 6), Fraction(24, 1))
    """

    header: dict[str, Any]
    frames: list[FrameParams] = field(default_factory=list)

    @property
    def fps(self) -> Fraction:
        return Fraction(self.header["fps"])

    @property
    def method(self) -> Method:
        return Method.from_header(self.header)

    @property
    def first_frame(self) -> int:
        """The source number of row 0: the clip's first file number for an image sequence, 0 for a video.

        ``header.first_frame``, or 0 for sidecars written before it was recorded.

        Example:
            >>> ParamsTrack({"fps": "24/1", "first_frame": 1001}).first_frame, ParamsTrack({"fps": "24/1"}).first_frame
            (1001, 0)
        """
        return int(self.header.get("first_frame") or 0)

    def source_frame(self, frame: int) -> int:
        """The source frame number of the row at clip position ``frame`` (``first_frame + frame``).

        Example:
            >>> ParamsTrack({"fps": "24/1", "first_frame": 1001}).source_frame(2)
            1003
        """
        return self.first_frame + frame

    def raw_array(self) -> np.ndarray:
        """(T, K) raw values as float64 (K = 6 filter arguments, or the method's coefficient count)."""
        return np.array([f.raw for f in self.frames], dtype=np.float64).reshape(len(self.frames), self.method.num_args)

    def stats_array(self) -> np.ndarray:
        """(T, S) measured statistics as float64 (S = 4 for the filters, 0 otherwise)."""
        return np.array([f.stats for f in self.frames], dtype=np.float64).reshape(
            len(self.frames), len(self.method.stats_names)
        )

    def times_s(self) -> np.ndarray:
        """(T,) presentation times in seconds from pts and the time base (frame / fps where pts is unknown)."""
        tb = Fraction(self.header.get("time_base") or 0)
        fps = self.fps
        return np.array(
            [float(f.pts * tb) if f.pts is not None and tb else float(f.frame / fps) for f in self.frames],
            dtype=np.float64,
        )

    def row(self, frame: int) -> FrameParams:
        """The row of clip position ``frame`` (0 = the clip's first frame; see the module docstring).

        Raises:
            InputError: the sidecar has no row for that frame (named by its source number).
        """
        index = getattr(self, "_index", None)
        if index is None or len(index) != len(self.frames):
            index = self._index = {f.frame: i for i, f in enumerate(self.frames)}
        if frame not in index:
            covers = (
                f"it covers {self.source_frame(self.frames[0].frame)}-{self.source_frame(self.frames[-1].frame)}"
                if self.frames
                else "it has no rows"
            )
            raise InputError(
                f"the parameter file has no row for frame {self.source_frame(frame)} ({covers}); analyze that frame "
                "or give frames the file covers"
            )
        return self.frames[index[frame]]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "header": self.header,
            "frames": [f.to_json() for f in self.frames],
        }


def round_args(values: np.ndarray | list[float], decimals: int = ARG_DECIMALS) -> list[float]:
    """Round to ``decimals`` and return plain floats (``-0.0`` becomes ``0.0``)."""
    return [round(float(v), decimals) + 0.0 for v in values]


def write_params(track: ParamsTrack, path: str | Path) -> None:
    """Write ``track`` as JSON, atomically.

    Raises:
        OutputError: the file cannot be written.
    """
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(json.dumps(track.to_json(), indent=1, allow_nan=False) + "\n")


def _floats(path: Path, where: str, values: Any, length: int) -> list[float]:
    if not isinstance(values, list) or len(values) != length:
        raise InputError(f"{path}: {where} must be a list of {length} numbers, got {values!r}")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{path}: {where}[{i}] is {v!r}; every value must be a finite number")
        out.append(float(v))
    return out


def _stats(path: Path, where: str, values: Any, names: tuple[str, ...]) -> list[float]:
    if values is None and not names:
        return []
    if not isinstance(values, dict) or set(values) != set(names):
        want = ", ".join(names) or "nothing"
        raise InputError(f"{path}: {where} must map {want} to numbers, got {values!r}")
    return _floats(path, where, [values[k] for k in names], len(names))


def read_params(path: str | Path) -> ParamsTrack:
    """Read and validate a sidecar.

    Args:
        path: a JSON file in the vidharm.params schema.

    Returns:
        The track, rows sorted by frame.

    Raises:
        InputError: missing file, not JSON, another schema or a newer version, a ``first_frame`` that is not
            an integer >= 0, a malformed row, NaN or infinite values, or duplicate frames.
    """
    path = Path(path)
    try:
        # JSON has no NaN; Python's parser accepts the tokens, so refuse them here to name the file.
        data = json.loads(path.read_text(), parse_constant=lambda c: float(c))
    except FileNotFoundError:
        raise InputError(f"{path}: parameter file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the parameter file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); fix or regenerate it") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f'{path}: not a vidharm parameter file (expected "schema": "{SCHEMA}")')
    version = data.get("version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise InputError(f"{path}: schema version {version!r} is newer than this vidharm reads ({SCHEMA_VERSION})")
    header, rows = data.get("header"), data.get("frames")
    if not isinstance(header, dict) or not isinstance(rows, list):
        raise InputError(f'{path}: expected a "header" object and a "frames" list')
    try:
        Fraction(str(header.get("fps")))
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(f'{path}: header.fps must be a frame rate such as "24/1", got {header.get("fps")!r}') from None
    first_frame = header.get("first_frame", 0)
    if isinstance(first_frame, bool) or not isinstance(first_frame, int) or first_frame < 0:
        raise InputError(
            f"{path}: header.first_frame must be the clip's first source frame number (an integer >= 0), got "
            f"{first_frame!r}; fix it or analyze again"
        )
    method = Method.from_header(header)
    n, names = method.num_args, method.stats_names
    frames: list[FrameParams] = []
    seen: set[int] = set()
    for i, row in enumerate(rows):
        where = f"frames[{i}]"
        if not isinstance(row, dict) or not isinstance(row.get("frame"), int) or isinstance(row.get("frame"), bool):
            raise InputError(f'{path}: {where} needs an integer "frame"')
        if row["frame"] in seen:
            raise InputError(f"{path}: frame {row['frame']} appears twice; keep one row per frame")
        seen.add(row["frame"])
        pts = row.get("pts")
        if pts is not None and (not isinstance(pts, int) or isinstance(pts, bool)):
            raise InputError(f"{path}: {where}.pts must be an integer or null")
        sig = row.get("signature")
        area = row.get("mask_area")
        if area is not None and (
            isinstance(area, bool) or not isinstance(area, (int, float)) or not 0.0 <= area <= 1.0
        ):
            raise InputError(f"{path}: {where}.mask_area must be a number in [0, 1] or null, got {area!r}")
        frames.append(
            FrameParams(
                frame=row["frame"],
                pts=pts,
                raw=_floats(path, f"{where}.raw", row.get("raw"), n),
                stats=_stats(path, f"{where}.stats", row.get("stats"), names),
                smoothed=None
                if row.get("smoothed") is None
                else _floats(path, f"{where}.smoothed", row["smoothed"], n),
                smoothed_stats=None
                if row.get("smoothed_stats") is None
                else _stats(path, f"{where}.smoothed_stats", row["smoothed_stats"], names),
                signature=None
                if sig is None
                else _floats(path, f"{where}.signature", sig, len(sig) if isinstance(sig, list) else -1),
                mask_area=None if area is None else float(area),
            )
        )
    frames.sort(key=lambda f: f.frame)
    return ParamsTrack(header=header, frames=frames)
