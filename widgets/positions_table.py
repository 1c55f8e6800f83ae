"""Open live positions: symbol, side, size, entry, mark, stop, P&L in % and $, the next
take-profit and its price, the force-hold countdown (`T4/stop 12m left` while it runs, then
the exit mode: `T4/stop only` or `ladder`), tiers taken, conviction and regime at entry. One
row per position, keyed by position id. Every price and level comes from the core's
`PositionView`; the table only picks the columns that fit the terminal's width.
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
    ("pnl", "P&L % / $"),
    ("next", "Next tier"),
    ("exit", "Hold / exit"),
    ("tiers", "Tiers"),
    ("conviction", "Conv."),
    ("regime", "Regime@in"),
)
#: the columns left out below each width, widest first. The taken tiers are implied by the
#: next one (the ladder takes them in order; a force-held position takes none), the entry
#: regime's consequence is the hold / exit column, the entry price is in the P&L and the
#: levels; conviction and the stop give way last, on an 80-column terminal.
HIDDEN_BELOW: tuple[tuple[int, frozenset[str]], ...] = (
    (100, frozenset({"entry", "tiers", "regime", "stop", "conviction"})),
    (115, frozenset({"entry", "tiers", "regime"})),
    (120, frozenset({"tiers", "regime"})),
    (130, frozenset({"regime"})),
)
#: below this width the force-hold countdown reads `hold 12m left` (the column is narrower)
SHORT_EXIT_BELOW = 115
REGIME_SHORT = {
    Regime.TRUE_TREND: "TREND",
    Regime.NOISE: "NOISE",
    Regime.RANDOM: "RANDOM",
    Regime.WARMING: "WARMING",
}


def hidden_at(width: int) -> frozenset[str]:
    """The columns a terminal `width` columns wide leaves out."""
    return next((hidden for below, hidden in HIDDEN_BELOW if width < below), frozenset())


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
        self.hidden: frozenset[str] = frozenset()
        self.short_exit = False
        self._market_now_s = 0.0

    @property
    def compact(self) -> bool:
        """The 80-column layout: the fewest columns."""
        return "conviction" in self.hidden

    @property
    def with_stop(self) -> bool:
        return "stop" not in self.hidden

    def on_mount(self) -> None:
        self._add_columns()

    def columns_shown(self) -> list[str]:
        return [k for k, _ in COLUMNS if k not in self.hidden]

    def _add_columns(self) -> None:
        labels = dict(COLUMNS)
        for key in self.columns_shown():
            self.add_column(labels[key], key=key)

    def fit_width(self, width: int) -> None:
        """The columns a terminal `width` columns wide can show; redrawn at once on a change."""
        hidden, short_exit = hidden_at(width), width < SHORT_EXIT_BELOW
        if (hidden, short_exit) == (self.hidden, self.short_exit):
            return
        at_cursor = self.position_at_cursor()
        self.hidden, self.short_exit = hidden, short_exit
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
        rows = {
            p.id: self._pick(self.row(p, market_now_s, short_exit=self.short_exit), picks)
            for p in positions
        }
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
    def row(p: PositionView, market_now_s: float, *, short_exit: bool = False) -> Row:
        """Every column's cell, in `COLUMNS` order."""
        pnl_style = "gain" if p.pnl_pct > 0 else "loss" if p.pnl_pct < 0 else ""
        tiers = "".join(t.value for t in p.tiers_taken) or fmt.DASH
        return (
            (p.symbol, ""),
            (p.side.value, "long" if p.side is Side.LONG else "short"),
            (fmt.qty(p.qty), ""),
            (fmt.price(p.entry_price), ""),
            (fmt.price(p.mark_price), ""),
            (fmt.price(p.stop_price), "muted"),
            (f"{fmt.pct(p.pnl_pct)} {fmt.usd(p.unrealised_usd)}", pnl_style),
            next_tier_cell(p),
            exit_cell(p, market_now_s, short=short_exit),
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


def exit_cell(p: PositionView, market_now_s: float, *, short: bool = False) -> Cell:
    """`T4/stop 45m left` (`hold 45m left` in a narrow column) while force-hold runs, then
    the exit mode the core reports."""
    left = p.force_hold_left_s(market_now_s)
    if left > 0:
        return (f"{'hold' if short else 'T4/stop'} {fmt.time_left(left)}", "hold")
    mode = p.exit_mode if p.exit_mode != "force-hold" else "T4/stop only"
    return (mode, "muted" if mode == "ladder" else "")


def next_tier_cell(p: PositionView) -> Cell:
    """`T2 14.1877`: the take-profit the rules in force wait for, at the core's level."""
    if p.next_tier is None or p.next_tier_price is None:
        return (fmt.DASH, "muted")
    return (f"{p.next_tier.value} {fmt.price(p.next_tier_price)}", "")
