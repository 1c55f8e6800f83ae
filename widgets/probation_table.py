"""Per-symbol learning state: ACTIVE or PROBATION, golden-hour profit factor (— when there
are no trades, ∞ when there is no loss), trades behind it, size cap, slippage buffer, and when
and why the state last changed. One row per symbol; the cursor row is the symbol `r` releases,
and `enter` on it shows the row in full (the reason, the exact time of the change).

"Since" is HH:MM for a change on the snapshot's market day and MM-DD for an earlier one: the
state is kept across restarts, and a date with its time would not fit the panel beside the
guards at 120 columns (the detail view has the full time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from bigalpha_tui.core.snapshot import SymbolView
from bigalpha_tui.core.types import SymbolState

from . import fmt
from .table_sync import Cell, Row, sync_rows

COLUMNS: tuple[tuple[str, str], ...] = (
    ("symbol", "Symbol"),
    ("state", "State"),
    ("pf", "GH PF"),
    ("trades", "Trades"),
    ("cap", "Cap"),
    ("buffer", "Slip buf"),
    ("changed", "Since"),
)


class ProbationTable(DataTable[Text]):
    """Symbols with their probation state; PROBATION rows are labelled and highlighted."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    ProbationTable { height: 1fr; }
    ProbationTable > .probation-table--probation { color: $text-warning; text-style: bold; }
    ProbationTable > .probation-table--good { color: $text-success; }
    ProbationTable > .probation-table--bad { color: $text-error; }
    ProbationTable > .probation-table--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "probation-table--probation",
        "probation-table--good",
        "probation-table--bad",
        "probation-table--muted",
    }

    def __init__(
        self,
        *,
        enter_pf: float = 0.8,
        exit_pf: float = 1.0,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.enter_pf = enter_pf
        self.exit_pf = exit_pf
        self._shown: dict[str, Row] = {}
        self.views: dict[str, SymbolView] = {}
        self.market_now_s: float | None = None

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, symbols: Sequence[SymbolView], market_now_s: float | None = None) -> bool:
        """Draw the symbols; `market_now_s` is the snapshot's market time (which day is
        today for the "Since" column)."""
        self.market_now_s = market_now_s
        self.views = {v.symbol: v for v in symbols}
        rows = {v.symbol: self.row(v) for v in symbols}
        return sync_rows(self, self._shown, rows, [k for k, _ in COLUMNS], self._cell)

    def _cell(self, cell: Cell) -> Text:
        text, style = cell
        if not style:
            return Text(text)
        return Text(text, self.get_component_rich_style(f"probation-table--{style}", partial=True))

    def row(self, v: SymbolView) -> Row:
        on_probation = v.state is SymbolState.PROBATION
        return (
            (v.symbol, ""),
            (v.state.value, "probation" if on_probation else "muted"),
            (fmt.profit_factor(v.golden_pf), self._pf_style(v.golden_pf)),
            (str(v.golden_trades), "" if v.golden_trades else "muted"),
            (f"{v.size_cap:.2g}×", "probation" if v.size_cap < 1.0 else "muted"),
            (f"{v.slippage_buffer_bps:.1f} bps", ""),
            (
                fmt.clock_or_date(v.state_changed_s, self.market_now_s, with_time=False),
                "" if v.state_changed_s else "muted",
            ),
        )

    def detail_at_cursor(self) -> str:
        """Why the highlighted symbol is in its state, in full: a column cut it off."""
        symbol = self.symbol_at_cursor()
        view = self.views.get(symbol) if symbol else None
        if view is None:
            return ""
        why = view.state_reason or "no change yet"
        return f"{view.symbol} {view.state.value}: {why}"

    def view_at_cursor(self) -> SymbolView | None:
        symbol = self.symbol_at_cursor()
        return self.views.get(symbol) if symbol else None

    def _pf_style(self, pf: float | None) -> str:
        if pf is None or pf != pf:
            return "muted"
        if pf < self.enter_pf:
            return "bad"
        if pf >= self.exit_pf:
            return "good"
        return ""

    def symbol_at_cursor(self) -> str | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

    def move_to_symbol(self, symbol: str) -> None:
        if symbol in self._shown:
            self.move_cursor(row=self.get_row_index(symbol))


def probation_fields(view: SymbolView) -> list[tuple[str, str]]:
    """Every learning field of one symbol, label and value, for the detail view."""
    since = fmt.DASH
    if view.state_changed_s is not None:
        since = f"{fmt.utc_stamp(view.state_changed_s)} UTC (market time)"
    return [
        ("Symbol", view.symbol),
        ("State", view.state.value),
        ("Why", view.state_reason or "no change yet"),
        ("Since", since),
        ("Golden-hour PF", f"{fmt.profit_factor(view.golden_pf)} over {view.golden_trades} trades"),
        ("Size cap", f"{view.size_cap:g}x of normal size"),
        ("Slippage buffer", f"{view.slippage_buffer_bps:.1f} bps"),
    ]
