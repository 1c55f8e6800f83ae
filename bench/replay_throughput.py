"""Bars per second of the whole trading loop: streaming against batch, in one run.

Not a test: a measurement. The same bars go through fresh cores on throwaway stores, as a
replay without --data-dir runs (no fsync, no block record: nobody reads them there):

- streaming: the engines (whale CVD, Hurst) bar by bar, as live and sim run;
- batch: the engine features computed per symbol in numpy (`core/batch_features.py`), fed
  to the same trading loop (strategy, gates, paper broker, shadow and blocked twins, exits,
  learning), which passes over the bars that change nothing (`core/batch.py`);
- batch, blocks written: the same with every blocked signal's record and event written (a
  replay with --data-dir);
- engines only: the streaming core with its trading loop off (for scale).

Bars (and the batch path's columns) are made before the clock starts, so the source's cost
(simulation or CSV parsing) is not counted there. `--month` also runs a real month through
the replay command both ways (parsing included), which is what a user waits for. Both
paths must close the same trades: the bench says so, and stops if they do not.

    python bench/replay_throughput.py                 # the 2026-02 files, whole (a month)
    python bench/replay_throughput.py --days 1        # their first day
    python bench/replay_throughput.py --month         # plus the month through `replay`
    python bench/replay_throughput.py --sim           # a simulated day of 6 symbols
    python bench/replay_throughput.py --sim --days 3
    python bench/replay_throughput.py --files F... --month  # other kline files, the same runs
    python bench/replay_throughput.py --files F... --each   # each file alone through `replay`

The shared files are found in --data, else $BIGALPHA_SHARED_DATA, else ../shared/data
beside the checkout; without them the bench says so and runs the simulator (`--real`
insists on them).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import itertools
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from bigalpha_tui.core import batch
from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.columns import BatchInput
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.replay import ReplaySource
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.trades import ClosedTrade

MONTH_FOLDER = "binance_um_klines_1m"
REAL_SYMBOLS = ("AVAXUSDT", "LINKUSDT", "LTCUSDT", "DOTUSDT", "NEARUSDT")
SIM_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")
MINUTES_PER_DAY = 1440


def default_data_dir() -> Path:
    """$BIGALPHA_SHARED_DATA, else ../shared/data beside the checkout (as the tests look)."""
    if "BIGALPHA_SHARED_DATA" in os.environ:
        return Path(os.environ["BIGALPHA_SHARED_DATA"])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


class ListSource:
    """Bars already in memory, yielded as a source would (the clock follows each close), or
    handed over at once to the batch path."""

    name = "bench"
    speed = None
    bars_checked = True  # the replay parser's bars, or the simulator's: checked as made

    def __init__(self, bars: list[Bar], clock: SimClock) -> None:
        self._bars = bars
        self._clock = clock
        self.symbols = tuple(dict.fromkeys(b.symbol for b in bars))

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        for bar in self._bars:
            self._clock.advance_to(bar.close_s)
            yield bar

    def batch_bars(self, resume_after_ms: int | None = None) -> list[Bar]:
        return self._bars

    def health(self) -> SourceHealth:
        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None


def month_paths(data_dir: Path) -> list[Path]:
    return [data_dir / MONTH_FOLDER / f"{s}-1m-2026-02.csv.gz" for s in REAL_SYMBOLS]


def month_files(data_dir: Path) -> list[Path]:
    files = month_paths(data_dir)
    missing = [f for f in files if not f.is_file()]
    if missing:
        sys.exit(
            f"shared kline files not found: {missing[0]} (give --data or $BIGALPHA_SHARED_DATA)"
        )
    return files


def sim_bars(days: float) -> list[Bar]:
    minutes = simulate_minutes(SIM_SYMBOLS, 7, DEFAULT_START_MS, SimParams())
    count = int(days * MINUTES_PER_DAY)
    return [bar for minute in itertools.islice(minutes, count) for bar in minute]


def real_bars(files: list[Path], days: float | None) -> list[Bar]:
    """The files' bars merged by time: all of them, or the first `days`."""
    source = ReplaySource(files, SimClock(0.0))
    if days is None:
        return list(source.merged_bars())
    end_ms = source.first_open_ms + int(days * MINUTES_PER_DAY) * MINUTE_MS
    return list(itertools.takewhile(lambda b: b.open_ms < end_ms, source.merged_bars()))


