"""The embedded simulator: seeded, deterministic 1-minute bars for several symbols.

No key, no network. Each symbol follows its own regime chain (DESIGN.md "Market data"):

- TREND: returns are an AR(1) with positive coefficient around a drift, so a 100-return
  Hurst estimate reads persistent (H > 0.55);
- CHOP: returns are an AR(1) with negative coefficient plus a pull back to the price where
  the chop began, so the estimate reads mean-reverting (H < 0.45);
- RANDOM_WALK: independent returns (H near 0.5).

Whale bursts are runs of bars with 3-8x the normal volume and one-sided taker flow; the
price drifts in the whale's direction for a while after the burst, so whale flow leads price.
Normal bars have a taker-buy share near 0.5 that leans slightly with the bar's own return and,
for an hour after a burst, against the whales (retail fades them).

Personalities (`Personality`): the seed picks, among the markets of the table, one whose
whale flow misleads (price moves against the whales: signals that follow them lose, so the
symbol goes on probation) and one that is thin (little volume: the paper broker's impact rule,
the same for every source, slips its market orders by several bps more than the fee gate
assumes, so its live trades fall behind their shadow twins and its slippage buffer rises).
The others are plain. A symbol's personality depends only on the seed and the table, never on
which other symbols run; a symbol outside the table is plain.

Same seed, same symbols, same start: identical bars, whatever the clock or resume point.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

import anyio.lowlevel
import numpy as np

from ..bar import MINUTE_MS, Bar
from ..clock import Clock
from ..types import SourceState
from .base import SourceHealth

#: 08:30 UTC on a Monday: the sim clock starts half an hour before the golden hour opens.
DEFAULT_START_MS = int(datetime(2026, 1, 5, 8, 30, tzinfo=UTC).timestamp() * 1000)

_BPS = 1e-4
_MS_PER_HOUR = 3_600_000
_DRAW_BLOCK_BARS = 240
#: what the seed is mixed with to deal the personalities (a stream apart from every symbol's)
_PERSONALITY_STREAM = int.from_bytes(hashlib.sha256(b"sim personalities").digest()[:8], "big")
#: significant digits a thin market's volume keeps once rounded to its volume decimals
_THIN_VOLUME_DIGITS = 4


class Personality(StrEnum):
    """How a simulated market behaves beyond its regimes (see the module doc)."""

    PLAIN = "plain"
    MISLEADING = "misleading"  # price moves against the whales' flow
    THIN = "thin"  # little volume: market orders move the price more


class SimRegime(StrEnum):
    """The process that generates a symbol's returns (the truth the Hurst engine estimates)."""

    TREND = "TREND"
    CHOP = "CHOP"
    RANDOM_WALK = "RANDOM_WALK"


@dataclass(frozen=True, slots=True)
class SimMarket:
    """One simulated symbol: where it starts and how big and lively it is."""

    symbol: str
    start_price: float
    volume_per_min: float  # base-asset volume of an average minute (seasonality 1.0)
    sigma_bps: float  # standard deviation of one minute's log return, in bps
    price_decimals: int
    volume_decimals: int


DEFAULT_MARKETS: tuple[SimMarket, ...] = (
    SimMarket("BTCUSDT", 94_250.0, 180.0, 5.0, 1, 3),
    SimMarket("ETHUSDT", 3_215.0, 3_600.0, 7.0, 2, 3),
    SimMarket("SOLUSDT", 138.40, 28_000.0, 9.0, 3, 2),
    SimMarket("AVAXUSDT", 14.20, 24_000.0, 10.0, 4, 0),
    SimMarket("LINKUSDT", 13.60, 16_000.0, 9.0, 4, 2),
    SimMarket("DOTUSDT", 2.240, 70_000.0, 10.0, 5, 1),
)
DEFAULT_SYMBOLS: tuple[str, ...] = tuple(m.symbol for m in DEFAULT_MARKETS)


