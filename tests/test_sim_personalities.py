"""The simulator's market personalities: the demo shows the whole plan.

On the default seed two default market days (`bigalpha-tui --no-ui --speed max --duration 2d`,
as tests/test_sim_acceptance.py runs them) put the market whose whale flow misleads on
probation and raise the thin market's slippage buffer; the rules keep their numbers.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from two_days import TwoDays

from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.sources.sim import (
    DEFAULT_MARKETS,
    DEFAULT_START_MS,
    DEFAULT_SYMBOLS,
    Personality,
    SimParams,
    personalities,
    season_factor,
    simulate_minutes,
    with_personality,
)

DAY_MIN = 1440
DEFAULT_SEED = Config().source.seed
PLAIN_ONLY = SimParams(misleading_markets=0, thin_markets=0)


def bars_by_symbol(
    symbols: tuple[str, ...], params: SimParams, minutes: int, seed: int = DEFAULT_SEED
) -> dict[str, list[Bar]]:
    out: dict[str, list[Bar]] = defaultdict(list)
    stream = simulate_minutes(symbols, seed, DEFAULT_START_MS, params)
    for _, minute in zip(range(minutes), stream, strict=False):
        for bar in minute:
            out[bar.symbol].append(bar)
    return out


def dealt(seed: int) -> dict[Personality, list[str]]:
    out: dict[Personality, list[str]] = defaultdict(list)
    for symbol, personality in personalities(seed, SimParams()).items():
        out[personality].append(symbol)
    return out


# ----------------------------------------------------------------------- the deal


def test_the_seed_deals_one_misleading_and_one_thin_market_the_rest_plain() -> None:
    for seed in range(50):
        hands = dealt(seed)
        assert len(hands[Personality.MISLEADING]) == 1
        assert len(hands[Personality.THIN]) == 1
        assert len(hands[Personality.PLAIN]) == len(DEFAULT_SYMBOLS) - 2
    assert personalities(DEFAULT_SEED, SimParams()) == personalities(DEFAULT_SEED, SimParams())
    assert len({tuple(dealt(seed)[Personality.MISLEADING]) for seed in range(50)}) > 3


def test_a_symbol_keeps_its_personality_and_series_whichever_symbols_run() -> None:
    thin = dealt(DEFAULT_SEED)[Personality.THIN][0]
    misleading = dealt(DEFAULT_SEED)[Personality.MISLEADING][0]
    together = bars_by_symbol(DEFAULT_SYMBOLS, SimParams(), 300)
    for symbol in (thin, misleading):
        assert bars_by_symbol((symbol,), SimParams(), 300)[symbol] == together[symbol]


def test_plain_markets_are_untouched_by_the_personalities() -> None:
    """Only the dealt markets change: every plain one is bar for bar the market it was."""
    with_personalities = bars_by_symbol(DEFAULT_SYMBOLS, SimParams(), 600)
    without = bars_by_symbol(DEFAULT_SYMBOLS, PLAIN_ONLY, 600)
    for symbol in dealt(DEFAULT_SEED)[Personality.PLAIN]:
        assert with_personalities[symbol] == without[symbol]
    for personality in (Personality.MISLEADING, Personality.THIN):
        symbol = dealt(DEFAULT_SEED)[personality][0]
        assert with_personalities[symbol] != without[symbol]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("misleading_push_x", -1.0),
        ("misleading_bursts_x", math.nan),
        ("thin_quote_volume_per_min", 0.0),
        ("thin_sigma_x", 0.0),
        ("thin_markets", 7),
        ("misleading_markets", -1),
    ],
)
def test_a_personality_strength_out_of_range_is_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        SimParams(**{field: value})


def test_more_personalities_than_markets_is_refused() -> None:
    with pytest.raises(ValueError, match="must not exceed the markets"):
        SimParams(misleading_markets=4, thin_markets=3)


# ------------------------------------------------------------------ the behaviour


def test_the_thin_market_trades_its_quote_volume_and_keeps_an_exact_taker_share() -> None:
    params = SimParams()
    thin = dealt(DEFAULT_SEED)[Personality.THIN][0]
    bars = bars_by_symbol((thin,), params, DAY_MIN)[thin]
    quote = [b.volume * b.close / season_factor(b.open_ms, params) for b in bars]
    assert 0.5 < statistics.median(quote) / params.thin_quote_volume_per_min < 2.0
    # its volume keeps enough decimals that the taker share is not rounded to a coarse grid
    market = next(m for m in DEFAULT_MARKETS if m.symbol == thin)
    step = 10.0 ** -with_personality(market, Personality.THIN, params).volume_decimals
    assert statistics.median(b.volume for b in bars) / step >= 1000


def test_on_the_misleading_market_price_moves_against_the_whales() -> None:
    """After a burst price follows the whales on a plain market and goes against them on the
    misleading one (the same generator, the same bursts detection)."""

    def signed_moves(params: SimParams, symbol: str) -> list[float]:
        moves = []
        for seed in range(4):
            bars = bars_by_symbol((symbol,), params, DAY_MIN, seed=seed)[symbol]
            volumes = np.array([b.volume for b in bars])
            mean = np.convolve(volumes, np.ones(60) / 60, mode="full")[: len(volumes)]
            whale = np.r_[False, volumes[1:] > 3.0 * mean[:-1]]
            whale[:60] = False
            for i in np.flatnonzero(whale[:-1] & ~whale[1:]):
                if i + 30 < len(bars):
                    direction = 1.0 if bars[i].delta > 0 else -1.0
                    moves.append(direction * math.log(bars[i + 30].close / bars[i].close))
        return moves

    everyone_misleads = SimParams(misleading_markets=len(DEFAULT_SYMBOLS), thin_markets=0)
    plain = signed_moves(PLAIN_ONLY, "SOLUSDT")
    misled = signed_moves(everyone_misleads, "SOLUSDT")
    assert len(plain) >= 10 and len(misled) >= 10
    assert float(np.mean(plain)) > 0.0 > float(np.mean(misled))


# -------------------------------------------------------------- the demo, end to end


@pytest.mark.slow
def test_two_default_days_show_a_probation_entry_and_a_buffer_rise(
    two_default_days: TwoDays,
) -> None:
    # the default seed deals these two: a change to the deal must be a visible change
    assert personalities(DEFAULT_SEED, SimParams()) == {
        "AVAXUSDT": Personality.THIN,
        "BTCUSDT": Personality.PLAIN,
        "DOTUSDT": Personality.PLAIN,
        "ETHUSDT": Personality.MISLEADING,
        "LINKUSDT": Personality.PLAIN,
        "SOLUSDT": Personality.PLAIN,
    }
    # the two days as the acceptance test runs them (one run per session), then `status --json`
    assert two_default_days.run.returncode == 0, two_default_days.run.stderr
    assert two_default_days.status.returncode == 0, two_default_days.status.stderr
    events, status = two_default_days.events, json.loads(two_default_days.status.stdout)
    config = Config()

    # the misleading market loses in the golden hour and goes on probation
    probation = [e for e in events if e["kind"] == "probation" and e["after"] == "PROBATION"]
    assert any(e["symbol"] == "ETHUSDT" for e in probation), probation
    first = next(e for e in probation if e["symbol"] == "ETHUSDT")
    assert first["golden_trades"] >= config.learning.min_trades
    assert first["golden_pf"] < config.learning.probation_enter_pf
    assert "ACTIVE -> PROBATION" in first["message"]

    # the thin market's market orders slip several times what the plain markets' do ...
    slippage: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if e["kind"] == "entry":
            slippage[e["symbol"]].append(e["slippage_bps"])
    plain_worst = max(statistics.mean(v) for s, v in slippage.items() if s != "AVAXUSDT")
    assert statistics.mean(slippage["AVAXUSDT"]) > 3.0 * plain_worst, dict(slippage)

    # ... so its live trades fall behind their shadow twins and its buffer rises, only there
    raises = [e for e in events if e["kind"] == "buffer"]
    assert raises and {e["symbol"] for e in raises} == {"AVAXUSDT"}, raises
    assert raises[0]["before_bps"] == config.gates.initial_slippage_buffer_bps
    assert raises[0]["after_bps"] > raises[0]["before_bps"]
    assert raises[0]["pf_shadow"] > config.learning.shadow_edge_ratio * raises[0]["pf_live"]

    # what `bigalpha-tui status` shows the operator after the two days
    symbols = status["learning"]["symbols"]
    assert symbols["AVAXUSDT"]["slippage_buffer_bps"] > config.gates.initial_slippage_buffer_bps
    # it went on probation (and may be back by the end): the change is on record
    assert symbols["ETHUSDT"]["state_changed"] is not None
    # every 4 h on the slot: the 150-bar backfill from 06:00 crosses 08:00, so 13 scheduled
    # cycles in two days, the last at 08:00 and the next due at 12:00
    learning = status["learning"]
    assert (learning["cycles"], learning["last_cycle"], learning["next_due"]) == (
        13,
        "2026-01-07T08:00:00Z",
        "2026-01-07T12:00:00Z",
    )


def test_the_personality_markets_stay_sane_and_realistic_for_a_day() -> None:
    """What tests/test_sources.py asks of every plain market, asked of the dealt ones; they
    swing more (a day's move under 35 %, a plain market's under 25 %): wrong whales pushing
    hard, or a thin book."""
    for seed in range(6):
        hands = dealt(seed)
        symbols = (hands[Personality.MISLEADING][0], hands[Personality.THIN][0])
        for bars in bars_by_symbol(symbols, SimParams(), DAY_MIN, seed=seed).values():
            assert all(b.problem() is None for b in bars)
            assert all(b.volume > 0.0 and 0.0 <= b.taker_buy_volume <= b.volume for b in bars)
            assert all(b.open == prev.close for prev, b in itertools.pairwise(bars))
            assert abs(math.log(bars[-1].close / bars[0].open)) < 0.35
