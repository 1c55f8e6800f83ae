"""CoinGlass v4 cross-exchange taker flow, added to the bars another source (Binance) drives.

CoinGlass cannot drive 1-minute bars (its exchange list is a rolling split, its history bars are
coarse on the cheaper plans), so this source wraps a `BarSource` and, when a new minute's bars
arrive, polls `/api/futures/taker-buy-sell-volume/exchange-list` for each symbol's coin through
one limiter per API key. Each bar goes out with `cross_buy_ratio` = the latest buy share (0..1)
fetched within `fresh_for_s` of its close, else None. Catch-up bars from the past get None:
today's flow says nothing about them.

The API key travels only in the `CG-API-KEY` header; every message this module builds is
scrubbed of it. Success is HTTP 200 *and* body `code` "0"; an auth refusal stops polling (state
unauthorised) instead of retrying in a loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..bar import MINUTE_MS, Bar
from ..clock import Clock
from ..errors import SourceError
from ..ratelimit import (
    FailureKind,
    HostRateLimiter,
    RequestFailure,
    describe_state,
    fetch_json,
    scrub,
)
from ..types import SourceState
from .base import BarSource, SourceHealth

log = logging.getLogger(__name__)

EXCHANGE_LIST_PATH = "/api/futures/taker-buy-sell-volume/exchange-list"
AGGREGATED_HISTORY_PATH = "/api/futures/aggregated-taker-buy-sell-volume/history"
API_KEY_HEADER = "CG-API-KEY"
MAX_LIMIT_HEADER = "API-KEY-MAX-LIMIT"
QUOTE_SUFFIXES = ("FDUSD", "USDT", "USDC", "BUSD", "USD")
#: Below this a `time` field is in seconds, not milliseconds (one doc sample mixes them).
SECONDS_TIME_LIMIT = 100_000_000_000


@dataclass(frozen=True, slots=True)
class CrossFlow:
    """Rolling cross-exchange taker split for one coin, as fetched at `fetched_s`."""

    coin: str
    buy_ratio: float
    buy_volume_usd: float | None
    sell_volume_usd: float | None
    fetched_s: float


@dataclass(frozen=True, slots=True)
class TakerFlowPoint:
    """One bar of the aggregated taker buy/sell history (USD)."""

    time_ms: int
    buy_volume_usd: float
    sell_volume_usd: float

    @property
    def buy_ratio(self) -> float | None:
        total = self.buy_volume_usd + self.sell_volume_usd
        return self.buy_volume_usd / total if total > 0 else None


def coin_for_symbol(symbol: str) -> str:
    """CoinGlass coin for a Binance futures symbol: BTCUSDT -> BTC."""
    for suffix in QUOTE_SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)]
    return symbol


def response_data(body: Any) -> Any:
    """`data` of a CoinGlass envelope; RequestFailure when `code` is not "0"."""
    if not isinstance(body, dict) or "code" not in body:
        raise SourceError("CoinGlass response is not a {code, msg, data} object")
    code = str(body["code"]).strip()
    if code == "0":
        if "data" not in body:
            raise SourceError("CoinGlass response has code 0 but no data")
        return body["data"]
    message = str(body.get("msg") or "no message")
    kind = _failure_kind_for_code(code, message)
    raise RequestFailure(kind, f"CoinGlass code {code}: {message}")


def _failure_kind_for_code(code: str, message: str) -> FailureKind:
    lowered = message.lower()
    if code in ("401", "403") or "api key" in lowered or "apikey" in lowered:
        return FailureKind.UNAUTHORISED
    if code == "429" or "too many" in lowered or "rate limit" in lowered:
        return FailureKind.RATE_LIMITED
    if code == "408":
        return FailureKind.TIMEOUT
    if code.startswith("5"):
        return FailureKind.SERVER
    return FailureKind.REJECTED


def parse_exchange_list(body: Any, coin: str, fetched_s: float) -> CrossFlow:
    """The cross-exchange split from `.../taker-buy-sell-volume/exchange-list`."""
    data = response_data(body)
    if not isinstance(data, dict):
        raise SourceError(f"CoinGlass exchange list for {coin}: data is not an object")
    answered_for = data.get("symbol")
    if isinstance(answered_for, str) and answered_for.upper() != coin.upper():
        raise SourceError(f"CoinGlass exchange list asked for {coin}, answered {answered_for}")
    buy_usd = _optional_number(data, "buy_vol_usd")
    sell_usd = _optional_number(data, "sell_vol_usd")
    ratio = _buy_share(data, buy_usd, sell_usd)
    if not 0.0 <= ratio <= 1.0:
        raise SourceError(f"CoinGlass exchange list for {coin}: buy ratio {ratio!r} out of range")
    return CrossFlow(coin, ratio, buy_usd, sell_usd, fetched_s)


def _buy_share(data: Mapping[str, Any], buy_usd: float | None, sell_usd: float | None) -> float:
    buy_ratio = _optional_number(data, "buy_ratio")
    if buy_ratio is not None:
        return _as_fraction(buy_ratio, _optional_number(data, "sell_ratio"))
    if buy_usd is not None and sell_usd is not None and buy_usd + sell_usd > 0:
        return buy_usd / (buy_usd + sell_usd)
    raise SourceError("CoinGlass exchange list has neither buy_ratio nor buy/sell volumes")


def _as_fraction(buy_ratio: float, sell_ratio: float | None) -> float:
    """The docs give 51.01 (percent); accept 0.5101 too, using the pair's sum to tell."""
    if sell_ratio is not None and abs(buy_ratio + sell_ratio - 1.0) < 0.05:
        return buy_ratio
    if sell_ratio is not None and abs(buy_ratio + sell_ratio - 100.0) < 5.0:
        return buy_ratio / 100.0
    return buy_ratio / 100.0 if buy_ratio > 1.0 else buy_ratio


