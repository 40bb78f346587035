"""Tiny synthetic clips for doctests and tests, written with PyAV directly (independent of VideoWriter)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vidharm.io._color import ColorTags, codes_from_tags, sws_matrix, sws_range

__all__ = ["pattern_frame", "pattern_alpha", "write_test_clip"]

BT709_TV = ColorTags("bt709", "bt709", "bt709", "tv")
_LAYOUTS = {(8, 3): "rgb24", (8, 4): "rgba", (16, 3): "rgb48le", (16, 4): "rgba64le"}  # (depth, channels)


def pattern_frame(index: int, height: int, width: int, *, depth: int = 8) -> np.ndarray:
    """A deterministic, saturated RGB pattern that moves with ``index``.

    Args:
        index: frame number (shifts the pattern).
        height: rows, >= 1.
        width: columns, >= 1.
        depth: 8 for uint8 in [0, 255], 16 for uint16 in [0, 65535].

    Returns:
        (height, width, 3) RGB array.

    Example:
        >>> pattern_frame(0, 4, 6).shape
        (4, 6, 3)
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    # Smooth, strongly saturated fields: 4:2:0 chroma resampling barely changes them, while a BT.601/709
    # matrix mix-up shifts them by many levels.
    r = 0.5 + 0.5 * np.sin(xx * 0.12 + index * 0.3)
    g = 0.5 + 0.5 * np.sin(yy * 0.15 + 2.0)
    b = 0.5 + 0.5 * np.cos((xx + yy) * 0.08 - index * 0.2)
    rgb = np.stack([r, g, b], axis=-1)
    peak = 255 if depth == 8 else 65535
    return np.round(rgb * peak).astype(np.uint8 if depth == 8 else np.uint16)


def pattern_alpha(index: int, height: int, width: int, *, depth: int = 8) -> np.ndarray:
    """A deterministic alpha plane that moves with ``index``: smooth waves spanning transparent to opaque.

    Args:
        index: frame number (shifts the waves).
        height: rows, >= 1.
        width: columns, >= 1.
        depth: 8 for uint8 in [0, 255], 16 for uint16 in [0, 65535].

    Returns:
        (height, width) alpha array.

    Example:
        >>> a = pattern_alpha(0, 48, 64)
        >>> a.shape, a.dtype.name, int(a.min()) < 10, int(a.max()) > 245
        ((48, 64), 'uint8', True, True)
    """
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    alpha = 0.5 + 0.5 * np.sin(yy * 0.2 + xx * 0.07 + index * 0.4)
    peak = 255 if depth == 8 else 65535
    return np.round(alpha * peak).astype(np.uint8 if depth == 8 else np.uint16)


