"""What the learning loop and `bigalpha-tui status` read from the store.

The closed live trades live in `positions_futures.json` (its "closed" key: the recent ones),
the shadow and blocked twins' outcomes in `shadow_trade_outcomes.jsonl` (rotated generations
included), the symbol states and the schedule in `symbol_states.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .learning_cycle import iso
from .learning_schedule import LearningSchedule
from .probation import SymbolStatus
from .profit_factor import pf_json
from .store import POSITIONS, SHADOW_OUTCOMES, SYMBOL_STATES, Store
from .trades import ClosedTrade, Ledger


@dataclass(frozen=True, slots=True)
class LedgerRead:
    live: list[ClosedTrade] = field(default_factory=list)
    shadow: list[ClosedTrade] = field(default_factory=list)
    unreadable: int = 0


def closed_trade_records(positions_doc: Mapping[str, Any] | None) -> list[Any]:
    """The closed live trades inside `positions_futures.json` (its layout lives here only)."""
    if positions_doc is None:
        return []
    closed = positions_doc.get("closed", [])
    return list(closed) if isinstance(closed, list) else []


#: A record already checked, by its exact text (`repr` of the decoded JSON): the learning
#: loop reads the whole outcome log every cycle, and checking a record costs ~100 us.
TradeCache = dict[str | bytes, ClosedTrade]


def _parse_trades(
    records: Iterable[Any],
    ledger: Ledger,
    cache: TradeCache | None = None,
    seen: TradeCache | None = None,
) -> tuple[list[ClosedTrade], int]:
    keyed = ((repr(record) if cache is not None else "", record) for record in records)
    return _to_trades(keyed, ledger, cache, seen)


def _to_trades(
    keyed: Iterable[tuple[str | bytes, Any]],
    ledger: Ledger,
    cache: TradeCache | None,
    seen: TradeCache | None,
) -> tuple[list[ClosedTrade], int]:
    """`ledger`'s trades of (key, record) pairs, a key found in `cache` not checked again;
    every trade read goes into `seen` under its key; the second value counts bad records."""
    trades: list[ClosedTrade] = []
    bad = 0
    for key, record in keyed:
        trade = cache.get(key) if cache is not None else None
        if trade is None:
            try:
                trade = ClosedTrade.from_record(record)
            except (KeyError, TypeError, ValueError, AttributeError):
                bad += 1
                continue
        if seen is not None:
            seen[key] = trade
        if trade.ledger is ledger:
            trades.append(trade)
    return trades, bad


@dataclass
class LogTail:
    """What the last read of the outcome log saw: its whole lines (bytes) and their trades
    of one ledger. A replay's learning loop reads the whole log every cycle; while the file
    only grows (the same bytes, then more lines) a read goes through the new lines alone,
    so a long replay does not read its growing log again and again (quadratic in its
    length)."""

    data: bytes = b""
    ledger: Ledger | None = None
    trades: list[ClosedTrade] = field(default_factory=list)
    #: a throwaway store that follows the log (`Store.follow_log`) hands over the records
    #: appended since the log held `size` bytes: the lines are then not read back (`data`
    #: is left empty); -1: read the file
    size: int = -1

    def reset(self) -> None:
        self.data, self.ledger, self.trades, self.size = b"", None, [], -1


def _appended_trades(store: Store, ledger: Ledger, tail: LogTail) -> list[ClosedTrade] | None:
    """The log's trades through the records its store appended since the last read, each
    checked as a line read back is (`ClosedTrade.from_record`: a record is checked on its
    way to the disk as on its way back, JSON's round trip changing nothing it checks).
    None when the store cannot vouch for the log or a record does not read: the file is
    then read, and what is wrong counted and reported as a fresh read does."""
    handed = store.appended_records(SHADOW_OUTCOMES, tail.size)
    if handed is None:
        return None
    records, size = handed
    new: list[ClosedTrade] = []
    for record in records:
        try:
            new.append(ClosedTrade.from_record(record))
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            return None
    tail.size = size
    tail.trades.extend(t for t in new if t.ledger is ledger)
    return list(tail.trades)


def _read_grown_log(
    store: Store, ledger: Ledger, cache: TradeCache, tail: LogTail
) -> list[ClosedTrade] | None:
    """The log's trades through `tail`: the lines after the bytes read last time. None when
    the file is not the last one grown (edited, cut, rotated, unreadable) or holds a line
    that does not read: the full read then reads it, and counts and reports what it finds."""
    if tail.ledger not in (None, ledger):
        return None
    if tail.size >= 0:  # the store hands the new records over, or the file is read afresh
        return _appended_trades(store, ledger, tail)
    data = store.read_log_bytes(SHADOW_OUTCOMES)
    if data is None or not data.startswith(tail.data):
        return None
    pieces = data[len(tail.data) :].split(b"\n")
    # every piece but the last ended with a newline; the last is a line without one
    # (a write in progress or torn: read now, not kept, as the full read reads it) or b""
    raws = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        raws.append(pieces[-1])
    new: list[ClosedTrade] = []
    for raw in raws:
        trade = cache.get(raw)
        if trade is None:
            try:
                record = json.loads(raw.decode("utf-8"))
                if not isinstance(record, dict):
                    return None
                trade = ClosedTrade.from_record(record)
            except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
                return None  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        new.append(trade)
    whole = new if not pieces[-1] else new[:-1]
    tail.ledger = ledger
    tail.trades.extend(t for t in whole if t.ledger is ledger)
    tail.data = data[: len(data) - len(pieces[-1])]
    if whole is new:
        if store.follows_log(SHADOW_OUTCOMES):  # the next reads take its records
            store.log_read_to(SHADOW_OUTCOMES, len(data))
            tail.size, tail.data = len(data), b""
        return list(tail.trades)
    return [*tail.trades, *(t for t in new[-1:] if t.ledger is ledger)]


def _parse_log_trades(
    store: Store,
    ledger: Ledger,
    cache: TradeCache,
    seen: TradeCache | None,
    tail: LogTail | None = None,
) -> tuple[list[ClosedTrade], int]:
    """The outcome log's trades; a line read before (same bytes) is not decoded again, and
    with `tail` a log that only grew is read from where the last read stopped."""
    if tail is not None:
        # the lines it reads are kept in `tail`, not in `seen`: after a full read the
        # next read checks them again (once), a cache of every line would be a second copy
        grown = _read_grown_log(store, ledger, cache, tail)
        if grown is not None:
            return grown, 0
        tail.reset()
    # a line in `cache` comes without its record (None): not decoded again
    lines = store.iter_jsonl_lines(SHADOW_OUTCOMES, with_rotated=True, known=cache)
    return _to_trades(lines, ledger, cache, seen)


#: The closed live trades of a book waiting unencoded in a throwaway store
#: (`Store.pending_doc`), each with its record, by the record's identity: a record in the
#: book is never changed, so one checked is not checked again while the book keeps it.
RecordMemo = dict[int, tuple[dict[str, Any], ClosedTrade]]


def _waiting_closed_records(store: Store) -> list[dict[str, Any]] | None:
    """The closed live trades' records of a book waiting in memory, not encoded (what
    `read_json` would give back through JSON); None when there is none, or when its layout
    is not the one the book writes (a list of plain dicts): the file is then read."""
    doc = store.pending_doc(POSITIONS)
    if doc is None:
        return None
    closed = doc.get("closed", [])
    if type(closed) is not list or any(type(record) is not dict for record in closed):
        return None
    return closed


def _memo_trades(
    records: list[dict[str, Any]], ledger: Ledger, memo: RecordMemo
) -> tuple[list[ClosedTrade], int]:
    """`ledger`'s trades of `records`, a record checked before (the same object) not
    checked again; `memo` is left holding this read's records only."""
    trades: list[ClosedTrade] = []
    bad = 0
    seen: RecordMemo = {}
    for record in records:
        kept = memo.get(id(record))
        if kept is not None and kept[0] is record:
            trade = kept[1]
        else:
            try:
                trade = ClosedTrade.from_record(record)
            except (KeyError, TypeError, ValueError, AttributeError):
                bad += 1
                continue
        seen[id(record)] = (record, trade)
        if trade.ledger is ledger:
            trades.append(trade)
    memo.clear()
    memo.update(seen)
    return trades, bad


