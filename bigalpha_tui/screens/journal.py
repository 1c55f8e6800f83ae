"""`t`: the trade journal, every closed live trade the store holds, newest first. `/` filters
by symbol, `enter` shows the highlighted trade in full, `escape` goes back.

The store is read when the screen opens, on `ctrl+r` and when the core's closed-trade count
moves (a trade closed while it is open), in a thread, through a read-only store of its own:
never through the core's store. The highlighted trade keeps the cursor across a re-read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import Resize
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from bigalpha_tui.core.journal import Journal, JournalEntry
from bigalpha_tui.core.snapshot import Snapshot
from bigalpha_tui.screens.filtered import FilteredListScreen
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.fitted_footer import FittedFooter
from bigalpha_tui.widgets.journal_table import JournalTable
from bigalpha_tui.widgets.status_bar import StatusBar

#: columns the summary line's padding takes (cockpit.tcss: `padding: 0 1`)
SUMMARY_PADDING = 2


def summary(
    entries: tuple[JournalEntry, ...], journal: Journal, symbol_filter: str, width: int = 0
) -> str:
    """The line over the table: how many trades, their net P&L and fees, the twins' P&L.
    Given a `width`, a second line takes the parts that do not fit (at 60 columns a filter
    or large sums would be cut), each part whole."""
    if not entries:
        what = f"No closed trades match {symbol_filter!r}." if symbol_filter else ""
        return what or "No closed live trades in the store yet."
    won = sum(1 for e in entries if e.trade.pnl_usd > 0)
    net = sum(e.trade.pnl_usd for e in entries)
    fees = sum(e.trade.fees_usd for e in entries)
    twins = [e.twin_pnl_usd for e in entries if e.twin_pnl_usd is not None]
    parts = [
        f"{len(entries)} trades",
        f"{won} won",
        f"net {fmt.usd(net)}",
        f"fees {fmt.usd(fees, signed=False)}",
        f"twins {fmt.usd(sum(twins)) if twins else fmt.DASH}",
    ]
    if symbol_filter:
        parts.append(f"filter {symbol_filter.upper()}")
    if journal.unreadable:
        parts.append(f"{journal.unreadable} unreadable left out")
    return fmt.fit_parts(parts, width) if width > 0 else " · ".join(parts)


def detail_table(entry: JournalEntry) -> Table:
    """Every field of one trade and its twin, label and value."""
    t = entry.trade
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    twin = entry.twin
    rows = [
        ("Trade", t.id),
        ("Symbol", f"{t.symbol} {t.side.value} ({t.strategy})"),
        ("Entry", f"{fmt.utc_stamp(t.entry_s)} UTC at {fmt.price(t.entry_price)}"),
        ("Exit", f"{fmt.utc_stamp(t.exit_s)} UTC at {fmt.price(t.exit_price)} (average)"),
        ("Held", fmt.duration(entry.hold_s)),
        ("Size", f"{fmt.qty(t.qty)} ({fmt.usd(t.notional_usd, signed=False)} notional)"),
        ("Conviction", f"{t.conviction.value}, size x{t.size_multiplier:g}"),
        ("Regime at entry", t.entry_regime.label + (", force-held" if t.force_held else "")),
        ("Golden hour", "entered inside" if t.golden_hour_entry else "entered outside"),
        ("Exits", " ".join(r.value for r in t.exit_reasons)),
        ("P&L", f"{fmt.usd(t.pnl_usd)} ({fmt.pct(t.pnl_pct)}) net of fees"),
        ("Fees", fmt.usd(t.fees_usd, signed=False)),
        (
            "Shadow twin",
            fmt.DASH
            if twin is None
            else f"{fmt.usd(twin.pnl_usd)} ({fmt.pct(twin.pnl_pct)}), exits "
            f"{' '.join(r.value for r in twin.exit_reasons)}, {twin.id}",
        ),
    ]
    if twin is not None:
        rows.append(("Live - shadow", fmt.usd(t.pnl_usd - twin.pnl_usd)))
    for label, value in rows:
        grid.add_row(label, Text(value))
    return grid


class TradeDetail(ModalScreen[None]):
    """One closed trade in full."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "Back", id="trade-back"),
    ]

    def __init__(self, entry: JournalEntry) -> None:
        super().__init__()
        self.entry = entry

    def compose(self) -> ComposeResult:
        with Vertical(id="trade-body") as body:
            t = self.entry.trade
            body.border_title = f"{t.symbol} {t.side.value} {fmt.utc_day_minute(t.exit_s)}"
            body.border_subtitle = "esc: back"
            yield Static(detail_table(self.entry), id="trade-detail")
        yield Footer()  # this dialog's keys, not those of the screen beneath


class JournalScreen(FilteredListScreen):
    """The closed live trades; the app hands it a reader to run off the UI thread."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="journal-filter"),
        Binding("enter", "detail", "Detail", id="journal-detail"),
        Binding("ctrl+r", "reload", "Reload", id="journal-reload"),
        Binding("escape,t,q", "back", "Back", id="journal-back"),
    ]

    AUTO_FOCUS = "#journal-table"

    def __init__(self, read: Callable[[], Journal], closed_trades: int | None = None) -> None:
        """`read` returns the store's journal (run in a thread); `closed_trades` is the core's
        count of closed trades now (a later tick with another count reads the store again)."""
        super().__init__()
        self.read = read
        self.loaded_count = closed_trades
        self.journal = Journal()
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield StatusBar(id="journal-status")  # the app's status line: heartbeat, HALTED, …
        yield Static("Reading the store…", id="journal-summary", markup=False)
        yield Input(placeholder="symbol (enter: apply, esc: clear)", id="journal-search")
        yield JournalTable(id="journal-table")
        yield FittedFooter()  # `esc Back` and `? Help` stay at 60 columns

    @property
    def table(self) -> JournalTable:
        return self.query_one(JournalTable)

    @property
    def list_table(self) -> JournalTable:
        return self.table

    def on_mount(self) -> None:
        self.search.display = False
        self.table.fit_width(self.app.size.width)
        self.load()

    def on_resize(self, event: Resize) -> None:
        self.table.fit_width(event.size.width)
        self.redraw()  # the summary wraps to the new width

    @work(thread=True, exclusive=True, group="journal", exit_on_error=False)
    def load(self) -> None:
        journal = self.read()
        self.app.call_from_thread(self.show, journal)

    def show(self, journal: Journal) -> None:
        table = self.table
        at = table.entry_at_cursor()
        self.journal = journal
        self.loaded = True
        self._draw()
        if at is not None and at.trade.id in table.entries:
            table.move_cursor(row=table.get_row_index(at.trade.id), animate=False)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """A UI tick: a trade closed since the last read, so read the store again."""
        if snapshot.closed_trades != self.loaded_count:
            self.loaded_count = snapshot.closed_trades
            self.load()

    def _draw(self) -> None:
        entries = self.journal.for_symbol(self.query_text)
        self.table.show(entries)
        width = self.app.size.width - SUMMARY_PADDING
        text = summary(entries, self.journal, self.query_text, width)
        self.query_one("#journal-summary", Static).update(text)

    def redraw(self) -> None:
        if self.loaded:
            self._draw()

    def action_reload(self) -> None:
        self.load()

    def open_detail(self) -> None:
        entry = self.table.entry_at_cursor()
        if entry is not None:
            self.app.push_screen(TradeDetail(entry))
