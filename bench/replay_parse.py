"""CPU time to read a real month for a batch replay: as bars, and as columns, in one run.

Not a test: a measurement. The five 2026-02 kline files (201,600 rows) are read the two
ways a batch replay can take them, each best of --repeat runs:

- bars: `ReplaySource.batch_bars` (a `Bar` per row) and `BatchInput.from_bars`, the
  columns made back from the bars;
- columns: `ReplaySource.batch_input` (clean files parsed straight into numpy columns);
- for scale, gunzipping the files alone.

Both must give the same input (columns compared bit for bit); the bench stops if not.

    python bench/replay_parse.py
    python bench/replay_parse.py --data /path/to/shared/data --repeat 5
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.columns import BatchInput
from bigalpha_tui.core.sources.replay import ReplaySource

MONTH_FOLDER = "binance_um_klines_1m"
REAL_SYMBOLS = ("AVAXUSDT", "LINKUSDT", "LTCUSDT", "DOTUSDT", "NEARUSDT")
COLUMNS = ("open_ms", "open", "high", "low", "close", "volume", "taker_buy_volume", "has_flow")


def default_data_dir() -> Path:
    """$BIGALPHA_SHARED_DATA, else ../shared/data beside the checkout (as the tests look)."""
    if "BIGALPHA_SHARED_DATA" in os.environ:
        return Path(os.environ["BIGALPHA_SHARED_DATA"])
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def best_cpu(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        out = work()
        best = min(best, time.process_time() - started)
    return best, out


def same_input(a: BatchInput, b: BatchInput) -> bool:
    if (a.symbols, a.order, a.rejected) != (b.symbols, b.order, b.rejected):
        return False
    return all(
        getattr(x, name).tobytes() == getattr(y, name).tobytes()
        for x, y in zip(a.columns, b.columns, strict=True)
        for name in COLUMNS
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None, help="the shared data folder")
    p.add_argument("--repeat", type=int, default=3, help="runs of each (the best counts)")
    args = p.parse_args()
    folder = (args.data or default_data_dir()) / MONTH_FOLDER
    files = [folder / f"{s}-1m-2026-02.csv.gz" for s in REAL_SYMBOLS]
    missing = [f for f in files if not f.is_file()]
    if missing:
        sys.exit(f"not found: {missing[0]} (give --data or set $BIGALPHA_SHARED_DATA)")

    def by_bars() -> BatchInput:
        source = ReplaySource(files, SimClock(0.0))
        return BatchInput.from_bars(source.batch_bars(), checked=True)

    def by_columns() -> BatchInput:
        return ReplaySource(files, SimClock(0.0)).batch_input()

    gunzip_s, _ = best_cpu(lambda: [gzip.decompress(f.read_bytes()) for f in files], args.repeat)
    bars_s, from_bars = best_cpu(by_bars, args.repeat)
    columns_s, from_columns = best_cpu(by_columns, args.repeat)
    if not same_input(from_columns, from_bars):
        sys.exit("batch_input gave another input than from_bars(batch_bars): a bug")
    rows = len(from_bars)
    print(f"{rows:,} rows: {', '.join(f.name for f in files)} (CPU, best of {args.repeat})")
    for name, cpu_s in (("as bars", bars_s), ("as columns", columns_s), ("gunzip alone", gunzip_s)):
        print(f"{name:<13} {cpu_s:6.3f} s  {cpu_s / rows * 1e6:5.2f} us a row")
    print(f"columns / bars speed ratio: {bars_s / columns_s:.2f}x (the same input, bit for bit)")


if __name__ == "__main__":
    main()
