"""A line chart drawn with braille dots (2 x 4 per cell): one or more series, a shaded band
or a dotted baseline, marks at single points, and y labels in a gutter on the left.

It draws a `ChartSpec` and nothing else: the screen builds the spec from core data, and the
strips are rebuilt only when the spec, the size or the theme changed, so an idle chart costs
nothing on the UI tick.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

#: bit of each dot in a braille cell, [row][column]
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_BRAILLE = 0x2800
#: share of the value range added above and below so a line never sits on the frame
_Y_MARGIN = 0.06


@dataclass(frozen=True, slots=True)
class Series:
    """Points of one line, x ascending; `role` names its colour (a component class)."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]
    role: str


@dataclass(frozen=True, slots=True)
class Mark:
    """One glyph at one point, over the lines."""

    x: float
    y: float
    glyph: str
    role: str


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """Everything one chart shows. `y_label` turns a value into the gutter's text;
    `band` is shaded with its bounds labelled; `baseline` is a dotted line (e.g. $0)."""

    series: tuple[Series, ...] = ()
    marks: tuple[Mark, ...] = ()
    band: tuple[float, float] | None = None
    baseline: float | None = None
    y_range: tuple[float, float] | None = None  # fixed; else from the data
    y_label: Callable[[float], str] = str
    x_left: str = ""
    x_right: str = ""
    empty: str = "No data yet."

    @property
    def has_data(self) -> bool:
        return any(s.xs for s in self.series)


