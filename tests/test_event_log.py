"""The event log the cockpit shows: a night of golden-hour blocks does not push the day out.

Each signal bar outside the golden hour is blocked and counted (guard log, block records,
headless lines); the event log folds a block that repeats its symbol's last line into that
line with a count, so the day's entries and exits stay in the log's 200 lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_restart import BARS, new_core

from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.snapshot import Event

T0 = BARS[0].open_ms / 1000


def block(core: Core, symbol: str, side: str = "LONG", reason: str = "GOLDEN_HOUR") -> None:
    core.emit("block", symbol, f"{side} blocked by {reason}: closed", reason=reason, side=side)


def test_repeated_blocks_fold_into_one_line_per_symbol_and_observers_get_every_one(
    tmp_path: Path,
) -> None:
    core = new_core(tmp_path)
    heard: list[Event] = []
    core.observers.append(heard.append)
    core.emit("entry", "BTCUSDT", "LONG entry")
    for minute in range(300):  # five hours of a night: two symbols blocked every minute
        core.clock.advance_to(T0 + 60 * minute)
        block(core, "BTCUSDT")
        block(core, "ETHUSDT", side="SHORT")
    log = list(core.events)
    assert [(e.kind, e.symbol) for e in log[:2]] == [("block", "ETHUSDT"), ("block", "BTCUSDT")]
    btc = log[1]
    assert btc.data["repeats"] == 300 and btc.data["first_s"] == T0
    assert btc.message.endswith("(300x since 01-05 08:30)")
    assert ("entry", "BTCUSDT") in [(e.kind, e.symbol) for e in log]  # the day is still there
    assert sum(e.kind == "block" for e in heard) == 600  # headless and logs get every block


def test_another_guard_side_or_event_starts_a_new_line(tmp_path: Path) -> None:
    core = new_core(tmp_path)
    block(core, "BTCUSDT")
    block(core, "BTCUSDT")
    block(core, "BTCUSDT", reason="FEE_EDGE")  # another guard
    block(core, "BTCUSDT", side="SHORT", reason="FEE_EDGE")  # another side
    core.emit("exit", "BTCUSDT", "T1")
    block(core, "BTCUSDT", side="SHORT", reason="FEE_EDGE")  # after an exit: a new line
    lines = [(e.kind, e.data.get("reason"), e.data.get("repeats", 1)) for e in core.events]
    assert lines[:5] == [
        ("block", "FEE_EDGE", 1),
        ("exit", None, 1),
        ("block", "FEE_EDGE", 1),
        ("block", "FEE_EDGE", 1),
        ("block", "GOLDEN_HOUR", 2),
    ]


def test_a_simulated_evening_keeps_the_golden_hours_trades_in_the_log(tmp_path: Path) -> None:
    """08:30-19:30 on the simulator: the golden hour closes at 16:00, then every signal bar
    is blocked; the log still holds the afternoon's entries."""
    core = new_core(tmp_path)
    for bar in BARS:
        core.clock.advance_to(bar.close_s)
        core.process_bar(bar)
    kinds = [e.kind for e in core.events]
    assert "entry" in kinds
    folded = [e for e in core.events if e.kind == "block" and e.data.get("repeats", 1) > 1]
    assert folded, "the evening's golden-hour blocks fold"


@pytest.mark.anyio
async def test_the_main_screens_event_panel_writes_a_folded_block_once() -> None:
    """The panel is a tail: a fold removes the symbol's earlier line from the core's log and
    puts the counted one on top; the panel writes that one line, not the whole log again."""
    from textual.app import App, ComposeResult

    from bigalpha_tui.widgets.event_log import EventLog

    class Panel(App[None]):
        def compose(self) -> ComposeResult:
            yield EventLog()

    entry = Event(T0, "entry", "BTCUSDT", "LONG entry")
    first = Event(T0 + 60, "block", "BTCUSDT", "LONG blocked", {"reason": "GOLDEN_HOUR"})
    folded = Event(T0 + 120, "block", "BTCUSDT", "LONG blocked (2x)", {"repeats": 2})
    async with Panel().run_test(size=(100, 20)) as pilot:
        log = pilot.app.query_one(EventLog)
        assert log.show([first, entry]) == 2
        assert log.show([folded, entry]) == 1
        assert log.show([folded, entry]) == 0
        await pilot.pause()
        assert len(log.lines) == 3


@pytest.mark.parametrize("repeats, first_s", [("x", "y"), (1e308, float("inf")), (-5, None)])
def test_a_spoiled_count_in_the_saved_log_starts_a_fresh_count(
    tmp_path: Path, repeats: object, first_s: object
) -> None:
    """The log is restored from `recent_events.json`; a count or start there that is not a
    sane number (a hand edit, a hostile file) never stops the core: the fold counts afresh."""
    from bigalpha_tui.core.snapshot_codec import to_json
    from bigalpha_tui.core.store import RECENT_EVENTS, Store

    data = {"reason": "GOLDEN_HOUR", "side": "LONG", "repeats": repeats, "first_s": first_s}
    saved = Event(T0, "block", "BTCUSDT", "LONG blocked by GOLDEN_HOUR: closed", data)
    Store(tmp_path).write_json(RECENT_EVENTS, {"events": [to_json(saved)]})
    core = new_core(tmp_path)
    assert core.events and core.events[0].data.get("repeats") == repeats  # restored as saved
    core.clock.advance_to(T0 + 60)
    block(core, "BTCUSDT")
    (line,) = list(core.events)
    assert line.data["repeats"] == 2 and line.data["first_s"] == T0
    assert line.message.endswith("(2x since 01-05 08:30)")
