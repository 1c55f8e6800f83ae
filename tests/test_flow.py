"""Whale CVD rules (DESIGN.md "Whale CVD engine") on hand-made bars."""

from __future__ import annotations

import pytest

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.config import FlowConfig
from bigalpha_tui.core.flow import WhaleFlowEngine, whale_direction
from bigalpha_tui.core.types import WhaleDirection

T0 = 1_767_600_000_000  # an arbitrary minute


def bar(i: int, volume: float, buy: float, close: float = 100.0, has_flow: bool = True) -> Bar:
    return Bar(
        "BTCUSDT", T0 + i * MINUTE_MS, close, close, close, close, volume, buy, has_flow=has_flow
    )


def feed_quiet(engine: WhaleFlowEngine, n: int, volume: float = 10.0, buy: float = 5.0) -> int:
    for i in range(n):
        engine.update(bar(i, volume, buy))
    return n


def test_cvd_is_sum_of_taker_buy_minus_sell_over_the_window() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig(window_bars=3))
    engine.update(bar(0, 10.0, 7.0))  # delta +4
    engine.update(bar(1, 10.0, 2.0))  # delta -6
    state = engine.update(bar(2, 10.0, 6.0))  # delta +2
    assert state.cvd == pytest.approx(0.0)
    state = engine.update(bar(3, 10.0, 10.0))  # +10, the +4 bar leaves the window
    assert state.cvd == pytest.approx(-6 + 2 + 10)
    assert state.window_bars == 3


def test_bar_above_three_times_previous_mean_is_a_whale_bar() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    n = feed_quiet(engine, 60)
    state = engine.update(bar(n, 31.0, 31.0))  # 3.1x the mean of 10
    assert state.last_bar_was_whale
    assert state.whale_bars == 1
    assert state.whale_volume == pytest.approx(31.0)
    assert state.direction is WhaleDirection.BUY


def test_bar_at_exactly_three_times_the_mean_is_not_a_whale() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    n = feed_quiet(engine, 60)
    state = engine.update(bar(n, 30.0, 30.0))
    assert not state.last_bar_was_whale
    assert state.direction is WhaleDirection.NEUTRAL


def test_no_whale_before_a_full_window_of_previous_bars() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    n = feed_quiet(engine, 59)
    state = engine.update(bar(n, 1000.0, 1000.0))
    assert not state.last_bar_was_whale


def test_whale_selling_sets_sell_direction_and_splits_whale_from_retail_cvd() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    n = feed_quiet(engine, 60, volume=10.0, buy=6.0)  # retail buys a little: delta +2 each
    state = engine.update(bar(n, 40.0, 5.0))  # whale sells: delta -30
    assert state.direction is WhaleDirection.SELL
    assert state.whale_cvd == pytest.approx(-30.0)
    assert state.retail_cvd == pytest.approx(59 * 2.0)
    assert state.retail_ofi == pytest.approx((59 * 2.0) / (59 * 10.0))


def test_whale_direction_neutral_when_imbalance_below_five_percent_of_whale_volume() -> None:
    assert whale_direction(1, 4.9, 100.0, 0.05) is WhaleDirection.NEUTRAL
    assert whale_direction(1, 5.0, 100.0, 0.05) is WhaleDirection.BUY
    assert whale_direction(1, -5.0, 100.0, 0.05) is WhaleDirection.SELL
    assert whale_direction(0, 0.0, 0.0, 0.05) is WhaleDirection.NEUTRAL
    assert whale_direction(0, 1e-11, 1e-11, 0.05) is WhaleDirection.NEUTRAL


def test_intensity_is_whale_share_of_window_volume() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    n = feed_quiet(engine, 60)
    state = engine.update(bar(n, 50.0, 40.0))
    # window: 59 quiet bars of 10 and the whale bar of 50
    assert state.intensity == pytest.approx(100 * 50 / (59 * 10 + 50))


