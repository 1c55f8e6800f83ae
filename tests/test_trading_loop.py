"""The trading loop end to end: orders, blocks and their twins, guard report, snapshot, close."""

from __future__ import annotations

from pathlib import Path

import pytest
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
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.journal import read_journal
from bigalpha_tui.core.learning_store import read_ledgers
from bigalpha_tui.core.store import GUARD_BLOCKS, LIVE_OUTCOMES, SHADOW_OUTCOMES, Store
from bigalpha_tui.core.trades import Ledger
from bigalpha_tui.core.trading import TradingLoop
from bigalpha_tui.core.trading_view import guard_views
from bigalpha_tui.core.types import BlockReason, ExitReason, Regime, Side, WhaleDirection

NIGHT_MS = T0_MS + 8 * 3_600_000  # 18:00 UTC: outside the golden hour


def blocked_long(tmp: Path) -> TradingLoop:
    loop = make_loop(tmp, clock_s=NIGHT_MS / 1000)
    feed(loop, [*warm_bars(start_ms=NIGHT_MS), signal_bar(14, Side.LONG, start_ms=NIGHT_MS)])
    return loop


def night_bar(minute: int, **kwargs: float):  # type: ignore[no-untyped-def]
    return make_bar(minute, kwargs.pop("close", 100.0), open=100.0, start_ms=NIGHT_MS, **kwargs)


# -- blocks and blocked twins ------------------------------------------------------------


def test_a_blocked_signal_is_logged_and_followed_by_a_blocked_twin(tmp_path: Path) -> None:
    loop = blocked_long(tmp_path)
    (record,) = list(loop.store.iter_jsonl(GUARD_BLOCKS))
    assert record["reason"] == "GOLDEN_HOUR" and record["passed"] == ["PAUSED"]
    (twin,) = loop.twins.values()
    assert twin.ledger is Ledger.BLOCKED and twin.block_reason is BlockReason.GOLDEN_HOUR
    assert twin.entry_price == 100.0 and twin.id == record["twin_id"]
    assert not twin.golden_hour_entry
    assert loop.pending == {} and loop.live == {}
    stats = {s.reason: s for s in guard_views(loop.book)}
    assert stats[BlockReason.GOLDEN_HOUR].blocked == 1
    assert stats[BlockReason.GOLDEN_HOUR].open_twins == 1


def test_a_blocked_twin_that_would_have_won_is_a_positive_opportunity_cost(
    tmp_path: Path,
) -> None:
    loop = blocked_long(tmp_path)
    feed(loop, [night_bar(15, high=102.0)])
    (outcome,) = list(loop.store.iter_jsonl(SHADOW_OUTCOMES))
    assert outcome["ledger"] == "blocked" and outcome["block_reason"] == "GOLDEN_HOUR"
    assert outcome["exit_reasons"] == ["T1", "T2", "T3", "T4"]
    stats = {s.reason: s for s in guard_views(loop.book)}[BlockReason.GOLDEN_HOUR]
    assert stats.opportunity_cost_usd == pytest.approx(outcome["pnl_usd"])
    assert stats.opportunity_cost_usd > 0


def test_a_blocked_twin_that_would_have_lost_is_a_negative_opportunity_cost(
    tmp_path: Path,
) -> None:
    loop = blocked_long(tmp_path)
    feed(loop, [night_bar(15, low=98.5)])
    stats = {s.reason: s for s in guard_views(loop.book)}[BlockReason.GOLDEN_HOUR]
    qty = 50.0 / 100.0
    assert stats.opportunity_cost_usd == pytest.approx(qty * -1.0 - qty * (100 + 99) * 0.0005)


def test_every_blocked_signal_is_counted_and_logged_while_one_twin_follows_them(
    tmp_path: Path,
) -> None:
    loop = blocked_long(tmp_path)
    feed(loop, [signal_bar(m, Side.LONG, start_ms=NIGHT_MS) for m in (15, 16, 17)])
    records = list(loop.store.iter_jsonl(GUARD_BLOCKS))
    assert [r["reason"] for r in records] == ["GOLDEN_HOUR"] * 4
    assert [r["new_twin"] for r in records] == [True, False, False, False]
    assert {r["twin_id"] for r in records} == {records[0]["twin_id"]}
    assert len(loop.twins) == 1  # the same opportunity, followed once
    assert len(loop.book.guard_log) == 4
    stats = {s.reason: s for s in guard_views(loop.book)}[BlockReason.GOLDEN_HOUR]
    assert (stats.blocked, stats.open_twins) == (4, 1)


