"""Blocked entry signals, newest first: time, symbol, side, reason code, detail.

Reason codes carry their own colour, and WHALE_CONFLICT (whales trading against the signal)
is drawn as a badge so it stands out even without colour.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from bigalpha_tui.core.snapshot import GuardBlockView
from bigalpha_tui.core.types import BlockReason

from . import fmt

REASON_CLASS = {
    BlockReason.PAUSED: "paused",
    BlockReason.GOLDEN_HOUR: "golden",
    BlockReason.COOLDOWN: "cooldown",
    BlockReason.MAX_POSITIONS: "max",
    BlockReason.FEE_EDGE: "fee",
    BlockReason.WHALE_CONFLICT: "whale",
}
REASON_WIDTH = max(len(r.value) for r in BlockReason) + 3


class GuardLog(Widget):
    """As many of the latest blocks as fit, newest on top."""

    DEFAULT_CSS = """
    GuardLog { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    GuardLog > .guard-log--whale { color: $text-error; background: $error-muted; text-style: bold; }
    GuardLog > .guard-log--fee { color: $text-warning; }
    GuardLog > .guard-log--max { color: $text-accent; }
    GuardLog > .guard-log--golden { color: $foreground-muted; }
    GuardLog > .guard-log--cooldown { color: $text-secondary; }
    GuardLog > .guard-log--paused { color: $text-secondary; }
    GuardLog > .guard-log--muted { color: $foreground-muted; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "guard-log--whale",
        "guard-log--fee",
        "guard-log--max",
        "guard-log--golden",
        "guard-log--cooldown",
        "guard-log--paused",
        "guard-log--muted",
    }

    blocks: reactive[tuple[GuardBlockView, ...]] = reactive(tuple)
    """Blocked signals, newest first."""

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"guard-log--{name}", partial=True)

    def render(self) -> Text:
        muted = self._style("muted")
        if not self.blocks:
            return Text("no blocked entries yet", muted)
        lines = []
        for block in self.blocks[: max(1, self.size.height)]:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{fmt.utc_clock(block.time_s, seconds=False)} ", muted)
            line.append(f"{block.symbol:<9}{block.side.value:<6}")
            reason = f" {block.reason.value} "
            line.append(reason, self._style(REASON_CLASS.get(block.reason, "muted")))
            line.append(" " * (REASON_WIDTH - len(reason)))
            line.append(block.detail, muted)
            lines.append(line)
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)
