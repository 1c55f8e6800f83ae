"""Binance USDⓈ-M futures 1-minute bars from the public REST klines endpoint (no key).

At start the source checks `symbols` against the exchange's list of trading perpetuals
(`GET /fapi/v1/exchangeInfo`): a name the exchange does not list stops start-up with one line
that says which listed names are close. When the list cannot be fetched the run goes on
without the check (said once): a bad name is then refused on its own first klines request.

Then the source back-fills the last `backfill_bars` closed bars per symbol (or every bar
since `resume_after_ms`, paging with `startTime`), then polls shortly after each minute closes.
A kline whose close time is not yet past is still open and is never emitted. Bars are emitted
minute by minute, all symbols of a minute together, in open-time order: a minute goes out when
every symbol has it, or when one symbol is late while the others have moved on (after
`max_wait_s` for a symbol that answers without it, `stall_s` for one that keeps failing). Gaps
left by failed polls are fetched again from the exchange's history; duplicates are dropped.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..bar import MINUTE_MS, Bar
from ..clock import Clock
from ..errors import ConfigError, SourceError
from ..ratelimit import (
    FailureKind,
    HostRateLimiter,
    PauseReason,
    RequestFailure,
    describe_state,
    fetch_json,
)
from ..types import SourceState
from .base import SourceHealth

log = logging.getLogger(__name__)

KLINES_PATH = "/fapi/v1/klines"
EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
#: Binance caps a klines request at 1500 rows.
MAX_KLINES_PER_REQUEST = 1500
#: Fields used from each kline row: 0 open time … 6 close time … 9 taker-buy base volume.
KLINE_MIN_FIELDS = 10


@dataclass(frozen=True, slots=True)
class Kline:
    """One parsed kline row: the bar, and the exchange's close time (open + 59 999 ms)."""

    bar: Bar
    close_time_ms: int

    def is_closed(self, now_ms: int) -> bool:
        return self.close_time_ms < now_ms and self.bar.close_ms <= now_ms


def parse_klines(symbol: str, body: Any) -> list[Kline]:
    """Rows of `GET /fapi/v1/klines` (arrays of numbers-as-strings); SourceError otherwise."""
    if not isinstance(body, list):
        raise SourceError(f"{symbol}: klines response is a {type(body).__name__}, not a list")
    return [_parse_kline_row(symbol, row, index) for index, row in enumerate(body)]


def _parse_kline_row(symbol: str, row: Any, index: int) -> Kline:
    if not isinstance(row, list) or len(row) < KLINE_MIN_FIELDS:
        raise SourceError(f"{symbol}: kline row {index} is not the 12-field kline array")
    try:
        open_ms = _as_int(row[0])
        open_, high, low, close, volume = (_as_float(value) for value in row[1:6])
        close_time_ms = _as_int(row[6])
        taker_buy_volume = _as_float(row[9])
    except (TypeError, ValueError, OverflowError) as exc:
        raise SourceError(f"{symbol}: kline row {index}: {exc}") from None
    bar = Bar(symbol, open_ms, open_, high, low, close, volume, taker_buy_volume)
    return Kline(bar, close_time_ms)


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"expected an integer time, got {value!r}")
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def parse_trading_perpetuals(body: Any) -> frozenset[str]:
    """Symbols of `GET /fapi/v1/exchangeInfo` with status TRADING and contract PERPETUAL."""
    listed = body.get("symbols") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise SourceError("exchangeInfo response has no list of symbols")
    return frozenset(
        entry["symbol"]
        for entry in listed
        if isinstance(entry, dict)
        and isinstance(entry.get("symbol"), str)
        and entry.get("status") == "TRADING"
        and entry.get("contractType") == "PERPETUAL"
    )


def refuse_unlisted_symbols(symbols: Iterable[str], listed: frozenset[str]) -> None:
    """ConfigError naming every symbol the exchange does not trade, with the close names."""
    unknown = [symbol for symbol in symbols if symbol not in listed]
    if not unknown:
        return
    hints = []
    for symbol in unknown:
        close = similar_symbols(symbol, listed)
        hint = "did you mean " + " or ".join(close) + "?" if close else "nothing similar is listed"
        hints.append(f"{symbol} ({hint})")
    raise ConfigError(
        "source.symbols: Binance USD-M futures has no trading perpetual " + ", ".join(hints)
    )


