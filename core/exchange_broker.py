"""Orders on Binance USD-M futures for the positions the trading loop opens and closes.

Idempotence: every order's client id is derived from the position and the leg it serves
(`client_order_id`), and an order is always looked up by that id before it is sent. A retry
after a lost answer, or a restart in the middle of sending, finds the order the exchange
already took and adopts it instead of opening a second position. The exchange keeps a
filled order's client id for days; it rejects a second *open* order with the same id (-4116),
which is treated as "look it up again".

The stop lives on the exchange: right after an entry fills, a STOP_MARKET with
`closePosition=true` (reduce-only by construction: it can only close what is held, and it
covers whatever a tier left) is placed at the emergency stop price through the algo-order
endpoint, tried `send_attempts` times (each request waits at most `max_wait_s` for a
Retry-After). A position whose stop cannot be placed is closed at once with a reduce-only
market order; when even that cannot be sent (a long 418 ban stops every request),
`PositionUnprotected` carries the entry's fill to the caller, which books it and lists the
position as one without an exchange stop (execution_loop.py). Tiers, T4, the stop's own
market exit and operator closes are reduce-only MARKET orders; the last one cancels the
resting stop.

The trading loop reaches this broker through `execution_loop.py` (an outbox drained between
bars); tiers are market orders sent when a bar reaches them, not resting limit orders.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .clock import Clock
from .config import ExecutionConfig
from .exchange import (
    ExchangeError,
    ExchangeGarbled,
    ExchangeRateLimited,
    ExchangeRejected,
    ExchangeUnavailable,
    ExchangeUnknown,
    SymbolRules,
    UsdmClient,
    decimal_text,
    exchange_number,
)
from .types import Side

ORDER_PATH = "/fapi/v1/order"
ALGO_PATH = "/fapi/v1/algoOrder"
OPEN_ALGOS_PATH = "/fapi/v1/openAlgoOrders"
TRADES_PATH = "/fapi/v1/userTrades"
#: Binance codes the broker reads.
NO_SUCH_ORDER = -2013
UNKNOWN_ORDER = -2011
DUPLICATE_ID = -4116
#: Leg codes in client order ids: entry, the resting stop, the exits.
ENTRY_LEG = "E"
STOP_LEG = "S"
NO_STOP_LEG = "Z"  # closed at once because its stop could not be placed
EXIT_LEGS = ("T1", "T2", "T3", "T4", "STOP", "MANUAL", "FLAT")
OPEN_STATES = ("NEW", "PARTIALLY_FILLED")
TRANSIENT = (ExchangeRateLimited, ExchangeUnknown, ExchangeUnavailable)
BPS = 1e-4
PCT = 100.0
#: Binance allows client ids of up to 36 characters from [.A-Z:/a-z0-9_-].
ID_PREFIX = "ba-"
ID_HASH_CHARS = 24


class OrderRefused(ExchangeError):
    """The exchange refused the order (insufficient margin, bad quantity): nothing opened."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class OutcomeUnknown(ExchangeError):
    """Every try ended without a readable answer: the order may exist. New entries must
    stop until reconciliation (or the operator) has looked at the exchange."""


class PositionUnprotected(ExchangeError):
    """An entry filled, but neither its stop nor the reduce-only close that replaces it
    could be placed (a 418 ban, refusals): the position is open on the exchange with no
    stop there. `fill` is the entry as executed (the caller books it)."""

    def __init__(self, symbol: str, detail: str, fill: ExchangeFill) -> None:
        super().__init__(f"{symbol}: position without an exchange stop: {detail}")
        self.detail = detail
        self.fill = fill


def client_order_id(position_id: str, leg: str) -> str:
    """The same id for the same position and leg, in every process, after every restart."""
    digest = hashlib.sha256(position_id.encode()).hexdigest()[:ID_HASH_CHARS]
    return f"{ID_PREFIX}{digest}-{leg}"


def order_side(side: Side, closing: bool) -> str:
    buys = side is Side.LONG
    return "BUY" if buys != closing else "SELL"


