"""Headless mode reports source health changes even when no bar arrives."""

from __future__ import annotations

from types import SimpleNamespace

import anyio
import pytest

from bigalpha_tui import headless
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.types import SourceState


def test_degraded_line_says_state_age_and_error_once() -> None:
    health = SourceHealth(
        "binance",
        SourceState.DEGRADED,
        last_error="BTCUSDT: timeout",
        data_age_s=600.0,
        detail="degraded, data 10 min old",
    )
    line = headless.describe_health(health)
    assert line.startswith("source binance: degraded; data 10 min old")
    assert line.count("degraded") == 1
    assert "last error: BTCUSDT: timeout" in line


@pytest.mark.anyio
async def test_each_state_change_is_one_event(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(headless, "HEALTH_POLL_S", 0.001)
    states = iter(
        [
            SourceState.WARMING,
            SourceState.WARMING,
            SourceState.BACKING_OFF,
            SourceState.BACKING_OFF,
            SourceState.DEGRADED,
            SourceState.OK,
        ]
    )
    current = {"state": SourceState.WARMING}

    def health() -> SourceHealth:
        current["state"] = next(states, current["state"])
        return SourceHealth("binance", current["state"], last_error="connection failed")

    emitted: list[str] = []
    core = SimpleNamespace(
        source=SimpleNamespace(health=health),
        emit=lambda kind, symbol, message, **data: emitted.append(message),
    )
    with anyio.move_on_after(0.2):
        await headless.watch_source_health(core)  # type: ignore[arg-type]
    assert [m.split(";")[0] for m in emitted] == [
        "source binance: backing off",
        "source binance: degraded",
        "source binance: ok",
    ]
