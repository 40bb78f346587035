"""Video segments of a farm render: the frame-range file written beside each, and the lossless join.

``vidharm render --frames A-B -o seg.mkv`` writes ``seg.segment.json`` beside the segment: the frame range,
the clip's first frame and frame count, fingerprints of the clip, the masks, the parameters applied and the
segment file itself. ``vidharm concat`` reads these to put segments in frame order and to name overlaps, gaps and
segments from another clip or another parameter file precisely, then joins them without re-encoding.

Frame numbers here are the source's (see :mod:`vidharm.pipeline.inputs`): ``frames`` is the inclusive range of
source frame numbers (``[1001, 1050]`` for ``--frames 1001-1050`` of a sequence that starts at 1001) and
``first_frame`` the clip's first source frame, so the segments of one clip must tile
``first_frame .. first_frame + num_frames - 1``. Files written before ``first_frame`` was recorded read as 0
(videos, where the two numberings agree).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidharm.errors import InputError, OutputError, UsageError
from vidharm.io import atomic_path, concat_videos
from vidharm.pipeline.inputs import ClipInput, describe_ranges, fingerprint_file
from vidharm.pipeline.params import ParamsTrack

__all__ = [
    "SEGMENT_SCHEMA",
    "SegmentInfo",
    "segment_info_path",
    "params_fingerprint",
    "write_segment_info",
    "read_segment_info",
    "find_segments",
    "check_segments",
    "concat_segments",
]

log = logging.getLogger(__name__)

SEGMENT_SCHEMA = "vidharm.segment"
_SEGMENT_VERSION = 1
_SUFFIX = ".segment.json"
# Segments joined into one file must agree on these.
_SAME = ("clip_fingerprint", "masks_fingerprint", "params_fingerprint", "mix", "num_frames", "first_frame")


@dataclass(frozen=True)
class SegmentInfo:
    """What ``render`` records about one video segment.

    Attributes:
        video: the segment file.
        first: its first source frame number.
        last: its last source frame number (inclusive).
        num_frames: the clip's frame count.
        clip_fingerprint: :func:`~vidharm.pipeline.inputs.fingerprint_file` of the clip.
        masks_fingerprint: the masks' fingerprint.
        params_fingerprint: :func:`params_fingerprint` of the track rendered.
        mix: the harmonization strength rendered.
        video_fingerprint: fingerprint of the segment file when it was written.
        first_frame: the clip's first source frame number (0 for a video).
    """

    video: Path
    first: int
    last: int
    num_frames: int
    clip_fingerprint: str
    masks_fingerprint: str
    params_fingerprint: str
    mix: float
    video_fingerprint: str
    first_frame: int = 0

    @property
    def frames(self) -> range:
        """The segment's source frames."""
        return range(self.first, self.last + 1)

    @property
    def clip_frames(self) -> range:
        """The whole clip's source frames."""
        return range(self.first_frame, self.first_frame + self.num_frames)


def segment_info_path(video: str | Path) -> Path:
    """The frame-range file of a segment video: ``<stem>.segment.json`` beside it.

    Example:
        >>> segment_info_path("work/render.0-99.mkv").name
        'render.0-99.segment.json'
    """
    video = Path(video)
    return video.with_name(video.stem + _SUFFIX)


