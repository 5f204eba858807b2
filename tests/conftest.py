"""Shared test helpers: the fastai golden fixtures live in tests/fixtures/ (see its README.md)."""
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models train faster on one thread, and a busy 2-core machine makes two threads 5-10x slower."""
    import torch

    torch.set_num_threads(1)
    yield
