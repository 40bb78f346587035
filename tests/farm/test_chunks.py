"""Chunk planning: consecutive ranges that tile the clip exactly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidharm.errors import UsageError
from vidharm.farm import format_frames, plan_chunks


def test_last_chunk_is_shorter() -> None:
    assert plan_chunks(250, 100) == [range(0, 100), range(100, 200), range(200, 250)]
    assert plan_chunks(5, 100) == [range(0, 5)]
    assert plan_chunks(3, 1) == [range(0, 1), range(1, 2), range(2, 3)]


@given(st.integers(1, 5000), st.integers(1, 700))
def test_chunks_tile_the_clip(num_frames: int, chunk: int) -> None:
    chunks = plan_chunks(num_frames, chunk)
    assert [f for r in chunks for f in r] == list(range(num_frames))
    assert all(1 <= len(r) <= chunk for r in chunks)
    assert all(len(r) == chunk for r in chunks[:-1])


@pytest.mark.parametrize(("num_frames", "chunk"), [(0, 10), (10, 0), (-1, 10), (10, True), (10, 2.5)])
def test_bad_sizes_are_refused(num_frames: int, chunk: int) -> None:
    with pytest.raises(UsageError):
        plan_chunks(num_frames, chunk)


def test_format_frames_is_what_frames_takes() -> None:
    from vidharm.cli import _frames_arg

    for r in plan_chunks(30, 7):
        assert _frames_arg(format_frames(r)) == r


@given(st.integers(1, 3000), st.integers(1, 400), st.integers(0, 100_000))
def test_chunks_of_a_sequence_tile_its_source_numbers(num_frames: int, chunk: int, first: int) -> None:
    chunks = plan_chunks(num_frames, chunk, first)
    assert [f for r in chunks for f in r] == list(range(first, first + num_frames))
    assert [len(r) for r in chunks] == [len(r) for r in plan_chunks(num_frames, chunk)]


def test_chunks_of_a_1001_sequence_are_what_frames_takes() -> None:
    from vidharm.cli import _frames_arg

    chunks = plan_chunks(250, 100, first_frame=1001)
    assert [format_frames(r) for r in chunks] == ["1001-1100", "1101-1200", "1201-1250"]
    assert [_frames_arg(format_frames(r)) for r in chunks] == chunks
    for bad in (-1, True, 1.5):
        with pytest.raises(UsageError, match="first source frame number"):
            plan_chunks(10, 5, bad)  # type: ignore[arg-type]