def parse_aggregated_history(body: Any) -> list[TakerFlowPoint]:
    """Rows of the aggregated (or pair) taker buy/sell history; numbers or numeric strings."""
    data = response_data(body)
    if not isinstance(data, list):
        raise SourceError("CoinGlass taker history: data is not a list")
    return [_history_point(row, index) for index, row in enumerate(data)]


def _history_point(row: Any, index: int) -> TakerFlowPoint:
    if not isinstance(row, dict):
        raise SourceError(f"CoinGlass taker history row {index} is not an object")
    buy = _first_number(row, ("aggregated_buy_volume_usd", "taker_buy_volume_usd"), index)
    sell = _first_number(row, ("aggregated_sell_volume_usd", "taker_sell_volume_usd"), index)
    time_ms = int(_first_number(row, ("time",), index))
    if time_ms < SECONDS_TIME_LIMIT:
        time_ms *= 1000
    if buy < 0 or sell < 0:
        raise SourceError(f"CoinGlass taker history row {index} has a negative volume")
    return TakerFlowPoint(time_ms, buy, sell)


def _first_number(row: Mapping[str, Any], keys: Iterable[str], index: int) -> float:
    for key in keys:
        value = _optional_number(row, key)
        if value is not None:
            return value
    raise SourceError(f"CoinGlass taker history row {index} lacks {'/'.join(keys)}")


