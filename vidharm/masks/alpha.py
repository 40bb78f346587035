"""A clip's own alpha channel as its mask (``--mask-from-alpha``, and a foreground layer's alpha).

ProRes 4444, QuickTime Animation (qtrle), PNG-in-MOV and RGBA image sequences carry an alpha channel; decoded
with ``read_frames(..., alpha=True)`` it is normalised like any other mask: 8-bit values divided by 255,
16-bit by 65535, float values clipped to [0, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vidharm.errors import InputError, MaskError
from vidharm.io import VideoFrame, VideoInfo, probe_video, read_frames
from vidharm.masks.sources import fit_mask, to_alpha

__all__ = ["ClipAlpha"]

log = logging.getLogger(__name__)


class ClipAlpha:
    """The alpha channel of a clip or image sequence, as a per-frame mask source.

    The mask at clip position n (counting from 0, as :func:`~vidharm.io.read_frames` does) is that frame's alpha;
    messages name the source's frame number (``first_frame + n``). It has the same interface as
    :class:`~vidharm.masks.MaskVideo` (``iter_masks``, ``fingerprint``, ``path``), and :meth:`mask_of` turns the
    alpha of a frame decoded with ``alpha=True`` into its mask, so a caller that decodes the clip anyway need not
    decode it twice.

    Args:
        clip: the video or image-sequence pattern whose alpha is the mask.
        info: the clip's :class:`~vidharm.io.VideoInfo` if already probed.

    Raises:
        InputError: the clip cannot be read, or it has no alpha channel (then a mask folder is needed).

    Example:
        >>> import tempfile
        >>> from vidharm.io._synth import write_test_clip
        >>> clip = write_test_clip(Path(tempfile.mkdtemp()) / "plain.mp4", num_frames=2)
        >>> try:
        ...     ClipAlpha(clip)
        ... except InputError as exc:
        ...     print(str(exc).split(": ", 1)[1][:60])
        has no alpha channel (pixel format yuv420p), so it cannot be
    """

    def __init__(self, clip: str | Path, info: VideoInfo | None = None) -> None:
        self.path = Path(clip)
        self.info = info if info is not None else probe_video(self.path)
        if not self.info.has_alpha:
            raise InputError(
                f"{self.path}: has no alpha channel (pixel format {self.info.pix_fmt}), so it cannot be its own "
                f"mask; give a mask folder or mask video instead of --mask-from-alpha"
            )

    def mask_of(self, frame: VideoFrame, width: int, height: int) -> np.ndarray:
        """The mask of one frame decoded with ``alpha=True``: its alpha as float32 (height, width) in [0, 1].

        Raises:
            MaskError: the frame came without alpha, or its alpha has another aspect than (height, width).
        """
        number = self.info.first_frame + frame.index  # messages name the source's frame number
        if frame.alpha is None:
            raise MaskError(
                f"{self.path}: frame {number} was decoded without its alpha channel; decode with alpha=True "
                f"(or give a mask folder instead)"
            )
        name = f"{self.path} (alpha of frame {number})"
        return fit_mask(to_alpha(frame.alpha, name), width, height, name)

    def iter_masks(self, frames: range, width: int, height: int) -> Iterator[np.ndarray]:
        """Masks for clip positions ``frames`` (a step-1 range) in order, float32 (height, width) in [0, 1].

        Raises:
            MaskError: the clip ends before the last requested frame, or a frame has no alpha.
        """
        expected = frames.start
        for vf in read_frames(self.path, start=frames.start, stop=frames.stop, alpha=True):
            yield self.mask_of(vf, width, height)
            expected += 1
        if expected < frames.stop:
            raise MaskError(f"{self.path}: decoded {expected} frames with alpha but {frames.stop} are needed")

    def fingerprint(self) -> str:
        """Identifies the source as "the alpha of this clip"; the clip's own fingerprint covers the pixels."""
        return f"alpha:{self.path.name}"
