"""One polite gate per host (or per API key): spacing, backoff, Retry-After, circuit breaker.

Every request a source sends goes through `fetch_json`, which takes the host's
`HostRateLimiter` slot, sends the request, and records the outcome so the next caller waits the
right amount of *market* time: at least `min_interval_s` after the previous request started,
longer after a 429/418 (Retry-After honoured, seconds or HTTP date) or a 5xx/timeout/connection
error (exponential backoff with full jitter, capped). After `breaker_threshold` consecutive
failures the breaker opens (state DEGRADED) and the host is probed at a slow cadence until a
request succeeds. All time comes from the injected clock, so a ban that outlives a restart is
still honoured when `paused_until` is restored from `to_state()`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx

from .clock import Clock
from .errors import SourceError
from .types import SourceState

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Binance bans last from 2 minutes to 3 days; a Retry-After beyond that is a broken header.
MAX_RETRY_AFTER_S = 3 * 24 * 3600.0
#: A Retry-After at least this long is shown to the operator as a ban, not a short back-off.
BAN_THRESHOLD_S = 120.0
#: Error text shown to operators is clipped to this many characters.
MESSAGE_LIMIT_CHARS = 200


class FailureKind(StrEnum):
    """Why a request failed, which decides whether and how long the host is left alone."""

    TIMEOUT = "timeout"
    CONNECTION = "connection error"
    SERVER = "server error"
    MALFORMED = "malformed response"
    RATE_LIMITED = "rate limited"
    BANNED = "banned"
    REJECTED = "request rejected"
    UNAUTHORISED = "unauthorised"

    @property
    def retryable(self) -> bool:
        """False for refusals that will not change by asking again (bad symbol, bad key)."""
        return self not in (FailureKind.REJECTED, FailureKind.UNAUTHORISED)


class PauseReason(StrEnum):
    BACKOFF = "backoff"
    RATE_LIMITED = "rate limited"
    BANNED = "banned"


class RequestFailure(SourceError):
    """A request that did not produce usable data; the message is safe to show and log."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from `now` for a Retry-After header (delta-seconds or HTTP date).

    None when the header is missing or unreadable; never negative; clamped to three days.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    wait_s: float | None
    try:
        wait_s = float(text)
    except ValueError:
        wait_s = _seconds_until_http_date(text, now)
    if wait_s is None or not math.isfinite(wait_s):
        return None
    return min(max(wait_s, 0.0), MAX_RETRY_AFTER_S)


