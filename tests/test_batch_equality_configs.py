"""The batch replay trades as the streaming path under the configs a sweep tries.

`bigalpha-tui sweep --set section.key=...` runs the batch path (`core/batch.py`) with
variant configs, and the batch run passes over the bars it proves change nothing: its
proofs lean on the exit levels, the force-hold clock, the regime, the learning schedule,
the gates. Each case here runs an unusual but valid config (or an odd data shape, or a
command and a stop from an observer) through both paths and compares everything a user or
the learning loop sees (`assert_same_run`: trades, events, snapshot, files, engines).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_replay_batch import (
    DAY_MS,
    ListSource,
    _replay,
    _run,
    assert_same_run,
    shared_files,
)

from bigalpha_tui.core import config as config_mod
from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.core.sources.replay import ReplaySource
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.trading import TradingLoop
from bigalpha_tui.core.types import SWITCHABLE_GUARDS

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def _with(**sections: dict[str, Any]) -> Config:
    config = Config()
    for section, values in sections.items():
        config = config_mod.replace(config, section, **values)
    return config


#: name -> the config's changed keys; every value inside its validated range
CONFIGS: dict[str, dict[str, dict[str, Any]]] = {
    "force-hold 0 min": {"exits": {"force_hold_min": 0.0}},
    "force-hold a week": {"exits": {"force_hold_min": 10_080.0}},
    "force-hold 1 min, trend everywhere": {
        "exits": {"force_hold_min": 1.0},
        "hurst": {"trend_above": 0.3, "noise_below": 0.2, "confirm_bars": 1},
    },
    "regime flicker": {"hurst": {"trend_above": 0.5, "noise_below": 0.5, "confirm_bars": 1}},
    "short hurst window rs_al": {"hurst": {"window": 20, "method": "rs_al", "confirm_bars": 1}},
    "tiny stop and tiers": {"exits": {"stop_pct": 0.02, "tiers_pct": [0.01, 0.02, 0.03, 0.04]}},
    "zero stop, hairline tiers": {
        "exits": {"stop_pct": 0.0, "tiers_pct": [0.001, 0.002, 0.003, 0.004]}
    },
    "huge stop and tiers": {"exits": {"stop_pct": 60.0, "tiers_pct": [40.0, 60.0, 80.0, 100.0]}},
    "close tiers, far T4, big slices": {
        "exits": {"tiers_pct": [0.1, 0.2, 0.3, 5.0], "tier_fraction": 0.6, "force_hold_min": 5.0}
    },
    "one position": {"gates": {"max_positions": 1}},
    "golden hour always open": {
        "gates": {"golden_hour_start": "00:00", "golden_hour_end": "24:00"}
    },
    "golden hour one minute": {"gates": {"golden_hour_start": "11:59", "golden_hour_end": "12:00"}},
    "golden hour wraps midnight": {
        "gates": {"golden_hour_start": "22:00", "golden_hour_end": "03:00"}
    },
    "no fees, no buffer": {
        "gates": {"fee_bps": 0.0, "initial_slippage_buffer_bps": 0.0},
        "broker": {"half_spread_bps": 0.0, "impact_bps_per_pct_volume": 0.0},
    },
    "fees block all": {"gates": {"fee_bps": 1000.0}},
    "signals everywhere": {
        "strategy": {"ofi_threshold": 0.0, "ofi_bars": 1, "atr_bars": 1, "horizon_bars": 1},
        "gates": {"golden_hour_start": "00:00", "golden_hour_end": "24:00"},
    },
    "signals never old enough": {"strategy": {"max_signal_age_s": 0.0}},
    "learning every 6 min, probation at once": {
        "learning": {
            "interval_h": 0.1,
            "lookback_h": 1.0,
            "min_trades": 1,
            "probation_enter_pf": 100.0,
            "probation_exit_pf": 100.0,
            "shadow_edge_ratio": 1.0,
            "buffer_step_bps": 50.0,
        },
        "gates": {"golden_hour_start": "00:00", "golden_hour_end": "24:00"},
    },
    "learning hourly, probation in and out": {
        "learning": {
            "interval_h": 1.0,
            "min_trades": 1,
            "probation_enter_pf": 1.0,
            "probation_exit_pf": 1.0,
        },
        "sizing": {"probation_cap": 0.0},
    },
    "no stake": {"sizing": {"base_stake_usd": 0.0}},
    "zero sizes but ultra": {"sizing": {"normal": 0.0, "high": 0.0, "random_regime": 0.0}},
    "learning every 0.123 h": {"learning": {"interval_h": 0.123, "min_trades": 1}},
    "tier slices of nothing": {"exits": {"tier_fraction": 0.0}},
    "tier slices of everything": {"exits": {"tier_fraction": 1.0}},
    "whales everywhere": {"flow": {"whale_volume_multiple": 1.0, "neutral_share": 0.0}},
    "short history": {"store": {"live_history_h": 1.0}, "learning": {"lookback_h": 1.0}},
    "small chart, short flow window": {"ui": {"chart_bars": 10}, "flow": {"window_bars": 2}},
}


def _sim(
    days: float, seed: int = 11, symbols: tuple[str, ...] = SYMBOLS, params: SimParams | None = None
) -> list[Bar]:
    minutes = simulate_minutes(symbols, seed, DEFAULT_START_MS, params or SimParams())
    return [bar for minute in itertools.islice(minutes, int(days * 1440)) for bar in minute]


def _listed(bars: list[Bar]) -> Callable[[Any], ListSource]:
    return lambda clock: ListSource(bars, clock)


@pytest.fixture(scope="module")
def sim_day() -> list[Bar]:
    return _sim(1.0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_variant_config_trades_the_same_in_batch_on_a_simulated_day(
    name: str, sim_day: list[Bar], tmp_path: Path
) -> None:
    # as a sweep runs it: no block record, so the blocks the batch run decides without a
    # `Signal` (`TradingLoop.quiet_block`) are counted and logged as the streaming run's
    assert_same_run(_listed(sim_day), tmp_path, _with(**CONFIGS[name]), record_blocks=False)


@pytest.mark.parametrize(
    "name",
    [
        "force-hold 1 min, trend everywhere",
        "tiny stop and tiers",
        "signals everywhere",
        "learning every 6 min, probation at once",
        "close tiers, far T4, big slices",
    ],
)
def test_a_variant_config_trades_the_same_in_batch_on_a_real_day(
    name: str, shared_data: Path, tmp_path: Path
) -> None:
    files = shared_files(shared_data)[:2]
    outcome = assert_same_run(_replay(files, 1.0), tmp_path, _with(**CONFIGS[name]))
    assert outcome.snapshot["bars"] > 2000


@pytest.mark.long
@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_variant_config_trades_the_same_on_three_real_days(
    name: str, shared_data: Path, tmp_path: Path
) -> None:
    files = shared_files(shared_data)
    assert_same_run(_replay(files, 3.0), tmp_path, _with(**CONFIGS[name]), record_blocks=False)


def test_guards_switched_off_and_blocks_unrecorded_trade_the_same(
    sim_day: list[Bar], tmp_path: Path
) -> None:
    def guards_off(core: Core) -> None:
        for guard in SWITCHABLE_GUARDS:
            core.guards_enabled[guard] = False

    config = _with(gates={"max_positions": 1})
    assert_same_run(_listed(sim_day), tmp_path / "off", config, setup=guards_off)
    assert_same_run(_listed(sim_day), tmp_path / "unrecorded", config, record_blocks=False)


def test_quiet_exits_off_trades_the_same(
    sim_day: list[Bar], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(TradingLoop, "quiet_exits", False)
    assert_same_run(_listed(sim_day), tmp_path)


def test_paused_from_the_start_trades_the_same(sim_day: list[Bar], tmp_path: Path) -> None:
    def pause(core: Core) -> None:
        core.paused = True

    outcome = assert_same_run(_listed(sim_day), tmp_path, setup=pause)
    assert not [t for t in outcome.trades if t["ledger"] == "live"]


# -- data shapes ---------------------------------------------------------------------------


def test_gaps_late_starts_and_early_ends_trade_the_same(tmp_path: Path) -> None:
    """Random minutes missing (an entry order then meets no bar at its fill time), a two
    hour hole (learning slots missed: a catch-up cycle), a symbol starting 5 hours late and
    one ending early."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    bars = _sim(1.5, seed=5, symbols=symbols)
    rng = random.Random(3)
    start = DEFAULT_START_MS
    hole = (start + 600 * MINUTE_MS, start + 720 * MINUTE_MS)
    kept = [
        bar
        for bar in bars
        if rng.random() > 0.05
        and not hole[0] <= bar.open_ms < hole[1]
        and not (bar.symbol == "ETHUSDT" and bar.open_ms < start + 300 * MINUTE_MS)
        and not (bar.symbol == "SOLUSDT" and bar.open_ms > start + 1500 * MINUTE_MS)
    ]
    config = _with(learning={"interval_h": 1.0, "min_trades": 1})
    outcome = assert_same_run(_listed(kept), tmp_path, config)
    assert outcome.trades
    cancels = [e for e in outcome.events if e[1] == "cancel"]
    assert outcome.snapshot["learning"].cycles > 10, cancels


