"""Reconciliation at start against the fake USD-M exchange: a fill made while the bot was down
is adopted, a missing stop is placed, orphans are cancelled, and what cannot be explained
halts new entries."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fake_usdm_exchange import FakeUsdmExchange, usdm_exchange
from test_execution import QTY, START_S, make_broker, open_long, run

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.exchange_broker import (
    ExchangeBroker,
    OutcomeUnknown,
    client_order_id,
)
from bigalpha_tui.core.exchange_reconcile import Expected, Reconciliation, reconcile
from bigalpha_tui.core.types import Side

PID = "L-BTC-1"
SINCE_MS = int(START_S * 1000)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(START_S)


@pytest.fixture
def exchange(clock: SimClock) -> Iterator[FakeUsdmExchange]:
    with usdm_exchange(
        FakeUsdmExchange(now=clock.now, prices={"BTCUSDT": 50_000.0, "ETHUSDT": 3_000.0})
    ) as ex:
        yield ex


def reconciled(ex: FakeUsdmExchange, clock: SimClock, *expected: Expected) -> Reconciliation:
    async def step(b: ExchangeBroker) -> Reconciliation:
        return await reconcile(b, expected)

    return run(make_broker(ex, clock), step)


def held(qty: float = QTY) -> Expected:
    return Expected(PID, "BTCUSDT", Side.LONG, qty, SINCE_MS)


def test_an_entry_filled_while_the_bot_was_down_is_adopted_with_its_stop(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.inject("POST /fapi/v1/order", "lost")
    exchange.inject("GET /fapi/v1/order", "ok", "drop")
    with pytest.raises(OutcomeUnknown):  # sent, then the process died
        run(make_broker(exchange, clock, send_attempts=2), open_long(PID))
    report = reconciled(
        exchange, clock, Expected(PID, "BTCUSDT", Side.LONG, 0.0, SINCE_MS, pending=True)
    )
    fill = report.adopted_entries[PID]
    assert fill.qty == pytest.approx(QTY) and fill.price == 50_000.0
    assert report.stops_placed == [client_order_id(PID, "S")] and report.halt_reason is None
    assert exchange.orders_sent() == 1 and len(exchange.open_algos("BTCUSDT")) == 1


def test_a_pending_entry_never_sent_is_not_adopted(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    report = reconciled(
        exchange, clock, Expected(PID, "BTCUSDT", Side.LONG, 0.0, SINCE_MS, pending=True)
    )
    assert report.adopted_entries == {} and report.halt_reason is None
    assert exchange.orders_sent() == 0


def test_a_stop_that_fired_while_down_is_adopted_as_the_exit(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    run(make_broker(exchange, clock), open_long(PID))
    exchange.replay_kline("BTCUSDT", 49_900.0, 49_950.0, 49_000.0, 49_100.0)
    report = reconciled(exchange, clock, held())
    exit_fill = report.adopted_exits[PID]
    assert exit_fill.qty == pytest.approx(QTY) and exit_fill.price == 49_500.0
    assert report.halt_reason is None and exchange.open_algos() == []


def test_a_position_missing_its_stop_gets_one(exchange: FakeUsdmExchange, clock: SimClock) -> None:
    run(make_broker(exchange, clock), open_long(PID))
    for algo in exchange.open_algos():
        algo.status = "CANCELED"  # someone cancelled it on the website
    report = reconciled(exchange, clock, held())
    assert report.stops_placed == [client_order_id(PID, "S")] and report.halt_reason is None
    (stop,) = exchange.open_algos("BTCUSDT")
    assert float(stop.trigger) == 49_500.0


def test_orphaned_orders_of_ours_are_cancelled_and_others_left_alone(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    run(make_broker(exchange, clock), open_long(PID))
    exchange.positions.clear()  # closed by hand: the stop of ours now serves nothing
    from fake_usdm_exchange import FakeAlgo

    exchange.algos[1] = FakeAlgo(1, "web_hand_made", "ETHUSDT", "SELL", Decimal("2900"), True, 0)
    report = reconciled(exchange, clock)
    assert report.cancelled == [client_order_id(PID, "S")]
    assert report.foreign == ["ETHUSDT stop web_hand_made"]
    assert [a.cid for a in exchange.open_algos()] == ["web_hand_made"]
    assert report.halt_reason is None


def test_a_position_the_book_does_not_know_halts_new_entries(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.positions["ETHUSDT"] = Decimal("0.5")
    report = reconciled(exchange, clock)
    assert report.halt_reason is not None
    assert "ETHUSDT: exchange holds +0.5, the book nothing" in report.halt_reason


def test_a_position_gone_without_fills_to_explain_it_halts_new_entries(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    report = reconciled(exchange, clock, held())
    assert report.halt_reason is not None and "book holds +0.004, exchange +0" in (
        report.halt_reason
    )


def test_a_quantity_that_differs_halts_new_entries(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    run(make_broker(exchange, clock), open_long(PID))
    report = reconciled(exchange, clock, held(QTY * 2))
    assert report.halt_reason is not None and "BTCUSDT" in report.halt_reason