def generic_market(symbol: str) -> SimMarket:
    """Profile for a symbol the sim has no table entry for: a mid-cap altcoin at 10 USDT."""
    return SimMarket(symbol, 10.0, 50_000.0, 9.0, 4, 1)


@dataclass(frozen=True, slots=True)
class SimParams:
    """Every tunable number of the simulator. Shares are fractions, sigmas are in units of
    the symbol's per-minute return standard deviation."""

    markets: tuple[SimMarket, ...] = DEFAULT_MARKETS
    # regime chain: dwell drawn uniformly, next regime drawn by weight among the other two
    regime_min_dwell_min: int = 60
    regime_max_dwell_min: int = 360
    trend_weight: float = 0.35
    chop_weight: float = 0.35
    random_walk_weight: float = 0.30
    trend_autocorr: float = 0.35  # AR(1) coefficient of returns in a trend
    trend_drift_sigmas: float = 0.05  # mean return per minute in a trend
    trend_sigma_scale: float = 1.0
    chop_autocorr: float = -0.35
    chop_pull_per_min: float = 0.03  # share of the distance to the chop anchor closed a minute
    chop_sigma_scale: float = 0.85
    # volume
    volume_noise_sigma: float = 0.25  # log-normal noise of a normal bar's volume
    volume_move_gain: float = 0.25  # extra volume per sigma of the bar's |return|
    trend_volume_scale: float = 1.20
    chop_volume_scale: float = 0.85
    season_amplitude: float = 0.45  # intraday volume swing around 1.0
    season_peak_utc_h: float = 14.5  # hour of the busiest minute (US open)
    season_sigma_exponent: float = 0.5  # volatility follows volume ** this
    # taker flow of normal bars
    taker_share_noise: float = 0.08
    taker_share_return_gain: float = 0.025  # taker-buy share added per sigma of return
    # retail fades the whales: after a burst, retail taker flow leans against it, which is what
    # makes WHALE_CONFLICT signals (5-bar OFI against the 60-bar whale direction) happen
    retail_fade_share: float = 0.12  # taker-buy share retail gives up against the whales
    # for as long as the burst stays in view (the 60-bar whale window), not just while the
    # whales' 20-min lead lasts: retail keeps fading a move it has seen
    retail_fade_min: int = 60
    # whale bursts
    whale_bursts_per_h: float = 0.35
    whale_min_bars: int = 3
    whale_max_bars: int = 14
    whale_min_volume_x: float = 3.5  # burst-bar volume / normal volume
    whale_max_volume_x: float = 8.0
    whale_volume_jitter: float = 0.12  # log-normal jitter of the multiple from bar to bar
    whale_min_taker_share: float = 0.75  # one-sided taker-buy share of a buy burst
    whale_max_taker_share: float = 0.90
    whale_with_trend_prob: float = 0.70  # chance a burst in a trend goes the trend's way
    whale_impact_sigmas: float = 0.20  # push on each burst bar's return
    whale_lead_sigmas: float = 0.15  # drift per minute just after a burst
    whale_lead_halflife_min: float = 20.0
    # candle shape
    wick_sigmas: float = 0.35  # mean extra high/low excursion beyond open/close
    # personalities, dealt by the seed among `markets` (a symbol gets at most one)
    misleading_markets: int = 1  # markets whose whale flow misleads
    # the whales' push on price (burst impact and the lead after it) on a misleading market,
    # as a multiple of a plain market's push and in the opposite direction: whales buying
    # mark a top, so the signals that follow them lose
    misleading_push_x: float = 4.0
    # whale bursts on a misleading market, as a multiple of `whale_bursts_per_h`: the whales
    # are in view most of the golden hour, so most of its entries follow them
    misleading_bursts_x: float = 5.0
    thin_markets: int = 1  # markets with little volume
    # a thin market's average minute (seasonality 1.0) trades this much quote currency: a
    # 100-USDT order then takes a few % of a minute and the broker's impact rule (bps per 1 %
    # of the bar's volume) slips it by several bps, where a plain market slips ~1 bps
    thin_quote_volume_per_min: float = 600.0
    # a thin market's per-minute volatility, as a multiple of its table entry's: few orders
    # move the price further, so its trades reach their tiers or stop sooner
    thin_sigma_x: float = 2.5

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not 0 <= self.misleading_markets <= len(self.markets):
            problems.append(f"misleading_markets must be 0..{len(self.markets)}")
        if not 0 <= self.thin_markets <= len(self.markets):
            problems.append(f"thin_markets must be 0..{len(self.markets)}")
        if self.misleading_markets + self.thin_markets > len(self.markets):
            problems.append("misleading_markets + thin_markets must not exceed the markets")
        for name, low, high in _PERSONALITY_RANGES:
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                problems.append(f"{name} must be {low:g}..{high:g}")
        if problems:
            raise ValueError("SimParams: " + "; ".join(problems))