def test_bad_bars_among_several_symbols_are_rejected_alike(tmp_path: Path) -> None:
    """Duplicates, bars from the past, insane bars and a bar from the future, spread over
    symbols, with tiny exit levels so that most bars of a held symbol matter."""
    bars = _sim(0.7, seed=9, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    rng = random.Random(5)
    insane = Bar("XRPUSDT", bars[0].open_ms, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5)  # its only bar
    first = Bar("DOGEUSDT", bars[0].open_ms, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5)
    mixed: list[Bar] = [insane, first]
    for i, bar in enumerate(bars):
        mixed.append(bar)
        if i % 3 == 0:  # DOGE: a copy of BTC's bars, after its insane first bar
            fields = (bar.open_ms, bar.open, bar.high, bar.low, bar.close, bar.volume)
            mixed.append(Bar("DOGEUSDT", *fields, bar.taker_buy_volume))
        if i > 300 and rng.random() < 0.02:
            old = bars[rng.randrange(0, i)]
            mixed.append(old)  # a duplicate or a bar from the past
        if i > 300 and rng.random() < 0.01:
            mixed.append(bar)  # the same bar again at once
        if i > 300 and rng.random() < 0.005:
            mixed.append(Bar(bar.symbol, bar.open_ms + MINUTE_MS, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5))
        if i in (900, 1800) and i + 90 < len(bars):
            mixed.append(bars[i + 90])  # a sane bar 30 minutes early: the next ones are late
    config = _with(exits={"stop_pct": 0.1, "tiers_pct": [0.05, 0.1, 0.15, 0.2]})
    outcome = assert_same_run(_listed(mixed), tmp_path, config)
    assert sum(outcome.snapshot["rejected"].values()) > 20


def test_a_lagging_symbol_trades_the_same(tmp_path: Path) -> None:
    """One symbol's bars arrive minutes after the others' (a source that does not merge by
    time): its signals are old by the clock the other symbol's bars moved; the batch run
    must move the clock as the streaming source does, also over the bars it passes over."""
    bars = _sim(1.0, seed=13)
    lag = 4
    btc = [b for b in bars if b.symbol == "BTCUSDT"]
    eth = [b for b in bars if b.symbol == "ETHUSDT"]
    mixed: list[Bar] = []
    for i, bar in enumerate(btc):
        mixed.append(bar)
        if i >= lag:
            mixed.append(eth[i - lag])
    config = _with(gates={"golden_hour_start": "00:00", "golden_hour_end": "24:00"})
    assert_same_run(_listed(mixed), tmp_path, config)


def test_replay_windows_trade_the_same(shared_data: Path, tmp_path: Path) -> None:
    """`start_ms`/`end_ms` windows off the minute grid, through the replay source's columns."""
    files = shared_files(shared_data)[:2]
    probe = ReplaySource(files, _clock())
    first = probe.first_open_ms

    for i, (start, end) in enumerate(
        [
            (first + 5 * 3_600_000 + 17_000, first + DAY_MS + 1),
            (first + 11 * 3_600_000, first + 11 * 3_600_000 + 30 * MINUTE_MS),
        ]
    ):

        def make(clock: Any, start: int = start, end: int = end) -> ReplaySource:
            source = ReplaySource(files, clock)
            source.start_ms, source.end_ms = start, end
            return source

        assert_same_run(make, tmp_path / str(i), _with(exits={"force_hold_min": 3.0}))


def _clock() -> Any:
    from bigalpha_tui.core.clock import SimClock

    return SimClock(0.0)


# -- commands and stops from observers -----------------------------------------------------


def test_a_close_asked_from_an_event_observer_is_applied_at_the_next_bar_alike(
    tmp_path: Path,
) -> None:
    """An event observer asks to close a symbol the moment it enters (queued: the core is in
    its step): the streaming loop applies it before the next bar, so must the batch run."""
    bars = _sim(1.0, seed=11)

    def closer(core: Core) -> None:
        def on_event(event: Event) -> None:
            if event.kind == "entry":
                core.submit(Command(CommandKind.CLOSE, event.symbol))

        core.observers.append(on_event)

    config = _with(gates={"golden_hour_start": "00:00", "golden_hour_end": "24:00"})
    outcome = assert_same_run(_listed(bars), tmp_path, config, setup=closer)
    live = [t for t in outcome.trades if t["ledger"] == "live"]
    assert live and all("MANUAL" in t["exit_reasons"] for t in live), live[:1]


def test_a_close_of_another_symbol_asked_by_a_step_observer_is_seen_alike(
    tmp_path: Path,
) -> None:
    """A step observer (run with the core between bars: the command applies at once)
    closes every open position of the other symbols when an entry is made: the batch run
    must look again at those symbols' bars."""
    bars = _sim(1.0, seed=11)

    def closer(core: Core) -> None:
        entered: list[str] = []

        def on_event(event: Event) -> None:
            if event.kind == "entry":
                entered.append(event.symbol)

        def on_step() -> None:
            trading = core.trading
            assert trading is not None
            while entered:
                symbol = entered.pop()
                for other in list(trading.live):
                    if other != symbol and not trading.live[other].close_requested:
                        core.submit(Command(CommandKind.CLOSE, other))

        core.observers.append(on_event)
        core.step_observers.append(on_step)

    config = _with(
        gates={"golden_hour_start": "00:00", "golden_hour_end": "24:00"},
        exits={"force_hold_min": 600.0},
    )
    outcome = assert_same_run(_listed(bars), tmp_path, config, setup=closer)
    manual = [t for t in outcome.trades if "MANUAL" in t["exit_reasons"]]
    assert manual


@pytest.mark.parametrize("stop_at", [1, 3, 900, 2000])
def test_a_stop_from_a_step_observer_leaves_the_same_state(stop_at: int, tmp_path: Path) -> None:
    """Stopped by an observer at the first applied bar past `stop_at` (a variant config with
    many position bars), both paths leave the same state at the same bar."""
    bars = _sim(1.0, seed=11)
    config = _with(**CONFIGS["force-hold 1 min, trend everywhere"])

    def stop_batch(core: Core) -> None:
        if core.heartbeat.bars_processed >= stop_at and not core.stopping:
            core.stop()

    batched = _run(
        _listed(bars), tmp_path / "b", streaming=False, config=config, observer=stop_batch
    )
    stopped_at = batched.snapshot["bars"]

    def stop_streaming(core: Core) -> None:
        if core.heartbeat.bars_processed >= stopped_at:
            core.stop()

    streamed = _run(
        _listed(bars), tmp_path / "s", streaming=True, config=config, observer=stop_streaming
    )
    assert streamed.snapshot["bars"] == stopped_at
    assert batched.trades == streamed.trades
    assert batched.snapshot == streamed.snapshot
    assert batched.files == streamed.files
    assert batched.events == streamed.events
    assert batched.engines == streamed.engines


@pytest.mark.parametrize("stop_at", [5, 1500])
def test_a_run_interrupted_by_an_exception_leaves_the_same_state(
    stop_at: int, tmp_path: Path
) -> None:
    """ctrl+c or SIGTERM (`replay` turns it into SystemExit) unwinds the run from inside a
    step (here: a step observer raising): the batch run's clean-up must leave the engines,
    the book, the heartbeat and the files where a streaming run unwound at that bar leaves
    them (a replay with --data-dir resumes from those files)."""
    bars = _sim(1.0, seed=11)
    config = _with(**CONFIGS["force-hold 1 min, trend everywhere"])

    def interrupt_batch(core: Core) -> None:
        if core.heartbeat.bars_processed >= stop_at:
            raise KeyboardInterrupt

    batched = _run(
        _listed(bars),
        tmp_path / "b",
        streaming=False,
        config=config,
        observer=interrupt_batch,
        interrupted=True,
    )
    stopped_at = batched.snapshot["bars"]
    assert stop_at <= stopped_at < len(bars)

    def interrupt_streaming(core: Core) -> None:
        if core.heartbeat.bars_processed >= stopped_at:
            raise KeyboardInterrupt

    streamed = _run(
        _listed(bars),
        tmp_path / "s",
        streaming=True,
        config=config,
        observer=interrupt_streaming,
        interrupted=True,
    )
    assert streamed.snapshot["bars"] == stopped_at
    assert batched.trades == streamed.trades
    assert batched.snapshot == streamed.snapshot
    assert batched.engines == streamed.engines
    assert batched.files == streamed.files
    assert batched.events == streamed.events


def test_a_step_observer_acting_on_a_blocked_signal_acts_at_the_same_bar(
    tmp_path: Path,
) -> None:
    """A step observer is called after every bar of the streaming run: one that answers a
    blocked signal (here: closing every open position) must be called at that bar in the
    batch run too, even when the bar only ran the strategy and the gates."""
    bars = _sim(1.0, seed=11)

    def closer(core: Core) -> None:
        blocked: list[str] = []

        def on_event(event: Event) -> None:
            if event.kind == "block":
                blocked.append(event.symbol)

        def on_step() -> None:
            trading = core.trading
            assert trading is not None
            if not blocked:
                return
            blocked.clear()
            for symbol in list(trading.live):
                if not trading.live[symbol].close_requested:
                    core.submit(Command(CommandKind.CLOSE, symbol))

        core.observers.append(on_event)
        core.step_observers.append(on_step)

    config = _with(
        gates={"golden_hour_start": "00:00", "golden_hour_end": "24:00", "max_positions": 1},
        exits={"force_hold_min": 600.0, "stop_pct": 5.0, "tiers_pct": [5.0, 6.0, 7.0, 8.0]},
    )
    outcome = assert_same_run(_listed(bars), tmp_path, config, setup=closer)
    assert [t for t in outcome.trades if "MANUAL" in t["exit_reasons"]]


def test_a_stop_asked_before_the_run_is_ignored_alike(sim_day: list[Bar], tmp_path: Path) -> None:
    """`Core.run` forgets a stop asked before it started (each run starts afresh); the
    batch run must not end after its first bar instead."""
    outcome = assert_same_run(_listed(sim_day[:600]), tmp_path, setup=lambda core: core.stop())
    assert outcome.snapshot["bars"] == 600


@pytest.mark.parametrize(
    ("from_step_observer", "record_blocks"), [(False, True), (False, False), (True, True)]
)
def test_every_command_from_an_observer_is_applied_alike(
    from_step_observer: bool, record_blocks: bool, tmp_path: Path
) -> None:
    """Pause, resume, guard switches, learn, release, close and flatten, asked as trades
    come and go: queued by an event observer (applied before the next bar) or applied at
    once by a step observer; both paths apply each at the same bar, with the same result.
    Without a block record, a golden hour that closes: the blocks the batch run knows
    without a signal (the pause's, the night's) end with the command that ends them."""
    bars = _sim(1.0, seed=11, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    script = [
        Command(CommandKind.GUARD, "FEE_EDGE", False),
        Command(CommandKind.LEARN),
        Command(CommandKind.PAUSE),
        Command(CommandKind.RESUME),
        Command(CommandKind.RELEASE, "ETHUSDT"),  # refused: not on probation
        Command(CommandKind.CLOSE, "SOLUSDT"),
        Command(CommandKind.GUARD, "FEE_EDGE", True),
        Command(CommandKind.FLATTEN, on=True),
        Command(CommandKind.RESUME),
        Command(CommandKind.CLOSE, "BTCUSDT"),
    ]

    def operator(core: Core) -> None:
        waiting: list[Command] = []

        def on_event(event: Event) -> None:
            if event.kind in ("entry", "exit") and len(waiting) < len(script):
                command = script[len(waiting)]
                waiting.append(command)
                if not from_step_observer:
                    core.submit(command)  # in the step: queued

        sent = [0]

        def on_step() -> None:
            while sent[0] < len(waiting):
                core.submit(waiting[sent[0]])  # between bars: applied at once
                sent[0] += 1

        core.observers.append(on_event)
        if from_step_observer:
            core.step_observers.append(on_step)

    golden = ("00:00", "24:00") if record_blocks else ("08:00", "20:00")
    config = _with(
        gates={"golden_hour_start": golden[0], "golden_hour_end": golden[1]},
        learning={"interval_h": 1.0, "min_trades": 1},
    )
    outcome = assert_same_run(
        _listed(bars), tmp_path, config, setup=operator, record_blocks=record_blocks
    )
    commands = [e for e in outcome.events if e[1] == "command"]
    assert len(commands) >= 8, commands
    if not record_blocks:
        blocked = {s.reason.value: s.blocked for s in outcome.snapshot["guard_stats"]}
        assert blocked["PAUSED"] > 0 and blocked["GOLDEN_HOUR"] > 0, blocked


def test_a_fast_switching_trending_simulation_trades_the_same(tmp_path: Path) -> None:
    """Regimes switching every 5-20 minutes, mostly trends: force-holds begin and end and
    their regime changes under them all day."""
    params = SimParams(
        regime_min_dwell_min=5, regime_max_dwell_min=20, trend_weight=0.8, chop_weight=0.1
    )
    bars = _sim(1.0, seed=21, params=params)
    for name in ("force-hold 1 min, trend everywhere", "regime flicker", "force-hold 0 min"):
        config = _with(
            **CONFIGS[name], gates={"golden_hour_start": "00:00", "golden_hour_end": "24:00"}
        )
        outcome = assert_same_run(_listed(bars), tmp_path / name, config)
        assert outcome.trades, name


def test_real_days_of_different_months_with_holes_trade_the_same(
    shared_data: Path, tmp_path: Path
) -> None:
    """A real day of 2023 and a day and a half of 2026 one after the other (years of no
    data between: the learning loop catches up, positions wait), random minutes missing."""
    from bigalpha_tui.core.sources.replay import parse_kline_file

    folder = shared_data / "binance_um_klines_1m"
    old, new = folder / "AVAXUSDT-1m-2023-09.csv.gz", folder / "LINKUSDT-1m-2026-02.csv.gz"
    if not (old.is_file() and new.is_file()):
        pytest.skip("the 2023-09 AVAX and 2026-02 LINK files are needed")
    rng = random.Random(8)
    bars = [
        bar
        for path, minutes in ((old, 1440), (new, 2160))
        for bar in itertools.islice(parse_kline_file(path), minutes)
        if rng.random() > 0.03
    ]
    config = _with(
        gates={"golden_hour_start": "00:00", "golden_hour_end": "24:00"},
        exits={"force_hold_min": 20.0},
        hurst={"trend_above": 0.5, "confirm_bars": 2},
    )
    outcome = assert_same_run(_listed(bars), tmp_path, config)
    assert {t["symbol"] for t in outcome.trades} == {"AVAXUSDT", "LINKUSDT"}


def test_a_durable_store_and_a_disk_that_refuses_writes_for_an_hour_trade_the_same(
    sim_day: list[Bar], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`replay --data-dir` writes at once (no buffered logs), the book at every change;
    and a disk that refuses every state-file write for an hour of market time: entries
    halt, every bar retries, the halt lifts when it heals, on both paths alike."""
    import os

    cores: list[Core] = []
    real_replace = os.replace
    start_s = DEFAULT_START_MS / 1000.0
    broken = (start_s + 10.5 * 3600, start_s + 11.5 * 3600)

    def replace(src: Any, dst: Any) -> None:
        if cores and broken[0] <= cores[-1].clock.now() < broken[1]:
            raise OSError(28, os.strerror(28))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    bars = sim_day[: 2 * 13 * 60]  # 13 hours
    outcome = assert_same_run(_listed(bars), tmp_path, durable=True, setup=cores.append)
    healths = [e[4].get("healthy") for e in reversed(outcome.events) if e[1] == "store"]
    assert healths == [False, True], healths
    assert outcome.trades


def _random_config(rng: random.Random) -> Config:
    """A random mix of the keys the batch run's proofs lean on, each in its valid range."""
    tiers = sorted(rng.sample([0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0], 4))
    trend = rng.choice([0.3, 0.45, 0.5, 0.55, 0.7])
    start_h = rng.randrange(0, 24)
    enter_pf = rng.choice([0.5, 0.8, 2.0])
    return _with(
        exits={
            "force_hold_min": rng.choice([0.0, 1.0, 3.0, 45.0, 600.0]),
            "stop_pct": rng.choice([0.0, 0.05, 0.3, 1.0, 3.0, 50.0]),
            "tiers_pct": tiers,
            "tier_fraction": rng.choice([0.0, 0.1, 0.25, 0.5, 1.0]),
        },
        hurst={
            "trend_above": trend,
            "noise_below": rng.choice([x for x in (0.05, 0.2, 0.3, 0.45, 0.5) if x <= trend]),
            "confirm_bars": rng.choice([1, 2, 5]),
            "window": rng.choice([20, 50, 100]),
        },
        strategy={
            "ofi_threshold": rng.choice([0.0, 0.05, 0.15, 0.4]),
            "ofi_bars": rng.choice([1, 3, 5, 20]),
            "max_signal_age_s": rng.choice([0.0, 60.0, 180.0]),
        },
        gates={
            "golden_hour_start": f"{start_h:02d}:00",
            "golden_hour_end": f"{(start_h + rng.choice([1, 7, 23])) % 24:02d}:30",
            "max_positions": rng.choice([1, 2, 5]),
            "fee_bps": rng.choice([0.0, 2.0, 5.0, 20.0]),
        },
        learning={
            "interval_h": rng.choice([0.1, 0.5, 1.0, 4.0]),
            "min_trades": rng.choice([1, 5]),
            "probation_enter_pf": enter_pf,
            "probation_exit_pf": rng.choice([x for x in (1.0, 2.0, 3.0) if x >= enter_pf]),
            "lookback_h": rng.choice([1.0, 24.0]),
        },
        ui={"chart_bars": rng.choice([10, 240])},
    )


@pytest.mark.long
@pytest.mark.parametrize("seed", range(40))
def test_random_variant_configs_trade_the_same(seed: int, tmp_path: Path) -> None:
    """A random config on a simulated day with random holes, duplicates and a late start."""
    rng = random.Random(seed)
    bars = _sim(1.0, seed=seed, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    late = DEFAULT_START_MS + rng.randrange(0, 600) * MINUTE_MS
    drop = rng.choice([0.0, 0.02, 0.1])
    shaped: list[Bar] = []
    for bar in bars:
        if rng.random() < drop or (bar.symbol == "SOLUSDT" and bar.open_ms < late):
            continue
        shaped.append(bar)
        if rng.random() < 0.005:
            shaped.append(bar)  # a duplicate: rejected
    config = _random_config(rng)
    assert_same_run(_listed(shaped), tmp_path, config, record_blocks=seed % 2 == 1)


def test_a_command_queued_at_the_last_bar_is_left_queued_alike(
    sim_day: list[Bar], tmp_path: Path
) -> None:
    """The streaming loop applies a queued command before the next bar: queued at the last
    bar (here by an observer of that bar's rejection), it is never applied by the run."""
    bars = [*sim_day[:500], sim_day[498]]  # the last: a duplicate, rejected

    def pauser(core: Core) -> None:
        def on_event(event: Event) -> None:
            if event.kind == "bar_rejected":
                core.submit(Command(CommandKind.PAUSE))  # in the step: queued

        core.observers.append(on_event)

    outcome = assert_same_run(_listed(bars), tmp_path, setup=pauser)
    assert outcome.snapshot["rejected"]
    assert not [e for e in outcome.events if e[1] == "command"]


def test_a_clock_started_after_the_first_bars_trades_the_same(
    sim_day: list[Bar], tmp_path: Path
) -> None:
    """A clock that stands later than the data's first bars (it never goes back): their
    signals are too old to act on (`max_signal_age_s`) until the bars catch the clock up,
    on both paths, blocks decided without a `Signal` included."""
    start_s = sim_day[0].open_ms / 1000.0 + 5 * 3600.0

    def late(clock: Any) -> ListSource:
        clock.advance_to(start_s)
        return ListSource(sim_day, clock)

    outcome = assert_same_run(late, tmp_path, Config(), record_blocks=False)
    assert outcome.trades
    entries = [e for e in outcome.events if e[1] == "entry"]
    # the first entries: from signals at most `max_signal_age_s` older than the clock
    oldest_s = start_s - Config().strategy.max_signal_age_s
    assert entries and oldest_s <= min(e[0] for e in entries) < start_s + 3600.0
