"""Sparkline of H over recent bars, three rows tall, with the RANDOM band drawn in.

The rows are the regimes: the top row is H above `upper` (TRUE TREND), the middle row is the
band between `lower` and `upper` (RANDOM, shaded across the whole width so the band is always
visible), the bottom row is H below `lower` (NOISE). Within a row the eighth-block height says
where H sits. A gutter names each row, so the chart reads without colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

_BLOCKS = "▁▂▃▄▅▆▇█"
#: outer edges of the chart: H at or beyond these fills the top row / sits at the bottom
CHART_TOP = 0.80
CHART_BOTTOM = 0.20
GUTTER = 5


class HurstSparkline(Widget):
    """H history, newest on the right; rows = TRUE TREND / band / NOISE."""

    DEFAULT_CSS = """
    HurstSparkline {
        text-wrap: nowrap;
        text-overflow: ellipsis;
        height: 3;
        width: 1fr;
    }
    HurstSparkline > .hurst-sparkline--trend { color: $success; }
    HurstSparkline > .hurst-sparkline--random { color: $warning; }
    HurstSparkline > .hurst-sparkline--noise { color: $error; }
    HurstSparkline > .hurst-sparkline--band { background: $foreground 10%; }
    HurstSparkline > .hurst-sparkline--gutter { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "hurst-sparkline--trend",
        "hurst-sparkline--random",
        "hurst-sparkline--noise",
        "hurst-sparkline--band",
        "hurst-sparkline--gutter",
    }

    data: reactive[tuple[float, ...]] = reactive(tuple)
    """H values, oldest first."""
    upper: reactive[float] = reactive(0.55)
    """TRUE TREND above this (config `hurst.trend_above`)."""
    lower: reactive[float] = reactive(0.45)
    """NOISE below this (config `hurst.noise_below`)."""

    def __init__(
        self,
        data: Sequence[float] = (),
        *,
        upper: float = 0.55,
        lower: float = 0.45,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(HurstSparkline.data, tuple(data))
        self.set_reactive(HurstSparkline.upper, upper)
        self.set_reactive(HurstSparkline.lower, lower)

    def _style(self, name: str) -> Style:
        # the band is a background: it must be blended onto ours, so not a partial style
        return self.get_component_rich_style(f"hurst-sparkline--{name}", partial=name != "band")

    def row_of(self, h: float) -> tuple[int, int]:
        """(row, eighths) of one H: row 0 = above `upper` (TRUE TREND), 1 = the band
        (RANDOM, bounds included, as in the regime rule), 2 = below `lower` (NOISE)."""
        if h > self.upper:
            row, low, high = 0, self.upper, CHART_TOP
        elif h < self.lower:
            row, low, high = 2, CHART_BOTTOM, self.lower
        else:
            row, low, high = 1, self.lower, self.upper
        span = max(high - low, 1e-9)
        eighths = math.ceil((min(max(h, low), high) - low) / span * 8)
        return row, max(1, min(8, eighths))

    def render(self) -> Text:
        width = max(0, self.size.width - GUTTER)
        values = [h for h in self.data if math.isfinite(h)][-width:] if width else []
        cells: list[list[tuple[str, str]]] = [[] for _ in range(3)]
        for h in values:
            row, eighths = self.row_of(h)
            zone = ("trend", "random", "noise")[row]
            for r in range(3):
                cells[r].append((_BLOCKS[eighths - 1], zone) if r == row else (" ", ""))
        band = self._style("band")
        labels = (
            f">{self.upper:.2f}".replace("0.", "."),
            "band",
            f"<{self.lower:.2f}".replace("0.", "."),
        )
        lines = []
        for r in range(3):
            line = Text(no_wrap=True)
            line.append(f"{labels[r]:<{GUTTER - 1}} ", self._style("gutter"))
            pad = width - len(cells[r])
            row_bg = band if r == 1 else Style()
            line.append(" " * pad, row_bg)
            for glyph, zone in cells[r]:
                style = self._style(zone) if zone else Style()
                line.append(glyph, row_bg + style if r == 1 else style)
            lines.append(line)
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)
