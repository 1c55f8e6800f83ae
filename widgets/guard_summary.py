"""Guard effectiveness: per reason code, whether the guard is on, how many entries it
blocked, and what those blocked trades would have made (their shadow twins): "cost" when the
guard kept us out of winners, "saved" when it kept us out of losers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from bigalpha_tui.core.snapshot import GuardStatsView
from bigalpha_tui.core.types import SWITCHABLE_GUARDS, BlockReason

from . import fmt


class GuardSummary(Widget):
    """`reason  guard  blocks  outcome` — one line per gate."""

    DEFAULT_CSS = """
    GuardSummary { height: 6; text-wrap: nowrap; text-overflow: ellipsis; }
    GuardSummary > .guard-summary--header { color: $foreground-muted; text-style: underline; }
    GuardSummary > .guard-summary--on { color: $text-success; }
    GuardSummary > .guard-summary--off { color: $text-error; text-style: bold; }
    GuardSummary > .guard-summary--cost { color: $text-warning; }
    GuardSummary > .guard-summary--saved { color: $text-success; }
    GuardSummary > .guard-summary--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "guard-summary--header",
        "guard-summary--on",
        "guard-summary--off",
        "guard-summary--cost",
        "guard-summary--saved",
        "guard-summary--muted",
    }

    stats: reactive[tuple[GuardStatsView, ...]] = reactive(tuple)
    """Effectiveness per reason code."""
    enabled: reactive[tuple[tuple[BlockReason, bool], ...]] = reactive(tuple)
    """Switch state of each switchable guard."""

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"guard-summary--{name}", partial=True)

    def show(self, stats: Sequence[GuardStatsView], enabled: Mapping[BlockReason, bool]) -> None:
        self.stats = tuple(stats)
        self.enabled = tuple(sorted(enabled.items()))

    def rows(self) -> list[tuple[BlockReason, GuardStatsView]]:
        """Every gate in pipeline order, with zero stats for gates that never blocked."""
        by_reason = {s.reason: s for s in self.stats}
        return [(r, by_reason.get(r, GuardStatsView(r))) for r in BlockReason]

    def render(self) -> Text:
        enabled = dict(self.enabled)
        lines = [Text(f"{'gate':<16}{'guard':<6}{'blocks':>6}  outcome", self._style("header"))]
        for reason, stats in self.rows():
            line = Text(f"{reason.value:<16}")
            if reason in SWITCHABLE_GUARDS:
                on = enabled.get(reason, True)
                line.append(f"{'ON' if on else 'OFF':<6}", self._style("on" if on else "off"))
            else:
                line.append(f"{'—':<6}", self._style("muted"))
            line.append(f"{stats.blocked:>6}  ")
            line.append_text(self._outcome(stats))
            lines.append(line)
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)

    def _outcome(self, stats: GuardStatsView) -> Text:
        cost = stats.opportunity_cost_usd
        if not stats.blocked:
            return Text(fmt.DASH, self._style("muted"))
        if not stats.twins_closed:
            return Text("open", self._style("muted"))  # no twin has closed: nothing to sum
        if cost > 0:
            text = Text(f"cost {fmt.usd(cost, signed=False)}", self._style("cost"))
        elif cost < 0:
            text = Text(f"saved {fmt.usd(-cost, signed=False)}", self._style("saved"))
        else:
            text = Text("even", self._style("muted"))
        if stats.open_twins:
            text.append(f" ({stats.open_twins} open)", self._style("muted"))
        return text
