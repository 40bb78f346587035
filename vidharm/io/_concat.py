"""Lossless join of video segments (stream copy, PyAV remux) with a source's audio, written atomically."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import av
import av.error

from vidharm.errors import InputError, OutputError, UsageError
from vidharm.io._atomic import commit, discard, temp_path_for
from vidharm.io._decode import check_input_path, probe_video
from vidharm.io._encode import CONTAINERS, copy_stream_tags

__all__ = ["concat_videos"]

_log = logging.getLogger(__name__)


def _open(path: Path) -> Any:
    try:
        return av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: not a readable video ({exc}); re-render this segment") from exc


def _seconds(packet: Any) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return float(ts * packet.time_base)


def _describe(stream: Any) -> dict[str, Any]:
    cc = stream.codec_context
    return {
        "codec": cc.name,
        "size": (cc.width, cc.height),
        "pix_fmt": cc.format.name if cc.format is not None else None,
        "extradata": bytes(cc.extradata or b""),
    }


def _video_packets(streams: list[tuple[Path, Any]]) -> Iterator[Any]:
    """Packets of every segment in order; decode times must increase across the joins."""
    last: tuple[float, Path] | None = None
    for path, stream in streams:
        container = stream.container
        first = True
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.dts is None:
                if packet.pts is None:
                    continue
                packet.dts = packet.pts
            t = _seconds(packet)
            if first and last is not None and t <= last[0]:
                raise InputError(
                    f"{path} starts at {t:.3f} s, not after the end of {last[1].name} ({last[0]:.3f} s); "
                    "give the segments in frame order, each rendered from the same clip"
                )
            first = False
            last = (t, path)
            yield packet


def _audio_packets(container: Any, streams: list[Any], path: Path) -> Iterator[Any]:
    try:
        for packet in container.demux(*streams):
            if packet.size == 0:
                continue
            if packet.dts is None:
                if packet.pts is None:
                    continue
                packet.dts = packet.pts  # audio is never reordered
            yield packet
    except av.error.FFmpegError as exc:
        raise InputError(f"{path}: reading its audio failed ({exc}); check --audio-from") from exc


def concat_videos(
    segments: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    audio_from: str | os.PathLike[str] | None = None,
) -> int:
    """Join video segments without re-encoding and add every audio stream of ``audio_from``.

    The segments' packets are copied as they are, timestamps included: segments rendered by vidharm keep the
    source's timestamps, so the joined video sits on the source's timeline and the source's audio packets
    (also copied, with their timestamps, languages and dispositions) line up with it. Every segment must hold
    the same codec, size, pixel format and codec extradata (same encoder settings), and each must start after
    the previous ends. The first segment's timecode, sample aspect ratio and rotation carry over.

    Args:
        segments: video files in frame order (their audio, if any, is ignored).
        output: the joined file (.mp4, .mov, .mkv, .avi, .webm); written to a temp name, renamed when complete.
        audio_from: the file whose audio streams are added (none: video only).

    Returns:
        The number of video packets (frames) written.

    Raises:
        UsageError: no segments, segments encoded differently, or a codec the output container cannot hold.
        InputError: a missing or unreadable segment, segments out of order, unreadable audio.
        OutputError: the output cannot be written.

    Example:
        >>> import tempfile
        >>> from vidharm.io import VideoWriter, probe_video, read_frames
        >>> from vidharm.io._synth import write_test_clip
        >>> d = Path(tempfile.mkdtemp())
        >>> src = write_test_clip(d / "src.mp4", num_frames=6, audio="aac")
        >>> info = probe_video(src)
        >>> for first, last in ((0, 2), (3, 5)):
        ...     with VideoWriter(d / f"s{first}.mkv", info, codec="ffv1", frames=(first, last)) as w:
        ...         for f in read_frames(src, start=first, stop=last + 1):
        ...             w.write(f)
        >>> concat_videos([d / "s0.mkv", d / "s3.mkv"], d / "all.mkv", audio_from=src)
        6
        >>> probe_video(d / "all.mkv").has_audio
        True
    """
    if not segments:
        raise UsageError("no segments to join; give the segment videos in frame order")
    out_path = Path(output)
    try:
        container_format = CONTAINERS[out_path.suffix.lower()]
    except KeyError:
        raise UsageError(
            f"{out_path}: unsupported output extension {out_path.suffix!r}; expected one of {sorted(CONTAINERS)}"
        ) from None
    paths = [check_input_path(s) for s in segments]
    audio_path = None if audio_from is None else check_input_path(audio_from)
    temp = temp_path_for(out_path)
    written = 0
    with ExitStack() as stack:
        streams: list[tuple[Path, Any]] = []
        reference: dict[str, Any] | None = None
        for path in paths:
            container = stack.enter_context(_open(path))
            if not container.streams.video:
                raise InputError(f"{path}: has no video stream; give the rendered segment videos")
            stream = container.streams.video[0]
            described = _describe(stream)
            if reference is None:
                reference = described
            else:
                for key, value in described.items():
                    if value != reference[key]:
                        what = "codec extradata (encoder settings)" if key == "extradata" else key
                        raise UsageError(
                            f"{path}: its {what} differs from {paths[0].name}'s "
                            f"({value if key != 'extradata' else '...'} vs "
                            f"{reference[key] if key != 'extradata' else '...'}); render every segment with the "
                            "same codec options to join them without re-encoding"
                        )
            streams.append((path, stream))
        timecode = probe_video(paths[0]).timecode
        audio_in = None
        audio_streams: list[Any] = []
        if audio_path is not None:
            audio_in = stack.enter_context(_open(audio_path))
            audio_streams = list(audio_in.streams.audio)
            if not audio_streams:
                _log.info("%s has no audio stream; writing video only", audio_path)
        # Matroska would shift all streams so an AAC pre-roll packet starts at 0; keep the source's times.
        options = {"avoid_negative_ts": "disabled"} if container_format in ("matroska", "webm") else {}
        # No random segment UID or muxer version: joining the same segments twice gives the same bytes.
        options["fflags"] = "+bitexact"
        try:
            out = av.open(str(temp), "w", format=container_format, options=options)
        except av.error.FFmpegError as exc:
            raise OutputError(f"{out_path}: cannot create the output ({exc}); check the folder's permissions") from exc
        try:
            audio_out: dict[int, Any] = {}
            try:
                video_out = out.add_stream_from_template(streams[0][1])
                for template in audio_streams:
                    audio_out[template.index] = out.add_stream_from_template(template)
                    copy_stream_tags(template, audio_out[template.index])
            except ValueError as exc:
                raise UsageError(
                    f"{out_path}: the segments' or the audio's codec cannot go into {out_path.suffix} ({exc}); "
                    "use the segments' container (.mkv holds all)"
                ) from exc
            copy_stream_tags(streams[0][1], video_out)
            rate = streams[0][1].average_rate or streams[0][1].guessed_rate
            if rate:
                video_out.codec_context.framerate = rate  # the stream's rate, which the tmcd track counts in
            if timecode is not None:
                video_out.metadata["timecode"] = timecode  # mov/mp4 turn this tag into a tmcd track
            video = _video_packets(streams)
            audio: Iterator[Any] = iter(())
            if audio_streams and audio_path is not None:
                audio = _audio_packets(audio_in, audio_streams, audio_path)
            # Interleave by decode time, as the muxer expects; both inputs are already in that order.
            pending_v, pending_a = next(video, None), next(audio, None)
            while pending_v is not None or pending_a is not None:
                if pending_v is not None and (pending_a is None or _seconds(pending_v) <= _seconds(pending_a)):
                    pending_v.stream = video_out
                    out.mux(pending_v)
                    written += 1
                    pending_v = next(video, None)
                elif pending_a is not None:
                    pending_a.stream = audio_out[pending_a.stream.index]
                    out.mux(pending_a)
                    pending_a = next(audio, None)
            out.close()
        except av.error.FFmpegError as exc:
            _close_quietly(out)
            discard(temp)
            raise OutputError(f"{out_path}: writing the joined file failed ({exc}); check disk space") from exc
        except BaseException:
            _close_quietly(out)
            discard(temp)
            raise
    commit(temp, out_path)
    return written


def _close_quietly(container: Any) -> None:
    try:
        container.close()
    except Exception:  # the output is being thrown away; its close errors do not matter
        pass
