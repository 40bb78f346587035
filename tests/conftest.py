"""Shared test fixtures: device/dtype selection and the location of ../shared."""

from __future__ import annotations

import pytest
import torch
from helpers import shared_path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="torch device the tests run on (cpu or cuda)")
    parser.addoption("--dtype", default="float32", help="floating dtype the tests use")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    # Decode and encode threads share 2 cores with torch in the tests; one torch thread avoids oversubscription.
    torch.set_num_threads(1)


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    dev = torch.device(request.config.getoption("--device"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("--device cuda given but no CUDA device is available")
    return dev


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture
def shared() -> type:
    """Gives tests `shared("parity", "harmonizer", "cases.npz")` with a skip where ../shared is absent."""
    return shared_path  # type: ignore[return-value]