def _optional_number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SourceError(f"CoinGlass field {key} is {type(value).__name__}, not a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise SourceError(f"CoinGlass field {key} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise SourceError(f"CoinGlass field {key} is not finite")
    return number


def requests_per_minute(response: httpx.Response) -> int | None:
    """The key's per-minute allowance from the `API-KEY-MAX-LIMIT` header, when readable."""
    value = response.headers.get(MAX_LIMIT_HEADER)
    try:
        limit = int(str(value).strip())
    except ValueError:
        return None
    return limit if limit > 0 else None


def _is_auth_refusal(failure: RequestFailure) -> bool:
    """401/403, an auth code in the body, or a 400 whose message blames the key or plan."""
    if failure.kind is FailureKind.UNAUTHORISED:
        return True
    lowered = failure.message.lower()
    return failure.kind is FailureKind.REJECTED and ("api key" in lowered or "apikey" in lowered)


class CoinGlassSource:
    """Bars from `bars`, each with CoinGlass's cross-exchange taker buy share attached."""

    def __init__(
        self,
        clock: Clock,
        symbols: Iterable[str],
        api_key: str,
        bars: BarSource,
        client: httpx.AsyncClient | None = None,
        *,
        base_url: str,
        limiter: HostRateLimiter | None = None,
        flow_range: str = "5m",
        fresh_for_s: float = 300.0,
        poll_every_min: int = 1,
        poll_budget_s: float = 20.0,
        request_timeout_s: float = 10.0,
        coins: Mapping[str, str] | None = None,
        name: str = "coinglass",
    ) -> None:
        if not api_key or not api_key.strip():
            raise ValueError(
                "CoinGlass needs an API key: set it in the config or COINGLASS_API_KEY"
            )
        self.name = name
        self.symbols = tuple(bars.symbols)
        flow_symbols = tuple(dict.fromkeys(s.strip().upper() for s in symbols))
        chosen = dict(coins or {})
        self._coins = {s: chosen.get(s, coin_for_symbol(s)) for s in flow_symbols}
        self.flow_range = flow_range
        self.fresh_for_s = fresh_for_s
        self.poll_every_min = max(1, poll_every_min)
        self.poll_budget_s = poll_budget_s
        self._api_key = api_key.strip()
        self._bars = bars
        self._clock = clock
        self._timeout = httpx.Timeout(request_timeout_s, connect=min(request_timeout_s, 5.0))
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._timeout)
        self._base_url = base_url.rstrip("/")
        label = f"coinglass@{urlsplit(base_url).netloc or base_url}"
        self.limiter = limiter if limiter is not None else HostRateLimiter(clock, name=label)
        self._flows: dict[str, CrossFlow] = {}
        self._polled_minute_ms: dict[str, int] = {}
        self._refused: dict[str, str] = {}
        self._unauthorised: str | None = None
        self._minute_ms: int | None = None
        self._closed = False
        self._last_ok_s: float | None = None
        self._last_error: str | None = None
        self._errors = 0
        self._rate_limited = 0

    def __repr__(self) -> str:
        return f"CoinGlassSource({list(self._coins)!r}, url={self._base_url!r}, api_key=***)"

    # -- the bar stream --------------------------------------------------------------------

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        stream = self._bars.bars(resume_after_ms)
        try:
            async for bar in stream:
                if bar.open_ms != self._minute_ms:
                    self._minute_ms = bar.open_ms
                    await self._refresh_flow(bar)
                yield self._with_cross_flow(bar)
        finally:
            close_stream = getattr(stream, "aclose", None)
            if close_stream is not None:
                await close_stream()

    async def _refresh_flow(self, bar: Bar) -> None:
        """Poll the coins due this minute, without holding the bars up for long."""
        now_s = self._clock.now()
        if self._unauthorised is not None or bar.close_s < now_s - self.fresh_for_s:
            return
        deadline_s = now_s + self.poll_budget_s
        for symbol in self._due_symbols(bar.open_ms):
            if self._closed or self._clock.now() >= deadline_s or not self._limiter_ready():
                return
            self._polled_minute_ms[symbol] = bar.open_ms
            await self._poll(symbol)
            if self._unauthorised is not None:
                return

    def _due_symbols(self, minute_ms: int) -> list[str]:
        every_ms = self.poll_every_min * MINUTE_MS
        due = [
            symbol
            for symbol in self._coins
            if symbol not in self._refused
            and minute_ms - self._polled_minute_ms.get(symbol, -every_ms) >= every_ms
        ]
        return sorted(due, key=lambda symbol: self._polled_minute_ms.get(symbol, -1))

    def _limiter_ready(self) -> bool:
        # While CoinGlass backs off or bans us, bars flow on without fresh cross flow.
        wait_s = self.limiter.next_request_s() - self._clock.now()
        return wait_s <= self.limiter.min_interval_s

    async def _poll(self, symbol: str) -> None:
        coin = self._coins[symbol]
        try:
            flow = await fetch_json(
                self._client,
                self.limiter,
                self._base_url + EXCHANGE_LIST_PATH,
                params={"symbol": coin, "range": self.flow_range},
                headers={API_KEY_HEADER: self._api_key},
                parse=lambda response, body: self._parse_flow(response, body, coin),
                timeout=self._timeout,
                secrets=(self._api_key,),
            )
        except RequestFailure as failure:
            self._note_failure(symbol, failure)
            return
        self._last_ok_s = flow.fetched_s
        self._flows[symbol] = flow

    def _parse_flow(self, response: httpx.Response, body: Any, coin: str) -> CrossFlow:
        self._honour_max_limit(response)
        return parse_exchange_list(body, coin, self._clock.now())

    def _honour_max_limit(self, response: httpx.Response) -> None:
        per_minute = requests_per_minute(response)
        if per_minute is not None:
            self.limiter.widen_interval(60.0 / per_minute)

    def _note_failure(self, symbol: str, failure: RequestFailure) -> None:
        message = self._scrubbed(failure.message)
        if failure.kind is FailureKind.RATE_LIMITED:
            self._rate_limited += 1
        else:
            self._errors += 1
        self._last_error = f"{symbol}: {message}"
        if _is_auth_refusal(failure):
            self._unauthorised = f"CoinGlass refused the API key ({message})"
            log.error("%s: %s; not retried until restart", self.name, self._unauthorised)
        elif failure.kind is FailureKind.REJECTED:
            self._refused[symbol] = message
            log.error("%s: %s refused, not retried: %s", self.name, symbol, message)
        else:
            log.warning("%s: %s: %s", self.name, symbol, message)

    def _with_cross_flow(self, bar: Bar) -> Bar:
        flow = self._flows.get(bar.symbol)
        fresh = flow is not None and abs(flow.fetched_s - bar.close_s) <= self.fresh_for_s
        ratio = flow.buy_ratio if fresh and flow is not None else None
        return replace(bar, cross_buy_ratio=ratio)

    def cross_flow(self, symbol: str) -> CrossFlow | None:
        """The latest cross-exchange split fetched for `symbol` (for the whale panel)."""
        return self._flows.get(symbol)

    # -- diagnostics -----------------------------------------------------------------------

    async def aggregated_history(
        self,
        symbol: str,
        interval: str = "4h",
        limit: int = 6,
        exchanges: str = "Binance,OKX,Bybit",
    ) -> list[TakerFlowPoint]:
        """Coarse aggregated taker history for `symbol` (same key gate); RequestFailure on error."""
        params: dict[str, str | int] = {
            "symbol": self._coins.get(symbol, coin_for_symbol(symbol)),
            "interval": interval,
            "limit": limit,
            "exchange_list": exchanges,
            "unit": "usd",
        }
        return await fetch_json(
            self._client,
            self.limiter,
            self._base_url + AGGREGATED_HISTORY_PATH,
            params=params,
            headers={API_KEY_HEADER: self._api_key},
            parse=lambda _response, body: parse_aggregated_history(body),
            timeout=self._timeout,
            secrets=(self._api_key,),
        )

    # -- health ----------------------------------------------------------------------------

    def flow_health(self) -> SourceHealth:
        """CoinGlass alone: is the cross-exchange flow arriving?"""
        now_s = self._clock.now()
        newest_s = max((flow.fetched_s for flow in self._flows.values()), default=None)
        age_s = None if newest_s is None else max(0.0, now_s - newest_s)
        state = self._flow_state()
        parts = [describe_state(state, age_s, self.limiter.paused_until, now_s)]
        if self._refused:
            parts.append("refused: " + ", ".join(f"{s} ({m})" for s, m in self._refused.items()))
        return SourceHealth(
            name=self.name,
            state=state,
            last_ok_s=self._last_ok_s,
            last_error=self._last_error,
            errors=self._errors,
            rate_limited=self._rate_limited,
            next_request_s=None if self._closed else self.limiter.next_request_s(),
            data_age_s=age_s,
            detail=self._scrubbed("; ".join(part for part in parts if part)),
        )

    def _flow_state(self) -> SourceState:
        if self._closed:
            return SourceState.FINISHED
        if self._unauthorised is not None:
            return SourceState.UNAUTHORISED
        if self._coins and len(self._refused) == len(self._coins):
            return SourceState.DEGRADED
        limiter_state = self.limiter.state
        if limiter_state is not SourceState.OK:
            return limiter_state
        return SourceState.OK if self._last_ok_s is not None else SourceState.WARMING

    def health(self) -> SourceHealth:
        """Bars (the driving source) and cross flow together, worst news first."""
        bars = self._bars.health()
        flow = self.flow_health()
        state = bars.state
        if state in (SourceState.OK, SourceState.WARMING) and flow.state not in (
            SourceState.OK,
            SourceState.WARMING,
        ):
            state = flow.state
        errors = [f"{h.name}: {h.last_error}" for h in (flow, bars) if h.last_error]
        return SourceHealth(
            name=self.name,
            state=state,
            last_ok_s=bars.last_ok_s,
            last_error=self._scrubbed("; ".join(errors)) if errors else None,
            errors=bars.errors + flow.errors,
            rate_limited=bars.rate_limited + flow.rate_limited,
            next_request_s=bars.next_request_s,
            data_age_s=bars.data_age_s,
            skipped_rows=bars.skipped_rows,
            detail=self._scrubbed(self._combined_detail(bars, flow)),
        )

    def _combined_detail(self, bars: SourceHealth, flow: SourceHealth) -> str:
        flow_age = "none yet" if flow.data_age_s is None else f"{flow.data_age_s:.0f} s old"
        parts = [
            f"bars ({bars.name}) {bars.state.value}" + (f": {bars.detail}" if bars.detail else ""),
            f"cross flow {flow.state.value}, {flow_age}"
            + (f"; {flow.detail}" if flow.detail else ""),
        ]
        if self._unauthorised is not None:
            parts.append(self._unauthorised)
        return "; ".join(parts)

    def _scrubbed(self, text: str) -> str:
        return scrub(text, (self._api_key,), limit_chars=None)

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_client:
            await self._client.aclose()
        await self._bars.aclose()
