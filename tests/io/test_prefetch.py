"""Tests for vidharm/io/_prefetch.py: prefetch."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from vidharm.errors import UsageError
from vidharm.io import prefetch, read_frames


def test_items_arrive_in_order():
    assert list(prefetch(range(100), maxsize=3)) == list(range(100))
    assert list(prefetch([], maxsize=1)) == []


def test_producer_exception_is_raised_in_the_consumer_after_earlier_items():
    def source():
        yield 1
        yield 2
        raise ValueError("frame 2 is broken")

    got = []
    with pytest.raises(ValueError, match="frame 2 is broken"):
        for item in prefetch(source()):
            got.append(item)
    assert got == [1, 2]


def test_producer_runs_at_most_maxsize_ahead():
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    for consumed, item in enumerate(prefetch(source(), maxsize=4), start=1):
        # queue (4) + one item blocked in put + one being produced, whatever the scheduling.
        assert len(produced) <= consumed + 4 + 2
        assert item == consumed - 1


def test_early_stop_closes_the_source_and_ends_the_thread():
    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    stream = prefetch(endless(), maxsize=2)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    before = {t.ident for t in threading.enumerate() if t.name == "vidharm-prefetch"}
    assert before
    stream.close()  # what a `break` out of a for loop does to a generator once it is collected
    assert closed.is_set()
    assert not {t.ident for t in threading.enumerate() if t.name == "vidharm-prefetch"} & before


def test_break_out_of_a_loop_does_not_hang():
    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    stream = prefetch(endless(), maxsize=1)
    for item in stream:
        if item == 3:
            break
    stream.close()
    assert closed.is_set()


def test_consumer_exception_stops_the_producer():
    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    with pytest.raises(KeyError):
        for item in prefetch(endless(), maxsize=2):
            if item == 2:
                raise KeyError("consumer failed")
    assert closed.is_set()


def test_bad_maxsize():
    with pytest.raises(UsageError, match="maxsize"):
        prefetch(range(3), maxsize=0)


def test_prefetched_frames_equal_direct_frames(make_clip):
    clip = make_clip(num_frames=6)
    direct = list(read_frames(clip))
    ahead = list(prefetch(read_frames(clip), maxsize=2))
    assert [f.index for f in ahead] == [f.index for f in direct]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(ahead, direct, strict=True))
