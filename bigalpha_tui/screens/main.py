"""The cockpit's main screen: status line, session figures, market cards, positions, probation,
guards, events.

Small terminals (80x24) get one panel at a time behind a tab strip; large ones (about 110x38
and up) see every panel at once, and very wide ones (160+) add the event log beside the
guards. The screen only draws: the app hands it a snapshot at each UI tick, and it updates
the panels the operator can see, touching only values that changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Static, Tab, Tabs

from bigalpha_tui.core.config import Config
from bigalpha_tui.core.snapshot import Snapshot
from bigalpha_tui.core.types import SymbolState
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.event_log import EventLog
from bigalpha_tui.widgets.fitted_footer import COMPACT_BELOW as FOOTER_COMPACT_BELOW
from bigalpha_tui.widgets.fitted_footer import TIGHT_BELOW as FOOTER_TIGHT_BELOW
from bigalpha_tui.widgets.guard_log import GuardLog
from bigalpha_tui.widgets.guard_summary import GuardSummary
from bigalpha_tui.widgets.positions_table import PositionsTable
from bigalpha_tui.widgets.probation_table import ProbationTable
from bigalpha_tui.widgets.session_figures import SessionFigures
from bigalpha_tui.widgets.status_bar import StatusBar, StatusInfo
from bigalpha_tui.widgets.symbol_card import SymbolCard

#: (panel id, tab label) in tab order
PANELS: tuple[tuple[str, str], ...] = (
    ("market", "Market"),
    ("positions", "Positions"),
    ("probation", "Probation"),
    ("guards", "Guards"),
    ("events", "Events"),
)
WIDE_MIN_WIDTH = 110
XWIDE_MIN_WIDTH = 160
POSITIONS_ROWS = 7  # title rule + header + max_positions (5) rows
LOWER_MIN_ROWS = 9  # title rule + header + 6 symbols + 1
FIXED_ROWS = 3  # status line, session figures, footer


class MarketPanel(Vertical):
    """The symbol cards. Shown again (a tab switch, `6` from another tab), it scrolls the
    focused card into view: focus only scrolls a panel that is laid out already."""

    def on_show(self) -> None:
        focused = self.screen.focused
        if isinstance(focused, SymbolCard) and focused.parent is self:
            self.scroll_to_widget(focused, animate=False)


class MainScreen(Screen[None]):
    """Every panel of the cockpit; `show(snapshot, ...)` draws the visible ones."""

    AUTO_FOCUS = "SymbolCard"

    active_panel: reactive[str] = reactive("market")
    """The panel shown on small terminals (all panels show on large ones)."""

    def __init__(
        self,
        config: Config,
        symbols: Sequence[str],
        *,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.on_ready = on_ready
        self.config = config
        self.initial_symbols = tuple(symbols)
        self.cards: dict[str, SymbolCard] = {}
        self.wide = False
        self.xwide = False
        self.last_symbol: str | None = None
        self.snapshot: Snapshot | None = None
        self.market_now_s = 0.0
        self._tab_labels: dict[str, str] = {}
        self._learning_line = ""
        self._probation_detail = ""

    # -- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield SessionFigures(id="session")
        yield Tabs(*(Tab(label, id=f"tab-{key}") for key, label in PANELS), id="nav")
        with Container(id="body"):
            with MarketPanel(id="market", classes="panel -active"):
                for index, symbol in enumerate(self.initial_symbols, start=1):
                    yield self._new_card(symbol, index)
            with Container(id="positions", classes="panel"):
                yield PositionsTable(id="positions-table")
            with Container(id="probation", classes="panel"):
                learning = self.config.learning
                yield ProbationTable(
                    enter_pf=learning.probation_enter_pf,
                    exit_pf=learning.probation_exit_pf,
                    id="probation-table",
                )
                yield Static("", id="probation-detail", markup=False)
                yield Static("", id="learning-summary", markup=False)
            with Horizontal(id="guards", classes="panel"):
                yield GuardSummary(id="guard-summary")
                yield GuardLog(id="guard-log")
            with Container(id="events", classes="panel"):
                yield EventLog(id="event-log")
        yield Footer()

    def _new_card(self, symbol: str, index: int) -> SymbolCard:
        card = SymbolCard(
            symbol,
            index,
            flow=self.config.flow,
            hurst=self.config.hurst,
            id=f"card-{symbol}",
        )
        self.cards[symbol] = card
        return card

    def on_mount(self) -> None:
        for key, label in PANELS:
            self.query_one(f"#{key}").border_title = label
        self.query_one("#guard-log").border_title = "Blocked entries (newest first)"
        # no restyle here: the screen's resume, which follows, restyles every node anyway
        self._apply_layout(restyle=False)
        self.on_ready()

    def on_resize(self, event: Resize) -> None:
        self._apply_layout()
        self.app.refresh_bindings()  # keys the footer shows only from some width

    def _apply_layout(self, *, restyle: bool = True) -> None:
        width, height = self.size
        cards_rows = len(self.cards) * 3 + 1
        self.wide = width >= WIDE_MIN_WIDTH and (
            height >= FIXED_ROWS + cards_rows + POSITIONS_ROWS + LOWER_MIN_ROWS
        )
        self.xwide = self.wide and width >= XWIDE_MIN_WIDTH
        before = set(self.classes)
        # one restyle of the whole screen for the three classes, not one per class
        self.set_class(self.wide, "-wide", update=False)
        self.set_class(not self.wide, "-narrow", update=False)
        self.set_class(self.xwide, "-xwide", update=False)
        # the palette's key goes first when even a compact footer is full (ctrl+p still works)
        self.set_class(width < FOOTER_TIGHT_BELOW, "-footer-tight", update=False)
        if restyle and set(self.classes) != before:
            self.update_node_styles()
        self.query_one(PositionsTable).fit_width(width)
        footer = self.query_one(Footer)
        footer.compact = width < FOOTER_COMPACT_BELOW
        body = self.query_one("#body")
        if self.wide:
            columns = 3 if self.xwide else 2
            body.styles.grid_size_columns = columns
            body.styles.grid_size_rows = 3
            body.styles.grid_rows = f"{cards_rows} {POSITIONS_ROWS} 1fr"
            for panel_id in ("market", "positions"):
                self.query_one(f"#{panel_id}").styles.column_span = columns

    def panel_visible(self, panel_id: str) -> bool:
        """Is this panel on screen (so worth drawing)?"""
        if self.wide:
            return panel_id != "events" or self.xwide
        return panel_id == self.active_panel

    # -- panels and focus -----------------------------------------------------------------

    def watch_active_panel(self, old: str, new: str) -> None:
        if old != new:  # the first call (old == new) would restyle the panel twice for nothing
            self.query_one(f"#{old}").remove_class("-active")
            self.query_one(f"#{new}").add_class("-active")
        tabs = self.query_one("#nav", Tabs)
        if tabs.active != f"tab-{new}":
            tabs.active = f"tab-{new}"
        if self.snapshot is not None:
            self.show_panels(self.snapshot)

    @on(Tabs.TabActivated, "#nav")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id:
            self.active_panel = event.tab.id.removeprefix("tab-")

    def step_panel(self, step: int) -> None:
        keys = [key for key, _ in PANELS]
        self.active_panel = keys[(keys.index(self.active_panel) + step) % len(keys)]
        focusable = self.query_one(f"#{self.active_panel}").query("SymbolCard, DataTable, GuardLog")
        if focusable:
            self.set_focus(focusable.first())

    def focus_symbol(self, index: int) -> bool:
        """Focus the card of the index-th symbol (1-based) and point the tables at it."""
        cards = list(self.cards.values())
        if not 1 <= index <= len(cards):
            return False
        card = cards[index - 1]
        if not self.wide:
            self.active_panel = "market"
        # at once, not on the next loop turn: `3` then `r` typed together must act on 3
        self.set_focus(card)  # a hidden market panel scrolls to it when shown (MarketPanel)
        self.point_tables_at(card.symbol)
        return True

    @on(DataTable.RowHighlighted, "#probation-table")
    def _probation_row(self, _event: DataTable.RowHighlighted[object]) -> None:
        self._show_probation_detail()

    def _show_probation_detail(self) -> None:
        detail = self.query_one(ProbationTable).detail_at_cursor()
        if detail != self._probation_detail:
            self._probation_detail = detail
            self.query_one("#probation-detail", Static).update(detail)

    def point_tables_at(self, symbol: str) -> None:
        self.last_symbol = symbol
        self.query_one(PositionsTable).move_to_symbol(symbol)
        self.query_one(ProbationTable).move_to_symbol(symbol)

    def on_descendant_focus(self, event: object) -> None:
        focused = self.focused
        if isinstance(focused, SymbolCard):
            # tab / j / k between cards: the table cursors follow, so the highlighted row
            # is always what `x` and `r` act on
            self.point_tables_at(focused.symbol)

    def focused_symbol(self) -> str | None:
        """The symbol `r` and `x` act on: the focused card or table row, else the last one."""
        focused: Widget | None = self.focused
        if isinstance(focused, SymbolCard):
            return focused.symbol
        if isinstance(focused, PositionsTable):
            position = focused.position_at_cursor()
            return position.symbol if position else None
        if isinstance(focused, ProbationTable):
            return focused.symbol_at_cursor()
        return self.last_symbol

    # -- drawing ------------------------------------------------------------------------

    def show(self, snapshot: Snapshot, status: StatusInfo, market_now_s: float) -> None:
        """Draw one UI tick: the status line always, the panels that are visible."""
        self.query_one(StatusBar).status = status
        self.query_one(SessionFigures).figures = snapshot.session
        self.snapshot = snapshot
        self.market_now_s = market_now_s
        self.show_panels(snapshot)
        self._update_tab_labels(snapshot)

    def show_panels(self, snapshot: Snapshot) -> None:
        if self.panel_visible("market"):
            self._show_market(snapshot)
        if self.panel_visible("positions"):
            self.query_one(PositionsTable).show(snapshot.positions, self.market_now_s)
            self._positions_title(snapshot)
        if self.panel_visible("probation"):
            self.query_one(ProbationTable).show(snapshot.symbols, self.market_now_s)
            self._probation_title(snapshot)
            self._probation_lines(snapshot)
        if self.panel_visible("guards"):
            self.query_one(GuardSummary).show(snapshot.guard_stats, snapshot.guards_enabled)
            guard_log = self.query_one(GuardLog)
            guard_log.market_now_s = self.market_now_s  # older blocks show their date
            guard_log.blocks = snapshot.guard_log
        if self.panel_visible("events"):
            self.query_one(EventLog).show(snapshot.events)

    def _show_market(self, snapshot: Snapshot) -> None:
        for view in snapshot.symbols:
            card = self.cards.get(view.symbol)
            if card is None:
                card = self._new_card(view.symbol, len(self.cards) + 1)
                self.query_one("#market").mount(card)
                self._apply_layout()
            card.view = view

    def _set_title(self, panel_id: str, title: str) -> None:
        # the title rides on the panel's top rule: no row spent on it
        panel = self.query_one(f"#{panel_id}")
        if panel.border_title != title:
            panel.border_title = title

    def _positions_title(self, snapshot: Snapshot) -> None:
        count = len(snapshot.positions)
        self._set_title(
            "positions",
            f"Positions · {count or 'none'} open"
            f" · realised {fmt.usd(snapshot.realised_pnl_usd)}"
            f" · unrealised {fmt.usd(snapshot.unrealised_pnl_usd)}"
            f" · {snapshot.closed_trades} closed",
        )

    def _probation_title(self, snapshot: Snapshot) -> None:
        learning = snapshot.learning
        parts = ["Probation", f"cycles {learning.cycles}"]
        if learning.last_cycle_s is not None:
            parts.append(f"last {fmt.utc_clock(learning.last_cycle_s, seconds=False)}")
        if learning.next_cycle_s is not None:
            parts.append(f"next {fmt.utc_clock(learning.next_cycle_s, seconds=False)}")
        self._set_title("probation", " · ".join(parts))

    def _probation_lines(self, snapshot: Snapshot) -> None:
        """Under the table: why the highlighted symbol is in its state, and the last cycle's
        summary (in the title both were always cut off)."""
        self._show_probation_detail()
        summary = snapshot.learning.last_summary or ""
        if summary != self._learning_line:
            self._learning_line = summary
            self.query_one("#learning-summary", Static).update(summary)

    def _update_tab_labels(self, snapshot: Snapshot) -> None:
        on_probation = sum(1 for v in snapshot.symbols if v.state is SymbolState.PROBATION)
        counts = {
            "positions": len(snapshot.positions),
            "probation": on_probation,
            "guards": sum(s.blocked for s in snapshot.guard_stats),
        }
        for key, label in PANELS:
            count = counts.get(key)
            text = f"{label} {count}" if count else label
            if self._tab_labels.get(key) != text:
                self._tab_labels[key] = text
                self.query_one(f"#tab-{key}", Tab).label = text
