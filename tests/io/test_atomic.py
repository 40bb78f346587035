"""Tests for vidharm/io/_atomic.py: atomic_path."""

from __future__ import annotations

import pytest

from vidharm.errors import OutputError
from vidharm.io import atomic_path


def test_success_renames_the_temp_into_place(tmp_path):
    out = tmp_path / "result.csv"
    with atomic_path(out) as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".") and temp.suffix == ".csv"
        temp.write_text("a,b\n")
        assert not out.exists()
    assert out.read_text() == "a,b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]


def test_success_replaces_an_existing_file(tmp_path):
    out = tmp_path / "result.txt"
    out.write_text("old")
    with atomic_path(out) as temp:
        temp.write_text("new")
    assert out.read_text() == "new"


@pytest.mark.parametrize("error", [ValueError("bad"), KeyboardInterrupt()], ids=["ValueError", "Ctrl-C"])
def test_exception_deletes_the_temp_and_keeps_the_old_file(tmp_path, error):
    out = tmp_path / "result.txt"
    out.write_text("old")
    with pytest.raises(type(error)):
        with atomic_path(out) as temp:
            temp.write_text("half")
            raise error
    assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]


def test_exception_before_writing_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "x.bin"):
            raise RuntimeError("early")
    assert list(tmp_path.iterdir()) == []


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(OutputError, match=r"nothing was written"):
        with atomic_path(tmp_path / "x.bin"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_missing_folder_and_folder_target(tmp_path):
    with pytest.raises(OutputError, match=r"does not exist"):
        with atomic_path(tmp_path / "missing" / "x.bin"):
            pass
    with pytest.raises(OutputError, match=r"is a folder"):
        with atomic_path(tmp_path):
            pass


def test_temp_names_are_unique(tmp_path):
    with atomic_path(tmp_path / "a.txt") as first, atomic_path(tmp_path / "a.txt") as second:
        assert first != second
        first.write_text("1")
        second.write_text("2")
    assert (tmp_path / "a.txt").read_text() == "1"  # the outer block commits last
