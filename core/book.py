"""The trading book and its file, `positions_futures.json` (DESIGN.md "Store").

The book is everything the trading loop must remember across a restart: per symbol the last
bar applied, the regime published at it, the mark and the strategy's windows; the open live
positions with their entry regime, force-hold deadline and tiers taken; entry orders waiting
for their fill; shadow and blocked twins; the recent closed live trades (what the learning
loop reads); the running totals, the guard report and the guard log.

Decoding is strict and record by record: a record with one bad field is set aside alone and
named, the others are kept, so one hand edit or bad byte never costs the open positions their
stops. Only a document without the book's one required key ("open") is another file's layout
and is set aside whole.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import codec
from .config import Config
from .ledger import GuardReport, GuardTally
from .orders import EntryOrder
from .positions import Position
from .snapshot import GuardBlockView
from .strategy import AlphaOfi
from .trades import ClosedTrade, Ledger
from .types import BlockReason, Regime, Side

GUARD_LOG_LEN = 50

T = TypeVar("T")


@dataclass
class Book:
    """The trading loop's state that outlives the process."""

    last_open_ms: dict[str, int] = field(default_factory=dict)
    last_regime: dict[str, Regime] = field(default_factory=dict)  # at the symbol's last close
    marks: dict[str, float] = field(default_factory=dict)
    live: dict[str, Position] = field(default_factory=dict)  # one per symbol
    pending: dict[str, EntryOrder] = field(default_factory=dict)  # one per symbol
    twins: dict[str, Position] = field(default_factory=dict)  # shadow and blocked, by id
    closed_live: list[ClosedTrade] = field(default_factory=list)  # recent, for learning
    closed_records: list[dict[str, Any]] = field(default_factory=list)  # the same, serialised
    realised_closed_usd: float = 0.0
    closed_count: int = 0
    guard: GuardReport = field(default_factory=GuardReport)
    guard_log: deque[GuardBlockView] = field(default_factory=lambda: deque(maxlen=GUARD_LOG_LEN))
    strategies: dict[str, AlphaOfi] = field(default_factory=dict)
    cooldown_until_s: dict[str, float] = field(default_factory=dict)  # after operator closes


def encode(book: Book) -> dict[str, Any]:
    return {
        "last_open_ms": dict(book.last_open_ms),
        "last_regime": {s: r.value for s, r in book.last_regime.items()},
        "marks": dict(book.marks),
        "open": [p.to_record() for p in book.live.values()],
        "pending": [o.to_record() for o in book.pending.values()],
        "twins": [t.to_record() for t in book.twins.values()],
        "closed": book.closed_records,
        "totals": {
            "realised_closed_usd": book.realised_closed_usd,
            "closed_count": book.closed_count,
        },
        "guard": book.guard.to_record(),
        "guard_log": [guard_view_record(v) for v in book.guard_log],
        "strategy": {s: a.to_state() for s, a in book.strategies.items()},
        "cooldown_until_s": dict(book.cooldown_until_s),
    }


@dataclass
class Decoded:
    book: Book
    set_aside: list[str]  # one line per record left out, naming it and why


