"""`bigalpha-tui data fetch SYMBOL... --from YYYY-MM --to YYYY-MM`: real klines in one command.

Downloads Binance's public monthly USD-M futures 1-minute archives into the user cache folder
(`BIGALPHA_CACHE_DIR` moves it), each verified against its SHA-256 checksum; cached months cost
no request, a broken download resumes. `replay SYMBOL:2025-01..2025-06` then reads them.

Exit status: 0 when every month the archive has is cached and verified (months it does not
have are listed, which is no error), 1 when a month failed (network, bad checksum: the reason
on stderr; run again to resume), 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO

import httpx

from bigalpha_tui import locations
from bigalpha_tui.core.archive import (
    ARCHIVE_URL_ENV,
    CACHE_DIR_ENV,
    Month,
    months_between,
    parse_month,
    parse_symbol,
)
from bigalpha_tui.core.archive_fetch import ArchiveFetcher, MonthResult, Outcome

#: Pause between two requests to the archive: one download at a time, never a burst.
REQUEST_GAP_S = 0.25
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
PROGRESS_EVERY_S = 0.1
EXIT_FAILED = 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui data",
        description="Download market data into the cache folder.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="fetch")
    fetch = actions.add_parser(
        "fetch",
        help="monthly 1-minute futures klines from Binance's public archive",
        description="Download Binance's monthly USD-M futures 1-minute kline archives, verify"
        f" their SHA-256 and keep them in the cache folder (env {CACHE_DIR_ENV}; archive root"
        f" env {ARCHIVE_URL_ENV}). Replay them with `bigalpha-tui replay SYMBOL:FROM..TO`.",
    )
    fetch.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHUSDT")
    fetch.add_argument("--from", dest="first", required=True, metavar="YYYY-MM")
    fetch.add_argument("--to", dest="last", metavar="YYYY-MM", help="default: --from")
    return p


class TerminalProgress:
    """One line on a terminal, redrawn as a download advances and wiped when it ends."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.name = ""
        self.total_bytes: int | None = None
        self.shown_s = 0.0
        self.drawn = False

    def started(self, name: str, done_bytes: int, total_bytes: int | None) -> None:
        self.name, self.total_bytes, self.shown_s = name, total_bytes, 0.0
        self.advanced(done_bytes)

    def advanced(self, done_bytes: int) -> None:
        now = time.monotonic()
        if now - self.shown_s < PROGRESS_EVERY_S:
            return
        self.shown_s = now
        if self.total_bytes:
            share = min(1.0, done_bytes / self.total_bytes)
            filled = int(share * 30)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {100 * share:5.1f}%"
        else:
            bar = ""
        self.out.write(f"\r{self.name} {bar} {done_bytes / 1e6:,.1f} MB ")
        self.out.flush()
        self.drawn = True

    def finished(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self.drawn = False


def cmd_data(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    symbols = list(dict.fromkeys(parse_symbol(s) for s in args.symbols))
    first = parse_month(args.first)
    months = months_between(first, parse_month(args.last) if args.last else first)
    cache_root = locations.cache_dir()
    progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
    headers = {"User-Agent": f"bigalpha-tui/{_version()}"}
    with httpx.Client(timeout=TIMEOUT, headers=headers, follow_redirects=True) as client:
        fetcher = ArchiveFetcher(
            client, locations.archive_url(), cache_root, gap_s=REQUEST_GAP_S, progress=progress
        )
        results = []
        for symbol in symbols:
            for month in months:
                result = fetcher.fetch_month(symbol, month)
                say_result(result)
                results.append(result)
    print(summary(results, cache_root.as_posix()))
    return EXIT_FAILED if any(r.outcome is Outcome.FAILED for r in results) else 0


def say_result(result: MonthResult) -> None:
    where = f"{result.symbol} {result.month}"
    if result.outcome is Outcome.FAILED:
        print(f"bigalpha-tui: {where}: {result.detail}", file=sys.stderr)
        return
    if result.outcome is Outcome.MISSING:
        print(f"{where}: {result.detail}", flush=True)
        return
    size = result.path.stat().st_size if result.path is not None else 0
    print(f"{where}: {result.outcome.value} ({_size(size)}, SHA-256 verified)", flush=True)


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:,.1f} MB" if size_bytes >= 100_000 else f"{size_bytes / 1e3:,.1f} kB"


def summary(results: list[MonthResult], cache: str) -> str:
    counts = {o: sum(r.outcome is o for r in results) for o in Outcome}
    line = ", ".join(f"{n} {o.value}" for o, n in counts.items())
    lines = [f"{line}; cache: {cache}"]
    missing = [r for r in results if r.outcome is Outcome.MISSING]
    if missing:
        names = ", ".join(f"{r.symbol} {r.month}" for r in missing)
        lines.append(f"not in the archive: {names}")
    if counts[Outcome.FAILED]:
        lines.append("some months failed (above); run the same command again to resume them")
    ready = [r for r in results if r.outcome in (Outcome.FETCHED, Outcome.CACHED)]
    if ready and not counts[Outcome.FAILED]:
        lines.append(f"replay with: bigalpha-tui replay {' '.join(_spans(ready))}")
    return "\n".join(lines)


def _spans(results: list[MonthResult]) -> list[str]:
    """`BTCUSDT:2025-01..2025-06` for each run of consecutive ready months of a symbol."""
    runs: list[tuple[str, Month, Month]] = []
    for r in sorted(results, key=lambda r: (r.symbol, r.month)):
        if runs and runs[-1][0] == r.symbol and runs[-1][2].next() == r.month:
            runs[-1] = (r.symbol, runs[-1][1], r.month)
        else:
            runs.append((r.symbol, r.month, r.month))
    return [f"{s}:{a}" if a == b else f"{s}:{a}..{b}" for s, a, b in runs]


def _version() -> str:
    from bigalpha_tui.cli import package_version

    return package_version()
