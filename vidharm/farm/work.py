"""Work folders: a farm job's sidecars must all come from one clip, one set of masks, one foreground layer and one
statistics mask.

Every analyze sidecar carries fingerprints of the clip and the masks in its header (see
:mod:`vidharm.pipeline.params`), and of the foreground layer (``--fg``) and the statistics mask
(``--stats-mask``) where they were used. A work folder reused for another shot, or a parameter file rendered
onto another clip, would join or apply the wrong numbers without a visible error; these checks refuse them. A
chunk analysed with a statistics mask or a foreground and one analysed without differ too (one fingerprint is
absent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidharm.errors import InputError
from vidharm.pipeline import ClipInput, ParamsTrack
from vidharm.pipeline.inputs import fingerprint_file

__all__ = ["SOURCE_KEYS", "check_sidecars_agree", "check_track_source", "check_work_folder"]

#: Header keys that identify the source of a sidecar.
SOURCE_KEYS = ("clip_fingerprint", "masks_fingerprint", "foreground_fingerprint", "stats_mask_fingerprint")
# Per source key: how messages call it, and the header key naming its file.
_NAMES = {
    "clip_fingerprint": ("clip", "clip"),
    "masks_fingerprint": ("masks", "masks"),
    "foreground_fingerprint": ("foreground layer", "foreground"),
    "stats_mask_fingerprint": ("statistics mask", "stats_mask"),
}


def _what(key: str) -> str:
    return _NAMES[key][0]


def _source(header: Mapping[str, Any], key: str) -> str:
    if not header.get(key):
        return "none"
    return str(header.get(_NAMES[key][1]) or "?")


def check_sidecars_agree(headers: Sequence[Mapping[str, Any]], names: Sequence[str]) -> None:
    """Refuse sidecars (headers) that come from different clips or masks, naming two that differ.

    Args:
        headers: sidecar headers, e.g. ``[t.header for t in tracks]``.
        names: what to call each in messages (file names), parallel to ``headers``.

    Raises:
        InputError: two headers with different clip, masks, foreground or statistics-mask fingerprints.

    Example:
        >>> a, b = {"clip_fingerprint": "a", "clip": "x.mp4"}, {"clip_fingerprint": "b", "clip": "y.mp4"}
        >>> try:
        ...     check_sidecars_agree([a, b], ["analyze.0-9.json", "analyze.10-19.json"])
        ... except InputError as exc:
        ...     print(str(exc)[:57])
        analyze.10-19.json was analyzed from another clip (y.mp4)
    """
    if not headers:
        return
    first = headers[0]
    for header, name in zip(headers[1:], names[1:], strict=True):
        for key in SOURCE_KEYS:
            if header.get(key) != first.get(key):
                raise InputError(
                    f"{name} was analyzed from another {_what(key)} ({_source(header, key)}) than {names[0]} "
                    f"({_source(first, key)}); keep one work folder per shot and remove the stray sidecars"
                )


def check_work_folder(folder: Path, header: Mapping[str, Any]) -> None:
    """Refuse to add a sidecar with ``header`` to a work folder holding sidecars of another source.

    Args:
        folder: the work folder (its ``analyze.*.json`` are read; a missing folder passes).
        header: the header of the sidecar about to be written.

    Raises:
        InputError: a sidecar in ``folder`` from another clip, masks, foreground or statistics mask, or an
            unreadable sidecar.

    Example:
        >>> import tempfile
        >>> work = Path(tempfile.mkdtemp())
        >>> _ = (work / "analyze.000000-000009.json").write_text('{"header": {"clip_fingerprint": "a"}}')
        >>> check_work_folder(work, {"clip_fingerprint": "a"})  # same clip: fine
        >>> check_work_folder(work, {"clip_fingerprint": "b", "clip": "b.mp4"})
        Traceback (most recent call last):
        ...
        vidharm.errors.InputError: ...analyzed from another clip (?) than this one (b.mp4); use one work folder per shot
        >>> check_work_folder(work, {"clip_fingerprint": "a", "stats_mask_fingerprint": "s", "stats_mask": "bars.png"})
        Traceback (most recent call last):
        ...
        vidharm.errors.InputError: ...analyzed from another statistics mask (none) than this one (bars.png); use ...
    """
    for path in sorted(Path(folder).glob("analyze.*.json")):
        try:
            other = json.loads(path.read_text()).get("header", {})
        except (OSError, ValueError, AttributeError) as exc:
            raise InputError(f"{path}: unreadable sidecar in the work folder ({exc}); remove it") from None
        for key in SOURCE_KEYS:
            if other.get(key) != header.get(key):
                raise InputError(
                    f"{folder}: the work folder holds {path.name}, analyzed from another {_what(key)} "
                    f"({_source(other, key)}) than this one ({_source(header, key)}); use one work folder per shot"
                )


def check_track_source(track: ParamsTrack, inp: ClipInput, *, name: str = "the parameter file") -> None:
    """Refuse to render ``track`` onto a clip, masks or foreground layer other than those it was analyzed from.

    Only fingerprints the header carries are compared (hand-made sidecars without them pass). The masks
    fingerprint reads every mask file of the clip. The statistics mask only steers analysis (render does not
    open one), so it is not compared here.

    Args:
        track: the parameters to render.
        inp: the clip and masks (or layers) to render.
        name: what to call the parameter file in messages.

    Raises:
        InputError: the clip's, the masks' or the foreground's fingerprint differs from the header's, or the
            header was analyzed from layers and ``inp`` is not.
    """
    header = track.header
    expected = header.get("clip_fingerprint")
    if expected and expected != fingerprint_file(inp.clip):
        raise InputError(
            f"{name} was analyzed from another clip ({header.get('clip')}) than {inp.clip}; its fingerprint "
            f"differs, so analyze {inp.clip.name} (into its own work folder) and render with that"
        )
    expected = header.get("masks_fingerprint")
    if expected and expected != inp.masks.fingerprint():
        raise InputError(
            f"{name} was analyzed with other masks ({header.get('masks')}) than {inp.masks.path}; their "
            "fingerprint differs, so analyze again with these masks (into its own work folder)"
        )
    expected = header.get("foreground_fingerprint")
    layer = inp.foreground
    if expected and layer is None:
        raise InputError(
            f"{name} was analyzed from layers (foreground {header.get('foreground')}); render it with the same "
            "--fg and --bg"
        )
    if expected and layer is not None and expected != fingerprint_file(layer.path):
        raise InputError(
            f"{name} was analyzed with another foreground layer ({header.get('foreground')}) than {layer.path}; its "
            "fingerprint differs, so analyze again with this foreground (into its own work folder)"
        )
