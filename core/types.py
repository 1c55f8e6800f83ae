"""Enums and small value types shared across the trading core.

Plain data only: everything that crosses a module border is an enum or a frozen dataclass.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def sign(self) -> int:
        return 1 if self is Side.LONG else -1


class Regime(StrEnum):
    """Hurst regime of a symbol. WARMING until the 100-return window is full."""

    TRUE_TREND = "TRUE_TREND"
    NOISE = "NOISE"
    RANDOM = "RANDOM"
    WARMING = "WARMING"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class WhaleDirection(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    NEUTRAL = "NEUTRAL"

    @property
    def sign(self) -> int:
        return {"BUY": 1, "SELL": -1, "NEUTRAL": 0}[self.value]


class Conviction(StrEnum):
    ULTRA = "ULTRA"
    HIGH = "HIGH"
    NORMAL = "NORMAL"


class BlockReason(StrEnum):
    """Gate reason codes, in the order the gates run."""

    PAUSED = "PAUSED"
    GOLDEN_HOUR = "GOLDEN_HOUR"
    COOLDOWN = "COOLDOWN"  # the operator closed the symbol's position a moment ago
    MAX_POSITIONS = "MAX_POSITIONS"
    FEE_EDGE = "FEE_EDGE"
    WHALE_CONFLICT = "WHALE_CONFLICT"


#: The guards an operator may switch off (DESIGN.md gates 3-5).
SWITCHABLE_GUARDS: tuple[BlockReason, ...] = (
    BlockReason.MAX_POSITIONS,
    BlockReason.FEE_EDGE,
    BlockReason.WHALE_CONFLICT,
)


class SymbolState(StrEnum):
    ACTIVE = "ACTIVE"
    PROBATION = "PROBATION"


class ExitReason(StrEnum):
    T1 = "T1"
    T2 = "T2"
    T3 = "T3"
    T4 = "T4"
    STOP = "STOP"
    MANUAL = "MANUAL"


class SourceState(StrEnum):
    """Health of a market-data source, as the operator sees it."""

    OK = "ok"
    WARMING = "warming"
    BACKING_OFF = "backing off"
    BANNED = "banned"
    DEGRADED = "degraded"
    UNAUTHORISED = "unauthorised"
    FINISHED = "finished"