#: the range each personality strength must lie in (name, lowest, highest)
_PERSONALITY_RANGES: tuple[tuple[str, float, float], ...] = (
    ("misleading_push_x", 0.0, 10.0),
    ("misleading_bursts_x", 0.0, 10.0),
    ("thin_quote_volume_per_min", 1.0, 1e12),
    ("thin_sigma_x", 0.1, 10.0),
)


def personalities(seed: int, params: SimParams) -> dict[str, Personality]:
    """Each market of the table with its personality: a deterministic deal by the seed, the
    same whichever symbols run."""
    symbols = sorted(m.symbol for m in params.markets)
    rng = np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, _PERSONALITY_STREAM])
    dealt = [symbols[int(i)] for i in rng.permutation(len(symbols))]
    out = dict.fromkeys(symbols, Personality.PLAIN)
    for symbol in dealt[: params.misleading_markets]:
        out[symbol] = Personality.MISLEADING
    thin_end = params.misleading_markets + params.thin_markets
    for symbol in dealt[params.misleading_markets : thin_end]:
        out[symbol] = Personality.THIN
    return out


def with_personality(market: SimMarket, personality: Personality, params: SimParams) -> SimMarket:
    """The market as its personality trades it: a thin one with its quote volume cut to
    `thin_quote_volume_per_min` (and enough volume decimals to keep the taker share exact)."""
    if personality is not Personality.THIN:
        return market
    volume = params.thin_quote_volume_per_min / market.start_price
    digits = _THIN_VOLUME_DIGITS - math.floor(math.log10(volume)) - 1
    return replace(
        market,
        volume_per_min=volume,
        volume_decimals=max(market.volume_decimals, digits),
        sigma_bps=market.sigma_bps * params.thin_sigma_x,
    )


def stable_seed(seed: int, symbol: str) -> np.random.SeedSequence:
    """Seed per symbol from (seed, symbol), independent of Python's salted `hash()`."""
    digest = hashlib.sha256(symbol.encode("utf-8")).digest()
    return np.random.SeedSequence([seed & 0xFFFF_FFFF_FFFF_FFFF, *digest[:16]])


def season_factor(open_ms: int, params: SimParams) -> float:
    """Intraday volume multiple: busiest at `season_peak_utc_h`, quietest 12 h later."""
    hour_utc = (open_ms % (24 * _MS_PER_HOUR)) / _MS_PER_HOUR
    angle = 2 * math.pi * (hour_utc - params.season_peak_utc_h) / 24
    return 1.0 + params.season_amplitude * math.cos(angle)


