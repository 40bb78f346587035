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
from vidharm.io._decode import PLANE_FORMATS, check_input_path
from vidharm.io._types import VideoFrame, VideoInfo

__all__ = ["VideoWriter", "advance_timecode"]

_log = logging.getLogger(__name__)

CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}
SUGGESTED_CODECS = (
    "libx264",
    "libx264rgb",
    "libx265",
    "libvpx-vp9",
    "ffv1",
    "prores_ks",
    "dnxhd",
    "qtrle",
    "png",
    "mpeg4",
)

# Encoders that take x264-style private options; others ignore crf/preset (logged at debug level).
_TAKES_CRF = {"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libsvtav1"}
_TAKES_PRESET = {"libx264", "libx264rgb", "libx265", "libsvtav1"}

# Default pixel formats in order of preference: (8-bit sources, deeper sources). The first one the encoder
# supports wins. ffv1 prefers planar RGB, which round-trips decoded RGB exactly; FFmpeg 8's ffv1 has no 8-bit
# gbrp, so bgr0 (also RGB, also exact) follows. ProRes and DNxHR take their 4:4:4 variant for 4:4:4 and RGB
# sources (see _mastering_pix_fmt). An empty deep tuple: the codec has no >8-bit format (a warning says so).
_DEFAULT_PIX_FMT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "libx264": (("yuv420p",), ("yuv420p10le",)),
    "libx265": (("yuv420p",), ("yuv420p10le",)),
    "libvpx-vp9": (("yuv420p",), ("yuv420p10le",)),
    "libx264rgb": (("rgb24", "bgr0"), ("rgb24", "bgr0")),
    "ffv1": (("gbrp", "bgr0"), ("gbrp16le", "rgb48le")),
    "prores_ks": (("yuv422p10le",), ("yuv422p10le",)),
    "prores_aw": (("yuv422p10le",), ("yuv422p10le",)),
    "dnxhd": (("yuv422p",), ("yuv422p10le",)),
    "png": (("rgb24",), ("rgb48be",)),
    "qtrle": (("rgb24",), ()),
    "mpeg4": (("yuv420p",), ("yuv420p",)),
}

# The same for writing alpha: only these encoders store it (qtrle, libvpx-vp9 and utvideo at 8 bits only).
# ffv1 keeps 16-bit RGBA, which round-trips decoded frames exactly.
_ALPHA_PIX_FMT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "prores_ks": (("yuva444p10le",), ("yuva444p10le",)),
    "prores_aw": (("yuva444p10le",), ("yuva444p10le",)),
    "ffv1": (("bgra",), ("gbrap16le", "rgba64le")),
    "png": (("rgba",), ("rgba64be",)),
    "qtrle": (("argb",), ()),
    "libvpx-vp9": (("yuva420p",), ()),
    "utvideo": (("gbrap",), ()),
}
ALPHA_CODECS = (
    "prores_ks (ProRes 4444, .mov/.mkv), qtrle (.mov), png (.mov/.avi), ffv1 (.mkv/.avi) or libvpx-vp9 (.webm)"
)

# codec=None: the encoder for an alpha source, by container (mp4 holds none of them in a form players read).
_ALPHA_CODEC_FOR = {"mov": "prores_ks", "matroska": "ffv1", "avi": "ffv1", "webm": "libvpx-vp9"}

# ProRes profiles: the decoder's name -> prores_ks's profile option; the 4444 ones are the 4:4:4 (+alpha) family.
_PRORES_PROFILES = {"Proxy": "proxy", "LT": "lt", "Standard": "standard", "HQ": "hq", "4444": "4444", "XQ": "4444xq"}
_PRORES_444 = ("4444", "4444xq")
# DNxHR profiles: the decoder's name -> the dnxhd encoder's profile, and the pixel formats each one takes.
_DNXHR_PROFILES = {
    "DNXHR LB": "dnxhr_lb",
    "DNXHR SQ": "dnxhr_sq",
    "DNXHR HQ": "dnxhr_hq",
    "DNXHR HQX": "dnxhr_hqx",
    "DNXHR 444": "dnxhr_444",
}
_DNXHR_PIX_FMTS = {
    "dnxhr_lb": ("yuv422p",),
    "dnxhr_sq": ("yuv422p",),
    "dnxhr_hq": ("yuv422p",),
    "dnxhr_hqx": ("yuv422p10le",),
    "dnxhr_444": ("yuv444p10le", "gbrp10le"),
}
_DNXHR_MIN_SIZE = (256, 120)  # the encoder refuses smaller frames

