"""Keyframe mask commands: fill a keyframe folder to every frame, and check propagation by leave-one-out.

Keyframe files, written masks and the leave-one-out table use the clip's source frame numbers (from 0 for a
video, from the first file number for an image sequence: ``matte.1001.png`` for ``plate.1001.exr``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from vidharm.errors import MaskError
from vidharm.masks import (
    MaskFolder,
    PropagatedMasks,
    clip_frame_source,
    format_loo_table,
    leave_one_out,
    write_masks,
)
from vidharm.pipeline.inputs import ClipInput, open_clip

__all__ = ["propagate_to_folder", "check_keyframes"]


def _keyframe_input(clip: Path, masks: Path, decoder: str) -> tuple[ClipInput, MaskFolder]:
    # The frame rate does not matter for masks; a sequence is read at its default rate without a notice.
    inp = open_clip(clip, masks, decoder=decoder)
    if isinstance(inp.masks, PropagatedMasks):
        return inp, inp.masks.folder
    if isinstance(inp.masks, MaskFolder):
        return inp, inp.masks
    raise MaskError(f"{masks}: expected a folder of keyframe masks (numbered images), got a mask video")


def propagate_to_folder(
    clip: Path,
    masks: Path,
    out_dir: Path,
    *,
    decoder: str = "pyav",
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> int:
    """Write a mask for every frame of ``clip`` into ``out_dir`` (16-bit PNGs), propagating the keyframes.

    Args:
        clip: the video or image-sequence pattern.
        masks: folder of keyframe masks, numbered by source frame (a complete folder is copied through).
        out_dir: the folder to fill (created; files are written atomically, named ``NNNNN.png`` by source frame
            number: ``01001.png`` for the first frame of a sequence that starts at 1001).
        decoder: ``pyav`` or ``decord``.
        progress: ``progress(stage, total)`` returns a per-frame callback.

    Returns:
        The number of masks written.

    Raises:
        MaskError: no masks, numbers beyond the clip, another aspect, or a mask video instead of a folder.
    """
    inp, _ = _keyframe_input(Path(clip), Path(masks), decoder)
    on_frame = progress("masks", len(inp.frames)) if progress else None
    write_masks(
        inp.masks,
        inp.frames,
        inp.info.width,
        inp.info.height,
        Path(out_dir),
        on_frame=on_frame,
        first_frame=inp.first_frame,
    )
    return len(inp.frames)


def check_keyframes(clip: Path, masks: Path, *, decoder: str = "pyav") -> str:
    """Leave-one-out over the keyframes: a table of each dropped keyframe's IoU and boundary F-score.

    Args:
        clip: the video or image-sequence pattern.
        masks: folder of keyframe masks, numbered by source frame.
        decoder: ``pyav`` or ``decord``.

    Returns:
        The table (:func:`~vidharm.masks.format_loo_table`), keyframes named by source frame number.

    Raises:
        MaskError: fewer than two keyframes, or masks that do not fit the clip.
    """
    inp, folder = _keyframe_input(Path(clip), Path(masks), decoder)
    width, height = inp.info.width, inp.info.height
    first = folder.first_frame
    keyframes = {f - first: folder.read(f, width, height) for f in folder.frame_numbers}
    rows = leave_one_out(clip_frame_source(Path(clip), decoder), keyframes, inp.num_frames)
    return format_loo_table([{**row, "frame": row["frame"] + first} for row in rows])
