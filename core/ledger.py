"""Ledger bookkeeping: the guard report and the records the ledgers write to the store.

Live closed trades live in `positions_futures.json` (key "closed", the recent ones the
learning loop reads); shadow twins of live trades and blocked twins append to
`shadow_trade_outcomes.jsonl`; each block appends to `guard_blocks.jsonl`. Records carry ids
that a re-run of the same bars reproduces, so after a crash the bar that was in flight
cannot append a record twice (`RecentIds`).

Guard report: per reason code, the signals blocked, their twins still open, and the blocked
opportunity cost = the sum of the closed blocked twins' P&L. Positive means the guard cost
money (the blocked trades would have won); negative means it saved money.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .frozen import fast_init
from .snapshot import GuardStatsView
from .store import Store, from_finite, private_opener
from .trades import ClosedTrade
from .types import BlockReason

#: How far back from the end of a JSONL file `RecentIds` looks. A crash can only leave the
#: records of one bar unaccounted for; a mebibyte holds thousands of them.
TAIL_BYTES = 1 << 20


@fast_init
@dataclass(frozen=True, slots=True)
class GuardTally:
    """Running figures of one guard (reason code)."""

    blocked: int = 0
    twins_closed: int = 0
    twins_won: int = 0
    opportunity_cost_usd: float = 0.0  # > 0: the guard cost money; < 0: it saved money

    def with_block(self) -> GuardTally:
        # every blocked signal passes here: built directly (`replace` costs ~3x more)
        return GuardTally(
            self.blocked + 1, self.twins_closed, self.twins_won, self.opportunity_cost_usd
        )

    def with_twin_closed(self, pnl_usd: float) -> GuardTally:
        return replace(
            self,
            twins_closed=self.twins_closed + 1,
            twins_won=self.twins_won + (pnl_usd > 0),
            opportunity_cost_usd=self.opportunity_cost_usd + pnl_usd,
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "blocked": self.blocked,
            "twins_closed": self.twins_closed,
            "twins_won": self.twins_won,
            "opportunity_cost_usd": self.opportunity_cost_usd,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GuardTally:
        counts = [record.get(k, 0) for k in ("blocked", "twins_closed", "twins_won")]
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
            raise ValueError("guard counts must be non-negative integers")
        cost = from_finite(record.get("opportunity_cost_usd", 0.0))
        if not math.isfinite(cost):
            raise ValueError("opportunity_cost_usd must be finite")
        return cls(counts[0], counts[1], counts[2], cost)


class GuardReport:
    """Every reason code's tally, in gate order."""

    def __init__(self) -> None:
        self.tallies: dict[BlockReason, GuardTally] = {r: GuardTally() for r in BlockReason}

    def note_block(self, reason: BlockReason) -> None:
        self.tallies[reason] = self.tallies[reason].with_block()

    def note_twin_closed(self, trade: ClosedTrade) -> None:
        if trade.block_reason is not None:
            reason = trade.block_reason
            self.tallies[reason] = self.tallies[reason].with_twin_closed(trade.pnl_usd)

    def views(self, open_twins: Mapping[BlockReason, int]) -> tuple[GuardStatsView, ...]:
        return tuple(
            GuardStatsView(
                reason=reason,
                blocked=tally.blocked,
                open_twins=open_twins.get(reason, 0),
                twins_closed=tally.twins_closed,
                opportunity_cost_usd=tally.opportunity_cost_usd,
            )
            for reason, tally in self.tallies.items()
        )

    def to_record(self) -> dict[str, Any]:
        return {r.value: t.to_record() for r, t in self.tallies.items()}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GuardReport:
        report = cls()
        for name, tally in record.items():
            report.tallies[BlockReason(name)] = GuardTally.from_record(tally)
        return report


def count_open_twins(reasons: Iterable[BlockReason | None]) -> dict[BlockReason, int]:
    counts: dict[BlockReason, int] = {}
    for reason in reasons:
        if reason is not None:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


class RecentIds:
    """Ids of the records at the end of a JSONL file, so a replayed bar never appends twice."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.ids: set[str] = set(tail_ids(store, name))
        # records the disk refused, oldest first (with their JSON text, when the caller made it)
        self.backlog: list[tuple[dict[str, Any], str | None]] = []

    def append_once(self, record: dict[str, Any], text: str | None = None) -> bool:
        """Append `record` unless its id is already there; False when skipped. A record the
        disk refuses waits in the backlog and goes first at the next append or `flush`.
        `text`: the record as `store.to_json` writes it, made by the caller (faster)."""
        record_id = str(record["id"])
        if record_id in self.ids:
            return False
        self.ids.add(record_id)
        self.backlog.append((record, text))
        self.flush()
        return True

    def flush(self) -> bool:
        """Write the backlog in order; True when nothing is left waiting."""
        while self.backlog:
            record, text = self.backlog[0]
            if not self.store.append_jsonl(self.name, record, text):
                return False
            self.backlog.pop(0)
        return True


def tail_ids(store: Store, name: str, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The `id` of each whole record in the last `max_bytes` of a JSONL file (reaching into
    its newest rotated generation when the log was rotated a moment ago)."""
    data = _tail_bytes(store.path(name), max_bytes)
    rotated = store.rotated_paths(name)
    if len(data) < max_bytes and rotated:
        data = _tail_bytes(rotated[-1], max_bytes - len(data)) + b"\n" + data
    lines = data.split(b"\n")
    ids: list[str] = []
    for raw in lines:  # a line cut by the tail window does not parse and is passed over
        try:
            record = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and "id" in record:
            ids.append(str(record["id"]))
    return ids


def _tail_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        with open(path, "rb", opener=private_opener) as fh:  # never through a symlink
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            return fh.read()
    except OSError:
        return b""  # absent, or unreadable: the learning loop's read reports it


def trading_status(book: Mapping[str, Any] | None) -> dict[str, Any]:
    """What `positions_futures.json` says, JSON-ready, for `bigalpha-tui status`."""
    if book is None:
        return {"open": [], "pending": 0, "closed_count": 0, "realised_closed_usd": 0.0}
    twins = [t for t in book.get("twins", []) if isinstance(t, dict)]
    open_twins = Counter(t.get("block_reason") for t in twins if t.get("block_reason"))
    totals = book.get("totals", {})
    return {
        "open": [
            {
                "symbol": p.get("symbol"),
                "side": p.get("side"),
                "qty_open": p.get("original_qty", 0.0)
                - math.fsum(leg.get("qty", 0.0) for leg in p.get("exits", [])),
                "entry_price": p.get("entry_price"),
                "entry_regime": p.get("entry_regime"),
                "force_hold_until_s": p.get("force_hold_until_s"),
                "tiers_taken": [leg.get("reason") for leg in p.get("exits", [])],
            }
            for p in book.get("open", [])
            if isinstance(p, dict)
        ],
        "pending": len(book.get("pending", [])),
        "closed_count": totals.get("closed_count", 0),
        "realised_closed_usd": totals.get("realised_closed_usd", 0.0),
        "guard": {
            reason: {**tally, "open_twins": open_twins.get(reason, 0)}
            for reason, tally in book.get("guard", {}).items()
            if isinstance(tally, dict)
        },
    }
