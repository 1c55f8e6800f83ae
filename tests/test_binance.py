"""Binance klines source against a fake fapi server on the simulated clock (no network)."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

import anyio
import httpx
import pytest

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.errors import ConfigError, SourceError
from bigalpha_tui.core.ratelimit import HostRateLimiter
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.binance import EXCHANGE_INFO_PATH, BinanceSource, parse_klines
from bigalpha_tui.core.types import SourceState

#: 09:00:30 UTC: half a minute into a minute, as a live start would be.
T0 = datetime(2026, 2, 2, 9, 0, 30, tzinfo=UTC).timestamp()
MIN_SPACING_S = 2.5

Fault = Callable[[httpx.Request], httpx.Response]


class WatchedClock(SimClock):
    """A manual SimClock that lets a test look at the world before every wait."""

    def __init__(self, start: float) -> None:
        super().__init__(start, speed=None)
        self.before_sleep: list[Callable[[float], None]] = []

    async def sleep_until(self, t: float) -> None:
        for hook in self.before_sleep:
            hook(t)
        await super().sleep_until(t)


def kline_row(symbol: str, open_ms: int, *, open_now: bool = False) -> list[Any]:
    """A row shaped like Binance's: 12 fields, numbers as strings, taker-buy base at 9."""
    k = (open_ms // MINUTE_MS) % 97 + len(symbol)
    open_, close = 100.0 + k, 100.5 + k
    volume = (10.0 + k) / (3.0 if open_now else 1.0)
    taker = volume * 0.4
    return [
        open_ms,
        f"{open_:.2f}",
        f"{close + 0.25:.2f}",
        f"{open_ - 0.25:.2f}",
        f"{close:.2f}",
        f"{volume:.3f}",
        open_ms + MINUTE_MS - 1,
        f"{volume * close:.4f}",
        100 + k,
        f"{taker:.3f}",
        f"{taker * close:.4f}",
        "0",
    ]


def final_volume(symbol: str, open_ms: int) -> float:
    return float(kline_row(symbol, open_ms)[5])


def rate_limited(retry_after: str | None, status: int = 429) -> Fault:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    body = {"code": -1003, "msg": "Too many requests; current limit is 2400 weight per minute."}
    return lambda _request: httpx.Response(status, json=body, headers=headers)


def server_error(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text="<html>Bad Gateway</html>")


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=request)


def malformed_json(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b'[[1738486800000, "100.0", ')