def test_an_open_twin_of_one_reason_does_not_silence_another_reason(tmp_path: Path) -> None:
    """A FEE_EDGE block on a symbol whose WHALE_CONFLICT twin is open is still counted
    (the guard report showed FEE_EDGE 0 where a re-run of the gates found 40)."""
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG)], whale=WhaleDirection.SELL)
    calm = [make_bar(15 + i, high=100.001, low=99.999) for i in range(14)]  # ATR ~0
    feed(loop, calm, whale=WhaleDirection.SELL)
    feed(loop, [signal_bar(29, Side.LONG, high=100.001, low=99.999)])
    reasons = [r["reason"] for r in loop.store.iter_jsonl(GUARD_BLOCKS)]
    assert set(reasons[:-1]) == {"WHALE_CONFLICT"} and reasons[-1] == "FEE_EDGE"
    assert sorted(t.block_reason.value for t in loop.twins.values() if t.block_reason) == [
        "FEE_EDGE",
        "WHALE_CONFLICT",
    ]


def test_a_blocked_short_gets_its_own_twin_beside_an_open_long_twin(tmp_path: Path) -> None:
    loop = blocked_long(tmp_path)
    feed(loop, [signal_bar(m, Side.SHORT, start_ms=NIGHT_MS) for m in (15, 16, 17, 18, 19, 20)])
    twins = sorted(t.side.value for t in loop.twins.values())
    assert twins == ["LONG", "SHORT"]


def test_a_new_twin_follows_once_the_previous_twin_has_closed(tmp_path: Path) -> None:
    loop = blocked_long(tmp_path)
    feed(loop, [night_bar(15, low=98.5), signal_bar(16, Side.LONG, start_ms=NIGHT_MS)])
    records = list(loop.store.iter_jsonl(GUARD_BLOCKS))
    # bar 15 stops the first twin out, then its own signal starts the next one
    assert [r["new_twin"] for r in records] == [True, True, False]
    assert [t.id for t in loop.twins.values()] == [records[1]["twin_id"]]


def test_whale_conflict_block_in_the_golden_hour_keeps_golden_hour_entry(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG)], whale=WhaleDirection.SELL)
    (twin,) = loop.twins.values()
    assert twin.block_reason is BlockReason.WHALE_CONFLICT and twin.golden_hour_entry


# -- entries -----------------------------------------------------------------------------


def test_a_passed_signal_fills_at_the_next_bar_open_with_its_twin(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG)])
    assert SYMBOL in loop.pending and loop.live == {}
    feed(loop, [make_bar(15, 100.1, open=100.05)])
    live = loop.live[SYMBOL]
    assert live.entry_price == 100.05 and live.golden_hour_entry
    assert [t.ledger for t in loop.twins.values()] == [Ledger.SHADOW]


def test_one_position_per_symbol(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    feed(loop, [signal_bar(16, Side.LONG), signal_bar(17, Side.SHORT)])
    assert loop.pending == {} and len(loop.live) == 1
    assert list(loop.store.iter_jsonl(GUARD_BLOCKS)) == []


def test_pending_orders_count_toward_max_positions(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    symbols = [f"S{i}USDT" for i in range(6)]
    for symbol in symbols:
        feed(loop, [*warm_bars(symbol=symbol), signal_bar(14, Side.LONG, symbol=symbol)])
    assert len(loop.pending) == 5
    (record,) = list(loop.store.iter_jsonl(GUARD_BLOCKS))
    assert record["reason"] == "MAX_POSITIONS" and record["symbol"] == "S5USDT"


def test_a_gap_after_the_signal_cancels_the_order(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    diluting = make_bar(17, 100.0, volume=100_000.0)  # balanced flow: OFI5 back under 0.15
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), diluting])
    assert loop.pending == {} and loop.live == {} and loop.twins == {}


def test_a_catch_up_bar_opens_no_entry(tmp_path: Path) -> None:
    loop = make_loop(tmp_path, clock_s=T0_MS / 1000 + 3600)  # an hour behind the clock
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG)])
    assert loop.pending == {} and list(loop.store.iter_jsonl(GUARD_BLOCKS)) == []


