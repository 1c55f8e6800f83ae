"""Behaviour of the Hurst regime estimator and the per-symbol tracker (DESIGN.md "Hurst regime")."""

from __future__ import annotations

import importlib.util
import json
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from bigalpha_tui.core import hurst as hurst_module
from bigalpha_tui.core.hurst import (
    NOISE_BELOW,
    TREND_ABOVE,
    HurstTracker,
    classify,
    fgn_spectral_density,
    hurst_exponent,
    hurst_exponents,
)
from bigalpha_tui.core.types import Regime


def whittle_band(n: int) -> float:
    """The +- band a Whittle tracker of window `n` shows (measured on exact fGn)."""
    return HurstTracker(window=n).band


def _load_fgn() -> ModuleType:
    # By path, so the helper loads whether or not tests/ ever becomes a package.
    spec = importlib.util.spec_from_file_location("hurst_fgn", Path(__file__).with_name("fgn.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fgn_module = _load_fgn()
fgn: Callable[..., np.ndarray] = _fgn_module.fgn
fgn_autocovariance: Callable[..., np.ndarray] = _fgn_module.fgn_autocovariance

EXPECTED_REGIME = {
    0.3: Regime.NOISE,
    0.4: Regime.NOISE,
    0.5: Regime.RANDOM,
    0.6: Regime.TRUE_TREND,
    0.7: Regime.TRUE_TREND,
}


@pytest.fixture(scope="module")
def fgn_windows() -> dict[float, np.ndarray]:
    rng = np.random.default_rng(20240611)
    return {h: fgn(h, 100, 1000, rng) for h in EXPECTED_REGIME}


def closes_from(returns: np.ndarray, start: float = 100.0) -> list[float]:
    return [start, *(start * np.exp(np.cumsum(returns))).tolist()]


# ------------------------------------------------------------------ the test generator


def test_fgn_generator_reproduces_the_fgn_autocovariance() -> None:
    x = fgn(0.7, 64, 40_000, np.random.default_rng(1))
    for lag in (0, 1, 2, 5):
        sample = float(np.mean(x[:, : 64 - lag] * x[:, lag:]))
        assert sample == pytest.approx(float(fgn_autocovariance(0.7, lag)), abs=0.01)


# ----------------------------------------------------------------------- the estimator


@pytest.mark.parametrize("h", [0.3, 0.5, 0.7])
def test_spectral_density_integrates_to_the_fgn_autocovariance(h: float) -> None:
    # gamma(k) = integral over [-pi, pi] of f(l) cos(k l); l = pi t^4 tames the l=0 pole.
    nodes, weights = np.polynomial.legendre.leggauss(20)
    edges = np.linspace(0.0, 1.0, 101)
    t = (edges[:-1, None] + (nodes + 1) / 2 * np.diff(edges)[:, None]).ravel()
    dt = np.outer(np.diff(edges) / 2, weights).ravel()
    lam, dlam = np.pi * t**4, 4 * np.pi * t**3 * dt
    density = fgn_spectral_density(np.array([h]), lam)[0]
    for lag in (0, 1, 3):
        integral = 2 * float(np.sum(density * np.cos(lag * lam) * dlam))
        assert integral == pytest.approx(float(fgn_autocovariance(h, lag)), abs=1e-5)


def test_whittle_puts_at_least_78_percent_of_fgn_windows_in_the_right_regime(
    fgn_windows: dict[float, np.ndarray],
) -> None:
    shares = []
    for h, windows in fgn_windows.items():
        estimates = hurst_exponents(windows)
        assert abs(float(estimates.mean()) - h) <= 0.03, f"bias at H={h}"
        shares.append(np.mean([classify(float(e)) is EXPECTED_REGIME[h] for e in estimates]))
    assert float(np.mean(shares)) >= 0.78


def test_rs_al_alternative_ranks_fgn_by_persistence(
    fgn_windows: dict[float, np.ndarray],
) -> None:
    means = [float(hurst_exponents(w, "rs_al").mean()) for w in fgn_windows.values()]
    assert means == sorted(means)
    assert means[2] == pytest.approx(0.5, abs=0.05)


def test_whittle_band_matches_the_measured_spread_at_100_returns(
    fgn_windows: dict[float, np.ndarray],
) -> None:
    spread = float(np.std(hurst_exponents(fgn_windows[0.5])))
    assert whittle_band(100) == pytest.approx(spread, rel=0.15)
    assert whittle_band(50) > whittle_band(100) > whittle_band(200) > whittle_band(1000)


def test_grid_refinement_matches_a_dense_search(fgn_windows: dict[float, np.ndarray]) -> None:
    windows = fgn_windows[0.6][:200]
    dense_h = np.linspace(0.01, 0.99, 981)
    freqs = 2 * np.pi * np.arange(1, 50) / 100
    density = fgn_spectral_density(dense_h, freqs)
    periodogram = np.abs(np.fft.rfft(windows, axis=1)[:, 1:50]) ** 2
    contrast = np.log(periodogram @ (1 / density).T) + np.log(density).mean(axis=1)
    best = dense_h[contrast.argmin(axis=1)]
    assert np.abs(hurst_exponents(windows) - best).max() < 1e-3


@pytest.mark.parametrize("method", ["whittle", "rs_al"])
def test_batched_and_single_window_estimates_agree(
    fgn_windows: dict[float, np.ndarray], method: str
) -> None:
    windows = np.concatenate([fgn_windows[0.3][:20], fgn_windows[0.7][:20]])
    windows[5, 17] = np.nan
    single = [hurst_exponent(row, method) for row in windows]
    np.testing.assert_allclose(hurst_exponents(windows, method), single, rtol=1e-12)


def test_single_window_uses_only_the_last_100_returns(
    fgn_windows: dict[float, np.ndarray],
) -> None:
    window = fgn_windows[0.6][0]
    older = np.full(37, np.nan)
    assert hurst_exponent(np.concatenate([older, window])) == hurst_exponent(window)
    assert math.isnan(hurst_exponent(window[1:]))


def test_short_or_non_finite_windows_give_nan_rows_only(
    fgn_windows: dict[float, np.ndarray],
) -> None:
    windows = fgn_windows[0.4][:4].copy()
    windows[1, 50] = np.inf
    windows[2, 0] = np.nan
    estimates = hurst_exponents(windows)
    assert np.isnan(estimates[1:3]).all()
    assert np.isfinite(estimates[[0, 3]]).all()
    assert np.isnan(hurst_exponents(windows[:, :10])).all()


@pytest.mark.parametrize("method", ["whittle", "rs_al"])
def test_flat_windows_give_nan_without_warnings(method: str) -> None:
    flat = np.zeros(100)
    constant_drift = np.full(100, math.log(1.0001))
    mostly_flat = np.zeros(100)
    mostly_flat[[3, 40, 41, 77]] = [1e-4, -2e-4, 1e-4, 3e-4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimates = hurst_exponents(np.stack([flat, constant_drift, mostly_flat]), method)
        assert math.isnan(hurst_exponent(flat, method))
    assert np.isnan(estimates[:2]).all()
    assert np.isfinite(estimates[2])


def test_bid_ask_bounce_is_the_most_anti_persistent_series() -> None:
    closes = np.tile([100.0, 100.1], 51)[:101]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = hurst_exponent(np.diff(np.log(closes)))
    assert h == pytest.approx(0.01)
    assert classify(h) is Regime.NOISE


def test_estimate_does_not_depend_on_the_scale_of_returns(
    fgn_windows: dict[float, np.ndarray],
) -> None:
    windows = fgn_windows[0.5][:10]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny = hurst_exponents(windows * 1e-300)
    np.testing.assert_allclose(tiny, hurst_exponents(windows), atol=1e-9)


def test_unknown_method_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(ValueError, match=r"whittle.*rs_al"):
        hurst_exponent(np.zeros(100), method="dfa")
    with pytest.raises(ValueError, match="whittle"):
        hurst_exponents(np.zeros((2, 100)), method="RS")
    with pytest.raises(ValueError, match="whittle"):
        HurstTracker(method="mle")


def test_classify_uses_strict_thresholds_around_random() -> None:
    assert (TREND_ABOVE, NOISE_BELOW) == (0.55, 0.45)
    assert classify(0.5501) is Regime.TRUE_TREND
    assert classify(0.55) is Regime.RANDOM
    assert classify(0.45) is Regime.RANDOM
    assert classify(0.4499) is Regime.NOISE
    assert classify(None) is Regime.WARMING
    assert classify(math.nan) is Regime.WARMING
    assert classify(0.58, trend_above=0.6, noise_below=0.4) is Regime.RANDOM


# ---------------------------------------------------------------------------- tracker


def scripted_h(monkeypatch: pytest.MonkeyPatch, values: list[float]) -> None:
    """Make the tracker's estimator return ``values`` in turn, one per full-window bar."""
    script: Iterator[float] = iter(values)

    def fake(windows: np.ndarray, method: str = "whittle") -> np.ndarray:
        return np.full(windows.shape[0], next(script))

    monkeypatch.setattr(hurst_module, "hurst_exponents", fake)


def warmed_tracker(**kwargs: Any) -> HurstTracker:
    """A tracker fed 100 closes: 99 returns, one bar short of its first estimate."""
    tracker = HurstTracker(**kwargs)
    for close in closes_from(np.full(99, 0.001) * np.tile([1, -1.5, 2], 33)):
        tracker.update(close)
    return tracker


def test_regime_is_warming_until_100_returns() -> None:
    tracker = HurstTracker(confirm_bars=1)
    rng = np.random.default_rng(4)
    closes = closes_from(0.001 * rng.standard_normal(100))
    readings = [tracker.update(c) for c in closes]
    assert all(r.regime is Regime.WARMING and r.h is None for r in readings[:100])
    assert readings[99].returns_seen == 99
    assert readings[100].h is not None
    assert readings[100].regime is not Regime.WARMING
    assert readings[100].regime is readings[100].raw_regime


def test_first_regime_is_published_after_five_agreeing_bars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted_h(monkeypatch, [0.3] * 5)
    tracker = warmed_tracker()
    readings = [tracker.update(100.0 + i) for i in range(5)]
    assert [r.raw_regime for r in readings] == [Regime.NOISE] * 5
    assert [r.regime for r in readings] == [Regime.WARMING] * 4 + [Regime.NOISE]


def test_a_flip_shorter_than_five_bars_does_not_change_the_regime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted_h(monkeypatch, [0.3] * 5 + [0.7] * 4 + [0.3] + [0.7] * 3)
    tracker = warmed_tracker()
    readings = [tracker.update(100.0 + i) for i in range(13)]
    assert readings[6].raw_regime is Regime.TRUE_TREND
    assert all(r.regime is Regime.NOISE for r in readings[4:])


def test_a_flip_held_five_bars_changes_the_regime(monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_h(monkeypatch, [0.3] * 5 + [0.5] * 5)
    tracker = warmed_tracker()
    readings = [tracker.update(100.0 + i) for i in range(10)]
    assert [r.regime for r in readings[5:]] == [Regime.NOISE] * 4 + [Regime.RANDOM]


def test_confirm_bars_one_follows_the_raw_label(monkeypatch: pytest.MonkeyPatch) -> None:
    script = [0.3, 0.7, 0.5, 0.7, 0.3]
    scripted_h(monkeypatch, script)
    tracker = warmed_tracker(confirm_bars=1)
    readings = [tracker.update(100.0 + i) for i in range(5)]
    assert [r.regime for r in readings] == [classify(h) for h in script]


def test_tracker_h_is_the_estimate_of_its_last_100_returns() -> None:
    rng = np.random.default_rng(5)
    returns = 0.002 * fgn(0.65, 140, 1, rng)[0]
    tracker = HurstTracker()
    for close in closes_from(returns):
        reading = tracker.update(close)
    logs = np.diff(np.log(closes_from(returns)))
    assert reading.h == pytest.approx(hurst_exponent(logs), abs=1e-9)
    assert reading.band == pytest.approx(whittle_band(100))


def test_persistent_prices_settle_in_true_trend() -> None:
    returns = 0.001 * fgn(0.85, 600, 1, np.random.default_rng(6))[0]
    tracker = HurstTracker()
    regimes = [tracker.update(c).regime for c in closes_from(returns)][150:]
    assert regimes.count(Regime.TRUE_TREND) / len(regimes) > 0.8


@pytest.mark.parametrize(
    ("step", "sign"),
    [(0.001, 1), (-0.001, -1)],
)
def test_trend_sign_is_the_sign_of_the_window_net_return(step: float, sign: int) -> None:
    wiggle = 0.003 * np.tile([1.0, -1.0], 60)
    tracker = HurstTracker()
    for close in closes_from(wiggle + step):
        reading = tracker.update(close)
    assert reading.trend_sign == sign


def test_trend_sign_is_zero_when_price_is_back_where_the_window_started() -> None:
    tracker = HurstTracker()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(121):
            reading = tracker.update(100.0 if i % 2 == 0 else 101.0)
    assert reading.trend_sign == 0
    assert reading.raw_regime is Regime.NOISE


def test_history_keeps_the_latest_h_values_only() -> None:
    tracker = HurstTracker(history_len=10)
    rng = np.random.default_rng(7)
    hs = [tracker.update(c).h for c in closes_from(0.001 * rng.standard_normal(130))]
    assert tracker.history == tuple(hs[-10:])


def test_bad_closes_are_rejected_and_leave_state_unchanged() -> None:
    tracker = HurstTracker()
    rng = np.random.default_rng(8)
    for close in closes_from(0.001 * rng.standard_normal(120)):
        tracker.update(close)
    before, reading = tracker.to_state(), tracker.reading
    for bad in (0.0, -5.0, math.nan, math.inf):
        assert tracker.update(bad) is reading
    assert tracker.rejected == 4
    after = tracker.to_state()
    assert after.pop("rejected") == 4
    before.pop("rejected")
    assert after == before


def test_flat_market_reads_as_warming_without_warnings() -> None:
    tracker = HurstTracker(confirm_bars=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        readings = [tracker.update(42.0) for _ in range(130)]
    assert readings[-1].h is None
    assert readings[-1].regime is Regime.WARMING
    assert readings[-1].returns_seen == 129
    assert readings[-1].trend_sign == 0


def test_state_round_trip_resumes_exactly() -> None:
    rng = np.random.default_rng(9)
    closes = closes_from(0.001 * fgn(0.6, 200, 1, rng)[0])
    original = HurstTracker(history_len=30)
    for close in closes[:150]:
        original.update(close)
    original.update(-1.0)
    state = json.loads(json.dumps(original.to_state(), allow_nan=False))
    restored = HurstTracker.from_state(state, history_len=30)
    assert restored.reading == original.reading
    assert restored.rejected == 1
    for close in closes[150:]:
        assert restored.update(close) == original.update(close)
    assert restored.history == original.history


def test_state_with_a_part_window_resumes_warming() -> None:
    tracker = HurstTracker()
    for close in closes_from(np.full(40, 0.001)):
        tracker.update(close)
    restored = HurstTracker.from_state(tracker.to_state())
    assert restored.reading.regime is Regime.WARMING
    assert restored.reading.returns_seen == 40
    for close in closes_from(np.full(60, -0.001), start=tracker.to_state()["last_close"])[1:]:
        restored.update(close)
    assert restored.reading.h is not None


def _good_state() -> dict[str, Any]:
    tracker = HurstTracker()
    for close in closes_from(0.001 * np.random.default_rng(10).standard_normal(110)):
        tracker.update(close)
    return tracker.to_state()


@pytest.mark.parametrize(
    "change",
    [
        {"returns": "0.1,0.2"},
        {"returns": [0.1, None]},
        {"returns": [0.1, "0.2"]},
        {"history": [0.5, math.nan]},
        {"published": "BULL"},
        {"candidate": None},
        {"run": -1},
        {"run": True},
        {"returns_seen": 3},
        {"rejected": 1.5},
        {"last_close": -5.0},
        {"last_close": None},
    ],
)
def test_malformed_state_is_refused(change: dict[str, Any]) -> None:
    state = _good_state() | change
    with pytest.raises(ValueError, match="Hurst state"):
        HurstTracker.from_state(state)


@pytest.mark.parametrize("state", [None, [], "state", {}])
def test_state_that_is_not_a_full_mapping_is_refused(state: Any) -> None:
    with pytest.raises(ValueError, match="Hurst state"):
        HurstTracker.from_state(state)


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 5}, {"confirm_bars": 0}, {"trend_above": 0.4}, {"history_len": 0}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        HurstTracker(**kwargs)


def test_one_window_is_refined_to_the_bit_as_in_a_batch() -> None:
    """The tracker's one-row call refines its grid minimum with Python floats: the same H,
    bit for bit, as the same row inside a batch (interior minima, both grid edges, flat
    contrast rows and a NaN)."""
    from bigalpha_tui.core.hurst import _refine_minimum

    rng = np.random.default_rng(11)
    rows = [rng.normal(0.0, 1.0, 99) for _ in range(300)]
    rows += [np.cumsum(np.abs(rng.normal(0.0, 1.0, 99))), -np.arange(99.0)]  # edge minima
    rows += [np.zeros(99), np.full(99, 2.0), np.where(np.arange(99) == 40, np.nan, 1.0)]
    rows += [(np.arange(99.0) - 37.3) ** 2]  # a clean parabola
    batch = _refine_minimum(np.array(rows))
    for row, want in zip(rows, batch.tolist(), strict=True):
        got = _refine_minimum(row[np.newaxis, :])
        assert got.shape == (1,)
        assert got.tobytes() == np.array([want]).tobytes()


def test_the_tracker_gives_the_batched_estimators_h_for_its_window() -> None:
    """`hurst_exponent` of one window equals that row of `hurst_exponents` to within the
    matrix product's rounding, and its refinement path keeps H inside the grid."""
    rng = np.random.default_rng(5)
    windows = rng.normal(0.0, 1e-3, (64, 100))
    batch = hurst_exponents(windows)
    for row, want in zip(windows, batch.tolist(), strict=True):
        got = hurst_exponent(row)
        assert abs(got - want) < 1e-12
        assert 0.01 <= got <= 0.99
