"""The figures the main screen's session line and the positions table draw, as the core
computes them: trades, win rate, live and shadow PF with their counts, fees, today's P&L;
and each open position's money, stop and next take-profit."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pytest
from learning_helpers import NOW_S, trade
from snapshot_fixtures import fixture_snapshot
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
from bigalpha_tui.core.snapshot import SessionView
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.trades import Ledger
from bigalpha_tui.core.trading_view import SessionTally, day_start_s, position_view
from bigalpha_tui.core.types import ExitReason, Regime, Side, WhaleDirection
from bigalpha_tui.widgets.session_figures import fit

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


def tier_taken_bars() -> list:  # type: ignore[type-arg]
    """A long that fills at 100 and takes T1 (+0.5 %) on the next bar, three quarters left."""
    return [
        *warm_bars(),
        signal_bar(14, Side.LONG),
        make_bar(15, 100.0, open=100.0),
        make_bar(16, 100.3, open=100.0, high=100.6),
    ]


def test_today_counts_a_tier_taken_today_and_the_trade_once_when_it_closes(
    tmp_path: Path,
) -> None:
    core = run_core(tmp_path, tier_taken_bars())
    assert core.trading is not None
    position = core.trading.book.live[SYMBOL]
    (leg,) = position.exits
    assert leg.reason is ExitReason.T1
    session = core.snapshot().session
    # money made today: the tier, net of its exit fee and its share of the entry fee, as the
    # exit event reports it; no trade has closed yet
    (event,) = [e for e in core.events if e.kind == "exit"]
    assert (
        session.today_pnl_usd == pytest.approx(event.data["pnl_usd"]) and event.data["pnl_usd"] > 0
    )
    assert session.today_pnl_usd == pytest.approx(position.leg_net_pnl_usd(leg))
    assert session.today_trades == 0
    stop = make_bar(17, 99.5, open=100.0, low=98.9)  # the rest stops out the same day
    assert isinstance(core.clock, SimClock)
    core.clock.advance_to(stop.close_s)
    core.process_bar(stop)
    (live,) = core.trading.closed_live
    session = core.snapshot().session
    # the whole trade, once, as the journal shows it (the tier inside it, not again beside it)
    assert session.today_trades == 1
    assert session.today_pnl_usd == pytest.approx(live.pnl_usd)


def test_a_tier_taken_before_midnight_is_not_todays(tmp_path: Path) -> None:
    core = run_core(tmp_path, tier_taken_bars())
    assert isinstance(core.clock, SimClock)
    core.clock.advance_to(day_start_s(core.clock.now()) + DAY_S + 60.0)
    core.changed()
    session = core.snapshot().session
    assert session.today_pnl_usd == 0.0 and session.today_trades == 0


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


# -- the line: the bot's figures, since it came up ---------------------------------------------


def line_at(view: SessionView, width: int) -> str:
    return "".join(text for text, _ in fit(view, width))


def test_after_a_restart_the_line_says_its_figures_count_from_the_bots_start(
    tmp_path: Path,
) -> None:
    first = run_core(tmp_path, stopped_out_bars())
    first.checkpoint()
    clock = SimClock(first.clock.now() + 3 * 3600)  # back three hours later
    again = Core(quiet_config(), ListSource([]), clock, Store(tmp_path))
    view = again.snapshot().session
    assert view.today_trades == 1 and view.trades == 0  # the day kept, a new count begun
    up = time.strftime("%H:%M", time.gmtime(clock.now()))
    assert f"Bot up since {up} · 0 trades" in line_at(view, 118)
    # at no width is it a "session" (which a restart would seem to have wiped)
    for width in (118, 98, 78, 58):
        assert "Session" not in line_at(view, width)


def test_the_line_names_the_bot_at_narrow_widths_and_dates_an_earlier_start() -> None:
    view = fixture_snapshot().session
    assert "Bot up since 08:30 · 64% won" in line_at(view, 98)
    for width in (78, 58):
        assert line_at(view, width).startswith("Today +$14.62 │ Bot 64% won · PF 1.84 (11)")
    assert view.day_start_s is not None
    yesterday = dataclasses.replace(view, started_s=view.day_start_s - 50 * 60)
    assert "Bot up since 01-04 23:10 · 11 trades" in line_at(yesterday, 118)
