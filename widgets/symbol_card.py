"""One symbol's row in the market panel: its hotkey, name, price and probation state, the
whale intensity gauge and the Hurst regime panel. Focusable, so `r` knows which symbol.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widget import Widget

from bigalpha_tui.core.config import FlowConfig, HurstConfig
from bigalpha_tui.core.snapshot import SymbolView
from bigalpha_tui.core.types import SymbolState

from . import fmt
from .hurst_panel import HurstPanel
from .text_block import TextBlock
from .whale_gauge import WhaleGauge


class SymbolCard(Widget, can_focus=True):
    """`1 BTCUSDT / 94,251.2 / PROBATION` │ whale gauge │ Hurst panel."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "step(1)", "Next symbol", show=False),
        Binding("up,k", "step(-1)", "Previous symbol", show=False),
    ]

    DEFAULT_CSS = """
    SymbolCard {
        layout: horizontal;
        height: 3;
        width: 1fr;
    }
    SymbolCard > #card-title { width: 12; height: 3; text-wrap: nowrap; }
    /* a narrow terminal takes room from the H sparkline first: the gauge keeps its figures */
    SymbolCard > WhaleGauge { width: 2fr; min-width: 24; }
    SymbolCard > HurstPanel { width: 3fr; }
    SymbolCard:focus > #card-title {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    SymbolCard > .symbol-card--muted { color: $foreground-muted; }
    SymbolCard > .symbol-card--probation { color: $text-warning; text-style: bold; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"symbol-card--muted", "symbol-card--probation"}

    view: reactive[SymbolView | None] = reactive(None)
    """The symbol's latest view (None until its first bar)."""

    def __init__(
        self,
        symbol: str,
        index: int,
        *,
        flow: FlowConfig | None = None,
        hurst: HurstConfig | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.symbol = symbol
        self.index = index
        flow = flow or FlowConfig()
        hurst = hurst or HurstConfig()
        self.gauge = WhaleGauge(
            high=flow.intensity_high, low=flow.intensity_low, window_bars=flow.window_bars
        )
        self.hurst = HurstPanel(
            upper=hurst.trend_above, lower=hurst.noise_below, window=hurst.window
        )

    def compose(self) -> ComposeResult:
        yield TextBlock(self._title(), id="card-title")
        yield self.gauge
        yield self.hurst

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"symbol-card--{name}", partial=True)

    def watch_view(self, old: SymbolView | None, new: SymbolView | None) -> None:
        if new is None or not self.is_mounted:
            return
        self.gauge.flow = new.flow
        self.hurst.reading = new.hurst
        self.hurst.history = new.h_history
        if old is None or (old.price, old.state) != (new.price, new.state):
            self.query_one("#card-title", TextBlock).text = self._title()

    def action_step(self, step: int) -> None:
        """Move focus to the next (1) or previous (-1) symbol card."""
        if step > 0:
            self.screen.focus_next(SymbolCard)
        else:
            self.screen.focus_previous(SymbolCard)

    def on_mount(self) -> None:
        self.watch_view(None, self.view)

    def _title(self) -> Text:
        key = f"{self.index} " if self.index <= 9 else "  "
        view = self.view
        title = Text(f"{key}{self.symbol}", style="bold")
        price = fmt.price(view.price) if view else fmt.DASH
        title.append(f"\n  {price}")
        if view is not None and view.state is SymbolState.PROBATION:
            title.append("\n  PROBATION", self._style("probation"))
        elif view is not None:
            title.append("\n  active", self._style("muted"))
        return title