def decode(doc: Mapping[str, Any], config: Config, latest_s: float) -> Decoded:
    """The book a document holds, keeping every valid record; KeyError when the document is
    not a book at all (no "open" list: another file's layout, set aside whole)."""
    if not isinstance(doc.get("open"), list):
        raise KeyError("open")
    bad: list[str] = []
    reader = codec.Reader(bad)
    book = Book()
    for position in reader.items(doc, "open", lambda r: Position.from_record(r, latest_s)):
        if position.ledger is not Ledger.LIVE or position.symbol in book.live:
            bad.append(f"open {position.id}: not the one live position of {position.symbol}")
            continue
        book.live[position.symbol] = position
    for order in reader.items(doc, "pending", lambda r: EntryOrder.from_record(r, latest_s)):
        if order.symbol in book.pending:
            bad.append(f"pending {order.id}: a second order for {order.symbol}")
            continue
        book.pending[order.symbol] = order
    for twin in reader.items(doc, "twins", lambda r: Position.from_record(r, latest_s)):
        if twin.ledger is Ledger.LIVE or twin.id in book.twins:
            bad.append(f"twins {twin.id}: not a shadow or blocked twin, or a repeat")
            continue
        book.twins[twin.id] = twin
    book.closed_live = reader.items(doc, "closed", lambda r: ClosedTrade.from_record(r, latest_s))
    book.closed_records = [t.to_record() for t in book.closed_live]
    book.last_open_ms = reader.entries(
        doc, "last_open_ms", lambda _, v: codec.time_ms(v, "last_open_ms", latest_s)
    )
    book.last_regime = reader.entries(
        doc, "last_regime", lambda _, v: codec.choice(Regime, v, "last_regime")
    )
    book.marks = reader.entries(doc, "marks", lambda _, v: codec.positive(v, "mark"))
    book.strategies = reader.entries(doc, "strategy", _strategy_reader(config))
    book.cooldown_until_s = reader.entries(
        doc, "cooldown_until_s", lambda _, v: codec.time_s(v, "cooldown_until_s", latest_s)
    )
    _decode_totals(doc, book, bad)
    _decode_guard(doc, book, bad)
    log = reader.items(doc, "guard_log", guard_view_from_record)
    book.guard_log = deque(log, maxlen=GUARD_LOG_LEN)
    return Decoded(book, bad)


def _strategy_reader(config: Config) -> Callable[[str, Any], AlphaOfi]:
    def read(symbol: str, state: Any) -> AlphaOfi:
        if not isinstance(state, dict):
            raise codec.RecordError("strategy state must be an object")
        return AlphaOfi.from_state(symbol, config.strategy, state)

    return read


def _decode_totals(doc: Mapping[str, Any], book: Book, bad: list[str]) -> None:
    """Totals that do not read are recounted from what is known, and said so."""
    totals = doc.get("totals", {})
    if not isinstance(totals, Mapping):
        totals = {}
        bad.append("totals: not an object; recounted from the closed trades kept")
    try:
        book.realised_closed_usd = codec.number(
            totals.get("realised_closed_usd", 0.0), "realised_closed_usd"
        )
    except codec.RecordError as exc:
        book.realised_closed_usd = math.fsum(t.pnl_usd for t in book.closed_live)
        bad.append(f"totals: {exc}; recounted from the closed trades kept")
    try:
        book.closed_count = codec.count(
            totals.get("closed_count", len(book.closed_live)), "closed_count"
        )
    except codec.RecordError as exc:
        book.closed_count = len(book.closed_live)
        bad.append(f"totals: {exc}; recounted from the closed trades kept")


def _decode_guard(doc: Mapping[str, Any], book: Book, bad: list[str]) -> None:
    record = doc.get("guard", {})
    if not isinstance(record, Mapping):
        bad.append("guard: not an object; the guard report starts again")
        return
    for name, tally in record.items():
        try:
            reason = codec.choice(BlockReason, name, "guard reason")
            book.guard.tallies[reason] = GuardTally.from_record(tally)
        except (codec.RecordError, ValueError, TypeError, AttributeError) as exc:
            bad.append(f"guard {name}: {exc}; that tally starts again")


def guard_view_record(view: GuardBlockView) -> dict[str, Any]:
    return {
        "time_s": view.time_s,
        "symbol": view.symbol,
        "side": view.side.value,
        "reason": view.reason.value,
        "detail": view.detail,
    }


def guard_view_from_record(record: Any) -> GuardBlockView:
    f = codec.field
    return GuardBlockView(
        time_s=codec.number(f(record, "time_s"), "time_s", low=codec.EARLIEST_S),
        symbol=codec.text(f(record, "symbol"), "symbol"),
        side=codec.choice(Side, f(record, "side"), "side"),
        reason=codec.choice(BlockReason, f(record, "reason"), "reason"),
        detail=codec.text(f(record, "detail"), "detail"),
    )
