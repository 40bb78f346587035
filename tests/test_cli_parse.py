"""Argument parsing: optional clip/masks positionals may come after options (regression)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import PROJECT_ROOT

from vidharm.cli import _parse, build_parser, main
from vidharm.io import count_frames

SAMPLE = PROJECT_ROOT / "samples" / "dusk.mp4"
MASKS = PROJECT_ROOT / "samples" / "dusk_masks"


@pytest.mark.parametrize(
    "words",
    [
        ["process", "c.mp4", "m/", "-o", "o.mp4"],
        ["process", "c.mp4", "-o", "o.mp4", "m/"],
        ["process", "-o", "o.mp4", "c.mp4", "m/"],
    ],
)
def test_masks_may_follow_options(words: list[str]) -> None:
    # Bug: with clip/masks optional (for --fg/--bg and --mask-from-alpha), argparse left "m/" over after -o.
    args = _parse(build_parser(), words)
    assert (args.clip, args.masks, args.output) == (Path("c.mp4"), Path("m/"), Path("o.mp4"))


def test_leftover_words_are_still_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parse(build_parser(), ["process", "c.mp4", "m/", "-o", "o.mp4", "extra"])
    assert info.value.code == 2
    assert "unrecognized arguments: extra" in capsys.readouterr().err


def test_process_runs_with_masks_after_options(tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    assert main(["process", str(SAMPLE), "-o", str(out), "-q", "--preset", "ultrafast", str(MASKS)]) == 0
    assert count_frames(out) == 72
