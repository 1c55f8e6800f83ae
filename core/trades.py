"""Closed trades: the record the ledgers write and the learning loop reads."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from . import codec
from .frozen import fast_init
from .types import BlockReason, Conviction, ExitReason, Regime, Side


class Ledger(StrEnum):
    LIVE = "live"  # paper broker fills: next-bar open, slippage, fees
    SHADOW = "shadow"  # the ideal twin of a live trade: signal close, no slippage
    BLOCKED = "blocked"  # the shadow twin of a blocked signal (guard opportunity cost)


@fast_init
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
        # `asdict` without its deep copy (every field is immutable): ~10x cheaper, and a
        # replay closes a twin every few bars
        record = {name: getattr(self, name) for name in _TRADE_FIELDS}
        record["exit_reasons"] = [r.value for r in self.exit_reasons]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], latest_s: float = math.inf) -> ClosedTrade:
        """Inverse of `to_record`, strict (`codec.RecordError` names the bad field)."""
        if type(record) is dict:  # a plain dict's fields looked up directly (a replay's
            try:  # learning cycles check every outcome of the run)
                return cls._read(record.__getitem__, record, latest_s)
            except KeyError:
                pass  # a field is missing: read again through `codec.field`, which names it
        return cls._read(functools.partial(codec.field, record), record, latest_s)

    @classmethod
    def _read(cls, f: Callable[[str], Any], record: dict[str, Any], latest_s: float) -> ClosedTrade:
        """`from_record` with `f(name)` giving a field: the same checks in the same order,
        so a record's first fault is the one named, however its fields are looked up."""
        reasons = f("exit_reasons")
        if not isinstance(reasons, list) or not reasons:
            raise codec.RecordError("exit_reasons must be a non-empty list")
        entry_s = codec.time_s(f("entry_s"), "entry_s", latest_s)
        return cls(
            id=codec.text(f("id"), "id"),
            ledger=codec.choice(Ledger, f("ledger"), "ledger"),
            strategy=codec.text(f("strategy"), "strategy"),
            symbol=codec.text(f("symbol"), "symbol"),
            side=codec.choice(Side, f("side"), "side"),
            entry_s=entry_s,
            exit_s=codec.number(f("exit_s"), "exit_s", low=entry_s, high=latest_s),
            entry_price=codec.positive(f("entry_price"), "entry_price"),
            exit_price=codec.positive(f("exit_price"), "exit_price"),
            qty=codec.positive(f("qty"), "qty"),
            fees_usd=codec.non_negative(f("fees_usd"), "fees_usd"),
            pnl_usd=codec.number(f("pnl_usd"), "pnl_usd"),
            conviction=codec.choice(Conviction, f("conviction"), "conviction"),
            entry_regime=codec.choice(Regime, f("entry_regime"), "entry_regime"),
            exit_reasons=tuple(codec.choice(ExitReason, r, "exit reason") for r in reasons),
            golden_hour_entry=codec.flag(f("golden_hour_entry"), "golden_hour_entry"),
            twin_of=codec.optional(lambda v: codec.text(v, "twin_of"), record.get("twin_of")),
            block_reason=codec.optional(
                lambda v: codec.choice(BlockReason, v, "block_reason"), record.get("block_reason")
            ),
            force_held=codec.flag(record.get("force_held", False), "force_held"),
            size_multiplier=codec.positive(record.get("size_multiplier", 1.0), "size_multiplier"),
        )


_TRADE_FIELDS = tuple(f.name for f in fields(ClosedTrade))
