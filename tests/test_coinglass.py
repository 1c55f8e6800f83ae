"""CoinGlass cross-exchange taker flow on top of Binance bars, against fake servers."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.errors import SourceError
from bigalpha_tui.core.ratelimit import HostRateLimiter, RateLimiterRegistry, RequestFailure
from bigalpha_tui.core.sources.binance import parse_klines
from bigalpha_tui.core.sources.coinglass import (
    AGGREGATED_HISTORY_PATH,
    EXCHANGE_LIST_PATH,
    CoinGlassSource,
    coin_for_symbol,
    parse_aggregated_history,
    parse_exchange_list,
)
from bigalpha_tui.core.types import SourceState

try:
    from test_binance import (
        T0,
        Emitted,
        FakeBinance,
        Fault,
        WatchedClock,
        assert_closed_when_emitted,
        assert_in_order_once,
        assert_spacing,
        expected,
        got,
        make_source,
        minute,
        run_until,
        server_error,
        timeout,
    )
except ImportError:  # tests/ collected as a package
    from .test_binance import (  # type: ignore[no-redef]
        T0,
        Emitted,
        FakeBinance,
        Fault,
        WatchedClock,
        assert_closed_when_emitted,
        assert_in_order_once,
        assert_spacing,
        expected,
        got,
        make_source,
        minute,
        run_until,
        server_error,
        timeout,
    )

COINGLASS_URL = "https://open-api-v4.coinglass.com"
API_KEY = "cg-test-key-5f0c1a9e77d24b0b"
COINGLASS_DOCS = Path("/work/shared/data/coinglass")
EXCHANGE_LIST_DOC = "Futures_Long-Short-Ratio_taker-buysell-volume-exchange-list.md"

#: The documented exchange-list response (the doc page's sample, comments removed).
EXCHANGE_LIST_SAMPLE: dict[str, Any] = {
    "code": "0",
    "msg": "success",
    "data": {
        "symbol": "BTC",
        "buy_ratio": 51.01,
        "sell_ratio": 48.99,
        "buy_vol_usd": 1112108532.1688,
        "sell_vol_usd": 1068220541.0417,
        "exchange_list": [
            {
                "exchange": "Binance",
                "buy_ratio": 49.22,
                "sell_ratio": 50.78,
                "buy_vol_usd": 240077939.5811,
                "sell_vol_usd": 247674925.1653,
            },
            {
                "exchange": "OKX",
                "buy_ratio": 50.84,
                "sell_ratio": 49.16,
                "buy_vol_usd": 108435724.6214,
                "sell_vol_usd": 104834502.5904,
            },
        ],
    },
}


def doc_sample(folder: Path, name: str) -> Any:
    """The JSON sample of a CoinGlass doc page, with its `//` comments and trailing commas
    removed; the truncated pair sample gets its missing `]` back."""
    text = (folder / name).read_text(encoding="utf-8")
    block = text.split("```json", 1)[1].split("```", 1)[0]
    block = re.sub(r"//[^\n]*", "", block)
    block = re.sub(r",(\s*[}\]])", r"\1", block)
    try:
        return json.loads(block)
    except json.JSONDecodeError:
        repaired = block.rstrip()[:-1].rstrip() + "]}"
        return json.loads(repaired)


def ok_body(coin: str, buy_pct: float) -> dict[str, Any]:
    body = copy.deepcopy(EXCHANGE_LIST_SAMPLE)
    body["data"].update(symbol=coin, buy_ratio=buy_pct, sell_ratio=round(100 - buy_pct, 2))
    return body


@dataclass
class FakeCoinGlass:
    """CoinGlass v4 as documented: `CG-API-KEY` header, body `code` "0" = success.

    A wrong key gets HTTP 401 whose message echoes the key (to prove it is scrubbed).
    """

    clock: SimClock
    api_key: str = API_KEY
    buy_pct: dict[str, float] = field(default_factory=dict)
    unsupported: set[str] = field(default_factory=set)
    faults: dict[int, Fault] = field(default_factory=dict)
    outages: list[tuple[float, float, Fault]] = field(default_factory=list)
    max_limit: str | None = "30"
    request_times: list[float] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.request_times.append(self.clock.now())
        self.requests.append(request)
        fault = self.faults.get(len(self.requests)) or self._outage_now()
        if fault is not None:
            return fault(request)
        key = request.headers.get("CG-API-KEY")
        if key != self.api_key:
            return httpx.Response(401, json={"code": "401", "msg": f"API key {key} is invalid"})
        headers = {"API-KEY-USE-LIMIT": str(len(self.requests))}
        if self.max_limit is not None:
            headers["API-KEY-MAX-LIMIT"] = self.max_limit
        return httpx.Response(200, json=self._body(request), headers=headers)

    def _outage_now(self) -> Fault | None:
        now = self.clock.now()
        return next((f for start, end, f in self.outages if start <= now < end), None)

    def _body(self, request: httpx.Request) -> dict[str, Any]:
        coin = request.url.params["symbol"]
        if coin in self.unsupported:
            return {"code": "400", "msg": f"{coin} is not a supported coin"}
        if request.url.path == AGGREGATED_HISTORY_PATH:
            return {"code": "0", "msg": "success", "data": [_history_row(request)]}
        assert request.url.path == EXCHANGE_LIST_PATH
        assert request.url.params["range"] in ("5m", "15m", "30m", "1h", "4h", "12h", "24h")
        return ok_body(coin, self.buy_pct.get(coin, 51.01))


def _history_row(_request: httpx.Request) -> dict[str, Any]:
    return {
        "time": 1741622400000,
        "aggregated_buy_volume_usd": 968834542.3787,
        "aggregated_sell_volume_usd": 1054582654.8138,
    }


def coinglass_error(code: str, msg: str) -> Fault:
    return lambda _request: httpx.Response(200, json={"code": code, "msg": msg})


def http_429(retry_after: str) -> Fault:
    return lambda _request: httpx.Response(429, headers={"Retry-After": retry_after})


def junk(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"<html>gateway</html>")


def build(
    clock: SimClock,
    binance: FakeBinance,
    coinglass: FakeCoinGlass,
    symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT"),
    *,
    api_key: str = API_KEY,
    limiter: HostRateLimiter | None = None,
    backfill_bars: int = 3,
    **settings_: Any,
) -> CoinGlassSource:
    symbols = tuple(symbols)
    bars = make_source(clock, binance, symbols, backfill_bars=backfill_bars)
    client = httpx.AsyncClient(transport=httpx.MockTransport(coinglass.handle))
    limiter = limiter or HostRateLimiter(clock, rng=random.Random(3), name="coinglass")
    return CoinGlassSource(
        clock,
        symbols,
        api_key,
        bars,
        client=client,
        base_url=COINGLASS_URL,
        limiter=limiter,
        **settings_,
    )


def live(emitted: Emitted) -> list[Any]:
    return [b for b in emitted.bars if b.open_ms >= minute(0)]


# -- parsers -------------------------------------------------------------------------------


def test_embedded_exchange_list_sample_is_the_documented_one(shared_data: Path) -> None:
    assert doc_sample(shared_data / "coinglass", EXCHANGE_LIST_DOC) == EXCHANGE_LIST_SAMPLE


def test_documented_buy_ratio_in_percent_becomes_a_fraction() -> None:
    flow = parse_exchange_list(EXCHANGE_LIST_SAMPLE, "BTC", fetched_s=T0)
    assert flow.buy_ratio == pytest.approx(0.5101)
    assert flow.buy_volume_usd == pytest.approx(1112108532.1688)
    assert flow.fetched_s == T0


def test_buy_ratio_already_a_fraction_is_kept_and_volumes_fill_in_when_missing() -> None:
    as_fraction = {"code": "0", "data": {"buy_ratio": "0.52", "sell_ratio": "0.48"}}
    assert parse_exchange_list(as_fraction, "ETH", T0).buy_ratio == pytest.approx(0.52)
    volumes_only = {"code": "0", "data": {"buy_vol_usd": "300", "sell_vol_usd": 100}}
    assert parse_exchange_list(volumes_only, "ETH", T0).buy_ratio == pytest.approx(0.75)


def test_aggregated_history_doc_sample_parses_its_number_fields(shared_data: Path) -> None:
    name = "Futures_Taker-Buy_Sell_aggregated-taker-buysell-volume-history.md"
    points = parse_aggregated_history(doc_sample(shared_data / "coinglass", name))
    assert [p.time_ms for p in points] == [1741622400000, 1741626000000, 1741629600000]
    assert points[0].buy_volume_usd == pytest.approx(968834542.3787)
    assert points[0].buy_ratio == pytest.approx(968834542.3787 / (968834542.3787 + 1054582654.8138))


@pytest.mark.parametrize(
    "name",
    [
        "Futures_Taker-Buy_Sell_taker-buysell-volume.md",
        "Spots_Taker-Buy_Sell_spot-taker-buysell-ratio-history.md",
        "Spots_Taker-Buy_Sell_spot-aggregated-taker-buysell-history.md",
    ],
)
def test_taker_history_parser_accepts_string_and_number_samples(
    shared_data: Path, name: str
) -> None:
    points = parse_aggregated_history(doc_sample(shared_data / "coinglass", name))
    assert len(points) == 3
    assert all(p.buy_volume_usd > 0 and p.sell_volume_usd > 0 for p in points)


def test_history_time_in_seconds_is_read_as_seconds() -> None:
    body = {
        "code": "0",
        "data": [
            {
                "time": 1762257600,
                "aggregated_buy_volume_usd": "1.5",
                "aggregated_sell_volume_usd": 2,
            }
        ],
    }
    (point,) = parse_aggregated_history(body)
    assert point.time_ms == 1762257600000


def test_a_non_zero_code_is_a_request_failure_carrying_the_msg() -> None:
    with pytest.raises(RequestFailure, match="Upgrade your plan"):
        parse_aggregated_history({"code": "400", "msg": "Upgrade your plan"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "buy_ratio",
        "sell_ratio",
        "buy_vol_usd",
        "sell_vol_usd",
        "time",
        "aggregated_buy_volume_usd",
        "aggregated_sell_volume_usd",
        "taker_buy_volume_usd",
    ]
)
envelopes = st.fixed_dictionaries(
    {
        "code": st.sampled_from(["0", 0, "401", "500", None]),
        "data": json_values
        | st.dictionaries(field_names, json_values)
        | st.lists(st.dictionaries(field_names, json_values), max_size=3),
    }
)


@settings(max_examples=300, deadline=None)
@given(body=json_values | envelopes)
def test_parsers_raise_nothing_but_source_error_on_any_json(body: Any) -> None:
    for parse in (
        lambda: parse_exchange_list(body, "BTC", T0),
        lambda: parse_aggregated_history(body),
        lambda: parse_klines("BTCUSDT", body),
    ):
        with contextlib.suppress(SourceError):
            parse()


def test_coin_names_come_from_futures_symbols() -> None:
    assert coin_for_symbol("BTCUSDT") == "BTC"
    assert coin_for_symbol("1000PEPEUSDC") == "1000PEPE"
    assert coin_for_symbol("BTC") == "BTC"


# -- the source ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_live_bars_carry_the_latest_cross_buy_ratio_and_catch_up_bars_none() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock, buy_pct={"BTC": 51.01, "ETH": 47.5})
    source = build(clock, FakeBinance(clock), coinglass, backfill_bars=20)
    emitted = await run_until(source, clock, until_s=T0 + 6 * 60)
    # Catch-up bars that closed longer than fresh_for_s before the first poll get no flow.
    old = [b for b in emitted.bars if b.close_s < T0 - 300 - 10]
    assert old and all(b.cross_buy_ratio is None for b in old)
    ratios = {b.symbol: b.cross_buy_ratio for b in live(emitted)}
    assert ratios == {"BTCUSDT": pytest.approx(0.5101), "ETHUSDT": pytest.approx(0.475)}
    assert all(b.cross_buy_ratio is not None for b in live(emitted))
    assert_in_order_once(emitted.bars)
    assert_closed_when_emitted(emitted)


@pytest.mark.anyio
async def test_one_gate_per_key_spaces_every_symbol_and_endpoint() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock)
    registry = RateLimiterRegistry(clock, rng=random.Random(5))
    limiter = registry.for_api_key("coinglass", API_KEY)
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
    source = build(clock, FakeBinance(clock), coinglass, symbols, limiter=limiter)
    emitted = await run_until(source, clock, until_s=T0 + 5 * 60)
    assert registry.for_api_key("coinglass", API_KEY) is source.limiter
    coins = [r.url.params["symbol"] for r in coinglass.requests]
    assert set(coins) == {"BTC", "ETH", "SOL", "XRP"}
    assert_spacing(coinglass.request_times)
    assert_in_order_once(emitted.bars)


@pytest.mark.anyio
async def test_diagnostic_history_goes_through_the_same_key_gate() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock)
    source = build(clock, FakeBinance(clock), coinglass)
    await run_until(source, clock, until_s=T0 + 90)
    before = len(coinglass.request_times)
    points = await source.aggregated_history("BTCUSDT")
    assert points[0].buy_volume_usd == pytest.approx(968834542.3787)
    assert coinglass.requests[-1].url.params["symbol"] == "BTC"
    assert len(coinglass.request_times) == before + 1
    assert_spacing(coinglass.request_times)


@pytest.mark.anyio
async def test_api_key_max_limit_header_widens_the_gate() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock, max_limit="10")
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    source = build(clock, FakeBinance(clock), coinglass, symbols)
    await run_until(source, clock, until_s=T0 + 4 * 60)
    assert source.limiter.min_interval_s == pytest.approx(6.0)
    assert_spacing(coinglass.request_times[1:], 6.0)


@pytest.mark.anyio
async def test_the_key_is_sent_only_in_the_cg_api_key_header() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock)
    source = build(clock, FakeBinance(clock), coinglass)
    await run_until(source, clock, until_s=T0 + 3 * 60)
    assert coinglass.requests
    for request in coinglass.requests:
        assert request.headers["CG-API-KEY"] == API_KEY
        assert API_KEY not in str(request.url)
        assert API_KEY not in request.content.decode()


@pytest.mark.anyio
async def test_a_rejected_key_is_unauthorised_not_retried_and_never_leaks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SimClock(T0)
    wrong_key = "cg-wrong-key-0000111122223333"
    coinglass = FakeCoinGlass(clock)
    source = build(clock, FakeBinance(clock), coinglass, api_key=wrong_key)
    with caplog.at_level(logging.DEBUG):
        emitted = await run_until(source, clock, until_s=T0 + 5 * 60)
        with pytest.raises(RequestFailure) as failure:
            await source.aggregated_history("BTCUSDT")
    assert len(coinglass.requests) == 2  # one poll, then only the explicit diagnostic call
    health = emitted.final_health
    assert health is not None and health.state is SourceState.UNAUTHORISED
    assert source.flow_health().state in (SourceState.UNAUTHORISED, SourceState.FINISHED)
    assert all(b.cross_buy_ratio is None for b in emitted.bars)
    assert got(emitted.bars, 3) == expected(["BTCUSDT", "ETHUSDT"], -3, 3)
    everything = [caplog.text, str(health), repr(source), str(failure.value)]
    everything += [str(source.flow_health()), str(source.health())]
    assert "is invalid" in str(failure.value)
    for text in everything:
        assert wrong_key not in text


@pytest.mark.anyio
@pytest.mark.parametrize(
    "refusal",
    [
        coinglass_error("401", "API key missing"),
        lambda _r: httpx.Response(403, json={"code": "403", "msg": "API key missing"}),
        lambda _r: httpx.Response(400, json={"code": "400", "msg": "API key missing"}),
    ],
    ids=["code-401-in-200", "http-403", "http-400-blaming-the-key"],
)
async def test_every_form_of_key_refusal_is_unauthorised_and_not_retried(refusal: Fault) -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock, faults={1: refusal})
    source = build(clock, FakeBinance(clock), coinglass)
    emitted = await run_until(source, clock, until_s=T0 + 4 * 60)
    assert len(coinglass.requests) == 1
    health = emitted.final_health
    assert health is not None and health.state is SourceState.UNAUTHORISED
    assert health.last_error is not None and "API key missing" in health.last_error
    assert got(emitted.bars, 2) == expected(["BTCUSDT", "ETHUSDT"], -3, 2)


@pytest.mark.anyio
async def test_a_non_zero_code_is_an_error_with_its_msg_and_the_symbol_is_dropped() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock, unsupported={"ETH"})
    source = build(clock, FakeBinance(clock), coinglass)
    emitted = await run_until(source, clock, until_s=T0 + 5 * 60)
    eth_polls = [r for r in coinglass.requests if r.url.params["symbol"] == "ETH"]
    assert len(eth_polls) == 1
    flow = source.flow_health()
    assert flow.last_error is not None and "ETH is not a supported coin" in flow.last_error
    assert all(b.cross_buy_ratio is None for b in live(emitted) if b.symbol == "ETHUSDT")
    assert all(b.cross_buy_ratio is not None for b in live(emitted) if b.symbol == "BTCUSDT")


@pytest.mark.anyio
async def test_server_trouble_at_coinglass_backs_off_and_recovers() -> None:
    clock = SimClock(T0)
    faults = {1: coinglass_error("500", "server busy"), 3: junk, 4: timeout, 6: server_error}
    coinglass = FakeCoinGlass(clock, faults=faults)
    source = build(clock, FakeBinance(clock), coinglass)
    emitted = await run_until(source, clock, until_s=T0 + 10 * 60)
    flow = source.flow_health()
    assert flow.errors == 4
    assert flow.state is SourceState.FINISHED  # closed by run_until
    assert emitted.bars[-1].cross_buy_ratio is not None
    assert_spacing(coinglass.request_times)


@pytest.mark.anyio
async def test_a_coinglass_ban_never_holds_the_bars_up() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock, faults={3: http_429("900")})
    source = build(clock, FakeBinance(clock), coinglass, fresh_for_s=180.0)
    emitted = await run_until(source, clock, until_s=T0 + 12 * 60)
    assert got(emitted.bars, 10) == expected(["BTCUSDT", "ETHUSDT"], -3, 10)
    for bar, at_s in zip(emitted.bars, emitted.at_s, strict=True):
        if bar.open_ms >= minute(0):
            assert at_s - bar.close_s < 15.0
    banned_until = coinglass.request_times[2] + 900
    assert not [t for t in coinglass.request_times if coinglass.request_times[2] < t < banned_until]
    stale = [b for b in live(emitted) if b.close_s > coinglass.request_times[2] + 180 + 60]
    assert stale and all(b.cross_buy_ratio is None for b in stale)
    assert source.flow_health().rate_limited == 1


@pytest.mark.anyio
async def test_a_long_coinglass_outage_opens_its_breaker_and_recovers() -> None:
    clock = WatchedClock(T0)
    coinglass = FakeCoinGlass(clock)
    coinglass.outages.append((T0 + 120, T0 + 30 * 60, server_error))
    source = build(clock, FakeBinance(clock), coinglass)
    seen: list[tuple[SourceState, str]] = []

    def watch(_t: float) -> None:
        flow = source.flow_health()
        seen.append((flow.state, flow.detail))

    clock.before_sleep.append(watch)
    emitted = await run_until(source, clock, until_s=T0 + 40 * 60)
    degraded = [detail for state, detail in seen if state is SourceState.DEGRADED]
    assert degraded and degraded[-1].startswith("degraded, data ")
    assert seen[-1][0] is SourceState.OK
    in_outage = [t for t in coinglass.request_times if T0 + 120 <= t < T0 + 30 * 60]
    assert len(in_outage) < 25, "an open breaker must probe, not poll every minute"
    assert got(emitted.bars, 38) == expected(["BTCUSDT", "ETHUSDT"], -3, 38)
    assert emitted.bars[-1].cross_buy_ratio is not None


@pytest.mark.anyio
async def test_combined_health_reports_both_parts() -> None:
    clock = SimClock(T0)
    coinglass = FakeCoinGlass(clock, faults={1: http_429("600")})
    source = build(clock, FakeBinance(clock), coinglass)
    stream = source.bars()
    async for _bar in stream:
        if clock.now() > T0 + 120:
            break
    health = source.health()
    await stream.aclose()
    await source.aclose()
    assert health.state is SourceState.BANNED
    assert health.rate_limited == 1
    assert "bars (binance) ok" in health.detail and "cross flow banned" in health.detail


# -- an hour -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_hour_with_faults_on_both_hosts_delivers_every_minute_once_with_flow(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = SimClock(T0)
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    binance = FakeBinance(
        clock,
        faults={4: http_429("25"), 9: server_error, 15: timeout, 22: junk, 30: http_429("130")},
        repeat_rows=True,
        overfill=True,
        latency_s=0.2,
    )
    binance.outages.append((T0 + 20 * 60, T0 + 23 * 60, server_error))
    binance.withheld[("ETHUSDT", minute(35))] = minute(36) / 1000 + 20
    coinglass = FakeCoinGlass(
        clock,
        faults={
            2: http_429("10"),
            5: coinglass_error("500", "internal error"),
            9: junk,
            12: timeout,
            20: coinglass_error("429", "Too Many Requests"),
        },
    )
    coinglass.outages.append((T0 + 40 * 60, T0 + 50 * 60, server_error))
    source = build(clock, binance, coinglass, symbols, backfill_bars=30)
    with caplog.at_level(logging.DEBUG):
        emitted = await run_until(source, clock, until_s=T0 + 61 * 60)
    assert got(emitted.bars, 59) == expected(symbols, -30, 59)
    assert_in_order_once(emitted.bars)
    assert_closed_when_emitted(emitted)
    assert_spacing(binance.request_times)
    assert_spacing(coinglass.request_times)
    with_flow = [b for b in live(emitted) if b.cross_buy_ratio is not None]
    assert len(with_flow) > 0.6 * len(live(emitted))
    assert all(b.cross_buy_ratio == pytest.approx(0.5101) for b in with_flow)
    health = emitted.final_health
    assert health is not None and health.rate_limited >= 3
    assert API_KEY not in caplog.text and API_KEY not in str(health)
