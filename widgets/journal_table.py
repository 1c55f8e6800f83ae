"""Closed live trades, newest first: entry and exit time, symbol, side, size, conviction,
regime at entry, exit reasons, hold time, P&L in $ and %, fees, and the shadow twin's P&L.
One row per trade, keyed by trade id. Narrower terminals leave columns out (the detail view
has them all): conviction and fees under 130 columns; the entry time, size and regime too
under 100 (the exit time the rows are sorted by stays); hold and P&L % too under 75.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import BindingType
from textual.widgets import DataTable

from bigalpha_tui.core.journal import JournalEntry
from bigalpha_tui.core.types import Side

from . import fmt
from .positions_table import REGIME_SHORT
from .table_sync import ROW_LIST_BINDINGS, Cell, Row, sync_rows

COLUMNS: tuple[tuple[str, str], ...] = (
    ("entry", "Entry UTC"),
    ("exit", "Exit UTC"),
    ("symbol", "Symbol"),
    ("side", "Side"),
    ("size", "Size"),
    ("conviction", "Conv."),
    ("regime", "Regime"),
    ("reasons", "Exits"),
    ("hold", "Hold"),
    ("pnl_usd", "P&L $"),
    ("pnl_pct", "P&L %"),
    ("fees", "Fees"),
    ("twin", "Twin $"),
)
#: narrow: the exit time stays (the rows are sorted by it, newest first), the entry goes
COMPACT_HIDDEN = frozenset({"entry", "size", "conviction", "regime", "fees"})
COMPACT_BELOW = 100
#: every column needs about 122 cells: under this width conviction and fees go first (the
#: summary line totals the fees)
MEDIUM_HIDDEN = frozenset({"conviction", "fees"})
MEDIUM_BELOW = 130
#: 60-odd columns: the hold time and the % go too, so P&L $ and the twin's stay in sight
TINY_HIDDEN = COMPACT_HIDDEN | {"hold", "pnl_pct"}
TINY_BELOW = 75


def hidden_at(width: int) -> frozenset[str]:
    """The columns left out at this terminal width (the detail view has them all)."""
    if width < TINY_BELOW:
        return TINY_HIDDEN
    if width < COMPACT_BELOW:
        return COMPACT_HIDDEN
    return MEDIUM_HIDDEN if width < MEDIUM_BELOW else frozenset()


def money_style(x: float | None) -> str:
    return "" if x is None else "gain" if x > 0 else "loss" if x < 0 else ""


def exit_reasons(entry: JournalEntry) -> str:
    return "".join(r.value for r in entry.trade.exit_reasons)


def journal_row(entry: JournalEntry) -> Row:
    t = entry.trade
    return (
        (fmt.utc_day_minute(t.entry_s), ""),
        (fmt.utc_day_minute(t.exit_s), ""),
        (t.symbol, ""),
        (t.side.value, "long" if t.side is Side.LONG else "short"),
        (fmt.qty(t.qty), ""),
        (t.conviction.value, ""),
        (REGIME_SHORT.get(t.entry_regime, t.entry_regime.value), ""),
        (exit_reasons(entry), ""),
        (fmt.duration(entry.hold_s), ""),
        (fmt.usd(t.pnl_usd), money_style(t.pnl_usd)),
        (fmt.pct(t.pnl_pct), money_style(t.pnl_usd)),
        (fmt.usd(t.fees_usd, signed=False), "muted"),
        (fmt.usd(entry.twin_pnl_usd), money_style(entry.twin_pnl_usd) or "muted"),
    )


class JournalTable(DataTable[Text]):
    """The journal's rows; the cursor row is the trade `enter` opens."""

    BINDINGS: ClassVar[list[BindingType]] = [*ROW_LIST_BINDINGS]

    DEFAULT_CSS = """
    JournalTable { height: 1fr; }
    JournalTable > .journal-table--long { color: $text-success; }
    JournalTable > .journal-table--short { color: $text-error; }
    JournalTable > .journal-table--gain { color: $text-success; }
    JournalTable > .journal-table--loss { color: $text-error; }
    JournalTable > .journal-table--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "journal-table--long",
        "journal-table--short",
        "journal-table--gain",
        "journal-table--loss",
        "journal-table--muted",
    }

    def __init__(self, *, width: int = MEDIUM_BELOW, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.hidden = hidden_at(width)
        self.entries: dict[str, JournalEntry] = {}
        self._shown: dict[str, Row] = {}

    def on_mount(self) -> None:
        self._add_columns()

    @property
    def compact(self) -> bool:
        """Narrow: only the columns that say what happened and what it made."""
        return "entry" in self.hidden

    def columns_shown(self) -> list[str]:
        return [k for k, _ in COLUMNS if k not in self.hidden]

    def _add_columns(self) -> None:
        labels = dict(COLUMNS)
        for key in self.columns_shown():
            self.add_column(labels[key], key=key)

    def fit_width(self, width: int) -> None:
        """Fewer columns on a narrower terminal; the rows are drawn again at once."""
        hidden = hidden_at(width)
        if hidden == self.hidden:
            return
        self.hidden = hidden
        self.clear(columns=True)
        self._shown.clear()
        self._add_columns()
        self.show(list(self.entries.values()))

    def show(self, entries: Sequence[JournalEntry]) -> None:
        """Draw these entries in this order (newest first)."""
        if [e.trade.id for e in entries] != list(self._shown):
            # a new order or a new filter: rows cannot be moved, so the table is rebuilt
            # (this happens on opening, refreshing or filtering, never on a tick)
            self.clear()
            self._shown.clear()
        self.entries = {e.trade.id: e for e in entries}
        keys = self.columns_shown()
        index = [k for k, _ in COLUMNS]
        picks = [index.index(k) for k in keys]
        rows = {e.trade.id: tuple(journal_row(e)[i] for i in picks) for e in entries}
        sync_rows(self, self._shown, rows, keys, self._cell)

    def _cell(self, cell: Cell) -> Text:
        text, style = cell
        if not style:
            return Text(text)
        return Text(text, self.get_component_rich_style(f"journal-table--{style}", partial=True))

    def entry_at_cursor(self) -> JournalEntry | None:
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.entries.get(key) if key is not None else None