_TIMECODE = re.compile(r"(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})")


def advance_timecode(timecode: str, frames: int, fps: Fraction | float) -> str:
    """The SMPTE timecode ``frames`` frames after ``timecode``, counting drop-frame where it is one.

    A ``;`` (or ``.``/``,``) before the frame field marks drop-frame timecode (29.97 and 59.94 fps): frame
    numbers 0-1 (0-3 at 59.94) are skipped at every minute except each tenth. The result wraps at 24 hours.

    Args:
        timecode: ``"HH:MM:SS:FF"`` or drop-frame ``"HH:MM:SS;FF"``.
        frames: frames to add, >= 0 (negative values count back).
        fps: the clip's frame rate; the timecode counts ``round(fps)`` frames per second.

    Returns:
        The timecode, with the same separator.

    Raises:
        UsageError: ``timecode`` is not HH:MM:SS:FF, or a field is out of range for ``fps``.

    Example:
        >>> advance_timecode("01:00:00:00", 30, 25)
        '01:00:01:05'
        >>> advance_timecode("00:00:59;29", 1, Fraction(30000, 1001))
        '00:01:00;02'
    """
    match = _TIMECODE.fullmatch(timecode.strip())
    nominal = int(round(float(fps)))
    if match is None or nominal < 1:
        raise UsageError(f"timecode {timecode!r} at {fps} fps: expected HH:MM:SS:FF (HH:MM:SS;FF for drop-frame)")
    hh, mm, ss, ff = (int(match[i]) for i in (1, 2, 3, 5))
    separator = match[4]
    drop = 2 * nominal // 30 if separator != ":" and nominal % 30 == 0 else 0
    if mm > 59 or ss > 59 or ff >= nominal or (drop and ss == 0 and mm % 10 and ff < drop):
        raise UsageError(f"timecode {timecode!r}: a field is out of range at {nominal} frames per second")
    minutes = 60 * hh + mm
    number = (minutes * 60 + ss) * nominal + ff - drop * (minutes - minutes // 10)
    per_day = nominal * 86400 - drop * (1440 - 144)
    number = (number + frames) % per_day
    if drop:
        per_ten_minutes = nominal * 600 - 9 * drop
        tens, rest = divmod(number, per_ten_minutes)
        number += 9 * drop * tens + drop * (max(0, rest - drop) // (nominal * 60 - drop))
    seconds, ff = divmod(number, nominal)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{separator if drop else ':'}{ff:02d}"


def _container_format(path: Path) -> str:
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise UsageError(
            f"{path}: unsupported output extension {path.suffix!r}; expected one of {sorted(CONTAINERS)}"
        ) from None


def _has_encoder(name: str) -> bool:
    try:
        return av.Codec(name, "w").type == "video"
    except (ValueError, TypeError):
        return False


def _encoder(codec: str) -> Any:
    try:
        found = av.Codec(codec, "w")
    except (ValueError, TypeError):
        found = None
    if found is None or found.type != "video":
        raise UsageError(f"codec {codec!r} is not a video encoder here; use one of {', '.join(SUGGESTED_CODECS)}")
    return found


def _auto_codec(like: VideoInfo, container_format: str, alpha: bool) -> str:
    """The encoder for ``codec=None``: the source's mastering codec, an alpha codec, else libx264."""
    if like.codec == "prores" and container_format in ("mov", "matroska") and _has_encoder("prores_ks"):
        return "prores_ks"
    min_w, min_h = _DNXHR_MIN_SIZE
    if like.codec == "dnxhd" and container_format == "mov" and like.width >= min_w and like.height >= min_h:
        return "dnxhd"
    if alpha and _has_encoder(_ALPHA_CODEC_FOR.get(container_format, "")):
        return _ALPHA_CODEC_FOR[container_format]
    if container_format == "webm":
        return "libvpx-vp9"
    return "libx264"


def _has_alpha(fmt: str) -> bool:
    return any(c.is_alpha for c in av.VideoFormat(fmt).components)


def _subsampled(fmt: str) -> bool:
    desc = av.VideoFormat(fmt, 4, 4)
    if desc.is_rgb or len(desc.components) < 3:
        return False
    luma, chroma = desc.components[0], desc.components[1]
    return chroma.width < luma.width or chroma.height < luma.height


def _source_is_444(like: VideoInfo) -> bool:
    """Whether the source keeps full chroma (4:4:4 YUV or RGB), so a mastering codec should too."""
    try:
        return not _subsampled(like.pix_fmt) and len(av.VideoFormat(like.pix_fmt).components) >= 3
    except ValueError:  # a pixel format name this FFmpeg does not know (e.g. an image sequence's label)
        return False


def _full_chroma(fmt: str) -> str:
    """The 4:4:4 variant of a 4:2:0/4:2:2 YUV format (same depth, same alpha)."""
    match = re.fullmatch(r"(yuva?j?)4[12][02]p(.*)", fmt)
    if match:
        return f"{match[1]}444p{match[2]}"
    semi = {"nv12": "yuv444p", "nv21": "yuv444p", "nv16": "yuv444p", "nv20le": "yuv444p10le"}
    return semi.get(fmt, fmt)


def _preferred(encoder: Any, like: VideoInfo, alpha: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(8-bit, deep) pixel formats to try for ``encoder``, before checking what it supports."""
    name = encoder.name
    if alpha and name in _ALPHA_PIX_FMT:
        return _ALPHA_PIX_FMT[name]
    full = _source_is_444(like)
    if name in ("prores_ks", "prores_aw") and (full or _PRORES_PROFILES.get(like.profile or "") in _PRORES_444):
        return ("yuv444p10le",), ("yuv444p10le",)
    if name == "dnxhd":
        kept = _DNXHR_PROFILES.get(like.profile or "") if like.codec == "dnxhd" else None
        if kept is not None:
            return _DNXHR_PIX_FMTS[kept], _DNXHR_PIX_FMTS[kept]
        if full and like.bit_depth > 8:
            return ("yuv422p",), ("yuv444p10le",)
    return _DEFAULT_PIX_FMT.get(name, ((like.pix_fmt,), (like.pix_fmt,)))


def _deeper_first(candidates: list[str], bits: int, supported: list[str]) -> list[str]:
    """12-bit variants of 10-bit candidates first for a >10-bit source, where the encoder has them."""
    if bits <= 10:
        return candidates
    deeper = [f.replace("10le", "12le") for f in candidates if f.endswith("10le")]
    return [f for f in deeper if not supported or f in supported] + candidates


def _choose_pix_fmt(encoder: Any, like: VideoInfo, requested: str | None, alpha: bool) -> str:
    supported = [f.name for f in (encoder.video_formats or [])]
    if requested is not None:
        if supported and requested not in supported:
            raise UsageError(
                f"codec {encoder.name!r} cannot take pix_fmt {requested!r}; choose one of {', '.join(supported[:12])}"
            )
        fmt = requested
    else:
        deep = like.bit_depth > 8
        shallow_fmts, deep_fmts = _preferred(encoder, like, alpha)
        preferred = list(deep_fmts if deep else shallow_fmts)
        candidates = [f for f in preferred if not supported or f in supported]
        if deep:
            candidates = _deeper_first(candidates, like.bit_depth, supported)
        if deep and not candidates:
            _log.warning(
                "codec %s offers no >8-bit pixel format%s here; writing the %d-bit source at 8 bits",
                encoder.name,
                " with alpha" if alpha else "",
                like.bit_depth,
            )
            candidates = [f for f in shallow_fmts if not supported or f in supported]
        if candidates:
            fmt = candidates[0]
        elif like.pix_fmt in supported:
            fmt = like.pix_fmt
        else:
            fmt = supported[0]
        written = max(c.bits for c in av.VideoFormat(fmt).components)
        # ProRes decodes 4444 at 12 bits while the encoder takes 10: ProRes in, ProRes out is no news to warn of.
        same_family = like.codec == "prores" and encoder.name.startswith("prores")
        if 8 < written < like.bit_depth and not same_family:
            _log.warning(
                "codec %s writes at most %d bits here (%s); the %d-bit source loses its lowest bits "
                "(ffv1 keeps them all, libx265 and ffv1 write 12 bits)",
                encoder.name,
                written,
                fmt,
                like.bit_depth,
            )
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


def _profile(encoder: Any, like: VideoInfo, pix_fmt: str, where: Path) -> str | None:
    """The ProRes/DNxHR profile to write: the source's where the pixel format allows, else the format's own."""
    if encoder.name in ("prores_ks", "prores_aw"):
        source = _PRORES_PROFILES.get(like.profile or "") if like.codec == "prores" else None
        if _subsampled(pix_fmt):
            return source if source is not None and source not in _PRORES_444 else "hq"
        return source if source in _PRORES_444 else "4444"
    if encoder.name == "dnxhd":
        min_w, min_h = _DNXHR_MIN_SIZE
        if like.width < min_w or like.height < min_h:
            raise UsageError(
                f"{where}: DNxHR needs frames of at least {min_w}x{min_h}, got {like.width}x{like.height}; "
                "use codec prores_ks for small frames"
            )
        source = _DNXHR_PROFILES.get(like.profile or "") if like.codec == "dnxhd" else None
        if source is not None and pix_fmt in _DNXHR_PIX_FMTS[source]:
            return source
        for profile, fmts in _DNXHR_PIX_FMTS.items():
            if pix_fmt in fmts and profile != "dnxhr_lb" and profile != "dnxhr_sq":
                return profile
        raise UsageError(
            f"{where}: DNxHR has no profile for pix_fmt {pix_fmt!r}; use yuv422p, yuv422p10le or yuv444p10le"
        )
    return None


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


# Encoders that store the sample aspect ratio in their own bitstream (H.264/HEVC VUI, MPEG-4 VOL header).
_SAR_IN_BITSTREAM = {"libx264", "libx264rgb", "libx265", "mpeg4"}

# Stream tags worth carrying with a remuxed stream (the muxer writes its own duration and encoder tags).
_KEPT_TAGS = ("language", "title", "handler_name")


def copy_stream_tags(source: Any, target: Any) -> None:
    """Copy a stream's language, title, handler name and disposition (default, forced ...) onto ``target``."""
    for key, value in source.metadata.items():
        if key.lower() in _KEPT_TAGS:
            target.metadata[key] = value
    target.disposition = source.disposition


class VideoWriter:
    """Encode frames to a video file, keeping the source's timing, size, colour, depth, alpha and metadata.

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
    RGB-coded outputs (ffv1, libx264rgb, png, qtrle) are tagged ``gbr``/``pc`` with the source's primaries and
    transfer.

    Codec: ``codec=None`` picks one from ``like`` and the container: a ProRes source gets prores_ks (.mov, .mkv)
    and a DNxHR source dnxhd (.mov), each with the source's profile; a source with alpha gets prores_ks 4444
    (.mov), ffv1 (.mkv, .avi) or libvpx-vp9 (.webm); anything else libx264 (libvpx-vp9 in .webm).

    Pixel format and depth: libx264/libx265/libvpx-vp9 write yuv420p, and for >8-bit sources yuv420p10le
    (yuv420p12le for 12-bit sources where the encoder has it: libx265); ffv1 planar/packed RGB, 16-bit for
    deep sources (exact); libx264rgb rgb24; png rgb24/rgb48; prores_ks yuv422p10le, yuv444p10le for 4:4:4 and
    RGB sources; dnxhd yuv422p (DNxHR HQ), yuv422p10le (HQX) for deep sources, yuv444p10le (444) for deep
    4:4:4 ones. A ProRes or DNxHR source keeps its profile (ProRes 422 HQ stays HQ, 4444 stays 4444) where
    the pixel format allows it. A codec that cannot hold the source's depth logs a warning. With an odd width
    or height a 4:2:0/4:2:2 format becomes its 4:4:4 variant (logged as a warning); the size never changes.

    Alpha: written when ``alpha`` (default: ``like.has_alpha``) and the codec has an alpha format: prores_ks
    yuva444p10le (4444 profile), qtrle argb, png rgba/rgba64, ffv1 bgra/gbrap16le, libvpx-vp9 yuva420p
    (WebM), utvideo gbrap; or when ``pix_fmt`` names an alpha format. Frames bring it in ``VideoFrame.alpha``
    (straight, same dtype as the image); a frame without one is written opaque. A codec without alpha logs
    one warning naming the codecs that keep it, and writes RGB.

    Metadata: the timecode (``like.timecode``, moved on by ``frames[0]`` for a segment) is written as the
    stream's ``timecode`` tag, which mov/mp4 store as a tmcd track; the sample aspect ratio is written to the
    stream (ffprobe shows the same SAR and DAR); the display rotation is kept.

    Audio: with ``audio_from``, every audio stream of it is copied packet by packet (no re-encode; packets
    of size 0 are skipped, a missing dts is set to the pts), with its language, title and disposition,
    interleaved with the video as frames are written. With ``frames=(first, last)`` (source frame numbers,
    both inclusive) only written frames in that range are accepted, and only the audio packets overlapping
    the written frames' time span are kept (cut at packet granularity, timestamps unchanged).

    Args:
        path: output file; .mp4, .mov, .mkv, .avi or .webm (the container follows the extension); its folder
            must exist.
        like: the source's VideoInfo: size, rate, time base, colour tags, bit depth, alpha, profile, timecode
            and sample aspect ratio to match.
        codec: video encoder name (libx264, libx264rgb, libx265, libvpx-vp9, ffv1, prores_ks, dnxhd, qtrle,
            png, mpeg4 ...), or None to pick one from ``like`` as above.
        crf: constant-rate factor for encoders that take one (x264/x265: 0 lossless .. 51), None to not set it.
        preset: encoder speed preset for encoders that take one, None to not set it.
        pix_fmt: encoder pixel format, None for the default above.
        audio_from: file whose audio streams are remuxed, None for no audio (no audio stream: no audio).
        frames: (first, last) source frame numbers of a segment render, None for the whole clip.
        alpha: write an alpha channel where the codec can; None follows ``like.has_alpha``; False drops the
            frames' alpha without a warning.

    Attributes:
        codec: the encoder used.
        pix_fmt: the pixel format written.
        alpha: whether the output carries alpha.
        profile: the ProRes/DNxHR profile written (prores_ks/dnxhd option names), None for other codecs.

    Raises:
        UsageError: unknown codec, unsupported extension or pix_fmt, a codec the container cannot hold, frames
            too small for DNxHR.
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
        >>> out.num_frames, out.has_audio, out.color == info.color, writer.codec
        (4, True, True, 'libx264')
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        like: VideoInfo,
        *,
        codec: str | None = None,
        crf: int | None = 18,
        preset: str | None = "medium",
        pix_fmt: str | None = None,
        audio_from: str | os.PathLike[str] | None = None,
        frames: tuple[int, int] | None = None,
        alpha: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.like = like
        container_format = _container_format(self.path)
        wants_alpha = like.has_alpha if alpha is None else bool(alpha)
        if codec is None:
            codec = _auto_codec(like, container_format, wants_alpha)
            _log.info("%s: writing with codec %s (chosen for %s %s)", self.path, codec, like.codec, like.pix_fmt)
        encoder = _encoder(codec)
        self.codec: str = encoder.name
        self.pix_fmt = _choose_pix_fmt(encoder, like, pix_fmt, wants_alpha)
        self.alpha = _has_alpha(self.pix_fmt)
        self.profile = _profile(encoder, like, self.pix_fmt, self.path)
        self.color, self._sws = _output_color(like.color, self.pix_fmt, self.path)
        if frames is not None and not (
            len(frames) == 2 and all(isinstance(i, int) for i in frames) and 0 <= frames[0] <= frames[1]
        ):
            raise UsageError(f"frames must be (first, last) with 0 <= first <= last, got {frames!r}")
        self.frames = frames
        # AVI counts frames, not time: its time base must be one frame, so it holds constant frame rate only.
        self.time_base = 1 / Fraction(like.fps) if container_format == "avi" else Fraction(like.time_base)
        audio_path = None if audio_from is None else check_input_path(audio_from)
        self._warned_alpha = alpha is False  # one warning per writer about alpha that is lost (none when asked)
        self._warned_opaque = False
        if wants_alpha and not self.alpha:
            self._warn_no_alpha(f"{self.path}: codec {self.codec} ({self.pix_fmt}) cannot store alpha")

        self._out: Any = None
        self._audio_in: Any = None
        self._audio_streams: dict[int, Any] = {}  # input stream index -> output stream
        self._audio_done: set[int] = set()  # input streams whose packets have passed the segment's end
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

    def _warn_no_alpha(self, why: str) -> None:
        if not self._warned_alpha:
            self._warned_alpha = True
            _log.warning("%s; writing without alpha. To keep it use %s", why, ALPHA_CODECS)

    def _timecode(self) -> str | None:
        """The timecode of the first frame written: the source's, moved on to a segment's first frame."""
        timecode = self.like.timecode
        if timecode is None:
            return None
        try:
            return advance_timecode(timecode, self.frames[0] if self.frames else 0, self.like.fps)
        except UsageError as exc:
            _log.warning("%s: not writing the source's timecode: %s", self.path, exc)
            return None

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
        if self.profile is not None:
            options["profile"] = self.profile
        # Matroska would shift every stream so that an AAC pre-roll packet (pts < 0) starts at 0, moving all
        # frame times by ~21 ms; its blocks can hold negative times, so keep the source's timestamps instead.
        muxer_options = {"avoid_negative_ts": "disabled"} if container_format in ("matroska", "webm") else {}
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
        # As the ffmpeg command line: frame and slice threads, as many as the encoder wants. PyAV's default
        # (slices only) makes libx264 encode in sliced threads, about 1.5 times slower on 2 cores.
        cc.thread_type, cc.thread_count = "AUTO", 0
        if like.sample_aspect_ratio != 1:
            cc.sample_aspect_ratio = Fraction(like.sample_aspect_ratio)
            if container_format not in ("mov", "mp4") and encoder.name not in _SAR_IN_BITSTREAM:
                # PyAV cannot set the stream-level ratio that Matroska/AVI headers take; mov/mp4 write a pasp box.
                _log.warning(
                    "%s: %s cannot record the sample aspect ratio %s in %s; the output plays with square "
                    "pixels. Use .mov/.mp4, or libx264/libx265/mpeg4",
                    self.path,
                    encoder.name,
                    like.sample_aspect_ratio,
                    self.path.suffix,
                )
        if encoder.name == "libvpx-vp9" and crf is not None:
            cc.bit_rate = 0  # libvpx needs bit rate 0 for constant quality (crf alone is capped quality)
        for field, code in codes_from_tags(self.color).items():
            setattr(cc, field, code)
        if like.rotation_deg:
            stream.set_display_rotation(like.rotation_deg)
        timecode = self._timecode()
        if timecode is not None:
            stream.metadata["timecode"] = timecode  # mov/mp4 turn this tag into a tmcd track
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
        templates = list(self._audio_in.streams.audio)
        if not templates:
            _log.info("%s has no audio stream; writing video only", audio)
            self._audio_in.close()
            self._audio_in = None
            return
        for template in templates:
            try:
                stream = self._out.add_stream_from_template(template)
            except ValueError as exc:
                raise UsageError(
                    f"{self.path}: audio codec {template.codec_context.name!r} from {audio} cannot go into "
                    f"{self.path.suffix} ({exc}); use a .mkv or .mov output"
                ) from exc
            copy_stream_tags(template, stream)
            self._audio_streams[template.index] = stream
        self._audio_source = audio
        self._audio_packets = self._audio_in.demux(*templates)

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
                size of ``like``, with an optional ``alpha`` (H, W) of the same dtype (straight, max = opaque);
                its ``pts`` (in its ``time_base``) must increase from frame to frame. A frame with ``pts=None``
                is placed at ``index / fps``.

        Raises:
            ShapeError: the image is not (H, W, 3), or the alpha not (H, W), at the clip's size.
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
        pixels = self._pixels(frame)
        pts = self._output_pts(frame)
        if pixels.shape[-1] == 4:
            layout = "rgba" if image.dtype == np.uint8 else "rgba64le"
        else:
            layout = "rgb24" if image.dtype == np.uint8 else "rgb48le"
        src = av.VideoFrame.from_ndarray(pixels, format=layout)
        out = src.reformat(format=self.pix_fmt) if self._sws is None else src.reformat(format=self.pix_fmt, **self._sws)
        self._encode(out, frame.index, pts)

    @property
    def planes_format(self) -> str | None:
        """The 8-bit 4:2:0 format :meth:`write_planes` takes, or None where it takes none.

        Frames decoded with ``planes`` (:attr:`VideoFrame.planes`) can skip the RGB round trip when the output
        is the source's own format, matrix and range without alpha (an H.264 clip re-encoded with libx264).
        """
        like = self.like
        same = self.pix_fmt == like.pix_fmt and self.color == like.color and not self.alpha
        even = like.width % 2 == like.height % 2 == 0
        return self.pix_fmt if same and even and self.pix_fmt in PLANE_FORMATS else None

    def write_planes(self, frame: VideoFrame, planes: np.ndarray) -> None:
        """Encode one frame given as its 8-bit 4:2:0 planes, in the source's matrix and range (no conversion).

        Args:
            frame: the frame's number and time (its ``image`` is not used).
            planes: (H * 3 / 2, W) uint8, Y then Cb and Cr, as :attr:`VideoFrame.planes` holds them.

        Raises:
            UsageError: the writer takes no planes (:attr:`planes_format` is None), or as :meth:`write`.
            ShapeError: ``planes`` is not the clip's size.
            OutputError: the encoder or the file failed.
        """
        if self._closed:
            raise UsageError(f"{self.path}: the writer is closed; open a new VideoWriter")
        fmt = self.planes_format
        if fmt is None:
            raise UsageError(f"{self.path}: encodes {self.pix_fmt} with other colour tags; write RGB frames instead")
        check_shape("planes", planes.shape, (self.like.height * 3 // 2, self.like.width))
        if planes.dtype != np.uint8:
            raise UsageError(f"planes must be uint8, got {planes.dtype}")
        if self.frames is not None and not self.frames[0] <= frame.index <= self.frames[1]:
            raise UsageError(f"frame {frame.index} is outside the segment frames={self.frames}; write only those")
        self._encode(av.VideoFrame.from_ndarray(planes, format=fmt), frame.index, self._output_pts(frame))

    def _encode(self, out: Any, index: int, pts: int) -> None:
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
            raise OutputError(f"{self.path}: encoding frame {index} failed ({exc}); check disk space") from exc
        self._last_pts = pts
        self._written += 1

    def _pixels(self, frame: VideoFrame) -> np.ndarray:
        """The frame as contiguous RGB, or RGBA when the output keeps alpha (opaque where the frame has none)."""
        image, alpha = frame.image, frame.alpha
        if alpha is not None:
            check_shape("frame.alpha", alpha.shape, (self.like.height, self.like.width))
            if alpha.dtype != image.dtype:
                raise UsageError(
                    f"frame.alpha must have the image's dtype {image.dtype}, got {alpha.dtype}; scale it to match"
                )
        if not self.alpha:
            if alpha is not None:
                self._warn_no_alpha(f"{self.path}: frame {frame.index} has alpha but {self.pix_fmt} has none")
            return np.ascontiguousarray(image)
        if alpha is None:
            if not self._warned_opaque:
                self._warned_opaque = True
                _log.warning("%s: frame %d comes without alpha; writing it opaque", self.path, frame.index)
            alpha = np.full(image.shape[:2], np.iinfo(image.dtype).max, image.dtype)
        return np.concatenate([image, alpha[..., None]], axis=-1)

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

    def _next_audio_packet(self) -> Any:
        """The next audio packet to consider (None at the end), with a dts; empty flush packets skipped."""
        while True:
            try:
                packet = next(self._audio_packets)
            except StopIteration:
                return None
            except av.error.FFmpegError as exc:
                raise InputError(f"{self._audio_source}: reading its audio failed ({exc}); check audio_from") from exc
            if packet.size == 0:  # the demuxer's final flush packet
                continue
            if packet.dts is None:
                if packet.pts is None:
                    _log.debug("skipping an audio packet with neither pts nor dts")
                    continue
                packet.dts = packet.pts  # audio is never reordered, so decode time = presentation time
            return packet

    def _mux_audio(self, until_s: float | None) -> None:
        """Mux audio packets starting before ``until_s`` (all when None), within the segment's span if set."""
        while self._audio_packets is not None:
            if self._pending is None:
                self._pending = self._next_audio_packet()
                if self._pending is None:
                    self._audio_packets = None
                    return
            packet = self._pending
            start = _seconds(packet)
            if until_s is not None and start >= until_s:
                return
            self._pending = None
            source = packet.stream.index
            if self.frames is not None and self._span is not None:
                end = start + float((packet.duration or 0) * packet.time_base)
                if end <= self._span[0]:
                    continue
                if start >= self._span[1]:
                    # Each stream's packets come in time order: this stream is done; stop once all are.
                    self._audio_done.add(source)
                    if self._audio_done >= set(self._audio_streams):
                        self._audio_packets = None
                    continue
            packet.stream = self._audio_streams[source]
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
