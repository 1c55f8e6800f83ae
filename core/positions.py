"""Positions of the three ledgers: live (paper broker), shadow twin, blocked twin.

A `Position` is immutable: every fill returns a new one. It remembers what its exits need
across a restart: the regime at entry, the force-hold deadline, whether it has been released
to the ladder, and each exit leg taken (so the tiers taken follow from the legs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from .store import from_finite
from .trades import ClosedTrade, Ledger
from .types import BlockReason, Conviction, ExitReason, Regime, Side

TIERS: tuple[ExitReason, ...] = (ExitReason.T1, ExitReason.T2, ExitReason.T3, ExitReason.T4)
#: Below this share of the original size a position counts as fully closed (float dust).
DUST_SHARE = 1e-9


@dataclass(frozen=True, slots=True)
class ExitLeg:
    """One exit fill: part or all of a position."""

    reason: ExitReason
    qty: float
    price: float
    time_s: float
    fee_usd: float
    slippage_bps: float = 0.0

    def to_record(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "qty": self.qty,
            "price": self.price,
            "time_s": self.time_s,
            "fee_usd": self.fee_usd,
            "slippage_bps": self.slippage_bps,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ExitLeg:
        return cls(
            reason=ExitReason(record["reason"]),
            qty=_positive(record["qty"]),
            price=_positive(record["price"]),
            time_s=from_finite(record["time_s"]),
            fee_usd=from_finite(record["fee_usd"]),
            slippage_bps=from_finite(record.get("slippage_bps", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Position:
    """An open position of one ledger."""

    id: str
    ledger: Ledger
    strategy: str
    symbol: str
    side: Side
    original_qty: float
    entry_price: float
    entry_s: float
    entry_fee_usd: float
    conviction: Conviction
    entry_regime: Regime
    size_multiplier: float
    golden_hour_entry: bool
    force_hold_until_s: float | None  # set when the entry regime was TRUE_TREND
    entry_slippage_bps: float = 0.0
    released_to_ladder: bool = False
    exits: tuple[ExitLeg, ...] = ()
    twin_of: str | None = None
    block_reason: BlockReason | None = None
    close_requested: bool = False  # the operator asked to close at the next bar's open

    @property
    def closed_qty(self) -> float:
        return math.fsum(leg.qty for leg in self.exits)

    @property
    def open_qty(self) -> float:
        return max(0.0, self.original_qty - self.closed_qty)

    @property
    def is_closed(self) -> bool:
        return self.open_qty <= DUST_SHARE * self.original_qty

    @property
    def tiers_taken(self) -> tuple[ExitReason, ...]:
        return tuple(leg.reason for leg in self.exits if leg.reason in TIERS)

    @property
    def notional_usd(self) -> float:
        return self.original_qty * self.entry_price

    def leg_pnl_usd(self, leg: ExitLeg) -> float:
        """The leg's move net of its own exit fee."""
        return self.side.sign * (leg.price - self.entry_price) * leg.qty - leg.fee_usd

    def leg_net_pnl_usd(self, leg: ExitLeg) -> float:
        """The leg's P&L net of its exit fee and its share of the entry fee: the legs of a
        closed position add up to the trade's P&L, as the report counts it."""
        return self.leg_pnl_usd(leg) - self.entry_fee_usd * leg.qty / self.original_qty

    @property
    def realised_usd(self) -> float:
        """P&L already locked in: exit legs net of their fees, less the entry fee."""
        return math.fsum(self.leg_pnl_usd(leg) for leg in self.exits) - self.entry_fee_usd

    def unrealised_usd(self, mark_price: float) -> float:
        """Open quantity marked to `mark_price`, before the exit fee."""
        return self.side.sign * (mark_price - self.entry_price) * self.open_qty

    def pnl_pct(self, mark_price: float) -> float:
        return 100.0 * self.side.sign * (mark_price / self.entry_price - 1.0)

    def with_exit(self, leg: ExitLeg) -> Position:
        return replace(self, exits=(*self.exits, leg))

    def closed_trade(self) -> ClosedTrade:
        """The round trip once every exit is done."""
        qty = self.closed_qty
        exit_price = math.fsum(leg.price * leg.qty for leg in self.exits) / qty
        fees = self.entry_fee_usd + math.fsum(leg.fee_usd for leg in self.exits)
        return ClosedTrade(
            id=self.id,
            ledger=self.ledger,
            strategy=self.strategy,
            symbol=self.symbol,
            side=self.side,
            entry_s=self.entry_s,
            exit_s=self.exits[-1].time_s,
            entry_price=self.entry_price,
            exit_price=exit_price,
            qty=self.original_qty,
            fees_usd=fees,
            pnl_usd=self.realised_usd,
            conviction=self.conviction,
            entry_regime=self.entry_regime,
            exit_reasons=tuple(leg.reason for leg in self.exits),
            golden_hour_entry=self.golden_hour_entry,
            twin_of=self.twin_of,
            block_reason=self.block_reason,
            force_held=self.force_hold_until_s is not None,
            size_multiplier=self.size_multiplier,
        )

    # -- persistence ------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ledger": self.ledger.value,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "side": self.side.value,
            "original_qty": self.original_qty,
            "entry_price": self.entry_price,
            "entry_s": self.entry_s,
            "entry_fee_usd": self.entry_fee_usd,
            "conviction": self.conviction.value,
            "entry_regime": self.entry_regime.value,
            "size_multiplier": self.size_multiplier,
            "golden_hour_entry": self.golden_hour_entry,
            "force_hold_until_s": self.force_hold_until_s,
            "entry_slippage_bps": self.entry_slippage_bps,
            "released_to_ladder": self.released_to_ladder,
            "exits": [leg.to_record() for leg in self.exits],
            "twin_of": self.twin_of,
            "block_reason": None if self.block_reason is None else self.block_reason.value,
            "close_requested": self.close_requested,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Position:
        """Inverse of `to_record`; ValueError/KeyError/TypeError on a malformed record."""
        hold = record.get("force_hold_until_s")
        block = record.get("block_reason")
        twin = record.get("twin_of")
        return cls(
            id=str(record["id"]),
            ledger=Ledger(record["ledger"]),
            strategy=str(record["strategy"]),
            symbol=str(record["symbol"]),
            side=Side(record["side"]),
            original_qty=_positive(record["original_qty"]),
            entry_price=_positive(record["entry_price"]),
            entry_s=from_finite(record["entry_s"]),
            entry_fee_usd=from_finite(record["entry_fee_usd"]),
            conviction=Conviction(record["conviction"]),
            entry_regime=Regime(record["entry_regime"]),
            size_multiplier=from_finite(record["size_multiplier"]),
            golden_hour_entry=_bool(record["golden_hour_entry"]),
            force_hold_until_s=None if hold is None else from_finite(hold),
            entry_slippage_bps=from_finite(record.get("entry_slippage_bps", 0.0)),
            released_to_ladder=_bool(record.get("released_to_ladder", False)),
            exits=tuple(ExitLeg.from_record(leg) for leg in record.get("exits", [])),
            twin_of=None if twin is None else str(twin),
            block_reason=None if block is None else BlockReason(block),
            close_requested=_bool(record.get("close_requested", False)),
        )


def _positive(value: Any) -> float:
    number = from_finite(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"expected a positive number, got {value!r}")
    return number


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value
