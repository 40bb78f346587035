"""tune_allocator: frame buffers freed as a batch are reused, not faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from vidharm.io import tune_allocator

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's"
)

# Analysis at stride 8 holds 8 frames for a key frame and frees them together; 20 such batches of 6 MB frames.
_BATCHES = """
import resource, sys
import numpy as np
if sys.argv[1] == "tune":
    from vidharm.io import tune_allocator
    assert tune_allocator()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    held = []
    for _ in range(8):
        frame = np.empty(6 << 20, np.uint8)
        frame[::4096] = 1
        held.append(frame)
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
"""


def _faults(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", _BATCHES, mode], capture_output=True, text=True, check=True)
    return int(run.stdout.strip())


@glibc
def test_batches_of_frames_reuse_the_heap_instead_of_faulting_pages_in_again() -> None:
    # Regression: with glibc's defaults each freed batch exceeded the trim threshold and went back to the kernel,
    # so every batch faulted its 12 000 pages in again (~170 000 faults on a 600-frame 1080p run).
    pages_per_batch = 8 * (6 << 20) // 4096
    plain, tuned = _faults("plain"), _faults("tune")
    assert plain > 4 * pages_per_batch  # the defaults fault batches in again (~6 of 20 here): the bug guarded
    assert tuned < 2 * pages_per_batch  # tuned: the first batch faults in, the rest reuse it


@glibc
def test_tune_allocator_is_idempotent() -> None:
    assert tune_allocator() is True
    assert tune_allocator() is True


def test_tune_allocator_elsewhere_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert tune_allocator() is False
