"""Shared test helpers: the fastai golden fixtures live in tests/fixtures/ (see its README.md)."""
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
