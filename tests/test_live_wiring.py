"""Live sources built from config: key required for CoinGlass, bans survive a restart."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest
from fapi_server import FapiServer, fapi_server

from bigalpha_tui.core import config as cfg
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.sources.base import BarSource, SourceHealth
from bigalpha_tui.core.sources.binance import BinanceSource
from bigalpha_tui.core.sources.live import SOURCE_STATE, build_live_source
from bigalpha_tui.core.store import Store
from bigalpha_tui.core.types import SourceState


def live_config(name: str, key: str = "", **source: object) -> cfg.Config:
    return cfg.replace(
        cfg.Config(), "source", name=name, symbols=("BTCUSDT",), coinglass_api_key=key, **source
    )


#: 09:00:30 UTC on a weekday: half a minute into a minute, as a live start would be.
T0 = 1_770_022_830.0


def test_the_binance_limiter_keys_on_the_configured_host(tmp_path: Path) -> None:
    config = live_config("binance", binance_base_url="http://127.0.0.1:8080/")
    source = build_live_source(config, Store(tmp_path), SimClock(1_000_000.0))
    assert isinstance(source, BinanceSource)
    assert source.limiter.name == "127.0.0.1:8080"
    assert "127.0.0.1:8080/fapi/v1/klines" in repr(source)
    source.limiter.record_rate_limited("600", 418)
    saved = (tmp_path / SOURCE_STATE).read_text()
    assert "host:127.0.0.1:8080" in saved and "fapi.binance.com" not in saved


def test_coinglass_is_asked_at_the_configured_host(tmp_path: Path) -> None:
    config = live_config(
        "coinglass",
        key="cg-key-0123456789",
        binance_base_url="http://127.0.0.1:8080",
        coinglass_base_url="http://127.0.0.1:8081",
    )
    source = build_live_source(config, Store(tmp_path), SimClock(0.0))
    assert "url='http://127.0.0.1:8081'" in repr(source)


def collect_bars(source: BarSource, count: int) -> list[Bar]:
    async def run() -> list[Bar]:
        got: list[Bar] = []
        stream = source.bars(None)
        with anyio.fail_after(30):
            async for bar in stream:
                got.append(bar)
                if len(got) == count:
                    break
        await stream.aclose()  # type: ignore[attr-defined]
        await source.aclose()
        return got

    return anyio.run(run)


def test_bars_arrive_from_the_configured_host_through_the_real_wiring(tmp_path: Path) -> None:
    clock = SimClock(T0)
    with fapi_server(FapiServer(clock.now, listed=("BTCUSDT",))) as server:
        config = live_config("binance", binance_base_url=server.url, backfill_bars=101)
        bars = collect_bars(build_live_source(config, Store(tmp_path), clock), 101)
    assert {b.symbol for b in bars} == {"BTCUSDT"} and len(bars) == 101
    assert server.paths[0] == "/fapi/v1/exchangeInfo"
    assert set(server.paths[1:]) == {"/fapi/v1/klines"}


def test_an_unreachable_symbol_list_is_said_once_and_bars_still_come(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock(T0)
    fake = FapiServer(clock.now, listed=("BTCUSDT",), exchange_info="drop")
    with fapi_server(fake) as server, caplog.at_level(logging.WARNING):
        config = live_config("binance", binance_base_url=server.url, backfill_bars=101)
        bars = collect_bars(build_live_source(config, Store(tmp_path), clock), 101)
    assert len(bars) == 101
    said = [r.getMessage() for r in caplog.records if "symbol list" in r.getMessage()]
    assert len(said) == 1 and "going on without checking" in said[0]


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
    assert "paused_until" in saved and "host:fapi.binance.com" in saved

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
