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

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
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
        self._cache_key: object = None
        self._strips: list[Strip] = []

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

    def render_line(self, y: int) -> Strip:
        # Line API with cached strips: the chart changes once a bar, and building it from
        # segments skips the text-to-content conversion that dominated a card's repaint.
        key = (self.data, self.size.width, self.upper, self.lower, self.app.theme)
        if key != self._cache_key:
            self._cache_key = key
            self._strips = self._build_strips()
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _build_strips(self) -> list[Strip]:
        width = self.size.width
        chart_width = max(0, width - GUTTER)
        values = [h for h in self.data if math.isfinite(h)][-chart_width:] if chart_width else []
        base = self.rich_style
        zones = [base + self._style(zone) for zone in ("trend", "random", "noise")]
        band = self._style("band")  # full style: background blended onto ours
        band_zone = band + self._style("random")
        gutter = base + self._style("gutter")
        rows: list[list[tuple[str, Style]]] = [[], [], []]
        for h in values:
            row, eighths = self.row_of(h)
            for r in range(3):
                if r == row:
                    rows[r].append((_BLOCKS[eighths - 1], band_zone if r == 1 else zones[r]))
                else:
                    rows[r].append((" ", band if r == 1 else base))
        labels = (
            f">{self.upper:.2f}".replace("0.", "."),
            "band",
            f"<{self.lower:.2f}".replace("0.", "."),
        )
        strips = []
        for r in range(3):
            background = band if r == 1 else base
            segments = [
                Segment(f"{labels[r]:<{GUTTER - 1}} "[:width], gutter),
                Segment(" " * (chart_width - len(rows[r])), background),
                *(Segment(glyphs, style) for glyphs, style in _runs(rows[r])),
            ]
            strips.append(Strip(segments).crop_extend(0, width, base))
        return strips


def _runs(cells: list[tuple[str, Style]]) -> list[tuple[str, Style]]:
    """Neighbouring cells of one style merged, so a row is a few segments, not one per cell."""
    runs: list[tuple[str, Style]] = []
    for glyph, style in cells:
        if runs and runs[-1][1] is style:
            runs[-1] = (runs[-1][0] + glyph, style)
        else:
            runs.append((glyph, style))
    return runs
