"""What the snapshot shows of the trading loop: positions, guard figures, P&L, the
session's figures.

Read-only views built from the book; the bar loop (`trading.py`) never calls them (the
session tally only listens to the trades it closes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from .book import Book
from .config import ExitConfig
from .exits import ExitMode, stop_price, tier_price
from .golden_hour import DAY_S
from .ledger import count_open_twins
from .positions import TIERS, Position
from .profit_factor import profit_factor_of_pnls
from .snapshot import GuardStatsView, PositionView, SessionView
from .trades import ClosedTrade, Ledger
from .trading import TradingLoop
from .types import ExitReason


def unrealised_usd(book: Book) -> float:
    """Open quantity marked to each symbol's last close, before the exit fee."""
    return math.fsum(
        p.unrealised_usd(book.marks.get(p.symbol, p.entry_price)) for p in book.live.values()
    )


def realised_usd(book: Book) -> float:
    """Closed trades plus the locked-in part of open positions (fees, partial exits)."""
    return book.realised_closed_usd + math.fsum(p.realised_usd for p in book.live.values())


def next_tier(position: Position, mode: ExitMode) -> ExitReason | None:
    """The take-profit the exit rules in force wait for: T4 while only T4 or the stop may
    close the position, else the first tier of the ladder not taken yet."""
    if mode is not ExitMode.LADDER:
        return ExitReason.T4
    return next((t for t in TIERS if t not in position.tiers_taken), None)


def next_tier_price(
    position: Position, tier: ExitReason | None, config: ExitConfig
) -> float | None:
    return None if tier is None else tier_price(position, tier, config)


def position_view(loop: TradingLoop, position: Position, now_s: float) -> PositionView:
    mark = loop.book.marks.get(position.symbol, position.entry_price)
    mode = loop.mode_at(position, now_s)
    tier = next_tier(position, mode)
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
        exit_mode=mode.value,
        stop_price=stop_price(position, loop.config.exits),
        next_tier=tier,
        next_tier_price=next_tier_price(position, tier, loop.config.exits),
    )


def position_views(loop: TradingLoop, now_s: float) -> tuple[PositionView, ...]:
    return tuple(position_view(loop, p, now_s) for p in loop.book.live.values())


def guard_views(book: Book) -> tuple[GuardStatsView, ...]:
    open_twins = count_open_twins(t.block_reason for t in book.twins.values())
    return book.guard.views(open_twins)


def day_start_s(now_s: float) -> float:
    """00:00 UTC of the market day `now_s` falls in."""
    return now_s - now_s % DAY_S


@dataclass
class SessionTally:
    """The closed trades of this session, fed by the trading loop's trade observers: live
    trades and the shadow twins of live trades (blocked twins are the guards' business)."""

    started_s: float
    live_pnls: list[float] = field(default_factory=list)
    shadow_pnls: list[float] = field(default_factory=list)
    fees_usd: float = 0.0
    _view: SessionView | None = None  # the session part, rebuilt after a trade closes

    def note(self, trade: ClosedTrade) -> None:
        if trade.ledger is Ledger.LIVE:
            self.live_pnls.append(trade.pnl_usd)
            self.fees_usd += trade.fees_usd
        elif trade.ledger is Ledger.SHADOW:
            self.shadow_pnls.append(trade.pnl_usd)
        else:
            return
        self._view = None

    def session_part(self) -> SessionView:
        if self._view is None:
            self._view = SessionView(
                started_s=self.started_s,
                trades=len(self.live_pnls),
                wins=sum(1 for pnl in self.live_pnls if pnl > 0),
                live_pf=profit_factor_of_pnls(self.live_pnls),
                shadow_trades=len(self.shadow_pnls),
                shadow_pf=profit_factor_of_pnls(self.shadow_pnls),
                fees_usd=self.fees_usd,
                pnl_usd=math.fsum(self.live_pnls),
            )
        return self._view

    def view(self, book: Book, now_s: float) -> SessionView:
        """The session's figures and the market day's realised P&L as of `now_s`."""
        day_s = day_start_s(now_s)
        today = [t.pnl_usd for t in book.closed_live if t.exit_s >= day_s]
        return replace(
            self.session_part(),
            day_start_s=day_s,
            today_trades=len(today),
            today_pnl_usd=math.fsum(today) + open_legs_usd(book, day_s),
        )


def open_legs_usd(book: Book, since_s: float) -> float:
    """What the exits of still-open live positions (a take-profit tier, say) made since
    `since_s`: each leg net of its exit fee and its share of the entry fee, as its exit event
    reports it. Once the position closes, its legs are in its trade's P&L instead (the
    journal's figure, counted on the day the trade closed), so no leg counts twice."""
    return math.fsum(
        p.leg_net_pnl_usd(leg)
        for p in book.live.values()
        for leg in p.exits
        if leg.time_s >= since_s
    )
