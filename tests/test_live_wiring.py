"""Live sources built from config: key required for CoinGlass, bans survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigalpha_tui.core import config as cfg
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.sources.binance import BINANCE_FAPI_URL, BinanceSource
from bigalpha_tui.core.sources.live import SOURCE_STATE, build_live_source
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.types import SourceState


def live_config(name: str, key: str = "") -> cfg.Config:
    return cfg.replace(
        cfg.Config(), "source", name=name, symbols=("BTCUSDT",), coinglass_api_key=key
    )


def test_coinglass_without_a_key_stops_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_live_source(live_config("coinglass"), Store(tmp_path), SimClock(0.0))
    assert "COINGLASS_API_KEY" in str(err.value)


def test_a_ban_recorded_before_a_restart_is_still_honoured(tmp_path: Path) -> None:
    clock = SimClock(1_000_000.0)
    store = Store(tmp_path)
    source = build_live_source(live_config("binance"), store, clock)
    assert isinstance(source, BinanceSource)
    limiter = source.limiter
    limiter.record_rate_limited("600", 418)
    saved = (tmp_path / SOURCE_STATE).read_text()
    assert "paused_until" in saved and BINANCE_FAPI_URL.split("//")[1] in saved

    restarted = build_live_source(live_config("binance"), Store(tmp_path), clock)
    assert isinstance(restarted, BinanceSource)
    assert restarted.limiter.paused_until == pytest.approx(1_000_600.0)
    assert restarted.limiter.state is SourceState.BANNED


def test_an_unreadable_limiter_state_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / SOURCE_STATE).write_text('{"schema_version": 1, "limiters": 7}')
    store = Store(tmp_path)
    build_live_source(live_config("binance"), store, SimClock(0.0))
    assert list(tmp_path.glob(f"{SOURCE_STATE}.corrupt-*"))
