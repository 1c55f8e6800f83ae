"""Bars per second of the whole trading loop, against the engines alone, in one run.

Not a test: a measurement. The same bars go through two cores on fresh temporary stores:
the full loop (whale CVD and Hurst engines, Alpha-OFI, gates, paper broker, shadow and
blocked twins, exits, learning loop, checkpoints and store writes) and the engines only
(the core with its trading loop off). Bars are made before the clock starts, so the source's
own cost (simulation or CSV parsing) is not counted.

    python bench/replay_throughput.py                 # a simulated day of 6 symbols
    python bench/replay_throughput.py --days 3
    python bench/replay_throughput.py --real          # the first day of the 2026-02 files
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import itertools
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.replay import ReplaySource
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import Store

REAL_FILES = "/work/shared/data/binance_um_klines_1m/{}-1m-2026-02.csv.gz"
REAL_SYMBOLS = ("AVAXUSDT", "LINKUSDT", "LTCUSDT", "DOTUSDT", "NEARUSDT")
SIM_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")
MINUTES_PER_DAY = 1440


class ListSource:
    """Bars already in memory, yielded as a source would, advancing the clock to each close."""

    name = "bench"

    def __init__(self, bars: list[Bar], clock: SimClock) -> None:
        self._bars = bars
        self._clock = clock
        self.symbols = tuple(dict.fromkeys(b.symbol for b in bars))

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        for bar in self._bars:
            self._clock.advance_to(bar.close_s)
            yield bar

    def health(self) -> SourceHealth:
        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None


def sim_bars(days: float) -> list[Bar]:
    minutes = simulate_minutes(SIM_SYMBOLS, 7, DEFAULT_START_MS, SimParams())
    count = int(days * MINUTES_PER_DAY)
    return [bar for minute in itertools.islice(minutes, count) for bar in minute]


def real_bars(days: float) -> list[Bar]:
    files = [REAL_FILES.format(s) for s in REAL_SYMBOLS]
    source = ReplaySource(files, SimClock(0.0))
    end_ms = source.first_open_ms + int(days * MINUTES_PER_DAY) * MINUTE_MS
    return list(itertools.takewhile(lambda b: b.open_ms < end_ms, source.merged_bars()))


def run(bars: list[Bar], trading: bool) -> tuple[float, Core]:
    with tempfile.TemporaryDirectory(prefix="bigalpha-bench-") as tmp:
        clock = SimClock(bars[0].open_ms / 1000.0)
        core = Core(Config(), ListSource(bars, clock), clock, Store(Path(tmp)), trading=trading)
        started = time.perf_counter()
        anyio.run(core.run)
        return time.perf_counter() - started, core


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=float, default=1.0, help="market days to run (default 1)")
    p.add_argument("--real", action="store_true", help="the 2026-02 five-symbol kline files")
    args = p.parse_args()
    bars = real_bars(args.days) if args.real else sim_bars(args.days)
    symbols = len({b.symbol for b in bars})
    what = "2026-02 real files" if args.real else "simulator"
    print(f"{len(bars):,} bars: {args.days:g} day(s) of {symbols} symbols ({what})")
    full_s, core = run(bars, trading=True)
    engines_s, _ = run(bars, trading=False)
    snap = core.snapshot()
    stats = {s.reason.value: s.blocked for s in snap.guard_stats if s.blocked}
    print(f"full loop     {len(bars) / full_s:>9,.0f} bars/s  ({full_s:.2f} s)")
    print(f"engines only  {len(bars) / engines_s:>9,.0f} bars/s  ({engines_s:.2f} s)")
    print(f"full / engines time ratio: {full_s / engines_s:.2f}")
    print(f"(the full loop closed {snap.closed_trades} live trades; blocks {stats})")


if __name__ == "__main__":
    main()
