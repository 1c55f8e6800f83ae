"""The core's event log (entries, exits, blocks, regime changes, operator commands).

`EventLog` is the main screen's panel: oldest at the top and newest at the bottom, bounded so
it never grows without limit. `EventTable` is the events screen's (`e`) list: newest first,
every line dated, one row per event so `enter` can open it in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import BindingType
from textual.widgets import DataTable, RichLog

from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.widgets.table_sync import ROW_LIST_BINDINGS

from . import fmt

MAX_LINES = 500


class EventLog(RichLog):
    """Appends only the events it has not shown yet."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; background: $surface; }
    EventLog > .event-log--muted { color: $foreground-muted; }
    EventLog > .event-log--bad { color: $text-error; }
    EventLog > .event-log--good { color: $text-success; }
    EventLog > .event-log--warn { color: $text-warning; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = RichLog.COMPONENT_CLASSES | {
        "event-log--muted",
        "event-log--bad",
        "event-log--good",
        "event-log--warn",
    }

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(
            id=id, classes=classes, max_lines=MAX_LINES, wrap=False, markup=False, highlight=False
        )
        # the events of the last call, by identity (held, so no id is reused meanwhile)
        self._shown: dict[int, Event] = {}

    def show(self, events: Sequence[Event]) -> int:
        """Write the events not shown yet (`events` is newest first). A repeated block the
        core folded into its symbol's last line comes as a new event on top while the line it
        replaced leaves the log: it is written, and the lines already written stay (a tail)."""
        fresh: list[Event] = []
        for event in events:
            if id(event) in self._shown:
                break
            fresh.append(event)
        self._shown = {id(event): event for event in events}
        if not fresh:
            return 0
        for event in reversed(fresh):
            self.write(self.line(event))
        return len(fresh)

    def line(self, event: Event) -> Text:
        muted = self.get_component_rich_style("event-log--muted", partial=True)
        text = Text(no_wrap=True)
        # dated: the log is restored from the store, so it spans days
        text.append(f"{fmt.utc_day_minute(event.time_s)} ", muted)
        text.append(f"{event.kind:<9} ", muted)  # the date took 3 columns: kinds give them back
        text.append(f"{event.symbol:<9} " if event.symbol else " " * 10)
        text.append(event.message, self._message_style(event))
        return text

    def _message_style(self, event: Event) -> Style:
        tone = message_tone(event)
        if not tone:
            return Style()
        return self.get_component_rich_style(f"event-log--{tone}", partial=True)


# -- the events screen's table ------------------------------------------------------------

EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("when", "When UTC"),
    ("kind", "Kind"),
    ("symbol", "Symbol"),
    ("message", "Message"),
)


def event_matches(event: Event, query: str) -> bool:
    """The `/` filter: the query (any case) in the symbol, the kind or the message."""
    q = query.strip().lower()
    if not q:
        return True
    return q in event.symbol.lower() or q in event.kind.lower() or q in event.message.lower()


def event_fields(event: Event) -> list[tuple[str, str]]:
    """Every field of one event, label and value, for the detail view: the full time,
    kind, symbol, message, then the figures behind the message one per line."""
    rows = [
        ("Time", f"{fmt.utc_stamp(event.time_s)} UTC (market time)"),
        ("Kind", event.kind),
        ("Symbol", event.symbol or fmt.DASH),
        ("Message", event.message),
    ]
    for key, value in event.data.items():
        rows.append((str(key), data_value(value)))
    return rows


