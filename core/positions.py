"""Positions of the three ledgers: live (paper broker), shadow twin, blocked twin.

A `Position` is immutable: every fill returns a new one. It remembers what its exits need
across a restart: the regime at entry, the force-hold deadline, whether it has been released
to the ladder, and each exit leg taken (so the tiers taken follow from the legs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from . import codec
from .trades import ClosedTrade, Ledger
from .types import BlockReason, Conviction, ExitReason, Regime, Side

TIERS: tuple[ExitReason, ...] = (ExitReason.T1, ExitReason.T2, ExitReason.T3, ExitReason.T4)
#: Below this share of the original size a position counts as fully closed (float dust).
DUST_SHARE = 1e-9
#: A force-hold deadline lies at most this far past the latest entry time a record may have.
HOLD_SLACK_S = 7 * 86_400.0


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
    def from_record(cls, record: dict[str, Any], latest_s: float = math.inf) -> ExitLeg:
        return cls(
            reason=codec.choice(ExitReason, codec.field(record, "reason"), "exit reason"),
            qty=codec.positive(codec.field(record, "qty"), "exit qty"),
            price=codec.positive(codec.field(record, "price"), "exit price"),
            time_s=codec.time_s(codec.field(record, "time_s"), "exit time_s", latest_s),
            fee_usd=codec.non_negative(codec.field(record, "fee_usd"), "exit fee_usd"),
            slippage_bps=codec.number(record.get("slippage_bps", 0.0), "exit slippage_bps"),
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
    def from_record(cls, record: dict[str, Any], latest_s: float = math.inf) -> Position:
        """Inverse of `to_record`, strict (`codec.RecordError` names the bad field); times
        must not lie past `latest_s`."""
        f = codec.field
        exits = f(record, "exits") if "exits" in record else []
        if not isinstance(exits, list):
            raise codec.RecordError("exits must be a list")
        legs = tuple(ExitLeg.from_record(leg, latest_s) for leg in exits)
        original_qty = codec.positive(f(record, "original_qty"), "original_qty")
        if math.fsum(leg.qty for leg in legs) > original_qty * (1.0 + DUST_SHARE):
            raise codec.RecordError("exit legs close more than the position holds")
        entry_s = codec.time_s(f(record, "entry_s"), "entry_s", latest_s)
        hold = codec.optional(
            lambda v: codec.time_s(v, "force_hold_until_s", latest_s + HOLD_SLACK_S),
            record.get("force_hold_until_s"),
        )
        return cls(
            id=codec.text(f(record, "id"), "id"),
            ledger=codec.choice(Ledger, f(record, "ledger"), "ledger"),
            strategy=codec.text(f(record, "strategy"), "strategy"),
            symbol=codec.text(f(record, "symbol"), "symbol"),
            side=codec.choice(Side, f(record, "side"), "side"),
            original_qty=original_qty,
            entry_price=codec.positive(f(record, "entry_price"), "entry_price"),
            entry_s=entry_s,
            entry_fee_usd=codec.non_negative(f(record, "entry_fee_usd"), "entry_fee_usd"),
            conviction=codec.choice(Conviction, f(record, "conviction"), "conviction"),
            entry_regime=codec.choice(Regime, f(record, "entry_regime"), "entry_regime"),
            size_multiplier=codec.positive(f(record, "size_multiplier"), "size_multiplier"),
            golden_hour_entry=codec.flag(f(record, "golden_hour_entry"), "golden_hour_entry"),
            force_hold_until_s=hold,
            entry_slippage_bps=codec.number(
                record.get("entry_slippage_bps", 0.0), "entry_slippage_bps"
            ),
            released_to_ladder=codec.flag(
                record.get("released_to_ladder", False), "released_to_ladder"
            ),
            exits=legs,
            twin_of=codec.optional(lambda v: codec.text(v, "twin_of"), record.get("twin_of")),
            block_reason=codec.optional(
                lambda v: codec.choice(BlockReason, v, "block_reason"), record.get("block_reason")
            ),
            close_requested=codec.flag(record.get("close_requested", False), "close_requested"),
        )
