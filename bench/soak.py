"""Soak: the headless core for 30 simulated days at --speed max, memory and files watched.

Not a test: a measurement with a verdict. One in-process core, wired as `bigalpha-tui --no-ui
--source sim --speed max` wires it (`runtime.build`, learning loop attached), runs the
simulator for `--days` of market time on a fresh store. Every simulated day it samples the
process RSS, the store's size and the largest log. Prints RSS at start, after warm-up and at
the end, the store size, event counts by kind, rejected bars and store errors, and exits 1
when RSS grew by `--max-growth-pct` or more after warm-up, when any store file outgrew its
bound (`--rotate-mb` for a log and its rotated generations), or on any store error.

    python bench/soak.py                    # 30 days, logs rotated past 0.25 MiB (about 2 min)
    python bench/soak.py --days 3 --warmup-days 1
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio

from bigalpha_tui import runtime
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.core.store import JSONL_FILES, MIB, ROTATED_KEEP, Store

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
    p.add_argument("--days", type=float, default=30.0, help="simulated days (30)")
    p.add_argument("--warmup-days", type=float, default=3.0, help="days before the baseline (3)")
    p.add_argument("--max-growth-pct", type=float, default=10.0, help="allowed RSS growth (10)")
    p.add_argument("--rotate-mb", type=float, default=0.25, help="log rotation size, MiB (0.25)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--data-dir", help="store folder (default: a fresh temporary one)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    data = Path(args.data_dir or tempfile.mkdtemp(prefix="bigalpha-soak-"))
    run_args = argparse.Namespace(
        data_dir=str(data),
        config=str(data / "absent-config.toml"),
        source="sim",
        speed="max",
        seed=args.seed,
    )
    rt = runtime.build(run_args)
    rt.store.jsonl_rotate_bytes = int(args.rotate_mb * MIB)
    core = rt.core
    kinds: Counter[str] = Counter()
    core.observers.append(lambda e: kinds.update([e.kind]) if isinstance(e, Event) else None)
    samples: list[tuple[float, int, int, int]] = []  # day, rss, store bytes, largest log
    start_s = core.clock.now()
    next_day = [start_s]

    def sample() -> None:
        t = core.heartbeat.market_time_s
        if t is None or t < next_day[0]:
            return
        gc.collect()
        day = (t - start_s) / DAY_S
        samples.append((day, current_rss_bytes(), store_bytes(data), largest_log_bytes(data)))
        next_day[0] += DAY_S

    core.step_observers.append(sample)
    rss_start = current_rss_bytes()
    wall_start = time.monotonic()
    anyio.run(core.run, args.days * DAY_S)
    wall_s = time.monotonic() - wall_start
    gc.collect()
    rss_end = current_rss_bytes()
    samples.append(((core.clock.now() - start_s) / DAY_S, rss_end, store_bytes(data), 0))
    return report(args, data, core, rt.store, samples, rss_start, rss_end, kinds, wall_s)


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
) -> int:
    print(f"soak: {args.days:g} simulated days in {wall_s:.0f} s wall, store {data}")
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
    print("verdict: " + ("FLAT and BOUNDED" if not failed else "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
