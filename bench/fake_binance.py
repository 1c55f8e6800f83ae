"""An in-process fake of Binance USDⓈ-M `GET /fapi/v1/klines` (and the `exchangeInfo` symbol
list) for the live soak (no network).

`FakeBinance.handle` is an `httpx.MockTransport` handler. It serves the simulator's seeded
series (`simulate_minutes`) as documented kline arrays (12 fields, numbers as strings, the
open minute with partial numbers and a close time in the future) and, with `fault_rate` > 0,
answers a seeded share of requests with a scripted fault instead:

- `429`: HTTP 429 with a Retry-After of 5-30 s;       - `418`: HTTP 418, Retry-After 150 s;
- `500`: HTTP 500/502/503;                             - `timeout`: httpx.ReadTimeout, after
  the request timeout has passed on the clock;         - `malformed`: a JSON body cut short;
- `empty`: `[]`;                                       - `twice`: every row served twice;
- `missing`: one closed bar left out of the rows (it is there on the next request).

Memory stays flat: rows are generated minute by minute and only the last `keep_minutes` are
kept; counters and the minimum request spacing are running figures, not lists.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.sources.sim import SimParams, simulate_minutes

FAULT_KINDS = ("429", "418", "500", "timeout", "malformed", "empty", "twice", "missing")


def kline_row(bar: Bar, *, open_now: bool = False) -> list[Any]:
    """A Binance kline array for `bar`; an open minute shows a third of its final volume."""
    share = 1.0 / 3.0 if open_now else 1.0
    volume, taker = bar.volume * share, bar.taker_buy_volume * share
    return [
        bar.open_ms,
        repr(bar.open),
        repr(bar.high),
        repr(bar.low),
        repr(bar.close),
        repr(volume),
        bar.open_ms + MINUTE_MS - 1,
        repr(volume * bar.close),
        100,
        repr(taker),
        repr(taker * bar.close),
        "0",
    ]


class FakeBinance:
    """Klines for `symbols` from `series_start_ms` on, with a seeded fault schedule."""

    def __init__(
        self,
        clock: SimClock,
        symbols: Sequence[str],
        *,
        seed: int = 7,
        series_start_ms: int,
        fault_rate: float = 0.0,
        latency_s: float = 0.05,
        timeout_s: float = 10.0,
        keep_minutes: int = 3_200,
    ) -> None:
        self.clock = clock
        self.symbols = tuple(symbols)
        self.fault_rate = fault_rate
        self.latency_s = latency_s
        self.timeout_s = timeout_s
        self.keep_minutes = keep_minutes
        self._rng = random.Random(seed * 7919 + 1)
        self._series: Iterator[list[Bar]] = simulate_minutes(
            self.symbols, seed, series_start_ms, SimParams()
        )
        self.series_start_ms = series_start_ms
        self._bars: dict[int, list[Bar]] = {}  # open_ms -> the minute's bars, symbol order
        self._generated_through_ms = series_start_ms - MINUTE_MS
        self.requests = 0
        self.faults: Counter[str] = Counter()
        self.last_request_s: float | None = None
        self.min_spacing_s = math.inf
        self._last_left_out: tuple[str, int] | None = None

    # -- the endpoint ------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        now_s = self.clock.now()
        if self.last_request_s is not None:
            self.min_spacing_s = min(self.min_spacing_s, now_s - self.last_request_s)
        self.last_request_s = now_s
        self.requests += 1
        if request.url.path == "/fapi/v1/exchangeInfo":
            return httpx.Response(200, json=exchange_info(self.symbols))
        if request.url.path != "/fapi/v1/klines":
            return httpx.Response(404, json={"code": -1, "msg": "Not found."})
        params = request.url.params
        symbol = params.get("symbol", "")
        if symbol not in self.symbols or params.get("interval") != "1m":
            return httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."})
        fault = self._draw_fault()
        if fault is not None:
            self.faults[fault] += 1
        if fault == "timeout":
            self.clock.advance(self.timeout_s)
            raise httpx.ReadTimeout("read timed out", request=request)
        if self.latency_s:
            self.clock.advance(self.latency_s)
        if fault == "429":
            retry_after = str(self._rng.randint(5, 30))
            return _error(429, -1003, "Too many requests.", retry_after)
        if fault == "418":
            return _error(418, -1003, "Way too many requests; IP banned.", "150")
        if fault == "500":
            status = self._rng.choice((500, 502, 503))
            return httpx.Response(status, text="<html>Service Unavailable</html>")
        if fault == "malformed":
            return httpx.Response(200, content=b'[[1738486800000, "100.0", ')
        if fault == "empty":
            return httpx.Response(200, json=[])
        limit = int(params.get("limit", "500"))
        if not 1 <= limit <= 1500:
            return httpx.Response(400, json={"code": -1130, "msg": "Invalid limit."})
        start = params.get("startTime")
        rows = self._rows(symbol, None if start is None else int(start), limit)
        if fault == "twice":
            rows = [row for row in rows for _ in (0, 1)]
        elif fault == "missing" and len(rows) >= 3:
            self._leave_one_out(symbol, rows)
        return httpx.Response(200, json=rows)

    def _leave_one_out(self, symbol: str, rows: list[list[Any]]) -> None:
        """Drop a closed bar that has a later one after it, so the hole shows; never the
        same bar twice in a row (an exchange missing a bar on every ask is a real gap)."""
        index = self._rng.randrange(len(rows) - 2)
        if self._last_left_out == (symbol, rows[index][0]):
            index += 1
        self._last_left_out = (symbol, rows[index][0])
        del rows[index]

    def _draw_fault(self) -> str | None:
        if self.fault_rate <= 0 or self._rng.random() >= self.fault_rate:
            return None
        return self._rng.choice(FAULT_KINDS)

    # -- the series --------------------------------------------------------------------

    def _rows(self, symbol: str, start_ms: int | None, limit: int) -> list[list[Any]]:
        now_ms = int(self.clock.now() * 1000)
        open_now_ms = now_ms - now_ms % MINUTE_MS
        self._generate_through(open_now_ms)
        if start_ms is None:
            start_ms = open_now_ms - (limit - 1) * MINUTE_MS
        start_ms += -start_ms % MINUTE_MS
        start_ms = max(start_ms, self.series_start_ms, open_now_ms - self.keep_minutes * MINUTE_MS)
        index = self.symbols.index(symbol)
        rows: list[list[Any]] = []
        minute_ms = start_ms
        while minute_ms <= open_now_ms and len(rows) < limit:
            bar = self._bars[minute_ms][index]
            rows.append(kline_row(bar, open_now=minute_ms == open_now_ms))
            minute_ms += MINUTE_MS
        return rows

    def _generate_through(self, open_ms: int) -> None:
        while self._generated_through_ms < open_ms:
            minute = next(self._series)
            self._generated_through_ms = minute[0].open_ms
            self._bars[self._generated_through_ms] = minute
        oldest_ms = self._generated_through_ms - self.keep_minutes * MINUTE_MS
        while (first_ms := next(iter(self._bars))) < oldest_ms:  # kept in minute order
            del self._bars[first_ms]

    def bar(self, symbol: str, open_ms: int) -> Bar | None:
        """The final bar the fake serves for a minute (None if no longer kept)."""
        minute = self._bars.get(open_ms)
        return None if minute is None else minute[self.symbols.index(symbol)]


def exchange_info(symbols: Sequence[str]) -> dict[str, Any]:
    """`GET /fapi/v1/exchangeInfo`, cut to what the source reads: `symbols` are perpetuals."""
    listed = [{"symbol": s, "contractType": "PERPETUAL", "status": "TRADING"} for s in symbols]
    return {"timezone": "UTC", "rateLimits": [], "symbols": listed}


def _error(status: int, code: int, msg: str, retry_after: str) -> httpx.Response:
    body = {"code": code, "msg": msg}
    return httpx.Response(status, json=body, headers={"Retry-After": retry_after})
