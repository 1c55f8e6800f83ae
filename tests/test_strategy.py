"""Alpha-OFI: OFI5 threshold, expected edge, warm-up and the features a signal carries."""

from __future__ import annotations

import math

import pytest
from trading_helpers import flow, hurst, make_bar, signal_bar, warm_bars

from bigalpha_tui.core.config import StrategyConfig
from bigalpha_tui.core.strategy import AlphaOfi, expected_edge_bps, signal_side, true_range
from bigalpha_tui.core.types import Regime, Side, WhaleDirection


def run(bars: list, **flow_kwargs: object) -> list:  # type: ignore[type-arg]
    strategy = AlphaOfi("BTCUSDT", StrategyConfig())
    return [strategy.update(b, flow(**flow_kwargs), hurst(Regime.TRUE_TREND)) for b in bars]  # type: ignore[arg-type]


def test_long_signal_when_ofi5_is_above_the_threshold() -> None:
    signals = run([*warm_bars(), signal_bar(14, Side.LONG)])
    assert signals[-1] is not None and signals[-1].side is Side.LONG
    assert signals[-1].ofi == pytest.approx(10_000 / 14_000)


def test_short_signal_when_ofi5_is_below_minus_the_threshold() -> None:
    signals = run([*warm_bars(), signal_bar(14, Side.SHORT)])
    assert signals[-1] is not None and signals[-1].side is Side.SHORT


def test_ofi_exactly_at_the_threshold_gives_no_signal() -> None:
    assert signal_side(0.15, 0.15) is None
    assert signal_side(-0.15, 0.15) is None
    assert signal_side(0.1500001, 0.15) is Side.LONG


def test_balanced_flow_gives_no_signal() -> None:
    assert all(s is None for s in run(warm_bars(30)))


def test_no_signal_until_the_atr_window_is_full() -> None:
    bars = [*warm_bars(12), signal_bar(12, Side.LONG)]  # 13 true ranges < ATR(14)
    assert all(s is None for s in run(bars))


def test_a_bar_without_taker_flow_gives_no_signal() -> None:
    bars = [*warm_bars(), make_bar(14, volume=10_000, buy_share=1.0, has_flow=False)]
    assert run(bars)[-1] is None


def test_expected_edge_is_ofi_times_atr_bps_times_root_horizon() -> None:
    assert expected_edge_bps(-0.4, 20.0, 30) == pytest.approx(0.4 * 20.0 * math.sqrt(30))


def test_signal_edge_uses_atr14_in_bps_of_the_close() -> None:
    signal = run([*warm_bars(), signal_bar(14, Side.LONG)])[-1]
    # 13 bars of range 0.4 and the signal bar's range 0 (open = close = 100, no wicks)
    atr_bps = 10_000 * (13 * 0.4 + 0.0) / 14 / 100.0
    assert signal.atr_bps == pytest.approx(atr_bps)
    assert signal.expected_edge_bps == pytest.approx(signal.ofi * atr_bps * math.sqrt(30))


def test_true_range_counts_a_gap_from_the_previous_close() -> None:
    assert true_range(high=101.0, low=100.5, previous_close=99.0) == pytest.approx(2.0)
    assert true_range(high=101.0, low=100.5, previous_close=None) == pytest.approx(0.5)


def test_signal_carries_the_features_the_gates_read() -> None:
    bars = [*warm_bars(), signal_bar(14, Side.LONG, close=100.0)]
    signal = run(bars, direction=WhaleDirection.SELL, retail_ofi=0.3)[-1]
    assert signal.whale_direction is WhaleDirection.SELL
    assert signal.retail_ofi == 0.3
    assert signal.regime is Regime.TRUE_TREND
    assert signal.price == 100.0
    assert signal.time_s == bars[-1].close_s


def test_state_round_trip_continues_the_same_windows() -> None:
    bars = [*warm_bars(), signal_bar(14, Side.LONG)]
    first = AlphaOfi("BTCUSDT", StrategyConfig())
    for b in bars[:-1]:
        first.update(b, flow(), hurst())
    restored = AlphaOfi.from_state("BTCUSDT", StrategyConfig(), first.to_state())
    a = first.update(bars[-1], flow(), hurst())
    b = restored.update(bars[-1], flow(), hurst())
    assert a == b
