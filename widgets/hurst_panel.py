"""Hurst regime panel for one symbol: the published regime in words, `H = 0.XX ± band`,
the trend direction arrow, the raw label while a change is being confirmed, and a sparkline
of H with the RANDOM band drawn in.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget

from bigalpha_tui.core.hurst import HurstReading
from bigalpha_tui.core.types import Regime

from . import fmt
from .hurst_sparkline import HurstSparkline
from .text_block import TextBlock

_REGIME_CLASS = {
    Regime.TRUE_TREND: "trend",
    Regime.RANDOM: "random",
    Regime.NOISE: "noise",
    Regime.WARMING: "muted",
}


class HurstPanel(Widget):
    """`TRUE TREND ▲` / `H = 0.62 ± 0.07` / `raw NOISE`, beside the H sparkline."""

    DEFAULT_CSS = """
    HurstPanel {
        layout: horizontal;
        height: 3;
        width: 1fr;
    }
    HurstPanel > #hurst-text { width: 17; height: 3; text-wrap: nowrap; text-overflow: ellipsis; }
    HurstPanel > .hurst-panel--trend { color: $text-success; text-style: bold; }
    HurstPanel > .hurst-panel--random { color: $text-warning; text-style: bold; }
    HurstPanel > .hurst-panel--noise { color: $text-error; text-style: bold; }
    HurstPanel > .hurst-panel--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hurst-panel--trend",
        "hurst-panel--random",
        "hurst-panel--noise",
        "hurst-panel--muted",
    }

    reading: reactive[HurstReading | None] = reactive(None)
    """The symbol's latest Hurst reading (None before the first bar)."""
    history: reactive[tuple[float, ...]] = reactive(tuple)
    """Recent H values, oldest first."""

    def __init__(
        self,
        *,
        upper: float = 0.55,
        lower: float = 0.45,
        window: int = 100,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.upper = upper
        self.lower = lower
        self.window = window

    def compose(self) -> ComposeResult:
        yield TextBlock(self._text(), id="hurst-text")
        yield HurstSparkline(upper=self.upper, lower=self.lower)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"hurst-panel--{name}", partial=True)

    def watch_reading(self) -> None:
        if self.is_mounted:
            self.query_one("#hurst-text", TextBlock).text = self._text()

    def watch_history(self, history: tuple[float, ...]) -> None:
        if self.is_mounted:
            self.query_one(HurstSparkline).data = history

    def on_mount(self) -> None:
        self.query_one("#hurst-text", TextBlock).text = self._text()
        self.query_one(HurstSparkline).data = self.history

    def _text(self) -> Text:
        reading = self.reading
        if reading is None:
            return Text("waiting…", self._style("muted"))
        regime = Text(reading.regime.label, self._style(_REGIME_CLASS[reading.regime]))
        if reading.regime is not Regime.WARMING:
            regime.append(f" {fmt.trend_arrow(reading.trend_sign)}")
        if reading.h is None or not fmt.finite(reading.h):
            h_line = Text("H = —", self._style("muted"))
        else:
            h_line = Text(f"H = {reading.h:.2f} ± {reading.band:.2f}")
        if reading.regime is Regime.WARMING:
            note = Text(f"{min(reading.returns_seen, self.window)}/{self.window} returns")
            note.stylize(self._style("muted"))
        elif reading.raw_regime is not reading.regime:
            note = Text("raw ", self._style("muted"))
            note.append(reading.raw_regime.label, self._style(_REGIME_CLASS[reading.raw_regime]))
        else:
            note = Text("confirmed", self._style("muted"))
        return Text("\n", no_wrap=True, overflow="ellipsis").join([regime, h_line, note])
