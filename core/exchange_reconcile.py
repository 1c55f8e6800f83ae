"""Reconcile the book with the exchange: at start and every `execution.reconcile_every_min`
(run by `execution_loop.py`).

The book says which positions it holds (`Expected`, open quantity > 0) and which entries it
decided but may or may not have sent (`pending`). The exchange says what it holds: positions,
open orders, resting stops, and the fills since each entry. Every difference is either
explained and repaired, or reported as a mismatch that halts new entries:

- a pending entry the exchange filled (sent just before a crash): adopted, its stop placed;
- an open position whose stop is missing: the stop is placed;
- an open position the exchange no longer holds, with closing fills since its entry that add
  up to it (the stop fired while the bot was down): the exit is adopted at those fills;
- one of our orders or stops (client id `ba-...`) that serves no position: cancelled;
- an order that is not ours: left alone, listed;
- a position the book does not hold, on a symbol where an entry of ours was dropped as most
  likely not taken (`watched`): that entry is looked up by its client id; when it is what
  opened the position, it is adopted at its real fill and its stop placed;
- a position of the book (or an entry adopted now) whose quantity on the exchange differs,
  on the same side: a mismatch, and its stop is placed if missing (a `closePosition` stop
  guards whatever the exchange holds);
- anything else (a position the book does not know, a quantity on the other side, a position
  gone without the fills to explain it): a mismatch. `halt_reason` is then set; the operator
  looks, and acknowledges. A position no order of ours explains is left alone: no stop of
  ours is placed on it (docs/execution.md says why).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .exchange import ExchangeGarbled, ExchangeRejected, exchange_number
from .exchange_broker import (
    ALGO_PATH,
    BPS,
    ENTRY_LEG,
    ID_PREFIX,
    ORDER_PATH,
    STOP_LEG,
    TRADES_PATH,
    ExchangeBroker,
    ExchangeFill,
    client_order_id,
    order_side,
)
from .execution import AccountState, account_state
from .types import Side

#: Quantities closer than this share of a step are the same (float dust).
SAME_QTY_STEPS = 0.5


@dataclass(frozen=True, slots=True)
class Expected:
    """One position of the book, or an entry it decided and may have sent."""

    position_id: str
    symbol: str
    side: Side
    qty: float  # open quantity the book holds; 0 for a pending entry
    since_ms: int  # when the entry was (to be) sent: closing fills after it count
    pending: bool = False
    closed_qty: float = 0.0  # exit legs the book already holds (their fills are counted too)


@dataclass
class Reconciliation:
    adopted_entries: dict[str, ExchangeFill] = field(default_factory=dict)
    adopted_exits: dict[str, ExchangeFill] = field(default_factory=dict)
    stops_placed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    #: pending entries not adopted: position id -> what the exchange showed of them
    dropped_entries: dict[str, str] = field(default_factory=dict)
    #: of those, the ones the exchange has no order for (they may still show up later)
    unseen_entries: set[str] = field(default_factory=set)
    #: open positions whose stop is missing and could not be placed: position id -> why
    unprotected: dict[str, str] = field(default_factory=dict)
    account: AccountState | None = None  # as read during this reconciliation

    @property
    def halt_reason(self) -> str | None:
        """Why new entries must wait for the operator; None when everything is explained."""
        if not self.mismatches:
            return None
        return "exchange and book differ: " + "; ".join(self.mismatches)


#: What a pending entry's look-up said when the exchange has no order with its client id.
NO_ORDER = "no order "
#: Said of a position no order of ours explains (the bot places no stop on it).
LEFT_ALONE = "no order of the bot's explains it: left alone, no stop placed for it"


async def reconcile(
    broker: ExchangeBroker, expected: Sequence[Expected], watched: Sequence[Expected] = ()
) -> Reconciliation:
    """`expected`: the book's positions and the entries it may have sent (each pending one is
    looked up). `watched`: entries dropped as most likely not taken, looked up only when the
    exchange holds a position on their symbol that the book does not."""
    out = Reconciliation()
    open_qty: dict[str, float] = {}  # position id -> what the book (now) holds
    for item in expected:
        if item.pending:
            fill, seen = await _sent_entry(broker, item)
            if fill is not None:
                out.adopted_entries[item.position_id] = fill
                open_qty[item.position_id] = fill.qty
            else:
                out.dropped_entries[item.position_id] = seen
                if seen.startswith(NO_ORDER):
                    out.unseen_entries.add(item.position_id)
        elif item.qty > 0.0:
            open_qty[item.position_id] = item.qty
    state = await account_state(broker.client)
    out.account = state
    by_symbol = {i.symbol: i for i in expected if i.position_id in open_qty}
    for item in watched:
        held, _ = state.positions.get(item.symbol, (0.0, 0.0))
        if item.symbol in by_symbol or held * item.side.sign <= 0.0:
            continue
        fill, _ = await _sent_entry(broker, item)
        if fill is not None:  # the dropped entry was taken after all: it opened this position
            out.adopted_entries[item.position_id] = fill
            open_qty[item.position_id] = fill.qty
            by_symbol[item.symbol] = item
    stop_ids = {str(s.get("clientAlgoId")) for s in state.stops}
    for symbol, item in sorted(by_symbol.items()):
        held, entry_price = state.positions.get(symbol, (0.0, 0.0))
        want = item.side.sign * open_qty[item.position_id]
        if _same(broker, symbol, held, want):
            await _ensure_stop(broker, item, entry_price, stop_ids, out)
            continue
        if held == 0.0:
            exit_fill = await closed_while_down(broker, item, open_qty[item.position_id])
            if exit_fill is not None:
                out.adopted_exits[item.position_id] = exit_fill
                del open_qty[item.position_id]
                continue
        out.mismatches.append(f"{symbol}: book holds {want:+g}, exchange {held:+g}")
        if held * item.side.sign > 0.0:
            # the same side, another quantity: the stop (closePosition) guards what the
            # exchange holds; the difference is still said, and halts entries
            await _ensure_stop(broker, item, entry_price, stop_ids, out)
    for symbol, (held, _) in sorted(state.positions.items()):
        if symbol not in by_symbol:
            out.mismatches.append(
                f"{symbol}: exchange holds {held:+g}, the book nothing ({LEFT_ALONE})"
            )
    await _cancel_orphans(broker, state.stops, state.open_orders, set(open_qty), out)
    return out


async def _ensure_stop(
    broker: ExchangeBroker,
    item: Expected,
    entry_price: float,
    stop_ids: set[str],
    out: Reconciliation,
) -> None:
    """Place the position's stop when it is missing (its trigger measured from the
    exchange's entry price); one that cannot be placed is listed as unprotected."""
    if client_order_id(item.position_id, STOP_LEG) in stop_ids:
        return
    if entry_price <= 0.0:  # the stop's trigger is measured from it
        raise ExchangeGarbled(f"the exchange's {item.symbol} entryPrice is {entry_price!r}")
    stop = await broker.ensure_stop(item.position_id, item.symbol, item.side, entry_price)
    if stop is None:
        out.unprotected[item.position_id] = (
            "the stop was missing on the exchange and could not be placed"
            f" ({broker.stop_error or 'no answer'})"
        )
    else:
        out.stops_placed.append(stop)


