"""The cockpit app: pictures of its screens at 80x24 and 120x40, and one pilot test per key.

Every app here runs with the core loop stopped, a manual market clock and a frozen wall
clock (see snapshot_fixtures.py), so the pictures are the same on every run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from snapshot_fixtures import (
    FROZEN_WALL_S,
    START_S,
    cockpit,
    fed_core,
    fixture_core,
    fixture_snapshot,
    seed_journal,
)
from textual import events
from textual.worker import WorkerFailed

from bigalpha_tui.app import CockpitApp, CockpitCommands, golden_hour
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.store import ENGINE_STATE, HURST_CACHE, WHALE_FLOW
from bigalpha_tui.core.types import BlockReason
from bigalpha_tui.screens.confirm import ConfirmDialog
from bigalpha_tui.screens.guards import GuardsScreen
from bigalpha_tui.screens.help import HelpScreen
from bigalpha_tui.screens.journal import JournalScreen, TradeDetail
from bigalpha_tui.widgets.journal_table import JournalTable
from bigalpha_tui.widgets.positions_table import PositionsTable
from bigalpha_tui.widgets.status_bar import StatusBar
from bigalpha_tui.widgets.symbol_card import SymbolCard

SnapCompare = Callable[..., bool]


def fixture_app(data_dir: Path, *, read_only: bool = False) -> CockpitApp:
    return cockpit(fixture_core(data_dir, read_only=read_only), fixture_snapshot())


def status_text(app: CockpitApp) -> str:
    bar = app.main.query_one(StatusBar)
    rendered = bar.render()
    return str(getattr(rendered, "plain", rendered))


def record_commands(core: Core, *kinds: CommandKind) -> list[Command]:
    """Stand-in handlers that accept and remember commands of these kinds."""
    seen: list[Command] = []

    def handler(command: Command) -> str:
        seen.append(command)
        return f"{command.describe()}: done"

    for kind in kinds:
        core.command_handlers[kind] = handler
    return seen


# -- pictures -------------------------------------------------------------------------------


def test_main_screen_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(fixture_app(tmp_path), terminal_size=(80, 24))


def test_main_screen_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(fixture_app(tmp_path), terminal_size=(120, 40))


def test_main_screen_on_the_simulator_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    # a real core fed 150 simulator minutes: changes when the simulator or strategy is tuned
    assert snap_compare(cockpit(fed_core(tmp_path)), terminal_size=(120, 40))


def test_positions_tab_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(
        fixture_app(tmp_path), terminal_size=(80, 24), press=["right_square_bracket"]
    )


def test_guards_tab_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    keys = ["left_square_bracket", "left_square_bracket"]
    assert snap_compare(fixture_app(tmp_path), terminal_size=(80, 24), press=keys)


SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])


@SIZES
def test_help_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(fixture_app(tmp_path), terminal_size=size, press=["question_mark"])


@SIZES
def test_guards_screen(snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(fixture_app(tmp_path), terminal_size=size, press=["g"])


@SIZES
def test_close_confirm_dialog(
    snap_compare: SnapCompare, tmp_path: Path, size: tuple[int, int]
) -> None:
    assert snap_compare(fixture_app(tmp_path), terminal_size=size, press=["1", "x"])


# -- p: pause -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_p_pauses_entries_shows_the_badge_and_p_again_resumes(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    app = cockpit(core)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "PAUSED" not in status_text(app)
        assert footer_keys(app)["p"] == "Pause"
        await pilot.press("p")
        assert core.paused is True
        assert app.main.query_one(StatusBar).status.paused
        assert "PAUSED" in status_text(app)
        assert app.toasts[-1] == ("entries paused (exits keep running)", "information")
        await pilot.pause()
        assert footer_keys(app)["p"] == "Resume"  # the footer says what p does now
        await pilot.press("p")
        assert core.paused is False
        assert "PAUSED" not in status_text(app)
        await pilot.pause()
        assert footer_keys(app)["p"] == "Pause"


def footer_keys(app: CockpitApp) -> dict[str, str]:
    """What the footer shows: key -> description of the binding active now."""
    return {key: active.binding.description for key, active in app.active_bindings.items()
            if active.binding.show and active.enabled}  # fmt: skip


@pytest.mark.anyio
async def test_a_paused_core_blocks_new_entries_with_paused(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    if core.trading is None:
        pytest.skip("this build has no trading loop")
    app = cockpit(core)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("p")
    positions_before = {p.id for p in core.snapshot().positions}
    from itertools import islice

    from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes

    minutes = simulate_minutes(core.source.symbols, 7, DEFAULT_START_MS, SimParams())
    clock: Any = core.clock
    for minute in islice(minutes, 150, 150 + 240):
        for bar in minute:
            core.process_bar(bar)
        clock.advance_to(minute[0].close_s)
    snapshot = core.snapshot()
    assert any(b.reason is BlockReason.PAUSED for b in snapshot.guard_log)
    new = {p.id for p in snapshot.positions} - positions_before
    assert not new


# -- l: learn -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_l_runs_a_learning_cycle_and_toasts_its_result(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    seen = record_commands(core, CommandKind.LEARN)
    app = cockpit(core)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
    assert [c.kind for c in seen] == [CommandKind.LEARN]
    assert app.toasts[-1] == ("learn: done", "information")


@pytest.mark.anyio
async def test_l_with_the_real_learning_loop_toasts_the_cycle(tmp_path: Path) -> None:

    core = fed_core(tmp_path)
    app = cockpit(core)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
    commands = [e for e in core.events if e.kind == "command"]
    assert commands and commands[0].data["command"] == "learn"
    assert app.toasts[-1][0] == commands[0].message


@pytest.mark.anyio
async def test_a_refused_command_is_toasted_as_an_error(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    core.command_handlers.pop(CommandKind.LEARN, None)
    app = cockpit(core)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
    message, severity = app.toasts[-1]
    assert severity == "error" and "refused" in message


# -- g: guards ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("cancel", ["n", "escape"])
async def test_guard_switch_can_be_cancelled(tmp_path: Path, cancel: str) -> None:
    core = fed_core(tmp_path)
    app = cockpit(core)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("g")
        assert isinstance(app.screen, GuardsScreen)
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press(cancel)
        assert isinstance(app.screen, GuardsScreen)
        assert core.guards_enabled[BlockReason.MAX_POSITIONS] is True
        await pilot.press("escape")
        assert app.screen is app.main
    assert all(core.guards_enabled.values())


@pytest.mark.anyio
async def test_guard_switch_goes_through_the_dialog(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    app = cockpit(core)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("g", "j", "j")  # WHALE_CONFLICT is the third guard
        await pilot.press("space")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "WHALE_CONFLICT" in dialog.question and "OFF" in dialog.question
        await pilot.press("y")
        assert core.guards_enabled[BlockReason.WHALE_CONFLICT] is False
        guards = app.screen
        assert isinstance(guards, GuardsScreen)
        assert guards.table.enabled[BlockReason.WHALE_CONFLICT] is False
        await pilot.press("enter", "y")
        assert core.guards_enabled[BlockReason.WHALE_CONFLICT] is True
    assert "guard WHALE_CONFLICT switched OFF" in [m for m, _ in app.toasts]


# -- r: release -----------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("cancel", ["n", "escape"])
async def test_release_asks_first_and_can_be_cancelled(tmp_path: Path, cancel: str) -> None:
    app = fixture_app(tmp_path)
    seen = record_commands(app.core, CommandKind.RELEASE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")  # SOLUSDT, on probation in the fixture
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and "SOLUSDT" in dialog.question
        await pilot.press(cancel)
        assert app.screen is app.main
        assert seen == []
        await pilot.press("r", "y")
    assert seen == [Command(CommandKind.RELEASE, "SOLUSDT")]


@pytest.mark.anyio
async def test_release_of_an_active_symbol_only_explains(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    seen = record_commands(app.core, CommandKind.RELEASE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1", "r")  # BTCUSDT is ACTIVE
        assert app.screen is app.main
    assert seen == []
    assert app.toasts[-1] == ("BTCUSDT is not on probation.", "warning")


@pytest.mark.anyio
async def test_release_acts_on_the_probation_table_row(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    seen = record_commands(app.core, CommandKind.RELEASE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("right_square_bracket", "right_square_bracket")  # probation tab
        assert app.main.focused is not None and app.main.focused.id == "probation-table"
        await pilot.press("j", "j", "j", "j", "r", "y")  # row 5: LINKUSDT
    assert seen == [Command(CommandKind.RELEASE, "LINKUSDT")]


# -- x: close -------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("cancel", ["n", "escape"])
async def test_close_asks_first_and_can_be_cancelled(tmp_path: Path, cancel: str) -> None:
    app = fixture_app(tmp_path)
    seen = record_commands(app.core, CommandKind.CLOSE)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1", "x")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and "LONG" in dialog.question
        await pilot.press(cancel)
        assert seen == []
        await pilot.press("x", "y")
    assert seen == [Command(CommandKind.CLOSE, "BTCUSDT")]


@pytest.mark.anyio
async def test_close_acts_on_the_positions_table_row(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    seen = record_commands(app.core, CommandKind.CLOSE)
    async with app.run_test(size=(120, 40)) as pilot:
        app.main.query_one(PositionsTable).focus()
        await pilot.press("j", "x")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and "AVAXUSDT" in dialog.question
        await pilot.press("y")
    assert seen == [Command(CommandKind.CLOSE, "AVAXUSDT")]


@pytest.mark.anyio
async def test_close_without_a_position_only_explains(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "x")  # SOLUSDT has no position in the fixture
        assert app.screen is app.main
    assert app.toasts[-1] == ("No open position for SOLUSDT.", "warning")


# -- focus and navigation ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_digit_keys_focus_a_symbol_and_point_the_tables_at_it(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        focused = app.main.focused
        assert isinstance(focused, SymbolCard) and focused.symbol == "AVAXUSDT"
        position = app.main.query_one(PositionsTable).position_at_cursor()
        assert position is not None and position.symbol == "AVAXUSDT"
        await pilot.press("9")  # only six symbols: nothing happens
        assert app.main.focused is focused


@pytest.mark.anyio
async def test_a_digit_and_r_typed_together_act_on_that_symbol(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        # both keys in one read from the terminal, as a fast typist or a paste sends them
        app.post_message(events.Key("3", "3"))
        app.post_message(events.Key("r", "r"))
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog) and "SOLUSDT" in dialog.question


@pytest.mark.anyio
async def test_tab_and_arrows_move_focus_between_symbols(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:

        def symbol() -> str:
            focused = app.main.focused
            assert isinstance(focused, SymbolCard)
            return focused.symbol

        assert symbol() == "BTCUSDT"
        await pilot.press("tab")
        assert symbol() == "ETHUSDT"
        await pilot.press("down", "j")
        assert symbol() == "AVAXUSDT"
        await pilot.press("up")
        assert symbol() == "SOLUSDT"
        await pilot.press("k")
        assert symbol() == "ETHUSDT"


@pytest.mark.anyio
async def test_j_and_k_move_the_table_cursor(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.main.query_one(PositionsTable)
        table.focus()
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1


@pytest.mark.anyio
async def test_panel_keys_switch_tabs_on_small_terminals_only(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert not app.main.wide
        await pilot.press("right_square_bracket")
        assert app.main.active_panel == "positions"
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert app.main.active_panel == "events"
        await pilot.resize_terminal(130, 42)
        await pilot.pause()
        assert app.main.wide
        assert app.check_action("step_panel", (1,)) is False


# -- the trade journal ----------------------------------------------------------------------


def journal_app(data_dir: Path) -> CockpitApp:
    seed_journal(data_dir)
    return fixture_app(data_dir)


async def open_journal(pilot: Any) -> None:
    await pilot.press("t")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.anyio
async def test_t_opens_the_journal_and_slash_enter_escape_work(tmp_path: Path) -> None:
    app = journal_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_journal(pilot)
        journal = app.screen
        assert isinstance(journal, JournalScreen)
        table = journal.query_one(JournalTable)
        # the store's history: L-1 and L-2 are only in the log, L-4 only in the recent book
        assert list(table.entries) == ["L-5", "L-4", "L-3", "L-2", "L-1"]
        await pilot.press("slash", *"btc", "enter")
        assert list(table.entries) == ["L-4", "L-1"]
        assert table.has_focus
        await pilot.press("down", "enter")
        detail = app.screen
        assert isinstance(detail, TradeDetail) and detail.entry.trade.id == "L-1"
        assert detail.entry.twin is not None and detail.entry.twin.id == "S-1"
        await pilot.press("escape")
        assert app.screen is journal
        await pilot.press("slash", "escape")  # escape in the search box clears the filter
        assert len(table.entries) == 5 and app.screen is journal
        await pilot.press("escape")
        assert app.screen is app.main


def snap_journal(data_dir: Path, snap_compare: SnapCompare, size: tuple[int, int]) -> bool:
    async def loaded(pilot: Any) -> None:
        await open_journal(pilot)

    return bool(snap_compare(journal_app(data_dir), terminal_size=size, run_before=loaded))


def test_journal_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_journal(tmp_path, snap_compare, (80, 24))


def test_journal_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_journal(tmp_path, snap_compare, (120, 40))


def test_journal_filtered_60x20(snap_compare: SnapCompare, tmp_path: Path) -> None:
    """At 60 columns the summary takes a second row rather than cut the filter off."""

    async def filtered(pilot: Any) -> None:
        await open_journal(pilot)
        await pilot.press("slash", *"btc", "enter")
        await pilot.pause()

    assert snap_compare(journal_app(tmp_path), terminal_size=(60, 20), run_before=filtered)


def test_trade_detail_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def detail(pilot: Any) -> None:
        await open_journal(pilot)
        # the journal beneath the dialog is in the picture: let its table lay out its loaded
        # rows first (once, under a busy full run, the header was caught before its widths)
        await pilot.pause(0.2)
        await pilot.press("down", "down", "enter")
        await pilot.pause()

    assert snap_compare(journal_app(tmp_path), terminal_size=(80, 24), run_before=detail)


def test_trade_detail_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def detail(pilot: Any) -> None:
        await open_journal(pilot)
        # the journal beneath the dialog is in the picture: let its table lay out its loaded
        # rows first (once, under a busy full run, the header was caught before its widths)
        await pilot.pause(0.2)
        await pilot.press("down", "down", "enter")
        await pilot.pause()

    assert snap_compare(journal_app(tmp_path), terminal_size=(120, 40), run_before=detail)


# -- help, palette, quit --------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["question_mark", "f1"])
async def test_help_lists_every_binding(tmp_path: Path, key: str) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(key)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        descriptions = {row[1] for row in help_screen.rows}
        await pilot.press("escape")
        assert app.screen is app.main
    expected = {
        "Pause",
        "Learn",
        "Guards",
        "Journal",
        "Release",
        "Close",
        "Help",
        "Quit",
        "Focus a symbol",
    }
    assert expected <= descriptions


@pytest.mark.anyio
async def test_command_palette_offers_every_action(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)):
        provider = CockpitCommands(app.screen)
        titles = [title for title, _, _ in provider.commands()]
    assert "Pause / resume entries" in titles
    assert "Run the learning cycle now" in titles
    assert "Trade journal…" in titles
    assert "Focus SOLUSDT" in titles


@pytest.mark.anyio
async def test_an_action_chosen_in_the_palette_runs(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    app = cockpit(core)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"pause")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert app.screen is app.main
    assert core.paused is True


@pytest.mark.anyio
async def test_q_quits_saves_state_and_leaves_positions(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    for name in (WHALE_FLOW, HURST_CACHE):
        assert not core.store.path(name).exists()
    open_before = [p.id for p in core.snapshot().positions]
    app = cockpit(core)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    for name in (WHALE_FLOW, HURST_CACHE, ENGINE_STATE):
        assert core.store.path(name).exists()
    assert [p.id for p in core.snapshot().positions] == open_before


# -- read-only ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_read_only_disables_steering_but_not_watching(tmp_path: Path) -> None:
    core = fed_core(tmp_path, read_only=True)
    app = cockpit(core, fixture_snapshot())
    seen = record_commands(core, CommandKind.RELEASE, CommandKind.CLOSE, CommandKind.LEARN)
    async with app.run_test(size=(80, 24)) as pilot:
        for action in ("toggle_pause", "learn", "release", "close_position"):
            assert app.check_action(action, ()) is False  # hidden and refused
        footer = app.export_screenshot()
        assert "Pause" not in footer and "Resume" not in footer and "Learn" not in footer
        palette = [title for title, _, _ in CockpitCommands(app.screen).commands()]
        assert "Pause / resume entries" not in palette and "Guards…" in palette
        await pilot.press("p", "l", "3", "r", "1", "x")
        assert app.screen is app.main
        assert core.paused is False
        assert "READ-ONLY" in status_text(app)
        await pilot.press("g")
        assert isinstance(app.screen, GuardsScreen)
        await pilot.press("enter", "space")
        assert isinstance(app.screen, GuardsScreen)
    assert seen == []
    assert all(core.guards_enabled.values())


# -- heartbeat, core worker, terminal ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_stuck_core_shows_a_stale_heartbeat(tmp_path: Path) -> None:
    core = fed_core(tmp_path)
    app = cockpit(core, wall=lambda: FROZEN_WALL_S + 3600)
    async with app.run_test(size=(80, 24)):
        assert app.main.query_one(StatusBar).status.stale
        assert "STALE" in status_text(app)


@pytest.mark.anyio
async def test_the_core_runs_in_a_worker_until_its_duration(tmp_path: Path) -> None:
    core = fed_core(tmp_path, minutes=0)
    app = CockpitApp(core, duration_s=600.0, wall_clock=lambda: FROZEN_WALL_S)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        if app.core_worker is not None:
            await app.core_worker.wait()
        await pilot.pause()
    assert core.heartbeat.bars_processed == 10 * len(core.source.symbols)
    assert app.return_code == 0
    assert core.store.path(ENGINE_STATE).exists()


@pytest.mark.anyio
async def test_a_crashed_core_is_shown_not_hidden(tmp_path: Path) -> None:
    core = fed_core(tmp_path, minutes=5)

    async def crash(duration_s: float | None = None) -> None:
        raise RuntimeError("boom")

    core.run = crash  # type: ignore[method-assign]
    app = CockpitApp(core, wall_clock=lambda: FROZEN_WALL_S)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.core_worker is not None
        with pytest.raises(WorkerFailed):
            await app.core_worker.wait()
        await pilot.pause()
        assert "CORE STOPPED" in status_text(app)
    assert any("boom" in message for message, _ in app.toasts)


@pytest.mark.anyio
async def test_no_color_keeps_every_meaning_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        await pilot.pause()
        screen = app.export_screenshot().replace("&#160;", " ")
    assert os.environ["NO_COLOR"] == "1"
    for word in ("HIGH", "MOD", "LOW", "TRUE TREND", "NOISE", "RANDOM", "PROBATION"):
        assert word in screen


def test_golden_hour_fallback_follows_the_configured_window() -> None:
    config = Config()
    assert golden_hour(START_S, config) == (False, 30 * 60)  # 08:30 UTC
    assert golden_hour(START_S + 3600, config) == (True, 6.5 * 3600)  # 09:30 UTC
    assert golden_hour(START_S + 7.5 * 3600, config) == (False, 17 * 3600)  # 16:00 UTC


def test_golden_hour_fallback_wraps_a_window_past_midnight() -> None:
    """The cockpit had its own window code that ignored windows past midnight."""
    gates = dataclasses.replace(Config().gates, golden_hour_start="22:00", golden_hour_end="02:00")
    config = dataclasses.replace(Config(), gates=gates)
    midnight = START_S - 8.5 * 3600  # 00:00 UTC of the sim's first day
    assert golden_hour(midnight + 3600, config) == (True, 3600)  # 01:00: open, closes at 02:00
    assert golden_hour(midnight - 1800, config) == (True, 2.5 * 3600)  # 23:30
    assert golden_hour(midnight + 3 * 3600, config) == (False, 19 * 3600)  # 03:00


# -- what the operator sees around dialogs and focus ----------------------------------------


@pytest.mark.anyio
async def test_the_status_line_stays_live_under_a_dialog(tmp_path: Path) -> None:
    """A dialog over the main screen must not freeze the clock and heartbeat behind it."""
    snapshot = fixture_snapshot()
    current = {"snapshot": snapshot}
    app = CockpitApp(
        fixture_core(tmp_path),
        run_core=False,
        wall_clock=lambda: FROZEN_WALL_S,
        snapshot_source=lambda: current["snapshot"],
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "PAUSED" not in status_text(app)
        current["snapshot"] = dataclasses.replace(snapshot, paused=True)
        app.refresh_view()
        await pilot.pause()
        assert "PAUSED" in status_text(app)
        assert isinstance(app.screen, HelpScreen)


@pytest.mark.anyio
async def test_moving_between_cards_moves_the_table_cursors_with_them(tmp_path: Path) -> None:
    """The highlighted position is always the one `x` closes."""
    app = fixture_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.main.query_one(PositionsTable)
        await pilot.press("1")
        first = table.position_at_cursor()
        assert first is not None and first.symbol == "BTCUSDT"
        await pilot.press("j", "j", "j")  # BTC -> ETH -> SOL (no position) -> AVAX
        focused = app.main.focused
        assert isinstance(focused, SymbolCard) and focused.symbol == "AVAXUSDT"
        position = table.position_at_cursor()
        assert position is not None and position.symbol == "AVAXUSDT"


@pytest.mark.anyio
async def test_the_palette_has_one_quit_and_it_is_ours(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)):
        system = [command.title for command in app.get_system_commands(app.screen)]
        ours = [title for title, _, _ in CockpitCommands(app.screen).commands()]
    assert "Quit" not in system
    assert [t for t in ours if t.startswith("Quit")] == ["Quit (state is saved, positions stay)"]


@pytest.mark.anyio
async def test_the_positions_tab_fits_80_columns(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("right_square_bracket")
        table = app.main.query_one(PositionsTable)
        await pilot.pause()
        assert table.compact and table.virtual_size.width <= table.size.width
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert not table.compact and table.with_stop
        assert table.virtual_size.width <= table.size.width


@pytest.mark.anyio
async def test_the_highlighted_symbols_probation_reason_is_shown_in_full(tmp_path: Path) -> None:
    from textual.widgets import Static

    app = fixture_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")  # SOLUSDT, on probation in the fixture
        await pilot.pause()
        detail = app.main.query_one("#probation-detail", Static)
        assert str(detail.render()).startswith("SOLUSDT PROBATION: GH PF 0.62 < 0.80")


@pytest.mark.anyio
async def test_a_symbol_without_a_position_highlights_no_position_row(tmp_path: Path) -> None:
    app = fixture_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.main.query_one(PositionsTable)
        await pilot.press("1")
        assert table.show_cursor
        await pilot.press("3")  # SOLUSDT has no position: no stale row stays lit
        assert not table.show_cursor
        await pilot.press("x")
        assert app.screen is app.main
        table.focus()
        await pilot.pause()
        assert table.show_cursor


class RefusingSource:
    """A source that finds bad input at start, as Binance does for an unlisted symbol."""

    name = "binance"
    symbols = ("BTCUSD",)

    async def bars(self, resume_after_ms: int | None = None) -> Any:
        from bigalpha_tui.core.errors import ConfigError

        raise ConfigError("--symbols BTCUSD is not listed on Binance USD-M (did you mean BTCUSDT?)")
        yield  # an async generator

    def health(self) -> Any:
        from bigalpha_tui.core.sources.base import SourceHealth

        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None


@pytest.mark.anyio
async def test_bad_input_found_at_start_ends_the_cockpit_with_status_2(tmp_path: Path) -> None:
    from bigalpha_tui.core.clock import SimClock
    from bigalpha_tui.core.store import Store

    core = Core(Config(), RefusingSource(), SimClock(1_767_600_000.0), Store(tmp_path))  # type: ignore[arg-type]
    app = CockpitApp(core)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(50):
            await pilot.pause(0.02)
            if app.return_code is not None:
                break
    assert app.return_code == 2
    assert "did you mean BTCUSDT?" in app.fatal_message


# -- h: its label, halted or not, and paper ---------------------------------------------------


def h_row(app: CockpitApp) -> tuple[str, str, bool]:
    """The help screen's row for `h`: (description, tooltip, enabled)."""
    (row,) = [(d, t, e) for keys, d, t, e in app.binding_rows() if keys.split() == ["h"]]
    return row


