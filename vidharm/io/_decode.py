"""Streaming decode with PyAV (or decord): clip facts, frames as RGB arrays, exact frame counts."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from vidharm.errors import InputError, UsageError
from vidharm.io._color import merge_tags, sws_matrix, sws_range, tags_from_codes
from vidharm.io._seqread import count_sequence, is_sequence_input, probe_sequence, read_sequence
from vidharm.io._types import VideoFrame, VideoInfo

__all__ = ["probe_video", "read_frames", "count_frames"]

_log = logging.getLogger(__name__)

DECODERS = ("pyav", "decord")


def check_input_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path, or InputError when it is missing or a folder."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path (expected a video file such as clip.mp4)")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a video file; name the clip inside it")
    return p


def _open_input(path: Path) -> Any:
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{path}: not a readable media file or its header is corrupt ({exc.strerror or exc}); "
            "check that it is a complete video (re-export or re-download it)"
        ) from exc


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams at all; an empty clip?"
        raise InputError(f"{path}: has no video stream (found: {kinds}); give a video file, not audio/data")
    return container.streams.video[0]


# FFmpeg's own VP8/VP9 decoders ignore the alpha plane WebM stores beside each frame (Matroska BlockAdditional,
# announced by the track's alpha_mode tag); libvpx's decoders read it and give yuva420p.
_ALPHA_SIDE_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def _decoder(stream: Any, *, threaded: bool = True) -> Any:
    """The codec context that decodes ``stream``: its own, or libvpx's for WebM alpha; multithreaded if asked."""
    native = stream.codec_context
    if threaded:
        native.thread_type = "AUTO"
    name = _ALPHA_SIDE_DECODERS.get(native.name)
    if name is None or _tag(stream.metadata, "alpha_mode") != "1":
        return native
    try:
        context = av.CodecContext.create(name, "r")
    except (ValueError, av.error.FFmpegError):
        _log.warning("%s has an alpha channel but this FFmpeg has no %s decoder to read it", native.name, name)
        return native
    context.extradata = native.extradata
    if threaded:
        context.thread_type = "AUTO"
    return context


def _tag(tags: dict[str, str], key: str) -> str | None:
    """A metadata value by case-insensitive key (Matroska upper-cases its tags), stripped; None when absent."""
    for name, value in tags.items():
        if name.lower() == key and str(value).strip():
            return str(value).strip()
    return None


def _decode_packet(decoder: Any, packet: Any, path: Path, index: int) -> list[Any]:
    try:
        return list(decoder.decode(packet))
    except av.error.FFmpegError as exc:
        raise InputError(
            f"{path}: decoding failed at frame {index} ({exc.strerror or exc}); the clip is damaged, "
            "re-export it or cut it before that frame"
        ) from exc


def _demux(container: Any, stream: Any, path: Path, reached: Callable[[], int]) -> Iterator[Any]:
    """The stream's packets, turning read errors into InputError naming the frame ``reached()`` reports."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            raise InputError(
                f"{path}: reading failed near frame {reached()} ({exc.strerror or exc}); the file is damaged or "
                "truncated, re-export or re-download it"
            ) from exc
        yield packet


def _stated_duration_s(stream: Any) -> float | None:
    """The video stream's own stated duration: stream duration, else Matroska's per-stream DURATION tag."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        m = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip())
        if m:
            return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])
    return None


