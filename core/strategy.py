"""Alpha-OFI: trade-flow imbalance over the last few bars (DESIGN.md "Strategy: Alpha-OFI").

OFI5 = sum of taker delta / sum of volume over the last `ofi_bars` (5) bars, in [-1, 1].
Long when OFI5 > +threshold (0.15), short when OFI5 < -threshold. The expected edge over the
holding horizon is |OFI5| x ATR(14) in bps of price x sqrt(horizon_bars): a one-bar edge
would never clear the fees on 1-minute bars, and a random walk's move grows with the square
root of time. ATR is the simple mean of the last `atr_bars` true ranges.

The strategy only says what the flow suggests. Whether to act (one position per symbol, the
gates, the size) is decided downstream; a signal carries every feature those steps read.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from . import codec
from .bar import Bar
from .config import StrategyConfig
from .flow import FlowState
from .frozen import fast_init
from .hurst import HurstReading
from .types import Regime, Side, WhaleDirection

BPS_PER_UNIT = 10_000.0


@fast_init
@dataclass(frozen=True, slots=True)
class Signal:
    """An entry signal at the close of one bar, with the features that produced it."""

    strategy: str
    symbol: str
    bar_open_ms: int  # the signal bar
    time_s: float  # the signal bar's close: when the decision is made
    side: Side
    price: float  # the signal bar's close (where the ideal shadow twin fills)
    ofi: float  # OFI over `ofi_bars`, signed
    atr_bps: float
    expected_edge_bps: float
    whale_direction: WhaleDirection
    retail_ofi: float
    whale_intensity: float
    cross_buy_ratio: float | None
    regime: Regime
    hurst_h: float | None

    @property
    def id(self) -> str:
        """Stable across restarts: one signal per symbol per bar."""
        return f"{self.symbol}-{self.bar_open_ms}"


def expected_edge_bps(ofi: float, atr_bps: float, horizon_bars: int) -> float:
    """|OFI| x ATR (bps) x sqrt(horizon): the move the flow suggests over the holding horizon."""
    return abs(ofi) * atr_bps * math.sqrt(horizon_bars)


def true_range(high: float, low: float, previous_close: float | None) -> float:
    if previous_close is None:
        return high - low
    return max(high - low, abs(high - previous_close), abs(low - previous_close))


def signal_side(ofi: float, threshold: float) -> Side | None:
    """LONG above +threshold, SHORT below -threshold, else no signal (strictly beyond)."""
    if ofi > threshold:
        return Side.LONG
    if ofi < -threshold:
        return Side.SHORT
    return None


class AlphaOfi:
    """Streaming Alpha-OFI for one symbol: feed every bar, read a signal or None."""

    def __init__(self, symbol: str, config: StrategyConfig) -> None:
        self.symbol = symbol
        self.config = config
        self._flow: deque[tuple[float, float]] = deque(maxlen=config.ofi_bars)  # delta, volume
        self._ranges: deque[float] = deque(maxlen=config.atr_bars)
        self._previous_close: float | None = None

    @property
    def warm(self) -> bool:
        return len(self._flow) == self.config.ofi_bars and len(self._ranges) == self.config.atr_bars

    def ofi(self) -> float | None:
        volume = math.fsum(v for _, v in self._flow)
        if volume <= 0.0:
            return None
        return math.fsum(d for d, _ in self._flow) / volume

    def atr_bps(self, close: float) -> float:
        return BPS_PER_UNIT * math.fsum(self._ranges) / len(self._ranges) / close

    def update(
        self, bar: Bar, flow: FlowState, hurst: HurstReading, wanted: bool = True
    ) -> Signal | None:
        """Take one closed bar; a signal when the window is warm and OFI is past the threshold.

        A bar without taker flow (OHLCV-only data) gives no signal: the imbalance is unknown.
        `wanted` False: the bar still moves the windows, but no signal is made (the trading
        loop would drop it unread: the symbol already holds a position or an entry order).
        """
        self._ranges.append(true_range(bar.high, bar.low, self._previous_close))
        self._previous_close = bar.close
        self._flow.append((bar.delta, bar.volume) if bar.has_flow else (0.0, 0.0))
        if not (wanted and bar.has_flow and self.warm):
            return None
        ofi = self.ofi()
        if ofi is None:
            return None
        side = signal_side(ofi, self.config.ofi_threshold)
        if side is None:
            return None
        return self.signal(bar, side, ofi, self.atr_bps(bar.close), flow, hurst)

    def signal(
        self,
        bar: Bar,
        side: Side,
        ofi: float,
        atr_bps: float,
        flow: FlowState,
        hurst: HurstReading,
    ) -> Signal:
        return self.signal_of(
            bar.open_ms,
            bar.close_s,
            bar.close,
            side,
            ofi,
            atr_bps,
            flow.direction,
            flow.retail_ofi,
            flow.intensity,
            flow.cross_buy_ratio,
            hurst.regime,
            hurst.h,
        )

    def signal_of(
        self,
        open_ms: int,
        close_s: float,
        close: float,
        side: Side,
        ofi: float,
        atr_bps: float,
        direction: WhaleDirection,
        retail_ofi: float,
        intensity: float,
        cross_buy_ratio: float | None,
        regime: Regime,
        h: float | None,
    ) -> Signal:
        """The `Signal` of a bar from its values (a batch replay has them as columns)."""
        config = self.config
        # by position, in the fields' order (a signal per signal bar: about a third of all
        # bars); the edge is `expected_edge_bps`, written out
        return Signal(
            config.name,
            self.symbol,
            open_ms,
            close_s,
            side,
            close,
            ofi,
            atr_bps,
            abs(ofi) * atr_bps * math.sqrt(config.horizon_bars),
            direction,
            retail_ofi,
            intensity,
            cross_buy_ratio,
            regime,
            h,
        )

    # -- persistence ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "flow": [[d, v] for d, v in self._flow],
            "ranges": list(self._ranges),
            "previous_close": self._previous_close,
        }

    @classmethod
    def from_state(cls, symbol: str, config: StrategyConfig, state: dict[str, Any]) -> AlphaOfi:
        strategy = cls(symbol, config)
        for delta, volume in state["flow"]:
            strategy._flow.append(
                (codec.number(delta, "flow delta"), codec.number(volume, "flow volume"))
            )
        for value in state["ranges"]:
            strategy._ranges.append(codec.number(value, "true range"))
        previous = state.get("previous_close")
        strategy._previous_close = codec.optional(lambda v: codec.positive(v, "close"), previous)
        return strategy