@pytest.mark.anyio
async def test_h_reads_right_halted_or_not_and_is_no_live_key_on_paper(tmp_path: Path) -> None:
    from bigalpha_tui.core.snapshot import ExecutionView
    from bigalpha_tui.screens.execution import ExecutionScreen

    state = {"snapshot": fixture_snapshot()}  # paper, nothing halted
    app = cockpit(fixture_core(tmp_path))
    app.snapshot_source = lambda: state["snapshot"]
    palette = "Halt and exchange detail…"
    async with app.run_test(size=(120, 40)) as pilot:
        description, tooltip, enabled = h_row(app)
        assert description != "Halted" and not enabled  # paper: h has nothing to show
        assert "paper" in tooltip
        assert palette not in [t for t, _, _ in CockpitCommands(app.screen).commands()]
        await pilot.press("h")
        assert app.screen is app.main
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ("h", "Halt detail", tooltip, False) in app.screen.rows
        await pilot.press("escape")

        halted = "disk full: new entries halted until the store writes again (exits go on)"
        state["snapshot"] = dataclasses.replace(fixture_snapshot(), entries_halted_reason=halted)
        assert h_row(app)[0] == "Halted" and h_row(app)[2]  # paper halts when the store fails
        await pilot.press("h")
        assert isinstance(app.screen, ExecutionScreen)
        await pilot.press("escape")

        testnet = ExecutionView(mode="testnet", base_url="https://testnet.binancefuture.com")
        state["snapshot"] = dataclasses.replace(fixture_snapshot(), execution=testnet)
        description, _, enabled = h_row(app)
        assert description == "Exchange" and enabled  # nothing halted: not "Halted"
        assert palette in [t for t, _, _ in CockpitCommands(app.screen).commands()]
        await pilot.press("h")
        assert isinstance(app.screen, ExecutionScreen)


