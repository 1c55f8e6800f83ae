"""What the snapshot shows of the trading loop: positions, guard figures, P&L.

Read-only views built from the book; the bar loop (`trading.py`) never calls them.
"""

from __future__ import annotations

import math

from .book import Book
from .exits import stop_price
from .ledger import count_open_twins
from .positions import Position
from .snapshot import GuardStatsView, PositionView
from .trading import TradingLoop


def unrealised_usd(book: Book) -> float:
    """Open quantity marked to each symbol's last close, before the exit fee."""
    return math.fsum(
        p.unrealised_usd(book.marks.get(p.symbol, p.entry_price)) for p in book.live.values()
    )


def realised_usd(book: Book) -> float:
    """Closed trades plus the locked-in part of open positions (fees, partial exits)."""
    return book.realised_closed_usd + math.fsum(p.realised_usd for p in book.live.values())


def position_view(loop: TradingLoop, position: Position, now_s: float) -> PositionView:
    mark = loop.book.marks.get(position.symbol, position.entry_price)
    return PositionView(
        id=position.id,
        symbol=position.symbol,
        side=position.side,
        qty=position.open_qty,
        original_qty=position.original_qty,
        entry_price=position.entry_price,
        mark_price=mark,
        pnl_pct=position.pnl_pct(mark),
        pnl_usd=position.realised_usd + position.unrealised_usd(mark),
        tiers_taken=position.tiers_taken,
        conviction=position.conviction,
        entry_regime=position.entry_regime,
        opened_s=position.entry_s,
        force_hold_until_s=position.force_hold_until_s,
        exit_mode=loop.mode_at(position, now_s).value,
        stop_price=stop_price(position, loop.config.exits),
    )


def position_views(loop: TradingLoop, now_s: float) -> tuple[PositionView, ...]:
    return tuple(position_view(loop, p, now_s) for p in loop.book.live.values())


def guard_views(book: Book) -> tuple[GuardStatsView, ...]:
    open_twins = count_open_twins(t.block_reason for t in book.twins.values())
    return book.guard.views(open_twins)
