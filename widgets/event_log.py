"""The core's event log (entries, exits, blocks, regime changes, operator commands), oldest
at the top and newest at the bottom, bounded so it never grows without limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.widgets import RichLog

from bigalpha_tui.core.snapshot import Event

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
        self._last_shown: Event | None = None

    def show(self, events: Sequence[Event]) -> int:
        """Write the events newer than the last one shown (`events` is newest first)."""
        fresh: list[Event] = []
        for event in events:
            if event is self._last_shown:
                break
            fresh.append(event)
        if not fresh:
            return 0
        self._last_shown = fresh[0]
        for event in reversed(fresh):
            self.write(self.line(event))
        return len(fresh)

    def line(self, event: Event) -> Text:
        muted = self.get_component_rich_style("event-log--muted", partial=True)
        text = Text(no_wrap=True)
        text.append(f"{fmt.utc_clock(event.time_s)} ", muted)
        text.append(f"{event.kind:<12} ", muted)
        text.append(f"{event.symbol:<9} " if event.symbol else " " * 10)
        text.append(event.message, self._message_style(event))
        return text

    def _message_style(self, event: Event) -> Style:
        if event.kind == "command":
            ok = bool(event.data.get("ok", True))
            return self.get_component_rich_style(
                "event-log--good" if ok else "event-log--bad", partial=True
            )
        if event.kind in ("store_warning", "bar_rejected"):
            return self.get_component_rich_style("event-log--warn", partial=True)
        return Style()
