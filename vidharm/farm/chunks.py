"""Frame-range chunks: how a clip is split into farm tasks."""

from __future__ import annotations

from vidharm.errors import UsageError

__all__ = ["plan_chunks", "format_frames"]


def plan_chunks(num_frames: int, chunk: int) -> list[range]:
    """Split frames ``0 .. num_frames - 1`` into consecutive ranges of ``chunk`` frames (the last may be shorter).

    Args:
        num_frames: the clip's frame count, >= 1.
        chunk: frames per task, >= 1.

    Returns:
        Step-1 ranges of source frame numbers that tile the clip in order, without overlap.

    Raises:
        UsageError: ``num_frames`` or ``chunk`` below 1.

    Example:
        >>> [format_frames(r) for r in plan_chunks(250, 100)]
        ['0-99', '100-199', '200-249']
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise UsageError(f"num_frames: expected a frame count of at least 1, got {num_frames!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UsageError(f"chunk: expected at least 1 frame per task, got {chunk!r}; e.g. --chunk 100")
    return [range(start, min(start + chunk, num_frames)) for start in range(0, num_frames, chunk)]


def format_frames(frames: range) -> str:
    """A frame range as the ``A-B`` (inclusive) text that ``--frames`` takes.

    Example:
        >>> format_frames(range(100, 200))
        '100-199'
    """
    return f"{frames.start}-{frames.stop - 1}"