def similar_symbols(symbol: str, listed: frozenset[str], most: int = 3) -> list[str]:
    """Listed names one slip away (BTCUSD -> BTCUSDT), then ones it begins (BTC -> BTCUSDT)."""
    ordered = sorted(listed)
    close = difflib.get_close_matches(symbol, ordered, n=most, cutoff=0.75)
    close += [name for name in ordered if name.startswith(symbol) and name not in close]
    return close[:most]


def floor_minute_ms(t_ms: int) -> int:
    return t_ms - t_ms % MINUTE_MS


def newest_closed_open_ms(now_ms: int) -> int:
    """Open time of the newest bar that has closed by `now_ms`."""
    return floor_minute_ms(now_ms) - MINUTE_MS


@dataclass(eq=False)
class _SymbolFeed:
    """What one symbol has fetched: every minute up to `settled_through_ms` is known."""

    settled_through_ms: int
    pending: dict[int, Bar | None] = field(default_factory=dict)
    suspect_gap_ms: int | None = None
    last_ok_s: float | None = None
    rejected: str | None = None
    #: Since when the other symbols have been waiting on this one (None: not holding up).
    holding_up_since_s: float | None = None
    failures_in_row: int = 0
    retry_at_s: float = 0.0


#: host pauses during which a late symbol's wait does not run (no request could go out)
HOST_HELD = frozenset({PauseReason.RATE_LIMITED, PauseReason.BANNED})