def wrong_shape(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": "not klines"})


def bad_row(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[[1738486800000, "x", "1", "1", "1", "1", 0, "1", 1, "1"]])


def empty_list(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[])


BASE_URL = "https://fapi.binance.com"


#: What the fake exchange lists as trading perpetuals (besides one quarterly and one settling).
LISTED = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")


def exchange_info_body(listed: Iterable[str] = LISTED) -> dict[str, Any]:
    """`GET /fapi/v1/exchangeInfo` as documented, cut to the fields the source reads."""
    symbols: list[dict[str, Any]] = [
        {"symbol": s, "pair": s, "contractType": "PERPETUAL", "status": "TRADING"} for s in listed
    ]
    symbols.append(
        {"symbol": "BTCUSDT_260327", "contractType": "CURRENT_QUARTER", "status": "TRADING"}
    )
    symbols.append({"symbol": "BTCDOMUSDT", "contractType": "PERPETUAL", "status": "SETTLING"})
    return {"timezone": "UTC", "serverTime": 0, "rateLimits": [], "symbols": symbols}


@dataclass
class FakeBinance:
    """`GET /fapi/v1/klines` as Binance serves it, with scripted faults.

    Rows run from `startTime` (or the newest `limit`) through the minute now open, the open
    one with partial numbers and a close time in the future. `withheld[(sym, open_ms)]` is the
    market time a bar becomes available (the server lags: nothing after it either);
    `gaps` never exist. `failing[sym] = (start, end)`: 502 for that symbol only.
    `faults[n]` answers the n-th klines request (1-based); `exchange_info` answers the symbol
    list instead of the listing of LISTED (less `unknown_symbols`);
    `outages` answer every request inside [start, end).
    """

    clock: SimClock
    unknown_symbols: set[str] = field(default_factory=set)
    exchange_info: Fault | None = None
    exchange_info_times: list[float] = field(default_factory=list)
    faults: dict[int, Fault] = field(default_factory=dict)
    outages: list[tuple[float, float, Fault]] = field(default_factory=list)
    withheld: dict[tuple[str, int], float] = field(default_factory=dict)
    gaps: set[tuple[str, int]] = field(default_factory=set)
    failing: dict[str, tuple[float, float]] = field(default_factory=dict)
    overfill: bool = False
    repeat_rows: bool = False
    latency_s: float = 0.0
    request_times: list[float] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == EXCHANGE_INFO_PATH:
            self.exchange_info_times.append(self.clock.now())
            if self.exchange_info is not None:
                return self.exchange_info(request)
            listed = [s for s in LISTED if s not in self.unknown_symbols]
            return httpx.Response(200, json=exchange_info_body(listed))
        self.request_times.append(self.clock.now())
        self.requests.append(request)
        fault = self.faults.get(len(self.requests)) or self._outage_now()
        if fault is not None:
            return fault(request)
        if self.latency_s:
            self.clock.advance(self.latency_s)
        params = request.url.params
        symbol = params["symbol"]
        failing_from_s, failing_until_s = self.failing.get(symbol, (0.0, 0.0))
        if failing_from_s <= self.clock.now() < failing_until_s:
            return server_error(request)
        if symbol in self.unknown_symbols:
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        assert params["interval"] == "1m"
        limit = int(params.get("limit", "500"))
        assert 1 <= limit <= 1500
        return httpx.Response(200, json=self._rows(symbol, params.get("startTime"), limit))

    def _outage_now(self) -> Fault | None:
        now = self.clock.now()
        return next((f for start, end, f in self.outages if start <= now < end), None)

    def _rows(self, symbol: str, start_time: str | None, limit: int) -> list[list[Any]]:
        now_ms = int(self.clock.now() * 1000)
        open_now_ms = now_ms - now_ms % MINUTE_MS
        first_ms = open_now_ms - (limit - 1) * MINUTE_MS if start_time is None else int(start_time)
        first_ms += -first_ms % MINUTE_MS
        rows: list[list[Any]] = []
        if self.repeat_rows:
            rows.append(kline_row(symbol, first_ms - MINUTE_MS))
        minute_ms = first_ms
        while minute_ms <= open_now_ms and len(rows) < limit + (1 if self.overfill else 0):
            if self.withheld.get((symbol, minute_ms), 0.0) > self.clock.now():
                break
            if (symbol, minute_ms) not in self.gaps:
                row = kline_row(symbol, minute_ms, open_now=minute_ms == open_now_ms)
                rows.extend([row, row] if self.repeat_rows else [row])
            minute_ms += MINUTE_MS
        return rows

    def times_for(self, symbol: str) -> list[float]:
        return [
            t
            for t, r in zip(self.request_times, self.requests, strict=True)
            if r.url.params.get("symbol") == symbol
        ]


def make_source(
    clock: SimClock,
    fake: FakeBinance,
    symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT"),
    *,
    seed: int = 1,
    **settings: Any,
) -> BinanceSource:
    client = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    limiter = HostRateLimiter(clock, rng=random.Random(seed), name="fapi.binance.com")
    return BinanceSource(
        clock, symbols, client=client, base_url=BASE_URL, limiter=limiter, **settings
    )


@dataclass
class Emitted:
    bars: list[Bar] = field(default_factory=list)
    at_s: list[float] = field(default_factory=list)
    final_health: SourceHealth | None = None


async def run_until(
    source: BinanceSource | Any,
    clock: SimClock,
    until_s: float,
    resume_after_ms: int | None = None,
    count: int | None = None,
) -> Emitted:
    """Collect bars until market time passes `until_s` or `count` bars came (guard: 20 s)."""
    emitted = Emitted()
    stream = source.bars(resume_after_ms)
    with anyio.fail_after(20):
        async for bar in stream:
            emitted.bars.append(bar)
            emitted.at_s.append(clock.now())
            if clock.now() >= until_s or len(emitted.bars) == count:
                break
    await stream.aclose()
    emitted.final_health = source.health()
    await source.aclose()
    return emitted


def minute(offset_min: int) -> int:
    """Open time (ms) of the minute `offset_min` minutes after the one T0 falls in."""
    start_ms = int(T0 * 1000)
    return start_ms - start_ms % MINUTE_MS + offset_min * MINUTE_MS


def assert_in_order_once(bars: list[Bar]) -> None:
    opens = [b.open_ms for b in bars]
    assert opens == sorted(opens), "bars out of open-time order"
    counts = Counter((b.symbol, b.open_ms) for b in bars)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1]


