"""The trade journal: every closed live trade the store holds, newest first, each with its
shadow twin's result.

Live trades come from `live_trade_outcomes.jsonl` (every closed live trade, rotated
generations included) and from `positions_futures.json` "closed" (the recent ones; a store
written before the log existed has only these); a trade in both counts once. Shadow twins
come from `shadow_trade_outcomes.jsonl` and are linked by their `twin_of` field. A record
that does not decode is counted, not shown. Read-only: nothing here writes or decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from .learning_store import closed_trade_records
from .store import LIVE_OUTCOMES, POSITIONS, SHADOW_OUTCOMES, Store
from .trades import ClosedTrade, Ledger


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One closed live trade and what its shadow twin did (None: no closed twin found)."""

    trade: ClosedTrade
    twin: ClosedTrade | None = None

    @property
    def hold_s(self) -> float:
        return self.trade.exit_s - self.trade.entry_s

    @property
    def twin_pnl_usd(self) -> float | None:
        return None if self.twin is None else self.twin.pnl_usd


@dataclass(frozen=True, slots=True)
class Journal:
    """The closed live trades, newest exit first; `unreadable` records were left out."""

    entries: tuple[JournalEntry, ...] = ()
    unreadable: int = 0

    def for_symbol(self, text: str) -> tuple[JournalEntry, ...]:
        """The entries whose symbol contains `text` (any case); all of them for ""."""
        needle = text.strip().upper()
        return tuple(e for e in self.entries if needle in e.trade.symbol.upper())


def _decode(record: object, ledger: Ledger) -> ClosedTrade | None:
    if not isinstance(record, dict):
        return None
    try:
        trade = ClosedTrade.from_record(record)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return trade if trade.ledger is ledger else None


def pair_twins(live: list[ClosedTrade], shadow: list[ClosedTrade]) -> tuple[JournalEntry, ...]:
    """Each live trade (once per id) with the shadow trade whose `twin_of` is its id,
    newest exit first (ties: newest entry, then id)."""
    by_id = {t.id: t for t in live}
    twins = {t.twin_of: t for t in shadow if t.twin_of is not None}
    ordered = sorted(by_id.values(), key=lambda t: (t.exit_s, t.entry_s, t.id), reverse=True)
    return tuple(JournalEntry(t, twins.get(t.id)) for t in ordered)


def read_journal(store: Store) -> Journal:
    """The journal as the store holds it now (pass a read-only store to change nothing)."""
    unreadable = 0
    live: list[ClosedTrade] = []
    records = [
        *store.iter_jsonl(LIVE_OUTCOMES, with_rotated=True),
        *closed_trade_records(store.read_json(POSITIONS)),
    ]
    for record in records:
        trade = _decode(record, Ledger.LIVE)
        if trade is None:
            unreadable += 1
        else:
            live.append(trade)
    shadow: list[ClosedTrade] = []
    for record in store.iter_jsonl(SHADOW_OUTCOMES, with_rotated=True):
        trade = _decode(record, Ledger.SHADOW)
        if trade is not None:
            shadow.append(trade)  # blocked twins share the log: not ours, not unreadable
    return Journal(pair_twins(live, shadow), unreadable)
