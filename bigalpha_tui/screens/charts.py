"""`c`: charts. The account's realised P&L, live against shadow, since the bot started and over
the store's whole history; the focused symbol's price with its trades' entries and exits marked;
and its Hurst H with the regime band. `1`-`9` focus another symbol, `escape` goes back.

Closed trades come from the journal reader (read in a thread when the screen opens, and again
only when the core's closed-trade count moves); prices and H come from the snapshot on the
app's UI tick. A chart redraws only when what it shows changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen

from bigalpha_tui.core.charts import (
    Closes,
    MarkKind,
    PnlCurve,
    TradeMark,
    pnl_curve,
    price_history,
    trade_marks,
)
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.journal import Journal
from bigalpha_tui.core.snapshot import Snapshot, SymbolView
from bigalpha_tui.core.types import Side
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.braille_chart import BrailleChart, ChartSpec, Mark, Series
from bigalpha_tui.widgets.fitted_footer import FittedFooter
from bigalpha_tui.widgets.status_bar import StatusBar

#: the glyph of each kind of fill on the price chart
ENTRY_GLYPH = {Side.LONG: "▲", Side.SHORT: "▼"}
EXIT_GLYPH = "×"
LEGEND = "▲ long ▼ short entry · × exit"


def utc_minute(t: float) -> str:
    return fmt.utc_clock(t, seconds=False)


def usd_label(value: float) -> str:
    return fmt.usd(value)


def price_label(value: float) -> str:
    return fmt.price(value)


def h_label(value: float) -> str:
    return f"{value:.2f}"


def pnl_spec(curve: PnlCurve, *, day: bool, empty: str) -> ChartSpec:
    """Live and shadow cumulative P&L against exit time, with a dotted $0 line."""
    stamp = fmt.utc_day_minute if day else utc_minute
    return ChartSpec(
        series=(
            Series(curve.times_s, curve.shadow_usd, "shadow"),
            Series(curve.times_s, curve.live_usd, "live"),
        ),
        baseline=0.0,
        y_label=usd_label,
        x_left=stamp(curve.times_s[0]) if curve.times_s else "",
        x_right=stamp(curve.times_s[-1]) if curve.times_s else "",
        empty=empty,
    )


def pnl_title(curve: PnlCurve, label: str) -> str:
    return f"{label} · {curve.trades} trades"


def pnl_legend(curve: PnlCurve) -> str:
    """The totals, coloured like their lines."""
    live, shadow = fmt.usd(curve.live_total_usd), fmt.usd(curve.shadow_total_usd)
    return f"[$success]live {live}[/] [$secondary]shadow {shadow}[/]"


def price_spec(closes: Closes, marks: tuple[TradeMark, ...]) -> ChartSpec:
    return ChartSpec(
        series=(Series(tuple(t for t, _ in closes), tuple(p for _, p in closes), "price"),),
        marks=tuple(
            Mark(
                m.time_s,
                m.price,
                ENTRY_GLYPH[m.side] if m.kind is MarkKind.ENTRY else EXIT_GLYPH,
                ("long" if m.side is Side.LONG else "short")
                if m.kind is MarkKind.ENTRY
                else "exit",
            )
            for m in marks
        ),
        y_label=price_label,
        x_left=utc_minute(closes[0][0]) if closes else "",
        x_right=utc_minute(closes[-1][0]) if closes else "",
        empty="Waiting for bars.",
    )


def hurst_spec(view: SymbolView | None, config: Config) -> ChartSpec:
    """H over recent bars, the RANDOM band between `noise_below` and `trend_above` shaded."""
    history = view.h_history if view is not None else ()
    band = (config.hurst.noise_below, config.hurst.trend_above)
    return ChartSpec(
        series=(Series(tuple(float(i) for i in range(len(history))), history, "hurst"),),
        band=band,
        # the chart keeps room around the band, so the band sits still as H moves
        y_range=(band[0] - 0.15, band[1] + 0.15),
        y_label=h_label,
        x_left=f"{len(history)} bars ago" if history else "",
        x_right="now",
        empty=f"H warming up: needs {config.hurst.window} returns.",
    )


class ChartsScreen(Screen[None]):
    """P&L curves, the focused symbol's price and H."""

    DEFAULT_CSS = """
    ChartsScreen #charts-pnl { height: 3fr; }
    ChartsScreen #chart-price { height: 3fr; }
    ChartsScreen #chart-hurst { height: 3fr; }
    ChartsScreen BrailleChart {
        border: round $foreground 30%;
        border-title-color: $foreground;
        border-subtitle-color: $foreground-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,c,q", "back", "Back", id="charts-back"),
        Binding("ctrl+r", "reload", "Reload trades", id="charts-reload"),
        # one footer entry for the nine digit keys ("1…9 Symbol"), the others hidden
        Binding("1", "symbol(1)", "Symbol", id="charts-symbol-1", key_display="1…9"),
        *(
            Binding(str(i), f"symbol({i})", f"Symbol {i}", id=f"charts-symbol-{i}", show=False)
            for i in range(2, 10)
        ),
    ]

    def __init__(
        self,
        config: Config,
        read: Callable[[], Journal],
        snapshot: Snapshot,
        symbol: str | None,
        session_start_s: float,
        read_closes: Callable[[], Mapping[str, Closes]] | None = None,
    ) -> None:
        """`read` returns the store's journal (run in a thread); `snapshot` is the latest;
        `symbol` is the one to chart first (None: the first); `session_start_s` is market
        time at the bot's start (a restart of the bot begins a new count, as on the session
        line; reattaching a cockpit does not); `read_closes` returns the closes the store
        holds from before the bot's start, per symbol (run in the same thread)."""
        super().__init__()
        self.config = config
        self.read = read
        self.read_closes = read_closes
        self.saved: Mapping[str, Closes] = {}
        self.symbol = symbol
        self.session_start_s = session_start_s
        self.journal = Journal()
        self.snapshot = snapshot
        # the closed-trade count the journal was read at: a new close re-reads it
        self.loaded_count = snapshot.closed_trades
        if symbol is None and snapshot.symbols:
            self.symbol = snapshot.symbols[0].symbol
        self.first_symbol = self.symbol
        self._symbol_drawn: object = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="charts-status")  # the app's status line: heartbeat, HALTED, …
        with Horizontal(id="charts-pnl"):
            yield BrailleChart(id="chart-session")
            yield BrailleChart(id="chart-history")
        yield BrailleChart(id="chart-price")
        yield BrailleChart(id="chart-hurst")
        yield FittedFooter()  # `esc Back` and `? Help` stay at 60 columns

    def on_mount(self) -> None:
        self.query_one("#chart-session").border_title = self.session_label()
        self.query_one("#chart-history").border_title = "P&L all history"
        self._draw_symbol()
        self.load()

    def chart(self, name: str) -> BrailleChart:
        return self.query_one(f"#chart-{name}", BrailleChart)

    # -- data -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="charts", exit_on_error=False)
    def load(self, closes: bool = True) -> None:
        """The journal; with `closes` (on opening and on ctrl+r) the saved price history too:
        it only ever matters before the bot's start, so a new trade does not re-read it."""
        journal = self.read()
        saved = self.read_closes() if closes and self.read_closes is not None else None
        self.app.call_from_thread(self.show_journal, journal, saved)

    def show_journal(self, journal: Journal, saved: Mapping[str, Closes] | None = None) -> None:
        self.journal = journal
        if saved is not None:
            self.saved = saved
        self._draw_pnl()
        self._draw_symbol()

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """One UI tick: re-read the trades when one closed, redraw what changed."""
        if not self.is_mounted or snapshot is self.snapshot:
            return
        self.snapshot = snapshot
        if snapshot.closed_trades != self.loaded_count:
            self.loaded_count = snapshot.closed_trades
            self.load(closes=False)
        if self.symbol is None and snapshot.symbols:
            self.symbol = snapshot.symbols[0].symbol
        self._draw_symbol()

    # -- drawing ----------------------------------------------------------------------

    def _draw_pnl(self) -> None:
        entries = self.journal.entries
        session = pnl_curve(entries, self.session_start_s)
        history = pnl_curve(entries)
        for name, curve, label, day, empty in (
            ("session", session, self.session_label(), False, "No trade closed since then."),
            ("history", history, "P&L all history", True, "No closed trades in the store yet."),
        ):
            chart = self.chart(name)
            chart.spec = pnl_spec(curve, day=day, empty=empty)
            chart.border_title = pnl_title(curve, label)
            chart.border_subtitle = pnl_legend(curve) if curve.trades else ""

    def session_label(self) -> str:
        """`P&L bot up since 08:30`, as the session line says (with the date when the bot
        came up on an earlier day)."""
        now_s = self.snapshot.heartbeat.market_time_s
        return f"P&L bot up since {fmt.clock_or_date(self.session_start_s, now_s)}"

    def _draw_symbol(self) -> None:
        view = None if self.symbol is None else self.snapshot.symbol(self.symbol)
        name = self.symbol or "no symbol"
        positions = tuple(p for p in self.snapshot.positions if p.symbol == name)
        saved = self.saved.get(name, ())
        # a tick whose snapshot moved only elsewhere (source health, other symbols) draws nothing
        key = (name, view, positions, self.journal, saved)
        if key == self._symbol_drawn:
            return
        self._symbol_drawn = key
        # after a restart the snapshot holds only the bars since: the store has the ones before
        closes = price_history(view.closes if view else (), saved, self.config.ui.chart_bars)
        marks: tuple[TradeMark, ...] = ()
        if closes:
            start_s, end_s = closes[0][0], closes[-1][0]
            marks = trade_marks(self.journal.entries, positions, name, start_s, end_s)
        price = self.chart("price")
        price.spec = price_spec(closes, marks)
        last_price = view.price if view is not None else None
        if last_price is None and closes:
            last_price = closes[-1][1]
        price.border_title = f"{name} price {fmt.price(last_price)}"
        price.border_subtitle = LEGEND
        hurst = self.chart("hurst")
        hurst.spec = hurst_spec(view, self.config)
        h = view.hurst.h if view is not None else None
        band = f"{self.config.hurst.noise_below:.2f}-{self.config.hurst.trend_above:.2f}"
        hurst.border_title = f"{name} Hurst H {fmt.DASH if h is None else f'{h:.2f}'}"
        hurst.border_subtitle = f"shaded: RANDOM band {band}"

    # -- keys -------------------------------------------------------------------------

    def action_back(self) -> None:
        # the main screen follows the charted symbol; focused here, once, not on every key:
        # moving focus on the screen below restyles it (~100 ms of the key's frame)
        symbols = [v.symbol for v in self.snapshot.symbols]
        main = getattr(self.app, "main", None)
        if main is not None and self.symbol in symbols and self.symbol != self.first_symbol:
            main.focus_symbol(symbols.index(self.symbol) + 1)
        self.dismiss()

    def action_reload(self) -> None:
        self.load()

    def action_symbol(self, index: int) -> None:
        """Chart the index-th symbol (1-based); the main screen focuses it on the way back."""
        symbols = [v.symbol for v in self.snapshot.symbols]
        if not 1 <= index <= len(symbols):
            return
        self.symbol = symbols[index - 1]
        self._draw_symbol()
