"""`?` / F1: every key the cockpit answers to, built from the app's bindings (so a remapped
key shows its new name), plus the keys that belong to tables, lists and dialogs."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from bigalpha_tui.core.config import Config

#: keys owned by widgets and dialogs rather than the app (key, what it does)
NAVIGATION_KEYS: tuple[tuple[str, str], ...] = (
    ("tab / shift+tab", "move focus between symbols and tables"),
    ("↑ ↓  j k", "previous / next symbol, or table row"),
    ("[  ]", "previous / next panel (tabs on small terminals)"),
    ("ctrl+p", "command palette: every action by name"),
    ("enter / space", "guards screen: switch the selected guard"),
    ("y  n  esc", "confirm dialogs: yes / no / cancel"),
    ("1 … 9  esc", "charts: chart another symbol / back"),
)


def legend(config: Config) -> tuple[tuple[str, str], ...]:
    """What the marks on the main screen mean (mark, meaning), with the configured numbers."""
    flow, hurst = config.flow, config.hurst
    high, low = f"{flow.intensity_high:g}", f"{flow.intensity_low:g}"
    up, down = f"{hurst.trend_above:.2f}"[1:], f"{hurst.noise_below:.2f}"[1:]
    return (
        ("72 HIGH/MOD/LOW", f"whale intensity 0-100: >= {high} high, {low}-{high} moderate"),
        ("┊", f"gauge marks at {low} and {high}"),
        ("▲ BUY ▼ SELL ◆", "whale direction (neutral: no whale bar or |whale CVD| small)"),
        ("TRUE TREND ▲", "confirmed regime; the arrow is the window's net price move"),
        ("H = 0.62 ± 0.07", f"Hurst estimate and its spread at {hurst.window} returns"),
        ("raw NOISE", f"a new label waiting for {hurst.confirm_bars} agreeing bars"),
        (f">{up} band <{down}", "H over recent bars: the row shows where H stood"),
        ("12:34 T4/stop", "force-hold time left: only T4 or the stop can close it"),
        ("♥ 3s", "wall seconds since the core last processed a bar"),
        ("▲ ▼ ×", "charts: long entry, short entry, exit (average price)"),
    )


class HelpScreen(ModalScreen[None]):
    """A scrollable key list; any of esc, q, ? or F1 closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="help-close"),
    ]

    def __init__(
        self,
        bindings: list[tuple[str, str, str, bool]],
        title: str = "Keys",
        marks: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """`bindings`: (key display, description, tooltip, enabled now) per app binding;
        `marks`: the screen legend (see `legend`)."""
        super().__init__()
        self.marks = marks
        self.rows = bindings
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = self.title_text
            body.border_subtitle = "esc to close"
            yield Static(self._table(), id="help-keys")

    def _table(self) -> Group:
        """Three sections, keys (or marks) in one column and what they do in the other, so a
        long line wraps under its description, not under the key."""
        width = max([len(k) for k, *_ in self.rows] + [len(k) for k, _ in NAVIGATION_KEYS])
        width = max([width] + [len(mark) for mark, _ in self.marks])

        def section(rows: list[tuple[Text, Text]]) -> Table:
            table = Table.grid(padding=(0, 2))
            table.add_column(width=width, no_wrap=True)
            table.add_column(ratio=1)
            for row in rows:
                table.add_row(*row)
            return table

        keys = []
        for key, description, tooltip, enabled in self.rows:
            style = "" if enabled else "dim"
            what = Text(description, style=style)
            if tooltip:
                what.append(f" — {tooltip}", style="dim")
            if not enabled:
                what.append("  (not available now)", style="dim italic")
            keys.append((Text(key, style=f"bold {style}".strip()), what))
        navigation = [(Text(k, style="bold"), Text(d)) for k, d in NAVIGATION_KEYS]
        parts: list[Text | Table] = [
            Text("Cockpit", style="bold underline"),
            section(keys),
            Text("\nNavigation and dialogs", style="bold underline"),
            section(navigation),
        ]
        if self.marks:
            parts.append(Text("\nReading the screen", style="bold underline"))
            parts.append(section([(Text(m, style="bold"), Text(d)) for m, d in self.marks]))
        return Group(*parts)
