"""Soak: the headless core for 30 simulated days at --speed max, memory and files watched.

Not a test: a measurement with a verdict. One in-process core, wired as `bigalpha-tui --no-ui
--source sim --speed max` wires it (`runtime.build`, learning loop attached), runs the
simulator for `--days` of market time on a fresh store. Every simulated day it samples the
process RSS, the store's size and the largest log. Prints RSS at start, after warm-up and at
the end, the store size, event counts by kind, rejected bars and store errors, and exits 1
when RSS grew by `--max-growth-pct` or more after warm-up, when any store file outgrew its
bound (`--rotate-mb` for a log and its rotated generations), or on any store error.

With `--source fake-binance` the same core runs the Binance klines source against the
in-process fake USDⓈ-M server of `bench/fake_binance.py` (`--faults`: a seeded share of
requests answered with 429 + Retry-After, 418, 5xx, timeouts, malformed JSON, an empty list,
rows served twice or a bar left out). It also prints bars ingested against expected (every
minute exactly once per symbol), duplicates dropped, requests made, the least spacing between
requests on the injected clock and the faults by kind, and exits 1 unless every minute came
exactly once and no two requests were closer than the configured 2.5 s.

    python bench/soak.py                    # 30 days, logs rotated past 0.25 MiB (about 2 min)
    python bench/soak.py --days 3 --warmup-days 1
    python bench/soak.py --source fake-binance --faults --days 30 --symbols BTCUSDT,ETHUSDT
    python bench/soak.py --source fake-binance --faults --hours 6 --warmup-days 0.05
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ is no package: its sibling
from fake_binance import FAULT_KINDS, FakeBinance

from bigalpha_tui import locations, runtime
from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.ratelimit import HostRateLimiter
from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.binance import BinanceSource
from bigalpha_tui.core.sources.live import SOURCE_STATE
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS
from bigalpha_tui.core.store import (
    JSONL_FILES,
    MIB,
    ROTATED_KEEP,
    Store,
    StoreLock,
)

DAY_S = 86_400.0


def current_rss_bytes() -> int:
    """Resident set size of this process, from /proc (stdlib only: the test runs it too)."""
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def largest_log_bytes(root: Path) -> int:
    return max((p.stat().st_size for n in JSONL_FILES for p in root.glob(f"{n}*")), default=0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", choices=("sim", "fake-binance"), default="sim")
    p.add_argument("--faults", action="store_true", help="fake-binance: inject faults")
    p.add_argument("--fault-rate", type=float, default=0.03, help="share of faulty requests")
    p.add_argument("--symbols", help="comma-separated symbols (default: the config's)")
    p.add_argument("--days", type=float, default=30.0, help="simulated days (30)")
    p.add_argument("--hours", type=float, help="simulated hours (instead of --days)")
    p.add_argument("--warmup-days", type=float, default=3.0, help="days before the baseline (3)")
    p.add_argument("--max-growth-pct", type=float, default=10.0, help="allowed RSS growth (10)")
    p.add_argument("--rotate-mb", type=float, default=0.25, help="log rotation size, MiB (0.25)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-dir", help="store folder (default: a fresh temporary one)")
    return p.parse_args(argv)


class CheckedStream:
    """The Binance source as the core sees it, every bar checked on its way through:
    minute after minute per symbol (no gap, no repeat) and final numbers, never an open
    kline's. Running figures only, so the check itself costs no memory."""

    def __init__(self, source: BinanceSource, fake: FakeBinance) -> None:
        self.source = source
        self.fake = fake
        self.name = source.name
        self.end_s = float("inf")
        self.first_ms: dict[str, int] = {}
        self.last_ms: dict[str, int] = {}
        self.ingested = 0
        self.repeated = 0
        self.skipped_minutes = 0
        self.partial = 0

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        async for bar in self.source.bars(resume_after_ms):
            if bar.close_s <= self.end_s:
                self._check(bar)
            yield bar

    def _check(self, bar: Bar) -> None:
        self.ingested += 1
        last_ms = self.last_ms.get(bar.symbol)
        if last_ms is None:
            self.first_ms[bar.symbol] = bar.open_ms
        elif bar.open_ms <= last_ms:
            self.repeated += 1
            return
        elif bar.open_ms != last_ms + MINUTE_MS:
            self.skipped_minutes += (bar.open_ms - last_ms) // MINUTE_MS - 1
        self.last_ms[bar.symbol] = bar.open_ms
        served = self.fake.bar(bar.symbol, bar.open_ms)
        if served is None or served.volume != bar.volume or served.close != bar.close:
            self.partial += 1

    def expected(self, first_open_ms: int) -> int:
        """Bars due: every minute from the back-fill's first through the last one closed by
        `end_s`, for every symbol."""
        last_open_ms = int(self.end_s * 1000) // MINUTE_MS * MINUTE_MS - MINUTE_MS
        return len(self.source.symbols) * ((last_open_ms - first_open_ms) // MINUTE_MS + 1)

    def health(self) -> SourceHealth:
        return self.source.health()

    async def aclose(self) -> None:
        await self.source.aclose()


def run_namespace(args: argparse.Namespace, data: Path, source: str) -> argparse.Namespace:
    """The run options of a max-speed core on `data`, with no user config read."""
    return argparse.Namespace(
        data_dir=str(data),
        config=os.devnull,  # an empty file: all defaults
        source=source,
        speed="max",
        seed=args.seed,
        symbols=args.symbols,
    )


def build_fake_binance(
    args: argparse.Namespace, data: Path
) -> tuple[Core, Store, CheckedStream, int]:
    """The core on a Binance source whose HTTP client talks to `FakeBinance` in-process;
    market time is a SimClock at max speed that the source's waits move on."""
    config = runtime.effective_config(run_namespace(args, data, "binance"))
    data_dir = locations.data_dir(str(data))
    StoreLock(data_dir).acquire()
    store = Store(data_dir, jsonl_rotate_bytes=int(args.rotate_mb * MIB))
    src = config.source
    start_s = DEFAULT_START_MS / 1000.0 + 30.0  # half a minute in, as a live start is
    clock = SimClock(start_s, speed=None)
    series_start_ms = DEFAULT_START_MS - (src.backfill_bars + 10) * MINUTE_MS
    fake = FakeBinance(
        clock,
        src.symbols,
        seed=args.seed,
        series_start_ms=series_start_ms,
        fault_rate=args.fault_rate if args.faults else 0.0,
    )
    limiter = HostRateLimiter(
        clock,
        min_interval_s=src.min_request_interval_s,
        backoff_cap_s=src.backoff_cap_s,
        rng=random.Random(args.seed),
        name="fapi.binance.com",
    )
    limiter.on_change = lambda: store.write_json(
        SOURCE_STATE, {"limiters": {"host:fapi.binance.com": limiter.to_state()}}
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    source = BinanceSource(
        clock,
        src.symbols,
        client=client,
        base_url=src.binance_base_url,
        limiter=limiter,
        backfill_bars=src.backfill_bars,
    )
    stream = CheckedStream(source, fake)
    core = Core(config, stream, clock, store)
    first_open_ms = DEFAULT_START_MS - src.backfill_bars * MINUTE_MS
    return core, store, stream, first_open_ms


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.hours is not None:
        args.days = args.hours * 3600.0 / DAY_S
    data = Path(args.data_dir or tempfile.mkdtemp(prefix="bigalpha-soak-"))
    stream: CheckedStream | None = None
    first_open_ms = 0
    if args.source == "fake-binance":
        logging.disable(logging.WARNING)  # one line per injected fault; counted below instead
        core, store, stream, first_open_ms = build_fake_binance(args, data)
    else:
        rt = runtime.build(run_namespace(args, data, "sim"))
        rt.store.jsonl_rotate_bytes = int(args.rotate_mb * MIB)
        core, store = rt.core, rt.store
    kinds: Counter[str] = Counter()
    core.observers.append(lambda e: kinds.update([e.kind]) if isinstance(e, Event) else None)
    samples: list[tuple[float, int, int, int]] = []  # day, rss, store bytes, largest log
    start_s = core.clock.now()
    next_day = [start_s]
    sample_every_s = min(DAY_S, args.days * DAY_S / 12.0)
    if stream is not None:
        stream.end_s = start_s + args.days * DAY_S

    def sample() -> None:
        t = core.heartbeat.market_time_s
        if t is None or t < next_day[0]:
            return
        gc.collect()
        day = (t - start_s) / DAY_S
        samples.append((day, current_rss_bytes(), store_bytes(data), largest_log_bytes(data)))
        next_day[0] += sample_every_s

    core.step_observers.append(sample)
    rss_start = current_rss_bytes()
    wall_start = time.monotonic()
    anyio.run(core.run, args.days * DAY_S)
    wall_s = time.monotonic() - wall_start
    gc.collect()
    rss_end = current_rss_bytes()
    samples.append(((core.clock.now() - start_s) / DAY_S, rss_end, store_bytes(data), 0))
    failed = report(args, data, core, store, samples, rss_start, rss_end, kinds, wall_s)
    if stream is not None:
        failed += report_binance(stream, first_open_ms)
    print("verdict: " + ("FLAT and BOUNDED" if not failed else "; ".join(failed)))
    if stream is not None and not failed:
        print("verdict: EVERY BAR ONCE, SPACING KEPT")
    return 1 if failed else 0


def report_binance(stream: CheckedStream, first_open_ms: int) -> list[str]:
    """The live-source figures; returns what failed."""
    source, fake = stream.source, stream.fake
    health = source.health()
    expected = stream.expected(first_open_ms)
    print(f"source {source.name}: {len(source.symbols)} symbols {','.join(source.symbols)}")
    print(
        f"bars ingested {stream.ingested} / expected {expected}; emitted twice "
        f"{stream.repeated}, minutes skipped {stream.skipped_minutes}, open klines emitted "
        f"{stream.partial}, given up as missing {source.missing_bars}"
    )
    print(f"duplicates dropped {source.duplicates_dropped}; requests {fake.requests}")
    limit_s = source.limiter.min_interval_s
    print(f"min request spacing {fake.min_spacing_s:.3f} s (limit {limit_s:g} s)")
    faults = ", ".join(f"{kind} {fake.faults[kind]}" for kind in FAULT_KINDS)
    print(f"faults injected {sum(fake.faults.values())}: {faults}")
    print(
        f"source saw: rate limited (429) {health.rate_limited}, errors {health.errors}, "
        f"skipped rows {health.skipped_rows}; limiter 429/418 {source.limiter.rate_limited}, "
        f"failures {source.limiter.failures}"
    )
    failed = []
    if stream.ingested != expected or stream.repeated or stream.skipped_minutes:
        failed.append(f"bars: {stream.ingested} ingested, {expected} expected")
    if stream.partial or source.missing_bars:
        failed.append("open or missing bars emitted")
    if fake.min_spacing_s < limit_s - 1e-9:
        failed.append(f"requests {fake.min_spacing_s:.3f} s apart")
    return failed


def report(
    args: argparse.Namespace,
    data: Path,
    core: Core,
    store: Store,
    samples: list[tuple[float, int, int, int]],
    rss_start: int,
    rss_end: int,
    kinds: Counter[str],
    wall_s: float,
) -> list[str]:
    """The memory and store figures; returns what failed."""
    print(
        f"soak ({args.source}): {args.days:g} simulated days in {wall_s:.0f} s wall, store {data}"
    )
    print(f"{'day':>6} {'RSS MiB':>9} {'store MiB':>10} {'largest log MiB':>16}")
    for day, rss, size, log_bytes in samples:
        print(f"{day:6.1f} {rss / MIB:9.1f} {size / MIB:10.2f} {log_bytes / MIB:16.2f}")
    warm = [s for s in samples if s[0] >= args.warmup_days]
    rss_warm = warm[0][1] if warm else rss_start
    growth_pct = 100.0 * (rss_end - rss_warm) / rss_warm
    print(f"RSS start {rss_start / MIB:.1f} MiB, after {args.warmup_days:g}-day warm-up")
    print(f"  {rss_warm / MIB:.1f} MiB, end {rss_end / MIB:.1f} MiB: {growth_pct:+.1f} %")
    print(f"store size {store_bytes(data) / MIB:.2f} MiB; files:")
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(data)!s:<40} {path.stat().st_size / 1024:10.1f} KiB")
    print("events: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print(f"bars processed {core.heartbeat.bars_processed}, rejected {dict(core.rejected_bars)}")
    print(f"store write failures {store.write_failures}, warnings {len(store.warnings)}")
    bound = args.rotate_mb * MIB * 1.05 + 64 * 1024
    too_big = [
        p.name
        for n in JSONL_FILES
        for p in data.glob(f"{n}*")
        if p.stat().st_size > bound or p.name.endswith(f".{ROTATED_KEEP + 1}")
    ]
    failed = []
    if growth_pct >= args.max_growth_pct:
        failed.append(f"RSS grew {growth_pct:.1f} % after warm-up")
    if too_big:
        failed.append(f"logs beyond their bound: {too_big}")
    if store.write_failures or store.warnings:
        failed.append("store errors")
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
