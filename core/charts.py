"""What the charts screen (`c`) draws, as plain data: the realised P&L curve of the live
trades against their shadow twins, where trades entered and left one symbol's price, and the
price history before the bot's last start.

Built from the journal (`journal.read_journal`, the one store reader of closed trades), the
saved Hurst state (`read_saved_closes`) and the snapshot; nothing here decides anything.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .bar import MINUTE_MS
from .journal import JournalEntry
from .snapshot import PositionView
from .store import HURST_CACHE, Store
from .types import Side

#: (bar close time s, close), oldest first, as `SymbolView.closes` holds them
Closes = tuple[tuple[float, float], ...]
BAR_S = MINUTE_MS / 1000.0


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


# -- price history from the store -------------------------------------------------------------


def saved_closes(doc: Mapping[str, Any] | None, bar_s: float = BAR_S) -> dict[str, Closes]:
    """Per symbol, the closes a saved Hurst tracker (`hurst_cache.json`) stands on, oldest
    first: its last close, at the close of the last bar it applied, and one close before it per
    saved log return (up to `hurst.window` of them), one bar apart; a gap in the feed would
    shift the older ones in time. Display only: a symbol whose state does not read is left
    out, and a walk back that leaves the positive finite prices stops there."""
    symbols = doc.get("symbols") if doc is not None else None
    if not isinstance(symbols, Mapping):
        return {}
    out: dict[str, Closes] = {}
    for symbol, state in symbols.items():
        try:
            last = float(state["last_close"])
            last_open_ms = state["last_open_ms"]
            returns = [float(r) for r in state.get("returns", ())]
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        if isinstance(last_open_ms, bool) or not isinstance(last_open_ms, int):
            continue
        if not (math.isfinite(last) and last > 0):
            continue
        back = [last]  # newest first
        for r in reversed(returns):
            try:
                before = back[-1] * math.exp(-r)  # close_i = close_i-1 * e^r_i, walked back
            except OverflowError:
                break
            if not (math.isfinite(before) and before > 0):
                break
            back.append(before)
        end_s = last_open_ms / 1000.0 + bar_s
        out[str(symbol)] = tuple(
            (end_s - i * bar_s, price) for i, price in reversed(list(enumerate(back)))
        )
    return out


def read_saved_closes(store: Store) -> dict[str, Closes]:
    """`saved_closes` of the store's Hurst state (pass a read-only store to change nothing):
    the price the bot saw before its last start, which its snapshot no longer carries."""
    return saved_closes(store.read_json(HURST_CACHE))


def price_history(live: Closes, saved: Closes, keep: int) -> Closes:
    """The snapshot's closes with the saved ones from before them in front: the last `keep`."""
    first_s = live[0][0] if live else math.inf
    earlier = tuple(c for c in saved if c[0] < first_s)
    return (earlier + live)[-keep:] if keep > 0 else ()
