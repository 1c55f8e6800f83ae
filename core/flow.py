"""Whale CVD engine: cumulative volume delta split into whale bars and retail bars.

Per symbol, over a rolling window of W bars (DESIGN.md "Whale CVD engine"):
- delta = taker buy - taker sell; CVD = sum of delta over the window;
- a whale bar has volume above `whale_volume_multiple` x the mean volume of the previous W bars;
- whale CVD sums delta over whale bars, retail CVD over the others;
- whale direction is the sign of whale CVD, NEUTRAL with no whale bar or when |whale CVD| is
  below `neutral_share` of whale volume;
- retail OFI = retail CVD / retail volume; whale intensity = 100 x whale volume / window volume.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from .bar import Bar
from .config import FlowConfig
from .frozen import fast_init
from .types import WhaleDirection


@fast_init
@dataclass(frozen=True, slots=True)
class FlowState:
    """What the whale CVD engine knows about one symbol after its last bar."""

    symbol: str
    cvd: float = 0.0
    whale_cvd: float = 0.0
    retail_cvd: float = 0.0
    whale_volume: float = 0.0
    retail_volume: float = 0.0
    whale_bars: int = 0
    window_bars: int = 0
    retail_ofi: float = 0.0
    intensity: float = 0.0
    direction: WhaleDirection = WhaleDirection.NEUTRAL
    last_bar_was_whale: bool = False
    cross_buy_ratio: float | None = None
    flow_available: bool = True


def whale_direction(
    whale_bars: int, whale_cvd: float, whale_volume: float, neutral_share: float
) -> WhaleDirection:
    """Sign of whale CVD; NEUTRAL when the window holds no whale bar (a count, so no float
    leftover can make a direction out of nothing) or the imbalance is small."""
    if whale_bars == 0 or whale_volume <= 0.0 or abs(whale_cvd) < neutral_share * whale_volume:
        return WhaleDirection.NEUTRAL
    return WhaleDirection.BUY if whale_cvd > 0 else WhaleDirection.SELL


def is_whale_bar(
    volume: float, previous_volumes_sum: float, previous_count: int, window: int, multiple: float
) -> bool:
    """Volume above `multiple` x the mean of the previous `window` bars (needs all of them)."""
    if previous_count < window or previous_volumes_sum <= 0.0:
        return False
    return volume > multiple * (previous_volumes_sum / previous_count)


def flow_state(
    symbol: str,
    neutral_share: float,
    *,
    volume: float,
    cvd: float,
    whale_volume: float,
    whale_cvd: float,
    whale_bars: int,
    window_bars: int,
    last_bar_was_whale: bool,
    cross_buy_ratio: float | None,
    flow_available: bool,
) -> FlowState:
    """The published state from the window's (exact, correctly rounded) sums: the streaming
    engine and the batch replay (`batch.py`) both build it here, so they agree bit for bit."""
    retail_volume = max(volume - whale_volume, 0.0)
    retail_cvd = cvd - whale_cvd
    retail_ofi = retail_cvd / retail_volume if retail_volume > 0 else 0.0
    intensity = 100.0 * whale_volume / volume if volume > 0 else 0.0
    return FlowState(
        symbol=symbol,
        cvd=cvd,
        whale_cvd=whale_cvd,
        retail_cvd=retail_cvd,
        whale_volume=whale_volume,
        retail_volume=retail_volume,
        whale_bars=whale_bars,
        window_bars=window_bars,
        retail_ofi=max(-1.0, min(1.0, retail_ofi)),
        intensity=max(0.0, min(100.0, intensity)),
        direction=whale_direction(whale_bars, whale_cvd, whale_volume, neutral_share),
        last_bar_was_whale=last_bar_was_whale,
        cross_buy_ratio=cross_buy_ratio,
        flow_available=flow_available,
    )


class ExactSum:
    """A running sum of floats kept exactly (as an integer count of 2**-1074, the smallest
    float step), read back correctly rounded. Adding and removing the same values in any
    order, in one process or across a restart, gives the same float bit for bit: a sum
    that decides a rule never drifts (plain float running sums leave leftovers such as
    1e-11 when the last whale bar leaves the window)."""

    __slots__ = ("_units",)
    _SHIFT = 1074
    _ONE = 1 << _SHIFT

    def __init__(self) -> None:
        self._units = 0

    @classmethod
    def units(cls, value: float) -> int:
        numerator, denominator = value.as_integer_ratio()
        return numerator << (cls._SHIFT - denominator.bit_length() + 1)

    def add(self, units: int) -> None:
        self._units += units

    def remove(self, units: int) -> None:
        self._units -= units

    @property
    def value(self) -> float:
        return self._units / self._ONE


class WhaleFlowEngine:
    """Streaming whale CVD for one symbol: O(1) per bar, sums kept exact (`ExactSum`), so
    the state is a function of the bars in the window alone."""

    def __init__(self, symbol: str, config: FlowConfig) -> None:
        self.symbol = symbol
        self.config = config
        # one entry per bar in the window: (volume, delta, whale?)
        self._bars: deque[tuple[float, float, bool]] = deque()
        self._volume = ExactSum()
        self._cvd = ExactSum()
        self._whale_cvd = ExactSum()
        self._whale_volume = ExactSum()
        self._whale_count = 0
        self._last_whale = False
        self._cross_buy_ratio: float | None = None
        self._flow_available = True
        self.bars_seen = 0

    def update(self, bar: Bar) -> FlowState:
        window = self.config.window_bars
        whale = is_whale_bar(
            bar.volume,
            self._volume.value,
            len(self._bars),
            window,
            self.config.whale_volume_multiple,
        )
        delta = bar.delta if bar.has_flow else 0.0
        self._flow_available = bar.has_flow
        self._push(bar.volume, delta, whale)
        while len(self._bars) > window:
            self._pop()
        self._last_whale = whale
        if bar.cross_buy_ratio is not None:
            self._cross_buy_ratio = bar.cross_buy_ratio
        self.bars_seen += 1
        return self.state()

    def _push(self, volume: float, delta: float, whale: bool) -> None:
        self._bars.append((volume, delta, whale))
        self._count(volume, delta, whale, +1)

    def _pop(self) -> None:
        self._count(*self._bars.popleft(), -1)

    def _count(self, volume: float, delta: float, whale: bool, sign: int) -> None:
        v, d = sign * ExactSum.units(volume), sign * ExactSum.units(delta)
        self._volume.add(v)
        self._cvd.add(d)
        if whale:
            self._whale_volume.add(v)
            self._whale_cvd.add(d)
            self._whale_count += sign

    def state(self) -> FlowState:
        return flow_state(
            self.symbol,
            self.config.neutral_share,
            volume=self._volume.value,
            cvd=self._cvd.value,
            whale_volume=self._whale_volume.value,
            whale_cvd=self._whale_cvd.value,
            whale_bars=self._whale_count,
            window_bars=len(self._bars),
            last_bar_was_whale=self._last_whale,
            cross_buy_ratio=self._cross_buy_ratio,
            flow_available=self._flow_available,
        )

    # -- persistence ------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "bars": [[v, d, w] for v, d, w in self._bars],
            "bars_seen": self.bars_seen,
            "cross_buy_ratio": self._cross_buy_ratio,
            "last_bar_was_whale": self._last_whale,
            "flow_available": self._flow_available,
        }

    @classmethod
    def from_state(cls, symbol: str, config: FlowConfig, state: dict[str, Any]) -> WhaleFlowEngine:
        engine = cls(symbol, config)
        bars = state["bars"]
        if not isinstance(bars, list):
            raise ValueError("bars must be a list")
        for item in bars[-config.window_bars :]:
            volume, delta, whale = item
            if not isinstance(whale, bool):
                raise ValueError("whale flag must be a boolean")
            volume, delta = float(volume), float(delta)
            if not (math.isfinite(volume) and math.isfinite(delta)) or volume < 0:
                raise ValueError("volume and delta must be finite, volume non-negative")
            engine._push(volume, delta, whale)
        engine.bars_seen = int(state.get("bars_seen", len(engine._bars)))
        ratio = state.get("cross_buy_ratio")
        engine._cross_buy_ratio = None if ratio is None else float(ratio)
        last_whale = state.get("last_bar_was_whale", False)
        available = state.get("flow_available", True)
        if not (isinstance(last_whale, bool) and isinstance(available, bool)):
            raise ValueError("last_bar_was_whale and flow_available must be booleans")
        engine._last_whale, engine._flow_available = last_whale, available
        return engine
