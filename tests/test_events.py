"""The events screen (`e`) at every size, the one-line-in-full detail views (events, blocked
entries, probation), dates on lists that span days, and the status line at 80 columns during
an outage and with a guard switched off."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from snapshot_fixtures import START_S, cockpit, fixture_core, fixture_snapshot

from bigalpha_tui.app import CockpitApp
from bigalpha_tui.core.snapshot import Event, Snapshot
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.types import SourceState
from bigalpha_tui.screens.events import DetailView, EventsScreen
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.event_log import EventTable
from bigalpha_tui.widgets.guard_log import GuardLog
from bigalpha_tui.widgets.probation_table import ProbationTable
from bigalpha_tui.widgets.status_bar import StatusBar

SnapCompare = Callable[..., bool]
NOW_S = START_S + 4 * 3600  # the fixture's market time: 2026-01-05 12:30 UTC
DAY_S = 86_400.0
LONG_MESSAGE = (
    "fee edge 9.1 bps < 2x8.0 bps fees + 6.0 bps slippage buffer: long SOLUSDT blocked at "
    "137.91, the shadow twin opens instead and will tell whether the guard cost money"
)


def spanning_days() -> Snapshot:
    """The fixture, with events, a block and a probation change from the day before (the
    logs are restored from the store, so they span days) and one long event line."""
    base = fixture_snapshot()
    older = (
        Event(NOW_S - 14 * 3600, "learning", "", "cycle 2: 1 judged, 0 on probation",
              MappingProxyType({"cycle": 2})),
        Event(NOW_S - 26 * 3600, "exit", "ETHUSDT", "STOP hit: closed 0.0312 at 3,177.99",
              MappingProxyType({"pnl_usd": -3.1, "reasons": ["STOP"]})),
    )  # fmt: skip
    figures = {"reason": "FEE_EDGE", "edge_bps": 9.1, "side": "long"}
    fee = Event(NOW_S - 20, "block", "SOLUSDT", LONG_MESSAGE, MappingProxyType(figures))
    blocks = (
        *base.guard_log,
        dataclasses.replace(base.guard_log[1], time_s=NOW_S - 30 * 3600, detail=LONG_MESSAGE),
    )
    symbols = tuple(
        dataclasses.replace(v, state_changed_s=NOW_S - 2 * DAY_S) if v.symbol == "LINKUSDT" else v
        for v in base.symbols
    )
    return dataclasses.replace(
        base, events=(fee, *base.events, *older), guard_log=blocks, symbols=symbols
    )


def events_app(data_dir: Path, snapshot: Snapshot | None = None) -> CockpitApp:
    return cockpit(fixture_core(data_dir), snapshot or spanning_days())


def outage() -> Snapshot:
    """Binance backing off with its last error, no bar for minutes, a guard off."""
    base = fixture_snapshot()
    health = SourceHealth(
        "binance",
        SourceState.BACKING_OFF,
        last_ok_s=NOW_S - 400,
        last_error="BTCUSDT: connection failed (ConnectError)",
        errors=5,
        rate_limited=3,
    )
    return dataclasses.replace(base, source=health)


def status_line(app: CockpitApp) -> str:
    rendered = app.main.query_one(StatusBar).render()
    return str(getattr(rendered, "plain", rendered))


async def open_events(pilot: Any) -> EventsScreen:
    await pilot.press("e")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, EventsScreen)
    return screen


def messages(table: EventTable) -> list[str]:
    return [e.message for e in table.events]


# -- pictures -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_events_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(events_app(tmp_path), terminal_size=size, press=["e"])


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_event_detail(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    # the newest event is the long fee-edge block: its message wraps in full
    assert snap_compare(events_app(tmp_path), terminal_size=size, press=["e", "enter"])


def test_status_line_during_an_outage_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = cockpit(fixture_core(tmp_path), outage(), wall=lambda: NOW_WALL_S + 400)
    assert snap_compare(app, terminal_size=(80, 24))


def test_dates_and_guards_off_badge_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """Yesterday's block and a probation change two days ago are dated; FEE_EDGE is off."""
    assert snap_compare(events_app(tmp_path), terminal_size=(120, 40))


# -- keys -----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(80, 24), (130, 40), (170, 50)])
async def test_e_opens_the_events_at_every_size(tmp_path: Path, size: tuple[int, int]) -> None:
    """130 columns is the width where the main screen has no events panel and no tabs."""
    app = events_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        screen = await open_events(pilot)
        table = screen.table
        times = [e.time_s for e in table.events]
        assert times == sorted(times, reverse=True) and len(times) == 9
        when = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert when[0] == "01-05 12:29" and when[-1] == "01-04 10:30"
        await pilot.press("e")
        assert app.screen is app.main
        await pilot.press("e")
        await pilot.press("escape")
        assert app.screen is app.main


