"""Immutable snapshots the core publishes after each step; the UI and the headless logger
only ever read these. Nothing here refers to a live core object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .flow import FlowState
from .hurst import HurstReading
from .sources.base import SourceHealth
from .types import (
    BlockReason,
    Conviction,
    ExitReason,
    Regime,
    Side,
    SymbolState,
)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """When the core last processed a bar: market time and wall time."""

    market_time_s: float | None = None
    wall_time_s: float | None = None
    bars_processed: int = 0

    def age_s(self, wall_now_s: float) -> float | None:
        """Wall seconds since the last processed bar (None before the first)."""
        if self.wall_time_s is None:
            return None
        return max(0.0, wall_now_s - self.wall_time_s)


@dataclass(frozen=True, slots=True)
class SymbolView:
    """One symbol's row across the whale, Hurst and probation panels."""

    symbol: str
    price: float | None
    flow: FlowState
    hurst: HurstReading
    h_history: tuple[float, ...] = ()
    state: SymbolState = SymbolState.ACTIVE
    golden_pf: float | None = None
    golden_trades: int = 0
    size_cap: float = 1.0
    slippage_buffer_bps: float = 0.0
    state_changed_s: float | None = None
    state_reason: str = ""
    closes: tuple[tuple[float, float], ...] = ()  # (bar close time s, close), oldest first


@dataclass(frozen=True, slots=True)
class PositionView:
    """An open live position as the operator sees it."""

    id: str
    symbol: str
    side: Side
    qty: float
    original_qty: float
    entry_price: float
    mark_price: float
    pnl_pct: float
    pnl_usd: float
    tiers_taken: tuple[ExitReason, ...]
    conviction: Conviction
    entry_regime: Regime
    opened_s: float
    force_hold_until_s: float | None
    exit_mode: str  # "force-hold", "T4/stop only" or "ladder"
    stop_price: float | None = None  # the emergency stop's level
    next_tier: ExitReason | None = None  # the take-profit the exit rules in force wait for
    next_tier_price: float | None = None  # its level

    @property
    def unrealised_usd(self) -> float:
        """The open quantity marked to `mark_price`, before the exit fee (what `pnl_pct` is
        in money)."""
        return self.side.sign * (self.mark_price - self.entry_price) * self.qty

    def force_hold_left_s(self, market_now_s: float) -> float:
        if self.force_hold_until_s is None:
            return 0.0
        return max(0.0, self.force_hold_until_s - market_now_s)


@dataclass(frozen=True, slots=True)
class GuardBlockView:
    """One blocked entry signal."""

    time_s: float
    symbol: str
    side: Side
    reason: BlockReason
    detail: str


@dataclass(frozen=True, slots=True)
class GuardStatsView:
    """Guard effectiveness for one reason code."""

    reason: BlockReason
    blocked: int = 0
    open_twins: int = 0
    opportunity_cost_usd: float = 0.0  # > 0: the guard cost money; < 0: it saved money
    twins_closed: int = 0  # the opportunity cost is theirs; none closed yet: "open"


@dataclass(frozen=True, slots=True)
class LearningView:
    last_cycle_s: float | None = None
    next_cycle_s: float | None = None
    last_summary: str = ""
    cycles: int = 0


@dataclass(frozen=True, slots=True)
class SessionView:
    """Closed-trade figures for the operator: the bot's since it came up (trades this core
    closed since it started; a restart starts them again, as freqtrade's do) and the market
    day's realised P&L (which survives a restart: it is read from the store).

    Money is net of fees. A profit factor is None with no trade (drawn `—`), `math.inf` with
    no losing trade (`core/profit_factor.py`).
    """

    started_s: float | None = None  # market time the bot came up
    trades: int = 0  # live trades closed this session
    wins: int = 0  # ... of which closed with a net gain
    live_pf: float | None = None
    shadow_trades: int = 0  # shadow twins of live trades closed this session
    shadow_pf: float | None = None
    fees_usd: float = 0.0  # fees of the live trades closed this session
    pnl_usd: float = 0.0  # net P&L of the live trades closed this session
    day_start_s: float | None = None  # 00:00 UTC of the market clock's day
    today_trades: int = 0  # live trades closed since day_start_s (this session or not)
    today_pnl_usd: float = 0.0  # their net P&L, plus tiers open positions took today

    @property
    def win_rate(self) -> float | None:
        """Share of this session's live trades that won, 0-1; None before the first."""
        return self.wins / self.trades if self.trades else None


def _empty_data() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Event:
    """A line of the event log: entries, exits, blocks, transitions, operator actions.

    `time_s` is market time; `data` holds the figures behind the message (JSON-ready).
    """

    time_s: float
    kind: str
    symbol: str
    message: str
    data: Mapping[str, Any] = field(default_factory=_empty_data)


@dataclass(frozen=True, slots=True)
class AccountPositionView:
    """A position the exchange account held when it was last read (signed quantity)."""

    symbol: str
    qty: float
    entry_price: float


@dataclass(frozen=True, slots=True)
class AccountOrderView:
    """An open order or resting stop on the exchange when the account was last read."""

    symbol: str
    client_id: str
    kind: str  # MARKET, LIMIT, STOP_MARKET ...
    side: str  # BUY / SELL
    qty: float  # 0: the whole position (a closePosition stop)
    price: float  # limit or trigger price; 0 when it has none
    ours: bool  # placed by this bot (client id ba-...)


@dataclass(frozen=True, slots=True)
class ExecutionView:
    """Orders on an exchange (testnet/live): what halts entries, what waits to be sent, and
    the account as last read. Paper: only `mode`."""

    mode: str = "paper"
    base_url: str = ""
    mismatches: tuple[str, ...] = ()  # unexplained differences, not yet acknowledged
    unknown: tuple[str, ...] = ()  # orders whose outcome is unknown
    not_ready: str | None = None  # the exchange could not be prepared
    waiting: tuple[str, ...] = ()  # intents in the outbox, not yet sent
    account_read_s: float | None = None  # market time of the last read; None: never read
    account_positions: tuple[AccountPositionView, ...] = ()
    account_orders: tuple[AccountOrderView, ...] = ()

    @property
    def on_exchange(self) -> bool:
        return self.mode != "paper"


def _empty_guards() -> Mapping[BlockReason, bool]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the cockpit draws, as of one processed bar."""

    heartbeat: Heartbeat
    source: SourceHealth
    symbols: tuple[SymbolView, ...] = ()
    positions: tuple[PositionView, ...] = ()
    guard_log: tuple[GuardBlockView, ...] = ()  # newest first
    guard_stats: tuple[GuardStatsView, ...] = ()
    guards_enabled: Mapping[BlockReason, bool] = field(default_factory=_empty_guards)
    paused: bool = False
    golden_hour_open: bool = False
    golden_hour_next_change_s: float | None = None
    realised_pnl_usd: float = 0.0
    unrealised_pnl_usd: float = 0.0
    closed_trades: int = 0
    session: SessionView = field(default_factory=SessionView)
    learning: LearningView = field(default_factory=LearningView)
    events: tuple[Event, ...] = ()  # newest first
    warnings: tuple[str, ...] = ()
    entries_halted_reason: str | None = None
    read_only: bool = False
    execution: ExecutionView = field(default_factory=ExecutionView)

    @property
    def net_pnl_usd(self) -> float:
        return self.realised_pnl_usd + self.unrealised_pnl_usd

    def symbol(self, name: str) -> SymbolView | None:
        for view in self.symbols:
            if view.symbol == name:
                return view
        return None
