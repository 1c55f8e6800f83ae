"""Build a running core from config and command-line options (shared by UI and headless)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from bigalpha_tui import locations
from bigalpha_tui.core import config as config_mod
from bigalpha_tui.core.clock import Clock, RealClock, SimClock, parse_speed
from bigalpha_tui.core.config import EXCHANGE_SOURCES, PAPER, Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import ConfigError, StoreError
from bigalpha_tui.core.sources.base import BarSource
from bigalpha_tui.core.store import ENGINE_STATE, MIB, Store, StoreLock

DURATION_UNITS_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """'90m', '6h', '1d', '2w' or plain seconds -> seconds of market time."""
    raw = text.strip().lower()
    for unit in sorted(DURATION_UNITS_S, key=len, reverse=True):
        if raw.endswith(unit):
            number = raw[: -len(unit)]
            break
    else:
        unit, number = "s", raw
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(
            f"--duration accepts a number with s, m, h, d or w (e.g. 6h), not {text!r}"
        ) from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"--duration must be positive, not {text!r}")
    return value * DURATION_UNITS_S[unit]


def effective_config(args: argparse.Namespace) -> Config:
    """The config file, then command-line flags on top, all validated."""
    given = getattr(args, "config", None)
    # a path given on the command line must exist: a typo must not mean "run on defaults"
    config = config_mod.load(locations.config_path(given), must_exist=bool(given))
    overrides: dict[str, object] = {}
    if getattr(args, "source", None):
        overrides["name"] = args.source
    elif getattr(args, "files", None):
        overrides["name"] = "replay"
    if getattr(args, "speed", None):
        overrides["speed"] = args.speed
    if getattr(args, "symbols", None):
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
        if not symbols:
            raise ConfigError("--symbols accepts a comma-separated list such as BTCUSDT,ETHUSDT")
        overrides["symbols"] = tuple(symbols)
    if getattr(args, "seed", None) is not None:
        overrides["seed"] = args.seed
    if overrides:
        config = config_mod.replace(config, "source", **overrides)
    key = os.environ.get("COINGLASS_API_KEY")
    if key and not config.source.coinglass_api_key:
        config = config_mod.replace(config, "source", coinglass_api_key=key)
    return config


@dataclass
class Runtime:
    config: Config
    clock: Clock
    source: BarSource
    store: Store
    core: Core
    data_dir: Path


def _last_bar_ms(store: Store) -> int | None:
    state = store.read_json(ENGINE_STATE)
    if state is None:
        return None
    value = state.get("last_bar_ms")
    return value if isinstance(value, int) else None


def build(
    args: argparse.Namespace,
    *,
    read_only: bool = False,
    durable: bool = True,
    config: Config | None = None,
) -> Runtime:
    """Config, store, clock, source and core, wired for one run. `config`, when given, is
    used as it is (a sweep's variant, already validated) instead of the file and flags."""
    config = effective_config(args) if config is None else config
    data_dir = locations.checked_data_dir(getattr(args, "data_dir", None))
    if not read_only:
        lock_store(data_dir)  # held for the life of the process
    rotate_bytes = int(config.store.jsonl_rotate_mb * MIB)
    store = Store(data_dir, read_only=read_only, jsonl_rotate_bytes=rotate_bytes, durable=durable)
    source, clock = build_source(config, store, args)
    core = Core(config, source, clock, store, read_only=read_only)
    if not read_only:
        attach_exchange(core, config, clock)
    return Runtime(config, clock, source, store, core, data_dir)


def attach_exchange(core: Core, config: Config, clock: Clock) -> None:
    """Testnet/live on the exchange's own bars: the loop's orders go to the exchange
    (`cli.check_execution` has refused every other combination before a run starts; a
    replay or the simulator stays on paper)."""
    # paper, or a market that is not the exchange's: nothing to attach, and the exchange
    # client (httpx) is not even imported (30 ms of every replay's start)
    if config.execution.mode == PAPER or config.source.name not in EXCHANGE_SOURCES:
        return
    from bigalpha_tui.core.execution import refuse_unrouted

    refuse_unrouted(config)  # live: refused here too, whoever builds the run
    from bigalpha_tui.core.exchange import load_keys
    from bigalpha_tui.core.execution import build_broker
    from bigalpha_tui.core.execution_loop import attach_execution

    attach_execution(core, build_broker(config, load_keys(config.execution), clock))


def lock_store(data_dir: Path) -> None:
    """Take the store's lock; a folder that cannot hold it (a full disk, no such folder, no
    permission) stops start-up with one line, like another instance holding it does."""
    try:
        StoreLock(data_dir).acquire()
    except OSError as exc:
        where = exc.filename or data_dir
        raise StoreError(
            f"cannot use {data_dir} as the data folder: {where}: {exc.strerror or exc}"
        ) from None


def check_sim_symbols(symbols: tuple[str, ...]) -> None:
    """The simulator only knows the markets of its table: refuse another name rather than
    trade a made-up coin under a real exchange's symbol."""
    from bigalpha_tui.core.sources.sim import DEFAULT_SYMBOLS

    unknown = [s for s in symbols if s.upper() not in DEFAULT_SYMBOLS]
    if unknown:
        raise ConfigError(
            f"source.symbols: the simulator has no market {', '.join(unknown)}; it knows"
            f" {', '.join(DEFAULT_SYMBOLS)} (other markets: --source binance)"
        )


def build_source(config: Config, store: Store, args: argparse.Namespace) -> tuple[BarSource, Clock]:
    name = config.source.name
    speed = parse_speed(config.source.speed)
    if name == "sim":
        from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimSource

        check_sim_symbols(config.source.symbols)
        # Market time starts at 08:30 UTC; the series starts `backfill_bars` earlier, and
        # those bars (already closed at start) arrive at once, as a live source's backfill
        # does, so the cockpit opens with warm Hurst and CVD panels instead of 100 minutes
        # of WARMING.
        live_start_s = DEFAULT_START_MS / 1000.0
        series_start_ms = DEFAULT_START_MS - config.source.backfill_bars * 60_000
        last_ms = _last_bar_ms(store)
        resume_s = (last_ms + 60_000) / 1000.0 if last_ms is not None else live_start_s
        sim_clock = SimClock(max(resume_s, live_start_s), speed)
        source: BarSource = SimSource(
            sim_clock,
            symbols=config.source.symbols,
            seed=config.source.seed,
            start_ms=series_start_ms,
        )
        return source, sim_clock
    if name == "replay":
        from bigalpha_tui.core.sources.replay import ReplaySource

        files = [Path(p) for p in getattr(args, "files", None) or []]
        if not files:
            raise ConfigError("source 'replay' needs kline files: bigalpha-tui replay FILE...")
        replay_clock = SimClock(0.0, speed)
        source = ReplaySource(
            files,
            replay_clock,
            speed=speed,
            skip_bad_rows=getattr(args, "skip_bad_rows", False),
            allow_no_flow=getattr(args, "allow_no_flow", False),
            symbol=getattr(args, "symbol", None),
            start_ms=getattr(args, "start_ms", None),
            end_ms=getattr(args, "end_ms", None),
        )
        return source, replay_clock
    if name in ("binance", "coinglass"):
        from bigalpha_tui.core.sources.live import build_live_source

        real_clock = RealClock()
        return build_live_source(config, store, real_clock), real_clock
    raise ConfigError(f"source {name!r} is not known; use sim, replay, binance or coinglass")
