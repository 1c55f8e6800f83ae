"""Shared test fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from two_days import TwoDays, run_two_default_days


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


# -- two default market days, run once for the tests that read them ------------------------


@pytest.fixture(scope="session")
def two_default_days(tmp_path_factory: pytest.TempPathFactory) -> TwoDays:
    """The demo's two days (about 20 s on a quiet core), run once per session: the
    acceptance test and the personalities test only read its output and its store."""
    return run_two_default_days(tmp_path_factory.mktemp("two-default-days"))


# -- the reliability suite's long forms and its figures -----------------------------------

#: Figures the reliability tests report (kills survived, faults injected ...), printed in
#: the terminal summary so a CI log carries them.
RELIABILITY_FIGURES: pytest.StashKey[list[str]] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        default=False,
        help="run the reliability suite's long forms (thousands of kills)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RELIABILITY_FIGURES] = []
    config.addinivalue_line(
        "markers", "long: a further case of the reliability suite, run only with --long"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--long"):
        return
    skip = pytest.mark.skip(reason="long form (pytest --long)")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """True with `pytest --long`: the reliability tests run their long forms."""
    return bool(request.config.getoption("--long"))


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line for the terminal summary (and print it, for `pytest -s`)."""

    def report(line: str) -> None:
        print(line)
        request.config.stash[RELIABILITY_FIGURES].append(line)

    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    figures = config.stash.get(RELIABILITY_FIGURES, [])
    if figures:
        terminalreporter.section("reliability figures")
        for line in figures:
            terminalreporter.write_line(line)


@pytest.fixture
def anyio_backend() -> str:
    """The cockpit runs on asyncio (Textual): every anyio test does too."""
    return "asyncio"


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A data folder with a short path: a Unix socket address holds about 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="ba-") as folder:
        yield Path(folder)