def assert_closed_when_emitted(emitted: Emitted) -> None:
    for bar, at_s in zip(emitted.bars, emitted.at_s, strict=True):
        assert bar.close_s <= at_s, f"{bar.symbol} {bar.open_ms} emitted while open"
        assert bar.volume == final_volume(bar.symbol, bar.open_ms)


def assert_spacing(times: list[float], min_s: float = MIN_SPACING_S) -> None:
    gaps = [b - a for a, b in pairwise(times)]
    assert not gaps or min(gaps) >= min_s - 1e-9, min(gaps)


def expected(symbols: Iterable[str], first_min: int, last_min: int) -> set[tuple[str, int]]:
    return {(s, minute(m)) for s in symbols for m in range(first_min, last_min + 1)}


def got(bars: list[Bar], last_min: int) -> set[tuple[str, int]]:
    return {(b.symbol, b.open_ms) for b in bars if b.open_ms <= minute(last_min)}


# -- parsing -------------------------------------------------------------------------------


def test_kline_row_parses_with_taker_buy_base_volume_from_field_nine() -> None:
    row = [
        1616338800000,
        "57212.69",
        "57315.00",
        "57196.19",
        "57300.00",
        "496.263",
        1616339099999,
        "28425514.78940",
        7160,
        "273.108",
        "15642623.69718",
        "0",
    ]
    (kline,) = parse_klines("BTCUSDT", [row])
    bar = kline.bar
    assert (bar.open_ms, bar.open, bar.high, bar.low, bar.close) == (
        1616338800000,
        57212.69,
        57315.0,
        57196.19,
        57300.0,
    )
    assert bar.volume == 496.263 and bar.taker_buy_volume == 273.108
    assert kline.close_time_ms == 1616339099999


@pytest.mark.parametrize(
    "body",
    [{"code": -1121}, "klines", [["a"]], [[1, "x", "1", "1", "1", "1", 2, "1", 1, "1"]], [None]],
)
def test_unexpected_klines_shapes_raise_source_error(body: Any) -> None:
    with pytest.raises(SourceError):
        parse_klines("BTCUSDT", body)


# -- backfill ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_start_backfills_the_last_closed_bars_of_every_symbol_in_minute_order() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    source = make_source(clock, fake, backfill_bars=150)
    emitted = await run_until(source, clock, until_s=T0 + 30, count=300)
    bars = emitted.bars
    assert len(bars) == 300
    assert clock.now() < T0 + 10
    assert_in_order_once(bars)
    assert {b.open_ms for b in bars} == {minute(m) for m in range(-150, 0)}
    assert [b.symbol for b in bars[:2]] == ["BTCUSDT", "ETHUSDT"]
    assert all(r.url.params["limit"] == "150" for r in fake.requests[:2])
    assert_spacing(fake.request_times)


@pytest.mark.anyio
async def test_resume_pages_with_start_time_when_the_gap_exceeds_one_request() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    source = make_source(clock, fake, symbols=("BTCUSDT",))
    resume_ms = minute(-4001)
    emitted = await run_until(source, clock, until_s=T0 + 30, resume_after_ms=resume_ms)
    assert_in_order_once(emitted.bars)
    assert got(emitted.bars, -1) == expected(["BTCUSDT"], -4000, -1)
    starts = [int(r.url.params["startTime"]) for r in fake.requests[:3]]
    assert starts == [minute(-4000), minute(-2500), minute(-1000)]
    assert [r.url.params["limit"] for r in fake.requests[:3]] == ["1500", "1500", "1000"]


@pytest.mark.anyio
async def test_bars_at_or_before_resume_are_not_emitted_again() -> None:
    clock = SimClock(T0)
    source = make_source(clock, FakeBinance(clock))
    emitted = await run_until(source, clock, until_s=T0 + 200, resume_after_ms=minute(-3))
    assert min(b.open_ms for b in emitted.bars) == minute(-2)


