"""Frozen cockpits for the UI tests: no timers that matter, no live clock, no running loop.

- `fed_core`: a real core fed a fixed number of simulator minutes synchronously through
  `process_bar`, on a simulated clock that only moves when we move it and a wall clock that
  never moves (the heartbeat age is wall time).
- `fixture_snapshot`: a hand-made snapshot with positions, probation rows, guard blocks and
  events, so every widget has content before the trading and learning code lands, and so the
  main-screen pictures do not change when the simulator or the estimators are tuned.
- `cockpit`: the app over either, with the core loop not running and the wall clock frozen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from types import MappingProxyType

from fast_disk import no_fsync

from bigalpha_tui.app import CockpitApp
from bigalpha_tui.core import book as book_mod
from bigalpha_tui.core.book import Book
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.flow import FlowState
from bigalpha_tui.core.hurst import HurstReading
from bigalpha_tui.core.snapshot import (
    Event,
    GuardBlockView,
    GuardStatsView,
    Heartbeat,
    LearningView,
    PositionView,
    SessionView,
    Snapshot,
    SymbolView,
)
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, SimSource, simulate_minutes
from bigalpha_tui.core.store import LIVE_OUTCOMES, POSITIONS, SHADOW_OUTCOMES, Store
from bigalpha_tui.core.trades import ClosedTrade, Ledger
from bigalpha_tui.core.types import (
    BlockReason,
    Conviction,
    ExitReason,
    Regime,
    Side,
    SourceState,
    SymbolState,
    WhaleDirection,
)

START_S = DEFAULT_START_MS / 1000.0  # 2026-01-05 08:30 UTC
#: wall time frozen for heartbeats and the app (any fixed instant works)
FROZEN_WALL_S = 1_767_600_000.0
HEARTBEAT_AGE_S = 3.0
FED_MINUTES = 150


class FrozenWallClock(SimClock):
    """A manual simulated clock whose wall time never moves."""

    def __init__(self, start: float, wall_s: float = FROZEN_WALL_S) -> None:
        super().__init__(start, None)
        self.wall_s = wall_s

    def wall(self) -> float:
        return self.wall_s


def fed_core(
    data_dir: Path,
    minutes: int = FED_MINUTES,
    *,
    read_only: bool = False,
    config: Config | None = None,
) -> Core:
    """A core that has processed `minutes` simulator minutes, synchronously, wired like
    `runtime.build` wires it."""
    config = config or Config()
    clock = FrozenWallClock(START_S)
    source = SimSource(clock, symbols=config.source.symbols, seed=config.source.seed)
    core = Core(config, source, clock, Store(data_dir), read_only=read_only)
    minutes_iter = simulate_minutes(
        source.symbols, config.source.seed, DEFAULT_START_MS, SimParams()
    )
    with no_fsync():  # the store still writes every file; only the flush is skipped
        for minute in islice(minutes_iter, minutes):
            for bar in minute:
                core.process_bar(bar)
            clock.advance_to(minute[0].close_s)
    return core


def wall_clock() -> float:
    return FROZEN_WALL_S + HEARTBEAT_AGE_S


def cockpit(
    core: Core,
    snapshot: Snapshot | None = None,
    *,
    wall: Callable[[], float] = wall_clock,
) -> CockpitApp:
    """The app for tests: loop not running, wall clock frozen, no animations."""
    app = CockpitApp(
        core,
        run_core=False,
        wall_clock=wall,
        snapshot_source=(lambda: snapshot) if snapshot is not None else None,
    )
    app.animation_level = "none"
    return app


# -- the hand-made snapshot ------------------------------------------------------------------


def _wave(
    n: int, centre: float, amplitude: float, period: float, phase: float
) -> tuple[float, ...]:
    return tuple(
        round(centre + amplitude * math.sin(2 * math.pi * i / period + phase), 4) for i in range(n)
    )


def _flow(
    symbol: str, intensity: float, direction: WhaleDirection, cvd: float, **kw: float
) -> FlowState:
    return FlowState(
        symbol=symbol,
        cvd=cvd,
        whale_cvd=kw.get("whale_cvd", cvd * 0.7),
        retail_ofi=kw.get("ofi", 0.04),
        intensity=intensity,
        direction=direction,
        window_bars=int(kw.get("window_bars", 60)),
        whale_bars=3,
        cross_buy_ratio=kw.get("cross"),  # type: ignore[arg-type]
    )


def _hurst(
    h: float | None, regime: Regime, raw: Regime | None = None, sign: int = 1
) -> HurstReading:
    return HurstReading(
        h=h,
        band=0.07,
        raw_regime=raw or regime,
        regime=regime,
        trend_sign=sign,
        returns_seen=100 if h is not None else 42,
    )


def fixture_snapshot(now_s: float = START_S + 4 * 3600) -> Snapshot:
    """12:30 UTC on the sim's first day, mid golden hour, with something in every panel."""
    symbols = (
        SymbolView(
            "BTCUSDT",
            94_871.3,
            _flow("BTCUSDT", 72.4, WhaleDirection.BUY, 2_697.3, ofi=0.12, cross=0.58),
            _hurst(0.62, Regime.TRUE_TREND, sign=1),
            _wave(120, 0.60, 0.07, 40, 0.0),
            golden_pf=1.84,
            golden_trades=9,
            slippage_buffer_bps=2.0,
        ),
        SymbolView(
            "ETHUSDT",
            3_198.42,
            _flow("ETHUSDT", 44.9, WhaleDirection.SELL, -18_450.0, ofi=-0.07),
            _hurst(0.51, Regime.RANDOM, raw=Regime.NOISE, sign=-1),
            _wave(120, 0.50, 0.06, 30, 1.0),
            golden_pf=1.02,
            golden_trades=6,
            slippage_buffer_bps=4.0,
        ),
        SymbolView(
            "SOLUSDT",
            137.912,
            _flow("SOLUSDT", 12.0, WhaleDirection.NEUTRAL, 4_435.0, ofi=0.01),
            _hurst(0.38, Regime.NOISE, sign=1),
            _wave(120, 0.40, 0.05, 25, 2.0),
            state=SymbolState.PROBATION,
            golden_pf=0.62,
            golden_trades=7,
            size_cap=0.2,
            slippage_buffer_bps=6.0,
            state_changed_s=now_s - 2 * 3600,
            state_reason="GH PF 0.62 < 0.80 over 7 trades",
        ),
        SymbolView(
            "AVAXUSDT",
            14.2368,
            _flow("AVAXUSDT", 63.0, WhaleDirection.SELL, -116_000.0, ofi=-0.21),
            _hurst(0.57, Regime.TRUE_TREND, sign=-1),
            _wave(120, 0.55, 0.09, 60, 0.5),
            golden_pf=math.inf,
            golden_trades=5,
            slippage_buffer_bps=2.0,
        ),
        SymbolView(
            "LINKUSDT",
            13.5726,
            _flow("LINKUSDT", 31.5, WhaleDirection.BUY, 3_235.0, ofi=0.05),
            _hurst(0.47, Regime.RANDOM, sign=1),
            _wave(120, 0.48, 0.04, 35, 3.0),
            state=SymbolState.PROBATION,
            golden_pf=None,
            golden_trades=0,
            size_cap=0.2,
            slippage_buffer_bps=8.0,
            state_changed_s=now_s - 5400,
            state_reason="restored from the store",
        ),
        SymbolView(
            "DOTUSDT",
            2.2470,
            _flow("DOTUSDT", 0.0, WhaleDirection.NEUTRAL, 935_100.0, window_bars=42),
            _hurst(None, Regime.WARMING),
            (),
            slippage_buffer_bps=2.0,
        ),
    )
    positions = (
        PositionView(
            "p-1",
            "BTCUSDT",
            Side.LONG,
            0.0026,
            0.0026,
            94_120.5,
            94_871.3,
            0.80,
            1.95,
            (),
            Conviction.ULTRA,
            Regime.TRUE_TREND,
            now_s - 32 * 60 - 26,
            now_s + 12 * 60 + 34,
            "T4/stop only",
            stop_price=93_179.3,
            next_tier=ExitReason.T4,
            next_tier_price=96_002.91,
        ),
        PositionView(
            "p-2",
            "AVAXUSDT",
            Side.SHORT,
            5.27,
            10.54,
            14.3310,
            14.2368,
            0.66,
            0.50,
            (ExitReason.T1,),
            Conviction.HIGH,
            Regime.NOISE,
            now_s - 95 * 60,
            None,
            "ladder",
            stop_price=14.4743,
            next_tier=ExitReason.T2,
            next_tier_price=14.18769,
        ),
        PositionView(
            "p-3",
            "ETHUSDT",
            Side.LONG,
            0.0312,
            0.0312,
            3_210.10,
            3_198.42,
            -0.36,
            -0.36,
            (),
            Conviction.NORMAL,
            Regime.TRUE_TREND,
            now_s - 50 * 60,
            now_s - 5 * 60,
            "T4/stop only",
            stop_price=3_177.999,
            next_tier=ExitReason.T4,
            next_tier_price=3_274.302,
        ),
    )
    blocks_spec = (
        (40, "ETHUSDT", Side.LONG, BlockReason.WHALE_CONFLICT, "whales SELL 45 vs long"),
        (180, "SOLUSDT", Side.SHORT, BlockReason.FEE_EDGE, "edge 9.1 < 16.0 bps"),
        (420, "LINKUSDT", Side.LONG, BlockReason.WHALE_CONFLICT, "whales SELL 38 vs long"),
        (900, "DOTUSDT", Side.SHORT, BlockReason.MAX_POSITIONS, "5 open"),
        (1500, "BTCUSDT", Side.LONG, BlockReason.PAUSED, "paused by operator"),
        (3700, "AVAXUSDT", Side.SHORT, BlockReason.FEE_EDGE, "edge 11.2 < 14.0 bps"),
        (4 * 3600 - 60, "SOLUSDT", Side.LONG, BlockReason.GOLDEN_HOUR, "08:59 UTC"),
    )
    guard_log = tuple(
        GuardBlockView(now_s - ago, sym, side, reason, detail)
        for ago, sym, side, reason, detail in blocks_spec
    )
    guard_stats = (
        GuardStatsView(BlockReason.PAUSED, 1, 0, 0.85, 1),
        GuardStatsView(BlockReason.GOLDEN_HOUR, 14, 0, -3.10, 3),
        GuardStatsView(BlockReason.MAX_POSITIONS, 1, 1, 0.0, 0),
        GuardStatsView(BlockReason.FEE_EDGE, 6, 1, 2.40, 2),
        GuardStatsView(BlockReason.WHALE_CONFLICT, 9, 0, -31.75, 4),
    )
    events = tuple(
        Event(now_s - ago, kind, sym, msg, MappingProxyType(data))
        for ago, kind, sym, msg, data in (
            (40, "block", "ETHUSDT", "long blocked: WHALE_CONFLICT", {}),
            (300, "command", "", "guard FEE_EDGE switched OFF", {"ok": True}),
            (600, "exit", "AVAXUSDT", "T1 hit: closed 5.27 at 14.2594", {}),
            (900, "command", "SOLUSDT", "release SOLUSDT: refused: not available", {"ok": False}),
            (1900, "regime", "BTCUSDT", "regime RANDOM -> TRUE TREND (H = 0.58)", {}),
            (2000, "entry", "BTCUSDT", "LONG 0.0026 at 94,120.5 (ULTRA, force-hold 45m)", {}),
        )
    )
    return Snapshot(
        heartbeat=Heartbeat(now_s, FROZEN_WALL_S, 1440),
        source=SourceHealth("sim", SourceState.OK, last_ok_s=now_s, detail="seed 7, 6 symbols"),
        symbols=symbols,
        positions=positions,
        guard_log=guard_log,
        guard_stats=guard_stats,
        guards_enabled=MappingProxyType(
            {
                BlockReason.MAX_POSITIONS: True,
                BlockReason.FEE_EDGE: False,
                BlockReason.WHALE_CONFLICT: True,
            }
        ),
        paused=False,
        golden_hour_open=True,
        golden_hour_next_change_s=START_S + 7.5 * 3600,
        realised_pnl_usd=14.62,
        unrealised_pnl_usd=2.09,
        closed_trades=11,
        session=SessionView(
            started_s=START_S,
            trades=11,
            wins=7,
            live_pf=1.84,
            shadow_trades=10,
            shadow_pf=2.31,
            fees_usd=3.20,
            pnl_usd=14.62,
            day_start_s=START_S - 8.5 * 3600,
            today_trades=11,
            today_pnl_usd=14.62,
        ),
        learning=LearningView(now_s - 30 * 60, now_s + 3.5 * 3600, "2 judged, 1 on probation", 3),
        events=events,
    )