class _Draws:
    """Pre-drawn random numbers, consumed bar by bar (block draws are fast, and the order of
    consumption never depends on anything but the seed)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._normals: list[list[float]] = []
        self._uniforms: list[list[float]] = []

    def next_bar(self) -> tuple[list[float], list[float]]:
        if not self._normals:
            self._normals = self._rng.standard_normal((_DRAW_BLOCK_BARS, 3)).tolist()
            self._uniforms = self._rng.random((_DRAW_BLOCK_BARS, 3)).tolist()
        return self._normals.pop(), self._uniforms.pop()


@dataclass(slots=True)
class _Burst:
    direction: int  # +1 whales buy, -1 whales sell
    bars_left: int
    volume_x: float


@dataclass(slots=True)
class _SymbolPath:
    """The evolving state of one simulated symbol."""

    market: SimMarket
    params: SimParams
    rng: np.random.Generator
    draws: _Draws
    log_price: float
    personality: Personality = Personality.PLAIN
    regime: SimRegime = SimRegime.RANDOM_WALK
    regime_left_min: int = 0
    trend_sign: int = 1
    chop_anchor: float = 0.0
    prev_core_return: float = 0.0
    burst: _Burst | None = None
    lead_direction: int = 0
    lead_sigmas: float = 0.0
    fade_left_min: int = 0  # minutes retail still fades the last burst
    close: float = 0.0
    push_x: float = 1.0  # the whales' push on price: -misleading_push_x on a misleading market
    bursts_per_h: float = 0.0  # set from the params and the personality
    _weights: dict[SimRegime, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.params
        self._weights = {
            SimRegime.TREND: p.trend_weight,
            SimRegime.CHOP: p.chop_weight,
            SimRegime.RANDOM_WALK: p.random_walk_weight,
        }
        self.bursts_per_h = p.whale_bursts_per_h
        if self.personality is Personality.MISLEADING:
            self.push_x = -p.misleading_push_x
            self.bursts_per_h *= p.misleading_bursts_x
        self.close = round(math.exp(self.log_price), self.market.price_decimals)
        self._enter_regime(self._pick_regime(exclude=None))

    def next_bar(self, open_ms: int) -> Bar:
        normals, uniforms = self.draws.next_bar()
        self._step_regime()
        self._maybe_start_burst(uniforms[0])
        season = season_factor(open_ms, self.params)
        sigma = self._sigma(season)
        ret = self._core_return(sigma, normals[0]) + self._whale_push(sigma)
        z_score = ret / sigma
        volume, share = self._volume_and_share(season, z_score, normals[1], normals[2])
        return self._make_bar(open_ms, ret, sigma, volume, share, uniforms)

    # -- regimes

    def _pick_regime(self, exclude: SimRegime | None) -> SimRegime:
        choices = [r for r in SimRegime if r is not exclude]
        weights = np.array([self._weights[r] for r in choices])
        return choices[int(self.rng.choice(len(choices), p=weights / weights.sum()))]

    def _enter_regime(self, regime: SimRegime) -> None:
        p = self.params
        self.regime = regime
        self.regime_left_min = int(
            self.rng.integers(p.regime_min_dwell_min, p.regime_max_dwell_min + 1)
        )
        self.trend_sign = 1 if self.rng.random() < 0.5 else -1
        self.chop_anchor = self.log_price

    def _step_regime(self) -> None:
        self.regime_left_min -= 1
        if self.regime_left_min <= 0:
            self._enter_regime(self._pick_regime(exclude=self.regime))

    def _sigma(self, season: float) -> float:
        p = self.params
        scale = {
            SimRegime.TREND: p.trend_sigma_scale,
            SimRegime.CHOP: p.chop_sigma_scale,
            SimRegime.RANDOM_WALK: 1.0,
        }[self.regime]
        return self.market.sigma_bps * _BPS * scale * math.pow(season, p.season_sigma_exponent)

    def _core_return(self, sigma: float, shock: float) -> float:
        """The regime's own log return for this minute (before any whale push)."""
        p = self.params
        if self.regime is SimRegime.TREND:
            drift = self.trend_sign * p.trend_drift_sigmas * sigma
            phi = p.trend_autocorr
            core = drift + phi * (self.prev_core_return - drift)
        elif self.regime is SimRegime.CHOP:
            phi = p.chop_autocorr
            pull = p.chop_pull_per_min * (self.chop_anchor - self.log_price)
            core = phi * self.prev_core_return + pull
        else:
            phi, core = 0.0, 0.0
        core += math.sqrt(1.0 - phi * phi) * sigma * shock
        self.prev_core_return = core
        return core

    # -- whales

    def _maybe_start_burst(self, arrival_draw: float) -> None:
        p = self.params
        if self.burst is not None or arrival_draw >= self.bursts_per_h / 60.0:
            return
        if self.regime is SimRegime.TREND and self.rng.random() < p.whale_with_trend_prob:
            direction = self.trend_sign
        else:
            direction = 1 if self.rng.random() < 0.5 else -1
        bars = int(self.rng.integers(p.whale_min_bars, p.whale_max_bars + 1))
        volume_x = float(self.rng.uniform(p.whale_min_volume_x, p.whale_max_volume_x))
        self.burst = _Burst(direction, bars, volume_x)

    def _whale_push(self, sigma: float) -> float:
        """Return added by whales: impact while they trade, then a decaying drift (the lead);
        against the whales on a misleading market."""
        p = self.params
        push = self.lead_direction * self.lead_sigmas * sigma
        self.lead_sigmas *= 0.5 ** (1.0 / p.whale_lead_halflife_min)
        if self.burst is not None:
            push += self.burst.direction * p.whale_impact_sigmas * sigma
        return self.push_x * push

    def _end_burst_bar(self) -> None:
        assert self.burst is not None
        self.burst.bars_left -= 1
        if self.burst.bars_left <= 0:
            self.lead_direction = self.burst.direction
            self.lead_sigmas = self.params.whale_lead_sigmas
            self.fade_left_min = self.params.retail_fade_min
            self.burst = None

    # -- volume and flow

    def _normal_volume(self, season: float) -> float:
        p = self.params
        scale = {
            SimRegime.TREND: p.trend_volume_scale,
            SimRegime.CHOP: p.chop_volume_scale,
            SimRegime.RANDOM_WALK: 1.0,
        }[self.regime]
        return self.market.volume_per_min * season * scale

    def _volume_and_share(
        self, season: float, z_score: float, volume_shock: float, share_shock: float
    ) -> tuple[float, float]:
        p = self.params
        normal = self._normal_volume(season)
        if self.burst is not None:
            jitter = math.exp(p.whale_volume_jitter * volume_shock)
            multiple = min(max(self.burst.volume_x * jitter, 3.0), p.whale_max_volume_x)
            span = p.whale_max_taker_share - p.whale_min_taker_share
            buy_share = p.whale_min_taker_share + span * (0.5 + 0.5 * math.tanh(share_shock))
            share = buy_share if self.burst.direction > 0 else 1.0 - buy_share
            self._end_burst_bar()
            return normal * multiple, share
        noise = math.exp(p.volume_noise_sigma * volume_shock - 0.5 * p.volume_noise_sigma**2)
        move = (1.0 + p.volume_move_gain * abs(z_score)) / (1.0 + p.volume_move_gain * 0.8)
        clipped_z = max(-3.0, min(3.0, z_score))
        share = 0.5 + p.taker_share_return_gain * clipped_z + p.taker_share_noise * share_shock
        if self.fade_left_min > 0:
            share -= p.retail_fade_share * self.lead_direction
            self.fade_left_min -= 1
        return normal * noise * move, min(max(share, 0.02), 0.98)

    # -- candle

    def _make_bar(
        self,
        open_ms: int,
        ret: float,
        sigma: float,
        volume: float,
        share: float,
        uniforms: list[float],
    ) -> Bar:
        m = self.market
        self.log_price += ret
        open_price = self.close
        close_price = round(math.exp(self.log_price), m.price_decimals)
        wick_up = -math.log(1.0 - uniforms[1]) * self.params.wick_sigmas * sigma
        wick_down = -math.log(1.0 - uniforms[2]) * self.params.wick_sigmas * sigma
        high = round(max(open_price, close_price) * math.exp(wick_up), m.price_decimals)
        low = round(min(open_price, close_price) * math.exp(-wick_down), m.price_decimals)
        volume = round(volume, m.volume_decimals)
        taker_buy = min(round(volume * share, m.volume_decimals), volume)
        self.close = close_price
        return Bar(
            symbol=m.symbol,
            open_ms=open_ms,
            open=open_price,
            high=max(high, open_price, close_price),
            low=min(low, open_price, close_price),
            close=close_price,
            volume=volume,
            taker_buy_volume=taker_buy,
        )


