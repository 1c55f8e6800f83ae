"""Closed trades: the record the ledgers write and the learning loop reads."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from .types import BlockReason, Conviction, ExitReason, Regime, Side


class Ledger(StrEnum):
    LIVE = "live"  # paper broker fills: next-bar open, slippage, fees
    SHADOW = "shadow"  # the ideal twin of a live trade: signal close, no slippage
    BLOCKED = "blocked"  # the shadow twin of a blocked signal (guard opportunity cost)


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """One round trip, all exits done. Money in quote currency, net of fees."""

    id: str
    ledger: Ledger
    strategy: str
    symbol: str
    side: Side
    entry_s: float
    exit_s: float
    entry_price: float
    exit_price: float  # quantity-weighted average of the exits
    qty: float
    fees_usd: float
    pnl_usd: float  # net of fees
    conviction: Conviction
    entry_regime: Regime
    exit_reasons: tuple[ExitReason, ...]
    golden_hour_entry: bool
    twin_of: str | None = None  # live trade id of a shadow twin
    block_reason: BlockReason | None = None  # for the BLOCKED ledger
    force_held: bool = False  # entered in TRUE_TREND: force-hold, then T4/stop or ladder
    size_multiplier: float = 1.0  # conviction x regime, capped on probation

    @property
    def notional_usd(self) -> float:
        return self.qty * self.entry_price

    @property
    def pnl_pct(self) -> float:
        return 100.0 * self.pnl_usd / self.notional_usd if self.notional_usd else 0.0

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["exit_reasons"] = [r.value for r in self.exit_reasons]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ClosedTrade:
        """Inverse of `to_record`; ValueError/KeyError/TypeError on a malformed record."""
        floats = ("entry_s", "exit_s", "entry_price", "exit_price", "qty", "fees_usd", "pnl_usd")
        values = {k: float(record[k]) for k in floats}
        if not all(math.isfinite(v) for v in values.values()):
            raise ValueError("non-finite number in trade record")
        block = record.get("block_reason")
        return cls(
            id=str(record["id"]),
            ledger=Ledger(record["ledger"]),
            strategy=str(record["strategy"]),
            symbol=str(record["symbol"]),
            side=Side(record["side"]),
            conviction=Conviction(record["conviction"]),
            entry_regime=Regime(record["entry_regime"]),
            exit_reasons=tuple(ExitReason(r) for r in record["exit_reasons"]),
            golden_hour_entry=bool(record["golden_hour_entry"]),
            twin_of=record.get("twin_of"),
            block_reason=None if block is None else BlockReason(block),
            force_held=bool(record.get("force_held", False)),
            size_multiplier=float(record.get("size_multiplier", 1.0)),
            **values,
        )
