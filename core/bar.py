"""The `Bar`: one closed candle of one symbol, the only market event the core consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from .frozen import fast_init

MINUTE_MS = 60_000


@fast_init
@dataclass(frozen=True, slots=True)
class Bar:
    """One symbol-interval. Buy volume = taker-buy volume; sell = volume - taker-buy.

    `cross_buy_ratio` is the cross-exchange taker buy share (0..1) from CoinGlass when a
    source adds it, else None. `has_flow` is False when the data had no taker-buy column
    (OHLCV-only files replayed with flow features off): the flow engines then ignore the bar's
    taker split instead of guessing it.
    """

    symbol: str
    open_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    taker_buy_volume: float
    interval_ms: int = MINUTE_MS
    cross_buy_ratio: float | None = None
    has_flow: bool = True

    @property
    def close_ms(self) -> int:
        """The instant the bar closed (= the next bar's open)."""
        return self.open_ms + self.interval_ms

    @property
    def close_s(self) -> float:
        return (self.open_ms + self.interval_ms) / 1000.0  # close_ms / 1000, one call less

    @property
    def open_time(self) -> datetime:
        return datetime.fromtimestamp(self.open_ms / 1000.0, tz=UTC)

    @property
    def delta(self) -> float:
        """Taker buy minus taker sell volume."""
        return 2.0 * self.taker_buy_volume - self.volume

    def problem(self) -> str | None:
        """Why this bar must not reach the engines, or None when it is sane."""
        values = (self.open, self.high, self.low, self.close, self.volume, self.taker_buy_volume)
        if not all(math.isfinite(v) for v in values):
            return "non-finite value"
        if min(self.open, self.high, self.low, self.close) <= 0.0:
            return "non-positive price"
        if self.volume < 0.0 or self.taker_buy_volume < 0.0:
            return "negative volume"
        if self.taker_buy_volume > self.volume * (1.0 + 1e-9) + 1e-12:
            return "taker-buy volume above volume"
        if self.high < max(self.open, self.close, self.low) or self.low > min(
            self.open, self.close
        ):
            return "high/low do not bound open/close"
        return None
