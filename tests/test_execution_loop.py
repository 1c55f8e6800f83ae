"""The trading loop routed to a fake Binance USD-M exchange (testnet mode), end to end.

A core runs over hand-made bars with the SimClock; the fake exchange on 127.0.0.1 trades the
same bars (its market moves only after the bot's orders of the previous close are in, as a
live market would). What an operator would notice: entries fill on the exchange with their
stop resting there, exits are reduce-only orders booked at the exchange's prices and fees, a
crash before or after a send never opens a second position, a stop that fired while the bot
was down is adopted, and an unexplained difference halts entries until acknowledged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_usdm_exchange import API_KEY, API_SECRET, FakeUsdmExchange, usdm_exchange
from trading_helpers import SYMBOL, T0_MS, make_bar, quiet_config, signal_bar, warm_bars

from bigalpha_tui.control import submit_and_wait
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.commands import Command, CommandKind, parse_command
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.exchange import ApiKeys
from bigalpha_tui.core.exchange_broker import client_order_id
from bigalpha_tui.core.exchange_reconcile import Reconciliation
from bigalpha_tui.core.execution import build_broker
from bigalpha_tui.core.execution_loop import EXECUTION_STATE, ExecutionLoop, attach_execution
from bigalpha_tui.core.positions import Position
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.types import ExitReason, Side
from bigalpha_tui.ctl import cmd_ctl
from bigalpha_tui.status import read_status, render_status

FEE = 0.0005  # the fake exchange's commission rate


class ExchangeBars:
    """A `BarSource` over a list of bars that the fake exchange trades too: before a bar is
    handed to the core, the bot's orders of the previous close are sent (the drain), then
    the exchange trades the bar (stops fire), then the clock stands at its close."""

    name = "exchange-list"

    def __init__(self, bars: list[Bar], clock: SimClock, exchange: FakeUsdmExchange) -> None:
        self._bars = bars
        self.symbols = tuple(dict.fromkeys(b.symbol for b in bars))
        self.clock = clock
        self.exchange = exchange
        self.drain: Callable[[], Awaitable[None]] | None = None

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        for bar in self._bars:
            if resume_after_ms is not None and bar.open_ms <= resume_after_ms:
                continue
            if self.drain is not None:
                await self.drain()
            self.exchange.replay_kline(bar.symbol, bar.open, bar.high, bar.low, bar.close)
            self.clock.advance_to(bar.close_s)
            yield bar
        if self.drain is not None:
            await self.drain()

    def health(self) -> SourceHealth:
        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def clock() -> SimClock:
    return SimClock(T0_MS / 1000)


@pytest.fixture
def exchange(clock: SimClock) -> Iterator[FakeUsdmExchange]:
    with usdm_exchange(FakeUsdmExchange(now=clock.now, prices={SYMBOL: 100.0})) as ex:
        yield ex


def config_for(ex: FakeUsdmExchange, **execution: Any) -> Config:
    return quiet_config(
        execution={
            "mode": "testnet",
            "testnet_base_url": ex.url,
            "min_request_interval_s": 0.05,
            **execution,
        }
    )


def bot(
    tmp: Path,
    clock: SimClock,
    ex: FakeUsdmExchange,
    bars: list[Bar],
    config: Config | None = None,
) -> tuple[Core, ExecutionLoop, ExchangeBars]:
    """A core in testnet mode on `tmp` (a restart when `tmp` holds a store already)."""
    config = config or config_for(ex)
    source = ExchangeBars(bars, clock, ex)
    core = Core(config, source, clock, Store(tmp))
    broker = build_broker(config, ApiKeys(API_KEY, API_SECRET), clock)
    execution = attach_execution(core, broker)
    source.drain = execution.drain
    return core, execution, source


def run(core: Core, execution: ExecutionLoop) -> None:
    async def main() -> None:
        try:
            await core.run()
        finally:
            await execution.broker.client.aclose()

    anyio.run(main)


def call(execution: ExecutionLoop, step: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        try:
            return await step()
        finally:
            await execution.broker.client.aclose()

    return anyio.run(main)


def session(execution: ExecutionLoop, steps: Callable[[], Awaitable[None]]) -> None:
    """Run `steps` in one event loop (several drains, a task beside), then close the client."""
    call(execution, steps)


ENTRY = [*warm_bars(), signal_bar(14, Side.LONG)]  # a long decided at 100.0
QUIET = make_bar(15, 100.0)  # a bar after the signal that triggers nothing
OPENED = [*ENTRY, QUIET]  # the entry is sent and fills before the quiet bar
AFTER = [*OPENED, make_bar(16, 100.0)]  # and one more quiet bar
T1_TAKEN = [*OPENED, make_bar(16, 100.5, open=100.0, high=100.6)]  # T1 at 100.5
LADDER = [
    *ENTRY,
    make_bar(15, 100.0, high=100.2, low=99.8),
    make_bar(16, 100.5, open=100.0, high=100.6),  # T1 at 100.5
    make_bar(17, 102.0, open=100.5, high=102.1),  # T2, T3 and T4
]


def decided(
    tmp: Path,
    clock: SimClock,
    ex: FakeUsdmExchange,
    config: Config | None = None,
    bars: list[Bar] = ENTRY,
) -> tuple[Core, ExecutionLoop]:
    """A bot that applied `bars` (the entry decided at the last close) and sent nothing yet:
    the next drain sends it."""
    core, execution, _ = bot(tmp, clock, ex, bars, config)
    for bar in bars:
        clock.advance_to(bar.close_s)
        core.process_bar(bar)
    return core, execution


def restart(
    tmp: Path,
    clock: SimClock,
    ex: FakeUsdmExchange,
    config: Config | None = None,
    bars: list[Bar] = ENTRY,
    *,
    after_s: float = 0.0,
) -> tuple[Core, ExecutionLoop]:
    """The same data folder, a new process `after_s` later (no bar run yet)."""
    clock.advance(after_s)
    core, execution, _ = bot(tmp, clock, ex, bars, config)
    return core, execution


def drain(execution: ExecutionLoop) -> None:
    call(execution, execution.drain)


def start(execution: ExecutionLoop) -> None:
    call(execution, execution.start)


def reconcile(execution: ExecutionLoop) -> Reconciliation | None:
    result: Reconciliation | None = call(execution, execution.reconcile_now)
    return result


def lose_the_entry_answer(ex: FakeUsdmExchange, *looks: str) -> None:
    """The entry fills on the exchange but its answer never arrives. The look-up before the
    send finds nothing; the later look-ups meet `looks` (default: one dropped connection)."""
    ex.inject("POST /fapi/v1/order", "lost")
    ex.inject("GET /fapi/v1/order", "ok", *(looks or ("drop",)))


def drop_an_unseen_entry(
    tmp: Path, clock: SimClock, ex: FakeUsdmExchange, config: Config, unseen: int = 2
) -> tuple[Core, ExecutionLoop]:
    """An entry filled on the exchange whose answer was lost and which the exchange's
    look-ups miss `unseen` times: at once, and `retry_after_s` later, when it is dropped as
    most likely not taken (a restart in between). The exchange holds its position."""
    core, execution = decided(tmp, clock, ex, config)
    lose_the_entry_answer(ex, *["unseen"] * unseen)
    drain(execution)
    core, execution = restart(tmp, clock, ex, config, after_s=config.execution.retry_after_s)
    drain(execution)
    assert core.trading is not None and core.trading.pending == {} and core.trading.live == {}
    return core, execution


def stop_rests(ex: FakeUsdmExchange, core: Core) -> Position:
    """The book's position on SYMBOL, after checking that its stop, and only it, rests."""
    assert core.trading is not None
    live = core.trading.live[SYMBOL]
    assert [a.cid for a in ex.open_algos(SYMBOL)] == [client_order_id(live.id, "S")]
    return live


