"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The real market-data fixtures (see its README.md); tests that need them skip without it.
SHARED_DATA_DIR = Path(os.environ.get("BIGALPHA_SHARED_DATA", "/work/shared/data"))
#: Small excerpts of those files, kept in the repository (see tests/data/README.md).
TEST_DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared market-data folder, or skip the test when it is not on this machine."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"shared market data not found at {SHARED_DATA_DIR}")
    return SHARED_DATA_DIR


@pytest.fixture
def test_data() -> Path:
    """The excerpts in tests/data."""
    return TEST_DATA_DIR