# -- polling -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_polling_emits_each_new_closed_bar_once_shortly_after_it_closes() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    source = make_source(clock, fake, backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 10 * 60)
    assert got(emitted.bars, 9) == expected(["BTCUSDT", "ETHUSDT"], -2, 9)
    assert_in_order_once(emitted.bars)
    assert_closed_when_emitted(emitted)
    live = [(b, t) for b, t in zip(emitted.bars, emitted.at_s, strict=True) if b.open_ms >= 0]
    assert all(t - b.close_s <= 10.0 for b, t in live if b.open_ms >= minute(0))
    assert_spacing(fake.request_times)


@pytest.mark.anyio
async def test_an_open_kline_in_the_response_is_never_emitted() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, overfill=True, latency_s=0.4)
    source = make_source(clock, fake, backfill_bars=5)
    emitted = await run_until(source, clock, until_s=T0 + 5 * 60)
    assert_closed_when_emitted(emitted)
    assert got(emitted.bars, 3) == expected(["BTCUSDT", "ETHUSDT"], -5, 3)


@pytest.mark.anyio
async def test_a_bar_served_twice_is_emitted_once() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, repeat_rows=True)
    source = make_source(clock, fake, backfill_bars=10)
    emitted = await run_until(source, clock, until_s=T0 + 5 * 60)
    assert_in_order_once(emitted.bars)
    assert got(emitted.bars, 3) == expected(["BTCUSDT", "ETHUSDT"], -10, 3)
    assert source.duplicates_dropped > 0


@pytest.mark.anyio
async def test_a_bar_the_server_is_late_with_is_fetched_when_it_appears() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    late_close_s = minute(3) / 1000 + 60
    fake.withheld[("ETHUSDT", minute(3))] = late_close_s + 25
    source = make_source(clock, fake, backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 8 * 60)
    assert got(emitted.bars, 6) == expected(["BTCUSDT", "ETHUSDT"], -2, 6)
    assert_in_order_once(emitted.bars)
    assert source.missing_bars == 0
    assert_spacing(fake.request_times)


@pytest.mark.anyio
async def test_a_gap_on_the_exchange_is_confirmed_and_the_minute_goes_out_without_it() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    fake.gaps.add(("BTCUSDT", minute(2)))
    source = make_source(clock, fake, backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 6 * 60)
    assert got(emitted.bars, 4) == expected(["BTCUSDT", "ETHUSDT"], -2, 4) - {
        ("BTCUSDT", minute(2))
    }
    assert_in_order_once(emitted.bars)
    assert source.missing_bars == 1
    minute_3 = [
        t for b, t in zip(emitted.bars, emitted.at_s, strict=True) if b.open_ms == minute(3)
    ]
    assert max(minute_3) - (minute(4) / 1000) < 15.0, "the gap held the stream up"


@pytest.mark.anyio
async def test_a_symbol_that_stays_late_holds_the_others_only_for_max_wait() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    fake.withheld[("ETHUSDT", minute(2))] = minute(8) / 1000
    source = make_source(clock, fake, backfill_bars=2, max_wait_s=60.0)
    emitted = await run_until(source, clock, until_s=T0 + 12 * 60)
    assert_in_order_once(emitted.bars)
    btc = [b.open_ms for b in emitted.bars if b.symbol == "BTCUSDT"]
    assert btc == [minute(m) for m in range(-2, len(btc) - 2)]
    at_by_bar = {(b.symbol, b.open_ms): t for b, t in zip(emitted.bars, emitted.at_s, strict=True)}
    assert at_by_bar[("BTCUSDT", minute(2))] - minute(3) / 1000 <= 60.0 + 10.0
    assert source.missing_bars > 0
    assert "bars missing" in source.health().detail
    eth_after = {b.open_ms for b in emitted.bars if b.symbol == "ETHUSDT"}
    assert {minute(m) for m in range(9, 11)} <= eth_after


