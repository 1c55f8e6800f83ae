"""The figures the main screen's session line and the positions table draw, as the core
computes them: trades, win rate, live and shadow PF with their counts, fees, today's P&L;
and each open position's money, stop and next take-profit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from learning_helpers import NOW_S, trade
from trading_helpers import (
    SYMBOL,
    T0_MS,
    ListSource,
    feed,
    make_bar,
    make_loop,
    quiet_config,
    signal_bar,
    warm_bars,
)

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.trades import Ledger
from bigalpha_tui.core.trading_view import SessionTally, day_start_s, position_view
from bigalpha_tui.core.types import ExitReason, Regime, Side, WhaleDirection

DAY_S = 86_400.0


def run_core(tmp: Path, bars: list, clock: SimClock | None = None) -> Core:  # type: ignore[type-arg]
    clock = clock or SimClock(T0_MS / 1000)
    core = Core(quiet_config(), ListSource(bars), clock, Store(tmp))
    for bar in bars:
        clock.advance_to(bar.close_s)
        core.process_bar(bar)
    return core


def stopped_out_bars() -> list:  # type: ignore[type-arg]
    """A long that fills at 100 and hits the -1 % stop on the next bar (its twin too)."""
    return [
        *warm_bars(),
        signal_bar(14, Side.LONG),
        make_bar(15, 100.0),
        make_bar(16, 100.0, open=100.0, low=98.9),
    ]


def test_a_closed_trade_shows_in_the_session_and_today(tmp_path: Path) -> None:
    core = run_core(tmp_path, stopped_out_bars())
    assert core.trading is not None
    (live,) = core.trading.closed_live
    session = core.snapshot().session
    assert (session.trades, session.wins, session.win_rate) == (1, 0, 0.0)
    assert session.live_pf == 0.0  # a loss and no profit
    assert session.shadow_trades == 1 and session.shadow_pf == 0.0  # its twin stopped too
    assert session.fees_usd == pytest.approx(live.fees_usd) and live.fees_usd > 0
    assert session.pnl_usd == pytest.approx(live.pnl_usd) and live.pnl_usd < 0
    assert (session.today_trades, session.today_pnl_usd) == (1, pytest.approx(live.pnl_usd))
    assert session.day_start_s == day_start_s(core.clock.now())
    assert session.started_s == T0_MS / 1000


def test_a_restart_starts_a_new_session_but_keeps_todays_pnl(tmp_path: Path) -> None:
    first = run_core(tmp_path, stopped_out_bars())
    first.checkpoint()
    assert first.trading is not None
    (live,) = first.trading.closed_live
    clock = SimClock(first.clock.now())
    again = Core(quiet_config(), ListSource([]), clock, Store(tmp_path))
    session = again.snapshot().session
    assert session.trades == 0 and session.live_pf is None and session.fees_usd == 0.0
    assert session.today_trades == 1 and session.today_pnl_usd == pytest.approx(live.pnl_usd)
    clock.advance_to(day_start_s(clock.now()) + DAY_S)  # the next market day, 00:00 UTC
    again.process_bar(make_bar(17, 100.0))  # (a bar rebuilds the snapshot)
    assert again.snapshot().session.today_trades == 0
    assert again.snapshot().session.today_pnl_usd == 0.0


def test_the_tally_counts_live_and_shadow_apart_and_leaves_blocked_twins_out() -> None:
    tally = SessionTally(NOW_S)
    for pnl in (30.0, -10.0, 5.0, -5.0):
        tally.note(trade(pnl))
    for pnl in (40.0, -10.0):
        tally.note(trade(pnl, ledger=Ledger.SHADOW))
    tally.note(trade(-100.0, ledger=Ledger.BLOCKED))  # the guards' business
    view = tally.session_part()
    assert (view.trades, view.wins, view.win_rate) == (4, 2, 0.5)
    assert view.live_pf == pytest.approx(35.0 / 15.0)
    assert (view.shadow_trades, view.shadow_pf) == (2, pytest.approx(4.0))
    assert view.fees_usd == pytest.approx(0.4)  # 0.1 per live trade
    assert view.pnl_usd == pytest.approx(20.0)
    tally.note(trade(1.0))
    assert tally.session_part().trades == 5  # a new trade is counted, not a stale view


def test_no_loss_is_an_infinite_profit_factor_and_no_trade_none() -> None:
    tally = SessionTally(NOW_S)
    assert tally.session_part().live_pf is None and tally.session_part().win_rate is None
    tally.note(trade(2.0))
    assert math.isinf(tally.session_part().live_pf or 0.0)


# -- positions: money, stop, next take-profit ------------------------------------------------


def test_a_ladder_position_waits_for_its_next_tier_and_shows_its_money(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0, open=100.0)])
    now = loop.clock.now()
    view = position_view(loop, loop.live[SYMBOL], now)
    assert view.next_tier is ExitReason.T1 and view.next_tier_price == pytest.approx(100.5)
    assert view.stop_price == pytest.approx(99.0)
    feed(loop, [make_bar(16, 100.3, open=100.0, high=100.6)])  # T1 (+0.5 %) taken
    view = position_view(loop, loop.live[SYMBOL], now)
    assert view.tiers_taken == (ExitReason.T1,)
    assert view.next_tier is ExitReason.T2 and view.next_tier_price == pytest.approx(101.0)
    # money on the open size (three quarters left), before the exit fee
    assert view.unrealised_usd == pytest.approx(view.qty * 0.3)
    assert view.qty == pytest.approx(0.75 * view.original_qty)


def test_a_force_held_position_waits_for_t4_only(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    bars = [*warm_bars(), signal_bar(14, Side.SHORT)]
    feed(loop, bars, whale=WhaleDirection.SELL, retail_ofi=-0.2, regime=Regime.TRUE_TREND)
    feed(loop, [make_bar(15, 100.0, open=100.0)], regime=Regime.TRUE_TREND)
    position = loop.live[SYMBOL]
    view = position_view(loop, position, loop.clock.now())
    assert view.exit_mode == "force-hold"
    assert view.next_tier is ExitReason.T4 and view.next_tier_price == pytest.approx(98.0)
    assert view.stop_price == pytest.approx(101.0)