class _Completeness:
    """Tracks demuxed video packets to tell a complete stream from a truncated one at EOF."""

    def __init__(self, container: Any, stream: Any) -> None:
        self.stream = stream
        # mp4/mov sample tables count frames. AVI's length counts time-base ticks, which are frames only when
        # the time base is one frame, and even then include the ticks the muxer shifted the stream by (B-frame
        # delay, audio pre-roll): allow a few. Matroska states a per-stream duration instead. Other formats
        # (MPEG-TS, ...) may estimate theirs from the bit rate, so they get no check.
        name = container.format.name
        one_frame_ticks = bool(stream.average_rate) and stream.time_base * stream.average_rate == 1
        stated = "mp4" in name or (name == "avi" and one_frame_ticks)
        self.stated_frames = int(stream.frames or 0) if stated else 0
        self.frame_slack = 4 if name == "avi" else 0
        self.use_duration = name.startswith("matroska")
        self.packets = 0  # every real packet, including empty (dropped) frames and ones an edit list discards
        self.counted = 0  # non-empty packets the decoder presents
        self.end_s: float | None = None

    def add(self, packet: Any) -> None:
        if packet.size == 0 and packet.dts is None:  # the demuxer's final flush packet
            return
        self.packets += 1
        if packet.size and not getattr(packet, "is_discard", False):
            self.counted += 1
        ts = packet.pts if packet.pts is not None else packet.dts
        tb = packet.time_base or self.stream.time_base
        if ts is not None and tb:
            end = float((ts + (packet.duration or 0)) * tb)
            self.end_s = end if self.end_s is None else max(self.end_s, end)

    def check(self, path: Path, frames_seen: int) -> None:
        """Raise InputError when the container promises more than its data held."""
        if self.stated_frames:
            if self.packets + self.frame_slack < self.stated_frames:
                raise InputError(
                    f"{path}: truncated: the container lists {self.stated_frames} frames but its data ends after "
                    f"{self.packets}, breaking at frame {frames_seen}; re-export or re-download the clip"
                )
            return
        duration = _stated_duration_s(self.stream) if self.use_duration else None
        rate = self.stream.average_rate or self.stream.guessed_rate
        if duration is None or not rate or self.end_s is None:
            return
        # Two frame intervals of slack: the stated duration may round up the last frame's duration. FFmpeg's
        # Matroska muxer states the stream's end time as its DURATION, not end minus start, so a segment cut
        # from the middle of a clip (starting at 10 s) states its end: compare with the data's end time.
        slack = 2.0 / float(rate) + 1e-3
        if self.end_s < duration - slack:
            raise InputError(
                f"{path}: truncated: the stream states {duration:.3f} s but its data ends at "
                f"{self.end_s:.3f} s, breaking at frame {frames_seen}; re-export or re-download the clip"
            )


def _timecode(container: Any, stream: Any) -> str | None:
    """The first frame's timecode: the video stream's tag, else a mov/mp4 tmcd track's, else the file's."""
    sources = [stream.metadata] + [s.metadata for s in container.streams if s.type == "data"] + [container.metadata]
    for tags in sources:
        found = _tag(tags, "timecode")
        if found is not None:
            return found
    return None


def _sample_aspect_ratio(stream: Any) -> Fraction:
    """The container's (else the bitstream's) sample aspect ratio; 1 where neither states one."""
    for value in (stream.sample_aspect_ratio, stream.codec_context.sample_aspect_ratio):
        if value is not None and value.numerator > 0 and value.denominator > 0:
            return Fraction(value)
    return Fraction(1)


def _frame_info(path: Path, container: Any, stream: Any, frame: Any) -> VideoInfo:
    cc = stream.codec_context
    fmt = frame.format
    stream_tags = tags_from_codes(cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range)
    frame_tags = tags_from_codes(frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range)
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not fps:
        raise InputError(
            f"{path}: the video stream states no frame rate; remux it with ffmpeg -r RATE -i IN -c copy OUT"
        )
    duration_s = _stated_duration_s(stream)
    if duration_s is None and container.duration:
        duration_s = container.duration / av.time_base
    return VideoInfo(
        path=path,
        width=int(frame.width),
        height=int(frame.height),
        fps=Fraction(fps),
        time_base=Fraction(stream.time_base),
        num_frames=int(stream.frames) or None,
        duration_s=duration_s,
        codec=cc.name,
        pix_fmt=fmt.name,
        bit_depth=max(c.bits for c in fmt.components),
        has_alpha=any(c.is_alpha for c in fmt.components),
        color=merge_tags(frame_tags, stream_tags),
        has_audio=bool(container.streams.audio),
        rotation_deg=int(round(frame.rotation or 0)),
        timecode=_timecode(container, stream),
        sample_aspect_ratio=_sample_aspect_ratio(stream),
        profile=cc.profile or None,
    )