def stop_trigger(entry_price: float, side: Side, stop_pct: float) -> float:
    """The emergency stop price, `stop_pct` % against the entry (as exits.stop_price)."""
    return entry_price * (1.0 - side.sign * stop_pct / PCT)


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    """One order as the exchange executed it."""

    client_order_id: str
    order_id: int
    status: str
    qty: float
    price: float
    fee_usd: float


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """An entry: its fill (None: nothing executed), the stop's client id on the exchange,
    and the emergency exit when no stop could be placed."""

    fill: ExchangeFill | None
    stop_id: str | None
    emergency_exit: ExchangeFill | None = None

    @property
    def open(self) -> bool:
        return self.fill is not None and self.stop_id is not None


class ExchangeBroker:
    """Entries, stops and exits through one signed client."""

    def __init__(
        self,
        client: UsdmClient,
        config: ExecutionConfig,
        clock: Clock,
        *,
        fee_bps: float,
        stop_pct: float,
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock
        self.fee_bps = fee_bps
        self.stop_pct = stop_pct
        self.rules: dict[str, SymbolRules] = {}
        self.stop_error: str | None = None  # why the last ensure_stop placed nothing

    async def prepare(self) -> None:
        """The server-time offset, the account's position mode (one-way: the orders carry
        no positionSide) and every symbol's quantity and price steps."""
        await self.client.sync_time()
        if not await self.client.one_way_mode():
            raise OrderRefused(
                "the account is in hedge mode; the bot needs one-way mode (Binance futures:"
                " Preferences, Position Mode, One-way)"
            )
        self.rules = await self.client.rules()

    def _rules(self, symbol: str) -> SymbolRules:
        rules = self.rules.get(symbol)
        if rules is None:
            raise OrderRefused(f"{symbol}: the exchange lists no rules for it (prepare first)")
        return rules

    # -- entries -------------------------------------------------------------------------

    async def open_position(
        self, position_id: str, symbol: str, side: Side, qty: float, reference_price: float
    ) -> EntryOutcome:
        """A market entry, then its stop on the exchange (or an immediate exit without one).

        Calling it again for the same `position_id` (a retry, a restart) adopts what the
        exchange already holds: it never opens a second position."""
        rules = self._rules(symbol)
        amount = rules.qty(qty)
        if amount < rules.min_qty or amount * Decimal(repr(reference_price)) < rules.min_notional:
            raise OrderRefused(
                f"{symbol}: {qty:.6g} is below the exchange's minimum order"
                f" ({rules.min_qty} or {rules.min_notional} USDT)"
            )
        notional = float(amount) * reference_price
        if notional > self.config.max_notional_usd:
            raise OrderRefused(
                f"{symbol}: {notional:.2f} USDT is above execution.max_notional_usd"
                f" ({self.config.max_notional_usd:g}); not sent"
            )
        params: dict[str, str | int] = {
            "symbol": symbol,
            "side": order_side(side, closing=False),
            "type": "MARKET",
            "quantity": decimal_text(amount),
        }
        fill = await self._market(symbol, client_order_id(position_id, ENTRY_LEG), params)
        if fill.qty <= 0.0:
            return EntryOutcome(None, None)
        stop_id = await self.ensure_stop(position_id, symbol, side, fill.price)
        if stop_id is not None:
            return EntryOutcome(fill, stop_id)
        exit_fill = await self.close_unprotected(position_id, symbol, side, fill)
        return EntryOutcome(fill, None, exit_fill)

    async def close_unprotected(
        self, position_id: str, symbol: str, side: Side, fill: ExchangeFill
    ) -> ExchangeFill:
        """Close `fill.qty` of a position whose stop could not be placed (reduce-only
        market, leg Z); PositionUnprotected when even that cannot be sent."""
        why = self.stop_error or "no stop could be placed"
        try:
            return await self.close_leg(position_id, NO_STOP_LEG, symbol, side, fill.qty)
        except ExchangeError as exc:
            raise PositionUnprotected(
                symbol,
                f"the stop could not be placed ({why}) and the reduce-only close could not be"
                f" sent ({exc})",
                fill,
            ) from None

    async def ensure_stop(
        self, position_id: str, symbol: str, side: Side, entry_price: float
    ) -> str | None:
        """The position's STOP_MARKET on the exchange (placed once); None when refused or
        every try failed (`stop_error` then says why).

        Bounded: `send_attempts` tries, each waiting at most `max_wait_s` for the rate
        limiter (a longer ban fails that try at once) and `request_timeout_s` for the answer.
        """
        cid = client_order_id(position_id, STOP_LEG)
        self.stop_error = None
        trigger = self._rules(symbol).price(stop_trigger(entry_price, side, self.stop_pct))
        params: dict[str, str | int] = {
            "algoType": "CONDITIONAL",
            "symbol": symbol,
            "side": order_side(side, closing=True),
            "type": "STOP_MARKET",
            "triggerPrice": decimal_text(trigger),
            "closePosition": "true",
            "workingType": "CONTRACT_PRICE",
            "clientAlgoId": cid,
        }
        for _ in range(self.config.send_attempts):
            try:
                if cid in await self.open_stop_ids(symbol):
                    return cid
                await self.client.request("POST", ALGO_PATH, params)
                return cid
            except ExchangeRejected as exc:
                self.stop_error = f"refused: {exc}"
                if exc.code == DUPLICATE_ID:
                    continue
                return None
            except TRANSIENT as exc:
                self.stop_error = f"{type(exc).__name__.removeprefix('Exchange')}: {exc}"
                continue
        return None

    async def open_stop_ids(self, symbol: str) -> set[str]:
        body = await self.client.request("GET", OPEN_ALGOS_PATH, {"symbol": symbol})
        rows = body if isinstance(body, list) else body.get("orders", [])
        return {str(row.get("clientAlgoId")) for row in rows if isinstance(row, dict)}

    # -- exits ---------------------------------------------------------------------------

    async def close_leg(
        self,
        position_id: str,
        leg: str,
        symbol: str,
        side: Side,
        qty: float,
        *,
        final: bool = True,
    ) -> ExchangeFill:
        """A reduce-only market exit of `qty` of the position (a tier, T4, the stop, the
        operator); `final` cancels the resting stop afterwards, once the whole `qty` filled
        (a close that filled a part, then expired or was cancelled, leaves the rest under
        its stop)."""
        amount = self._rules(symbol).qty(qty)
        params: dict[str, str | int] = {
            "symbol": symbol,
            "side": order_side(side, closing=True),
            "type": "MARKET",
            "quantity": decimal_text(amount),
            "reduceOnly": "true",
        }
        fill = await self._market(symbol, client_order_id(position_id, leg), params)
        if final and fill.qty >= float(amount) - float(self._rules(symbol).step) / 2:
            await self.cancel_stop(position_id, symbol)
        return fill

    async def cancel_stop(self, position_id: str, symbol: str) -> bool:
        """Cancel the position's resting stop; False when there was none to cancel."""
        cid = client_order_id(position_id, STOP_LEG)
        for _ in range(self.config.send_attempts):
            try:
                await self.client.request(
                    "DELETE", ALGO_PATH, {"symbol": symbol, "clientAlgoId": cid}
                )
                return True
            except ExchangeRejected:
                return False  # unknown: already triggered, cancelled or never placed
            except TRANSIENT:
                continue
        raise OutcomeUnknown(f"{symbol}: the stop {cid} may still rest on the exchange")

    # -- one market order, exactly once ---------------------------------------------------------

    async def _market(self, symbol: str, cid: str, params: dict[str, str | int]) -> ExchangeFill:
        order = await self._ensure_order(symbol, cid, params)
        order = await self.settle(symbol, cid, order)
        return await self.fill_of(symbol, cid, order)

    async def _ensure_order(
        self, symbol: str, cid: str, params: dict[str, str | int]
    ) -> dict[str, Any]:
        """Look the order up by its client id; send it only when the exchange has none.

        An order that can open a position (not reduce-only) whose sending went unanswered is
        not sent again here: a look-up moments later can miss an order the exchange took but
        has not recorded yet, and a second send would double the position. It is looked up
        once at once (found: adopted); not found, its outcome is unknown: the execution loop
        looks it up again after `retry_after_s` and books it, or drops it when the exchange
        still has none. A reduce-only order cannot open anything:
        it is looked up and sent again at once."""
        opening = params.get("reduceOnly") != "true" and params.get("closePosition") != "true"
        last: ExchangeError | None = None
        for _ in range(self.config.send_attempts):
            try:
                found = await self.lookup(symbol, cid)
                if found is not None:
                    return found
                try:
                    body = await self.client.request(
                        "POST",
                        ORDER_PATH,
                        {**params, "newClientOrderId": cid, "newOrderRespType": "RESULT"},
                    )
                except ExchangeUnknown as exc:  # sent; perhaps taken (429, refused: not)
                    if not opening:
                        raise
                    try:
                        found = await self.lookup(symbol, cid)
                    except TRANSIENT:
                        found = None  # no look either: unknown, never a second send
                    if found is not None:
                        return found
                    raise OutcomeUnknown(
                        f"{symbol}: order {cid} sent, no answer ({exc}), not found yet;"
                        f" looked up again in {self.config.retry_after_s:g} s, never sent twice"
                    ) from None
                return _order(body)
            except ExchangeRejected as exc:
                if exc.code == DUPLICATE_ID:
                    last = exc
                    continue
                raise OrderRefused(f"{symbol}: order refused: {exc}", exc.code) from None
            except TRANSIENT as exc:
                last = exc
        raise OutcomeUnknown(
            f"{symbol}: order {cid}: no readable answer after"
            f" {self.config.send_attempts} tries ({last})"
        )

    async def lookup(self, symbol: str, cid: str) -> dict[str, Any] | None:
        """The order with this client id, or None when the exchange has none."""
        try:
            body = await self.client.request(
                "GET", ORDER_PATH, {"symbol": symbol, "origClientOrderId": cid}
            )
        except ExchangeRejected as exc:
            if exc.code == NO_SUCH_ORDER:
                return None
            raise
        return _order(body)

    async def settle(self, symbol: str, cid: str, order: dict[str, Any]) -> dict[str, Any]:
        """Wait for a market order to finish filling; cancel what is left after the polls."""
        polls = 0
        while order.get("status") in OPEN_STATES and polls < self.config.fill_polls:
            polls += 1
            await self.clock.sleep_until(self.clock.now() + self.config.fill_poll_s)
            try:
                order = await self.lookup(symbol, cid) or order
            except TRANSIENT:
                continue
        if order.get("status") in OPEN_STATES:
            try:
                order = _order(
                    await self.client.request(
                        "DELETE", ORDER_PATH, {"symbol": symbol, "origClientOrderId": cid}
                    )
                )
            except ExchangeRejected:
                order = await self.lookup(symbol, cid) or order
        return order

    async def fill_of(self, symbol: str, cid: str, order: dict[str, Any]) -> ExchangeFill:
        """What the order executed. An unreadable quantity, or an unreadable or non-positive
        average price for a quantity that did fill, raises ExchangeGarbled: the order is then
        looked up again later, never booked at a made-up 0."""
        qty = exchange_number(order.get("executedQty"), f"{cid} executedQty")
        if qty < 0.0:
            raise ExchangeGarbled(f"the exchange's {cid} executedQty is negative ({qty!r})")
        price = 0.0  # nothing filled: there is no price, and none is booked
        if qty > 0.0:
            price = exchange_number(order.get("avgPrice"), f"{cid} avgPrice")
            if price <= 0.0:
                raise ExchangeGarbled(f"the exchange's {cid} avgPrice is {price!r} for a fill")
        order_id = order.get("orderId")
        oid = order_id if isinstance(order_id, int) else -1
        fee = qty * price * self.fee_bps * BPS  # the configured fee, unless the trades say
        if qty > 0.0 and oid >= 0:
            try:
                trades = await self.client.request(
                    "GET", TRADES_PATH, {"symbol": symbol, "orderId": oid}
                )
                paid = [
                    exchange_number(t.get("commission"), f"{cid} commission")
                    for t in trades
                    if isinstance(t, dict) and t.get("commissionAsset") == "USDT"
                ]
                if paid:
                    fee = math.fsum(paid)
            except (ExchangeRejected, *TRANSIENT):
                pass  # the estimate stands (also for an unreadable commission); it is done
        return ExchangeFill(cid, oid, str(order.get("status", "")), qty, price, fee)


def _order(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "status" not in body:
        raise ExchangeUnknown("the order answer has no status")
    return body