def _step(broker: ExchangeBroker, symbol: str) -> float:
    rules = broker.rules.get(symbol)
    return float(rules.step) if rules is not None else 0.0


def _same(broker: ExchangeBroker, symbol: str, held: float, want: float) -> bool:
    return abs(held - want) <= max(_step(broker, symbol) * SAME_QTY_STEPS, 1e-12)


async def _sent_entry(broker: ExchangeBroker, item: Expected) -> tuple[ExchangeFill | None, str]:
    """The pending entry's fill when the exchange executed it; else None and what the
    look-up by its client id showed."""
    cid = client_order_id(item.position_id, ENTRY_LEG)
    order = await broker.lookup(item.symbol, cid)
    if order is None:
        return None, f"{NO_ORDER}{cid} on the exchange"
    order = await broker.settle(item.symbol, cid, order)
    fill = await broker.fill_of(item.symbol, cid, order)
    if fill.qty > 0.0:
        return fill, ""
    return None, f"order {cid} on the exchange filled nothing ({fill.status})"


async def closed_while_down(
    broker: ExchangeBroker, item: Expected, qty: float
) -> ExchangeFill | None:
    """The exit of the `qty` still open, when the closing fills since the entry add up to
    it and the legs already booked (`item.closed_qty`): priced at the newest fills."""
    trades = await broker.client.request(
        "GET", TRADES_PATH, {"symbol": item.symbol, "startTime": item.since_ms}
    )
    closing = order_side(item.side, closing=True)
    rows: list[dict[str, Any]] = [
        t
        for t in (trades if isinstance(trades, list) else [])
        if isinstance(t, dict) and t.get("side") == closing
    ]
    total = math.fsum(_f(t, "qty") for t in rows)
    if not rows or not _same(broker, item.symbol, total, qty + item.closed_qty):
        return None
    rows.sort(key=lambda t: _f(t, "time"))
    newest: list[dict[str, Any]] = []
    for row in reversed(rows):  # the booked legs are the older fills
        if math.fsum(_f(t, "qty") for t in newest) >= qty - _step(broker, item.symbol) / 2:
            break
        newest.append(row)
    rows = newest[::-1]
    done = math.fsum(_f(t, "qty") for t in rows)
    price = math.fsum(_f(t, "qty") * _f(t, "price") for t in rows) / done
    fee = math.fsum(_fee(broker, t) for t in rows)
    last = rows[-1].get("orderId")
    oid = last if isinstance(last, int) else -1
    await broker.cancel_stop(item.position_id, item.symbol)
    cid = client_order_id(item.position_id, STOP_LEG)
    return ExchangeFill(cid, oid, "FILLED", done, price, fee)