def _rgb_converter(info: VideoInfo, alpha: bool) -> tuple[str, dict[str, str]]:
    """Target format (RGBA when ``alpha`` and the stream has it) and explicit swscale arguments for RGB."""
    if alpha and info.has_alpha:
        target = "rgba64le" if info.bit_depth > 8 else "rgba"
    else:
        target = "rgb48le" if info.bit_depth > 8 else "rgb24"
    if av.VideoFormat(info.pix_fmt).is_rgb:
        return target, {}
    return target, {
        "src_colorspace": sws_matrix(info.color.matrix, path=info.path),
        "src_color_range": sws_range(info.color.range, info.pix_fmt),
    }


def probe_video(path: str | os.PathLike[str], *, fps: Fraction | int | float | str | None = None) -> VideoInfo:
    """Describe a clip's first video stream, decoding only its first frame.

    Colour tags come from the first frame, falling back to the stream's codec parameters; the rotation comes
    from the display-matrix side data.

    Args:
        path: a video file PyAV can open (mp4, mov, mkv, avi, ...), or an image sequence (``shot.%04d.exr``,
            ``shot.####.exr``: see :mod:`vidharm.io._seqread`).
        fps: an image sequence's frame rate (default 24); giving one for a video is a UsageError.

    Returns:
        The clip's VideoInfo.

    Raises:
        InputError: the file is missing, a folder, not a media file, has no video stream or no decodable frame.

    Example:
        >>> import tempfile
        >>> from vidharm.io._synth import write_test_clip
        >>> clip = write_test_clip(Path(tempfile.mkdtemp()) / "clip.mp4", num_frames=3)
        >>> info = probe_video(clip)
        >>> info.width, info.height, info.num_frames, info.color.matrix, info.pix_fmt
        (64, 48, 3, 'bt709', 'yuv420p')
    """
    if is_sequence_input(path, fps):
        return probe_sequence(path, fps=fps)
    p = check_input_path(path)
    with _open_input(p) as container:
        stream = _video_stream(container, p)
        decoder = _decoder(stream, threaded=False)  # frame threads would delay the first frame
        for packet in _demux(container, stream, p, lambda: 0):
            for frame in _decode_packet(decoder, packet, p, 0):
                return _frame_info(p, container, stream, frame)
        raise InputError(f"{p}: the video stream has no decodable frames (empty clip); give a clip with frames")


def _check_range(start: int, stop: int | None) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise UsageError(f"start must be an int >= 0, got {start!r}; frames count from 0")
    if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int) or stop < start):
        raise UsageError(f"stop must be None or an int >= start ({start}), got {stop!r}; [start, stop) is half-open")


