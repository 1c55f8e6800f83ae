"""Entry orders and the operator switches an entry reads.

An `EntryOrder` is a live entry decided at a signal bar's close, waiting for the next bar's
open (where the paper broker fills it); the book keeps it across a restart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import codec
from .types import BlockReason, Conviction, Regime, Side


@dataclass(frozen=True, slots=True)
class EntryOrder:
    """A live entry decided at a signal bar's close, waiting for the next bar's open."""

    id: str
    strategy: str
    symbol: str
    side: Side
    qty: float
    signal_open_ms: int
    signal_close_s: float
    signal_price: float
    conviction: Conviction
    entry_regime: Regime
    size_multiplier: float
    golden_hour_entry: bool

    @property
    def fill_open_ms(self) -> int:
        """The open time of the bar this order fills in (the signal bar's close)."""
        return round(self.signal_close_s * 1000)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "strategy": self.strategy,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": self.qty,
            "signal_open_ms": self.signal_open_ms,
            "signal_close_s": self.signal_close_s,
            "signal_price": self.signal_price,
            "conviction": self.conviction.value,
            "entry_regime": self.entry_regime.value,
            "size_multiplier": self.size_multiplier,
            "golden_hour_entry": self.golden_hour_entry,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any], latest_s: float = math.inf) -> EntryOrder:
        """Inverse of `to_record`, strict (`codec.RecordError` names the bad field)."""
        f = codec.field
        return cls(
            id=codec.text(f(record, "id"), "id"),
            strategy=codec.text(f(record, "strategy"), "strategy"),
            symbol=codec.text(f(record, "symbol"), "symbol"),
            side=codec.choice(Side, f(record, "side"), "side"),
            qty=codec.positive(f(record, "qty"), "qty"),
            signal_open_ms=codec.time_ms(f(record, "signal_open_ms"), "signal_open_ms", latest_s),
            signal_close_s=codec.time_s(f(record, "signal_close_s"), "signal_close_s", latest_s),
            signal_price=codec.positive(f(record, "signal_price"), "signal_price"),
            conviction=codec.choice(Conviction, f(record, "conviction"), "conviction"),
            entry_regime=codec.choice(Regime, f(record, "entry_regime"), "entry_regime"),
            size_multiplier=codec.positive(f(record, "size_multiplier"), "size_multiplier"),
            golden_hour_entry=codec.flag(f(record, "golden_hour_entry"), "golden_hour_entry"),
        )


@dataclass(frozen=True, slots=True)
class EntryControls:
    """The operator switches a decision reads (owned by the core)."""

    paused: bool
    guards_enabled: Mapping[BlockReason, bool]
    halted_reason: str | None = None  # the store cannot write: no new entries, exits go on