@pytest.mark.anyio
async def test_a_ban_does_not_use_up_a_late_symbols_wait() -> None:
    """ETHUSDT answers without its newest bar, then the host bans us for 150 s: nobody could
    ask for the bar during the ban, so it is not given up as missing (the 30-day fault soak
    lost 5 bars this way) and arrives once the ban ends."""
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    late_s = minute(3) / 1000
    fake.withheld[("ETHUSDT", minute(2))] = late_s + 30
    fake.outages.append((late_s + 5, late_s + 25, rate_limited("150", status=418)))
    fake.outages.append((late_s + 155, late_s + 158, server_error))  # the first ask after
    source = make_source(clock, fake, backfill_bars=2, max_wait_s=60.0)
    emitted = await run_until(source, clock, until_s=T0 + 10 * 60)
    assert ("ETHUSDT", minute(2)) in {(b.symbol, b.open_ms) for b in emitted.bars}
    assert source.missing_bars == 0
    assert_in_order_once(emitted.bars)
    banned = [t for t in fake.request_times if late_s + 5 <= t < late_s + 25]
    assert banned and min(t for t in fake.request_times if t > banned[0]) >= banned[0] + 150


@pytest.mark.anyio
async def test_a_symbol_that_keeps_failing_is_skipped_after_stall_and_rejoins() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, failing={"ETHUSDT": (T0 + 60, T0 + 20 * 60)})
    source = make_source(clock, fake, backfill_bars=2, stall_s=300.0)
    emitted = await run_until(source, clock, until_s=T0 + 30 * 60)
    assert_in_order_once(emitted.bars)
    assert got(emitted.bars, 28) >= expected(["BTCUSDT"], -2, 28) | expected(["ETHUSDT"], 21, 28)
    at_by_bar = {(b.symbol, b.open_ms): t for b, t in zip(emitted.bars, emitted.at_s, strict=True)}
    for m in range(8, 20):  # after the first stall the stream no longer waits for ETHUSDT
        assert at_by_bar[("BTCUSDT", minute(m))] - minute(m + 1) / 1000 < 15.0
    eth_tries = [t for t in fake.times_for("ETHUSDT") if T0 + 60 <= t < T0 + 20 * 60]
    assert len(eth_tries) < 30, "a failing symbol was hammered"
    assert_spacing(fake.request_times)


# -- faults --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_429_retry_after_seconds_is_honoured_before_the_next_request() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, faults={3: rate_limited("30")})
    source = make_source(clock, fake, backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 4 * 60)
    assert fake.request_times[3] - fake.request_times[2] >= 30.0
    assert source.health().rate_limited == 1
    assert got(emitted.bars, 2) == expected(["BTCUSDT", "ETHUSDT"], -2, 2)


@pytest.mark.anyio
async def test_429_retry_after_http_date_is_honoured() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    fake.faults[3] = lambda request: rate_limited(
        format_datetime(datetime.fromtimestamp(clock.now() + 47, tz=UTC), usegmt=True)
    )(request)
    source = make_source(clock, fake, backfill_bars=2)
    await run_until(source, clock, until_s=T0 + 3 * 60)
    assert fake.request_times[3] - fake.request_times[2] == pytest.approx(47.0, abs=1.0)


@pytest.mark.anyio
async def test_418_ban_shows_banned_and_waits_until_retry_after() -> None:
    clock = WatchedClock(T0)
    fake = FakeBinance(clock, faults={3: rate_limited("600", status=418)})
    source = make_source(clock, fake, backfill_bars=2)
    states: list[SourceState] = []
    clock.before_sleep.append(lambda _t: states.append(source.health().state))
    emitted = await run_until(source, clock, until_s=T0 + 15 * 60)
    assert SourceState.BANNED in states
    assert fake.request_times[3] - fake.request_times[2] >= 600.0
    assert got(emitted.bars, 12) == expected(["BTCUSDT", "ETHUSDT"], -2, 12)
    assert emitted.final_health is not None
    assert emitted.final_health.state is SourceState.OK


@pytest.mark.anyio
async def test_server_errors_timeouts_and_junk_back_off_without_losing_bars(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SimClock(T0)
    faults = [server_error, timeout, malformed_json, wrong_shape, bad_row, empty_list]
    fake = FakeBinance(clock, faults={3 + 2 * i: f for i, f in enumerate(faults)})
    source = make_source(clock, fake, backfill_bars=3)
    with caplog.at_level(logging.WARNING):
        emitted = await run_until(source, clock, until_s=T0 + 10 * 60)
    assert got(emitted.bars, 8) == expected(["BTCUSDT", "ETHUSDT"], -3, 8)
    assert_in_order_once(emitted.bars)
    assert source.health().errors == 5  # the empty list is a lagging answer, not an error
    assert_spacing(fake.request_times)
    assert "malformed" in caplog.text or "not valid JSON" in caplog.text


@pytest.mark.anyio
async def test_a_slow_answer_does_not_break_spacing_or_order() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, latency_s=4.0)
    source = make_source(clock, fake, ("BTCUSDT", "ETHUSDT", "SOLUSDT"), backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 6 * 60)
    assert got(emitted.bars, 4) == expected(["BTCUSDT", "ETHUSDT", "SOLUSDT"], -2, 4)
    assert_closed_when_emitted(emitted)
    assert_spacing(fake.request_times, 4.0)