async def _cancel_orphans(
    broker: ExchangeBroker,
    stops: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    open_ids: set[str],
    out: Reconciliation,
) -> None:
    ours_stops = {client_order_id(pid, STOP_LEG) for pid in open_ids}
    for stop in stops:
        cid, symbol = str(stop.get("clientAlgoId")), str(stop.get("symbol"))
        if not cid.startswith(ID_PREFIX):
            out.foreign.append(f"{symbol} stop {cid}")
        elif cid not in ours_stops:
            await _cancel(broker, ALGO_PATH, {"symbol": symbol, "clientAlgoId": cid})
            out.cancelled.append(cid)
    for order in orders:
        cid, symbol = str(order.get("clientOrderId")), str(order.get("symbol"))
        if not cid.startswith(ID_PREFIX):
            out.foreign.append(f"{symbol} order {cid}")
        else:  # a market order of ours still open after a restart serves nothing now
            await _cancel(broker, ORDER_PATH, {"symbol": symbol, "origClientOrderId": cid})
            out.cancelled.append(cid)


async def _cancel(broker: ExchangeBroker, path: str, params: dict[str, str | int]) -> None:
    # refused: gone already (filled, triggered, cancelled), nothing left to cancel
    with contextlib.suppress(ExchangeRejected):
        await broker.client.request("DELETE", path, params)


def _f(row: dict[str, Any], key: str) -> float:
    """A trade's number (qty, price, time): unreadable raises ExchangeGarbled, never 0."""
    return exchange_number(row.get(key), f"trade {row.get('id', row.get('orderId'))} {key}")


def _fee(broker: ExchangeBroker, row: dict[str, Any]) -> float:
    """A trade's commission; unreadable: the configured fee (as for a failed query)."""
    try:
        return exchange_number(row.get("commission"), "commission")
    except ExchangeGarbled:
        return _f(row, "qty") * _f(row, "price") * broker.fee_bps * BPS
