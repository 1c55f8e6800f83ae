"""Real orders against a fake Binance USD-M exchange on 127.0.0.1 (tests/fake_usdm_exchange.py).

What an operator would notice: a lost answer, a retry or a restart never opens a second
position; every entry has its stop resting on the exchange (or is closed at once); 429/418
pause the next request for the Retry-After the exchange gave; a -1021 re-measures the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from fake_usdm_exchange import API_KEY, API_SECRET, FakeUsdmExchange, usdm_exchange

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import ExecutionConfig
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.exchange import (
    ApiKeys,
    ExchangeGarbled,
    ExchangeRejected,
    UsdmClient,
    exchange_number,
    load_keys,
    parse_rules,
)
from bigalpha_tui.core.exchange_broker import (
    EntryOutcome,
    ExchangeBroker,
    OrderRefused,
    OutcomeUnknown,
    PositionUnprotected,
    client_order_id,
)
from bigalpha_tui.core.execution import Flattened, flatten
from bigalpha_tui.core.ratelimit import HostRateLimiter
from bigalpha_tui.core.types import Side

T = TypeVar("T")
START_S = 1_767_258_000.0  # 2026-01-01 09:00 UTC
QTY = 0.004  # 200 USDT at 50 000


@pytest.fixture
def clock() -> SimClock:
    return SimClock(START_S)


@pytest.fixture
def exchange(clock: SimClock) -> Iterator[FakeUsdmExchange]:
    with usdm_exchange(FakeUsdmExchange(now=clock.now)) as ex:
        yield ex


def make_broker(
    ex: FakeUsdmExchange, clock: SimClock, secret: str = API_SECRET, **settings: Any
) -> ExchangeBroker:
    config = ExecutionConfig(mode="testnet", testnet_base_url=ex.url, **settings)
    limiter = HostRateLimiter(clock, min_interval_s=config.min_request_interval_s, name="fake")
    client = UsdmClient(
        ex.url,
        ApiKeys(API_KEY, secret),
        clock,
        limiter,
        recv_window_ms=config.recv_window_ms,
        timeout_s=config.request_timeout_s,
        max_wait_s=config.max_wait_s,
    )
    return ExchangeBroker(client, config, clock, fee_bps=5.0, stop_pct=1.0)


def run(broker: ExchangeBroker, step: Callable[[ExchangeBroker], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            await broker.prepare()
            return await step(broker)
        finally:
            await broker.client.aclose()

    return anyio.run(main)


def open_long(pid: str = "L-BTC-1") -> Callable[[ExchangeBroker], Awaitable[EntryOutcome]]:
    return lambda b: b.open_position(pid, "BTCUSDT", Side.LONG, QTY, 50_000.0)


def test_an_entry_fills_and_its_stop_rests_on_the_exchange(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.open and outcome.fill is not None
    assert outcome.fill.qty == pytest.approx(QTY) and outcome.fill.price == 50_000.0
    assert outcome.fill.fee_usd == pytest.approx(QTY * 50_000.0 * 0.0005)  # the exchange's
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)
    (stop,) = exchange.open_algos("BTCUSDT")
    assert stop.side == "SELL" and stop.close_position and float(stop.trigger) == 49_500.0
    assert stop.cid == outcome.stop_id == client_order_id("L-BTC-1", "S")


def test_a_short_entry_gets_a_buy_stop_above(exchange: FakeUsdmExchange, clock: SimClock) -> None:
    outcome = run(
        make_broker(exchange, clock),
        lambda b: b.open_position("S-1", "BTCUSDT", Side.SHORT, QTY, 50_000.0),
    )
    assert outcome.open and exchange.position("BTCUSDT") == pytest.approx(-QTY)
    (stop,) = exchange.open_algos("BTCUSDT")
    assert stop.side == "BUY" and float(stop.trigger) == 50_500.0


def test_a_lost_answer_after_the_order_was_accepted_opens_one_position(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.inject("POST /fapi/v1/order", "lost")
    exchange.inject("POST /fapi/v1/algoOrder", "lost")
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.open
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)  # not twice
    assert exchange.orders_sent() == 1  # looked up, found, adopted: never resent
    assert len(exchange.open_algos("BTCUSDT")) == 1
    assert exchange.orders_sent("/fapi/v1/algoOrder") == 1


def test_a_restart_in_the_middle_of_sending_adopts_the_order_it_sent(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    # the first process sends, the answer is lost, and it dies before it can look
    exchange.inject("POST /fapi/v1/order", "lost")
    exchange.inject("GET /fapi/v1/order", "ok", "drop")  # looks: none; sends; then dies
    with pytest.raises(OutcomeUnknown):
        run(make_broker(exchange, clock, send_attempts=2), open_long())
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert exchange.open_algos("BTCUSDT") == []  # it died before the stop
    # the restarted process serves the same entry order again
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.open and exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert exchange.orders_sent() == 1
    assert len(exchange.open_algos("BTCUSDT")) == 1
    # and once more (a second restart): still one position, one stop
    again = run(make_broker(exchange, clock), open_long())
    assert again.open and exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert exchange.orders_sent() == 1 and len(exchange.open_algos("BTCUSDT")) == 1


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_an_unanswered_entry_is_never_sent_twice_at_once_and_a_later_look_decides(
    exchange: FakeUsdmExchange, clock: SimClock, fault: str
) -> None:
    """A 500 or a dropped connection after sending: was the order taken? The client cannot
    tell, so the entry's outcome is unknown; a later look (the execution loop waits
    `retry_after_s`) finds the exchange has none, and only then is it sent."""
    exchange.inject("POST /fapi/v1/order", fault)  # here: refused before it was looked at
    with pytest.raises(OutcomeUnknown):
        run(make_broker(exchange, clock), open_long())
    assert exchange.orders_sent() == 1 and exchange.position("BTCUSDT") == 0.0
    outcome = run(make_broker(exchange, clock), open_long())  # the later look
    assert outcome.open and exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert exchange.orders_sent() == 2


def test_an_entry_taken_but_not_yet_visible_to_look_ups_opens_one_position(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    """The look-up window: the exchange took the order, the answer was lost, and the look-up
    right after misses it. Sending again would double the position; it is not sent again,
    and the later look finds and books the one position."""
    exchange.inject("POST /fapi/v1/order", "lost")
    exchange.inject("GET /fapi/v1/order", "ok", "unseen")  # before sending; after the loss
    with pytest.raises(OutcomeUnknown):
        run(make_broker(exchange, clock), open_long())
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert exchange.orders_sent() == 1
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.open and exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert exchange.orders_sent() == 1 and len(exchange.open_algos("BTCUSDT")) == 1


def test_the_stop_is_placed_when_looking_for_it_fails_at_first(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.inject("GET /fapi/v1/openAlgoOrders", "500", "drop", "429")
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.open and len(exchange.open_algos("BTCUSDT")) == 1


@pytest.mark.parametrize("status", ["429", "418"])
def test_rate_limits_pause_the_next_request_for_retry_after(
    exchange: FakeUsdmExchange, clock: SimClock, status: str
) -> None:
    exchange.inject("POST /fapi/v1/order", status)
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.open and exchange.position("BTCUSDT") == pytest.approx(QTY)
    refused = next(i for i, (m, p, _) in enumerate(exchange.log) if m == "POST")
    stamps = [int(params["timestamp"]) for _, _, params in exchange.log[refused:]]
    assert stamps[1] - stamps[0] >= exchange.retry_after_s * 1000
    assert exchange.orders_sent() == 2  # the refused one did nothing; sent again once


def test_a_clock_out_of_the_recv_window_is_measured_again(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    async def step(b: ExchangeBroker) -> EntryOutcome:
        exchange.skew_ms = 60_000  # the server's clock jumped after our first measure
        return await open_long()(b)

    outcome = run(make_broker(exchange, clock), step)
    assert outcome.open and exchange.position("BTCUSDT") == pytest.approx(QTY)
    times = [p for m, p, _ in exchange.log if p == "/fapi/v1/time"]
    assert len(times) == 2  # at start, and once after the -1021


def test_insufficient_margin_opens_nothing_and_says_why(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.inject("POST /fapi/v1/order", "margin")
    with pytest.raises(OrderRefused) as err:
        run(make_broker(exchange, clock), open_long())
    assert err.value.code == -2019 and "Margin is insufficient" in str(err.value)
    assert exchange.position("BTCUSDT") == 0.0 and exchange.open_algos() == []


def test_a_partial_fill_is_waited_for_before_the_stop(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.inject("POST /fapi/v1/order", "partial")
    outcome = run(make_broker(exchange, clock), open_long())
    assert outcome.fill is not None and outcome.fill.qty == pytest.approx(QTY)
    assert outcome.fill.status == "FILLED" and outcome.open
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)


def test_the_resting_stop_fires_on_replayed_klines(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    run(make_broker(exchange, clock), open_long())
    exchange.replay_kline("BTCUSDT", 50_000.0, 50_200.0, 49_600.0, 49_700.0)
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)  # above the stop
    exchange.replay_kline("BTCUSDT", 49_700.0, 49_800.0, 49_300.0, 49_400.0)
    assert exchange.position("BTCUSDT") == 0.0  # the bot did nothing: the exchange did
    assert exchange.open_algos() == [] and exchange.trades[-1]["price"] == "49500.0"


def test_tiers_close_reduce_only_and_the_last_exit_cancels_the_stop(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    async def step(b: ExchangeBroker) -> None:
        await open_long()(b)
        await b.close_leg("L-BTC-1", "T1", "BTCUSDT", Side.LONG, QTY / 4, final=False)
        assert exchange.position("BTCUSDT") == pytest.approx(QTY * 0.75)
        assert len(exchange.open_algos("BTCUSDT")) == 1  # still guarded
        # a retried tier (lost answer) is the same order: no second reduction
        await b.close_leg("L-BTC-1", "T1", "BTCUSDT", Side.LONG, QTY / 4, final=False)
        assert exchange.position("BTCUSDT") == pytest.approx(QTY * 0.75)
        await b.close_leg("L-BTC-1", "T4", "BTCUSDT", Side.LONG, QTY * 0.75)

    run(make_broker(exchange, clock), step)
    assert exchange.position("BTCUSDT") == 0.0 and exchange.open_algos() == []
    posts = [p for m, path, p in exchange.log if m == "POST" and path == "/fapi/v1/order"]
    assert [p.get("reduceOnly") for p in posts] == [None, "true", "true"]


def test_an_entry_whose_stop_is_refused_is_closed_at_once(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.inject("POST /fapi/v1/algoOrder", "reject")
    outcome = run(make_broker(exchange, clock), open_long())
    assert not outcome.open and outcome.emergency_exit is not None
    assert outcome.emergency_exit.qty == pytest.approx(QTY)
    assert exchange.position("BTCUSDT") == 0.0


def test_a_wrong_secret_is_refused_by_signature_and_never_shown(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    broker = make_broker(exchange, clock, secret="not-the-secret-at-all")
    with pytest.raises(ExchangeRejected) as err:  # at the first signed request, before orders
        run(broker, open_long())
    assert "-1022" in str(err.value) and "not-the-secret" not in str(err.value)
    assert API_KEY not in str(err.value) and API_KEY not in repr(broker.client)
    assert exchange.position("BTCUSDT") == 0.0 and exchange.orders_sent() == 0


def test_quantities_are_rounded_down_to_the_exchange_step(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    outcome = run(
        make_broker(exchange, clock),
        lambda b: b.open_position("L-2", "BTCUSDT", Side.LONG, 0.0049999, 50_000.0),
    )
    assert outcome.fill is not None and outcome.fill.qty == pytest.approx(0.004)


def test_a_client_never_sends_unsigned_a_request_that_needs_a_key(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    broker = make_broker(exchange, clock)

    async def step(b: ExchangeBroker) -> object:
        return await b.client.request("GET", "/fapi/v2/positionRisk", signed=False)

    with pytest.raises(ExchangeRejected) as err:
        run(broker, step)
    assert err.value.status == 401


def test_a_long_ban_gives_up_at_once_instead_of_hanging(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.retry_after_s = 3600
    exchange.inject("POST /fapi/v1/order", "418")
    with pytest.raises(OutcomeUnknown) as err:
        run(make_broker(exchange, clock, max_wait_s=60.0), open_long())
    assert "holds requests off" in str(err.value)
    assert exchange.log[-1][0] == "POST"  # nothing was sent after the ban
    assert clock.now() - START_S < 60.0 and exchange.position("BTCUSDT") == 0.0


def test_an_account_in_hedge_mode_is_refused_before_any_order(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.hedge_mode = True
    with pytest.raises(OrderRefused) as err:
        run(make_broker(exchange, clock), open_long())
    assert "one-way mode" in str(err.value) and exchange.orders_sent() == 0


def test_an_entry_above_the_notional_cap_is_never_sent(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    with pytest.raises(OrderRefused) as err:
        run(
            make_broker(exchange, clock, max_notional_usd=150.0),
            open_long(),  # 0.004 x 50 000 = 200 USDT
        )
    assert "max_notional_usd" in str(err.value)
    assert exchange.orders_sent() == 0 and exchange.position("BTCUSDT") == 0.0


# -- keys ------------------------------------------------------------------------------------


def keys_config(path: str) -> ExecutionConfig:
    return ExecutionConfig(mode="testnet", key_file=path)


def test_keys_come_from_the_environment_and_are_never_in_their_repr() -> None:
    keys = load_keys(
        ExecutionConfig(mode="testnet"),
        {"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET},
    )
    assert (keys.key, keys.secret) == (API_KEY, API_SECRET)
    shown = repr(keys) + str(keys)
    assert API_KEY not in shown and API_SECRET not in shown and "env" in shown


@pytest.mark.parametrize(
    ("text", "mode", "needle"),
    [
        ('api_key = "k"\n', 0o600, "needs api_key and api_secret"),
        ("not toml at all = = =\n", 0o600, "is not TOML"),
        ('api_key = "k"\napi_secret = "s"\n', 0o640, "chmod 600"),
        ('api_key = "k k"\napi_secret = "s"\n', 0o600, "holds spaces"),
    ],
)
def test_a_bad_key_file_is_one_line_without_the_secret(
    tmp_path: Path, text: str, mode: int, needle: str
) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    path.chmod(mode)
    with pytest.raises(ConfigError) as err:
        load_keys(keys_config(str(path)), {})
    message = str(err.value)
    assert needle in message and "\n" not in message and '"s"' not in message


def test_a_key_file_behind_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text('api_key = "k"\napi_secret = "s"\n')
    real.chmod(0o600)
    link = tmp_path / "keys.toml"
    link.symlink_to(real)
    with pytest.raises(ConfigError) as err:
        load_keys(keys_config(str(link)), {})
    assert "symbolic link" in str(err.value)
    assert load_keys(keys_config(str(real)), {}).secret == "s"


@pytest.mark.parametrize(
    "fault", ["garble:positionAmt", "garble:positionAmt=NaN", "missing:positionAmt"]
)
def test_flatten_never_reads_an_unreadable_position_as_none(
    exchange: FakeUsdmExchange, clock: SimClock, fault: str
) -> None:
    broker = make_broker(exchange, clock)

    async def step(b: ExchangeBroker) -> list[str]:
        await open_long()(b)
        exchange.inject("GET /fapi/v2/positionRisk", fault)
        return await flatten(b)

    with pytest.raises(ExchangeGarbled, match="BTCUSDT positionAmt is not a number"):
        run(broker, step)
    # before: the amount read as 0, so flatten cancelled the stop and closed nothing
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)


def test_an_entry_whose_stop_and_close_are_banned_is_reported_with_its_fill(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    exchange.retry_after_s = 3600  # a ban far past max_wait_s, right after the fill
    exchange.inject("POST /fapi/v1/algoOrder", "418")
    with pytest.raises(PositionUnprotected) as err:
        run(make_broker(exchange, clock, max_wait_s=60.0), open_long())
    assert "position without an exchange stop" in str(err.value)
    assert "reduce-only close could not be sent" in str(err.value)
    assert err.value.fill.qty == pytest.approx(QTY) and err.value.fill.price == 50_000.0
    assert exchange.position("BTCUSDT") == pytest.approx(QTY) and exchange.open_algos() == []
    assert clock.now() - START_S < 60.0  # bounded: no hanging through the ban


@pytest.mark.parametrize("value", [None, "", "abc", "NaN", "inf", True, [1]])
def test_an_unreadable_exchange_number_is_an_error_not_zero(value: object) -> None:
    with pytest.raises(ExchangeGarbled, match="positionAmt is not a number"):
        exchange_number(value, "positionAmt")
    assert exchange_number("0.000", "positionAmt") == 0.0  # a real zero stays zero
    assert exchange_number("-0.5", "positionAmt") == -0.5 and exchange_number(2, "x") == 2.0


def test_a_symbol_whose_step_is_not_a_positive_number_is_not_traded() -> None:
    def info(step: str) -> dict[str, object]:
        return {
            "symbols": [
                {
                    "symbol": "BTCUSDT",
                    "filters": [
                        {"filterType": "PRICE_FILTER", "tickSize": "0.1"},
                        {"filterType": "LOT_SIZE", "stepSize": step, "minQty": "0.001"},
                    ],
                }
            ]
        }

    assert "BTCUSDT" in parse_rules(info("0.001"))
    assert parse_rules(info("NaN")) == {} and parse_rules(info("0")) == {}


def test_flatten_keeps_the_stop_when_the_close_cannot_be_sent(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    broker = make_broker(exchange, clock, max_wait_s=60.0)

    async def step(b: ExchangeBroker) -> Flattened:
        await open_long()(b)
        exchange.retry_after_s = 3600
        exchange.inject("POST /fapi/v1/order", "418")  # the close meets a ban of an hour
        return await flatten(b)

    result = run(broker, step)  # gives up at once (bounded), and says what is left
    assert result.left == {"BTCUSDT": pytest.approx(QTY)}
    said = [line for line in result.lines if "STILL OPEN" in line]
    assert said and "BTCUSDT: +0.004 STILL OPEN" in said[0] and "run flatten again" in said[0]
    assert any("outcome unknown" in line for line in result.lines)
    assert exchange.position("BTCUSDT") == pytest.approx(QTY)
    assert [a.cid for a in exchange.open_algos()] == [client_order_id("L-BTC-1", "S")]
    assert clock.now() - START_S < 60.0


# -- flatten closes what a partial close left (issue 15 leftovers) ---------------------------


def test_flatten_closes_the_rest_of_a_close_that_filled_a_part(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    broker = make_broker(exchange, clock)

    async def step(b: ExchangeBroker) -> Flattened:
        await open_long()(b)
        exchange.inject("POST /fapi/v1/order", "partial-expired")  # the close fills half
        return await flatten(b)

    result = run(broker, step)
    assert exchange.position("BTCUSDT") == 0.0 and exchange.open_algos() == []
    assert result.left == {} and "BTCUSDT: closed LONG 0.002 @ 50000" in result.lines
    closes = [p for m, _, p in exchange.log if m == "POST" and p.get("reduceOnly") == "true"]
    assert [p["quantity"] for p in closes] == ["0.004", "0.002"]
    assert len({p["newClientOrderId"] for p in closes}) == 2  # the rest under its own id


def test_flatten_that_gives_up_says_what_is_left_and_a_rerun_that_minute_closes_it(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    broker = make_broker(exchange, clock, send_attempts=2)

    async def step(b: ExchangeBroker) -> tuple[Flattened, float, list[str], Flattened]:
        await open_long()(b)
        exchange.inject("POST /fapi/v1/order", "partial-expired", "partial-expired")
        first = await flatten(b)  # two closes, each filling half: 0.001 left
        held = exchange.position("BTCUSDT")
        stops = [a.cid for a in exchange.open_algos()]
        return first, held, stops, await flatten(b)  # run again, the same minute

    first, held, stops, again = run(broker, step)
    assert first.left == {"BTCUSDT": pytest.approx(0.001)} and held == pytest.approx(0.001)
    assert stops == [client_order_id("L-BTC-1", "S")]  # the rest keeps its stop
    said = [line for line in first.lines if "STILL OPEN" in line]
    assert said and "BTCUSDT: +0.001 STILL OPEN after 2 close(s)" in said[0]
    assert again.left == {} and exchange.position("BTCUSDT") == 0.0
    assert exchange.open_algos() == []
    closes = [p for m, _, p in exchange.log if m == "POST" and p.get("reduceOnly") == "true"]
    assert [p["quantity"] for p in closes] == ["0.004", "0.002", "0.001"]
    assert len({p["newClientOrderId"] for p in closes}) == 3


def test_flatten_after_a_lost_answer_finds_its_close_and_sends_it_once(
    exchange: FakeUsdmExchange, clock: SimClock
) -> None:
    broker = make_broker(exchange, clock)

    async def step(b: ExchangeBroker) -> Flattened:
        await open_long()(b)
        exchange.inject("POST /fapi/v1/order", "lost")  # the close fills, its answer is lost
        return await flatten(b)

    result = run(broker, step)
    assert result.left == {} and exchange.position("BTCUSDT") == 0.0
    closes = [p for m, _, p in exchange.log if m == "POST" and p.get("reduceOnly") == "true"]
    assert [p["quantity"] for p in closes] == ["0.004"]  # looked up by its id: not twice