@pytest.mark.anyio
async def test_slash_filters_by_symbol_or_text_and_escape_clears(tmp_path: Path) -> None:
    app = events_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_events(pilot)
        table = screen.table
        await pilot.press("slash", *"sol", "enter")
        assert {e.symbol for e in table.events} == {"SOLUSDT"} and len(table.events) == 2
        assert table.has_focus
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"guard", "enter")
        # text, not only symbols: "guard FEE_EDGE switched OFF" has no symbol
        assert "guard FEE_EDGE switched OFF" in messages(table)
        assert all("guard" in m.lower() for m in messages(table))
        await pilot.press("slash", "escape")  # escape in the search box clears the filter
        assert len(table.events) == 9 and app.screen is screen
        await pilot.press("slash", *"nothing like it", "enter")
        assert table.row_count == 0
        await pilot.press("enter")  # nothing to open
        assert app.screen is screen


@pytest.mark.anyio
async def test_enter_shows_the_highlighted_event_in_full(tmp_path: Path) -> None:
    app = events_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_events(pilot)
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailView)
        fields = dict(detail.rows)
        assert fields["Message"] == LONG_MESSAGE  # cut in the list, whole here
        assert fields["Time"].startswith("2026-01-05 12:29:40")
        assert fields["edge_bps"] == "9.1" and fields["reason"] == "FEE_EDGE"
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("G", "enter")  # the oldest, from the day before
        assert isinstance(app.screen, DetailView)
        fields = dict(app.screen.rows)
        assert fields["Time"].startswith("2026-01-04 10:30")
        assert fields["reasons"] == "STOP"


@pytest.mark.anyio
async def test_new_events_show_while_open_and_the_cursor_keeps_its_event(tmp_path: Path) -> None:
    snapshot = spanning_days()
    current = [snapshot]
    app = cockpit(fixture_core(tmp_path), snapshot)
    app.snapshot_source = lambda: current[0]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_events(pilot)
        await pilot.press("down", "down")
        chosen = screen.table.event_at_cursor()
        newer = Event(NOW_S + 60, "entry", "DOTUSDT", "LONG 40 at 2.2470", MappingProxyType({}))
        current[0] = dataclasses.replace(snapshot, events=(newer, *snapshot.events))
        app.refresh_view()
        await pilot.pause()
        assert screen.table.events[0] is newer
        assert screen.table.event_at_cursor() is chosen


@pytest.mark.anyio
async def test_the_table_keeps_newest_first_as_the_log_grows_and_its_oldest_fall_off(
    tmp_path: Path,
) -> None:
    """The row-by-row path (new on top, oldest gone) draws what a rebuild would."""
    snapshot = spanning_days()
    current = [snapshot]
    app = cockpit(fixture_core(tmp_path), snapshot)
    app.snapshot_source = lambda: current[0]
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_events(pilot)
        table = screen.table
        log = list(snapshot.events)
        for n in range(3):
            new = Event(
                NOW_S + 60 * (n + 1), "entry", "DOTUSDT", f"entry {n}", MappingProxyType({})
            )
            log = [new, *log[:-1]]  # bounded: the oldest falls off
            current[0] = dataclasses.replace(snapshot, events=tuple(log))
            app.refresh_view()
            await pilot.pause()
        drawn = [str(table.get_row_at(i)[3]) for i in range(table.row_count)]
        assert drawn == [e.message for e in log]
        assert drawn[:3] == ["entry 2", "entry 1", "entry 0"] and table.cursor_row == 0


@pytest.mark.anyio
async def test_enter_on_a_blocked_entry_shows_its_reason_in_full(tmp_path: Path) -> None:
    app = events_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.main.query_one(GuardLog)
        log.focus()
        await pilot.pause()
        for _ in range(len(log.blocks)):
            await pilot.press("j")
        assert log.block_at_cursor() is log.blocks[-1]
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailView)
        fields = dict(detail.rows)
        assert fields["Why"] == LONG_MESSAGE and fields["Blocked by"] == "FEE_EDGE"
        assert fields["Time"].startswith("2026-01-04 06:30")
        await pilot.press("escape")
        assert app.screen is app.main


