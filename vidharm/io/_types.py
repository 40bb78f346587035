"""What the decoder reports about a clip, and one decoded frame."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidharm.io._color import ColorTags

__all__ = ["VideoInfo", "VideoFrame"]


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a clip's first video stream, as the container and its first decoded frame state them.

    Attributes:
        path: the clip.
        width: coded width in pixels (before any display rotation).
        height: coded height in pixels.
        fps: the stream's average frame rate.
        time_base: the stream's time base; frame ``pts`` count in it.
        num_frames: the frame count the container states, ``None`` where it states none (use ``count_frames``).
        duration_s: the stream's (else the container's) duration in seconds, ``None`` where unknown.
        codec: decoder name, e.g. ``"h264"``.
        pix_fmt: the decoded pixel format, e.g. ``"yuv420p"``.
        bit_depth: bits per sample of the deepest component (8, 10, 12, 16).
        has_alpha: whether the stream carries alpha (in its pixel format, or VP8/VP9's WebM alpha side channel);
            ``read_frames`` returns it only when asked (``alpha=True``).
        color: the stream's colour tags.
        has_audio: whether the file has an audio stream.
        rotation_deg: display-matrix rotation, counter-clockwise degrees in [-180, 180]; 0 when absent.
        first_frame: the number of the first frame: an image sequence's first file number (1001 for
            ``shot.1001.exr``), 0 for a video. Frame ``index`` i is source frame ``first_frame + i``.
        timecode: SMPTE timecode of the first frame, ``"HH:MM:SS:FF"`` (``;`` before the frames for drop-frame),
            from a mov/mp4 ``tmcd`` track or a ``timecode`` tag; ``None`` where the file has none.
        sample_aspect_ratio: pixel width / pixel height (4/3 for anamorphic 1440x1080 at 16:9); 1 where the
            file states none. Display aspect ratio = ``width / height * sample_aspect_ratio``.
        profile: the codec profile as the decoder names it (``"HQ"``, ``"4444"``, ``"XQ"`` for ProRes,
            ``"DNXHR HQX"`` for DNxHR, ``"High"`` for H.264), ``None`` where the codec has none.

    Example:
        >>> from fractions import Fraction
        >>> info = VideoInfo(Path("a.mp4"), 64, 48, Fraction(25), Fraction(1, 12800), 10, 0.4, "h264", "yuv420p",
        ...                  8, False, ColorTags("bt709", "bt709", "bt709", "tv"), True, 0)
        >>> info.width, info.height, float(info.fps)
        (64, 48, 25.0)
        >>> info.timecode, info.sample_aspect_ratio, info.profile
        (None, Fraction(1, 1), None)
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    num_frames: int | None
    duration_s: float | None
    codec: str
    pix_fmt: str
    bit_depth: int
    has_alpha: bool
    color: ColorTags
    has_audio: bool
    rotation_deg: int
    first_frame: int = 0
    timecode: str | None = None
    sample_aspect_ratio: Fraction = Fraction(1)
    profile: str | None = None


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded frame at its source position and time.

    Attributes:
        index: 0-based frame number in the source (decode order of presentation, counting every decoded frame).
        pts: presentation timestamp in ``time_base`` units, ``None`` where the container gives none.
        time_base: the unit of ``pts``, in seconds.
        image: (H, W, 3) RGB; uint8 in [0, 255] for 8-bit sources, uint16 in [0, 65535] for deeper ones,
            float32 (unbounded, e.g. scene-linear) for float sources such as EXR.
        alpha: (H, W) alpha of the same dtype and scale as ``image`` when it was asked for and the source has
            one (``read_frames(..., alpha=True)``), else None.
        planes: the decoded 8-bit 4:2:0 frame itself, (H * 3 / 2, W) uint8 as PyAV's ``yuv420p`` arrays hold it
            (Y, then Cb and Cr), when it was asked for (``read_frames(..., planes=True)``) and the stream is
            8-bit 4:2:0 at an even size; ``image`` is its RGB conversion. Else None.

    Example:
        >>> from fractions import Fraction
        >>> frame = VideoFrame(0, 0, Fraction(1, 25), np.zeros((48, 64, 3), np.uint8))
        >>> frame.image.shape, frame.image.dtype.name
        ((48, 64, 3), 'uint8')
    """

    index: int
    pts: int | None
    time_base: Fraction
    image: np.ndarray
    alpha: np.ndarray | None = None
    planes: np.ndarray | None = None
