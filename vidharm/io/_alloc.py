"""The C allocator's settings for streaming frames: freed frame buffers are reused, not given back and faulted in.

glibc serves a block above its mmap threshold from a fresh mapping and returns it to the kernel when freed; it
raises the threshold to the largest block freed so far (at most 32 MiB on 64-bit) and trims the heap's top
once more than twice that is free. Frames stream in batches (``analyze_stride`` frames held for one key frame,
bounded queues between the stages), so a batch of 6 MB 1080p frames freed together exceeds the trim threshold,
goes back to the kernel, and the next batch faults every page in again, zero-filled: on a 1080p stride-8 run
that was about 170 000 page faults and ~1 s of kernel time in 25 s. Fixing the thresholds keeps those blocks in
the heap for reuse; the peak resident memory is unchanged (measured on the same run).
"""

from __future__ import annotations

import ctypes
import logging
import platform

__all__ = ["tune_allocator"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
"""Blocks up to this size (glibc's largest mmap threshold on 64-bit: a 1080p float32 RGB frame) come from the heap."""
TRIM_THRESHOLD = 512 << 20
"""The heap keeps up to this much freed memory at its top for reuse."""


def tune_allocator() -> bool:
    """Set glibc's mmap and trim thresholds so that frame-sized blocks are reused (see the module).

    Process-wide and idempotent; the command line calls it once at start. A library caller streaming frames may
    call it too.

    Returns:
        True where the settings were applied (glibc), False elsewhere (another C library: nothing changes).

    Example:
        >>> tune_allocator() in (True, False)
        True
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not ok:
        log.debug("mallopt refused the frame-buffer thresholds; the allocator keeps its defaults")
    return ok
