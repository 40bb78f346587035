"""Clip synthesis fixtures for the I/O tests (short clips written with PyAV itself into tmp_path)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest

from vidharm.io._synth import write_test_clip


def has_encoder(name: str) -> bool:
    try:
        return av.Codec(name, "w").is_encoder
    except ValueError:
        return False


def need_encoder(name: str) -> None:
    """Skip the calling test when PyAV's FFmpeg lacks the encoder."""
    if not has_encoder(name):
        pytest.skip(f"encoder {name} is not in this PyAV build")


@pytest.fixture
def make_clip(tmp_path: Path) -> Callable[..., Path]:
    """``make_clip("name.mp4", **write_test_clip kwargs)`` -> path of a synthetic clip in tmp_path."""

    def make(name: str = "clip.mp4", **kwargs: object) -> Path:
        need_encoder(str(kwargs.get("codec", "libx264")))
        if kwargs.get("audio"):
            need_encoder(str(kwargs["audio"]))
        return write_test_clip(tmp_path / name, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def require_encoder() -> Callable[[str], None]:
    """``require_encoder("ffv1")`` skips the test when the encoder is missing."""
    return need_encoder