# -- the exchange's symbol list at start -------------------------------------------------


@pytest.mark.anyio
async def test_a_symbol_the_exchange_does_not_list_stops_the_start_with_the_close_names() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    source = make_source(clock, fake, ("ETHUSDT", "BTCUSD"))
    with pytest.raises(ConfigError) as err:
        await run_until(source, clock, until_s=T0 + 60)
    message = str(err.value)
    assert "\n" not in message
    assert "BTCUSD (did you mean BTCUSDT?)" in message and "ETHUSDT" not in message
    assert fake.requests == []  # no klines asked for a run that cannot start


@pytest.mark.anyio
async def test_a_settling_contract_is_not_a_trading_perpetual() -> None:
    clock = SimClock(T0)
    source = make_source(clock, FakeBinance(clock), ("BTCDOMUSDT", "NOSUCHCOIN"))
    with pytest.raises(ConfigError, match=r"BTCDOMUSDT .*NOSUCHCOIN \(nothing similar is listed\)"):
        await run_until(source, clock, until_s=T0 + 60)


@pytest.mark.anyio
async def test_the_symbol_list_is_asked_once_through_the_hosts_limiter() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock)
    source = make_source(clock, fake, ("BTCUSDT", "ETHUSDT"), backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 3 * 60)
    assert got(emitted.bars, 1) == expected(["BTCUSDT", "ETHUSDT"], -2, 1)
    assert len(fake.exchange_info_times) == 1
    assert_spacing(fake.exchange_info_times + fake.request_times)


def refused_connection(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.anyio
@pytest.mark.parametrize("answer", [refused_connection, server_error, wrong_shape])
async def test_a_symbol_list_that_cannot_be_had_is_said_once_and_bars_still_flow(
    caplog: pytest.LogCaptureFixture, answer: Fault
) -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, exchange_info=answer)
    source = make_source(clock, fake, ("BTCUSDT",), backfill_bars=2)
    with caplog.at_level(logging.WARNING):
        emitted = await run_until(source, clock, until_s=T0 + 3 * 60)
    assert got(emitted.bars, 1) == expected(["BTCUSDT"], -2, 1)
    said = [r for r in caplog.records if "symbol list" in r.getMessage()]
    assert len(said) == 1 and "going on without checking" in said[0].getMessage()
    assert len(fake.exchange_info_times) == 1


@pytest.mark.anyio
async def test_a_bad_symbol_is_reported_once_and_the_others_keep_flowing() -> None:
    clock = SimClock(T0)
    # the symbol list could not be fetched at start: the klines answer refuses the name
    fake = FakeBinance(clock, unknown_symbols={"NOPEUSDT"}, exchange_info=server_error)
    source = make_source(clock, fake, ("BTCUSDT", "NOPEUSDT"), backfill_bars=2)
    emitted = await run_until(source, clock, until_s=T0 + 4 * 60)
    assert got(emitted.bars, 2) == expected(["BTCUSDT"], -2, 2)
    assert len(fake.times_for("NOPEUSDT")) == 1
    health = source.health()
    assert health.last_error is not None
    assert "NOPEUSDT" in health.last_error and "Invalid symbol" in health.last_error
    assert "NOPEUSDT" in health.detail


@pytest.mark.anyio
async def test_when_no_symbol_can_be_fetched_bars_raise_a_clear_source_error() -> None:
    clock = SimClock(T0)
    # the symbol list could not be fetched at start: the klines answer refuses the name
    fake = FakeBinance(clock, unknown_symbols={"NOPEUSDT"}, exchange_info=server_error)
    source = make_source(clock, fake, ("NOPEUSDT",))
    with pytest.raises(SourceError, match=r"NOPEUSDT.*Invalid symbol"):
        await run_until(source, clock, until_s=T0 + 60)