async def serve_until_a_stop_rests(
    execution: ExecutionLoop, clock: SimClock, ex: FakeUsdmExchange, advance_s: float
) -> float:
    """Run the task beside the core with no bar coming, move the clock `advance_s` on, and
    return the (wall) seconds until a stop rests on SYMBOL (at most 10 s)."""
    with anyio.fail_after(10.0):
        async with anyio.create_task_group() as tg:
            tg.start_soon(execution.serve)
            await anyio.sleep(0.2)
            clock.advance(advance_s)
            started = anyio.current_time()
            while not ex.open_algos(SYMBOL):
                await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    return anyio.current_time() - started


def held_by_hand(ex: FakeUsdmExchange, symbol: str, qty: str, price: float = 3000.0) -> None:
    """A position opened on the website: no order of the bot's explains it."""
    with ex.lock:
        ex.positions[symbol] = Decimal(qty)
        ex.entry_prices[symbol] = Decimal(repr(price))
        ex.prices[symbol] = price


def reduce_only(ex: FakeUsdmExchange) -> list[dict[str, str]]:
    """The reduce-only market orders sent, in order."""
    return [p for m, path, p in ex.log if m == "POST" and p.get("reduceOnly") == "true"]


def test_an_entry_fills_on_the_exchange_with_its_stop_and_the_ladder_closes_it(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    bars = LADDER
    core, execution, _ = bot(tmp_path, clock, exchange, bars[:16])
    run(core, execution)
    assert core.trading is not None
    live = core.trading.live[SYMBOL]
    assert exchange.position(SYMBOL) == pytest.approx(1.0) == live.original_qty
    assert live.entry_price == 100.0  # the exchange's fill
    assert live.entry_fee_usd == pytest.approx(100.0 * FEE)  # the exchange's commission
    (stop,) = exchange.open_algos(SYMBOL)
    assert stop.cid == client_order_id(live.id, "S") and float(stop.trigger) == 99.0
    # the same data folder, the run goes on
    core, execution, _ = bot(tmp_path, clock, exchange, bars)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {}
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.T1, ExitReason.T2, ExitReason.T3, ExitReason.T4)
    assert trade.exit_price == pytest.approx((100.5 + 3 * 102.0) / 4)  # where they filled
    assert trade.fees_usd == pytest.approx(FEE * (100.0 + 100.5 / 4 + 3 * 102.0 / 4))
    assert exchange.position(SYMBOL) == 0.0 and exchange.open_algos() == []
    assert exchange.orders_sent() == 5  # the entry, four reduce-only legs: nothing twice
    assert [p["quantity"] for p in reduce_only(exchange)] == ["0.25"] * 4
    assert core.entries_halted_reason() is None


def test_a_stop_that_fires_on_the_exchange_is_booked_at_its_fill(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    bars = [*ENTRY, QUIET, make_bar(16, 99.2, open=100.0, low=98.9)]
    core, execution, _ = bot(tmp_path, clock, exchange, bars)
    run(core, execution)
    assert core.trading is not None
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.STOP,) and trade.exit_price == 99.0
    assert exchange.position(SYMBOL) == 0.0 and exchange.open_algos() == []
    # the entry, then the STOP leg: reduce-only, refused as nothing was held any more
    assert exchange.orders_sent() == 2
    assert core.entries_halted_reason() is None  # explained by the exchange's own fills


def test_a_crash_between_the_intent_and_the_send_opens_nothing_after_restart(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange)  # then the process dies undrained
    assert [i.leg for i in execution.outbox] == ["E"]
    assert Store(tmp_path).read_json(EXECUTION_STATE)["outbox"][0]["leg"] == "E"  # type: ignore[index]
    # back ten minutes later: the bars since are catch-up bars
    core, execution = restart(tmp_path, clock, exchange, bars=AFTER, after_s=600.0)
    run(core, execution)
    assert core.trading is not None
    assert core.trading.live == {} and core.trading.pending == {}
    assert exchange.orders_sent() == 0 and exchange.position(SYMBOL) == 0.0
    (cancel,) = [e for e in core.events if e.kind == "cancel"]
    assert "never sent (the bot stopped before sending it)" in cancel.message
    assert execution.outbox == []


def test_a_lost_answer_then_a_crash_adopts_the_one_position_after_restart(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange, config_for(exchange, send_attempts=2))
    lose_the_entry_answer(exchange)  # looks: none; sends; looks: drop
    drain(execution)
    assert exchange.position(SYMBOL) == pytest.approx(1.0)
    reason = core.entries_halted_reason()
    assert reason is not None and "outcome unknown" in reason  # no new entry meanwhile
    # the process dies here; the restart finds the order by its id and adopts it
    core, execution = restart(tmp_path, clock, exchange, bars=AFTER)
    run(core, execution)
    live = stop_rests(exchange, core)
    assert exchange.position(SYMBOL) == pytest.approx(1.0) == live.original_qty
    assert exchange.orders_sent() == 1  # never sent a second time
    assert core.entries_halted_reason() is None


def test_a_stop_that_fired_while_the_bot_was_down_is_adopted_at_start(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    exchange.replay_kline(SYMBOL, 99.8, 99.9, 98.7, 98.8)  # while down: the stop fires
    core, execution = restart(tmp_path, clock, exchange, bars=OPENED, after_s=60.0)
    run(core, execution)  # no new bar yet
    assert core.trading is not None and core.trading.live == {}
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.STOP,) and trade.exit_price == 99.0
    assert any("while down: adopted" in e.message for e in core.events)
    assert core.entries_halted_reason() is None and exchange.open_algos() == []


