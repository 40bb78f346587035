"""Helpers shared by the tests (importable as ``helpers``: pyproject puts tests/ on the path)."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path inside ../shared, skipping the calling test with a clear reason where it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared fixtures live in ../shared beside the project (CI always has it)")
    return path