def read_frames(
    path: str | os.PathLike[str],
    *,
    start: int = 0,
    stop: int | None = None,
    decoder: str = "pyav",
    alpha: bool = False,
    fps: Fraction | int | float | str | None = None,
    planes: bool = False,
) -> Iterator[VideoFrame]:
    """Decode a clip frame by frame into RGB arrays, streaming (the clip is never held in memory).

    Frames are numbered from 0 in presentation order, counting every decoded frame; ``[start, stop)`` selects
    (frames before ``start`` are decoded and dropped). The YUV->RGB conversion uses the matrix and range the
    stream is tagged with, passed to swscale explicitly; an untagged stream is read as BT.601 limited range
    (full range for ``yuvj*`` formats), which is what ffmpeg itself assumes. RGB-coded streams (ffv1/gbrp,
    libx264rgb) are repacked without any matrix.

    Alpha (ProRes 4444 yuva444p, QuickTime Animation argb, PNG rgba, ffv1 yuva/gbrap/bgra, VP8/VP9 WebM alpha
    through libvpx) is dropped unless ``alpha=True``: then the frame is converted to RGBA with the same explicit
    matrix, and the alpha plane, straight (not premultiplied) as stored, comes in ``VideoFrame.alpha``.

    Args:
        path: the clip.
        start: first frame number to yield, >= 0.
        stop: one past the last frame number to yield, or None for the end; beyond the end means the end.
        decoder: ``"pyav"`` (default), or ``"decord"`` (optional extra, 8-bit sources without alpha only).
        alpha: also return the alpha channel where the stream has one.
        fps: an image sequence's frame rate (default 24; ``path`` a pattern such as ``shot.%04d.exr``, read through
            OpenImageIO, ``decoder`` ignored: see :mod:`vidharm.io._seqread`); giving one for a video is a UsageError.
        planes: also keep the decoded frame in ``VideoFrame.planes`` where it is 8-bit 4:2:0 at an even size (PyAV
            only), so that a render can work in the stream's own YUV.

    Yields:
        VideoFrame with ``image`` (H, W, 3) RGB, uint8 in [0, 255] for 8-bit sources and uint16 in
        [0, 65535] (rgb48) for deeper ones, and the source ``pts``/``time_base``; with ``alpha=True`` and a
        stream with alpha, ``alpha`` (H, W) of the image's dtype and scale (255 or 65535 = opaque), else None.

    Raises:
        InputError: the file is missing, not a media file, has no video stream or no decodable frames, has
            fewer than ``start + 1`` frames, or is truncated/damaged (raised after the frames before the break).
        UsageError: bad ``start``/``stop``/``decoder``, decord requested but not installed, or decord asked for
            alpha from a stream that has it (decord gives RGB only).

    Example:
        >>> import tempfile
        >>> from vidharm.io._synth import write_test_clip
        >>> clip = write_test_clip(Path(tempfile.mkdtemp()) / "clip.mp4", num_frames=5)
        >>> [(f.index, f.pts, f.image.shape, f.image.dtype.name) for f in read_frames(clip, start=3)]
        [(3, 1536, (48, 64, 3), 'uint8'), (4, 2048, (48, 64, 3), 'uint8')]
        >>> argb = write_test_clip(Path(tempfile.mkdtemp()) / "a.mov", num_frames=1, codec="qtrle", pix_fmt="argb")
        >>> frame = next(read_frames(argb, alpha=True))
        >>> frame.image.shape, frame.alpha.shape, frame.alpha.dtype.name
        ((48, 64, 3), (48, 64), 'uint8')
    """
    if is_sequence_input(path, fps):
        return read_sequence(path, start=start, stop=stop, alpha=alpha, fps=fps)
    _check_range(start, stop)
    if decoder not in DECODERS:
        raise UsageError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    p = check_input_path(path)
    if decoder == "decord":
        return _read_decord(p, start, stop, alpha)
    return _read_pyav(p, start, stop, alpha, planes)


