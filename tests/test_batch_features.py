"""The batch replay's engine features (core/batch_features.py) and the Hurst estimates it
takes from core/hurst.py: the tracker's own H for many windows at once, the chunked H
with less work per chunk, and a symbol's features made only when the loop asks for them,
in any order, equal to the streaming engines'."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from bigalpha_tui.core import batch_features
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.columns import BarColumns, BatchInput
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.flow import WhaleFlowEngine
from bigalpha_tui.core.hurst import HurstTracker, hurst_exponents, tracker_exponents
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.types import Regime


def _real_windows(test_data: Path) -> np.ndarray:
    from bigalpha_tui.core.sources.replay import parse_kline_file

    closes = [b.close for b in parse_kline_file(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz")]
    returns = np.array([math.log(c / p) for p, c in itertools.pairwise(closes)])
    return np.ascontiguousarray(sliding_window_view(returns, 100))


def _odd_windows(rng: np.random.Generator) -> np.ndarray:
    """Windows at the estimator's edges: a bid-ask bounce (H at the grid's edge), flat
    ones (no H), a constant drift, a NaN, an infinity, a trend, tiny and huge scales."""
    rows = [
        np.tile([1e-3, -1e-3], 50),
        np.zeros(100),
        np.full(100, 1e-4),
        np.r_[np.nan, rng.normal(0.0, 1e-3, 99)],
        np.r_[rng.normal(0.0, 1e-3, 99), np.inf],
        np.full(100, np.inf),
        np.cumsum(rng.normal(0.0, 1e-3, 100)),
        rng.normal(0.0, 1e-300, 100),
        rng.normal(0.0, 1e100, 100),
    ]
    return np.array(rows)


def _bits(values: np.ndarray) -> list[int]:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.int64).tolist()


@pytest.mark.parametrize("method", ["whittle", "rs_al"])
def test_tracker_exponents_give_the_one_row_h_to_the_bit(test_data: Path, method: str) -> None:
    """What decides a regime at a threshold and what an event shows: the H the tracker
    computes for its window alone. Many windows at once give exactly those bits (a real
    month's head, simulated windows, and the estimator's edge cases mixed in)."""
    rng = np.random.default_rng(3)
    windows = np.concatenate(
        [
            _real_windows(test_data)[:400],
            rng.normal(0.0, 1e-3, (200, 100)),
            _odd_windows(rng),
            rng.normal(0.0, 1e-3, (50, 100)),
        ]
    )
    alone = np.array([hurst_exponents(windows[j : j + 1], method)[0] for j in range(len(windows))])
    got = tracker_exponents(windows, method)
    assert _bits(got) == _bits(alone)
    assert np.isnan(got).sum() >= 4  # flat, NaN and infinite rows
    if method == "whittle":
        assert np.nanmin(got) == 0.01  # the bounce
    # and the tracker itself, fed the closes of a window, shows the same H
    tracker = HurstTracker(method=method)
    returns = windows[300]
    closes = 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(returns))))
    for close in closes.tolist():
        reading = tracker.update(close)
    replayed = np.array([math.log(c / p) for p, c in itertools.pairwise(closes.tolist())])
    assert reading.h == tracker_exponents(replayed[np.newaxis, :], method)[0]


def test_tracker_exponents_of_no_rows_or_short_rows() -> None:
    assert tracker_exponents(np.zeros((0, 100))).shape == (0,)
    assert np.isnan(tracker_exponents(np.ones((3, 10)))).all()  # too few points: nan
    with pytest.raises(ValueError, match="2-D"):
        tracker_exponents(np.zeros(100))


def test_the_chunked_h_is_the_estimators_per_chunk_to_the_bit(test_data: Path) -> None:
    """`_batched_h` skips work `hurst_exponents` does per chunk (a row's range from its max
    and min): the same H to the bit, chunk for chunk, with unusable rows (flat, NaN,
    infinite) inside a chunk and a short last chunk."""
    rng = np.random.default_rng(4)
    windows = np.concatenate(
        [_real_windows(test_data), _odd_windows(rng), rng.normal(0.0, 1e-3, (300, 100))]
    )
    windows = windows[rng.permutation(len(windows))]  # the odd rows spread over chunks
    size = batch_features.HURST_CHUNK_ROWS
    want = np.concatenate(
        [hurst_exponents(windows[s : s + size]) for s in range(0, len(windows), size)]
    )
    assert len(windows) % size != 0
    assert _bits(batch_features._batched_h(windows, "whittle")) == _bits(want)
    all_flat = np.zeros((size + 3, 100))
    assert np.isnan(batch_features._batched_h(all_flat, "whittle")).all()


def test_the_batched_h_runs_on_one_blas_thread_and_gives_the_same_bits(
    test_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunks' matrix products run on one BLAS thread whatever the process allows (a
    second thread waits for a busy core of a shared machine: the month's features took
    2.4-3.8x as long), with the same H to the bit, and the process's setting is back
    after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]

    if not blas_threads():
        pytest.skip("numpy runs no BLAS library threadpoolctl knows")
    windows = _real_windows(test_data)
    seen: list[list[int]] = []
    chunks = batch_features._batched_h_chunks

    def spy(rows: np.ndarray, method: str) -> np.ndarray:
        seen.append(blas_threads())
        return chunks(rows, method)

    monkeypatch.setattr(batch_features, "_batched_h_chunks", spy)
    with threadpool_limits(limits=2, user_api="blas"):
        two = blas_threads()
        h = batch_features._batched_h(windows, "whittle")
        assert blas_threads() == two
    assert seen == [[1] * len(two)]
    assert _bits(h) == _bits(chunks(windows, "whittle"))


def _sim_bars(count: int) -> list[Bar]:
    minutes = simulate_minutes(("SOLUSDT",), 5, DEFAULT_START_MS, SimParams())
    return [minute[0] for minute in itertools.islice(minutes, count)]


def test_features_read_in_any_order_equal_the_streaming_engines() -> None:
    """The loop asks only for the bars its rules look at, some twice, not in order: each
    bar's flow state and Hurst reading, made when asked, is the one the engines publish
    after that bar (the flow's floats bit for bit; H to the chunked estimate's rounding,
    and to the bit where an event shows it: a regime change), and a second ask gives the
    same object."""
    bars = _sim_bars(700)
    config = Config()
    settings = Core.tracker_settings_of(config)
    flow_engine = WhaleFlowEngine("SOLUSDT", config.flow)
    tracker = HurstTracker(**settings)
    flows = [flow_engine.update(bar) for bar in bars]
    readings = [tracker.update(bar.close) for bar in bars]
    (features,) = batch_features.compute_features(BatchInput.from_bars(bars), config, settings)
    order = np.random.default_rng(9).permutation(len(bars)).tolist()
    for k in order[: len(order) // 3] + order[:50]:  # a third of the bars, some twice
        flow, reading = features.flow_at(k), features.hurst_at(k)
        assert repr(flow) == repr(flows[k])
        want = readings[k]
        assert reading == dataclasses.replace(want, h=reading.h)  # all but H exactly
        if want.h is None or features.regime_changed[k]:
            assert reading.h == want.h
        else:
            assert reading.h is not None and abs(reading.h - want.h) < 1e-12
        assert features.flow_at(k) is flow and features.hurst_at(k) is reading
    assert features.regimes == [r.regime for r in readings]
    assert features.regime_at(650) is readings[650].regime
    before = [Regime.WARMING] + [r.regime for r in readings[:-1]]
    assert features.regime_changed == [
        r.regime is not b for r, b in zip(readings, before, strict=True)
    ]
    changes = [k for k, changed in enumerate(features.regime_changed) if changed]
    assert len(changes) >= 3
    assert [features.hurst_at(k).h for k in changes] == [readings[k].h for k in changes]
    # as sequences: the last by a negative index, a slice, the whole in order
    assert features.flow[-1] is features.flow_at(len(bars) - 1)
    assert features.hurst[-1] == readings[-1]  # the tracker's own H for its history
    assert features.hurst[97:100] == readings[97:100]  # warming: the window fills at 100
    assert features.hurst[100:102][0].h is not None
    assert list(features.flow) == flows and len(features.hurst) == len(bars)
    # the columns behind them, for a loop that picks its bars in numpy
    rows = features.flow.rows
    assert rows["whale_bars"].tolist() == [f.whale_bars for f in flows]
    assert rows["last_bar_was_whale"].tolist() == [f.last_bar_was_whale for f in flows]
    hurst_rows, warming = features.hurst.rows, features.hurst.warming
    assert warming == 100 and len(hurst_rows) == len(bars) - warming
    assert hurst_rows["sign"].tolist() == [r.trend_sign for r in readings[warming:]]
    with pytest.raises(IndexError):
        features.flow_at(len(bars))
    # the end states: what the engines leave after the last bar
    assert features.flow_state is not None and features.hurst_state is not None
    restored = WhaleFlowEngine.from_state("SOLUSDT", config.flow, features.flow_state)
    assert restored.to_state() == flow_engine.to_state()
    assert HurstTracker.from_state(features.hurst_state, **settings).to_state() == (
        tracker.to_state()
    )


def test_ofi_columns_read_as_the_lists_they_were() -> None:
    """Alpha-OFI's window sums read as lists (an item, a slice, the whole), Python floats."""
    bars = _sim_bars(300)
    config = Config()
    (features,) = batch_features.compute_features(
        BatchInput.from_bars(bars), config, Core.tracker_settings_of(config)
    )
    ofi = features.ofi
    deltas = [b.delta for b in bars]
    assert list(ofi.deltas) == deltas and ofi.deltas[10:20] == deltas[10:20]
    assert type(ofi.deltas[5]) is float and ofi.deltas[-1] == deltas[-1]
    assert len(ofi.ofi) == len(ofi.fires) == len(bars)
    ranges = ofi.true_ranges
    assert ranges[0] == bars[0].high - bars[0].low
    assert math.isclose(
        ofi.range_sums[200], math.fsum(ranges[200 - config.strategy.atr_bars + 1 : 201])
    )


def test_hurst_features_with_the_rescaled_range_method_follow_the_tracker() -> None:
    """The documented alternative estimator goes through the plain batched calls: the same
    labels, run, sign and end state as its tracker, and its own H at every regime change."""
    bars = _sim_bars(600)
    settings = {**Core.tracker_settings_of(Config()), "method": "rs_al"}
    tracker = HurstTracker(**settings)
    readings = [tracker.update(bar.close) for bar in bars]
    columns, end = batch_features.hurst_features(BarColumns.from_bars("SOLUSDT", bars), settings)
    got = list(columns)
    assert [dataclasses.replace(r, h=None) for r in got] == [
        dataclasses.replace(r, h=None) for r in readings
    ]
    for k, changed in enumerate(columns.changed):
        if changed:
            assert got[k].h == readings[k].h
    assert any(columns.changed[100:])
    assert end is not None
    assert HurstTracker.from_state(end, **settings).to_state() == tracker.to_state()