def run(
    bars: list[Bar], mode: str, record_blocks: bool = False
) -> tuple[float, Core, list[ClosedTrade], float]:
    """One run on a throwaway store, as a replay without --data-dir makes it (no fsync,
    logs written at the end, no block record: `record_blocks` True writes them all)."""
    with tempfile.TemporaryDirectory(prefix="bigalpha-bench-") as tmp:
        clock = SimClock(bars[0].open_ms / 1000.0)
        store = Store(Path(tmp), durable=False)
        store.buffer_logs = True  # as replay's throwaway store
        core = Core(Config(), ListSource(bars, clock), clock, store, trading=mode != "engines")
        trades: list[ClosedTrade] = []
        if core.learning is not None:
            core.learning.keep_checked_records()  # as replay does
        if core.trading is not None:
            core.trading.trade_observers.append(trades.append)
            core.trading.record_blocks = record_blocks
        # the batch path reads columns (a replay source parses its files straight into
        # them), made before the clock starts as the streaming path's bars are
        columns = BatchInput.from_bars(bars, checked=True) if mode == "batch" else None
        started, cpu = time.perf_counter(), time.process_time()
        if columns is not None:
            batch.run_batch(core, columns)
        else:
            anyio.run(core.run)
        return time.perf_counter() - started, core, trades, time.process_time() - cpu


def run_month(files: list[Path], streaming: bool) -> tuple[Any, float]:
    """The replay command's run, and the CPU seconds it took (on a shared machine the wall
    time moves with the load; the CPU time much less)."""
    from bigalpha_tui.replay_cmd import parser, run_loop

    args = parser().parse_args([str(f) for f in files])
    with tempfile.TemporaryDirectory(prefix="bigalpha-bench-") as tmp:
        cpu = time.process_time()
        result = run_loop(args, Path(tmp), durable=False, streaming=streaming)
        return result, time.process_time() - cpu


def same_trades(a: list[ClosedTrade], b: list[ClosedTrade]) -> None:
    if [t.to_record() for t in a] != [t.to_record() for t in b]:
        sys.exit("the batch path closed different trades from the streaming path: a bug")


def replay_both(files: list[Path]) -> tuple[Any, float, Any, float]:
    """The replay command's run of `files`, streaming then batch, each with its CPU
    seconds; it stops unless both closed the same trades."""
    slow, slow_cpu = run_month(files, streaming=True)
    fast, fast_cpu = run_month(files, streaming=False)
    same_trades(slow.log.trades, fast.log.trades)
    return slow, slow_cpu, fast, fast_cpu


