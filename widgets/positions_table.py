"""Open live positions: symbol, side, size, entry, mark, stop (wide terminals), P&L %,
tiers taken, conviction, regime at entry, and the force-hold countdown (`T4/stop 12m left`
while it runs, then the exit mode: `T4/stop only` or `ladder`). One row per position, keyed
by position id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from bigalpha_tui.core.snapshot import PositionView
from bigalpha_tui.core.types import Regime, Side

from . import fmt
from .table_sync import Cell, Row, sync_rows

COLUMNS: tuple[tuple[str, str], ...] = (
    ("symbol", "Symbol"),
    ("side", "Side"),
    ("size", "Size"),
    ("entry", "Entry"),
    ("mark", "Mark"),
    ("stop", "Stop"),
    ("pnl", "P&L %"),
    ("exit", "Hold / exit"),
    ("tiers", "Tiers"),
    ("conviction", "Conv."),
    ("regime", "Regime@in"),
)
#: left out below `COMPACT_BELOW` columns (an 80-column terminal): the entry price is in the
#: P&L, and the entry regime's consequence is in the hold / exit column
COMPACT_HIDDEN = frozenset({"entry", "regime"})
COMPACT_BELOW = 100
#: the stop price needs the room of a wide terminal (the full-width positions panel)
STOP_FROM = 115
REGIME_SHORT = {
    Regime.TRUE_TREND: "TREND",
    Regime.NOISE: "NOISE",
    Regime.RANDOM: "RANDOM",
    Regime.WARMING: "WARMING",
}


class PositionsTable(DataTable[Text]):
    """The operator's open positions; the cursor row is the position `x` closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    DEFAULT_CSS = """
    PositionsTable { height: 1fr; }
    PositionsTable > .positions-table--long { color: $text-success; }
    PositionsTable > .positions-table--short { color: $text-error; }
    PositionsTable > .positions-table--gain { color: $text-success; }
    PositionsTable > .positions-table--loss { color: $text-error; }
    PositionsTable > .positions-table--hold { color: $text-warning; text-style: bold; }
    PositionsTable > .positions-table--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "positions-table--long",
        "positions-table--short",
        "positions-table--gain",
        "positions-table--loss",
        "positions-table--hold",
        "positions-table--muted",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            id=id, classes=classes, cursor_type="row", zebra_stripes=False, show_cursor=True
        )
        self._shown: dict[str, Row] = {}
        self.positions: dict[str, PositionView] = {}
        self.compact = False
        self.with_stop = True
        self._market_now_s = 0.0

    def on_mount(self) -> None:
        self._add_columns()

    def columns_shown(self) -> list[str]:
        return [
            k
            for k, _ in COLUMNS
            if not (self.compact and k in COMPACT_HIDDEN) and (self.with_stop or k != "stop")
        ]

    def _add_columns(self) -> None:
        labels = dict(COLUMNS)
        for key in self.columns_shown():
            self.add_column(labels[key], key=key)

    def set_compact(self, compact: bool, *, with_stop: bool = False) -> None:
        """Fewer columns on a narrow terminal; the rows are drawn again at once."""
        with_stop = with_stop and not compact
        if (compact, with_stop) == (self.compact, self.with_stop):
            return
        at_cursor = self.position_at_cursor()
        self.compact = compact
        self.with_stop = with_stop
        self.clear(columns=True)
        self._shown.clear()
        self._add_columns()
        self.show(list(self.positions.values()), self._market_now_s)
        if at_cursor is not None:
            self.move_cursor(row=self.get_row_index(at_cursor.id), animate=False)

    def show(self, positions: Sequence[PositionView], market_now_s: float) -> bool:
        """Draw these positions as of `market_now_s` (for the countdown)."""
        self.positions = {p.id: p for p in positions}
        self._market_now_s = market_now_s
        keys = self.columns_shown()
        index = [k for k, _ in COLUMNS]
        picks = [index.index(k) for k in keys]
        rows = {p.id: self._pick(self.row(p, market_now_s), picks) for p in positions}
        return sync_rows(self, self._shown, rows, keys, self._cell)

    @staticmethod
    def _pick(row: Row, picks: list[int]) -> Row:
        return row if len(picks) == len(row) else tuple(row[i] for i in picks)

    def _cell(self, cell: Cell) -> Text:
        text, style = cell
        if not style:
            return Text(text)
        return Text(text, self.get_component_rich_style(f"positions-table--{style}", partial=True))

    @staticmethod
    def row(p: PositionView, market_now_s: float) -> Row:
        pnl_style = "gain" if p.pnl_pct > 0 else "loss" if p.pnl_pct < 0 else ""
        tiers = "".join(t.value for t in p.tiers_taken) or fmt.DASH
        return (
            (p.symbol, ""),
            (p.side.value, "long" if p.side is Side.LONG else "short"),
            (fmt.qty(p.qty), ""),
            (fmt.price(p.entry_price), ""),
            (fmt.price(p.mark_price), ""),
            (fmt.price(p.stop_price), "muted"),
            (fmt.pct(p.pnl_pct), pnl_style),
            exit_cell(p, market_now_s),
            (tiers, "" if p.tiers_taken else "muted"),
            (p.conviction.value, ""),
            (REGIME_SHORT.get(p.entry_regime, p.entry_regime.value), ""),
        )

    def position_at_cursor(self) -> PositionView | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.positions.get(key) if key is not None else None

    def move_to_symbol(self, symbol: str) -> None:
        """Highlight the symbol's position; with none, highlight nothing (a stale row would
        look like what `x` closes)."""
        for key, position in self.positions.items():
            if position.symbol == symbol:
                self.show_cursor = True
                self.move_cursor(row=self.get_row_index(key))
                return
        self.show_cursor = self.has_focus

    def on_focus(self) -> None:
        self.show_cursor = True


def exit_cell(p: PositionView, market_now_s: float) -> Cell:
    """`T4/stop 45m left` while force-hold runs, then the exit mode the core reports."""
    left = p.force_hold_left_s(market_now_s)
    if left > 0:
        return (f"T4/stop {fmt.time_left(left)}", "hold")
    mode = p.exit_mode if p.exit_mode != "force-hold" else "T4/stop only"
    return (mode, "muted" if mode == "ladder" else "")
