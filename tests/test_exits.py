"""Exit rules: the ladder, the emergency stop, stop-first intrabar, gaps, and force-hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from trading_helpers import (
    T0_MS,
    feed,
    make_bar,
    make_loop,
    signal_bar,
    warm_bars,
)

from bigalpha_tui.core.config import ExitConfig
from bigalpha_tui.core.exits import ExitMode, bar_exits, exit_mode, open_trigger
from bigalpha_tui.core.positions import ExitLeg, Position
from bigalpha_tui.core.trades import Ledger
from bigalpha_tui.core.trading import TradingLoop
from bigalpha_tui.core.trading_view import position_view
from bigalpha_tui.core.types import Conviction, ExitReason, Regime, Side

CFG = ExitConfig()
T = ExitReason


def position(
    side: Side = Side.LONG,
    *,
    taken: tuple[ExitReason, ...] = (),
    hold_until_s: float | None = None,
    released: bool = False,
    close_requested: bool = False,
) -> Position:
    legs = tuple(ExitLeg(r, 1.0, 100.0, 0.0, 0.0) for r in taken)
    return Position(
        id="p",
        ledger=Ledger.LIVE,
        strategy="Alpha-OFI",
        symbol="BTCUSDT",
        side=side,
        original_qty=4.0,
        entry_price=100.0,
        entry_s=0.0,
        entry_fee_usd=0.0,
        conviction=Conviction.NORMAL,
        entry_regime=Regime.TRUE_TREND if hold_until_s else Regime.RANDOM,
        size_multiplier=1.0,
        golden_hour_entry=True,
        force_hold_until_s=hold_until_s,
        released_to_ladder=released,
        exits=legs,
        close_requested=close_requested,
    )


def exits(pos: Position, mode: ExitMode = ExitMode.LADDER, **bar_kwargs: float):  # type: ignore[no-untyped-def]
    bar_kwargs.setdefault("open", 100.0)
    close = bar_kwargs.pop("close", 100.0)
    return [
        (t.reason, t.qty, t.price)
        for t in bar_exits(pos, make_bar(0, close, **bar_kwargs), mode, CFG)
    ]


# -- ladder and stop ---------------------------------------------------------------------


def test_t1_closes_a_quarter_of_the_original_size() -> None:
    assert exits(position(), high=100.5) == [(T.T1, 1.0, pytest.approx(100.5))]


def test_t2_closes_a_quarter_of_the_original_not_of_what_is_left() -> None:
    assert exits(position(taken=(T.T1,)), high=101.0) == [(T.T2, 1.0, pytest.approx(101.0))]


def test_a_bar_through_t1_and_t2_takes_both_in_order() -> None:
    got = exits(position(), high=101.2)
    assert [r for r, _, _ in got] == [T.T1, T.T2]


def test_a_touch_below_t1_takes_nothing() -> None:
    assert exits(position(), high=100.49) == []


def test_t4_closes_whatever_is_left() -> None:
    got = exits(position(taken=(T.T1, T.T2, T.T3)), high=102.0)
    assert got == [(T.T4, 1.0, pytest.approx(102.0))]


def test_emergency_stop_closes_everything() -> None:
    assert exits(position(taken=(T.T1,)), low=99.0) == [(T.STOP, 3.0, pytest.approx(99.0))]


def test_stop_first_when_one_bar_crosses_the_stop_and_t4() -> None:
    assert exits(position(), low=98.9, high=102.5) == [(T.STOP, 4.0, pytest.approx(99.0))]


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    assert exits(position(), open=98.5, close=98.7) == [(T.STOP, 4.0, 98.5)]


def test_a_gap_through_a_tier_fills_at_the_open() -> None:
    assert exits(position(), open=100.7, close=100.7) == [(T.T1, 1.0, 100.7)]


def test_a_short_stops_above_entry_and_takes_profit_below() -> None:
    short = position(Side.SHORT)
    assert exits(short, low=99.5) == [(T.T1, 1.0, pytest.approx(99.5))]
    assert exits(short, high=101.0) == [(T.STOP, 4.0, pytest.approx(101.0))]


# -- force-hold (pure) -------------------------------------------------------------------


def test_force_hold_ignores_a_t1_touch() -> None:
    assert exits(position(hold_until_s=2700.0), ExitMode.FORCE_HOLD, high=101.9) == []


def test_force_hold_exits_the_whole_position_at_t4() -> None:
    got = exits(position(hold_until_s=2700.0), ExitMode.FORCE_HOLD, high=102.0)
    assert got == [(T.T4, 4.0, pytest.approx(102.0))]


def test_force_hold_never_vetoes_the_stop() -> None:
    got = exits(position(hold_until_s=2700.0), ExitMode.FORCE_HOLD, low=98.0, high=102.5)
    assert got == [(T.STOP, 4.0, pytest.approx(99.0))]


def test_exit_mode_follows_the_deadline_and_the_live_regime() -> None:
    held = position(hold_until_s=2700.0)
    assert exit_mode(held, 2699.0, Regime.RANDOM) is ExitMode.FORCE_HOLD
    assert exit_mode(held, 2700.0, Regime.TRUE_TREND) is ExitMode.T4_STOP_ONLY
    assert exit_mode(held, 2700.0, Regime.RANDOM) is ExitMode.LADDER
    assert exit_mode(position(), 0.0, Regime.TRUE_TREND) is ExitMode.LADDER


def test_a_release_to_the_ladder_is_for_good() -> None:
    released = position(hold_until_s=2700.0, released=True)
    assert exit_mode(released, 9000.0, Regime.TRUE_TREND) is ExitMode.LADDER


def test_an_operator_close_fills_at_the_next_open() -> None:
    trigger = open_trigger(position(close_requested=True), make_bar(0, 100.3, open=100.2), CFG)
    assert trigger is not None and (trigger.reason, trigger.price) == (T.MANUAL, 100.2)


def test_an_operator_close_in_flight_never_hides_a_stop() -> None:
    trigger = open_trigger(position(close_requested=True), make_bar(0, 98.0, open=98.5), CFG)
    assert trigger is not None and trigger.reason is T.STOP


# -- force-hold through the trading loop (hand-made bars, simulated clock) ---------------

FILL_MINUTE = 15  # warm bars 0-13, signal at 14, the order fills at 15's open
HOLD_END_MINUTE = FILL_MINUTE + 45


def open_long(tmp: Path, regime: Regime) -> TradingLoop:
    loop = make_loop(tmp)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG)], regime=regime)
    feed(loop, [make_bar(FILL_MINUTE, 100.0)], regime=regime)
    assert loop.live["BTCUSDT"].entry_price == 100.0
    return loop


def flat(minute: int, **kwargs: float) -> object:
    return make_bar(minute, kwargs.pop("close", 100.0), open=100.0, **kwargs)


def test_a_t1_touch_is_ignored_in_a_trend(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.TRUE_TREND)
    feed(loop, [flat(20, high=100.6)], regime=Regime.TRUE_TREND)
    assert loop.live["BTCUSDT"].exits == ()


def test_the_same_t1_touch_is_taken_outside_a_trend(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.RANDOM)
    feed(loop, [flat(20, high=100.6)], regime=Regime.RANDOM)
    assert loop.live["BTCUSDT"].tiers_taken == (T.T1,)


def test_force_hold_counts_down_45_minutes_from_the_fill(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.TRUE_TREND)
    fill_s = T0_MS / 1000 + FILL_MINUTE * 60
    assert loop.live["BTCUSDT"].force_hold_until_s == fill_s + 45 * 60
    view = position_view(loop, loop.live["BTCUSDT"], fill_s + 600)
    assert view.force_hold_left_s(fill_s + 600) == 35 * 60
    assert view.exit_mode == "force-hold"


def test_force_hold_expiry_in_a_trend_keeps_t4_and_stop_only(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.TRUE_TREND)
    feed(loop, [flat(m) for m in range(16, HOLD_END_MINUTE)], regime=Regime.TRUE_TREND)
    feed(loop, [flat(HOLD_END_MINUTE, high=101.6)], regime=Regime.TRUE_TREND)
    position = loop.live["BTCUSDT"]
    assert position.exits == () and not position.released_to_ladder
    assert position_view(loop, position, (T0_MS / 1000) + 3700).exit_mode == "T4/stop only"
    feed(loop, [flat(HOLD_END_MINUTE + 1, high=102.0)], regime=Regime.TRUE_TREND)
    assert "BTCUSDT" not in loop.live
    assert loop.closed_live[-1].exit_reasons == (T.T4,)


def test_force_hold_expiry_out_of_trend_returns_to_the_ladder(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.TRUE_TREND)
    feed(loop, [flat(m) for m in range(16, HOLD_END_MINUTE)], regime=Regime.RANDOM)
    feed(loop, [flat(HOLD_END_MINUTE, high=100.6)], regime=Regime.TRUE_TREND)
    position = loop.live["BTCUSDT"]
    assert position.released_to_ladder
    assert position.tiers_taken == (T.T1,)


def test_the_last_bar_of_the_hold_still_ignores_t1(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.TRUE_TREND)
    feed(loop, [flat(m) for m in range(16, HOLD_END_MINUTE - 1)], regime=Regime.RANDOM)
    feed(loop, [flat(HOLD_END_MINUTE - 1, high=100.6)], regime=Regime.RANDOM)
    assert loop.live["BTCUSDT"].exits == ()


def test_the_stop_works_inside_the_force_hold(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.TRUE_TREND)
    feed(loop, [flat(16, low=98.9)], regime=Regime.TRUE_TREND)
    assert loop.closed_live[-1].exit_reasons == (T.STOP,)


def test_exits_run_while_paused_and_outside_the_golden_hour(tmp_path: Path) -> None:
    loop = open_long(tmp_path, Regime.RANDOM)
    night = T0_MS + 8 * 3_600_000  # 18:00 UTC
    bar = make_bar(0, 100.0, open=100.0, low=98.9, start_ms=night)
    feed(loop, [bar], paused=True)
    assert loop.closed_live[-1].exit_reasons == (T.STOP,)