def each_file(files: list[Path]) -> None:
    """Each file alone through the replay command, streaming then batch (CPU seconds)."""
    print("file                              bars  trades  streaming     batch   ratio")
    ratios = []
    for path in files:
        if not path.is_file():
            sys.exit(f"kline file not found: {path}")
        slow, slow_cpu, _, fast_cpu = replay_both([path])
        bars_n = slow.snapshot.heartbeat.bars_processed
        ratios.append(slow_cpu / fast_cpu)
        print(
            f"{path.name:<30} {bars_n:>7,} {len(slow.log.trades):>7,} {slow_cpu:>8.2f} s"
            f" {fast_cpu:>7.2f} s {ratios[-1]:>6.1f}x   ({bars_n / fast_cpu:,.0f} bars/s batch)"
        )
    print(f"ratio, CPU time: {min(ratios):.1f}x to {max(ratios):.1f}x (the same trades each)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--days",
        type=float,
        default=None,
        help="market days to run (default: the whole files, 1 on the simulator)",
    )
    p.add_argument(
        "--real",
        action="store_true",
        help="the 2026-02 five-symbol kline files, or stop (the default when they are found)",
    )
    p.add_argument("--sim", action="store_true", help="the simulator instead of kline files")
    p.add_argument("--month", action="store_true", help="also the month through `replay`")
    p.add_argument("--data", type=Path, default=None, help="the shared data folder")
    p.add_argument(
        "--files",
        type=Path,
        nargs="+",
        default=None,
        help="other kline files instead of the 2026-02 ones (implies --real)",
    )
    p.add_argument(
        "--each",
        action="store_true",
        help="only each file alone through `replay`, both paths, one line a file",
    )
    args = p.parse_args()
    if args.each:
        each_file(args.files or month_files(args.data or default_data_dir()))
        return
    if args.files:
        missing = [f for f in args.files if not f.is_file()]
        if missing:
            sys.exit(f"kline file not found: {missing[0]}")
        args.real = True
    data_dir = args.data or default_data_dir()
    if args.real and args.sim:
        sys.exit("--real and --sim: one or the other")
    if not (args.real or args.sim):
        args.real = all(f.is_file() for f in month_paths(data_dir))
        if not args.real:
            print(f"(no 2026-02 kline files in {data_dir / MONTH_FOLDER}: the simulator)")
    files = args.files or (month_files(data_dir) if args.real or args.month else [])
    bars = real_bars(files, args.days) if args.real else sim_bars(args.days or 1.0)
    symbols = len({b.symbol for b in bars})
    what = "the files given" if args.files else "2026-02 real files" if args.real else "simulator"
    days = (bars[-1].open_ms - bars[0].open_ms + MINUTE_MS) / (MINUTES_PER_DAY * MINUTE_MS)
    print(f"{len(bars):,} bars: {days:.3g} day(s) of {symbols} symbols ({what})")
    streaming_s, core, streamed, streaming_cpu = run(bars, "streaming")
    batch_s, _, batched, batch_cpu = run(bars, "batch")
    recorded_s, _, recorded, recorded_cpu = run(bars, "batch", record_blocks=True)
    engines_s, _, _, engines_cpu = run(bars, "engines")
    same_trades(streamed, batched)
    same_trades(streamed, recorded)
    snap = core.snapshot()
    stats = {s.reason.value: s.blocked for s in snap.guard_stats if s.blocked}
    for name, wall_s, cpu_s in (
        ("full loop, streaming", streaming_s, streaming_cpu),
        ("full loop, batch", batch_s, batch_cpu),
        ("batch, blocks written", recorded_s, recorded_cpu),
        ("engines only", engines_s, engines_cpu),
    ):
        print(
            f"{name:<22} {len(bars) / wall_s:>9,.0f} bars/s  ({wall_s:.2f} s;"
            f" CPU {cpu_s:.2f} s, {len(bars) / cpu_s:,.0f} bars/s)"
        )
    print(f"batch / streaming speed ratio: {streaming_s / batch_s:.2f}x")
    print(
        f"(both closed the same {len(streamed)} trades, {snap.closed_trades} live; blocks {stats})"
    )
    if args.month:
        names = ", ".join(f.name for f in files)
        print(f"\nthe files through `bigalpha-tui replay` ({names}), parsing included:")
        slow, slow_cpu, fast, fast_cpu = replay_both(files)
        bars_n = slow.snapshot.heartbeat.bars_processed
        for name, r, cpu_s in (("streaming", slow, slow_cpu), ("batch", fast, fast_cpu)):
            print(
                f"replay, {name:<10} {bars_n / r.elapsed_s:>9,.0f} bars/s  ({r.elapsed_s:.1f} s;"
                f" CPU {cpu_s:.1f} s)"
            )
        print(f"batch / streaming speed ratio: {slow.elapsed_s / fast.elapsed_s:.2f}x")
        print(f"(both closed the same {len(slow.log.trades)} trades, all ledgers)")


if __name__ == "__main__":
    main()