def _seconds_until_http_date(text: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() - now


class HostRateLimiter:
    """The gate every request to one host (or one API key) passes through.

    `async with limiter.slot():` waits for the host's turn and holds it for the request, so
    concurrent callers are serialised and each one sees the outcome of the previous request.
    """

    def __init__(
        self,
        clock: Clock,
        min_interval_s: float = 2.5,
        backoff_base_s: float = 2.5,
        backoff_cap_s: float = 60.0,
        breaker_threshold: int = 5,
        probe_interval_s: float | None = None,
        rng: random.Random | None = None,
        name: str = "host",
    ) -> None:
        if min_interval_s < 0 or backoff_base_s <= 0 or backoff_cap_s <= 0:
            raise ValueError("rate-limiter intervals must be positive")
        if breaker_threshold < 1:
            raise ValueError("breaker_threshold must be at least 1")
        self.name = name
        self.min_interval_s = float(min_interval_s)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_cap_s = float(backoff_cap_s)
        self.breaker_threshold = breaker_threshold
        self.probe_interval_s = float(probe_interval_s or 2.0 * backoff_cap_s)
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = anyio.Lock()
        self.last_request_s: float | None = None
        self.paused_until: float = 0.0
        self.pause_reason: PauseReason | None = None
        self.consecutive_failures = 0
        self.breaker_open = False
        self.last_wait_s: float | None = None
        self.failures = 0
        self.rate_limited = 0
        #: called after every outcome that changes what must survive a restart
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def __repr__(self) -> str:
        return f"HostRateLimiter({self.name!r}, state={self.state.value!r})"

    # -- taking a turn ---------------------------------------------------------------------

    def next_request_s(self) -> float:
        """Earliest market time the next request may start."""
        spaced_s = (self.last_request_s or -math.inf) + self.min_interval_s
        return max(spaced_s, self.paused_until)

    async def acquire(self) -> None:
        """Wait for this host's turn and mark a request as started now."""
        async with self._lock:
            await self._wait_for_turn()
            self.last_request_s = self._clock.now()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold this host's turn for the whole request (record its outcome inside)."""
        async with self._lock:
            await self._wait_for_turn()
            self.last_request_s = self._clock.now()
            yield

    async def _wait_for_turn(self) -> None:
        # Loop: an outcome recorded while we slept may have pushed the turn further out.
        while (turn_s := self.next_request_s()) > self._clock.now():
            await self._clock.sleep_until(turn_s)

    def widen_interval(self, min_interval_s: float) -> None:
        """Never go faster than `min_interval_s` (e.g. from a requests-per-minute header)."""
        if min_interval_s > self.min_interval_s:
            log.info("%s: request spacing widened to %.2f s", self.name, min_interval_s)
            self.min_interval_s = float(min_interval_s)

    # -- outcomes --------------------------------------------------------------------------

    def record_success(self) -> None:
        was_failing = self.breaker_open or self.consecutive_failures > 0
        if self.breaker_open:
            log.warning("%s: answering again, circuit breaker closed", self.name)
        self.consecutive_failures = 0
        self.breaker_open = False
        self.pause_reason = None
        if was_failing:
            self._changed()

    def record_failure(self, kind: FailureKind) -> None:
        """A retryable failure (5xx, timeout, connection, malformed): back off with jitter."""
        self.failures += 1
        self.consecutive_failures += 1
        wait_s = self._jittered_backoff_s()
        self._pause(wait_s, PauseReason.BACKOFF, str(kind))
        self._maybe_open_breaker()

    def record_rate_limited(self, retry_after: str | None, status: int) -> None:
        """429 or 418: wait what the host asked for, else back off as for a failure."""
        now = self._clock.now()
        if status == 429:
            self.rate_limited += 1
        else:
            self.failures += 1
        self.consecutive_failures += 1
        wait_s = parse_retry_after(retry_after, now)
        if wait_s is None:
            wait_s = self._jittered_backoff_s()
        banned = status == 418 or wait_s >= BAN_THRESHOLD_S
        reason = PauseReason.BANNED if banned else PauseReason.RATE_LIMITED
        self._pause(wait_s, reason, f"HTTP {status}")
        self._maybe_open_breaker()

    def backoff_bound_s(self) -> float:
        """Upper bound of the next jittered wait (the jitter is uniform in [0, bound])."""
        exponent = max(self.consecutive_failures - 1, 0)
        return min(self.backoff_cap_s, self.backoff_base_s * 2.0 ** min(exponent, 60))

    def _jittered_backoff_s(self) -> float:
        # Full jitter: many clients retrying together spread out instead of pulsing.
        return self._rng.uniform(0.0, self.backoff_bound_s())

    def _pause(self, wait_s: float, reason: PauseReason, why: str) -> None:
        now = self._clock.now()
        self.last_wait_s = wait_s
        if now + wait_s > self.paused_until or reason is PauseReason.BANNED:
            self.paused_until = max(self.paused_until, now + wait_s)
            self.pause_reason = reason
        log.warning("%s: %s, next request in %.1f s", self.name, why, self.paused_until - now)
        self._changed()

    def _maybe_open_breaker(self) -> None:
        if self.consecutive_failures < self.breaker_threshold:
            return
        if not self.breaker_open:
            log.warning(
                "%s: %d failures in a row, circuit breaker open; probing every %.0f s",
                self.name,
                self.consecutive_failures,
                self.probe_interval_s,
            )
        self.breaker_open = True
        # Probe slowly rather than spin; a longer Retry-After still wins.
        self.paused_until = max(self.paused_until, self._clock.now() + self.probe_interval_s)
        self._changed()  # _pause saved the moment before: a restart must not probe early

    # -- what the operator sees ------------------------------------------------------------

    @property
    def state(self) -> SourceState:
        paused = self._clock.now() < self.paused_until
        if paused and self.pause_reason is PauseReason.BANNED:
            return SourceState.BANNED
        if self.breaker_open:
            return SourceState.DEGRADED
        if paused:
            return SourceState.BACKING_OFF
        return SourceState.OK

    # -- persistence -----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Plain JSON-able state, so a restart during a ban or back-off keeps waiting."""
        return {
            "paused_until_s": self.paused_until,
            "pause_reason": None if self.pause_reason is None else self.pause_reason.value,
            "consecutive_failures": self.consecutive_failures,
            "breaker_open": self.breaker_open,
            "last_request_s": self.last_request_s,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what `to_state` wrote; raises SourceError naming the bad field."""
        paused_until_s = _state_float(state, "paused_until_s", 0.0)
        last_request_s = _state_optional_float(state, "last_request_s")
        failures = state.get("consecutive_failures", 0)
        if not isinstance(failures, int) or isinstance(failures, bool) or failures < 0:
            raise SourceError(f"rate-limiter state: consecutive_failures is {failures!r}")
        breaker_open = state.get("breaker_open", False)
        if not isinstance(breaker_open, bool):
            raise SourceError(f"rate-limiter state: breaker_open is {breaker_open!r}")
        reason = state.get("pause_reason")
        try:
            pause_reason = None if reason is None else PauseReason(reason)
        except ValueError:
            raise SourceError(f"rate-limiter state: pause_reason is {reason!r}") from None
        self.paused_until = paused_until_s
        self.last_request_s = last_request_s
        self.consecutive_failures = failures
        self.pause_reason = pause_reason
        self.breaker_open = breaker_open

    @classmethod
    def from_state(cls, clock: Clock, state: Mapping[str, Any], **settings: Any) -> HostRateLimiter:
        limiter = cls(clock, **settings)
        limiter.load_state(state)
        return limiter


def _state_float(state: Mapping[str, Any], key: str, default: float) -> float:
    value = state.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SourceError(f"rate-limiter state: {key} is {value!r}, expected seconds")
    return float(value)


def _state_optional_float(state: Mapping[str, Any], key: str) -> float | None:
    if state.get(key) is None:
        return None
    return _state_float(state, key, 0.0)


class RateLimiterRegistry:
    """One limiter per host, or per API key: every source asking for the same one shares it.

    Keys are `host:<netloc>` and `key:<service>:<sha256 prefix>`; the API key itself is never
    stored, so `to_state()` can be written to disk.
    """

    def __init__(self, clock: Clock, **settings: Any) -> None:
        self._clock = clock
        self._settings = settings
        self._limiters: dict[str, HostRateLimiter] = {}
        self._saved: dict[str, Mapping[str, Any]] = {}

    def for_host(self, url: str, **settings: Any) -> HostRateLimiter:
        netloc = urlsplit(url).netloc or url
        return self._get(f"host:{netloc.lower()}", netloc, settings)

    def for_api_key(self, service: str, api_key: str, **settings: Any) -> HostRateLimiter:
        return self._get(f"key:{service}:{api_key_id(api_key)}", service, settings)

    def _get(self, key: str, label: str, settings: Mapping[str, Any]) -> HostRateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            merged = {**self._settings, **settings, "name": label}
            limiter = HostRateLimiter(self._clock, **merged)
            saved = self._saved.pop(key, None)
            if saved is not None:
                limiter.load_state(saved)
            self._limiters[key] = limiter
        return limiter

    def to_state(self) -> dict[str, dict[str, Any]]:
        state = {key: dict(saved) for key, saved in self._saved.items()}
        state.update({key: limiter.to_state() for key, limiter in self._limiters.items()})
        return state

    def load_state(self, state: Mapping[str, Mapping[str, Any]]) -> None:
        """Restore saved limiters; ones not built yet get their state when first asked for."""
        for key, saved in state.items():
            limiter = self._limiters.get(key)
            if limiter is None:
                self._saved[key] = saved
            else:
                limiter.load_state(saved)


def describe_state(
    state: SourceState, data_age_s: float | None, paused_until_s: float, now_s: float
) -> str:
    """Operator wording for a source's state, e.g. "degraded, data 7 min old"."""
    age = "no data yet" if data_age_s is None else f"data {data_age_s / 60.0:.0f} min old"
    if state is SourceState.DEGRADED:
        return f"degraded, {age}"
    if state is SourceState.BANNED:
        until = datetime.fromtimestamp(paused_until_s, tz=UTC).strftime("%H:%M:%S")
        return f"banned until {until} UTC, {age}"
    if state is SourceState.BACKING_OFF:
        return f"backing off, next request in {max(paused_until_s - now_s, 0.0):.0f} s"
    return ""


def api_key_id(api_key: str) -> str:
    """A short, non-reversible name for an API key (safe for state files and logs)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:12]


def scrub(text: str, secrets: Sequence[str], limit_chars: int | None = MESSAGE_LIMIT_CHARS) -> str:
    """`text` with every secret replaced, clipped to `limit_chars` (None: not clipped)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if limit_chars is not None and len(text) > limit_chars:
        text = text[: limit_chars - 1] + "…"
    return text


ParseResponse = Callable[[httpx.Response, Any], T]


async def fetch_json(
    client: httpx.AsyncClient,
    limiter: HostRateLimiter,
    url: str,
    *,
    params: Mapping[str, str | int],
    parse: ParseResponse[T],
    headers: Mapping[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    secrets: Sequence[str] = (),
) -> T:
    """GET `url` in the limiter's slot, decode JSON, `parse` it, and record the outcome.

    `parse(response, body)` raises SourceError on an unexpected shape (counted as malformed)
    or RequestFailure for an error the body reports. Raises RequestFailure, message scrubbed
    of `secrets`.
    """
    async with limiter.slot():
        try:
            result = await _get_and_parse(client, url, params, headers, timeout, parse)
        except RequestFailure as failure:
            _record(limiter, failure)
            message = scrub(failure.message, secrets)
            raise RequestFailure(
                failure.kind, message, status=failure.status, retry_after=failure.retry_after
            ) from None
        limiter.record_success()
        return result


async def _get_and_parse(
    client: httpx.AsyncClient,
    url: str,
    params: Mapping[str, str | int],
    headers: Mapping[str, str] | None,
    timeout: httpx.Timeout | None,
    parse: ParseResponse[T],
) -> T:
    try:
        response = await client.get(
            url,
            params=dict(params),
            headers=dict(headers or {}),
            timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.TimeoutException as exc:
        raise RequestFailure(FailureKind.TIMEOUT, f"timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        kind = FailureKind.CONNECTION
        raise RequestFailure(kind, f"connection failed ({type(exc).__name__})") from None
    _raise_for_status(response)
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestFailure(FailureKind.MALFORMED, "response is not valid JSON") from None
    try:
        return parse(response, body)
    except RequestFailure:
        raise
    except SourceError as exc:
        raise RequestFailure(FailureKind.MALFORMED, f"unexpected response: {exc}") from None


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = f"HTTP {status}{_body_message(response)}"
    if status in (418, 429):
        kind = FailureKind.BANNED if status == 418 else FailureKind.RATE_LIMITED
        retry_after = response.headers.get("Retry-After")
        raise RequestFailure(kind, detail, status=status, retry_after=retry_after)
    if status in (401, 403):
        raise RequestFailure(FailureKind.UNAUTHORISED, detail, status=status)
    if status == 408:
        raise RequestFailure(FailureKind.TIMEOUT, detail, status=status)
    if status >= 500:
        raise RequestFailure(FailureKind.SERVER, detail, status=status)
    raise RequestFailure(FailureKind.REJECTED, detail, status=status)


def _body_message(response: httpx.Response) -> str:
    """`: <msg>` from an error body like {"code": -1121, "msg": "Invalid symbol."}."""
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body[k]) for k in ("code", "msg") if body.get(k) not in (None, "")]
    return f": {' '.join(parts)}" if parts else ""


def _record(limiter: HostRateLimiter, failure: RequestFailure) -> None:
    if failure.kind in (FailureKind.RATE_LIMITED, FailureKind.BANNED):
        limiter.record_rate_limited(failure.retry_after, failure.status or 429)
    elif failure.kind.retryable:
        limiter.record_failure(failure.kind)
    # A refused request says nothing about the host's load: no back-off for it.
