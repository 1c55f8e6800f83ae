"""Whale intensity gauge for one symbol: a 0-100 bar, the number, a HIGH/MOD/LOW label,
the whale direction with an arrow, and the CVD figures behind it.

Colours come from the theme ($success / $warning / $error) by the configured thresholds,
and the label beside the bar says the same thing in words.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from bigalpha_tui.core.flow import FlowState
from bigalpha_tui.core.types import WhaleDirection

from . import fmt

_EIGHTHS = " ▏▎▍▌▋▊▉█"
_ARROWS = {WhaleDirection.BUY: "▲", WhaleDirection.SELL: "▼", WhaleDirection.NEUTRAL: "◆"}


class WhaleGauge(Widget):
    """Three lines: `████▌··┊··┊ 62 HIGH` / `▲ BUY  CVD +1.23k` / `whale +820  OFI +0.12`."""

    DEFAULT_CSS = """
    WhaleGauge {
        text-wrap: nowrap;
        text-overflow: ellipsis;
        height: 3;
        width: 1fr;
        padding: 0 1;
    }
    WhaleGauge > .whale-gauge--high { color: $success; }
    WhaleGauge > .whale-gauge--mod { color: $warning; }
    WhaleGauge > .whale-gauge--low { color: $error; }
    WhaleGauge > .whale-gauge--track { color: $foreground 25%; }
    WhaleGauge > .whale-gauge--buy { color: $text-success; }
    WhaleGauge > .whale-gauge--sell { color: $text-error; }
    WhaleGauge > .whale-gauge--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "whale-gauge--high",
        "whale-gauge--mod",
        "whale-gauge--low",
        "whale-gauge--track",
        "whale-gauge--buy",
        "whale-gauge--sell",
        "whale-gauge--muted",
    }

    flow: reactive[FlowState | None] = reactive(None)
    """The whale CVD engine's latest state for the symbol (None before the first bar)."""
    high: reactive[float] = reactive(60.0)
    """Intensity at or above this is HIGH (config `flow.intensity_high`)."""
    low: reactive[float] = reactive(30.0)
    """Intensity below this is LOW (config `flow.intensity_low`)."""
    window_bars: reactive[int] = reactive(60)
    """Bars the engine needs before whale bars can be told apart (config `flow.window_bars`)."""

    def __init__(
        self,
        *,
        high: float = 60.0,
        low: float = 30.0,
        window_bars: int = 60,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(WhaleGauge.high, high)
        self.set_reactive(WhaleGauge.low, low)
        self.set_reactive(WhaleGauge.window_bars, window_bars)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"whale-gauge--{name}", partial=True)

    def level(self, intensity: float) -> str:
        """'high', 'mod' or 'low' by the thresholds."""
        if intensity >= self.high:
            return "high"
        if intensity >= self.low:
            return "mod"
        return "low"

    def render(self) -> Text:
        flow = self.flow
        width = max(12, self.size.width - 1)
        if flow is None:
            return Text("waiting for the first bar…", self._style("muted"))
        lines = [self._bar_line(flow, width), self._direction_line(flow), self._detail_line(flow)]
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)

    def _bar_line(self, flow: FlowState, width: int) -> Text:
        intensity = max(0.0, min(100.0, flow.intensity))
        level = self.level(intensity)
        if flow.window_bars < self.window_bars:
            # no whale bar can be recognised before a full window: say so, not "0 LOW"
            tail = Text("   — ")
            tail.append("WARM", self._style("muted"))
        else:
            tail = Text(f" {intensity:3.0f} ")
            tail.append(f"{level.upper():<4}", self._style(level))
        bar_cells = max(4, width - tail.cell_len)
        line = self._bar(intensity, bar_cells, self._style(level))
        line.append_text(tail)
        return line

    def _bar(self, intensity: float, cells: int, fill: Style) -> Text:
        eighths = round(intensity / 100.0 * cells * 8)
        full, part = divmod(eighths, 8)
        filled = "█" * full + (_EIGHTHS[part] if part else "")
        marks = {min(cells - 1, int(t / 100.0 * cells)) for t in (self.low, self.high)}
        track = "".join("┊" if c in marks else "·" for c in range(len(filled), cells))
        bar = Text(no_wrap=True)
        bar.append(filled, fill)
        bar.append(track, self._style("track"))
        return bar

    def _fit(self, options: list[Text]) -> Text:
        """The first (most complete) wording that fits the gauge; the last one otherwise.

        Every wording keeps whole numbers: a cut figure (`CVD +…`) says nothing."""
        width = self.content_size.width
        return next((line for line in options if line.cell_len <= width), options[-1])

    def _direction_line(self, flow: FlowState) -> Text:
        direction = flow.direction
        style = {
            WhaleDirection.BUY: self._style("buy"),
            WhaleDirection.SELL: self._style("sell"),
        }.get(direction, self._style("muted"))
        cvd = fmt.compact(flow.cvd, signed=True)
        muted = self._style("muted")
        arrow = _ARROWS[direction]
        return self._fit(
            [
                Text.assemble((f"{arrow} {direction.value:<7}", style), (" CVD ", muted), cvd),
                Text.assemble((f"{arrow} {direction.value}", style), (" CVD ", muted), cvd),
                Text.assemble((arrow, style), (" CVD ", muted), cvd),
            ]
        )

    def _detail_line(self, flow: FlowState) -> Text:
        muted = self._style("muted")
        if not flow.flow_available:
            return Text("no taker-buy data: flow off", self._style("sell"))
        if flow.window_bars < self.window_bars:
            return Text(f"warming {flow.window_bars}/{self.window_bars} bars", muted)
        whale = fmt.compact(flow.whale_cvd, signed=True)
        ofi = f"{flow.retail_ofi:+.2f}"
        line = Text.assemble(("whale ", muted), whale, (" OFI ", muted), ofi)
        options = [line]
        if flow.cross_buy_ratio is not None:
            cross = f"{flow.cross_buy_ratio * 100:.0f}%"
            options.insert(0, Text.assemble(line, (" x-buy ", muted), cross))
        options.append(Text.assemble(("OFI ", muted), ofi, (" wh ", muted), whale))
        options.append(Text.assemble(("OFI ", muted), ofi))
        return self._fit(options)
