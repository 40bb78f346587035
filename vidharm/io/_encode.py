"""Streaming encode with PyAV: source timing and colour kept, audio remuxed, output written atomically."""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np

from vidharm.errors import InputError, OutputError, UsageError, check_shape
from vidharm.io._atomic import commit, discard, temp_path_for
from vidharm.io._color import ColorTags, codes_from_tags, sws_matrix, sws_range
from vidharm.io._decode import check_input_path
from vidharm.io._types import VideoFrame, VideoInfo

__all__ = ["VideoWriter"]

_log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
SUGGESTED_CODECS = ("libx264", "libx264rgb", "libx265", "libvpx-vp9", "ffv1", "prores_ks", "mpeg4")

# Encoders that take x264-style private options; others ignore crf/preset (logged at debug level).
_TAKES_CRF = {"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libsvtav1"}
_TAKES_PRESET = {"libx264", "libx264rgb", "libx265", "libsvtav1"}

# Default pixel formats in order of preference: (8-bit sources, deeper sources). The first one the encoder
# supports wins. ffv1 prefers planar RGB, which round-trips decoded RGB exactly; FFmpeg 8's ffv1 has no 8-bit
# gbrp, so bgr0 (also RGB, also exact) follows.
_DEFAULT_PIX_FMT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "libx264": (("yuv420p",), ("yuv420p10le",)),
    "libx265": (("yuv420p",), ("yuv420p10le",)),
    "libvpx-vp9": (("yuv420p",), ("yuv420p10le",)),
    "libx264rgb": (("rgb24", "bgr0"), ("rgb24", "bgr0")),
    "ffv1": (("gbrp", "bgr0"), ("gbrp16le", "rgb48le")),
    "prores_ks": (("yuv422p10le",), ("yuv422p10le",)),
    "mpeg4": (("yuv420p",), ("yuv420p",)),
}


def _container_format(path: Path) -> str:
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise UsageError(
            f"{path}: unsupported output extension {path.suffix!r}; expected one of {sorted(CONTAINERS)}"
        ) from None


def _encoder(codec: str) -> Any:
    try:
        found = av.Codec(codec, "w")
    except (ValueError, TypeError):
        found = None
    if found is None or found.type != "video":
        raise UsageError(f"codec {codec!r} is not a video encoder here; use one of {', '.join(SUGGESTED_CODECS)}")
    return found


def _is_deep(fmt: str) -> bool:
    return any(c.bits > 8 for c in av.VideoFormat(fmt).components)


def _subsampled(fmt: str) -> bool:
    desc = av.VideoFormat(fmt, 4, 4)
    if desc.is_rgb or len(desc.components) < 3:
        return False
    luma, chroma = desc.components[0], desc.components[1]
    return chroma.width < luma.width or chroma.height < luma.height


def _full_chroma(fmt: str) -> str:
    """The 4:4:4 variant of a 4:2:0/4:2:2 YUV format (same depth, same alpha)."""
    match = re.fullmatch(r"(yuva?j?)4[12][02]p(.*)", fmt)
    if match:
        return f"{match[1]}444p{match[2]}"
    semi = {"nv12": "yuv444p", "nv21": "yuv444p", "nv16": "yuv444p", "nv20le": "yuv444p10le"}
    return semi.get(fmt, fmt)


