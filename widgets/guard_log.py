"""Blocked entry signals, newest first: time, symbol, side, reason code, detail.

Reason codes carry their own colour, and WHALE_CONFLICT (whales trading against the signal)
is drawn as a badge so it stands out even without colour. A block from an earlier market day
than the snapshot's shows its date (`01-04 23:10`), today's only the time: the log is kept
across restarts. Focused, the list has a cursor (`j`/`k`, arrows) and `enter` asks for the
highlighted block in full (the detail column is cut at the panel's edge).
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
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


def block_fields(block: GuardBlockView) -> list[tuple[str, str]]:
    """Every field of one blocked entry, label and value, for the detail view."""
    return [
        ("Time", f"{fmt.utc_stamp(block.time_s)} UTC (market time)"),
        ("Symbol", block.symbol),
        ("Side", block.side.value),
        ("Blocked by", block.reason.value),
        ("Why", block.detail or fmt.DASH),
    ]


class GuardLog(Widget, can_focus=True):
    """As many of the latest blocks as fit, newest on top; focused, a cursor row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("enter", "select", "In full", show=False),
    ]

    DEFAULT_CSS = """
    GuardLog { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    GuardLog > .guard-log--whale { color: $text-error; background: $error-muted; text-style: bold; }
    GuardLog > .guard-log--fee { color: $text-warning; }
    GuardLog > .guard-log--max { color: $text-accent; }
    GuardLog > .guard-log--golden { color: $foreground-muted; }
    GuardLog > .guard-log--cooldown { color: $text-secondary; }
    GuardLog > .guard-log--paused { color: $text-secondary; }
    GuardLog > .guard-log--muted { color: $foreground-muted; }
    GuardLog > .guard-log--cursor { background: $block-cursor-background; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "guard-log--whale",
        "guard-log--fee",
        "guard-log--max",
        "guard-log--golden",
        "guard-log--cooldown",
        "guard-log--paused",
        "guard-log--muted",
        "guard-log--cursor",
    }

    class Selected(Message):
        """`enter` on a block: show it in full."""

        def __init__(self, block: GuardBlockView) -> None:
            super().__init__()
            self.block = block

    blocks: reactive[tuple[GuardBlockView, ...]] = reactive(tuple)
    """Blocked signals, newest first."""

    market_now_s: reactive[float | None] = reactive(None)
    """The snapshot's market time: blocks from another UTC day show their date."""

    cursor: reactive[int] = reactive(0)
    """Index into `blocks` of the highlighted row (drawn while focused)."""

    def watch_blocks(
        self, old: tuple[GuardBlockView, ...], new: tuple[GuardBlockView, ...]
    ) -> None:
        # new blocks arrive on top: the cursor stays on its block unless it was on the newest
        if self.cursor and old and 0 <= self.cursor < len(old) and old[self.cursor] in new:
            self.cursor = new.index(old[self.cursor])
        else:
            self.cursor = min(self.cursor, max(0, len(new) - 1))

    def action_cursor(self, step: int) -> None:
        if self.blocks:
            self.cursor = max(0, min(len(self.blocks) - 1, self.cursor + step))

    def action_select(self) -> None:
        block = self.block_at_cursor()
        if block is not None:
            self.post_message(self.Selected(block))

    def block_at_cursor(self) -> GuardBlockView | None:
        if 0 <= self.cursor < len(self.blocks):
            return self.blocks[self.cursor]
        return None

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"guard-log--{name}", partial=True)

    def when(self, block: GuardBlockView) -> str:
        return fmt.clock_or_date(block.time_s, self.market_now_s)

    def render(self) -> Text:
        muted = self._style("muted")
        if not self.blocks:
            return Text("no blocked entries yet", muted)
        height = max(1, self.size.height)
        top = max(0, self.cursor - height + 1)
        window = self.blocks[top : top + height]
        # one width for the time column: dated as soon as one visible line is dated
        width = max(len(self.when(b)) for b in window)
        lines = []
        for index, block in enumerate(window, start=top):
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"{self.when(block):>{width}} ", muted)
            line.append(f"{block.symbol:<9}{block.side.value:<6}")
            reason = f" {block.reason.value} "
            line.append(reason, self._style(REASON_CLASS.get(block.reason, "muted")))
            line.append(" " * (REASON_WIDTH - len(reason)))
            line.append(block.detail, muted)
            if index == self.cursor and self.has_focus:
                line.stylize(self._style("cursor"))
            lines.append(line)
        return Text("\n", no_wrap=True, overflow="ellipsis").join(lines)