def params_fingerprint(track: ParamsTrack) -> str:
    """sha256 of what render applies from ``track``: the method and every row's applied values.

    Example:
        >>> from vidharm.pipeline.params import FrameParams
        >>> t = ParamsTrack({"fps": "24/1"}, [FrameParams(0, 0, [0.0] * 6, [0.5] * 4)])
        >>> len(params_fingerprint(t))
        64
    """
    rows = [[f.frame, *f.applied()[0], *f.applied()[1]] for f in track.frames]
    text = json.dumps({"method": track.header.get("method"), "rows": rows}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def write_segment_info(video: Path, inp: ClipInput, track: ParamsTrack, *, mix: float = 1.0) -> Path:
    """Write the frame-range file of a finished segment (atomically) and return its path.

    Args:
        video: the segment just rendered.
        inp: the clip input it was rendered from (``inp.frames`` is its range; recorded as source numbers).
        track: the parameters applied.
        mix: the strength applied, in [0, 1].

    Raises:
        OutputError: the file cannot be written.
    """
    frames = inp.source_frames
    data = {
        "schema": SEGMENT_SCHEMA,
        "version": _SEGMENT_VERSION,
        "video": video.name,
        "frames": [frames.start, frames.stop - 1],
        "first_frame": inp.first_frame,
        "num_frames": inp.num_frames,
        "clip": str(inp.clip),
        "clip_fingerprint": fingerprint_file(inp.clip),
        "masks_fingerprint": track.header.get("masks_fingerprint") or inp.masks.fingerprint(),
        "params_fingerprint": params_fingerprint(track),
        "mix": mix,
        "video_fingerprint": fingerprint_file(video),
    }
    path = segment_info_path(video)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return path


def read_segment_info(path: str | Path) -> SegmentInfo:
    """Read a frame-range file (``*.segment.json``) and check that its segment is the file it describes.

    Raises:
        InputError: missing, not a segment file, or its segment was rewritten or removed since.
    """
    path = Path(path)
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such frame-range file; render the segment with vidharm render --frames") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the frame-range file ({exc}); render the segment again") from None
    if not isinstance(data, dict) or data.get("schema") != SEGMENT_SCHEMA:
        raise InputError(f'{path}: not a vidharm segment file (expected "schema": "{SEGMENT_SCHEMA}")')
    try:
        first, last = (int(v) for v in data["frames"])
        info = SegmentInfo(
            video=path.with_name(str(data["video"])),
            first=first,
            last=last,
            num_frames=int(data["num_frames"]),
            clip_fingerprint=str(data["clip_fingerprint"]),
            masks_fingerprint=str(data["masks_fingerprint"]),
            params_fingerprint=str(data["params_fingerprint"]),
            mix=float(data["mix"]),
            video_fingerprint=str(data["video_fingerprint"]),
            first_frame=int(data.get("first_frame", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: malformed segment file ({exc}); render the segment again") from None
    if not info.video.is_file():
        raise InputError(f"{info.video}: the segment named by {path.name} is missing; render frames {first}-{last}")
    if fingerprint_file(info.video) != info.video_fingerprint:
        raise InputError(
            f"{info.video}: the file changed after its frame-range file {path.name} was written; "
            f"render frames {first}-{last} again"
        )
    return info


def find_segments(inputs: Sequence[str | Path]) -> list[SegmentInfo]:
    """The segments named by ``inputs``: segment videos (with their ``.segment.json``), or folders of them.

    Raises:
        InputError: a video without a frame-range file, a folder without any, or a missing path.
    """
    infos: list[SegmentInfo] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*" + _SUFFIX))
            if not found:
                raise InputError(f"{path}: no *{_SUFFIX} files in the folder; render segments with --frames first")
            infos += [read_segment_info(f) for f in found]
        elif path.name.endswith(_SUFFIX):
            infos.append(read_segment_info(path))
        elif path.is_file():
            side = segment_info_path(path)
            if not side.is_file():
                raise InputError(
                    f"{path}: no frame-range file {side.name} beside it; render it with vidharm render --frames"
                )
            infos.append(read_segment_info(side))
        else:
            raise InputError(f"{path}: no such segment or folder; check the path")
    return infos


def check_segments(infos: Sequence[SegmentInfo]) -> list[SegmentInfo]:
    """Order segments by frame and check that they tile the whole clip exactly, from one render.

    The clip's frames are its source numbers ``first_frame .. first_frame + num_frames - 1``.

    Returns:
        The segments in frame order.

    Raises:
        UsageError: no segments.
        InputError: segments from another clip, masks, parameter file or strength; overlapping frames;
            frames in no segment (each named with the segments around them).

    Example:
        >>> s = dict(num_frames=10, clip_fingerprint="c", masks_fingerprint="m", params_fingerprint="p", mix=1.0,
        ...          video_fingerprint="v")
        >>> parts = [SegmentInfo(Path("b.mkv"), 5, 9, **s), SegmentInfo(Path("a.mkv"), 0, 4, **s)]
        >>> [i.video.name for i in check_segments(parts)]
        ['a.mkv', 'b.mkv']
        >>> check_segments(parts[:1])
        Traceback (most recent call last):
        ...
        vidharm.errors.InputError: frames 0-4 of the 10-frame clip are in no segment (before b.mkv); render them
        >>> seq = [SegmentInfo(Path("s.mkv"), 1001, 1009, **{**s, "num_frames": 9}, first_frame=1001)]
        >>> [i.frames for i in check_segments(seq)]
        [range(1001, 1010)]
    """
    if not infos:
        raise UsageError("no segments to join; give the segment videos or their folder")
    ordered = sorted(infos, key=lambda i: (i.first, i.last))
    ref = ordered[0]
    for info in ordered[1:]:
        for key in _SAME:
            if getattr(info, key) != getattr(ref, key):
                raise InputError(
                    f"{info.video.name}: its {key.replace('_', ' ')} differs from {ref.video.name}'s; every segment "
                    "must be rendered from the same clip, masks, parameter file and --mix (render it again)"
                )
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.first <= a.last:
            lo, hi = b.first, min(a.last, b.last)
            raise InputError(
                f"frames {lo}-{hi} are in both {a.video.name} ({a.first}-{a.last}) and {b.video.name} "
                f"({b.first}-{b.last}); segments must not overlap (remove one)"
            )
        if b.first > a.last + 1:
            raise InputError(
                f"frames {a.last + 1}-{b.first - 1} are in no segment (between {a.video.name} and {b.video.name}); "
                "render them"
            )
    n, clip = ref.num_frames, ref.clip_frames
    outside = [i for i in ordered if i.first < clip.start or i.last >= clip.stop]
    if outside:
        bad = outside[0]
        raise InputError(
            f"{bad.video.name}: frames {bad.first}-{bad.last} are outside the clip (frames {clip.start}-"
            f"{clip.stop - 1}); render it again"
        )
    missing = list(range(clip.start, ordered[0].first)) + list(range(ordered[-1].last + 1, clip.stop))
    if missing:
        where = f"before {ordered[0].video.name}" if missing[0] == clip.start else f"after {ordered[-1].video.name}"
        raise InputError(
            f"frames {describe_ranges(missing)} of the {n}-frame clip are in no segment ({where}); render them"
        )
    return ordered


def concat_segments(
    inputs: Sequence[str | Path], output: str | Path, *, audio_from: str | Path | None = None
) -> list[SegmentInfo]:
    """Join the segments of a render (files or folders) losslessly into ``output``, with ``audio_from``'s audio.

    Args:
        inputs: segment videos or folders holding them (their ``.segment.json`` files locate them), any order.
        output: the joined video (written atomically; same container family as the segments); its folder is
            created.
        audio_from: the source clip (or any file) whose first audio stream is added; None for none.

    Returns:
        The segments joined, in frame order.

    Raises:
        InputError: missing frame-range files, overlaps, gaps, segments of different renders.
        UsageError: segments encoded with different settings, or an output container that cannot hold them.
        OutputError: the output cannot be written.
    """
    ordered = check_segments(find_segments(inputs))
    output = Path(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{output.parent}: cannot create the output folder ({exc}); check the path") from exc
    for info in ordered:
        if info.video.resolve() == output.resolve():
            raise UsageError(f"{output}: the output would overwrite a segment; choose another output path")
    if (
        audio_from is not None
        and Path(audio_from).is_file()
        and fingerprint_file(Path(audio_from)) != ordered[0].clip_fingerprint
    ):
        log.info("%s is not the clip the segments were rendered from; taking its audio all the same", audio_from)
    concat_videos([i.video for i in ordered], output, audio_from=audio_from)
    return ordered