def _choose_pix_fmt(encoder: Any, like: VideoInfo, requested: str | None) -> str:
    supported = [f.name for f in (encoder.video_formats or [])]
    if requested is not None:
        if supported and requested not in supported:
            raise UsageError(
                f"codec {encoder.name!r} cannot take pix_fmt {requested!r}; choose one of {', '.join(supported[:12])}"
            )
        fmt = requested
    else:
        deep = like.bit_depth > 8
        preferred = _DEFAULT_PIX_FMT.get(encoder.name, ((like.pix_fmt,), (like.pix_fmt,)))[1 if deep else 0]
        candidates = [f for f in preferred if not supported or f in supported]
        if deep and not candidates:
            _log.warning("codec %s offers no >8-bit pixel format here; writing 8 bits", encoder.name)
            candidates = [f for f in _DEFAULT_PIX_FMT.get(encoder.name, ((),))[0] if f in supported]
        if candidates:
            fmt = candidates[0]
        elif like.pix_fmt in supported:
            fmt = like.pix_fmt
        else:
            fmt = supported[0]
    if (like.width % 2 or like.height % 2) and _subsampled(fmt):
        full = _full_chroma(fmt)
        if supported and full not in supported:
            raise UsageError(
                f"{like.width}x{like.height} has an odd side, which {fmt} cannot hold and codec {encoder.name!r} "
                f"has no 4:4:4 format; use codec libx264 or ffv1"
            )
        _log.warning(
            "%dx%d has an odd side: writing %s instead of %s so the size stays unchanged",
            like.width,
            like.height,
            full,
            fmt,
        )
        fmt = full
    return fmt


def _output_color(source: ColorTags, pix_fmt: str, where: Path) -> tuple[ColorTags, dict[str, Any] | None]:
    """Tags to write and the explicit swscale arguments for RGB -> ``pix_fmt`` (None: plain repacking)."""
    if av.VideoFormat(pix_fmt).is_rgb:
        # Stored RGB has no matrix and is full range by definition.
        return ColorTags(source.primaries, source.transfer, "gbr", "pc"), None
    tags = source
    if source.matrix == "gbr":
        # An RGB source going to YUV needs a matrix; name it in the tags so every reader applies the same one.
        tags = ColorTags(source.primaries, source.transfer, "bt709", "tv")
    matrix = sws_matrix(tags.matrix, path=where)
    return tags, {
        "src_colorspace": matrix,
        "dst_colorspace": matrix,
        "src_color_range": "JPEG",
        "dst_color_range": sws_range(tags.range, pix_fmt),
    }


def _seconds(packet: Any) -> float:
    ts = packet.pts if packet.pts is not None else packet.dts
    return float(ts * packet.time_base)