def test_a_mismatch_halts_entries_until_the_operator_acknowledges_it(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    held_by_hand(exchange, "ETHUSDT", "0.5")  # the book knows nothing of it
    bars = OPENED
    core, execution, _ = bot(tmp_path, clock, exchange, bars)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {}  # the signal was passed over
    assert core.trading.halted_signals >= 1 and exchange.orders_sent() == 0
    reason = core.snapshot().entries_halted_reason
    assert reason is not None and "ETHUSDT: exchange holds +0.5, the book nothing" in reason
    assert "ctl ack-mismatch" in reason
    # a restart does not forget it
    core, execution = restart(tmp_path, clock, exchange, bars=bars)
    assert core.entries_halted_reason() == reason
    core.submit(parse_command("ack-mismatch"))
    assert "acknowledged: ETHUSDT" in core.events[0].message
    assert core.entries_halted_reason() is None
    # the next reconciliation finds the same, acknowledged: no halt
    assert reconcile(execution) is not None
    assert core.entries_halted_reason() is None
    more = [*bars, make_bar(16, 100.0), signal_bar(17, Side.LONG), make_bar(18, 100.0)]
    core, execution, _ = bot(tmp_path, clock, exchange, more)
    run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    assert exchange.position(SYMBOL) == pytest.approx(1.0)


def test_the_daily_loss_limit_halts_entries(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, daily_loss_limit_usd=1.0)
    bars = [
        *ENTRY,
        make_bar(15, 100.0),
        make_bar(16, 99.2, open=100.0, low=98.9),  # stopped out: -1 USD and fees
        make_bar(17, 99.2),
        signal_bar(18, Side.LONG, close=99.2),
        make_bar(19, 99.2),
    ]
    core, execution, _ = bot(tmp_path, clock, exchange, bars, config)
    run(core, execution)
    assert core.trading is not None and len(core.trading.closed_live) == 1
    assert core.trading.live == {} and exchange.orders_sent() == 2  # entry, refused STOP leg
    reason = core.entries_halted_reason()
    assert reason is not None and "daily_loss_limit_usd" in reason
    assert core.trading.halted_signals >= 1
    clock.advance_to((clock.now() // 86_400 + 1) * 86_400)  # 00:00 UTC: a new day
    assert core.entries_halted_reason() is None


def test_flatten_closes_every_position_cancels_every_order_and_pauses(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    core.submit(parse_command("ack-mismatch"))
    assert core.events[0].message.startswith("no difference between the exchange and the book")
    run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    held_by_hand(exchange, "ETHUSDT", "-0.5")  # and one the book does not hold
    core, execution = restart(tmp_path, clock, exchange, bars=OPENED)  # the bot runs on, idle
    with pytest.raises(Exception, match="--yes"):
        parse_command("flatten")
    core.submit(Command(CommandKind.FLATTEN, on=True))
    assert core.paused and "flatten: entries paused" in core.events[0].message
    drain(execution)
    assert exchange.position(SYMBOL) == 0.0 and exchange.position("ETHUSDT") == 0.0
    assert exchange.open_algos() == []
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.MANUAL,)
    assert execution.outbox == []


def test_status_shows_the_halt_and_ctl_acknowledges_it(
    tmp_path: Path,
    clock: SimClock,
    exchange: FakeUsdmExchange,
    capsys: pytest.CaptureFixture[str],
) -> None:
    held_by_hand(exchange, "ETHUSDT", "0.5")
    core, execution, _ = bot(tmp_path, clock, exchange, ENTRY)
    run(core, execution)
    text = render_status(read_status(tmp_path))
    assert "ENTRIES HALTED: ETHUSDT: exchange holds +0.5, the book nothing" in text
    reply = anyio.run(submit_and_wait, core, "ack-mismatch")
    assert reply.ok and reply.saved and "acknowledged" in reply.message
    assert "ENTRIES HALTED" not in render_status(read_status(tmp_path))
    reply = anyio.run(submit_and_wait, core, "flatten")
    assert not reply.ok and "--yes" in reply.message
    assert cmd_ctl(["--data-dir", str(tmp_path), "flatten"]) == 2
    assert "add --yes" in capsys.readouterr().err
    # `--yes` reaches the command: here no bot answers on the folder any more
    assert cmd_ctl(["--data-dir", str(tmp_path), "flatten", "--yes"]) == 2
    assert "no bigalpha-tui is running" in capsys.readouterr().err


def test_an_entry_above_the_notional_cap_is_never_sent(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, max_notional_usd=50.0)  # the stake is 100 USDT
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED, config)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {} and core.trading.pending == {}
    assert exchange.orders_sent() == 0
    cancel = next(e for e in core.events if e.kind == "cancel")
    assert "max_notional_usd" in cancel.message


def test_flatten_on_paper_pauses_and_closes_at_the_next_open(tmp_path: Path) -> None:
    from trading_helpers import ListSource

    clock = SimClock(T0_MS / 1000)
    core = Core(quiet_config(), ListSource(OPENED), clock, Store(tmp_path))
    for bar in OPENED:
        clock.advance_to(bar.close_s)
        core.process_bar(bar)
    core.submit(parse_command("flatten --yes"))
    assert core.paused and "BTCUSDT: closing LONG" in core.events[0].message
    core.process_bar(make_bar(16, 100.4, open=100.2))
    assert core.trading is not None and core.trading.live == {}
    assert core.trading.closed_live[-1].exit_reasons == (ExitReason.MANUAL,)


def test_a_crash_after_booking_but_before_the_outbox_was_cleared_books_nothing_twice(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    bars = T1_TAKEN
    store = Store(tmp_path)
    for upto in (len(ENTRY), len(bars)):  # the entry, then the T1 leg
        core, execution = decided(tmp_path, clock, exchange, bars=bars[:upto])
        unsent = store.read_json(EXECUTION_STATE)
        assert unsent is not None and len(unsent["outbox"]) == 1
        drain(execution)  # sent and booked ...
        store.write_json(EXECUTION_STATE, unsent)  # ... but the cleared outbox never landed
        core, execution = restart(tmp_path, clock, exchange, bars=bars[:upto])
        start(execution)  # the restart drives the outbox again
        assert execution.outbox == []
        assert [e.kind for e in core.events if e.kind in ("entry", "exit")] == []
    assert core.trading is not None
    live = core.trading.live[SYMBOL]
    assert live.tiers_taken == (ExitReason.T1,) and live.open_qty == pytest.approx(0.75)
    assert [t.id for t in core.trading.twins.values()] == [f"S-{live.id}"]
    assert exchange.position(SYMBOL) == pytest.approx(0.75)
    assert exchange.orders_sent() == 2  # the entry and T1, each once


def test_a_stop_that_fired_while_down_after_a_tier_is_adopted_for_what_was_left(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution, _ = bot(tmp_path, clock, exchange, T1_TAKEN)
    run(core, execution)
    assert core.trading is not None
    assert core.trading.live[SYMBOL].tiers_taken == (ExitReason.T1,)
    exchange.replay_kline(SYMBOL, 99.8, 99.9, 98.7, 98.8)  # while down: the stop fires
    core, execution = restart(tmp_path, clock, exchange, bars=T1_TAKEN, after_s=60.0)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {}
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.T1, ExitReason.STOP)
    assert trade.exit_price == pytest.approx((100.5 * 0.25 + 99.0 * 0.75) / 1.0)
    assert core.entries_halted_reason() is None


def test_an_entry_refused_for_margin_opens_nothing_and_entries_go_on(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.inject("POST /fapi/v1/order", "margin")
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)
    cancel = next(e for e in core.events if e.kind == "cancel")
    assert "Margin is insufficient" in cancel.message
    assert core.entries_halted_reason() is None  # refused is known: nothing to halt for
    assert core.trading is not None
    live = core.trading.live[SYMBOL]  # the next bar's signal went through
    assert live.id != cancel.data["id"] and exchange.position(SYMBOL) == pytest.approx(1.0)
    assert exchange.orders_sent() == 2  # the refused one, then the next


def test_an_entry_sent_before_its_outbox_was_lost_is_adopted_by_the_reconciliation(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange, config_for(exchange, send_attempts=2))
    lose_the_entry_answer(exchange)
    drain(execution)  # sent, answer lost, then the process dies
    (tmp_path / EXECUTION_STATE).write_text("{ torn")  # and its outbox is unreadable
    core, execution = restart(tmp_path, clock, exchange)
    assert execution.outbox == [] and core.trading is not None and SYMBOL in core.trading.pending
    run(core, execution)
    live = stop_rests(exchange, core)
    assert exchange.position(SYMBOL) == pytest.approx(1.0) == live.original_qty
    assert exchange.orders_sent() == 1
    assert any("entry sent before the restart: adopted" in e.message for e in core.events)
    assert any(e.kind == "store_warning" and EXECUTION_STATE in e.message for e in core.events)


def test_an_exchange_not_ready_at_start_halts_entries_until_it_answers(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.inject("/fapi/v1/time", "500")  # the first clock measurement fails
    core, execution, _ = bot(tmp_path, clock, exchange, [])
    start(execution)
    reason = core.entries_halted_reason()
    assert reason is not None and "exchange not ready" in reason
    drain(execution)  # too soon: not tried again (retry_after_s)
    assert [p for _, p, _ in exchange.log].count("/fapi/v1/time") == 1
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)  # answers now: prepared, reconciled, the entry goes out
    assert core.entries_halted_reason() is None
    assert core.trading is not None and SYMBOL in core.trading.live


def test_an_entry_of_unknown_outcome_is_adopted_even_after_a_pause(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    core, execution = decided(tmp_path, clock, exchange, config)
    lose_the_entry_answer(exchange)

    async def steps() -> None:
        await execution.drain()  # sent; the outcome stays unknown
        core.submit(parse_command("pause"))  # the pending order is cancelled meanwhile
        clock.advance(config.execution.retry_after_s)
        await execution.drain()  # looked up: the exchange has it, so the book does too

    session(execution, steps)
    assert core.trading is not None and SYMBOL in core.trading.live
    assert exchange.position(SYMBOL) == pytest.approx(1.0) and exchange.orders_sent() == 1
    assert len(exchange.open_algos(SYMBOL)) == 1 and core.entries_halted_reason() is None


def test_a_lost_answer_during_the_run_is_adopted_not_sent_again(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.inject("POST /fapi/v1/order", "lost")  # the entry: filled, no answer
    exchange.inject("POST /fapi/v1/algoOrder", "lost")  # its stop: placed, no answer
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)
    live = stop_rests(exchange, core)
    assert exchange.position(SYMBOL) == pytest.approx(1.0) == live.original_qty
    assert exchange.orders_sent() == 1 and exchange.orders_sent("/fapi/v1/algoOrder") == 1
    assert core.entries_halted_reason() is None


def test_an_order_of_unknown_outcome_holds_back_only_its_own_symbol(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.prices["ETHUSDT"] = 100.0
    eth = "ETHUSDT"
    first = [
        *warm_bars(symbol=eth),
        signal_bar(14, Side.LONG, symbol=eth),
        make_bar(15, symbol=eth),
    ]
    config = config_for(exchange, send_attempts=2, retry_after_s=600.0)
    core, execution, _ = bot(tmp_path, clock, exchange, first, config)
    run(core, execution)
    assert core.trading is not None and eth in core.trading.live
    later = [
        *warm_bars(start_minute=16),
        signal_bar(30, Side.LONG),
        *[make_bar(m, 100.0, symbol=eth) for m in range(16, 31)],
        make_bar(31, 100.5, open=100.0, high=100.6, symbol=eth),  # ETH's T1
        make_bar(32, 100.0),
    ]
    later.sort(key=lambda b: b.open_ms)
    lose_the_entry_answer(exchange)  # BTC's entry: filled, no answer, and its look-up fails
    core, execution, _ = bot(tmp_path, clock, exchange, [*first, *later], config)
    run(core, execution)
    assert core.trading is not None and SYMBOL not in core.trading.live
    reason = core.entries_halted_reason()
    assert reason is not None and "BTCUSDT E: outcome unknown" in reason
    assert [i.symbol for i in execution.outbox] == [SYMBOL]  # waits for retry_after_s
    # ETH's tier went out meanwhile: one symbol's doubt does not hold the others' exits
    assert core.trading.live[eth].tiers_taken == (ExitReason.T1,)
    assert exchange.position(eth) == pytest.approx(0.75)
    core, execution = restart(tmp_path, clock, exchange, config, [*first, *later], after_s=600.0)
    run(core, execution)  # retried: the look-up finds BTC's order and adopts it
    assert core.trading is not None and SYMBOL in core.trading.live
    assert core.entries_halted_reason() is None
    assert exchange.position(SYMBOL) == pytest.approx(1.0)
    assert exchange.orders_sent() == 3 and len(exchange.open_algos()) == 2


# -- what an entry's message says is known of it (issue 15, defect 1) ----------------------


def test_an_unanswered_entry_still_missing_later_is_dropped_saying_it_may_be_on_the_exchange(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    core, execution = decided(tmp_path, clock, exchange, config)
    exchange.inject("POST /fapi/v1/order", "drop")  # sent; the answer never comes
    drain(execution)
    reason = core.entries_halted_reason()
    assert reason is not None and "outcome unknown" in reason
    core, execution = restart(
        tmp_path, clock, exchange, config, after_s=config.execution.retry_after_s
    )
    drain(execution)  # looked up again: still nothing there
    assert core.trading is not None and core.trading.pending == {} and core.trading.live == {}
    (cancel,) = [e for e in core.events if e.kind == "cancel"]
    cid = client_order_id(cancel.data["id"], "E")
    assert "not sent before the restart" not in cancel.message  # it was sent
    assert f"sent 30 s ago without an answer, and the exchange still shows no order {cid}" in (
        cancel.message
    )
    assert "looked up again every 30 s (and before a new entry on BTCUSDT is sent)" in (
        cancel.message
    )
    assert exchange.orders_sent() == 1 and core.entries_halted_reason() is None
    # what the message promises: a position turning up that no look-up explains halts entries
    held_by_hand(exchange, SYMBOL, "1.0", 100.0)
    core, execution = restart(tmp_path, clock, exchange, config)
    assert reconcile(execution) is not None
    reason = core.entries_halted_reason()
    assert reason is not None and "BTCUSDT: exchange holds +1, the book nothing" in reason


def test_a_restart_moments_after_an_unanswered_entry_waits_before_deciding_it_was_not_taken(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    core, execution = decided(tmp_path, clock, exchange, config)
    lose_the_entry_answer(exchange)  # filled, the answer never arrives
    drain(execution)
    assert exchange.position(SYMBOL) == pytest.approx(1.0)
    # restarted at once; the exchange's look-ups do not show the order yet
    exchange.inject("GET /fapi/v1/order", "unseen")
    core, execution = restart(tmp_path, clock, exchange, config)
    start(execution)
    assert core.trading is not None and SYMBOL in core.trading.pending  # not dropped
    assert not any(e.kind == "cancel" for e in core.events)
    reason = core.entries_halted_reason()
    assert reason is not None and "was sent 0 s ago without an answer" in reason
    core, execution = restart(
        tmp_path, clock, exchange, config, after_s=config.execution.retry_after_s
    )
    drain(execution)  # looked up again: there it is
    live = stop_rests(exchange, core)
    assert live.original_qty == pytest.approx(1.0) and exchange.orders_sent() == 1
    assert core.entries_halted_reason() is None


def test_an_entry_whose_outbox_record_was_lost_is_dropped_saying_what_is_known(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange)
    (tmp_path / EXECUTION_STATE).write_text("{ torn")  # the process dies, its outbox torn
    core, execution = restart(tmp_path, clock, exchange)
    start(execution)
    assert core.trading is not None and core.trading.pending == {}
    (cancel,) = [e for e in core.events if e.kind == "cancel"]
    assert "not sent before the restart" not in cancel.message  # nothing says it was not
    assert "never sent, or execution_state.json was lost" in cancel.message
    assert f"no order {client_order_id(cancel.data['id'], 'E')} on the exchange" in cancel.message
    assert exchange.orders_sent() == 0
    # what the message promises: it may have been sent, so it is watched for a late fill
    assert "looked up again every 30 s" in cancel.message
    assert list(execution.doubtful) == [cancel.data["id"]]


# -- numbers the exchange sends that cannot be read (defect 2) ------------------------------


@pytest.mark.parametrize(
    "fault", ["garble:avgPrice", "garble:executedQty=NaN", "missing:executedQty"]
)
def test_an_entry_answer_with_an_unreadable_number_is_looked_up_again_not_booked_as_zero(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange, fault: str
) -> None:
    exchange.inject("POST /fapi/v1/order", fault)  # filled; its answer spoilt
    core, execution, _ = bot(tmp_path, clock, exchange, AFTER)
    run(core, execution)
    live = stop_rests(exchange, core)  # booked from the look-up made at once
    assert live.entry_price == 100.0 and live.original_qty == pytest.approx(1.0)
    assert core.trading is not None and core.trading.closed_live == []
    assert exchange.orders_sent() == 1 and exchange.position(SYMBOL) == pytest.approx(1.0)
    unreadable = [e for e in core.events if e.kind == "order" and "unreadable" in e.message]
    assert unreadable and "is not a number" in unreadable[0].message


@pytest.mark.parametrize("fault", ["garble:positionAmt", "missing:positionAmt"])
def test_an_unreadable_position_halts_entries_until_a_clean_read_and_changes_nothing(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange, fault: str
) -> None:
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    exchange.inject("GET /fapi/v2/positionRisk", fault)
    core, execution = restart(tmp_path, clock, exchange, bars=OPENED)
    assert reconcile(execution) is None
    reason = core.entries_halted_reason()
    assert reason is not None and "BTCUSDT positionAmt is not a number" in reason
    assert execution.mismatches == []  # no made-up difference for the operator to ack
    assert core.trading is not None and SYMBOL in core.trading.live
    assert exchange.position(SYMBOL) == pytest.approx(1.0)
    assert len(exchange.open_algos(SYMBOL)) == 1
    after_s = config_for(exchange).execution.retry_after_s
    core, execution = restart(tmp_path, clock, exchange, bars=OPENED, after_s=after_s)
    assert reconcile(execution) is not None  # read cleanly
    assert core.entries_halted_reason() is None


# -- when the stop cannot be placed (defect 3) ----------------------------------------------


def test_a_short_ban_on_the_stop_is_waited_out_and_the_stop_rests(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.inject("POST /fapi/v1/algoOrder", "418")  # Retry-After 7 s: within max_wait_s
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)
    stop_rests(exchange, core)
    assert core.entries_halted_reason() is None


def test_a_refused_stop_closes_the_entry_at_once_reduce_only(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    exchange.inject("POST /fapi/v1/algoOrder", "reject", "reject")  # -2021 on every try
    core, execution, _ = bot(tmp_path, clock, exchange, ENTRY, config)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {}
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.STOP,)
    assert exchange.position(SYMBOL) == 0.0 and exchange.open_algos() == []
    closes = [p for m, path, p in exchange.log if m == "POST" and path == "/fapi/v1/order"]
    assert [p.get("reduceOnly") for p in closes] == [None, "true"]
    said = next(e for e in core.events if "closed at once" in e.message)
    assert "-2021" in said.message
    assert core.entries_halted_reason() is None


def test_a_long_ban_after_the_fill_leaves_a_position_listed_without_a_stop_until_placed(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.retry_after_s = 3600  # a ban of an hour: longer than max_wait_s
    exchange.inject("POST /fapi/v1/algoOrder", "418")
    core, execution, _ = bot(tmp_path, clock, exchange, AFTER)
    run(core, execution)
    assert core.trading is not None
    live = core.trading.live[SYMBOL]  # the book knows the position the exchange holds
    assert live.entry_price == 100.0 and exchange.position(SYMBOL) == pytest.approx(1.0)
    assert exchange.open_algos() == []
    reason = core.snapshot().entries_halted_reason  # the cockpit's status line and `h`
    assert reason is not None and reason.startswith("POSITION WITHOUT AN EXCHANGE STOP: BTCUSDT")
    assert "reduce-only close could not be sent" in reason
    text = render_status(read_status(tmp_path))
    assert "POSITION WITHOUT AN EXCHANGE STOP (entries halted): BTCUSDT" in text
    loud = [e for e in core.events if e.kind == "stop" and e.data.get("ok") is False]
    assert loud and "POSITION WITHOUT AN EXCHANGE STOP" in loud[0].message
    # a restart remembers it; once the ban is over the stop is placed and entries open
    core, execution = restart(tmp_path, clock, exchange, bars=AFTER, after_s=3600.0)
    assert core.entries_halted_reason() == reason
    drain(execution)
    assert stop_rests(exchange, core).id == live.id
    assert core.entries_halted_reason() is None
    assert "POSITION WITHOUT" not in render_status(read_status(tmp_path))
    assert exchange.position(SYMBOL) == pytest.approx(1.0) and exchange.orders_sent() == 1


def test_a_stop_refused_and_a_close_banned_is_closed_reduce_only_once_the_ban_ends(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=1)
    exchange.retry_after_s = 3600
    exchange.inject("POST /fapi/v1/algoOrder", "reject", "reject")  # now, and on the retry
    exchange.inject("POST /fapi/v1/order", "ok", "418")  # the entry fills; its close: banned
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED, config)
    run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    reason = core.entries_halted_reason()
    assert reason is not None and "POSITION WITHOUT AN EXCHANGE STOP" in reason
    assert "holds requests off" in reason
    first = [e for e in core.events if "POSITION WITHOUT" in e.message][-1]  # newest first
    assert "-2021" in first.message and "reduce-only close could not be sent" in first.message
    core, execution = restart(tmp_path, clock, exchange, config, OPENED, after_s=3600.0)
    drain(execution)
    assert core.trading is not None
    assert core.trading.live == {} and exchange.position(SYMBOL) == 0.0
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.STOP,)
    assert core.entries_halted_reason() is None and exchange.open_algos() == []


def test_a_stop_missing_at_reconciliation_that_cannot_be_placed_closes_the_position(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution, _ = bot(tmp_path, clock, exchange, OPENED)
    run(core, execution)
    assert core.trading is not None and SYMBOL in core.trading.live
    with exchange.lock:  # cancelled by hand on the website
        for algo in exchange.algos.values():
            algo.status = "CANCELED"
    exchange.inject("POST /fapi/v1/algoOrder", "reject", "reject", "reject")
    core, execution = restart(tmp_path, clock, exchange, bars=OPENED)
    assert reconcile(execution) is not None
    assert core.trading.live == {} and exchange.position(SYMBOL) == 0.0
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.STOP,)
    assert execution.mismatches == [] and core.entries_halted_reason() is None


def test_an_entry_dropped_as_not_taken_that_turns_up_later_is_adopted_with_its_stop(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    # filled, the answer lost, unseen at once and 30 s later: dropped, watched once more
    core, execution = drop_an_unseen_entry(tmp_path, clock, exchange, config)
    assert exchange.position(SYMBOL) == pytest.approx(1.0) and exchange.open_algos() == []
    # survives a restart
    core, execution = restart(
        tmp_path, clock, exchange, config, after_s=config.execution.retry_after_s
    )
    assert reconcile(execution) is not None
    live = stop_rests(exchange, core)
    assert live.original_qty == pytest.approx(1.0) and live.entry_price == 100.0
    assert core.entries_halted_reason() is None and execution.mismatches == []
    assert any("on the exchange after all: adopted" in e.message for e in core.events)
    assert exchange.orders_sent() == 1


# -- safety leftovers (issue 15): late entries, unreadable answers, partial closes, timers ---


def test_a_dropped_entry_that_turns_up_after_its_one_more_look_is_adopted_with_its_stop(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    # the exchange's look-ups miss it at once, 30 s later (dropped) and 30 s after the drop
    core, execution = drop_an_unseen_entry(tmp_path, clock, exchange, config, unseen=3)
    core, execution = restart(
        tmp_path, clock, exchange, config, after_s=config.execution.retry_after_s
    )
    assert reconcile(execution) is not None  # the one more look: unseen
    assert core.trading is not None and core.trading.live == {}
    assert exchange.open_algos() == []  # the position is there, with no stop yet
    # a later reconciliation (a restart in between) sees the position and looks again
    after_s = config.execution.reconcile_every_min * 60
    core, execution = restart(tmp_path, clock, exchange, config, after_s=after_s)
    assert reconcile(execution) is not None
    live = stop_rests(exchange, core)  # booked with its real fill
    assert live.original_qty == pytest.approx(1.0) and live.entry_price == 100.0
    assert live.entry_fee_usd == pytest.approx(100.0 * FEE)
    assert execution.mismatches == [] and core.entries_halted_reason() is None
    assert any("on the exchange after all: adopted" in e.message for e in core.events)
    assert exchange.orders_sent() == 1 and execution.doubtful == {}


def test_a_position_no_order_of_ours_explains_halts_and_is_left_without_a_stop(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    held_by_hand(exchange, "ETHUSDT", "0.5")  # no client id of ours
    core, execution, _ = bot(tmp_path, clock, exchange, [])
    start(execution)
    reason = core.entries_halted_reason()
    assert reason is not None and "ETHUSDT: exchange holds +0.5, the book nothing" in reason
    assert "no order of the bot's explains it: left alone, no stop placed for it" in reason
    assert exchange.open_algos() == [] and exchange.orders_sent() == 0
    assert exchange.position("ETHUSDT") == 0.5


def test_an_unreadable_entry_answer_is_looked_up_at_once_and_booked_with_its_stop(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange, config_for(exchange, retry_after_s=600.0))
    exchange.inject("POST /fapi/v1/order", "garble:avgPrice")  # filled; its answer spoilt
    drain(execution)  # the same drain looks it up, not 600 s later
    live = stop_rests(exchange, core)
    assert live.entry_price == 100.0 and live.original_qty == pytest.approx(1.0)
    assert exchange.orders_sent() == 1 and core.entries_halted_reason() is None


def test_an_entry_answer_unreadable_twice_is_looked_up_at_the_next_drain_never_sent_again(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange, config_for(exchange, retry_after_s=600.0))
    exchange.inject("POST /fapi/v1/order", "garble:avgPrice")
    # the look-up before the send finds nothing; the look at once reads a spoilt answer too
    exchange.inject("GET /fapi/v1/order", "ok", "garble:avgPrice", "garble:avgPrice")
    halted: list[str | None] = []

    async def steps() -> None:
        await execution.drain()
        assert core.trading is not None and SYMBOL not in core.trading.live
        assert exchange.open_algos() == []
        halted.append(core.entries_halted_reason())
        clock.advance(60.0)  # the next bar's drain, far within retry_after_s
        await execution.drain()

    session(execution, steps)
    assert halted[0] is not None and "outcome unknown" in halted[0]
    live = stop_rests(exchange, core)
    assert live.entry_price == 100.0 and live.original_qty == pytest.approx(1.0)
    assert core.entries_halted_reason() is None
    assert exchange.orders_sent() == 1  # only ever looked up after the first send
    assert exchange.position(SYMBOL) == pytest.approx(1.0)


@pytest.mark.parametrize("fault", ["partial-expired", "partial-stuck"])
def test_a_last_leg_filled_in_part_books_the_part_once_and_closes_the_rest(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange, fault: str
) -> None:
    # the entry, T1, T2, T3 fill; T4 fills half, the rest expires (or never fills)
    exchange.inject("POST /fapi/v1/order", "ok", "ok", "ok", "ok", fault)
    core, execution, _ = bot(tmp_path, clock, exchange, LADDER)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {}
    (trade,) = core.trading.closed_live
    assert (
        trade.exit_reasons == (ExitReason.T1, ExitReason.T2, ExitReason.T3) + (ExitReason.T4,) * 2
    )
    assert trade.exit_price == pytest.approx((100.5 + 3 * 102.0) / 4)
    assert trade.fees_usd == pytest.approx(FEE * (100.0 + 100.5 / 4 + 3 * 102.0 / 4))
    assert exchange.position(SYMBOL) == 0.0 and exchange.open_algos() == []
    reduce = reduce_only(exchange)
    assert [p["quantity"] for p in reduce] == ["0.25"] * 4 + ["0.125"]
    ids = [p["newClientOrderId"] for p in reduce]
    assert len(set(ids)) == 5 and ids[-1] == client_order_id(trade.id, "T44")
    assert core.entries_halted_reason() is None


def test_the_rest_of_a_last_leg_filled_in_part_keeps_its_stop_until_closed_after_a_ban(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    exchange.retry_after_s = 3600  # the close of the rest meets a ban of an hour
    exchange.inject("POST /fapi/v1/order", "ok", "ok", "ok", "ok", "partial-expired", "418")
    core, execution, _ = bot(tmp_path, clock, exchange, LADDER)
    run(core, execution)
    assert core.trading is not None
    live = core.trading.live[SYMBOL]  # the part booked once, the rest open in the book ...
    assert live.exits[-1].reason is ExitReason.T4 and live.exits[-1].qty == pytest.approx(0.125)
    assert live.open_qty == pytest.approx(0.125) == exchange.position(SYMBOL)
    # ... and on the exchange under its stop, which a final leg filled in part left resting
    assert stop_rests(exchange, core).id == live.id
    reason = core.entries_halted_reason()
    assert reason is not None and "outcome unknown" in reason
    core, execution = restart(tmp_path, clock, exchange, bars=LADDER, after_s=3600.0)
    run(core, execution)
    assert core.trading is not None and core.trading.live == {}
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons[-2:] == (ExitReason.T4, ExitReason.T4)
    # the part is booked once: its fee and quantity are not counted twice
    assert trade.fees_usd == pytest.approx(FEE * (100.0 + 100.5 / 4 + 3 * 102.0 / 4))
    assert trade.exit_price == pytest.approx((100.5 + 3 * 102.0) / 4)
    assert exchange.position(SYMBOL) == 0.0 and exchange.open_algos() == []
    assert core.entries_halted_reason() is None


def test_a_close_without_a_stop_filled_in_part_closes_the_rest_under_a_new_id(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=1)
    exchange.inject("POST /fapi/v1/algoOrder", "reject", "reject")  # now, and on the retry
    exchange.inject("POST /fapi/v1/order", "ok", "partial-stuck")  # the entry; its close: half
    core, execution, _ = bot(tmp_path, clock, exchange, ENTRY, config)
    run(core, execution)
    assert core.trading is not None
    live = core.trading.live[SYMBOL]
    assert live.open_qty == pytest.approx(0.5) == exchange.position(SYMBOL)
    reason = core.entries_halted_reason()
    assert reason is not None and "POSITION WITHOUT AN EXCHANGE STOP" in reason
    assert "filled only a part" in reason
    core, execution = restart(
        tmp_path, clock, exchange, config, after_s=config.execution.retry_after_s
    )
    drain(execution)  # the stop is refused again: the rest is closed
    assert core.trading is not None
    assert core.trading.live == {} and exchange.position(SYMBOL) == 0.0
    (trade,) = core.trading.closed_live
    assert trade.exit_reasons == (ExitReason.STOP, ExitReason.STOP)
    # the half booked once, then the rest: each fee once, the whole position at 100
    assert trade.fees_usd == pytest.approx(FEE * 200.0) and trade.exit_price == 100.0
    closes = reduce_only(exchange)
    assert [p["quantity"] for p in closes] == ["1", "0.5"]
    assert [p["newClientOrderId"] for p in closes] == [
        client_order_id(trade.id, "Z"),
        client_order_id(trade.id, "Z1"),
    ]
    assert core.entries_halted_reason() is None


def test_a_position_without_a_stop_is_retried_between_bars_when_the_ban_ends(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    # a ban of 2 s, longer than the 1 s the bot may wait inline; retries every 600 s, and
    # a reconciliation only every 30 s: only a retry at the ban's end is quick
    config = config_for(exchange, max_wait_s=1.0, retry_after_s=600.0, reconcile_every_min=0.5)
    exchange.retry_after_s = 2
    exchange.inject("POST /fapi/v1/algoOrder", "418")
    core, execution = decided(tmp_path, clock, exchange, config)
    placed_after: list[float] = []

    async def steps() -> None:
        await execution.drain()  # the entry fills; its stop and its close are banned
        assert core.trading is not None and SYMBOL in core.trading.live
        assert exchange.open_algos() == [] and execution.unprotected
        # no bar comes: only its timer can retry; then the ban is over
        placed_after.append(await serve_until_a_stop_rests(execution, clock, exchange, 2.0))

    session(execution, steps)
    stop_rests(exchange, core)
    assert placed_after and placed_after[0] < 5.0  # at the ban's end, not 600 s (or 30 s) later
    assert core.entries_halted_reason() is None
    assert exchange.orders_sent() == 1 and exchange.position(SYMBOL) == pytest.approx(1.0)


def test_a_dropped_entry_saved_by_an_older_build_is_still_watched(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    core, execution = decided(tmp_path, clock, exchange, config)
    exchange.inject("POST /fapi/v1/order", "drop")  # sent; no answer, and never taken
    drain(execution)
    core, execution = restart(
        tmp_path, clock, exchange, config, after_s=config.execution.retry_after_s
    )
    drain(execution)  # dropped as most likely not taken: watched
    store = Store(tmp_path)
    doc = store.read_json(EXECUTION_STATE)
    assert isinstance(doc, dict) and doc["doubtful"][0]["looked"] is False
    del doc["doubtful"][0]["looked"]  # as the build before this one wrote it
    store.write_json(EXECUTION_STATE, doc)
    core, execution = restart(tmp_path, clock, exchange, config)
    assert not any(e.kind == "store_warning" for e in core.events)
    ((intent, _, looked),) = execution.doubtful.values()
    assert intent.symbol == SYMBOL and looked is False


# -- leftovers (issue 15): a dropped entry's late fill, flatten's rest, a differing quantity --


def test_a_dropped_entry_that_turns_up_is_adopted_with_its_stop_at_the_next_bar(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    # reconciliations only every hour: only the drains' own look-ups can find it in time
    config = config_for(exchange, send_attempts=2, reconcile_every_min=60.0)
    # the entry fills, its answer is lost; the look at once and the one 60 s later (when it
    # is dropped) miss it; from then on the exchange shows it
    lose_the_entry_answer(exchange, "unseen", "unseen")
    bars = [*AFTER, make_bar(17, 100.0), make_bar(18, 100.0)]
    core, execution, _ = bot(tmp_path, clock, exchange, bars, config)
    run(core, execution)
    (dropped,) = [e for e in core.events if "dropped as most likely not taken" in e.message]
    assert exchange.position(SYMBOL) == pytest.approx(1.0)  # one position, not two
    live = stop_rests(exchange, core)  # adopted, its stop on the exchange
    assert live.id == dropped.data["id"] and live.original_qty == pytest.approx(1.0)
    assert live.entry_price == 100.0 and live.entry_fee_usd == pytest.approx(100.0 * FEE)
    # within one bar of the drop (the next drain), not at the next reconciliation
    assert live.entry_s - dropped.time_s <= 60.0
    assert execution.reconciliations == 1  # the one at start
    assert any("on the exchange after all: adopted" in e.message for e in core.events)
    assert exchange.orders_sent() == 1 and execution.doubtful == {}
    assert execution.mismatches == [] and core.entries_halted_reason() is None


def test_a_dropped_entry_is_looked_up_between_bars_on_the_retry_timer(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2, retry_after_s=1.0, reconcile_every_min=60.0)
    core, execution = decided(tmp_path, clock, exchange, config)
    lose_the_entry_answer(exchange, "unseen", "unseen")
    placed_after: list[float] = []

    async def steps() -> None:
        await execution.drain()  # sent, its answer lost, not seen at once
        clock.advance(config.execution.retry_after_s)
        await execution.drain()  # not seen again: dropped as most likely not taken
        assert core.trading is not None and core.trading.live == {} and execution.doubtful
        assert exchange.open_algos() == [] and exchange.position(SYMBOL) == pytest.approx(1.0)
        execution.next_reconcile_s = clock.now() + 3600.0  # none due within the test
        # no bar comes: only its timer can look; then the next look falls due
        after_s = config.execution.retry_after_s
        placed_after.append(await serve_until_a_stop_rests(execution, clock, exchange, after_s))

    session(execution, steps)
    live = stop_rests(exchange, core)
    assert live.original_qty == pytest.approx(1.0) and placed_after[0] < 5.0
    assert execution.reconciliations == 0 and exchange.orders_sent() == 1


def test_a_dropped_entry_the_exchange_shows_as_filling_nothing_is_no_longer_watched(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=2)
    core, execution = drop_an_unseen_entry(tmp_path, clock, exchange, config)
    with exchange.lock:  # it turns out it was taken, and expired with nothing filled
        order = next(iter(exchange.orders.values()))
        order.status, order.executed, order.quote = "EXPIRED", Decimal(0), Decimal(0)
        exchange.positions.clear()
    core, execution = restart(tmp_path, clock, exchange, config, after_s=30.0)
    drain(execution)
    assert execution.doubtful == {}  # known now: nothing to watch for
    assert core.trading is not None and core.trading.live == {}
    said = [e for e in core.events if "filled nothing" in e.message]
    assert said and "no longer watched" in said[0].message
    before = len(exchange.log)
    core, execution = restart(tmp_path, clock, exchange, config, after_s=30.0)
    drain(execution)
    assert [p for _, p, _ in exchange.log[before:]].count("/fapi/v1/order") == 0  # not again


def test_an_adopted_entry_whose_quantity_differs_gets_its_stop_and_the_difference_halts(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    core, execution = decided(tmp_path, clock, exchange, config_for(exchange, send_attempts=2))
    lose_the_entry_answer(exchange)
    drain(execution)  # sent, answer lost, then the process dies ...
    (tmp_path / EXECUTION_STATE).write_text("{ torn")  # ... its outbox unreadable
    with exchange.lock:  # and half as much again added by hand meanwhile
        exchange.positions[SYMBOL] += Decimal("0.5")
    core, execution = restart(tmp_path, clock, exchange)
    start(execution)  # the reconciliation adopts the entry the exchange filled
    live = stop_rests(exchange, core)  # its stop rests (closePosition: the whole 1.5)
    assert live.original_qty == pytest.approx(1.0) and exchange.position(SYMBOL) == 1.5
    reason = core.entries_halted_reason()  # and the difference is still said, and halts
    assert reason is not None and "BTCUSDT: book holds +1, exchange +1.5" in reason
    assert exchange.orders_sent() == 1


def test_a_flatten_whose_close_fills_a_part_is_driven_again_until_nothing_is_left(
    tmp_path: Path, clock: SimClock, exchange: FakeUsdmExchange
) -> None:
    config = config_for(exchange, send_attempts=1)
    held_by_hand(exchange, "ETHUSDT", "-0.5")  # a position the book does not hold
    core, execution, _ = bot(tmp_path, clock, exchange, [], config)
    seen: list[Any] = []

    async def steps() -> None:
        await execution.start()
        core.submit(Command(CommandKind.FLATTEN, on=True))
        exchange.inject("POST /fapi/v1/order", "partial-expired")  # the close fills half
        await execution.drain()
        seen.extend([exchange.position("ETHUSDT"), core.entries_halted_reason()])
        clock.advance(config.execution.retry_after_s)
        await execution.drain()  # the flatten is driven again: the rest is closed

    session(execution, steps)
    held, reason = seen
    assert held == pytest.approx(-0.25)
    assert reason is not None and "flatten: ETHUSDT -0.25 still open" in reason
    said = [e.message for e in core.events if e.kind == "flatten"]
    assert any("ETHUSDT: -0.25 STILL OPEN after 1 close(s)" in m for m in said)
    assert exchange.position("ETHUSDT") == 0.0 and execution.outbox == []
    assert "flatten" not in (core.entries_halted_reason() or "")