@pytest.mark.anyio
async def test_enter_on_a_probation_row_shows_why_in_full(tmp_path: Path) -> None:
    app = events_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.main.query_one(ProbationTable)
        table.focus()
        table.move_to_symbol("SOLUSDT")
        await pilot.press("enter")
        detail = app.screen
        assert isinstance(detail, DetailView)
        fields = dict(detail.rows)
        assert fields["Why"] == "GH PF 0.62 < 0.80 over 7 trades"
        assert fields["Since"].startswith("2026-01-05 10:30")


# -- dates ----------------------------------------------------------------------------------


def test_a_time_shows_its_date_only_off_the_market_day() -> None:
    assert fmt.clock_or_date(NOW_S - 3600, NOW_S) == "11:30"
    assert fmt.clock_or_date(NOW_S - 13 * 3600, NOW_S) == "01-04 23:30"  # before midnight
    assert fmt.clock_or_date(NOW_S - 13 * 3600, NOW_S, with_time=False) == "01-04"
    assert fmt.clock_or_date(NOW_S, None) == "01-05 12:30"  # no today known: dated
    assert fmt.clock_or_date(None, NOW_S) == fmt.DASH


@pytest.mark.anyio
async def test_the_blocked_list_and_probation_since_show_dates_across_days(
    tmp_path: Path,
) -> None:
    app = events_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        log = app.main.query_one(GuardLog)
        top = log.render().plain.splitlines()
        assert top[0].startswith("12:29 ETHUSDT")  # all from today: the time alone
        log.cursor = len(log.blocks) - 1  # scroll to the oldest, from the day before
        lines = log.render().plain.splitlines()
        assert lines[-1].startswith("01-04 06:30 SOLUSDT")
        # today's lines keep the time alone, aligned with the dated one
        assert lines[0].endswith(lines[0].lstrip()) and lines[-2].startswith("      ")
        table = app.main.query_one(ProbationTable)
        since = {key.value: str(table.get_cell(key, "changed")) for key in table.rows}
        assert since["LINKUSDT"] == "01-03" and since["SOLUSDT"] == "10:30"


# -- the status line ------------------------------------------------------------------------

NOW_WALL_S = 1_767_600_000.0  # snapshot_fixtures.FROZEN_WALL_S


@pytest.mark.anyio
async def test_an_outage_keeps_golden_hour_and_the_last_error_at_80_columns(
    tmp_path: Path,
) -> None:
    app = cockpit(fixture_core(tmp_path), outage(), wall=lambda: NOW_WALL_S + 400)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        line = status_line(app)
    assert len(line) <= 80
    assert "GOLDEN OPEN" in line
    assert "backing off" in line and "BTCUSDT: conn" in line
    assert "STALE" in line
    # the error explains why nothing trades: it outranks the GUARDS OFF badge at 80 columns
    assert "GUARDS OFF" not in line


@pytest.mark.anyio
@pytest.mark.parametrize("width", [80, 120])
async def test_a_guard_switched_off_shows_a_badge(tmp_path: Path, width: int) -> None:
    base = fixture_snapshot()  # FEE_EDGE is off in the fixture
    all_on = dataclasses.replace(
        base, guards_enabled=MappingProxyType(dict.fromkeys(base.guards_enabled, True))
    )
    for snapshot, badge in ((base, True), (all_on, False)):
        app = cockpit(fixture_core(tmp_path / str(badge)), snapshot)
        async with app.run_test(size=(width, 24)) as pilot:
            await pilot.pause()
            line = status_line(app)
        assert ("GUARDS OFF" in line) is badge
        if badge and width >= 120:
            assert "GUARDS OFF: FEE_EDGE" in line


@pytest.mark.anyio
async def test_the_guard_log_cursor_stays_on_its_block_as_new_blocks_arrive(
    tmp_path: Path,
) -> None:
    snapshot = spanning_days()
    current = [snapshot]
    app = cockpit(fixture_core(tmp_path), snapshot)
    app.snapshot_source = lambda: current[0]
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.main.query_one(GuardLog)
        log.focus()
        await pilot.press("j", "j")
        chosen = log.block_at_cursor()
        assert chosen is snapshot.guard_log[2]
        newer = dataclasses.replace(snapshot.guard_log[0], time_s=NOW_S + 60, detail="new")
        current[0] = dataclasses.replace(snapshot, guard_log=(newer, *snapshot.guard_log))
        app.refresh_view()
        await pilot.pause()
        assert log.block_at_cursor() is chosen
        await pilot.press("k", "k", "k", "k")  # to the top, and no further
        assert log.cursor == 0 and log.block_at_cursor() is newer