def test_trades_carry_size_and_conviction_from_the_decision(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    bars = [*warm_bars(), signal_bar(14, Side.LONG)]
    feed(loop, bars, whale=WhaleDirection.BUY, retail_ofi=0.2, regime=Regime.TRUE_TREND)
    feed(loop, [make_bar(15, 100.0)], regime=Regime.TRUE_TREND)
    live = loop.live[SYMBOL]
    assert live.conviction.value == "ULTRA" and live.size_multiplier == 2.5
    assert live.original_qty == pytest.approx(250.0 / 100.0)


def test_closed_trades_are_where_the_learning_loop_reads_them(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    feed(loop, [make_bar(16, 100.0, open=100.0, low=98.9)])
    ledgers = read_ledgers(loop.store)
    (live,) = ledgers.live
    (shadow,) = ledgers.shadow
    assert live.exit_reasons == (ExitReason.STOP,) and live.golden_hour_entry
    assert shadow.twin_of == live.id and shadow.golden_hour_entry


def test_every_closed_live_trade_is_appended_once_to_the_journal_log(tmp_path: Path) -> None:
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    feed(loop, [make_bar(16, 100.0, open=100.0, low=98.9)])
    (live,) = loop.closed_live
    assert [r["id"] for r in loop.store.iter_jsonl(LIVE_OUTCOMES)] == [live.id]
    (journal,) = read_journal(loop.store).entries
    assert journal.trade == live and journal.twin is not None
    loop.book.closed_live.clear()  # pruned from the book: the log still has it
    loop.book.closed_records.clear()
    loop.save()
    assert [e.trade.id for e in read_journal(loop.store).entries] == [live.id]
    again = make_loop(tmp_path)  # a restart replaying the same close appends nothing
    again._live_log.append_once(live.to_record())
    assert len(list(loop.store.iter_jsonl(LIVE_OUTCOMES))) == 1


# -- through the core: snapshot and the close command ------------------------------------


def run_core(tmp: Path, bars: list) -> Core:  # type: ignore[type-arg]
    clock = SimClock(T0_MS / 1000)
    core = Core(quiet_config(), ListSource(bars), clock, Store(tmp))
    for bar in bars:
        clock.advance_to(bar.close_s)
        core.process_bar(bar)
    return core


def test_snapshot_shows_positions_guard_log_and_pnl(tmp_path: Path) -> None:
    bars = [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.3, open=100.0)]
    core = run_core(tmp_path, bars)
    snap = core.snapshot()
    (view,) = snap.positions
    assert view.exit_mode == "ladder" and view.entry_regime is Regime.WARMING
    assert view.mark_price == 100.3
    qty = 1.0  # 100 USD stake x NORMAL 1.0 x WARMING 1.0 at 100
    assert snap.unrealised_pnl_usd == pytest.approx(qty * 0.3)
    assert snap.realised_pnl_usd == pytest.approx(-qty * 100.0 * 0.0005)  # the entry fee
    assert snap.golden_hour_open and snap.golden_hour_next_change_s is not None
    assert [s.reason for s in snap.guard_stats] == list(BlockReason)


def test_guard_log_is_newest_first(tmp_path: Path) -> None:
    bars = []
    for i, symbol in enumerate(("AUSDT", "BUSDT")):
        bars += [*warm_bars(symbol=symbol, start_ms=NIGHT_MS + i * 60_000)]
        bars += [signal_bar(14, Side.LONG, symbol=symbol, start_ms=NIGHT_MS + i * 60_000)]
    bars.sort(key=lambda b: b.open_ms)
    core = run_core(tmp_path, bars)
    assert [b.symbol for b in core.snapshot().guard_log] == ["BUSDT", "AUSDT"]


def test_the_close_command_exits_at_the_next_bar_open(tmp_path: Path) -> None:
    bars = [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)]
    core = run_core(tmp_path, bars)
    core.submit(Command(CommandKind.CLOSE, SYMBOL))
    assert core.trading is not None and core.trading.live[SYMBOL].close_requested
    core.process_bar(make_bar(16, 100.4, open=100.2, high=100.6))
    trade = core.trading.closed_live[-1]
    assert trade.exit_reasons == (ExitReason.MANUAL,) and trade.exit_price == 100.2


def test_closing_a_symbol_without_a_position_is_refused(tmp_path: Path) -> None:
    core = run_core(tmp_path, warm_bars())
    core.submit(Command(CommandKind.CLOSE, "ETHUSDT"))
    assert "has no open position" in core.events[0].message


def test_status_shows_open_positions_and_the_guard_report(tmp_path: Path) -> None:
    from bigalpha_tui.status import read_status, render_status

    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    other = [*warm_bars(symbol="ETHUSDT"), signal_bar(14, Side.SHORT, symbol="ETHUSDT")]
    feed(loop, other, whale=WhaleDirection.BUY)
    status = read_status(tmp_path)
    (position,) = status["trading"]["open"]
    assert position["symbol"] == SYMBOL and position["qty_open"] == pytest.approx(0.5)
    assert status["trading"]["guard"]["WHALE_CONFLICT"]["blocked"] == 1
    assert status["trading"]["guard"]["WHALE_CONFLICT"]["open_twins"] == 1
    text = render_status(status)
    assert "WHALE_CONFLICT" in text and "1 open" in text


# -- the figures events carry agree with the report ---------------------------------------


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, object]]] = []

    def __call__(self, kind: str, symbol: str, message: str, **data: object) -> None:
        self.seen.append((kind, message, data))

    def of(self, kind: str) -> list[tuple[str, dict[str, object]]]:
        return [(m, d) for k, m, d in self.seen if k == kind]


