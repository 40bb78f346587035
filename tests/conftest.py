"""Shared test fixtures: device/dtype selection and the location of ../shared."""

from __future__ import annotations

import os

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


@pytest.fixture(scope="session", autouse=True)
def _private_network_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Networks exported for ONNX Runtime are cached; the tests' go to a folder of their own, not the user's.
    os.environ["VIDHARM_CACHE_DIR"] = str(tmp_path_factory.mktemp("vidharm-cache"))


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
