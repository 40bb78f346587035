"""Video and image I/O: streaming PyAV decode/encode with explicit colour handling, audio remux, atomic outputs.

Frames stream through generators (a clip is never held in memory); ``prefetch`` runs a stage in a thread
behind a bounded queue. Outputs go to a hidden temp file and are renamed into place only when complete.
Colour matrix and range are always passed to swscale explicitly, from the stream's tags (untagged YUV is
read as BT.601 limited range, ffmpeg's own assumption). Image sequences (``shot.%04d.exr``, ``shot.####.dpx``)
are read wherever a clip is, and written by ``SequenceWriter``, through OpenImageIO (see ``vidharm.io._seqread``).
"""

from __future__ import annotations

from vidharm.io._alloc import tune_allocator
from vidharm.io._atomic import atomic_path
from vidharm.io._color import ColorTags
from vidharm.io._concat import concat_videos
from vidharm.io._decode import PLANE_FORMATS, count_frames, probe_video, read_frames
from vidharm.io._encode import VideoWriter
from vidharm.io._images import read_image, write_image
from vidharm.io._ocio import BUILTIN_CONFIG, ColorManagement, open_color_management, resolve_ocio_config
from vidharm.io._prefetch import prefetch
from vidharm.io._seqread import DEFAULT_SEQUENCE_FPS, check_fps, find_sequence, fingerprint_sequence
from vidharm.io._sequence import SequenceWriter, is_sequence_pattern, is_sequence_source, parse_sequence_pattern
from vidharm.io._types import VideoFrame, VideoInfo

__all__ = [
    "PLANE_FORMATS",
    "ColorTags",
    "VideoInfo",
    "VideoFrame",
    "probe_video",
    "read_frames",
    "count_frames",
    "VideoWriter",
    "read_image",
    "write_image",
    "atomic_path",
    "prefetch",
    "SequenceWriter",
    "is_sequence_pattern",
    "parse_sequence_pattern",
    "is_sequence_source",
    "find_sequence",
    "fingerprint_sequence",
    "check_fps",
    "DEFAULT_SEQUENCE_FPS",
    "concat_videos",
    "BUILTIN_CONFIG",
    "ColorManagement",
    "open_color_management",
    "resolve_ocio_config",
    "tune_allocator",
]
