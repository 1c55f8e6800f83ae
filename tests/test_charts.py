"""The charts screen (`c`): P&L live against shadow over the session and the store's history,
the focused symbol's price with its trades marked, and its H with the regime band."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from snapshot_fixtures import (
    START_S,
    cockpit,
    fed_core,
    fixture_core,
    fixture_snapshot,
    journal_trades,
    seed_journal,
)

from bigalpha_tui.app import CockpitApp, CockpitCommands
from bigalpha_tui.core import snapshot_codec
from bigalpha_tui.core.charts import (
    MarkKind,
    pnl_curve,
    price_history,
    saved_closes,
    trade_marks,
)
from bigalpha_tui.core.config import Config, UIConfig, from_dict
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.journal import pair_twins
from bigalpha_tui.core.snapshot import Snapshot
from bigalpha_tui.core.types import Side
from bigalpha_tui.screens.charts import ChartsScreen
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.braille_chart import BrailleChart, ChartSpec, Series

SnapCompare = Callable[..., bool]
NOW_S = START_S + 4 * 3600  # the fixture snapshot's market time
SESSION_START_S = NOW_S - 2.5 * 3600


def journal_entries() -> Any:
    old, both, pre_log, shadow = journal_trades()
    return pair_twins([*old, *both, *pre_log], shadow)


# -- core: the data behind the charts -------------------------------------------------------


def test_pnl_curve_sums_live_trades_and_their_twins_in_exit_order() -> None:
    curve = pnl_curve(journal_entries())
    # exits: L-1 (+6.4, twin +7.9), L-2 (-3.1, -2.5), L-3 (+2.2, +2.9), L-4 (+1.35, +1.6),
    # L-5 (-0.9, no twin closed)
    assert curve.trades == 5
    assert list(curve.times_s) == sorted(curve.times_s)
    assert [round(v, 2) for v in curve.live_usd] == [6.4, 3.3, 5.5, 6.85, 5.95]
    assert [round(v, 2) for v in curve.shadow_usd] == [7.9, 5.4, 8.3, 9.9, 9.9]
    assert curve.untwinned == 1


def test_session_curve_keeps_only_trades_closed_since_the_start() -> None:
    curve = pnl_curve(journal_entries(), since_s=SESSION_START_S)
    assert curve.trades == 3  # L-3, L-4, L-5
    assert round(curve.live_total_usd, 2) == 2.65
    assert round(curve.shadow_total_usd, 2) == 4.5
    assert pnl_curve((), since_s=SESSION_START_S).live_total_usd == 0.0


def test_trade_marks_are_the_symbols_fills_inside_the_window() -> None:
    positions = fixture_snapshot().positions
    marks = trade_marks(journal_entries(), positions, "BTCUSDT", NOW_S - 3 * 3600, NOW_S)
    # L-1 (50 h ago) is outside; L-4 short entered and left; p-1 long is still open
    assert [(m.kind, m.side) for m in marks] == [
        (MarkKind.ENTRY, Side.SHORT),
        (MarkKind.EXIT, Side.SHORT),
        (MarkKind.ENTRY, Side.LONG),
    ]
    assert marks[-1].price == 94_120.5
    assert trade_marks(journal_entries(), positions, "DOTUSDT", 0.0, NOW_S) == ()


def test_the_snapshot_carries_the_last_closes_of_each_symbol(tmp_path: Path) -> None:
    config = Config(ui=UIConfig(chart_bars=30))
    core = fed_core(tmp_path, minutes=45, config=config)
    view = core.snapshot().symbols[0]
    assert len(view.closes) == 30
    times = [t for t, _ in view.closes]
    assert times == sorted(times) and times[-1] - times[0] == 29 * 60
    assert view.closes[-1][1] == view.price
    # an attached cockpit gets them too
    decoded = snapshot_codec.decode(Snapshot, snapshot_codec.to_json(core.snapshot()))
    assert decoded.symbols[0].closes == view.closes


def test_chart_bars_has_a_validated_range() -> None:
    with pytest.raises(ConfigError, match="chart_bars"):
        from_dict({"ui": {"chart_bars": 5}})


# -- the widget -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_chart_redraws_only_when_its_data_changes() -> None:
    from textual.app import App, ComposeResult

    spec = ChartSpec(series=(Series((0.0, 1.0, 2.0), (1.0, 3.0, 2.0), "live"),))

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield BrailleChart(spec)

    app = One()
    async with app.run_test(size=(40, 8)) as pilot:
        chart = app.query_one(BrailleChart)
        await pilot.pause()
        built = chart.builds
        assert built >= 1
        chart.spec = dataclasses.replace(spec)  # equal data: nothing to redraw
        chart.refresh()
        await pilot.pause()
        assert chart.builds == built
        chart.spec = ChartSpec(series=(Series((0.0, 1.0), (1.0, 5.0), "live"),))
        await pilot.pause()
        assert chart.builds == built + 1
        text = "".join(s.text for s in (chart.render_line(y) for y in range(8)))
        assert any("\u2800" < ch <= "\u28ff" for ch in text)  # drawn in braille


# -- the screen -----------------------------------------------------------------------------


def snapshot_with_prices() -> Snapshot:
    """The fixture snapshot with four hours of closes for every symbol."""
    base = fixture_snapshot()
    symbols = []
    for view in base.symbols:
        price = view.price or 1.0
        closes = tuple(
            (
                NOW_S - (239 - i) * 60.0,
                round(price * (1 + 0.004 * math.sin(i / 19) - 0.003 * math.cos(i / 7)), 4),
            )
            for i in range(240)
        )
        symbols.append(dataclasses.replace(view, closes=closes))
    return dataclasses.replace(base, symbols=tuple(symbols))


def charts_app(data_dir: Path) -> CockpitApp:
    """The cockpit over a core that started at SESSION_START_S (its snapshot says so)."""
    seed_journal(data_dir)
    snapshot = snapshot_with_prices()
    session = dataclasses.replace(snapshot.session, started_s=SESSION_START_S)
    return cockpit(fixture_core(data_dir), dataclasses.replace(snapshot, session=session))


async def open_charts(pilot: Any) -> ChartsScreen:
    await pilot.press("c")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ChartsScreen)
    return screen


@pytest.mark.anyio
async def test_c_opens_the_charts_and_escape_or_q_goes_back(tmp_path: Path) -> None:
    app = charts_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        for back in ("escape", "q", "c"):
            charts = await open_charts(pilot)
            session, history = charts.chart("session"), charts.chart("history")
            assert str(history.border_title) == "P&L all history · 5 trades"
            # since the bot started (at 10:00 here), as the session line counts
            assert str(session.border_title) == "P&L bot up since 10:00 · 3 trades"
            assert history.spec.series[1].ys[-1] == pytest.approx(5.95)  # live, net of fees
            await pilot.press(back)
            assert app.screen is app.main
        assert app.core.paused is False  # q left the charts, it did not stop the bot


@pytest.mark.anyio
async def test_a_digit_on_the_charts_charts_that_symbol(tmp_path: Path) -> None:
    app = charts_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        charts = await open_charts(pilot)
        price = charts.chart("price")
        assert str(price.border_title).startswith("BTCUSDT price")
        btc_glyphs = [m.glyph for m in price.spec.marks]
        assert btc_glyphs == ["▼", "×", "▲"]  # L-4 short in and out, p-1 long open
        await pilot.press("4")
        await pilot.pause()
        assert str(price.border_title).startswith("AVAXUSDT price")
        assert price.spec.series[0].ys[-1] == snapshot_with_prices().symbols[3].closes[-1][1]
        assert str(charts.chart("hurst").border_title) == "AVAXUSDT Hurst H 0.57"
        await pilot.press("escape")
        assert app.main.focused_symbol() == "AVAXUSDT"  # the main screen follows
        await open_charts(pilot)
        assert str(app.screen.query_one("#chart-price").border_title).startswith("AVAXUSDT")


@pytest.mark.anyio
async def test_the_band_comes_from_the_config(tmp_path: Path) -> None:
    app = charts_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        charts = await open_charts(pilot)
        hurst = charts.chart("hurst").spec
        config = app.config.hurst
        assert hurst.band == (config.noise_below, config.trend_above)


@pytest.mark.anyio
async def test_a_tick_that_changed_nothing_charted_repaints_nothing(tmp_path: Path) -> None:
    app = charts_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        charts = await open_charts(pilot)
        price = charts.chart("price")
        refreshes: list[int] = []
        original = price.refresh

        def counting(*args: Any, **kwargs: Any) -> Any:
            refreshes.append(1)
            return original(*args, **kwargs)

        price.refresh = counting  # type: ignore[method-assign]
        snapshot = app.snapshot_source()
        health = dataclasses.replace(snapshot.source, errors=3)  # the source moved, not BTC
        charts.show_snapshot(dataclasses.replace(snapshot, source=health))
        await pilot.pause()
        assert refreshes == []
        btc = snapshot.symbols[0]
        moved = dataclasses.replace(btc, closes=(*btc.closes[1:], (NOW_S + 60, 95_000.0)))
        charts.show_snapshot(dataclasses.replace(snapshot, symbols=(moved, *snapshot.symbols[1:])))
        await pilot.pause()
        assert refreshes
        assert price.spec.series[0].ys[-1] == 95_000.0


@pytest.mark.anyio
async def test_a_new_closed_trade_reloads_the_curves(tmp_path: Path) -> None:
    app = charts_app(tmp_path)
    reads: list[int] = []
    original = app.read_journal

    def counting() -> Any:
        reads.append(1)
        return original()

    app.read_journal = counting  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        charts = await open_charts(pilot)
        snapshot = snapshot_with_prices()
        charts.show_snapshot(dataclasses.replace(snapshot))  # a tick, nothing closed
        await pilot.app.workers.wait_for_complete()
        assert len(reads) == 1
        charts.show_snapshot(dataclasses.replace(snapshot, closed_trades=12))
        await pilot.app.workers.wait_for_complete()
        assert len(reads) == 2


@pytest.mark.anyio
async def test_charts_are_in_the_palette_and_in_help(tmp_path: Path) -> None:
    app = charts_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = [title for title, _, _ in CockpitCommands(app.screen).commands()]
        assert "Charts…" in titles
        rows = {description: keys for keys, description, _, _ in app.binding_rows()}
        assert rows["Charts"] == "c"
        await pilot.press("ctrl+p", *"charts", "enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, ChartsScreen)


def snap_charts(data_dir: Path, snap_compare: SnapCompare, size: tuple[int, int]) -> bool:
    async def loaded(pilot: Any) -> None:
        await open_charts(pilot)

    return bool(snap_compare(charts_app(data_dir), terminal_size=size, run_before=loaded))


def test_charts_80x24(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_charts(tmp_path, snap_compare, (80, 24))


def test_charts_120x40(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_charts(tmp_path, snap_compare, (120, 40))


def test_screens_are_imported_on_first_use_not_at_start() -> None:
    # the first frame waits for every import: the charts, journal and help come on their key
    code = (
        "import sys, bigalpha_tui.app; "
        "print(sorted(m for m in sys.modules if m.startswith('bigalpha_tui.screens.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    assert "bigalpha_tui.screens.main" in loaded
    for lazy in ("charts", "journal", "help"):
        assert f"bigalpha_tui.screens.{lazy}'" not in loaded


@pytest.mark.anyio
async def test_the_main_screen_is_not_drawn_behind_the_charts(tmp_path: Path) -> None:
    # Textual repaints what changed on the screen below through the one on top: a main
    # screen drawn every tick behind the charts rewrote them every second (14.6 KB/s)
    from bigalpha_tui.widgets.status_bar import StatusBar

    app = charts_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.main.query_one(StatusBar)
        await open_charts(pilot)
        before = bar.status
        app.core.clock.advance_to(app.core.clock.now() + 90)
        app.refresh_view()
        assert bar.status == before
        await pilot.press("escape")
        await pilot.pause()
        assert bar.status.market_time_s == before.market_time_s + 90  # caught up on return


@pytest.mark.anyio
async def test_an_attached_cockpits_session_is_the_bots_not_the_cockpits(
    tmp_path: Path,
) -> None:
    # the bot started at START_S (its snapshot says so); the cockpit opened at NOW_S: the
    # session curve counts what the session line counts, the trades closed since the bot began
    from bigalpha_tui.attach import AttachApp, RemoteClock, RemoteCore

    seed_journal(tmp_path)
    remote = RemoteCore(tmp_path, fed_core(tmp_path, 0).config, clock=RemoteClock(lambda: 0.0))
    fields = snapshot_codec.encode_fields(snapshot_with_prices())
    remote.apply_line(snapshot_codec.dumps({"t": "snap", "now": NOW_S, "d": {"set": fields}}))
    remote.connected, remote.attaches = True, 1
    app = AttachApp(remote, run_core=False)
    assert remote.snapshot().session.started_s == START_S < app.started_market_s
    since_bot = pnl_curve(journal_entries(), since_s=START_S).trades
    assert since_bot > pnl_curve(journal_entries(), since_s=NOW_S).trades
    async with app.run_test(size=(80, 24)) as pilot:
        charts = await open_charts(pilot)
        assert charts.session_start_s == START_S
        assert str(charts.chart("session").border_title) == (
            f"P&L bot up since 08:30 · {since_bot} trades"
        )


def status_line(bar: Any) -> str:
    return "".join(s.text for s in bar.render_line(0))


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["c", "t", "e"])
async def test_a_full_screen_has_the_status_line_so_a_halt_shows_there(
    tmp_path: Path, key: str
) -> None:
    # charts, journal and events hide the main screen: without a status line of their own a
    # halt, an outage or a stale heartbeat went unseen while one was open
    from bigalpha_tui.widgets.status_bar import StatusBar

    app = charts_app(tmp_path)
    snapshot = app.snapshot_source()
    async with app.run_test(size=(80, 24)) as pilot:
        main_bar = app.main.query_one(StatusBar)
        await pilot.press(key)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert screen is not app.main
        bar = screen.query_one(StatusBar)
        assert "UTC" in status_line(bar) and "HALTED" not in status_line(bar)
        before = main_bar.status
        halted = dataclasses.replace(snapshot, entries_halted_reason="daily loss")
        app.snapshot_source = lambda: halted
        app.core.clock.advance_to(app.core.clock.now() + 90)
        app.refresh_view()
        await pilot.pause()
        assert "HALTED daily loss" in status_line(bar)
        assert bar.status.market_time_s == pytest.approx(before.market_time_s + 90)
        assert main_bar.status == before  # the main screen stays undrawn behind it
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.main
        assert main_bar.status.halted_reason == "daily loss"  # caught up on return


@pytest.mark.anyio
async def test_a_dialog_over_a_full_screen_does_not_draw_the_main_screen(tmp_path: Path) -> None:
    # journal -> enter (a dialog): the main screen is two screens down, unseen; drawing it
    # there repainted through both
    from bigalpha_tui.screens.journal import TradeDetail
    from bigalpha_tui.widgets.status_bar import StatusBar

    app = charts_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        main_bar = app.main.query_one(StatusBar)
        await pilot.press("t")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        journal_bar = app.screen.query_one(StatusBar)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TradeDetail)
        before = main_bar.status
        app.core.clock.advance_to(app.core.clock.now() + 90)
        app.refresh_view()
        assert main_bar.status == before
        assert journal_bar.status.market_time_s == pytest.approx(before.market_time_s + 90)


# -- the price after a restart ----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_restarted_bot_charts_the_price_it_saw_before_at_once(tmp_path: Path) -> None:
    first = fed_core(tmp_path)  # 150 minutes, then stopped: its state saved
    first.checkpoint()
    before = {v.symbol: v.closes for v in first.snapshot().symbols}
    window = first.config.hurst.window
    again = fed_core(tmp_path, minutes=0)  # restarted, no bar caught up yet
    assert all(v.closes == () for v in again.snapshot().symbols)
    app = cockpit(again)
    async with app.run_test(size=(120, 40)) as pilot:
        charts = await open_charts(pilot)
        for key in ("1", "3"):
            await pilot.press(key)
            await pilot.pause()
            symbol = charts.symbol
            assert symbol is not None
            series = charts.chart("price").spec.series[0]
            # the closes the saved Hurst window stands on: its last close and one per return
            expected = before[symbol][-(window + 1) :]
            assert series.xs == tuple(t for t, _ in expected)
            assert series.ys == pytest.approx([p for _, p in expected], rel=1e-9)
            title = str(charts.chart("price").border_title)
            assert title == f"{symbol} price {fmt.price(expected[-1][1])}"


def test_the_saved_closes_go_before_the_snapshots_and_a_bad_state_is_left_out() -> None:
    saved = ((60.0, 1.0), (120.0, 2.0), (180.0, 3.0))
    live = ((180.0, 3.5), (240.0, 4.0))  # the snapshot's own close wins where both have one
    assert price_history(live, saved, 10) == ((60.0, 1.0), (120.0, 2.0), (180.0, 3.5), (240.0, 4.0))
    assert price_history(live, saved, 3) == ((120.0, 2.0), (180.0, 3.5), (240.0, 4.0))
    assert price_history((), saved, 10) == saved
    good = {"last_close": 100.0, "last_open_ms": 60_000, "returns": [math.log(1.25)]}
    doc = {
        "symbols": {
            "GOOD": good,
            "NAN": {**good, "last_close": "nan"},
            "TEXT": {**good, "last_open_ms": "soon"},
            "HUGE": {**good, "returns": [-1e308]},  # the walk back stops at the first bad price
            "NONE": None,
        }
    }
    closes = saved_closes(doc)
    assert closes["GOOD"] == ((60.0, pytest.approx(80.0)), (120.0, 100.0))
    assert closes["HUGE"] == ((120.0, 100.0),)
    assert set(closes) == {"GOOD", "HUGE"}
    assert saved_closes(None) == {} and saved_closes({"symbols": []}) == {}
