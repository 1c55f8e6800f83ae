"""The cockpit's one-line header: market time, golden hour, source health, heartbeat, badges.

It draws a `StatusInfo` (built by the app from the latest snapshot and the clocks) and drops
the least important segments first when the terminal is narrow. Every state is a word, never
a colour alone: PAUSED, READ-ONLY, STALE, GOLDEN OPEN/closed, the source state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from . import fmt

SEPARATOR = " │ "


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """Everything the header shows, already reduced to display values."""

    market_time_s: float | None = None
    golden_open: bool = False
    golden_change_in_s: float | None = None
    source_name: str = ""
    source_state: str = ""
    source_ok: bool = True
    source_detail: str = ""
    heartbeat_age_s: float | None = None
    stale: bool = False
    paused: bool = False
    net_pnl_usd: float = 0.0
    read_only: bool = False
    warnings: tuple[str, ...] = ()
    core_problem: str = ""
    halted_reason: str = ""
    #: attached cockpits: "ATTACHED", "RECONNECTED" or "BOT STOPPED at 09:12 UTC"
    link: str = ""
    link_ok: bool = True


class StatusBar(Widget):
    """One line: `09:12:05 UTC │ GOLDEN OPEN 6h47m │ sim ok │ ♥ 4s │ NET +$12.30 │ PAUSED`."""

    DEFAULT_CSS = """
    StatusBar {
        text-wrap: nowrap;
        text-overflow: ellipsis;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    StatusBar > .status-bar--label { color: $foreground-muted; }
    StatusBar > .status-bar--good { color: $text-success; }
    StatusBar > .status-bar--bad { color: $text-error; text-style: bold; }
    StatusBar > .status-bar--warn { color: $text-warning; }
    StatusBar > .status-bar--badge-warn {
        color: $text-warning; background: $warning-muted; text-style: bold;
    }
    StatusBar > .status-bar--badge-bad {
        color: $text-error; background: $error-muted; text-style: bold;
    }
    StatusBar > .status-bar--badge-info {
        color: $text-accent; background: $accent-muted; text-style: bold;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "status-bar--label",
        "status-bar--good",
        "status-bar--bad",
        "status-bar--warn",
        "status-bar--badge-warn",
        "status-bar--badge-bad",
        "status-bar--badge-info",
    }

    status: reactive[StatusInfo] = reactive(StatusInfo)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"status-bar--{name}", partial=True)

    def render(self) -> Text:
        width = self.size.width
        segments = self._segments()
        chosen = [full for _, full, _ in segments]
        # Too long: shorten the least important segments first, then drop them.
        by_priority = sorted(range(len(segments)), key=lambda i: (segments[i][0], -i))
        for i in by_priority:
            if _joined_length(chosen) <= width:
                break
            chosen[i] = segments[i][2]
        kept = list(range(len(segments)))
        for i in by_priority:
            if len(kept) <= 1 or _joined_length([chosen[k] for k in kept]) <= width:
                break
            kept.remove(i)
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" ")
        for n, index in enumerate(kept):
            if n:
                line.append(SEPARATOR, self._style("label"))
            line.append_text(chosen[index])
        return line

    def _segments(self) -> list[tuple[int, Text, Text]]:
        """(priority, full text, short text) in display order; higher priority survives."""
        s = self.status
        out: list[tuple[int, Text, Text]] = []
        out.append(
            (
                60,
                Text(f"{fmt.utc_stamp(s.market_time_s)} UTC"),
                Text(f"{fmt.utc_clock(s.market_time_s)} UTC"),
            )
        )
        out.append((50, self._golden(wide=True), self._golden(wide=False)))
        out.append((88 if not s.source_ok else 40, self._source(True), self._source(False)))
        heartbeat = self._heartbeat()
        out.append((97 if s.stale else 70, heartbeat, heartbeat))
        net = self._net()
        out.append((80, net, net))
        badges: list[tuple[int, Text]] = []
        if s.core_problem:
            badges.append((100, Text(f" CORE {s.core_problem} ", self._style("badge-bad"))))
        if s.paused:
            badges.append((95, Text(" PAUSED ", self._style("badge-warn"))))
        if s.halted_reason:
            badges.append((90, Text(f" HALTED {s.halted_reason} ", self._style("badge-bad"))))
        if s.read_only:
            badges.append((92, Text(" READ-ONLY ", self._style("badge-info"))))
        if s.link:
            style = self._style("badge-info" if s.link_ok else "badge-bad")
            badges.append((96, Text(f" {s.link} ", style)))
        out.extend((priority, badge, badge) for priority, badge in badges)
        if s.warnings:
            out.append((85, self._warnings(wide=True), self._warnings(wide=False)))
        return out

    def _golden(self, wide: bool) -> Text:
        s = self.status
        left = fmt.duration(s.golden_change_in_s)
        if s.golden_open:
            text = Text("GOLDEN OPEN", self._style("good"))
            text.append(f" {'closes in' if wide else 'closes'} {left}", self._style("label"))
        else:
            text = Text("golden closed", self._style("label"))
            text.append(f" {'opens in' if wide else 'opens'} {left}", self._style("label"))
        return text

    def _source(self, wide: bool) -> Text:
        s = self.status
        text = Text(f"{s.source_name} ")
        text.append(s.source_state, self._style("good" if s.source_ok else "bad"))
        if s.source_detail and (wide or not s.source_ok):
            detail = s.source_detail if wide else clip_parts(s.source_detail, NARROW_DETAIL)
            text.append(f" {detail}", self._style("label" if s.source_ok else "warn"))
        return text

    def _heartbeat(self) -> Text:
        s = self.status
        if s.stale:
            age = "no bar yet" if s.heartbeat_age_s is None else fmt.duration(s.heartbeat_age_s)
            return Text(f" STALE ♥ {age} ", self._style("badge-bad"))
        if s.heartbeat_age_s is None:
            return Text("♥ waiting", self._style("label"))
        return Text(f"♥ {fmt.duration(s.heartbeat_age_s)}", self._style("label"))

    def _net(self) -> Text:
        pnl = self.status.net_pnl_usd
        text = Text("NET ", self._style("label"))
        text.append(fmt.usd(pnl), self._style("good" if pnl > 0 else "bad" if pnl < 0 else "label"))
        return text

    def _warnings(self, wide: bool) -> Text:
        warnings = self.status.warnings
        label = f"⚠ {len(warnings)} store warning{'s' if len(warnings) != 1 else ''}"
        if wide:
            label += f": {warnings[0][:60]}"
        return Text(label, self._style("warn"))


def _joined_length(texts: list[Text]) -> int:
    return 1 + sum(t.cell_len for t in texts) + len(SEPARATOR) * (len(texts) - 1)


NARROW_DETAIL = 24  # characters of source detail on a narrow status line


def clip_parts(text: str, width: int, sep: str = " · ") -> str:
    """The leading `sep`-joined parts of `text` that fit in `width`; a first part that is
    too long alone is cut with an ellipsis. Never ends on a dangling separator."""
    if len(text) <= width:
        return text
    out = ""
    for part in text.split(sep):
        candidate = f"{out}{sep}{part}" if out else part
        if len(candidate) > width:
            break
        out = candidate
    return out or text[: width - 1] + "…"
