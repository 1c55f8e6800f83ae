"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


#: The real market-data fixtures (see its README.md); tests that need them skip without it.
def _shared_data_dir() -> Path:
    """$BIGALPHA_SHARED_DATA, else ../shared/data beside the checkout, else /work/shared/data."""
    if "BIGALPHA_SHARED_DATA" in os.environ:
        return Path(os.environ["BIGALPHA_SHARED_DATA"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "data"
    return beside if beside.is_dir() else Path("/work/shared/data")


SHARED_DATA_DIR = _shared_data_dir()
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
