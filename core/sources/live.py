"""Build the live sources (Binance klines, CoinGlass cross-exchange flow) from config.

Both hosts come from config (`source.binance_base_url`, `source.coinglass_base_url`), so a
proxy, a testnet or a test's fake server is reached through this same wiring; the Binance
limiter is the configured host's.

Rate-limiter state (bans, `paused_until`, the breaker) is saved to `source_state.json` on
every change, so a restart during a ban waits instead of hammering the API.
"""

from __future__ import annotations

from typing import Any

from ..clock import Clock
from ..config import Config
from ..errors import ConfigError
from ..ratelimit import RateLimiterRegistry
from ..store import Store
from .base import BarSource
from .binance import BinanceSource
from .coinglass import CoinGlassSource

SOURCE_STATE = "source_state.json"


def _load_limiter_state(store: Store) -> dict[str, Any]:
    def parse(doc: dict[str, Any]) -> dict[str, Any]:
        limiters = doc["limiters"]
        if not isinstance(limiters, dict):
            raise ValueError("limiters must be a table")
        return limiters

    state = store.load_or_quarantine(SOURCE_STATE, parse)
    return state if isinstance(state, dict) else {}


def build_live_source(config: Config, store: Store, clock: Clock) -> BarSource:
    """A Binance source, wrapped by CoinGlass when that source is chosen."""
    src = config.source
    registry = RateLimiterRegistry(
        clock, min_interval_s=src.min_request_interval_s, backoff_cap_s=src.backoff_cap_s
    )
    try:
        registry.load_state(_load_limiter_state(store))
    except Exception as exc:  # a bad saved state must not stop start-up
        store.quarantine(SOURCE_STATE, f"rate-limiter state unusable ({exc})")

    def save() -> None:
        store.write_json(SOURCE_STATE, {"limiters": registry.to_state()})

    # one gate per configured host: a proxy or testnet is paced (and its bans remembered)
    # apart from the exchange itself
    binance_limiter = registry.for_host(src.binance_base_url)
    binance_limiter.on_change = save
    binance = BinanceSource(
        clock,
        src.symbols,
        base_url=src.binance_base_url,
        limiter=binance_limiter,
        backfill_bars=src.backfill_bars,
    )
    if src.name == "binance":
        return binance
    key = src.coinglass_api_key
    if not key:
        raise ConfigError(
            "source 'coinglass' needs an API key: set COINGLASS_API_KEY or "
            "source.coinglass_api_key in a config file only you can read"
        )
    if not key.strip():
        raise ConfigError(
            "source 'coinglass': the API key (COINGLASS_API_KEY or source.coinglass_api_key)"
            " is only blanks; set the key itself"
        )
    cg_limiter = registry.for_api_key("coinglass", key)
    cg_limiter.on_change = save
    return CoinGlassSource(
        clock, src.symbols, key, binance, base_url=src.coinglass_base_url, limiter=cg_limiter
    )