def recording_loop(tmp: Path, **sections: dict[str, object]) -> tuple[TradingLoop, Events]:
    events = Events()
    config = quiet_config(**sections)  # type: ignore[arg-type]
    loop = TradingLoop(config, Store(tmp), SimClock(T0_MS / 1000), events)
    return loop, events


def test_the_entry_event_states_the_configured_force_hold(tmp_path: Path) -> None:
    loop, events = recording_loop(tmp_path, exits={"force_hold_min": 30.0})
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG)], regime=Regime.TRUE_TREND)
    feed(loop, [make_bar(15, 100.0)], regime=Regime.TRUE_TREND)
    ((message, data),) = events.of("entry")
    assert "force-hold 30 min" in message and "45" not in message
    assert data["force_hold_until_s"] == T0_MS / 1000 + 15 * 60 + 30 * 60


def test_exit_events_add_up_to_the_trade_pnl_the_report_counts(tmp_path: Path) -> None:
    loop, events = recording_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    feed(loop, [make_bar(16, 100.0, open=100.0, high=100.6), make_bar(17, 100.0, low=98.9)])
    (trade,) = loop.closed_live
    legs = [float(d["pnl_usd"]) for _, d in events.of("exit")]  # type: ignore[arg-type]
    assert len(legs) == 2 and trade.fees_usd > 0
    assert sum(legs) == pytest.approx(trade.pnl_usd, abs=1e-12)


def test_entry_and_exit_lines_write_numbers_as_the_cockpit_does(tmp_path: Path) -> None:
    """The event log (cockpit, headless, logs) reads `@ 100.00 (+$0.12)`, not
    `@ 100.01 (+0.1234 USD)` beside a panel that shows `+$0.12`."""
    from bigalpha_tui.core import numfmt

    loop, events = recording_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    feed(loop, [make_bar(16, 100.0, open=100.0, high=100.6), make_bar(17, 100.0, low=98.9)])
    ((entry, data),) = events.of("entry")
    assert f"@ {numfmt.price(float(data['price']))} (" in entry  # type: ignore[arg-type]
    assert f" {numfmt.qty(float(data['qty']))} @" in entry  # type: ignore[arg-type]
    for message, leg in events.of("exit"):
        assert f"({numfmt.usd(float(leg['pnl_usd']))})" in message  # type: ignore[arg-type]
        assert " USD)" not in message
    assert events.of("exit")[-1][0].endswith(", closed")


def test_a_pause_cancels_an_entry_not_yet_filled_and_says_so(tmp_path: Path) -> None:
    bars = [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)]
    core = Core(quiet_config(), ListSource(bars), SimClock(T0_MS / 1000), Store(tmp_path))
    for bar in bars[:-1]:
        core.process_bar(bar)
    assert core.trading is not None and SYMBOL in core.trading.pending
    core.submit(Command(CommandKind.PAUSE))
    answer = next(e for e in core.events if e.kind == "command")
    assert "1 entry order(s) not yet filled cancelled" in answer.message
    assert any(e.kind == "cancel" and "paused" in e.message for e in core.events)
    core.process_bar(bars[-1])
    assert core.trading.live == {} and core.trading.pending == {}


def test_a_symbol_the_operator_closed_takes_no_entry_for_the_cooldown(tmp_path: Path) -> None:
    """After `x` the symbol re-entered on the very next bar; now it waits
    `gates.operator_cooldown_min` (30), each signal blocked as COOLDOWN and counted."""
    loop = make_loop(tmp_path)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG), make_bar(15, 100.0)])
    assert SYMBOL in loop.live
    loop.request_close(SYMBOL)
    feed(loop, [make_bar(16, 100.0)])  # closes at this bar's open, 10:16
    assert SYMBOL not in loop.live and loop.closed_live[-1].exit_reasons == (ExitReason.MANUAL,)
    feed(loop, [signal_bar(17, Side.LONG), make_bar(18, 100.0)])
    assert SYMBOL not in loop.live and SYMBOL not in loop.pending
    records = [r for r in loop.store.iter_jsonl(GUARD_BLOCKS) if r["reason"] == "COOLDOWN"]
    assert records and all("before 10:46 UTC" in r["detail"] for r in records)
    stats = {s.reason: s for s in guard_views(loop.book)}[BlockReason.COOLDOWN]
    assert stats.blocked == len(records)
    again = make_loop(tmp_path)  # the cooldown survives a restart
    assert again.book.cooldown_until_s == loop.book.cooldown_until_s
    quiet = warm_bars(27, start_minute=19)  # balanced flow, a 0.4 % range: edge clears fees
    feed(again, [*quiet, signal_bar(46, Side.LONG), make_bar(47, 100.0)])
    assert SYMBOL in again.live  # 10:47: the cooldown is over
