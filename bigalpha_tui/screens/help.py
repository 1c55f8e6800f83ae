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
from textual.widgets import Footer, Static

from bigalpha_tui.core.config import Config

#: keys owned by widgets and dialogs rather than the app (key, what it does)
NAVIGATION_KEYS: tuple[tuple[str, str], ...] = (
    ("tab / shift+tab", "move focus between symbols and tables"),
    ("↑ ↓  j k", "previous / next symbol, or table row"),
    ("[  ]", "previous / next panel (tabs on small terminals)"),
    ("ctrl+p", "command palette: every action by name"),
    ("enter / space", "guards screen: switch the selected guard"),
    ("enter  /", "a row in full (events, journal, blocked, probation) / filter a list"),
    ("y  n  esc", "confirm dialogs: yes / no / cancel"),
    ("shift+F  a", "flatten's last question: yes / halt detail (h): acknowledge"),
    ("1 … 9  esc", "charts: chart another symbol / back"),
    ("ctrl+r", "journal, charts: read the store's closed trades again"),
)


def legend(config: Config) -> tuple[tuple[str, str], ...]:
    """What the marks and column names on the main screen mean (mark, meaning), with the
    configured numbers."""
    flow, hurst, exits, learning = config.flow, config.hurst, config.exits, config.learning
    high, low = f"{flow.intensity_high:g}", f"{flow.intensity_low:g}"
    up, down = f"{hurst.trend_above:.2f}"[1:], f"{hurst.noise_below:.2f}"[1:]
    tiers = ", ".join(f"T{i} +{pct:g} %" for i, pct in enumerate(exits.tiers_pct, start=1))
    share = f"{exits.tier_fraction * 100:g} %"
    hold = f"{exits.force_hold_min:g} min"
    return (
        ("72 HIGH/MOD/LOW", f"whale intensity 0-100: >= {high} high, {low}-{high} moderate"),
        ("┊", f"gauge marks at {low} and {high}"),
        ("▲ BUY ▼ SELL ◆", "whale direction (neutral: no whale bar or |whale CVD| small)"),
        (
            "CVD +2.70k",
            f"taker buy minus taker sell volume over the last {flow.window_bars} bars, in the"
            " symbol's base asset (k thousand, M million); whale: the same over whale bars",
        ),
        ("OFI +0.12", "retail order-flow imbalance: retail CVD / retail volume, -1 to +1"),
        ("x-buy 58%", "taker buy share across exchanges (CoinGlass), when that source is on"),
        ("TRUE TREND ▲", "confirmed regime; the arrow is the window's net price move"),
        ("H = 0.62 ± 0.07", f"Hurst estimate and its spread at {hurst.window} returns"),
        ("raw NOISE", f"a new label waiting for {hurst.confirm_bars} agreeing bars"),
        (f">{up} band <{down}", "H over recent bars: the row shows where H stood"),
        (
            "T1-T4",
            f"take-profit tiers from entry: {tiers}; {share} of the original size closes at"
            " each of T1-T3, the rest at T4",
        ),
        ("ladder", "the normal exits: every tier in turn, and the stop"),
        ("Stop", f"emergency stop, {exits.stop_pct:g} % against entry: closes everything"),
        (
            "T4/stop 12m left",
            f"force-hold (entered in TRUE TREND): for {hold} only T4 (the whole position) or"
            " the stop can close it; `hold 12m left` on narrow screens",
        ),
        ("T4/stop only", "force-hold over, regime still TRUE TREND: still only T4 or the stop"),
        ("Next tier T2 14.18", "the take-profit the rules in force wait for, and its price"),
        ("P&L % / $", "mark against entry, and that move on the open size (before exit fees)"),
        (
            "GH PF",
            f"golden-hour profit factor: gross profit / gross loss of the symbol's trades"
            f" entered in the golden hour, last {learning.lookback_h:g} h, net of fees; under"
            f" {learning.probation_enter_pf:g} sends it to probation, at"
            f" {learning.probation_exit_pf:g} or more it comes back (— no trades, ∞ no losses)",
        ),
        (
            "Cap",
            f"largest size multiple: 1× when active, {config.sizing.probation_cap:g}× on probation",
        ),
        (
            "Slip buf",
            "slippage buffer, bps added to the fee gate's hurdle; raised when shadow trades"
            " earn much more than live ones",
        ),
        (
            "Today +$14.62",
            "realised P&L since 00:00 UTC (market clock), net of fees: the live trades closed"
            " since then, each whole as the journal shows it, plus the tiers open positions"
            " took since then (counted in their trade once it closes)",
        ),
        (
            "Bot up since 08:30",
            "since the bot started (a restart of the bot begins anew; reopening a cockpit"
            " attached to it does not): trades closed, share that won, profit factor of live"
            " trades and of their shadow twins (trade counts in brackets), fees paid;"
            " `Bot` when narrow",
        ),
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
        yield Footer()  # this dialog's keys, not those of the screen beneath

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
