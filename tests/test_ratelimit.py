"""The per-host gate: spacing, Retry-After, jittered backoff, breaker, persistence."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

import anyio
import httpx
import pytest

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.errors import SourceError
from bigalpha_tui.core.ratelimit import (
    MAX_RETRY_AFTER_S,
    FailureKind,
    HostRateLimiter,
    RateLimiterRegistry,
    RequestFailure,
    fetch_json,
    parse_retry_after,
)
from bigalpha_tui.core.types import SourceState

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC).timestamp()


def http_date(t: float) -> str:
    return format_datetime(datetime.fromtimestamp(t, tz=UTC), usegmt=True)


def limiter_at(t: float = T0, seed: int = 7, **settings: Any) -> tuple[SimClock, HostRateLimiter]:
    clock = SimClock(t)
    return clock, HostRateLimiter(clock, rng=random.Random(seed), name="test", **settings)


# -- parse_retry_after ---------------------------------------------------------------------


def test_retry_after_seconds_are_read_as_a_delay() -> None:
    assert parse_retry_after("30", T0) == 30.0
    assert parse_retry_after(" 0 ", T0) == 0.0


def test_retry_after_http_date_is_read_relative_to_now() -> None:
    assert parse_retry_after(http_date(T0 + 45), T0) == pytest.approx(45.0)


def test_retry_after_in_the_past_means_no_wait() -> None:
    assert parse_retry_after(http_date(T0 - 300), T0) == 0.0
    assert parse_retry_after("-5", T0) == 0.0


def test_unreadable_retry_after_is_none() -> None:
    for value in (None, "", "soon", "Mon, 99 Foo 2026", "nan", "inf"):
        assert parse_retry_after(value, T0) is None


def test_absurd_retry_after_is_clamped_to_three_days() -> None:
    assert parse_retry_after("99999999999", T0) == MAX_RETRY_AFTER_S


# -- spacing -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_callers_are_spaced_at_least_min_interval_on_market_time() -> None:
    clock, limiter = limiter_at()
    starts: list[float] = []

    async def caller() -> None:
        for _ in range(4):
            async with limiter.slot():
                starts.append(clock.now())

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(caller)
    assert len(starts) == 20
    gaps = [b - a for a, b in pairwise(starts)]
    assert min(gaps) >= 2.5 - 1e-9
    assert clock.now() - T0 == pytest.approx(19 * 2.5)


@pytest.mark.anyio
async def test_acquire_waits_out_the_spacing_since_the_previous_start() -> None:
    clock, limiter = limiter_at()
    await limiter.acquire()
    clock.advance(1.0)
    await limiter.acquire()
    assert clock.now() == pytest.approx(T0 + 2.5)


def test_widening_the_interval_never_narrows_it() -> None:
    _, limiter = limiter_at()
    limiter.widen_interval(6.0)
    limiter.widen_interval(2.0)
    assert limiter.min_interval_s == 6.0


# -- 429 / 418 -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_429_with_retry_after_seconds_pauses_exactly_that_long() -> None:
    clock, limiter = limiter_at()
    await limiter.acquire()
    limiter.record_rate_limited("30", 429)
    assert limiter.state is SourceState.BACKING_OFF
    assert limiter.rate_limited == 1
    await limiter.acquire()
    assert clock.now() == pytest.approx(T0 + 30.0)
    assert limiter.state is SourceState.OK


@pytest.mark.anyio
async def test_429_with_http_date_retry_after_pauses_until_that_date() -> None:
    clock, limiter = limiter_at()
    await limiter.acquire()
    limiter.record_rate_limited(http_date(T0 + 42), 429)
    await limiter.acquire()
    assert clock.now() == pytest.approx(T0 + 42.0)


def test_429_without_retry_after_backs_off_with_jitter_within_the_bound() -> None:
    _, limiter = limiter_at()
    limiter.record_rate_limited(None, 429)
    assert limiter.last_wait_s is not None
    assert 0.0 <= limiter.last_wait_s <= limiter.backoff_base_s


def test_418_is_a_ban_until_retry_after() -> None:
    clock, limiter = limiter_at()
    limiter.record_rate_limited("600", 418)
    assert limiter.state is SourceState.BANNED
    assert limiter.paused_until == pytest.approx(T0 + 600)
    clock.advance(601)
    assert limiter.state is SourceState.OK


def test_a_long_429_retry_after_is_shown_as_a_ban() -> None:
    _, limiter = limiter_at()
    limiter.record_rate_limited("900", 429)
    assert limiter.state is SourceState.BANNED


def test_retry_after_longer_than_the_backoff_cap_is_still_honoured() -> None:
    _, limiter = limiter_at()
    limiter.record_rate_limited("3600", 418)
    assert limiter.next_request_s() == pytest.approx(T0 + 3600)


# -- backoff -------------------------------------------------------------------------------


def test_backoff_is_full_jitter_doubling_up_to_the_cap() -> None:
    _, limiter = limiter_at(seed=42, breaker_threshold=100)
    replay = random.Random(42)
    for failure in range(1, 12):
        limiter.record_failure(FailureKind.SERVER)
        bound_s = min(60.0, 2.5 * 2 ** (failure - 1))
        assert limiter.backoff_bound_s() >= bound_s
        assert limiter.last_wait_s == pytest.approx(replay.uniform(0.0, bound_s))
        assert 0.0 <= limiter.last_wait_s <= bound_s <= 60.0
    assert limiter.backoff_bound_s() == 60.0


def test_seeded_jitter_spreads_over_the_whole_range() -> None:
    waits = []
    for seed in range(200):
        _, limiter = limiter_at(seed=seed)
        for _ in range(6):
            limiter.record_failure(FailureKind.TIMEOUT)
        assert limiter.last_wait_s is not None
        waits.append(limiter.last_wait_s)
    assert max(waits) <= 60.0
    assert min(waits) < 10.0 and max(waits) > 50.0


def test_a_success_resets_the_backoff() -> None:
    _, limiter = limiter_at()
    for _ in range(3):
        limiter.record_failure(FailureKind.CONNECTION)
    limiter.record_success()
    assert limiter.consecutive_failures == 0
    assert limiter.backoff_bound_s() == 2.5


# -- breaker -------------------------------------------------------------------------------


def test_breaker_opens_after_threshold_failures_and_closes_on_success() -> None:
    clock, limiter = limiter_at(breaker_threshold=3)
    for _ in range(2):
        limiter.record_failure(FailureKind.SERVER)
    assert not limiter.breaker_open
    limiter.record_failure(FailureKind.SERVER)
    assert limiter.breaker_open
    assert limiter.state is SourceState.DEGRADED
    assert limiter.next_request_s() >= clock.now() + limiter.probe_interval_s
    clock.advance_to(limiter.next_request_s())
    limiter.record_success()
    assert limiter.state is SourceState.OK


@pytest.mark.anyio
async def test_open_breaker_probes_at_a_slow_cadence_instead_of_spinning() -> None:
    clock, limiter = limiter_at(breaker_threshold=3)
    starts = []
    for _ in range(10):
        async with limiter.slot():
            starts.append(clock.now())
            limiter.record_failure(FailureKind.SERVER)
    probe_gaps = [b - a for a, b in pairwise(starts[3:])]
    assert all(gap >= limiter.probe_interval_s - 1e-9 for gap in probe_gaps)


# -- persistence ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_ban_survives_a_restart_through_to_state() -> None:
    clock, limiter = limiter_at()
    limiter.record_rate_limited("900", 418)
    saved = json.loads(json.dumps(limiter.to_state()))
    restarted = HostRateLimiter.from_state(clock, saved)
    assert restarted.paused_until == limiter.paused_until
    assert restarted.state is SourceState.BANNED
    await restarted.acquire()
    assert clock.now() == pytest.approx(T0 + 900)


def test_breaker_state_round_trips() -> None:
    clock, limiter = limiter_at(breaker_threshold=1)
    limiter.record_failure(FailureKind.SERVER)
    restarted = HostRateLimiter.from_state(clock, limiter.to_state())
    assert restarted.breaker_open and restarted.consecutive_failures == 1
    assert restarted.state is SourceState.DEGRADED


def test_the_breaker_opening_is_saved_so_a_restart_does_not_probe_early() -> None:
    """What `on_change` saves (the store's copy) must hold the open breaker and its probe
    wait, not the state of a moment before it opened."""
    clock, limiter = limiter_at(breaker_threshold=3)
    saved: list[dict[str, Any]] = []
    limiter.on_change = lambda: saved.append(json.loads(json.dumps(limiter.to_state())))
    for _ in range(3):
        limiter.record_failure(FailureKind.SERVER)
    restarted = HostRateLimiter.from_state(clock, saved[-1])
    assert restarted.breaker_open and restarted.state is SourceState.DEGRADED
    assert restarted.next_request_s() >= clock.now() + limiter.probe_interval_s


def test_a_breaker_flag_that_is_not_a_boolean_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="breaker_open"):
        HostRateLimiter.from_state(SimClock(T0), {"breaker_open": "no"})


def test_unreadable_state_is_a_source_error_naming_the_field() -> None:
    clock = SimClock(T0)
    with pytest.raises(SourceError, match="paused_until_s"):
        HostRateLimiter.from_state(clock, {"paused_until_s": "tomorrow"})
    with pytest.raises(SourceError, match="pause_reason"):
        HostRateLimiter.from_state(clock, {"pause_reason": "bored"})


# -- registry ------------------------------------------------------------------------------


def test_registry_gives_every_user_of_a_host_the_same_limiter() -> None:
    registry = RateLimiterRegistry(SimClock(T0))
    klines = registry.for_host("https://fapi.binance.com/fapi/v1/klines")
    assert registry.for_host("https://fapi.binance.com") is klines
    assert registry.for_host("https://api.binance.com") is not klines


def test_registry_gives_one_limiter_per_api_key_and_never_stores_the_key() -> None:
    registry = RateLimiterRegistry(SimClock(T0))
    key = "cg-secret-0123456789"
    first = registry.for_api_key("coinglass", key)
    assert registry.for_api_key("coinglass", key) is first
    assert registry.for_api_key("coinglass", "another-key") is not first
    first.record_rate_limited("60", 429)
    dumped = json.dumps(registry.to_state())
    assert key not in dumped and key not in repr(first)


def test_registry_state_restores_limiters_built_after_loading() -> None:
    clock = SimClock(T0)
    registry = RateLimiterRegistry(clock)
    registry.for_host("https://fapi.binance.com").record_rate_limited("600", 418)
    saved = json.loads(json.dumps(registry.to_state()))
    restarted = RateLimiterRegistry(clock)
    restarted.load_state(saved)
    assert restarted.to_state() == saved
    limiter = restarted.for_host("https://fapi.binance.com")
    assert limiter.state is SourceState.BANNED


# -- fetch_json ----------------------------------------------------------------------------


async def fetch_once(
    handler: httpx.MockTransport, limiter: HostRateLimiter, secrets: tuple[str, ...] = ()
) -> object:
    async with httpx.AsyncClient(transport=handler) as client:
        return await fetch_json(
            client,
            limiter,
            "https://example.test/api",
            params={"q": 1},
            parse=lambda _response, body: body,
            secrets=secrets,
        )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(500), FailureKind.SERVER),
        (httpx.Response(503, json={"msg": "busy"}), FailureKind.SERVER),
        (httpx.Response(200, content=b"{not json"), FailureKind.MALFORMED),
        (httpx.Response(429, headers={"Retry-After": "7"}), FailureKind.RATE_LIMITED),
        (httpx.Response(418, headers={"Retry-After": "120"}), FailureKind.BANNED),
        (httpx.Response(400, json={"code": -1121, "msg": "Invalid symbol."}), FailureKind.REJECTED),
        (httpx.Response(401), FailureKind.UNAUTHORISED),
    ],
)
async def test_fetch_json_classifies_each_failure(
    response: httpx.Response, kind: FailureKind
) -> None:
    _, limiter = limiter_at()
    with pytest.raises(RequestFailure) as failure:
        await fetch_once(httpx.MockTransport(lambda _request: response), limiter)
    assert failure.value.kind is kind
    backs_off = kind.retryable
    assert (limiter.consecutive_failures == 1) is backs_off


@pytest.mark.anyio
async def test_fetch_json_turns_timeouts_and_connection_errors_into_backoff() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    _, limiter = limiter_at()
    for handler, kind in ((timeout, FailureKind.TIMEOUT), (refused, FailureKind.CONNECTION)):
        with pytest.raises(RequestFailure) as failure:
            await fetch_once(httpx.MockTransport(handler), limiter)
        assert failure.value.kind is kind
    assert limiter.consecutive_failures == 2


@pytest.mark.anyio
async def test_fetch_json_counts_an_unexpected_shape_as_malformed() -> None:
    def parse(_response: httpx.Response, body: object) -> object:
        raise SourceError(f"expected a list, got {type(body).__name__}")

    _, limiter = limiter_at()
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, json={"a": 1}))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(RequestFailure) as failure:
            await fetch_json(client, limiter, "https://example.test/", params={}, parse=parse)
    assert failure.value.kind is FailureKind.MALFORMED
    assert limiter.consecutive_failures == 1


@pytest.mark.anyio
async def test_fetch_json_scrubs_secrets_from_error_messages() -> None:
    secret = "sk-live-abcdef123456"
    body = {"code": "401", "msg": f"key {secret} is not valid"}
    _, limiter = limiter_at()
    transport = httpx.MockTransport(lambda _request: httpx.Response(401, json=body))
    with pytest.raises(RequestFailure) as failure:
        await fetch_once(transport, limiter, secrets=(secret,))
    assert secret not in str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