def _split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(RGB, alpha) from an (H, W, 4) RGBA array; (RGB, None) from an (H, W, 3) one."""
    if pixels.shape[-1] == 4:
        return np.ascontiguousarray(pixels[..., :3]), np.ascontiguousarray(pixels[..., 3])
    return pixels, None


# Decoded formats VideoFrame.planes holds: 8-bit 4:2:0, the form H.264/HEVC decoders give and encoders take.
PLANE_FORMATS = ("yuv420p", "yuvj420p")


def _read_pyav(path: Path, start: int, stop: int | None, alpha: bool, planes: bool = False) -> Iterator[VideoFrame]:
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        decoder = _decoder(stream)
        tracker = _Completeness(container, stream)
        target: str | None = None
        sws: dict[str, str] = {}
        index = 0
        for packet in _demux(container, stream, path, lambda: index):  # noqa: B023 (late binding wanted)
            tracker.add(packet)
            for frame in _decode_packet(decoder, packet, path, index):
                if target is None:
                    target, sws = _rgb_converter(_frame_info(path, container, stream, frame), alpha)
                if index >= start:
                    image, plane = _split_alpha(frame.reformat(format=target, **sws).to_ndarray())
                    time_base = Fraction(frame.time_base or stream.time_base)
                    native = None
                    if planes and frame.format.name in PLANE_FORMATS and frame.width % 2 == frame.height % 2 == 0:
                        native = frame.to_ndarray()
                    yield VideoFrame(index, frame.pts, time_base, image, alpha=plane, planes=native)
                index += 1
                if stop is not None and index >= stop:
                    return
        if index == 0:
            raise InputError(f"{path}: the video stream has no decodable frames (empty clip); give a clip with frames")
        tracker.check(path, index)
        if index <= start:
            raise InputError(f"{path}: has {index} frames, so start={start} is past the end; use start < {index}")


def _read_decord(path: Path, start: int, stop: int | None, alpha: bool) -> Iterator[VideoFrame]:
    info = _decord_info(path, alpha)
    try:
        import decord
    except ImportError:
        raise UsageError(
            "decoder='decord' needs the decord package, which is not installed; "
            "install with pip install vidharm[decord]"
        ) from None
    return _decord_frames(decord, path, info, start, stop)


def _decord_info(path: Path, alpha: bool) -> VideoInfo:
    """The clip's VideoInfo, or UsageError when decord would lose its depth or its alpha."""
    info = probe_video(path)
    if info.bit_depth > 8:
        raise UsageError(
            f"{path}: is {info.bit_depth}-bit and decord only gives 8-bit RGB; use decoder='pyav' to keep the depth"
        )
    if alpha and info.has_alpha:
        raise UsageError(
            f"{path}: has an alpha channel ({info.pix_fmt}) and decord only gives RGB; use decoder='pyav' to read it"
        )
    return info


def _decord_frames(decord: Any, path: Path, info: VideoInfo, start: int, stop: int | None) -> Iterator[VideoFrame]:
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as exc:  # decord raises its own DECORDError for anything it cannot open
        raise InputError(f"{path}: decord cannot open it ({exc}); try decoder='pyav'") from exc
    total = len(reader)
    if start >= total:
        raise InputError(f"{path}: has {total} frames, so start={start} is past the end; use start < {total}")
    end = total if stop is None else min(stop, total)
    if start:
        reader.skip_frames(start)
    for index in range(start, end):
        image = reader.next().asnumpy()
        seconds = float(reader.get_frame_timestamp(index)[0])
        pts = int(round(Fraction(seconds) / info.time_base))
        yield VideoFrame(index, pts, info.time_base, np.ascontiguousarray(image))


def count_frames(path: str | os.PathLike[str]) -> int:
    """Count a clip's video frames exactly by demuxing its packets (no decoding).

    Packets an edit list marks for discarding are not counted, so the count matches what ``read_frames``
    yields for the usual one-frame-per-packet codecs.

    Args:
        path: the clip.

    Returns:
        The number of video frames, >= 1.

    Raises:
        InputError: missing file, not a media file, no video stream, no frames, or a truncated file.

    Example:
        >>> import tempfile
        >>> from vidharm.io._synth import write_test_clip
        >>> count_frames(write_test_clip(Path(tempfile.mkdtemp()) / "clip.mkv", num_frames=7))
        7
    """
    if is_sequence_input(path):
        return count_sequence(path)
    p = check_input_path(path)
    with _open_input(p) as container:
        stream = _video_stream(container, p)
        tracker = _Completeness(container, stream)
        for packet in _demux(container, stream, p, lambda: tracker.counted):
            tracker.add(packet)
        if tracker.counted == 0:
            raise InputError(f"{p}: the video stream has no frames (empty clip); give a clip with frames")
        tracker.check(p, tracker.counted)
        return tracker.counted
