"""Hand-made bars, flows, regimes and signals for the trading-loop tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.flow import FlowState
from bigalpha_tui.core.hurst import HurstReading
from bigalpha_tui.core.orders import EntryControls
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.strategy import Signal
from bigalpha_tui.core.trading import TradingLoop
from bigalpha_tui.core.types import SWITCHABLE_GUARDS, Regime, Side, WhaleDirection

SYMBOL = "BTCUSDT"
#: 2026-01-05 10:00 UTC, a Monday inside the golden hour.
T0_MS = int(datetime(2026, 1, 5, 10, 0, tzinfo=UTC).timestamp() * 1000)


def at_utc(hh: int, mm: int, ss: int = 0, day: int = 5) -> float:
    return datetime(2026, 1, day, hh, mm, ss, tzinfo=UTC).timestamp()


def make_bar(
    minute: int,
    close: float = 100.0,
    *,
    open: float | None = None,
    high: float | None = None,
    low: float | None = None,
    volume: float = 1000.0,
    buy_share: float = 0.5,
    symbol: str = SYMBOL,
    start_ms: int = T0_MS,
    has_flow: bool = True,
) -> Bar:
    """Bar number `minute` after `start_ms`; high/low default to the open/close range."""
    o = close if open is None else open
    return Bar(
        symbol=symbol,
        open_ms=start_ms + minute * MINUTE_MS,
        open=o,
        high=max(o, close) if high is None else high,
        low=min(o, close) if low is None else low,
        close=close,
        volume=volume,
        taker_buy_volume=volume * buy_share,
        has_flow=has_flow,
    )


def flow(
    direction: WhaleDirection = WhaleDirection.NEUTRAL,
    retail_ofi: float = 0.0,
    symbol: str = SYMBOL,
    cross_buy_ratio: float | None = None,
) -> FlowState:
    return FlowState(
        symbol=symbol,
        direction=direction,
        retail_ofi=retail_ofi,
        cross_buy_ratio=cross_buy_ratio,
    )


def hurst(regime: Regime = Regime.RANDOM) -> HurstReading:
    h = {Regime.TRUE_TREND: 0.65, Regime.NOISE: 0.35, Regime.RANDOM: 0.5}.get(regime)
    return HurstReading(
        h=h, band=0.07, raw_regime=regime, regime=regime, trend_sign=1, returns_seen=100
    )


def controls(paused: bool = False, **off: bool) -> EntryControls:
    enabled = {g: not off.get(g.value, False) for g in SWITCHABLE_GUARDS}
    return EntryControls(paused, MappingProxyType(enabled))


def make_signal(
    side: Side = Side.LONG,
    *,
    time_s: float | None = None,
    edge_bps: float = 50.0,
    whale: WhaleDirection = WhaleDirection.NEUTRAL,
    retail_ofi: float = 0.0,
    regime: Regime = Regime.RANDOM,
    price: float = 100.0,
    symbol: str = SYMBOL,
) -> Signal:
    t = T0_MS / 1000.0 if time_s is None else time_s
    return Signal(
        strategy="Alpha-OFI",
        symbol=symbol,
        bar_open_ms=int(t * 1000) - MINUTE_MS,
        time_s=t,
        side=side,
        price=price,
        ofi=0.5 * side.sign,
        atr_bps=10.0,
        expected_edge_bps=edge_bps,
        whale_direction=whale,
        retail_ofi=retail_ofi,
        whale_intensity=0.0,
        cross_buy_ratio=None,
        regime=regime,
        hurst_h=None,
    )


def quiet_config(**sections: dict[str, Any]) -> Config:
    """Defaults, with zero slippage unless a test asks for it (keeps prices exact)."""
    config = Config()
    broker = dataclasses.replace(config.broker, half_spread_bps=0.0, impact_bps_per_pct_volume=0.0)
    config = dataclasses.replace(config, broker=broker)
    for name, values in sections.items():
        config = dataclasses.replace(
            config, **{name: dataclasses.replace(getattr(config, name), **values)}
        )
    return config


def make_loop(tmp: Path, config: Config | None = None, clock_s: float | None = None) -> TradingLoop:
    clock = SimClock(T0_MS / 1000.0 if clock_s is None else clock_s)
    return TradingLoop(config or quiet_config(), Store(tmp), clock, lambda *a, **k: None)


WARM_BARS = 14  # fills the ATR(14) and OFI5 windows


def warm_bars(count: int = WARM_BARS, start_minute: int = 0, **kwargs: Any) -> list[Bar]:
    """Balanced bars (no signal) with a 0.4 % range, so ATR(14) is 40 bps."""
    kwargs.setdefault("high", 100.2)
    kwargs.setdefault("low", 99.8)
    return [make_bar(start_minute + i, **kwargs) for i in range(count)]


def signal_bar(minute: int, side: Side = Side.LONG, close: float = 100.0, **kwargs: Any) -> Bar:
    """A bar whose one-sided taker flow pushes OFI5 well past the threshold."""
    share = 1.0 if side is Side.LONG else 0.0
    return make_bar(minute, close, volume=10_000.0, buy_share=share, **kwargs)


def feed(
    loop: TradingLoop,
    bars: Iterable[Bar],
    *,
    whale: WhaleDirection = WhaleDirection.NEUTRAL,
    regime: Regime = Regime.RANDOM,
    retail_ofi: float = 0.0,
    paused: bool = False,
) -> None:
    for bar in bars:
        loop.on_bar(
            bar,
            flow(whale, retail_ofi, bar.symbol),
            hurst(regime),
            controls(paused),
        )


class ListSource:
    """A `BarSource` over a list of bars (for `Core.run` in tests)."""

    name = "list"

    def __init__(self, bars: list[Bar]) -> None:
        self._bars = bars
        self.symbols = tuple(dict.fromkeys(b.symbol for b in bars))

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        for bar in self._bars:
            if resume_after_ms is None or bar.open_ms > resume_after_ms:
                yield bar

    def health(self) -> SourceHealth:
        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None