def fixture_core(data_dir: Path, *, read_only: bool = False) -> Core:
    """A core whose clock stands at the fixture's market time (for countdowns)."""
    core = fed_core(data_dir, minutes=0, read_only=read_only)
    assert isinstance(core.clock, SimClock)
    core.clock.advance_to(START_S + 4 * 3600)
    return core


# -- the journal's store ---------------------------------------------------------------------

HOUR_S = 3600.0


def _trade(
    id: str,
    symbol: str,
    side: Side,
    entry_s: float,
    hold_min: float,
    pnl_usd: float,
    exits: tuple[ExitReason, ...],
    *,
    ledger: Ledger = Ledger.LIVE,
    twin_of: str | None = None,
    price: float = 100.0,
    conviction: Conviction = Conviction.HIGH,
    regime: Regime = Regime.RANDOM,
) -> ClosedTrade:
    return ClosedTrade(
        id=id,
        ledger=ledger,
        strategy="alpha_ofi",
        symbol=symbol,
        side=side,
        entry_s=entry_s,
        exit_s=entry_s + hold_min * 60.0,
        entry_price=price,
        exit_price=price * (1 + pnl_usd / 1000.0),
        qty=10.0 / price * 100.0,
        fees_usd=0.0 if ledger is Ledger.SHADOW else 0.8,
        pnl_usd=pnl_usd,
        conviction=conviction,
        entry_regime=regime,
        exit_reasons=exits,
        golden_hour_entry=True,
        twin_of=twin_of,
        force_held=regime is Regime.TRUE_TREND,
    )