# -- keys over a full screen ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("opener", ["c", "t", "e"])
async def test_pause_learn_and_help_answer_over_a_full_screen(tmp_path: Path, opener: str) -> None:
    core = fed_core(tmp_path)
    app = cockpit(core)
    seen = record_commands(core, CommandKind.LEARN)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(opener, "p")  # typed together: the second key is not lost
        await app.workers.wait_for_complete()
        await pilot.pause()
        full = app.screen
        assert full is not app.main
        assert core.paused is True
        assert full.query_one(StatusBar).status.paused  # its own status line says so
        keys = footer_keys(app)
        assert keys["p"] == "Resume" and keys["l"] == "Learn" and keys["question_mark"] == "Help"
        # the footer lists only keys that answer here
        assert not {"g", "r", "x"} & set(keys), keys
        await pilot.press("g", "x", "r", "l")
        assert app.screen is full and len(seen) == 1
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = {description: enabled for _, description, _, enabled in app.screen.rows}
        assert rows["Resume"] and rows["Learn"] and rows["Help"]
        assert not rows["Guards"] and not rows["Close"] and not rows["Release"]
        await pilot.press("escape")
        assert app.screen is full
        await pilot.press("p")
        assert core.paused is False


# -- dialogs, the palette, narrow lists, fast typing (issue 13 leftovers) ---------------------


