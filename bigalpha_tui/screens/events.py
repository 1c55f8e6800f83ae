"""`e`: the core's event log on a screen of its own, at every terminal size. Newest first,
each line dated; `/` filters by symbol or text, `enter` shows the highlighted event with
every field, `escape` goes back.

`DetailView` is the one-line-in-full modal shared by the events screen, the guard log (a
blocked entry's reason) and the probation table (why a symbol is in its state).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.screens.filtered import FilteredListScreen
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.event_log import EventTable, event_fields, event_matches
from bigalpha_tui.widgets.fitted_footer import FittedFooter
from bigalpha_tui.widgets.status_bar import StatusBar


def fields_table(rows: Sequence[tuple[str, str]]) -> Table:
    """Label and value, the value wrapping over as many lines as it needs."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, Text(value))
    return grid


class DetailView(ModalScreen[None]):
    """One line of a list in full: every field, nothing cut."""

    DEFAULT_CSS = """
    DetailView { align: center middle; background: $background 60%; }
    DetailView > #detail-body {
        width: 95%;
        max-width: 100;
        height: auto;
        max-height: 95%;
        border: round $primary;
        border-title-color: $text-primary;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    DetailView #detail-fields { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "dismiss", "Back", id="detail-back"),
    ]

    def __init__(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = tuple(rows)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body") as body:
            body.border_title = self.title_text
            body.border_subtitle = "esc: back"
            yield Static(fields_table(self.rows), id="detail-fields")
        yield Footer()  # this dialog's keys, not those of the screen beneath


def event_detail(event: Event) -> DetailView:
    title = f"{event.kind} {event.symbol} {fmt.utc_day_minute(event.time_s)}".replace("  ", " ")
    return DetailView(title, event_fields(event))


def summary(shown: int, total: int, query: str) -> str:
    """One line over the list: how many events, and the filter when there is one."""
    if not total:
        return "No events yet."
    if query:
        if not shown:
            return f"No event of {total} matches {query!r}."
        return f"{shown} of {total} events match {query!r} · newest first"
    return f"{total} events · newest first · /: filter · enter: in full"


class EventsScreen(FilteredListScreen):
    """The event log; the app hands it the snapshot's events at each UI tick."""

    DEFAULT_CSS = """
    EventsScreen #events-summary { height: 1; padding: 0 1; color: $foreground-muted; }
    EventsScreen #events-search { height: 3; margin: 0 1; }
    EventsScreen #events-table { height: 1fr; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="events-filter"),
        Binding("enter", "detail", "Detail", id="events-detail"),
        Binding("escape,e,q", "back", "Back", id="events-back"),
    ]

    AUTO_FOCUS = "#events-table"

    def __init__(self, events: Sequence[Event]) -> None:
        super().__init__()
        self.all_events: tuple[Event, ...] = tuple(events)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="events-status")  # the app's status line: heartbeat, HALTED, …
        yield Static("", id="events-summary", markup=False)
        yield Input(placeholder="symbol or text (enter: apply, esc: clear)", id="events-search")
        yield EventTable(id="events-table")
        yield FittedFooter()  # `esc Back` and `? Help` stay at 60 columns

    @property
    def table(self) -> EventTable:
        return self.query_one(EventTable)

    @property
    def list_table(self) -> EventTable:
        return self.table

    def on_mount(self) -> None:
        self.search.display = False
        self._draw()

    def show(self, events: Sequence[Event]) -> None:
        """A UI tick: draw again only when the log changed."""
        fresh = tuple(events)
        if fresh != self.all_events:
            self.all_events = fresh
            self._draw()

    def shown(self) -> tuple[Event, ...]:
        return tuple(e for e in self.all_events if event_matches(e, self.query_text))

    def _draw(self) -> None:
        events = self.shown()
        self.table.show(events)
        text = summary(len(events), len(self.all_events), self.query_text)
        self.query_one("#events-summary", Static).update(text)

    def redraw(self) -> None:
        self._draw()

    def open_detail(self) -> None:
        event = self.table.event_at_cursor()
        if event is not None:
            self.app.push_screen(event_detail(event))