def write_test_clip(
    path: str | os.PathLike[str],
    *,
    num_frames: int = 10,
    width: int = 64,
    height: int = 48,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fps: Fraction | int = 25,
    time_base: Fraction = Fraction(1, 12800),
    color: ColorTags | None = BT709_TV,
    audio: str | None = None,
    pts: Sequence[int] | None = None,
    rotation_deg: int = 0,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    pattern: Callable[[int], np.ndarray] | None = None,
    timecode: str | None = None,
    sample_aspect_ratio: Fraction | None = None,
    audio_streams: int = 1,
    audio_languages: Sequence[str] = (),
) -> Path:
    """Write a short synthetic clip (test pattern, optional sine audio) and return its path.

    Args:
        path: output file; the container follows the suffix.
        num_frames: frames to write, >= 0 (0 gives an empty video stream).
        width: frame width in pixels.
        height: frame height in pixels.
        codec: video encoder name.
        pix_fmt: encoder pixel format (a >8-bit format gets a 16-bit pattern; one with alpha gets
            ``pattern_alpha`` as its alpha).
        fps: nominal frame rate.
        time_base: stream time base.
        color: tags written to the stream and used for the RGB->YUV matrix; None writes an untagged
            stream converted as BT.601 limited range (ffmpeg's assumption for untagged video).
        audio: ``None``, ``"aac"`` or a PCM codec such as ``"pcm_s16le"``: a 440 Hz mono sine as long as the video
            (the k-th stream: 440 * (k + 1) Hz).
        pts: explicit presentation timestamps (e.g. irregular ones for variable frame rate); default i / fps.
        rotation_deg: display-matrix rotation, counter-clockwise degrees.
        options: encoder options; None gives crf 10 for libx264/libx265.
        container_options: muxer options, e.g. ``{"movflags": "+faststart"}``.
        pattern: ``pattern(i)`` gives frame i's pixels instead of the test pattern: (H, W, 3) RGB or (H, W, 4)
            RGBA, uint8 for 8-bit formats and uint16 (full 16-bit scale) for deeper ones.
        timecode: the first frame's timecode tag, e.g. ``"01:00:00:00"`` (a tmcd track in mov/mp4).
        sample_aspect_ratio: pixel aspect ratio to state, e.g. ``Fraction(4, 3)``; None states none.
        audio_streams: how many audio streams to write when ``audio`` is set.
        audio_languages: language tags of the audio streams, in order (ISO 639-2, e.g. ``"eng"``).

    Returns:
        ``path`` as a Path.

    Example:
        >>> import tempfile
        >>> write_test_clip(Path(tempfile.mkdtemp()) / "c.mkv", num_frames=2).suffix
        '.mkv'
    """
    out_path = Path(path)
    rate = Fraction(fps)
    if pts is None:
        pts = [int(round(Fraction(i) / rate / time_base)) for i in range(num_frames)]
    deep = any(c.bits > 8 for c in av.VideoFormat(pix_fmt).components)
    has_alpha = any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)
    is_rgb = av.VideoFormat(pix_fmt).is_rgb
    with av.open(str(out_path), "w", options=dict(container_options or {})) as out:
        if options is None:
            # Near-transparent quality, so decoded frames stay close to the pattern.
            options = {"crf": "10"} if codec in ("libx264", "libx265") else {}
        video: Any = out.add_stream(codec, rate=rate, options=dict(options))
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        if color is not None:
            for field, code in codes_from_tags(color).items():
                setattr(video.codec_context, field, code)
        if rotation_deg:
            video.set_display_rotation(rotation_deg)
        if sample_aspect_ratio is not None:
            video.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if timecode is not None:
            video.metadata["timecode"] = timecode
        sounds: list[Any] = []
        for k in range(audio_streams if audio is not None else 0):
            sound: Any = out.add_stream(str(audio), rate=48000)
            sound.layout = "mono"
            if k < len(audio_languages):
                sound.metadata["language"] = audio_languages[k]
            sounds.append(sound)
        out.start_encoding()  # writes the header even when no frame follows (an empty clip)
        tags = color or ColorTags(None, None, None, None)
        for i, stamp in enumerate(pts[:num_frames]):
            depth = 16 if deep else 8
            if pattern is not None:
                pixels = np.ascontiguousarray(pattern(i))
            elif has_alpha:
                pixels = np.dstack(
                    [pattern_frame(i, height, width, depth=depth), pattern_alpha(i, height, width, depth=depth)]
                )
            else:
                pixels = pattern_frame(i, height, width, depth=depth)
            frame = av.VideoFrame.from_ndarray(pixels, format=_LAYOUTS[depth, pixels.shape[-1]])
            if is_rgb:
                frame = frame.reformat(format=pix_fmt)
            else:
                matrix = sws_matrix(tags.matrix, path=out_path)
                frame = frame.reformat(
                    format=pix_fmt,
                    src_colorspace=matrix,
                    dst_colorspace=matrix,
                    src_color_range="JPEG",
                    dst_color_range=sws_range(tags.range, pix_fmt),
                )
            frame.pts, frame.time_base = int(stamp), time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for number, sound in enumerate(sounds):
            seconds = float((pts[num_frames - 1] if num_frames else 0) * time_base + 1 / rate)
            samples = int(round(seconds * 48000))
            wave = 0.3 * np.sin(2 * np.pi * 440 * (number + 1) * np.arange(samples) / 48000)
            fmt = sound.codec_context.codec.audio_formats[0].name
            for k in range(0, samples, 1024):
                chunk = wave[None, k : k + 1024]
                data: Any = (chunk * 32767).astype(np.int16) if fmt.startswith("s16") else chunk.astype(np.float32)
                block = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt, layout="mono")
                block.sample_rate, block.pts, block.time_base = 48000, k, Fraction(1, 48000)
                out.mux(sound.encode(block))
            out.mux(sound.encode(None))
    return out_path