def test_sustained_burst_drives_intensity_above_sixty() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    n = feed_quiet(engine, 60)
    state = engine.state()
    for i in range(12):
        state = engine.update(bar(n + i, 80.0, 70.0))
    assert state.whale_bars == 12
    assert state.intensity > 60.0


def test_zero_volume_bars_do_not_divide_by_zero() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig())
    for i in range(70):
        state = engine.update(bar(i, 0.0, 0.0))
    assert state.intensity == 0.0
    assert state.retail_ofi == 0.0
    assert state.direction is WhaleDirection.NEUTRAL


def test_bars_without_taker_data_add_no_delta() -> None:
    engine = WhaleFlowEngine("BTCUSDT", FlowConfig(window_bars=5))
    state = engine.update(bar(0, 10.0, 0.0, has_flow=False))
    assert state.cvd == 0.0
    assert not state.flow_available


def test_state_round_trip_gives_identical_readings() -> None:
    config = FlowConfig()
    engine = WhaleFlowEngine("BTCUSDT", config)
    n = feed_quiet(engine, 70, volume=10.0, buy=4.0)
    engine.update(bar(n, 60.0, 55.0))
    restored = WhaleFlowEngine.from_state("BTCUSDT", config, engine.to_state())
    nxt = bar(n + 1, 45.0, 1.0)
    assert restored.update(nxt) == engine.update(nxt)


@pytest.mark.parametrize(
    "state",
    [
        {"bars": "nope"},
        {"bars": [[1.0, 0.0, "yes"]]},
        {"bars": [[-1.0, 0.0, False]]},
        {"bars": [[float("nan"), 0.0, False]]},
        {},
    ],
)
def test_malformed_saved_state_is_rejected(state: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError, TypeError)):
        WhaleFlowEngine.from_state("BTCUSDT", FlowConfig(), state)


# -- exact sums: no phantom direction, no dependence on when the process started ---------


def real_bars(limit: int = 4000) -> list[Bar]:
    """A month of real 1-minute Binance klines (the excerpt in tests/data)."""
    from pathlib import Path

    from bigalpha_tui.core.sources.replay import parse_kline_file

    path = Path(__file__).parent / "data" / "LINKUSDT-1m-2026-02-noheader.csv"
    return list(parse_kline_file(path, symbol="LINKUSDT"))[:limit]


def exact_state(bars: list[tuple[float, float, bool]]) -> tuple[float, float, int]:
    """Whale CVD, whale volume and whale-bar count of a window, summed from scratch."""
    import math

    whale = [(v, d) for v, d, w in bars if w]
    return math.fsum(d for _, d in whale), math.fsum(v for v, _ in whale), len(whale)


def test_no_whale_direction_without_a_whale_bar_in_the_window_on_real_data() -> None:
    """A window without a whale bar reads NEUTRAL with whale CVD 0, whatever came before
    (float running sums left 1e-11 behind and read BUY or SELL: `0 LOW ▼ SELL`)."""
    engine = WhaleFlowEngine("LINKUSDT", FlowConfig())
    phantom = 0
    emptied = 0
    for b in real_bars():
        state = engine.update(b)
        cvd, volume, count = exact_state(list(engine._bars))
        assert (state.whale_cvd, state.whale_volume, state.whale_bars) == (cvd, volume, count)
        if count == 0:
            emptied += 1
            phantom += state.direction is not WhaleDirection.NEUTRAL
    assert emptied > 100  # the excerpt has whale bars leaving the window
    assert phantom == 0


def test_a_restored_engine_reads_exactly_as_the_one_that_never_stopped() -> None:
    bars = real_bars(1500)
    config = FlowConfig()
    for split in (61, 397, 1000):
        straight = WhaleFlowEngine("LINKUSDT", config)
        for b in bars[:split]:
            straight.update(b)
        restored = WhaleFlowEngine.from_state("LINKUSDT", config, straight.to_state())
        for b in bars[split:]:
            assert restored.update(b) == straight.update(b)