class VideoWriter:
    """Encode frames to a video file, keeping the source's timing, size and colour, with its audio remuxed.

    The file is written to a hidden temp file beside ``path`` and renamed onto ``path`` only when the ``with``
    block ends without an exception (after flushing the encoder, muxing the remaining audio, closing and
    fsyncing). On any exception, KeyboardInterrupt included, the temp file is deleted: ``path`` never appears
    half-written.

    Timing: the stream gets ``rate=like.fps`` and ``time_base=like.time_base``, and each frame keeps its own
    ``pts`` (rescaled only when its ``time_base`` differs), so variable frame rate stays variable. Matroska
    stores milliseconds, so there timestamps survive to the millisecond; mp4/mov keep them exactly. AVI
    counts frames: its time base is ``1 / like.fps`` and it holds constant frame rate only.

    Colour: the four tags of ``like.color`` are written to the stream, and RGB -> YUV uses the matching matrix
    and range explicitly (untagged sources: BT.601 limited range, as the decoder assumed; they stay untagged).
    RGB-coded outputs (ffv1, libx264rgb) are tagged ``gbr``/``pc`` with the source's primaries and transfer.

    Pixel format: libx264/libx265/libvpx-vp9 write yuv420p (yuv420p10le for >8-bit sources where the encoder
    has it), ffv1 planar/packed RGB (exact), libx264rgb rgb24, prores_ks yuv422p10le. With an odd width or
    height a 4:2:0/4:2:2 format becomes its 4:4:4 variant (logged as a warning); the size never changes.

    Audio: with ``audio_from``, its first audio stream is copied packet by packet (no re-encode; packets
    of size 0 are skipped, a missing dts is set to the pts), interleaved with the video as frames are written. With
    ``frames=(first, last)`` (source frame numbers, both inclusive) only written frames in that range are
    accepted, and only the audio packets overlapping the written frames' time span are kept (cut at packet
    granularity, timestamps unchanged).

    Args:
        path: output file; .mp4, .mov, .mkv or .avi (the container follows the extension); its folder must exist.
        like: the source's VideoInfo: size, rate, time base, colour tags and bit depth to match.
        codec: video encoder name, e.g. libx264, libx264rgb, libx265, libvpx-vp9, ffv1, prores_ks, mpeg4.
        crf: constant-rate factor for encoders that take one (x264/x265: 0 lossless .. 51), None to not set it.
        preset: encoder speed preset for encoders that take one, None to not set it.
        pix_fmt: encoder pixel format, None for the default above.
        audio_from: file whose first audio stream is remuxed, None for no audio (no audio stream: no audio).
        frames: (first, last) source frame numbers of a segment render, None for the whole clip.

    Raises:
        UsageError: unknown codec, unsupported extension or pix_fmt, a codec the container cannot hold.
        InputError: ``audio_from`` is missing or unreadable.
        OutputError: the folder is missing or the file cannot be written.

    Example:
        >>> import tempfile
        >>> from vidharm.io import probe_video, read_frames
        >>> from vidharm.io._synth import write_test_clip
        >>> folder = Path(tempfile.mkdtemp())
        >>> src = write_test_clip(folder / "src.mp4", num_frames=4, audio="aac")
        >>> info = probe_video(src)
        >>> with VideoWriter(folder / "out.mp4", info, preset="ultrafast", audio_from=src) as writer:
        ...     for frame in read_frames(src):
        ...         writer.write(frame)
        >>> out = probe_video(folder / "out.mp4")
        >>> out.num_frames, out.has_audio, out.color == info.color
        (4, True, True)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        like: VideoInfo,
        *,
        codec: str = "libx264",
        crf: int | None = 18,
        preset: str | None = "medium",
        pix_fmt: str | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        frames: tuple[int, int] | None = None,
    ) -> None:
        self.path = Path(path)
        self.like = like
        container_format = _container_format(self.path)
        encoder = _encoder(codec)
        self.pix_fmt = _choose_pix_fmt(encoder, like, pix_fmt)
        self.color, self._sws = _output_color(like.color, self.pix_fmt, self.path)
        if frames is not None and not (
            len(frames) == 2 and all(isinstance(i, int) for i in frames) and 0 <= frames[0] <= frames[1]
        ):
            raise UsageError(f"frames must be (first, last) with 0 <= first <= last, got {frames!r}")
        self.frames = frames
        # AVI counts frames, not time: its time base must be one frame, so it holds constant frame rate only.
        self.time_base = 1 / Fraction(like.fps) if container_format == "avi" else Fraction(like.time_base)
        audio_path = None if audio_from is None else check_input_path(audio_from)

        self._out: Any = None
        self._audio_in: Any = None
        self._audio_stream: Any = None
        self._audio_packets: Any = None
        self._pending: Any = None
        self._span: tuple[float, float] | None = None  # (start, end) seconds of the frames written so far
        self._last_pts: int | None = None
        self._written = 0
        self._temp = temp_path_for(self.path)
        self._closed = False
        try:
            self._open(container_format, encoder, crf, preset, audio_path)
        except BaseException:
            self._abort()
            raise

    def _open(
        self, container_format: str, encoder: Any, crf: int | None, preset: str | None, audio: Path | None
    ) -> None:
        like = self.like
        options: dict[str, str] = {}
        if crf is not None:
            if encoder.name in _TAKES_CRF:
                options["crf"] = str(crf)
            else:
                _log.debug("codec %s takes no crf; ignoring crf=%s", encoder.name, crf)
        if preset is not None:
            if encoder.name in _TAKES_PRESET:
                options["preset"] = preset
            else:
                _log.debug("codec %s takes no preset; ignoring preset=%s", encoder.name, preset)
        # Matroska would shift every stream so that an AAC pre-roll packet (pts < 0) starts at 0, moving all
        # frame times by ~21 ms; its blocks can hold negative times, so keep the source's timestamps instead.
        muxer_options = {"avoid_negative_ts": "disabled"} if container_format == "matroska" else {}
        try:
            self._out = av.open(str(self._temp), "w", format=container_format, options=muxer_options)
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.path}: cannot create the output ({exc}); check the folder's permissions") from exc
        try:
            stream = self._out.add_stream(encoder.name, rate=like.fps, options=options)
        except ValueError as exc:
            raise UsageError(
                f"{self.path}: codec {encoder.name!r} cannot go into {self.path.suffix} ({exc}); use .mkv or .mov"
            ) from exc
        stream.width, stream.height, stream.pix_fmt = like.width, like.height, self.pix_fmt
        stream.time_base = self.time_base
        cc = stream.codec_context
        cc.time_base = self.time_base
        if encoder.name == "libvpx-vp9" and crf is not None:
            cc.bit_rate = 0  # libvpx needs bit rate 0 for constant quality (crf alone is capped quality)
        for field, code in codes_from_tags(self.color).items():
            setattr(cc, field, code)
        if like.rotation_deg:
            stream.set_display_rotation(like.rotation_deg)
        self._video = stream
        self._frame_tags = codes_from_tags(self.color)
        if audio is not None:
            self._open_audio(audio)
        try:
            self._out.start_encoding()
        except OSError as exc:
            # The muxer opens the file only now: a folder that refuses files (permissions, /proc) lands here.
            raise OutputError(f"{self.path}: cannot create the output ({exc}); check the folder's permissions") from exc
        except (av.error.FFmpegError, ValueError) as exc:
            raise UsageError(
                f"{self.path}: cannot start encoding {encoder.name} {self.pix_fmt} {like.width}x{like.height} at "
                f"time base {self.time_base} into {self.path.suffix} ({exc}); try codec libx264 or a .mkv output"
            ) from exc

    def _open_audio(self, audio: Path) -> None:
        try:
            self._audio_in = av.open(str(audio), "r")
        except av.error.FFmpegError as exc:
            raise InputError(f"{audio}: cannot read it for its audio ({exc}); check audio_from") from exc
        if not self._audio_in.streams.audio:
            _log.info("%s has no audio stream; writing video only", audio)
            self._audio_in.close()
            self._audio_in = None
            return
        template = self._audio_in.streams.audio[0]
        try:
            self._audio_stream = self._out.add_stream_from_template(template)
        except ValueError as exc:
            raise UsageError(
                f"{self.path}: audio codec {template.codec_context.name!r} from {audio} cannot go into "
                f"{self.path.suffix} ({exc}); use a .mkv or .mov output"
            ) from exc
        self._audio_source = audio
        self._audio_packets = self._audio_in.demux(template)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    def write(self, frame: VideoFrame) -> None:
        """Encode one frame (and mux the audio up to its time).

        Args:
            frame: a VideoFrame whose ``image`` is (H, W, 3) RGB uint8 [0, 255] or uint16 [0, 65535] at the
                size of ``like``; its ``pts`` (in its ``time_base``) must increase from frame to frame. A frame
                with ``pts=None`` is placed at ``index / fps``.

        Raises:
            ShapeError: the image is not (H, W, 3) at the clip's size.
            UsageError: wrong dtype, non-increasing pts, a frame outside ``frames``, or the writer is closed.
            OutputError: the encoder or the file failed.
        """
        if self._closed:
            raise UsageError(f"{self.path}: the writer is closed; open a new VideoWriter")
        image = frame.image
        check_shape("frame.image", image.shape, (self.like.height, self.like.width, 3))
        if image.dtype not in (np.uint8, np.uint16):
            raise UsageError(f"frame.image must be uint8 or uint16 RGB, got {image.dtype}; convert before writing")
        if self.frames is not None and not self.frames[0] <= frame.index <= self.frames[1]:
            raise UsageError(f"frame {frame.index} is outside the segment frames={self.frames}; write only those")
        pts = self._output_pts(frame)
        src = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(image), format="rgb24" if image.dtype == np.uint8 else "rgb48le"
        )
        out = src.reformat(format=self.pix_fmt) if self._sws is None else src.reformat(format=self.pix_fmt, **self._sws)
        for field, code in self._frame_tags.items():
            setattr(out, field, code)
        out.pts, out.time_base = pts, self.time_base
        start = float(pts * self.time_base)
        end = start + 1.0 / float(self.like.fps)
        self._span = (start, end) if self._span is None else (self._span[0], max(self._span[1], end))
        try:
            self._out.mux(self._video.encode(out))
            self._mux_audio(until_s=start)
        except av.error.FFmpegError as exc:
            raise OutputError(f"{self.path}: encoding frame {frame.index} failed ({exc}); check disk space") from exc
        self._last_pts = pts
        self._written += 1

    def _output_pts(self, frame: VideoFrame) -> int:
        tb = self.time_base
        if frame.pts is None:
            pts = int(round(Fraction(frame.index) / self.like.fps / tb))
        elif frame.time_base != tb:
            pts = int(round(frame.pts * frame.time_base / tb))
        else:
            pts = int(frame.pts)
        if self._last_pts is not None and pts <= self._last_pts:
            hint = (
                "; AVI holds constant frame rate only, use .mp4 or .mkv" if self.path.suffix.lower() == ".avi" else ""
            )
            raise UsageError(
                f"frame {frame.index}: pts {pts} does not increase (previous {self._last_pts}); "
                f"write frames in order{hint}"
            )
        return pts

    def _mux_audio(self, until_s: float | None) -> None:
        """Mux audio packets starting before ``until_s`` (all when None), within the segment's span if set."""
        if self._audio_packets is None:
            return
        while True:
            if self._pending is None:
                try:
                    packet = next(self._audio_packets)
                except StopIteration:
                    self._audio_packets = None
                    return
                except av.error.FFmpegError as exc:
                    raise InputError(
                        f"{self._audio_source}: reading its audio failed ({exc}); check audio_from"
                    ) from exc
                if packet.size == 0:  # the demuxer's final flush packet
                    continue
                if packet.dts is None:
                    if packet.pts is None:
                        _log.debug("skipping an audio packet with neither pts nor dts")
                        continue
                    packet.dts = packet.pts  # audio is never reordered, so decode time = presentation time
                self._pending = packet
            packet = self._pending
            start = _seconds(packet)
            if until_s is not None and start >= until_s:
                return
            self._pending = None
            if self.frames is not None and self._span is not None:
                end = start + float((packet.duration or 0) * packet.time_base)
                if end <= self._span[0]:
                    continue
                if start >= self._span[1]:
                    self._audio_packets = None
                    return
            packet.stream = self._audio_stream
            self._out.mux(packet)

    def close(self) -> None:
        """Flush the encoder, mux the remaining audio, close, fsync and rename the temp file onto ``path``.

        Raises:
            UsageError: no frame was written (the temp file is deleted).
            OutputError: the encoder, the file or the rename failed (the temp file is deleted).
        """
        if self._closed:
            return
        try:
            if self._written == 0:
                raise UsageError(f"{self.path}: no frames were written; write at least one frame before closing")
            self._out.mux(self._video.encode(None))
            if self.frames is not None and self._span is not None:
                self._mux_audio(until_s=self._span[1])
            else:
                self._mux_audio(until_s=None)
            self._out.close()
        except av.error.FFmpegError as exc:
            self._abort()
            raise OutputError(f"{self.path}: finishing the file failed ({exc}); check disk space") from exc
        except BaseException:
            self._abort()
            raise
        self._closed = True
        self._close_audio()
        commit(self._temp, self.path)

    def _close_audio(self) -> None:
        if self._audio_in is not None:
            try:
                self._audio_in.close()
            except av.error.FFmpegError:
                pass
            self._audio_in = None
        self._audio_packets = None

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            _log.warning("%s: VideoWriter dropped without close(); discarding the unfinished output", self.path)
            self._abort()

    def _abort(self) -> None:
        """Close everything without finishing and delete the temp file."""
        self._closed = True
        if self._out is not None:
            try:
                self._out.close()
            except Exception:  # the output is being thrown away; its close errors do not matter
                pass
            self._out = None
        self._close_audio()
        discard(self._temp)
