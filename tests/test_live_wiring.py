"""Live sources built from config: key required for CoinGlass, bans survive a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigalpha_tui.core import config as cfg
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.sources.base import SourceHealth
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


class SilentSource:
    """A source whose host never answers: no bar comes, only its health changes."""

    name = "binance"

    def __init__(self) -> None:
        self.state = SourceState.WARMING

    def health(self) -> SourceHealth:
        return SourceHealth(self.name, self.state, last_error="connection failed")


def test_snapshots_show_source_health_that_changes_without_bars(tmp_path: Path) -> None:
    """An outage is exactly when no bar comes: the cockpit must still see it degrade."""
    source = SilentSource()
    core = Core(cfg.Config(), source, SimClock(1_767_600_000.0), Store(tmp_path))  # type: ignore[arg-type]
    assert core.snapshot().source.state is SourceState.WARMING
    source.state = SourceState.DEGRADED
    assert core.snapshot().source.state is SourceState.DEGRADED
    assert core.snapshot() is core.snapshot()  # unchanged health: the same snapshot


def test_the_cockpit_logs_to_a_file_not_to_the_terminal(tmp_path: Path) -> None:
    import logging

    from bigalpha_tui.app import COCKPIT_LOG, log_away_from_the_screen

    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        log_away_from_the_screen(tmp_path / COCKPIT_LOG)
        assert not any(
            isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
            for h in root.handlers
        )
        logging.getLogger("bigalpha_tui.core.ratelimit").warning("fapi: connection error")
        for handler in root.handlers:
            handler.flush()
        assert "fapi: connection error" in (tmp_path / COCKPIT_LOG).read_text()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved:
            root.addHandler(handler)