class BrailleChart(Widget):
    """A braille line chart of one `ChartSpec`; the last row names the x range."""

    DEFAULT_CSS = """
    BrailleChart {
        height: 1fr;
        width: 1fr;
    }
    BrailleChart > .braille-chart--live { color: $success; }
    BrailleChart > .braille-chart--shadow { color: $secondary; }
    BrailleChart > .braille-chart--price { color: $foreground; }
    BrailleChart > .braille-chart--hurst { color: $warning; }
    BrailleChart > .braille-chart--long { color: $success; text-style: bold; }
    BrailleChart > .braille-chart--short { color: $error; text-style: bold; }
    BrailleChart > .braille-chart--exit { color: $accent; text-style: bold; }
    BrailleChart > .braille-chart--baseline { color: $foreground-muted; }
    BrailleChart > .braille-chart--band { background: $foreground 10%; }
    BrailleChart > .braille-chart--gutter { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        f"braille-chart--{role}"
        for role in (
            "live",
            "shadow",
            "price",
            "hurst",
            "long",
            "short",
            "exit",
            "baseline",
            "band",
            "gutter",
        )
    }

    spec: reactive[ChartSpec] = reactive(ChartSpec, always_update=False)

    def __init__(
        self,
        spec: ChartSpec | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if spec is not None:
            self.set_reactive(BrailleChart.spec, spec)
        self._cache_key: object = None
        self._strips: list[Strip] = []
        self.builds = 0  # how often the strips were drawn (redraws happen on change only)

    def _style(self, role: str) -> Style:
        # the band is a background: blended onto ours, so not a partial style
        return self.get_component_rich_style(f"braille-chart--{role}", partial=role != "band")

    def render_line(self, y: int) -> Strip:
        key = (self.spec, self.size, self.app.theme)
        if key != self._cache_key:
            self._cache_key = key
            self._strips = self._build_strips()
            self.builds += 1
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _build_strips(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        spec = self.spec
        base = self.rich_style
        if width < 4 or height < 2:
            return []
        if not spec.has_data:
            row = height // 2
            strips = [Strip.blank(width, base) for _ in range(height)]
            text = spec.empty[:width].center(width)
            strips[row] = Strip([Segment(text, base + self._style("gutter"))], width)
            return strips
        return _Plot(spec, width, height, self._style, base).strips()


def _y_bounds(spec: ChartSpec) -> tuple[float, float]:
    if spec.y_range is not None:
        low, high = spec.y_range
        values = [y for s in spec.series for y in s.ys if math.isfinite(y)]
        return min([low, *values]), max([high, *values])
    values = [y for s in spec.series for y in s.ys if math.isfinite(y)]
    values += [m.y for m in spec.marks]
    if spec.baseline is not None:
        values.append(spec.baseline)
    if spec.band is not None:
        values.extend(spec.band)
    low, high = min(values), max(values)
    span = high - low
    if span <= 0:
        span = abs(high) * 0.01 or 1.0
        return low - span, high + span
    return low - span * _Y_MARGIN, high + span * _Y_MARGIN


class _Plot:
    """One drawing of a spec at one size: a dot grid, then the cells, then the strips."""

    def __init__(
        self,
        spec: ChartSpec,
        width: int,
        height: int,
        style: Callable[[str], Style],
        base: Style,
    ) -> None:
        self.spec = spec
        self.rows = height - 1  # the last row names the x range
        self.y_low, self.y_high = _y_bounds(spec)
        labels = [spec.y_label(self.y_high), spec.y_label(self.y_low)]
        if spec.band is not None:
            labels += [spec.y_label(v) for v in spec.band]
        if spec.baseline is not None:
            labels.append(spec.y_label(spec.baseline))
        self.gutter = min(max(len(label) for label in labels) + 1, width // 3)
        self.cols = width - self.gutter
        xs = [x for s in spec.series for x in s.xs]
        self.x_low, self.x_high = min(xs), max(xs)
        self.width = width
        self.style = style
        self.base = base
        self.bits = [[0] * self.cols for _ in range(self.rows)]
        self.role: list[list[str | None]] = [[None] * self.cols for _ in range(self.rows)]

    # -- coordinates ------------------------------------------------------------------

    def dot_x(self, x: float) -> int:
        span = self.x_high - self.x_low
        dots = self.cols * 2 - 1
        return dots if span <= 0 else round((x - self.x_low) / span * dots)

    def dot_y(self, y: float) -> int:
        """Dot row from the top."""
        dots = self.rows * 4 - 1
        share = (y - self.y_low) / (self.y_high - self.y_low)
        return min(dots, max(0, round((1.0 - share) * dots)))

    def cell_row(self, y: float) -> int:
        return self.dot_y(y) // 4

    # -- drawing ----------------------------------------------------------------------

    def dot(self, dx: int, dy: int, role: str, *, under: bool = False) -> None:
        if not (0 <= dx < self.cols * 2 and 0 <= dy < self.rows * 4):
            return
        row, col = dy // 4, dx // 2
        if under and self.role[row][col] is not None:
            return  # a baseline never recolours a line's cell
        self.bits[row][col] |= _DOTS[dy % 4][dx % 2]
        self.role[row][col] = role

    def line(self, x0: int, y0: int, x1: int, y1: int, role: str) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), role)

    def series(self, series: Series) -> None:
        points = [
            (self.dot_x(x), self.dot_y(y))
            for x, y in zip(series.xs, series.ys, strict=True)
            if math.isfinite(y)
        ]
        if len(points) == 1:
            self.dot(*points[0], series.role)
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            self.line(x0, y0, x1, y1, series.role)

    def strips(self) -> list[Strip]:
        spec = self.spec
        for series in spec.series:
            self.series(series)
        if spec.baseline is not None and self.y_low <= spec.baseline <= self.y_high:
            dy = self.dot_y(spec.baseline)
            for dx in range(0, self.cols * 2, 3):
                self.dot(dx, dy, "baseline", under=True)
        glyphs: dict[tuple[int, int], tuple[str, str]] = {}
        for mark in spec.marks:
            if self.x_low <= mark.x <= self.x_high:
                glyphs[(self.cell_row(mark.y), self.dot_x(mark.x) // 2)] = (mark.glyph, mark.role)
        band_rows: set[int] = set()
        if spec.band is not None:
            top, bottom = self.cell_row(spec.band[1]), self.cell_row(spec.band[0])
            band_rows = set(range(top, bottom + 1))
        labels = self._gutter_labels()
        out = []
        gutter_style = self.base + self.style("gutter")
        band = self.base + self.style("band")
        combined: dict[tuple[bool, str | None], Style] = {}

        def cell_style(in_band: bool, role: str | None) -> Style:
            # one Style per (band, role), not one per cell
            style = combined.get((in_band, role))
            if style is None:
                background = band if in_band else self.base
                style = background if role is None else background + self.style(role)
                combined[(in_band, role)] = style
            return style

        for r in range(self.rows):
            in_band = r in band_rows
            label = labels.get(r, "").rjust(self.gutter - 1)[: self.gutter - 1]
            segments = [Segment(label + " ", gutter_style)]
            bits, roles = self.bits[r], self.role[r]
            for c in range(self.cols):
                mark = glyphs.get((r, c))
                if mark is not None:
                    segments.append(Segment(mark[0], cell_style(in_band, mark[1])))
                    continue
                text = chr(_BRAILLE + bits[c]) if bits[c] else " "
                segments.append(Segment(text, cell_style(in_band, roles[c])))
            out.append(Strip(Segment.simplify(segments)).crop_extend(0, self.width, self.base))
        out.append(self._x_axis(gutter_style))
        return out

    def _gutter_labels(self) -> dict[int, str]:
        spec = self.spec
        labels = {0: spec.y_label(self.y_high), self.rows - 1: spec.y_label(self.y_low)}
        extra = list(spec.band or ())
        if spec.baseline is not None and self.y_low <= spec.baseline <= self.y_high:
            extra.append(spec.baseline)
        for value in extra:
            labels[self.cell_row(value)] = spec.y_label(value)  # the band's bounds win
        return labels

    def _x_axis(self, style: Style) -> Strip:
        left, right = self.spec.x_left, self.spec.x_right
        room = self.cols - len(left)
        text = " " * self.gutter + left + right.rjust(room) if room > len(right) else left
        return Strip([Segment(text[: self.width], style)]).crop_extend(0, self.width, self.base)
