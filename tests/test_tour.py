"""What a trader's tour of the cockpit found (issue 13): the full screens' footers name every
key they take, the narrow journal shows the time its rows are sorted by, a trade closed while
the journal is open shows up in it, and the formats agree between screens."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from snapshot_fixtures import cockpit, fixture_core, fixture_snapshot, seed_journal

from bigalpha_tui.app import CockpitApp
from bigalpha_tui.core.journal import read_journal
from bigalpha_tui.core.store import Store
from bigalpha_tui.screens.events import EventsScreen
from bigalpha_tui.screens.journal import JournalScreen
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.journal_table import JournalTable


def tour_app(data_dir: Path) -> CockpitApp:
    seed_journal(data_dir)
    return cockpit(fixture_core(data_dir), fixture_snapshot())


async def open_screen(pilot: Any, key: str) -> Any:
    await pilot.press(key)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return pilot.app.screen


def footer_keys(app: CockpitApp) -> dict[str, str]:
    """key -> description of what the footer shows on the current screen."""
    return {
        key: active.binding.description
        for key, active in app.screen.active_bindings.items()
        if active.binding.show
    }


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["t", "e"])
async def test_the_journal_and_events_footers_say_what_enter_does(tmp_path: Path, key: str) -> None:
    # the table's own (hidden) enter binding shadowed the screen's "enter Detail": the footer
    # listed / and esc only, and a user of k9s looks there for how to open a row
    app = tour_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, key)
        assert isinstance(screen, JournalScreen | EventsScreen)
        keys = footer_keys(app)
        assert keys.get("enter") == "Detail"
        assert "slash" in keys and "escape" in keys
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is not screen  # and enter opens the detail it names


@pytest.mark.anyio
async def test_the_narrow_journal_shows_the_exit_time_its_rows_are_sorted_by(
    tmp_path: Path,
) -> None:
    # at 80 columns the journal showed entry times over rows sorted by exit: 12:30, 12:16,
    # 13:36, 12:49 read as a list out of order
    app = tour_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, "t")
        table = screen.query_one(JournalTable)
        assert table.compact
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[0] == "Exit UTC" and "Entry UTC" not in labels
        shown = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        exits = [fmt.utc_day_minute(e.trade.exit_s) for e in table.entries.values()]
        assert shown == exits
        times = [e.trade.exit_s for e in table.entries.values()]
        assert times == sorted(times, reverse=True)


def test_the_trade_detail_says_true_trend_not_the_enum_name(tmp_path: Path) -> None:
    from bigalpha_tui.core.types import Regime
    from bigalpha_tui.screens.journal import detail_table

    seed_journal(tmp_path)
    entries = read_journal(Store(tmp_path, read_only=True)).entries
    trend = next(e for e in entries if e.trade.entry_regime is Regime.TRUE_TREND)
    cells = [str(cell) for column in detail_table(trend).columns for cell in column.cells]
    assert any(c.startswith("TRUE TREND") for c in cells)
    assert not any("TRUE_TREND" in c for c in cells)


@pytest.mark.anyio
async def test_a_trade_closed_while_the_journal_is_open_shows_up_and_the_cursor_stays(
    tmp_path: Path,
) -> None:
    # the charts re-read the store when the closed-trade count moves; the journal did not,
    # so a trade that closed while it was open never showed until ctrl+r
    app = tour_app(tmp_path)
    reads: list[int] = []
    original = app.read_journal

    def counting() -> Any:
        reads.append(1)
        return original()

    app.read_journal = counting  # type: ignore[method-assign]
    snapshot = fixture_snapshot()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_screen(pilot, "t")
        table = screen.query_one(JournalTable)
        await pilot.press("down", "down")
        highlighted = table.entry_at_cursor()
        assert highlighted is not None
        app.refresh_view()  # a tick, nothing closed
        await pilot.app.workers.wait_for_complete()
        assert len(reads) == 1
        closed = dataclasses.replace(snapshot, closed_trades=snapshot.closed_trades + 1)
        app.snapshot_source = lambda: closed
        app.refresh_view()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert len(reads) == 2
        at = table.entry_at_cursor()
        assert at is not None and at.trade.id == highlighted.trade.id


@pytest.mark.anyio
async def test_every_key_a_full_screens_footer_shows_is_in_help(tmp_path: Path) -> None:
    # ctrl+r (journal, charts) was in their footers but nowhere in `?`
    from bigalpha_tui.screens.help import NAVIGATION_KEYS

    app = tour_app(tmp_path)
    names = {"slash": "/", "escape": "esc", "question_mark": "?"}
    async with app.run_test(size=(120, 40)) as pilot:
        in_help = " ".join(
            [k for k, _ in NAVIGATION_KEYS] + [keys for keys, *_ in app.binding_rows()]
        ).split()
        for key in ("t", "e", "c"):
            await open_screen(pilot, key)
            for shown in footer_keys(app):
                assert names.get(shown, shown) in in_help, (key, shown)
            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is app.main


def wide_journal() -> Any:
    """The seeded journal plus a trade as wide as the simulator's: a tiny BTC size, four
    exit legs, a ten-hour hold, two-digit P&L."""
    from snapshot_fixtures import journal_trades

    from bigalpha_tui.core.journal import Journal, pair_twins
    from bigalpha_tui.core.types import ExitReason

    old, both, pre_log, shadow = journal_trades()
    t = both[0]
    wide = dataclasses.replace(
        t,
        id="L-wide",
        qty=0.000373296,
        exit_s=t.exit_s + 10 * 3600,
        exit_reasons=(ExitReason.T1, ExitReason.T2, ExitReason.T3, ExitReason.STOP),
        pnl_usd=-12.34,
        fees_usd=10.25,
    )
    return Journal(pair_twins([*old, *both, *pre_log, wide], shadow))


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(120, 40), (80, 24), (60, 20)], ids=str)
async def test_the_journal_fits_its_width_without_scrolling_sideways(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    # at 120 columns the twin's P&L fell off the right edge; at 60 the % and the twin's too
    from bigalpha_tui.widgets.journal_table import JournalTable

    app = tour_app(tmp_path)
    journal = wide_journal()
    app.read_journal = lambda: journal  # type: ignore[method-assign]
    async with app.run_test(size=size) as pilot:
        screen = await open_screen(pilot, "t")
        table = screen.query_one(JournalTable)
        assert table.row_count == len(journal.entries)
        assert table.virtual_size.width <= table.size.width
        shown = table.columns_shown()
        for key in ("exit", "symbol", "side", "reasons", "pnl_usd", "twin"):
            assert key in shown


@pytest.mark.anyio
async def test_the_charts_footer_says_the_digits_chart_another_symbol(tmp_path: Path) -> None:
    # the footer said only "esc Back  ^r Reload trades": the digits were in help alone
    app = tour_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, "c")
        keys = footer_keys(app)
        assert keys.get("1") == "Symbol"
        assert [k for k in keys if k.isdigit()] == ["1"]  # one entry for the nine
        assert app.screen.active_bindings["1"].binding.key_display == "1…9"
        await pilot.press("3")
        await pilot.pause()
        title = str(app.screen.query_one("#chart-price").border_title)
        assert title.startswith(fixture_snapshot().symbols[2].symbol)