def screen_rows(app: CockpitApp) -> list[str]:
    """The terminal's rows as the user sees them (dialogs over the screen beneath)."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    text_node = r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>'
    for match in re.finditer(text_node, svg):
        x, y, text = float(match[1]), float(match[2]), html.unescape(match[3])
        rows.setdefault(y, []).append((x, text))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(round(x / 12.2)) + text
        lines.append(line.replace("\xa0", " "))
    return lines


def bottom_row_words(app: CockpitApp) -> str:
    return " ".join(screen_rows(app)[-1].split())


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("keys", "dialog_words", "beneath_words"),
    [
        (["1", "x"], ["y Yes", "n No"], ["Pause", "Quit"]),  # confirm over the main screen
        (["question_mark"], ["esc Close"], ["Pause", "Quit"]),  # help
        (["e", "enter"], ["esc Back"], ["Filter", "Detail"]),  # an event in full
        (["t", "enter"], ["esc Back"], ["Filter", "Detail", "Reload"]),  # a trade in full
        (["g"], ["Switch guard", "esc Back"], ["Pause", "Quit"]),  # guards
    ],
    ids=["confirm", "help", "event-detail", "trade-detail", "guards"],
)
async def test_a_dialogs_footer_lists_its_own_keys_not_the_screens_beneath(
    tmp_path: Path, keys: list[str], dialog_words: list[str], beneath_words: list[str]
) -> None:
    app = journal_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in keys:
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause()
        assert app.screen.is_modal
        footer = bottom_row_words(app)
        for words in dialog_words:
            assert words in footer, footer
        for word in beneath_words:
            assert word not in footer, footer


@pytest.mark.anyio
async def test_the_palette_lists_the_cockpits_commands_before_textuals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.command import CommandList, CommandPalette

    # the palette asks its providers in the order of a set, which varies from run to run:
    # ask any other provider first, as an unlucky run does
    providers = CommandPalette._provider_classes.fget  # type: ignore[attr-defined]
    monkeypatch.setattr(
        CommandPalette,
        "_provider_classes",
        property(lambda self: sorted(providers(self), key=lambda p: p is CockpitCommands)),
    )
    app = fixture_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause(0.5)
        options = app.screen.query_one(CommandList)
        titles = [
            str(getattr(options.get_option_at_index(i).prompt, "plain", "")).split("\n")[0]
            for i in range(options.option_count)
        ]
        ours = [title for title, _, _ in CockpitCommands(app.main).commands()]
    system = [t for t in titles if t not in ours]
    assert system, titles  # Theme, Screenshot… are still there
    assert titles[: len(ours)] == ours, titles


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(60, 20), (80, 24), (120, 40)], ids=["60", "80", "120"])
async def test_the_journal_summary_is_never_cut(tmp_path: Path, size: tuple[int, int]) -> None:
    app = journal_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await open_journal(pilot)
        await pilot.press("slash", *"btc", "enter")
        await pilot.pause()
        text = " ".join(" ".join(screen_rows(app)[1:4]).split())
    for part in ("2 trades", "2 won", "net ", "fees $", "twins +$", "filter BTC"):
        assert part in text, text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("opener", "expected"), [("e", "EventsScreen"), ("t", "JournalScreen")], ids=["e", "t"]
)
async def test_keys_typed_while_a_screen_opens_land_on_it(
    tmp_path: Path, opener: str, expected: str
) -> None:
    app = journal_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        # one read from the terminal: the screen is still being built when `/sol` arrives
        for key, char in [(opener, opener), ("slash", "/"), ("s", "s"), ("o", "o"), ("l", "l")]:
            app.post_message(events.Key(key, char))
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        screen = app.screen
        assert type(screen).__name__ == expected
        assert getattr(screen, "query_text", None) == "sol"
        assert screen.focused is not None and screen.focused.id.endswith("-search")


@pytest.mark.anyio
async def test_a_dialog_opened_by_a_burst_gets_the_rest_of_it(tmp_path: Path) -> None:
    """`x` then `n` in one read: the question is asked and the `n` answers it."""
    core = fed_core(tmp_path)
    app = cockpit(core, fixture_snapshot())
    seen = record_commands(core, CommandKind.CLOSE)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("1", "x", "n", "g"):
            app.post_message(events.Key(key, key))
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, GuardsScreen)  # n closed the dialog, g opened guards
    assert seen == []


@pytest.mark.anyio
async def test_a_search_typed_fast_on_an_open_list_runs_no_cockpit_key(tmp_path: Path) -> None:
    """`/sol` in one read on the events screen: all of `sol` goes into the search box; the
    `l` no longer reaches the list under it and from there the cockpit's Learn."""
    core = fed_core(tmp_path)
    app = cockpit(core)
    seen = record_commands(core, CommandKind.LEARN)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await pilot.pause()
        for key, char in [("slash", "/"), ("s", "s"), ("o", "o"), ("l", "l")]:
            app.post_message(events.Key(key, char))
        await pilot.pause()
        await pilot.pause()
        assert getattr(app.screen, "query_text", None) == "sol"
    assert seen == []


@pytest.mark.anyio
@pytest.mark.parametrize("opener", ["t", "e", "c"])
async def test_at_60_columns_a_full_screens_footer_keeps_help_and_back(
    tmp_path: Path, opener: str
) -> None:
    app = journal_app(tmp_path)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press(opener)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.screen is not app.main
        footer = bottom_row_words(app)
    assert "esc Back" in footer and "? Help" in footer, footer


@pytest.mark.anyio
async def test_the_palette_still_finds_textuals_commands_by_name(tmp_path: Path) -> None:
    from textual.command import CommandList

    app = fixture_app(tmp_path)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("ctrl+p", *"screensh")
        await pilot.pause(0.5)
        options = app.screen.query_one(CommandList)
        first = options.get_option_at_index(0).prompt
        assert "Screenshot" in str(getattr(first, "plain", first))
