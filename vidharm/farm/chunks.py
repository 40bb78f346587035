"""Frame-range chunks: how a clip is split into farm tasks."""

from __future__ import annotations

from vidharm.errors import UsageError

__all__ = ["plan_chunks", "format_frames"]


def plan_chunks(num_frames: int, chunk: int, first_frame: int = 0) -> list[range]:
    """Split a clip's source frames into consecutive ranges of ``chunk`` frames (the last may be shorter).

    The frames are ``first_frame .. first_frame + num_frames - 1``: source numbers, as ``--frames`` takes them
    (0-based for a video, from the first file number for an image sequence).

    Args:
        num_frames: the clip's frame count, >= 1.
        chunk: frames per task, >= 1.
        first_frame: the clip's first source frame number, >= 0.

    Returns:
        Step-1 ranges of source frame numbers that tile the clip in order, without overlap.

    Raises:
        UsageError: ``num_frames`` or ``chunk`` below 1, ``first_frame`` below 0.

    Example:
        >>> [format_frames(r) for r in plan_chunks(250, 100)]
        ['0-99', '100-199', '200-249']
        >>> [format_frames(r) for r in plan_chunks(10, 4, first_frame=1001)]
        ['1001-1004', '1005-1008', '1009-1010']
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise UsageError(f"num_frames: expected a frame count of at least 1, got {num_frames!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UsageError(f"chunk: expected at least 1 frame per task, got {chunk!r}; e.g. --chunk 100")
    if isinstance(first_frame, bool) or not isinstance(first_frame, int) or first_frame < 0:
        raise UsageError(f"first_frame: expected the clip's first source frame number (>= 0), got {first_frame!r}")
    end = first_frame + num_frames
    return [range(start, min(start + chunk, end)) for start in range(first_frame, end, chunk)]


def format_frames(frames: range) -> str:
    """A frame range as the ``A-B`` (inclusive) text that ``--frames`` takes.

    Example:
        >>> format_frames(range(100, 200))
        '100-199'
    """
    return f"{frames.start}-{frames.stop - 1}"
