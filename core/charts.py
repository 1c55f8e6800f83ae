"""What the charts screen (`c`) draws, as plain data: the realised P&L curve of the live
trades against their shadow twins, and where trades entered and left one symbol's price.

Built from the journal (`journal.read_journal`, the one store reader of closed trades) and
the snapshot; nothing here reads a file or decides anything.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .journal import JournalEntry
from .snapshot import PositionView
from .types import Side


@dataclass(frozen=True, slots=True)
class PnlCurve:
    """Cumulative realised P&L (net of fees) after each closed live trade, oldest first, and
    the same for the shadow twins of those trades (a trade whose twin has not closed adds
    nothing to the shadow curve and is counted in `untwinned`)."""

    times_s: tuple[float, ...] = ()
    live_usd: tuple[float, ...] = ()
    shadow_usd: tuple[float, ...] = ()
    untwinned: int = 0

    @property
    def trades(self) -> int:
        return len(self.times_s)

    @property
    def live_total_usd(self) -> float:
        return self.live_usd[-1] if self.live_usd else 0.0

    @property
    def shadow_total_usd(self) -> float:
        return self.shadow_usd[-1] if self.shadow_usd else 0.0


def pnl_curve(entries: Iterable[JournalEntry], since_s: float | None = None) -> PnlCurve:
    """The curve over the trades that exited at or after `since_s` (all of them for None)."""
    chosen = sorted(
        (e for e in entries if since_s is None or e.trade.exit_s >= since_s),
        key=lambda e: (e.trade.exit_s, e.trade.entry_s, e.trade.id),
    )
    live = itertools.accumulate(e.trade.pnl_usd for e in chosen)
    shadow = itertools.accumulate(0.0 if e.twin is None else e.twin.pnl_usd for e in chosen)
    untwinned = sum(1 for e in chosen if e.twin is None)
    times = tuple(e.trade.exit_s for e in chosen)
    return PnlCurve(times, tuple(live), tuple(shadow), untwinned)


class MarkKind(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class TradeMark:
    """A fill on the price chart: a live trade's entry or (average) exit."""

    time_s: float
    price: float
    side: Side
    kind: MarkKind


def trade_marks(
    entries: Iterable[JournalEntry],
    positions: Iterable[PositionView],
    symbol: str,
    start_s: float,
    end_s: float,
) -> tuple[TradeMark, ...]:
    """Entries and exits of `symbol` between `start_s` and `end_s` (inclusive), oldest
    first: closed trades from the journal and the entries of open positions."""
    marks: list[TradeMark] = []
    for entry in entries:
        t = entry.trade
        if t.symbol != symbol:
            continue
        marks.append(TradeMark(t.entry_s, t.entry_price, t.side, MarkKind.ENTRY))
        marks.append(TradeMark(t.exit_s, t.exit_price, t.side, MarkKind.EXIT))
    for position in positions:
        if position.symbol == symbol:
            marks.append(
                TradeMark(position.opened_s, position.entry_price, position.side, MarkKind.ENTRY)
            )
    inside = (m for m in marks if start_s <= m.time_s <= end_s)
    return tuple(sorted(inside, key=lambda m: (m.time_s, m.kind != MarkKind.ENTRY)))