class BinanceSource:
    """Closed 1-minute bars for `symbols` from `GET /fapi/v1/klines` (see module docstring)."""

    def __init__(
        self,
        clock: Clock,
        symbols: Iterable[str],
        client: httpx.AsyncClient | None = None,
        *,
        base_url: str,
        limiter: HostRateLimiter | None = None,
        backfill_bars: int = 150,
        poll_delay_s: float = 2.0,
        lag_retry_s: float = 5.0,
        max_wait_s: float = 60.0,
        stall_s: float = 600.0,
        max_catchup_bars: int = 10_080,
        request_timeout_s: float = 10.0,
        name: str = "binance",
    ) -> None:
        self.name = name
        self.symbols = _normalised_symbols(symbols)
        if backfill_bars < 0 or max_catchup_bars < 1:
            raise ValueError("backfill_bars must be >= 0 and max_catchup_bars >= 1")
        self.backfill_bars = backfill_bars
        self.poll_delay_s = poll_delay_s
        self.lag_retry_s = lag_retry_s
        self.max_wait_s = max_wait_s
        self.stall_s = stall_s
        self.max_catchup_bars = max_catchup_bars
        self._clock = clock
        self._timeout = httpx.Timeout(request_timeout_s, connect=min(request_timeout_s, 5.0))
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._timeout)
        self._klines_url = base_url.rstrip("/") + KLINES_PATH
        self._exchange_info_url = base_url.rstrip("/") + EXCHANGE_INFO_PATH
        host = urlsplit(base_url).netloc or base_url
        self.limiter = limiter if limiter is not None else HostRateLimiter(clock, name=host)
        self._feeds: dict[str, _SymbolFeed] = {}
        self._emitted_through_ms: int | None = None
        self._last_emitted_close_s: float | None = None
        self._made_progress = False
        self._next_round_s: float | None = None
        self._closed = False
        self._unauthorised: str | None = None
        self._last_ok_s: float | None = None
        self._last_error: str | None = None
        self._errors = 0
        self._rate_limited = 0
        self._skipped_rows = 0
        self.duplicates_dropped = 0
        self.missing_bars = 0

    def __repr__(self) -> str:
        return f"BinanceSource({list(self.symbols)!r}, url={self._klines_url!r})"

    # -- the bar stream --------------------------------------------------------------------

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        """Closed bars in open-time order, forever (until `aclose`).

        Raises ConfigError when the exchange lists no trading perpetual of a symbol, and
        SourceError when no symbol can be fetched at all (every one refused).
        """
        await self._check_symbols()
        self._begin(resume_after_ms)
        while not self._closed:
            await self._poll_round()
            for bar in self._ready_bars():
                self._last_emitted_close_s = bar.close_s
                yield bar
            self._raise_if_nothing_to_fetch()
            self._next_round_s = self._next_round_at_s()
            await self._clock.sleep_until(self._next_round_s)

    async def _check_symbols(self) -> None:
        """One request (weight 1) through the host's limiter; an exchange that cannot be
        asked must not keep the run from starting."""
        try:
            listed = await fetch_json(
                self._client,
                self.limiter,
                self._exchange_info_url,
                params={},
                parse=lambda _response, body: parse_trading_perpetuals(body),
                timeout=self._timeout,
            )
        except RequestFailure as failure:
            self._errors += 1
            self._last_error = f"symbol list: {failure.message}"
            log.warning(
                "%s: could not fetch the exchange's symbol list (%s); going on without checking"
                " the symbols (a name the exchange does not know is refused on its first"
                " request)",
                self.name,
                failure.message,
            )
            return
        refuse_unlisted_symbols(self.symbols, listed)

    def _begin(self, resume_after_ms: int | None) -> None:
        newest_ms = newest_closed_open_ms(self._now_ms())
        if resume_after_ms is None:
            first_ms = newest_ms - (self.backfill_bars - 1) * MINUTE_MS
        else:
            first_ms = floor_minute_ms(resume_after_ms) + MINUTE_MS
        oldest_ms = newest_ms - (self.max_catchup_bars - 1) * MINUTE_MS
        if first_ms < oldest_ms:
            log.warning(
                "%s: last bar seen is older than %d bars; catching up from %s only",
                self.name,
                self.max_catchup_bars,
                _utc_label(oldest_ms),
            )
            first_ms = oldest_ms
        self._feeds = {symbol: _SymbolFeed(first_ms - MINUTE_MS) for symbol in self.symbols}
        self._emitted_through_ms = first_ms - MINUTE_MS

    async def _poll_round(self) -> None:
        self._made_progress = False
        for symbol, feed in self._feeds.items():
            if self._closed or feed.rejected is not None:
                continue
            if self._clock.now() < feed.retry_at_s:
                continue  # this symbol failed lately; the others need not wait for it
            start_ms = feed.settled_through_ms + MINUTE_MS
            newest_ms = newest_closed_open_ms(self._now_ms())
            if start_ms <= newest_ms:
                await self._fetch(symbol, feed, start_ms, newest_ms)

    async def _fetch(self, symbol: str, feed: _SymbolFeed, start_ms: int, newest_ms: int) -> None:
        limit = min(MAX_KLINES_PER_REQUEST, (newest_ms - start_ms) // MINUTE_MS + 1)
        params: dict[str, str | int] = {
            "symbol": symbol,
            "interval": "1m",
            "startTime": start_ms,
            "limit": limit,
        }
        try:
            klines = await fetch_json(
                self._client,
                self.limiter,
                self._klines_url,
                params=params,
                parse=lambda _response, body: parse_klines(symbol, body),
                timeout=self._timeout,
            )
        except RequestFailure as failure:
            self._note_failure(symbol, failure)
            self._delay_retry(feed)
            return
        now_s = self._clock.now()
        self._last_ok_s = feed.last_ok_s = now_s
        feed.failures_in_row = 0
        feed.retry_at_s = 0.0
        self._take(symbol, feed, start_ms, klines)

    def _take(self, symbol: str, feed: _SymbolFeed, start_ms: int, klines: list[Kline]) -> None:
        now_ms = self._now_ms()
        newest_ms: int | None = None
        for kline in klines:
            if not kline.is_closed(now_ms):
                continue  # the open minute: its numbers are still moving
            bar = kline.bar
            if bar.open_ms < start_ms:
                self.duplicates_dropped += 1
                continue
            newest_ms = bar.open_ms if newest_ms is None else max(newest_ms, bar.open_ms)
            if bar.open_ms in feed.pending:
                self.duplicates_dropped += 1
                continue
            feed.pending[bar.open_ms] = self._checked(bar)
            self._made_progress = True
        if newest_ms is None:
            return
        settled_before_ms = feed.settled_through_ms
        self._settle(symbol, feed, newest_ms)
        if feed.settled_through_ms > settled_before_ms:
            self._made_progress = True
            feed.holding_up_since_s = None

    def _checked(self, bar: Bar) -> Bar | None:
        problem = bar.problem()
        if problem is None and bar.open_ms % MINUTE_MS:
            problem = "open time not on a minute"
        if problem is None:
            return bar
        self._skipped_rows += 1
        log.warning(
            "%s: %s %s dropped: %s", self.name, bar.symbol, _utc_label(bar.open_ms), problem
        )
        return None

    def _settle(self, symbol: str, feed: _SymbolFeed, newest_ms: int) -> None:
        """Advance the symbol's known-through mark over what arrived, stopping at a hole.

        A hole seen twice (the exchange answered past it both times) is a real gap.
        """
        minute_ms = feed.settled_through_ms + MINUTE_MS
        while minute_ms <= newest_ms:
            if minute_ms not in feed.pending:
                if feed.suspect_gap_ms != minute_ms:
                    feed.suspect_gap_ms = minute_ms
                    return
                self.missing_bars += 1
                log.warning("%s: %s has no %s bar", self.name, symbol, _utc_label(minute_ms))
                feed.pending[minute_ms] = None
            feed.settled_through_ms = minute_ms
            minute_ms += MINUTE_MS

    def _delay_retry(self, feed: _SymbolFeed) -> None:
        """Per-symbol back-off on top of the host's: a symbol that keeps failing while the
        others answer is asked less and less often (up to once a minute)."""
        feed.failures_in_row += 1
        delay_s = min(self.lag_retry_s * 2.0 ** min(feed.failures_in_row - 1, 10), 60.0)
        feed.retry_at_s = self._clock.now() + delay_s

    def _note_failure(self, symbol: str, failure: RequestFailure) -> None:
        if failure.kind is FailureKind.RATE_LIMITED:
            self._rate_limited += 1
        else:
            self._errors += 1
        self._last_error = f"{symbol}: {failure.message}"
        if failure.kind is FailureKind.UNAUTHORISED:
            self._refuse_all(f"Binance refused access ({failure.message})")
        elif failure.kind is FailureKind.REJECTED:
            self._feeds[symbol].rejected = failure.message
            log.error("%s: %s refused, not retried: %s", self.name, symbol, failure.message)
        else:
            log.warning("%s: %s: %s", self.name, symbol, failure.message)

    def _refuse_all(self, reason: str) -> None:
        self._unauthorised = reason
        for feed in self._feeds.values():
            feed.rejected = feed.rejected or reason
        log.error("%s: %s; not retried", self.name, reason)

    # -- emitting in minute order ----------------------------------------------------------

    def _ready_bars(self) -> list[Bar]:
        ready: list[Bar] = []
        assert self._emitted_through_ms is not None
        newest_ms = newest_closed_open_ms(self._now_ms())
        while self._emitted_through_ms + MINUTE_MS <= newest_ms:
            minute_ms = self._emitted_through_ms + MINUTE_MS
            if not self._minute_settled(minute_ms):
                break
            for feed in self._feeds.values():
                bar = feed.pending.pop(minute_ms, None)
                if bar is not None:
                    ready.append(bar)
            self._emitted_through_ms = minute_ms
        return ready

    def _minute_settled(self, minute_ms: int) -> bool:
        live = [feed for feed in self._feeds.values() if feed.rejected is None]
        behind = [feed for feed in live if feed.settled_through_ms < minute_ms]
        if not behind:
            return bool(live)
        if len(behind) == len(live):
            return False  # nobody has it: the host is slow or down, keep waiting
        now_s = self._clock.now()
        if now_s < self.limiter.paused_until and self.limiter.pause_reason in HOST_HELD:
            # the host told us to wait (429 / 418): nobody could ask for the late bar, so
            # the wait for it starts again once requests go out
            for feed in behind:
                feed.holding_up_since_s = None
            return False
        for feed in behind:
            if feed.holding_up_since_s is None:
                feed.holding_up_since_s = now_s
        if any(now_s < self._give_up_at_s(feed) for feed in behind):
            return False
        for symbol, feed in self._feeds.items():
            if feed.rejected is None and feed.settled_through_ms < minute_ms:
                self._give_up_minute(symbol, feed, minute_ms)
        return True

    def _give_up_at_s(self, feed: _SymbolFeed) -> float:
        """When the others stop waiting for a symbol: soon if it answers without the bar,
        later if it keeps failing. Stays due until the symbol delivers again, so one stuck
        symbol cannot make the stream fall further behind minute after minute."""
        since_s = feed.holding_up_since_s
        assert since_s is not None
        answered_since = feed.last_ok_s is not None and feed.last_ok_s >= since_s
        return since_s + (self.max_wait_s if answered_since else self.stall_s)

    def _give_up_minute(self, symbol: str, feed: _SymbolFeed, minute_ms: int) -> None:
        self.missing_bars += 1
        log.warning(
            "%s: %s %s bar still missing; the minute goes out without it",
            self.name,
            symbol,
            _utc_label(minute_ms),
        )
        feed.settled_through_ms = minute_ms
        if feed.suspect_gap_ms is not None and feed.suspect_gap_ms <= minute_ms:
            feed.suspect_gap_ms = None
        newest_pending_ms = max(feed.pending, default=minute_ms)
        self._settle(symbol, feed, newest_pending_ms)

    def _raise_if_nothing_to_fetch(self) -> None:
        if self._feeds and all(feed.rejected is not None for feed in self._feeds.values()):
            reasons = "; ".join(f"{s}: {f.rejected}" for s, f in self._feeds.items())
            raise SourceError(f"{self.name}: no symbol can be fetched ({reasons})")

    def _next_round_at_s(self) -> float:
        now_s = self._clock.now()
        newest_ms = newest_closed_open_ms(self._now_ms())
        next_poll_s = (newest_ms + 2 * MINUTE_MS) / 1000.0 + self.poll_delay_s
        behind = [
            feed
            for feed in self._feeds.values()
            if feed.rejected is None and feed.settled_through_ms < newest_ms
        ]
        if not behind:
            return next_poll_s
        soonest_s = now_s if self._made_progress else now_s + self.lag_retry_s
        retry_s = min(feed.retry_at_s for feed in behind)
        return min(max(soonest_s, retry_s), next_poll_s)

    # -- health ----------------------------------------------------------------------------

    def health(self) -> SourceHealth:
        now_s = self._clock.now()
        age_s = None
        if self._last_emitted_close_s is not None:
            age_s = max(0.0, now_s - self._last_emitted_close_s)
        state = self._state()
        next_request_s = self.limiter.next_request_s()
        if self._next_round_s is not None:
            next_request_s = max(next_request_s, self._next_round_s)
        return SourceHealth(
            name=self.name,
            state=state,
            last_ok_s=self._last_ok_s,
            last_error=self._last_error,
            errors=self._errors,
            rate_limited=self._rate_limited,
            next_request_s=None if self._closed else next_request_s,
            data_age_s=age_s,
            skipped_rows=self._skipped_rows,
            detail=self._detail(state, age_s),
        )

    def _state(self) -> SourceState:
        if self._closed:
            return SourceState.FINISHED
        if self._unauthorised is not None:
            return SourceState.UNAUTHORISED
        if self._feeds and all(feed.rejected is not None for feed in self._feeds.values()):
            return SourceState.DEGRADED
        limiter_state = self.limiter.state
        if limiter_state is not SourceState.OK:
            return limiter_state
        if self.limiter.consecutive_failures:
            return SourceState.BACKING_OFF  # between retries of a failing host too
        return SourceState.OK if self._last_ok_s is not None else SourceState.WARMING

    def _detail(self, state: SourceState, age_s: float | None) -> str:
        parts = [describe_state(state, age_s, self.limiter.paused_until, self._clock.now())]
        refused = [f"{s} ({f.rejected})" for s, f in self._feeds.items() if f.rejected]
        if refused and self._unauthorised is None:
            parts.append("refused: " + ", ".join(refused))
        if self.missing_bars:
            parts.append(f"{self.missing_bars} bars missing")
        return "; ".join(part for part in parts if part)

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_client:
            await self._client.aclose()

    def _now_ms(self) -> int:
        return int(self._clock.now() * 1000)


def _normalised_symbols(symbols: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(symbol.strip().upper() for symbol in symbols))
    if not cleaned or any(not symbol.isalnum() for symbol in cleaned):
        raise ValueError(f"symbols must be non-empty names like BTCUSDT, got {cleaned!r}")
    return cleaned


def _utc_label(t_ms: int) -> str:
    try:
        return datetime.fromtimestamp(t_ms / 1000.0, tz=UTC).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return f"{t_ms} ms"