@pytest.mark.anyio
async def test_401_is_reported_unauthorised_and_not_retried() -> None:
    clock = SimClock(T0)
    fake = FakeBinance(clock, outages=[(0.0, 1e12, lambda _r: httpx.Response(401))])
    source = make_source(clock, fake)
    with pytest.raises(SourceError):
        await run_until(source, clock, until_s=T0 + 60)
    assert len(fake.requests) == 1
    assert source.health().state in (SourceState.UNAUTHORISED, SourceState.FINISHED)


@pytest.mark.anyio
async def test_breaker_opens_in_a_long_outage_probes_slowly_and_recovers_every_bar() -> None:
    clock = WatchedClock(T0)
    outage = (T0 + 60, T0 + 20 * 60, server_error)
    fake = FakeBinance(clock, outages=[outage])
    source = make_source(clock, fake, backfill_bars=2)
    details: list[str] = []

    def watch(_t: float) -> None:
        health = source.health()
        if health.state is SourceState.DEGRADED:
            details.append(health.detail)

    clock.before_sleep.append(watch)
    emitted = await run_until(source, clock, until_s=T0 + 26 * 60)
    assert details and details[-1].startswith("degraded, data ")
    assert any("min old" in d and not d.startswith("degraded, data 0 min") for d in details)
    in_outage = [t for t in fake.request_times if outage[0] <= t < outage[1]]
    late_probes = [b - a for a, b in pairwise(in_outage[8:])]
    assert late_probes and min(late_probes) >= source.limiter.probe_interval_s - 1e-6
    assert got(emitted.bars, 24) == expected(["BTCUSDT", "ETHUSDT"], -2, 24)
    assert_in_order_once(emitted.bars)
    assert emitted.final_health is not None
    assert emitted.final_health.state is SourceState.OK


@pytest.mark.anyio
async def test_an_unreachable_host_shows_backing_off_then_degraded_never_warming_again() -> None:
    """No network at start: after the first failure the operator sees the back-off, then the
    breaker's degraded state, not a flicker back to "warming" between retries."""
    clock = WatchedClock(T0)

    seen: list[SourceState] = []

    def watch(_t: float) -> None:
        state = source.health().state
        if not seen or seen[-1] is not state:
            seen.append(state)

    def refused(request: httpx.Request) -> httpx.Response:
        watch(clock.now())  # what a health poll sees while a retry is in flight
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeBinance(clock, outages=[(0.0, 1e12, refused)])
    source = make_source(clock, fake)
    clock.before_sleep.append(watch)
    with anyio.move_on_after(2):
        await run_until(source, clock, until_s=T0 + 10 * 60)
    assert seen[0] in (SourceState.WARMING, SourceState.BACKING_OFF)
    assert SourceState.WARMING not in seen[1:], seen
    assert seen[-1] is SourceState.DEGRADED, seen


# -- an hour -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_hour_of_market_time_with_faults_delivers_every_minute_exactly_once() -> None:
    clock = SimClock(T0)
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    scripted: dict[int, Fault] = {
        5: rate_limited("20"),
        9: server_error,
        10: timeout,
        14: malformed_json,
        20: empty_list,
        25: rate_limited(None),
        31: wrong_shape,
        40: rate_limited("150", status=418),
        55: server_error,
        61: timeout,
    }
    fake = FakeBinance(clock, faults=scripted, repeat_rows=True, overfill=True, latency_s=0.3)
    fake.withheld[("SOLUSDT", minute(30))] = minute(31) / 1000 + 30
    fake.outages.append((T0 + 40 * 60, T0 + 44 * 60, server_error))
    source = make_source(clock, fake, symbols, backfill_bars=30)
    emitted = await run_until(source, clock, until_s=T0 + 61 * 60)
    assert got(emitted.bars, 59) == expected(symbols, -30, 59)
    assert_in_order_once(emitted.bars)
    assert_closed_when_emitted(emitted)
    assert_spacing(fake.request_times)
    assert source.missing_bars == 0
    health = source.health()
    assert health.rate_limited == 2 and health.errors >= 7
    json.dumps(health.__class__.__name__)  # health is plain data