def data_value(value: object) -> str:
    """A figure behind an event as the operator reads it: numbers plain, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list | tuple):
        return ", ".join(data_value(v) for v in value) or fmt.DASH
    if isinstance(value, dict):
        return ", ".join(f"{k}: {data_value(v)}" for k, v in value.items()) or fmt.DASH
    if value is None:
        return fmt.DASH
    return str(value)


class EventTable(DataTable[Text]):
    """Events newest first, one row each, dated; the cursor row is the one `enter` opens.

    The table is rebuilt only when the list of events changes (a new event, a new filter),
    never on a tick that brought nothing new. The cursor stays on its event when new ones
    arrive above it, and on the top row (the newest) when it was there.
    """

    BINDINGS: ClassVar[list[BindingType]] = [*ROW_LIST_BINDINGS]

    DEFAULT_CSS = """
    EventTable { height: 1fr; }
    EventTable > .event-table--muted { color: $foreground-muted; }
    EventTable > .event-table--bad { color: $text-error; }
    EventTable > .event-table--good { color: $text-success; }
    EventTable > .event-table--warn { color: $text-warning; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {
        "event-table--muted",
        "event-table--bad",
        "event-table--good",
        "event-table--warn",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.events: tuple[Event, ...] = ()
        self._keys: list[str] = []  # row key of each shown event, in `events` order
        self._seq_of_cell: dict[int, int] = {}  # id of a row's first cell -> its sequence
        self._next_seq = 0

    def on_mount(self) -> None:
        for key, label in EVENT_COLUMNS:
            self.add_column(label, key=key)

    def show(self, events: Sequence[Event]) -> bool:
        """Draw these events in this order (newest first); True when anything changed.

        New events on top of the old ones (the log growing, its oldest falling off) are
        added and removed row by row and the rows re-sorted; anything else (a new filter)
        rebuilds the table. Measured at 120x40 with 200 rows: a rebuild and its frame take
        about 90 ms, the row-by-row path a fraction of that (see docs/cockpit.md)."""
        fresh = tuple(events)
        if fresh == self.events:
            return False
        at_top = self.cursor_row <= 0
        current = self.event_at_cursor()
        added = self._newer_on_top(fresh)
        if added is None:
            self.clear()
            self._keys, self._seq_of_cell = [], {}
            added = len(fresh)
        else:
            kept = len(fresh) - added
            for key in self._keys[kept:]:
                self._forget(key)
            self._keys = self._keys[:kept]
        new_keys = []
        for event in reversed(fresh[:added]):  # oldest first: sequences grow with time
            cells = self.cells(event)
            key = str(self._next_seq)
            self._seq_of_cell[id(cells[0])] = self._next_seq
            self._next_seq += 1
            self.add_row(*cells, key=key)
            new_keys.append(key)
        self._keys = new_keys[::-1] + self._keys
        self.events = fresh
        if added and len(fresh) > 1:
            self.sort(key=lambda values: self._seq_of_cell.get(id(values[0]), -1), reverse=True)
        if current is not None and not at_top and current in fresh:
            self.move_cursor(row=fresh.index(current), animate=False)
        else:
            self.move_cursor(row=0, animate=False)
        return True

    def _newer_on_top(self, fresh: tuple[Event, ...]) -> int | None:
        """How many events `fresh` has on top of the shown ones, when the rest of it is the
        shown list cut at its end (new events arrived, the oldest fell off); else None."""
        old = self.events
        if not old:
            return None
        try:
            added = fresh.index(old[0])
        except ValueError:
            return None
        rest = fresh[added:]
        return added if rest == old[: len(rest)] else None

    def _forget(self, key: str) -> None:
        first = self.get_row(key)[0]
        self._seq_of_cell.pop(id(first), None)
        self.remove_row(key)

    def cells(self, event: Event) -> tuple[Text, ...]:
        muted = self._style("muted")
        return (
            Text(fmt.utc_day_minute(event.time_s), muted),
            Text(event.kind, muted),
            Text(event.symbol or fmt.DASH, Style() if event.symbol else muted),
            Text(event.message, self._message_style(event)),
        )

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"event-table--{name}", partial=True)

    def _message_style(self, event: Event) -> Style:
        tone = message_tone(event)
        return self._style(tone) if tone else Style()

    def event_at_cursor(self) -> Event | None:
        if not self.row_count or not 0 <= self.cursor_row < len(self.events):
            return None
        return self.events[self.cursor_row]


def message_tone(event: Event) -> str:
    """good / bad for a command's result, warn for store and data trouble, else plain."""
    if event.kind == "command":
        return "good" if bool(event.data.get("ok", True)) else "bad"
    if event.kind in ("store_warning", "bar_rejected"):
        return "warn"
    return ""
