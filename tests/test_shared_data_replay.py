"""Every market-data file in ../shared/data runs through the core without an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.sources.replay import ReplaySource
from bigalpha_tui.core.store import Store

BARS_PER_FILE = 2000  # enough for full whale and Hurst windows and several trades

KLINE_FOLDERS = ("binance_um_klines_1m", "binance_klines_1m_secondary", "ohlcv_1m_fallback")


def kline_files(shared: Path) -> list[Path]:
    return sorted(p for folder in KLINE_FOLDERS for p in (shared / folder).glob("*.csv.gz"))


async def first_bars(source: ReplaySource, core: Core, limit: int) -> int:
    fed = 0
    stream: AsyncIterator[object] = source.bars(None)
    async for bar in stream:
        core.process_bar(bar)  # type: ignore[arg-type]
        fed += 1
        if fed >= limit:
            break
    return fed


@pytest.mark.slow
def test_every_shared_kline_file_runs_through_the_engines(
    shared_data: Path, tmp_path: Path
) -> None:
    files = kline_files(shared_data)
    assert len(files) == 18
    for path in files:
        no_flow = "ohlcv" in path.parent.name or "battle_hymn_BTC" in path.name
        clock = SimClock(0.0)
        source = ReplaySource([path], clock, allow_no_flow=no_flow)
        # no fsync: this is about the engines reading every file (tests/test_crash.py and
        # tests/test_disk_faults.py cover the durable store)
        core = Core(Config(), source, clock, Store(tmp_path / path.name, durable=False))
        fed = anyio.run(first_bars, source, core, BARS_PER_FILE)
        assert fed == BARS_PER_FILE, path.name
        assert core.rejected_bars == {}, (path.name, core.rejected_bars)
        view = core.snapshot().symbols[0]
        assert view.hurst.h is not None, path.name  # the window filled and gave an estimate
        if not no_flow:
            assert view.flow.window_bars == Config().flow.window_bars