def _market_for(symbol: str, params: SimParams) -> SimMarket:
    for market in params.markets:
        if market.symbol == symbol:
            return market
    return generic_market(symbol)


def simulate_minutes(
    symbols: tuple[str, ...], seed: int, start_ms: int, params: SimParams
) -> Iterator[list[Bar]]:
    """The bars of each minute from `start_ms` on, one list per minute (symbols in order).

    Pure and infinite: the same arguments always give the same series.
    """
    dealt = personalities(seed, params)
    paths = []
    for symbol in symbols:
        personality = dealt.get(symbol, Personality.PLAIN)
        market = with_personality(_market_for(symbol, params), personality, params)
        rng = np.random.default_rng(stable_seed(seed, symbol))
        log_price = math.log(market.start_price)
        paths.append(_SymbolPath(market, params, rng, _Draws(rng), log_price, personality))
    open_ms = start_ms
    while True:
        yield [path.next_bar(open_ms) for path in paths]
        open_ms += MINUTE_MS


class SimSource:
    """`BarSource` of the embedded simulator, paced by the injected clock."""

    name = "sim"

    def __init__(
        self,
        clock: Clock,
        symbols: Sequence[str] = DEFAULT_SYMBOLS,
        seed: int = 7,
        start_ms: int | None = None,
        params: SimParams = SimParams(),  # frozen, so one shared default is safe
    ) -> None:
        if not symbols:
            raise ValueError("the simulator needs at least one symbol")
        self.clock = clock
        self.symbols = tuple(dict.fromkeys(s.upper() for s in symbols))
        self.seed = seed
        start = DEFAULT_START_MS if start_ms is None else start_ms
        self.start_ms = start - start % MINUTE_MS
        self.params = params
        self._state = SourceState.WARMING
        self._last_ok_s: float | None = None
        self._bars_out = 0
        self._closed = False

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        """Bars from the start (or after `resume_after_ms`), forever; sleeps until each
        minute closes. Bars at or before `resume_after_ms` are regenerated but not yielded,
        so a restart continues the identical series without waiting for the skipped minutes."""
        minutes = simulate_minutes(self.symbols, self.seed, self.start_ms, self.params)
        for minute in minutes:
            if self._closed:
                return
            open_ms = minute[0].open_ms
            if resume_after_ms is not None and open_ms <= resume_after_ms:
                if open_ms % _MS_PER_HOUR == 0:  # a long catch-up must not starve other tasks
                    await anyio.lowlevel.checkpoint()
                continue
            await self.clock.sleep_until((open_ms + MINUTE_MS) / 1000.0)
            self._state = SourceState.OK
            self._last_ok_s = self.clock.now()
            for bar in minute:
                self._bars_out += 1
                yield bar

    def health(self) -> SourceHealth:
        return SourceHealth(
            name=self.name,
            state=self._state,
            last_ok_s=self._last_ok_s,
            detail=f"seed {self.seed}, {len(self.symbols)} symbols, {self._bars_out} bars",
        )

    async def aclose(self) -> None:
        self._closed = True