def read_ledgers(
    store: Store,
    cache: TradeCache | None = None,
    tail: LogTail | None = None,
    memo: RecordMemo | None = None,
) -> LedgerRead:
    """Closed live trades and shadow outcomes as the store holds them now. `cache` (kept by
    the caller between reads) spares re-checking records read before: it is left holding
    the records of this read only. `tail` (kept too, with a cache) spares reading again the
    part of the outcome log the last read saw, while the log only grew. `memo` (kept too)
    spares encoding and decoding a throwaway store's book, waiting in memory, to read its
    closed trades (each checked as a record read from the file is)."""
    seen: TradeCache | None = None if cache is None else {}
    waiting = None if memo is None else _waiting_closed_records(store)
    if memo is not None and waiting is not None:
        live, bad_live = _memo_trades(waiting, Ledger.LIVE, memo)
    else:
        live, bad_live = _parse_trades(
            closed_trade_records(store.read_json(POSITIONS)), Ledger.LIVE, cache, seen
        )
    if cache is None:
        shadow, bad_shadow = _parse_trades(
            store.iter_jsonl(SHADOW_OUTCOMES, with_rotated=True), Ledger.SHADOW
        )
    else:
        shadow, bad_shadow = _parse_log_trades(store, Ledger.SHADOW, cache, seen, tail)
    if cache is not None and seen is not None:
        cache.clear()
        cache.update(seen)
    return LedgerRead(live, shadow, bad_live + bad_shadow)


def learning_status(store: Store) -> dict[str, Any]:
    """Last cycle, next due slot, and each symbol's state and buffer, JSON-ready.

    Reads `symbol_states.json` only (pass a read-only store to change nothing).
    """
    doc = store.read_json(SYMBOL_STATES) or {}
    raw_schedule = doc.get("learning") or {}
    symbols: dict[str, Any] = {}
    try:
        interval_s = float(raw_schedule.get("interval_s") or 0.0)
        schedule = LearningSchedule.from_record(interval_s, raw_schedule)
        for symbol, record in sorted((doc.get("symbols") or {}).items()):
            status = SymbolStatus.from_record(str(symbol), record)
            symbols[symbol] = {
                "state": status.state.value,
                "slippage_buffer_bps": status.slippage_buffer_bps,
                "golden_pf": pf_json(status.golden_pf),
                "golden_trades": status.golden_trades,
                "state_changed": None
                if status.state_changed_s is None
                else iso(status.state_changed_s),
                "state_reason": status.state_reason,
            }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return {"error": f"{SYMBOL_STATES}: unexpected content ({exc})"}
    last = schedule.last_slot_s
    next_due_s = last + interval_s if last is not None and interval_s > 0 else None
    return {
        "cycles": schedule.cycles,
        "last_cycle_s": schedule.last_cycle_s,
        "last_cycle": None if schedule.last_cycle_s is None else iso(schedule.last_cycle_s),
        "next_due_s": next_due_s,
        "next_due": None if next_due_s is None else iso(next_due_s),
        "last_summary": schedule.last_summary,
        "symbols": symbols,
    }
