"""The cockpit widgets on their own: what each draws for a given value, and that tables are
updated cell by cell instead of being cleared."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text
from snapshot_fixtures import fixture_snapshot
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import DataTable

from bigalpha_tui.core.flow import FlowState
from bigalpha_tui.core.snapshot import PositionView
from bigalpha_tui.core.types import (
    BlockReason,
    Conviction,
    ExitReason,
    Regime,
    Side,
    SymbolState,
    WhaleDirection,
)
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.guard_log import GuardLog
from bigalpha_tui.widgets.guard_summary import GuardSummary
from bigalpha_tui.widgets.hurst_sparkline import HurstSparkline
from bigalpha_tui.widgets.positions_table import PositionsTable, exit_cell
from bigalpha_tui.widgets.probation_table import ProbationTable
from bigalpha_tui.widgets.status_bar import StatusBar, StatusInfo
from bigalpha_tui.widgets.table_sync import sync_rows
from bigalpha_tui.widgets.whale_gauge import WhaleGauge


class Harness(App[None]):
    """One widget alone on a screen."""

    def __init__(self, widget: Widget) -> None:
        super().__init__()
        self.widget = widget

    def compose(self) -> ComposeResult:
        yield self.widget


def plain(widget: Widget) -> str:
    rendered = widget.render()
    assert isinstance(rendered, Text)
    return rendered.plain


# -- formatting -------------------------------------------------------------------------


def test_profit_factor_shows_dash_without_trades_and_infinity_without_losses() -> None:
    assert fmt.profit_factor(None) == "—"
    assert fmt.profit_factor(math.nan) == "—"
    assert fmt.profit_factor(math.inf) == "∞"
    assert fmt.profit_factor(0.8) == "0.80"


def test_countdown_says_time_left_rounded_up_not_a_clock_time() -> None:
    assert fmt.time_left(45 * 60) == "45m left"
    assert fmt.time_left(754.2) == "13m left"
    assert fmt.time_left(0.4) == "1s left"
    assert fmt.time_left(-3) == "0s left"
    assert fmt.time_left(65 * 60) == "1h05m left"


def test_compact_numbers_keep_three_figures_and_a_sign() -> None:
    assert fmt.compact(2697.3, signed=True) == "+2.70k"
    assert fmt.compact(-935_100) == "-935k"
    assert fmt.compact(1_250_000, signed=True) == "+1.25M"
    assert fmt.compact(12.345) == "12.3"
    assert fmt.compact(None) == "—"


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_compact_numbers_are_short(x: float) -> None:
    assert len(fmt.compact(x, signed=True)) <= 7


def test_money_and_durations_read_like_an_operator_would_say_them() -> None:
    assert fmt.usd(12.3) == "+$12.30"
    assert fmt.usd(-1.5) == "-$1.50"
    assert fmt.duration(45) == "45s"
    assert fmt.duration(3 * 3600 + 27 * 60) == "3h27m"
    assert fmt.duration(None) == "—"


# -- whale gauge -------------------------------------------------------------------------


def _flow(intensity: float, direction: WhaleDirection = WhaleDirection.BUY) -> FlowState:
    return FlowState(
        "BTCUSDT", cvd=1234.0, intensity=intensity, direction=direction, window_bars=60
    )


@pytest.mark.parametrize(
    ("intensity", "label"), [(72.0, "HIGH"), (60.0, "HIGH"), (45.0, "MOD"), (29.9, "LOW")]
)
def test_gauge_labels_intensity_by_the_configured_thresholds(intensity: float, label: str) -> None:
    gauge = WhaleGauge(high=60.0, low=30.0)
    assert gauge.level(intensity).upper().startswith(label[:3])


def test_gauge_thresholds_come_from_config_not_constants() -> None:
    gauge = WhaleGauge(high=80.0, low=50.0)
    assert gauge.level(70.0) == "mod"
    assert gauge.level(45.0) == "low"


@pytest.mark.anyio
async def test_gauge_draws_number_label_direction_and_cvd() -> None:
    gauge = WhaleGauge()
    async with Harness(gauge).run_test(size=(40, 3)):
        gauge.flow = _flow(72.4, WhaleDirection.SELL)
        text = plain(gauge)
    assert " 72 HIGH" in text
    assert "▼ SELL" in text
    assert "CVD +1.23k" in text


@pytest.mark.anyio
async def test_gauge_says_warming_instead_of_zero_before_a_full_window() -> None:
    gauge = WhaleGauge(window_bars=60)
    async with Harness(gauge).run_test(size=(40, 3)):
        gauge.flow = FlowState("BTCUSDT", window_bars=12)
        text = plain(gauge)
    assert "WARM" in text and "LOW" not in text
    assert "warming 12/60" in text


# -- Hurst sparkline ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("h", "row"), [(0.62, 0), (0.5501, 0), (0.55, 1), (0.50, 1), (0.45, 1), (0.4499, 2), (0.1, 2)]
)
def test_sparkline_rows_follow_the_regime_rule(h: float, row: int) -> None:
    assert HurstSparkline(upper=0.55, lower=0.45).row_of(h)[0] == row


@given(st.floats(min_value=-1.0, max_value=2.0))
def test_sparkline_cell_height_is_always_drawable(h: float) -> None:
    _, eighths = HurstSparkline().row_of(h)
    assert 1 <= eighths <= 8


@pytest.mark.anyio
async def test_sparkline_labels_the_band_rows_and_shows_newest_on_the_right() -> None:
    spark = HurstSparkline()
    async with Harness(spark).run_test(size=(15, 3)):
        spark.data = (0.7,) * 30 + (0.3,)
        lines = [spark.render_line(y).text for y in range(3)]
    assert [line[:4] for line in lines] == [">.55", "band", "<.45"]
    assert lines[2].endswith(lines[2].strip()[-1]) and lines[2].strip()[-1] != ""
    assert len(lines[0]) == 15  # only the newest values that fit


# -- positions ----------------------------------------------------------------------------


def _position(until_s: float | None, mode: str) -> PositionView:
    return PositionView(
        "p", "BTCUSDT", Side.LONG, 1.0, 1.0, 100.0, 101.0, 1.0, 1.0, (ExitReason.T1,),
        Conviction.HIGH, Regime.TRUE_TREND, 0.0, until_s, mode,
    )  # fmt: skip


def test_force_hold_counts_down_then_shows_the_exit_mode() -> None:
    assert exit_cell(_position(1000.0 + 754, "T4/stop only"), 1000.0)[0] == "T4/stop 13m left"
    assert exit_cell(_position(1000.0, "T4/stop only"), 1000.0)[0] == "T4/stop only"
    assert exit_cell(_position(None, "ladder"), 1000.0)[0] == "ladder"
    assert exit_cell(_position(1000.0 + 754, "force-hold"), 1000.0, short=True)[0] == (
        "hold 13m left"
    )


# -- table updates -----------------------------------------------------------------------


class SpyTable(DataTable[Text]):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []

    def update_cell(self, row_key: Any, column_key: Any, value: Any, **kw: Any) -> None:
        self.calls.append(("update", (row_key, column_key)))
        super().update_cell(row_key, column_key, value, **kw)

    def clear(self, columns: bool = False) -> SpyTable:
        self.calls.append(("clear", None))
        super().clear(columns)
        return self


@pytest.mark.anyio
async def test_tables_touch_only_changed_cells_and_are_never_cleared() -> None:
    table = SpyTable()
    async with Harness(table).run_test():
        table.add_column("a", key="a")
        table.add_column("b", key="b")
        cache: dict[str, Any] = {}
        sync_rows(table, cache, {"x": (("1", ""), ("2", "")), "y": (("3", ""), ("4", ""))},
                  ["a", "b"], lambda c: Text(c[0]))  # fmt: skip
        assert table.row_count == 2
        unchanged = sync_rows(
            table, cache, {"x": (("1", ""), ("2", "")), "y": (("3", ""), ("4", ""))},
            ["a", "b"], lambda c: Text(c[0]),
        )  # fmt: skip
        assert not unchanged and table.calls == []
        sync_rows(table, cache, {"x": (("1", ""), ("9", ""))}, ["a", "b"], lambda c: Text(c[0]))
    assert table.calls == [("update", ("x", "b"))]
    assert table.row_count == 1


@pytest.mark.anyio
async def test_probation_table_shows_state_pf_and_cap_in_words() -> None:
    table = ProbationTable()
    snapshot = fixture_snapshot()
    async with Harness(table).run_test(size=(100, 10)):
        table.show(snapshot.symbols)
        cells = {key.value: [str(c) for c in table.get_row(key)] for key in table.rows if key.value}
    assert cells["SOLUSDT"][1] == "PROBATION" and cells["SOLUSDT"][4] == "0.2×"
    assert cells["AVAXUSDT"][2] == "∞"
    assert cells["LINKUSDT"][2] == "—"
    assert sum(v.state is SymbolState.PROBATION for v in snapshot.symbols) == 2


@pytest.mark.anyio
async def test_positions_table_lists_each_position_with_its_countdown() -> None:
    table = PositionsTable()
    snapshot = fixture_snapshot()
    now = snapshot.heartbeat.market_time_s
    assert now is not None
    async with Harness(table).run_test(size=(140, 10)):
        table.fit_width(140)
        table.show(snapshot.positions, now)
        rows = {k.value: cells_by_column(table, k.value) for k in table.rows}
        table.show(snapshot.positions, now + 60)
        later = {k.value: cells_by_column(table, k.value) for k in table.rows}
    assert rows["p-1"]["stop"] == "93,179.3"  # the stop, on a wide terminal
    assert rows["p-1"]["exit"] == "T4/stop 13m left"
    assert later["p-1"]["exit"] == "T4/stop 12m left"
    assert rows["p-2"]["exit"] == "ladder" and rows["p-2"]["tiers"] == "T1"


def cells_by_column(table: PositionsTable, row_key: str | None) -> dict[str, str]:
    keys = [str(c.key.value) for c in table.columns.values()]
    return dict(zip(keys, (str(c) for c in table.get_row(row_key)), strict=True))


@pytest.mark.anyio
@pytest.mark.parametrize("width", [80, 100, 120, 140])
async def test_positions_show_money_and_the_next_take_profit_at_every_width(width: int) -> None:
    """$ P&L beside %, and the next tier's price from the core, at 80 columns as at 140;
    the stop wherever it fits (from 100 columns)."""
    table = PositionsTable()
    snapshot = fixture_snapshot()
    now = snapshot.heartbeat.market_time_s or 0.0
    async with Harness(table).run_test(size=(width, 10)) as pilot:
        table.fit_width(width)
        table.show(snapshot.positions, now)
        await pilot.pause()
        assert table.virtual_size.width <= table.size.width  # no sideways scrolling
        btc, avax = cells_by_column(table, "p-1"), cells_by_column(table, "p-2")
    assert btc["pnl"] == "+0.80% +$1.95"  # 0.0026 x (94,871.3 - 94,120.5)
    assert avax["pnl"] == "+0.66% +$0.50"  # short: 5.27 x (14.3310 - 14.2368)
    assert btc["next"] == "T4 96,002.9"  # force-held: only T4 (or the stop) can close it
    assert avax["next"] == "T2 14.1877"  # T1 taken on the ladder
    assert ("stop" in btc) is (width >= 100)
    assert btc["exit"] == ("T4/stop 13m left" if width >= 115 else "hold 13m left")


# -- guards ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_guard_summary_says_cost_or_saved_and_switch_state() -> None:
    summary = GuardSummary()
    snapshot = fixture_snapshot()
    async with Harness(summary).run_test(size=(60, 8)):
        summary.show(snapshot.guard_stats, snapshot.guards_enabled)
        lines = plain(summary).splitlines()
    by_gate = {line.split()[0]: line for line in lines[1:]}
    assert "saved $31.75" in by_gate["WHALE_CONFLICT"] and " ON " in by_gate["WHALE_CONFLICT"]
    assert "cost $2.40" in by_gate["FEE_EDGE"] and "OFF" in by_gate["FEE_EDGE"]
    assert list(by_gate) == [r.value for r in BlockReason]


@pytest.mark.anyio
async def test_guard_log_is_newest_first_and_fits_its_height() -> None:
    log = GuardLog()
    snapshot = fixture_snapshot()
    async with Harness(log).run_test(size=(80, 3)):
        log.styles.height = 3
        log.blocks = snapshot.guard_log
        await log.app.workers.wait_for_complete()
        lines = plain(log).splitlines()
    assert len(lines) == 3
    assert "WHALE_CONFLICT" in lines[0] and "12:29" in lines[0]


# -- status line -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_status_line_keeps_badges_and_drops_details_when_narrow() -> None:
    bar = StatusBar()
    status = StatusInfo(
        market_time_s=0.0, golden_open=True, golden_change_in_s=3600.0, source_name="binance",
        source_state="backing off", source_ok=False, source_detail="429×3 · next 12s",
        heartbeat_age_s=400.0, stale=True, paused=True, net_pnl_usd=-3.2, read_only=True,
        warnings=("symbol_states.json: unreadable, moved aside",),
    )  # fmt: skip
    async with Harness(bar).run_test(size=(50, 1)):
        bar.status = status
        narrow = plain(bar)
    async with Harness(StatusBar()).run_test(size=(200, 1)) as pilot:
        wide_bar = pilot.app.query_one(StatusBar)
        wide_bar.status = status
        wide = plain(wide_bar)
    for badge in ("PAUSED", "STALE", "READ-ONLY"):
        assert badge in narrow and badge in wide
    assert "429×3" in wide and "store warning: symbol_states.json" in wide
    assert "00:00:00 UTC" in narrow or "00:00:00 UTC" in wide
    assert len(narrow) <= 51


@pytest.mark.anyio
async def test_a_cell_that_outgrows_its_column_widens_it() -> None:
    """ACTIVE -> PROBATION and T1 -> T1T2T3 after the first draw: the whole word shows."""
    table = ProbationTable()
    snapshot = fixture_snapshot()
    active = [dataclasses.replace(v, state=SymbolState.ACTIVE, size_cap=1.0, state_reason="")
              for v in snapshot.symbols]  # fmt: skip
    async with Harness(table).run_test(size=(120, 10)) as pilot:
        table.show(active)
        await pilot.pause()
        narrow = table.columns["state"].get_render_width(table)
        table.show(snapshot.symbols)
        await pilot.pause()
        assert table.columns["state"].get_render_width(table) >= narrow + len("PROBATION") - len(
            "ACTIVE"
        )
        assert table.columns["state"].content_width >= len("PROBATION")


@pytest.mark.anyio
async def test_the_cursor_stays_on_its_position_when_a_row_above_closes() -> None:
    table = PositionsTable()
    snapshot = fixture_snapshot()
    now = snapshot.heartbeat.market_time_s or 0.0
    async with Harness(table).run_test(size=(120, 10)) as pilot:
        table.show(snapshot.positions, now)
        table.move_cursor(row=1)
        await pilot.pause()
        chosen = table.position_at_cursor()
        assert chosen is not None
        table.show([p for p in snapshot.positions if p.id != "p-1"], now)
        await pilot.pause()
        still = table.position_at_cursor()
    assert still is not None and still.id == chosen.id


@pytest.mark.anyio
async def test_positions_fit_an_80_column_terminal_without_sideways_scrolling() -> None:
    table = PositionsTable()
    snapshot = fixture_snapshot()
    now = snapshot.heartbeat.market_time_s or 0.0
    async with Harness(table).run_test(size=(80, 10)) as pilot:
        table.show(snapshot.positions, now)
        table.fit_width(80)
        await pilot.pause()
        assert [str(c.label) for c in table.columns.values()][-1] == "Hold / exit"
        assert table.virtual_size.width <= table.size.width
        row = cells_by_column(table, "p-1")
        assert row["symbol"] == "BTCUSDT" and row["exit"] == "hold 13m left"
        table.fit_width(140)
        await pilot.pause()
        assert [str(c.label) for c in table.columns.values()][-1] == "Regime@in"


@pytest.mark.parametrize(
    ("text", "clipped"),
    [
        ("5 errors · next 1m43s · BTCUSDT: connection failed", "5 errors · next 1m43s"),
        ("short", "short"),
        ("BTCUSDT: connection failed (ConnectError)", "BTCUSDT: connection fai…"),
    ],
)
def test_narrow_source_detail_is_cut_between_parts(text: str, clipped: str) -> None:
    from bigalpha_tui.widgets.status_bar import clip_parts

    assert clip_parts(text, 24) == clipped


def test_the_guard_table_says_open_while_no_blocked_twin_has_closed() -> None:
    from bigalpha_tui.core.snapshot import GuardStatsView
    from bigalpha_tui.core.types import BlockReason
    from bigalpha_tui.widgets.guard_table import outcome_cell

    waiting = GuardStatsView(BlockReason.FEE_EDGE, blocked=3, open_twins=1, twins_closed=0)
    assert outcome_cell(waiting)[0] == "open"
    flat = GuardStatsView(BlockReason.FEE_EDGE, blocked=3, open_twins=1, twins_closed=2)
    assert outcome_cell(flat)[0] == "even (1 open)"
    won = GuardStatsView(BlockReason.FEE_EDGE, blocked=3, opportunity_cost_usd=1.5, twins_closed=2)
    # the guards panel's words (the dialog said "would have made $1.50", the panel "cost")
    assert outcome_cell(won)[0] == "cost $1.50"
    lost = dataclasses.replace(won, opportunity_cost_usd=-2.0, open_twins=1)
    assert outcome_cell(lost)[0] == "saved $2.00 (1 open)"