def journal_trades(now_s: float = START_S + 4 * HOUR_S) -> tuple[list[ClosedTrade], ...]:
    """(only in the live log: closed before this start's history window; in both the log
    and positions_futures.json; only in positions_futures.json: written before the log
    existed; the shadow log: twins and one blocked twin)."""
    t1, t2, t3 = ExitReason.T1, ExitReason.T2, ExitReason.T3
    stop, manual, t4 = ExitReason.STOP, ExitReason.MANUAL, ExitReason.T4
    old = [
        _trade(
            "L-1",
            "BTCUSDT",
            Side.LONG,
            now_s - 50 * HOUR_S,
            95,
            6.4,
            (t1, t2, stop),
            price=94_000.0,
            conviction=Conviction.ULTRA,
            regime=Regime.TRUE_TREND,
        ),
        _trade("L-2", "ETHUSDT", Side.SHORT, now_s - 26 * HOUR_S, 14, -3.1, (stop,), price=3_200.0),
    ]
    both = [
        _trade(
            "L-3",
            "SOLUSDT",
            Side.LONG,
            now_s - 3 * HOUR_S,
            42,
            2.2,
            (t1, t2, t3, t4),
            price=140.0,
            conviction=Conviction.NORMAL,
            regime=Regime.NOISE,
        ),
        _trade("L-5", "AVAXUSDT", Side.LONG, now_s - 40 * 60, 25, -0.9, (t1, stop), price=14.2),
    ]
    pre_log = [
        _trade(
            "L-4", "BTCUSDT", Side.SHORT, now_s - 2 * HOUR_S, 30, 1.35, (manual,), price=94_300.0
        ),
    ]
    shadow = [
        _trade(
            "S-1",
            "BTCUSDT",
            Side.LONG,
            now_s - 50 * HOUR_S,
            95,
            7.9,
            (t1, t2, stop),
            ledger=Ledger.SHADOW,
            twin_of="L-1",
            price=94_000.0,
        ),
        _trade(
            "S-2",
            "ETHUSDT",
            Side.SHORT,
            now_s - 26 * HOUR_S,
            14,
            -2.5,
            (stop,),
            ledger=Ledger.SHADOW,
            twin_of="L-2",
            price=3_200.0,
        ),
        _trade(
            "S-3",
            "SOLUSDT",
            Side.LONG,
            now_s - 3 * HOUR_S,
            42,
            2.9,
            (t1, t2, t3, t4),
            ledger=Ledger.SHADOW,
            twin_of="L-3",
            price=140.0,
        ),
        _trade(
            "S-4",
            "BTCUSDT",
            Side.SHORT,
            now_s - 2 * HOUR_S,
            30,
            1.6,
            (manual,),
            ledger=Ledger.SHADOW,
            twin_of="L-4",
            price=94_300.0,
        ),
        _trade(
            "B-1",
            "SOLUSDT",
            Side.SHORT,
            now_s - 1 * HOUR_S,
            10,
            4.0,
            (t1,),
            ledger=Ledger.BLOCKED,
            price=140.0,
        ),
    ]
    return old, both, pre_log, shadow


def seed_journal(data_dir: Path) -> None:
    """A store with closed trades from before this start (see `journal_trades`)."""
    old, both, pre_log, shadow = journal_trades()
    store = Store(data_dir)
    for trade in [*old, *both]:
        store.append_jsonl(LIVE_OUTCOMES, trade.to_record())
    for trade in shadow:
        store.append_jsonl(SHADOW_OUTCOMES, trade.to_record())
    recent = sorted([*both, *pre_log], key=lambda t: t.exit_s)
    book = Book(
        closed_live=recent,
        closed_records=[t.to_record() for t in recent],
        realised_closed_usd=math.fsum(t.pnl_usd for t in recent),
        closed_count=len(recent),
    )
    store.write_json(POSITIONS, book_mod.encode(book))
