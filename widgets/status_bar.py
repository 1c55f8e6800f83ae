"""The cockpit's one-line header: market time, golden hour, source health, heartbeat, badges.

It draws a `StatusInfo` (built by the app from the latest snapshot and the clocks) and drops
the least important segments first when the terminal is narrow. Every state is a word, never
a colour alone: PAUSED, READ-ONLY, STALE, GOLDEN OPEN/closed, the source state.
"""

from __future__ import annotations

from collections.abc import Callable
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
    #: the source's last error in full (the narrow line keeps it over the counters)
    source_error: str = ""
    #: switchable guards the operator turned off: a GUARDS OFF badge
    guards_off: tuple[str, ...] = ()
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
        form = [0] * len(segments)  # index into each segment's forms; DROPPED: gone
        # Too long: apply the cuts in priority order (shorten or drop, lowest first) until
        # the line fits; one segment always stays.
        cuts = sorted(
            [(p, i, k + 1) for i, seg in enumerate(segments) for k, p in enumerate(seg.steps)]
            + [(seg.drop, i, DROPPED) for i, seg in enumerate(segments)],
            key=lambda cut: (cut[0], -cut[1]),
        )
        for _, i, to in cuts:
            if _joined_length(_chosen(segments, form)) <= width:
                break
            if form[i] == DROPPED:
                continue
            if to == DROPPED:
                if sum(1 for f in form if f != DROPPED) > 1:
                    form[i] = DROPPED
            else:
                form[i] = max(form[i], to)
        chosen = _chosen(segments, form)
        room = width - _joined_length(chosen)
        if room > 0:
            # a clipped source error takes the room the cuts left over
            for i, seg in enumerate(segments):
                if form[i] != DROPPED and seg.fill is not None:
                    index = [k for k in range(len(segments)) if form[k] != DROPPED].index(i)
                    chosen[index] = seg.fill(form[i], room)
                    break
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(" ")
        for n, text in enumerate(chosen):
            if n:
                line.append(SEPARATOR, self._style("label"))
            line.append_text(text)
        return line

    def _segments(self) -> list[Segment]:
        """In display order: each with its forms (full first) and the priority of each cut
        (a higher number survives longer). The order at 80 columns during an outage keeps,
        the badges, the source's state and last error, then the golden-hour state, then
        GUARDS OFF (no entry happens without data anyway); the clock, the heartbeat age and
        NET go first (the heartbeat turns into a STALE badge when it matters; NET is also in
        the positions title)."""
        s = self.status
        outage = not s.source_ok
        out: list[Segment] = [
            Segment(
                [
                    Text(f"{fmt.utc_stamp(s.market_time_s)} UTC"),
                    Text(f"{fmt.utc_clock(s.market_time_s)} UTC"),
                ],
                steps=(20,),
                drop=30 if outage else 52,
            ),
            Segment(
                [self._golden(f) for f in ("wide", "short", "shorter", "tiny")],
                steps=(15, 50, 65),
                drop=85,
            ),
        ]
        if outage:
            clips = (None, ERROR_WIDE, ERROR_NARROW, 0)
            out.append(
                Segment(
                    [self._source(clip) for clip in clips],
                    steps=(25, 60, 84),
                    drop=88,
                    fill=lambda k, room: self._source(_grown(clips[k], room)),
                )
            )
        else:
            out.append(Segment([self._source(None), self._source(0)], steps=(8,), drop=35))
        heartbeat = self._heartbeat()
        out.append(Segment([heartbeat], drop=97 if s.stale else 45))
        out.append(Segment([self._net()], drop=55 if outage else 70))
        if s.core_problem:
            out.append(self._badge(f"CORE {s.core_problem}", "bad", 100))
        if s.paused:
            out.append(self._badge("PAUSED", "warn", 95))
        if s.halted_reason:
            out.append(self._badge(f"HALTED {s.halted_reason}", "bad", 90))
        if s.read_only:
            out.append(self._badge("READ-ONLY", "info", 92))
        if s.link:
            out.append(self._badge(s.link, "info" if s.link_ok else "bad", 96))
        if s.guards_off:
            named = Text(f" GUARDS OFF: {', '.join(s.guards_off)} ", self._style("badge-warn"))
            short = Text(" GUARDS OFF ", self._style("badge-warn"))
            # in an outage the error says why nothing trades: it outranks the switch
            out.append(Segment([named, short], (40,), 83 if outage else 89))
        if s.warnings:
            out.append(Segment([self._warnings(wide=True), self._warnings(wide=False)], (40,), 82))
        return out

    def _badge(self, label: str, tone: str, drop: int) -> Segment:
        return Segment([Text(f" {label} ", self._style(f"badge-{tone}"))], drop=drop)

    def _golden(self, form: str) -> Text:
        """wide: "GOLDEN OPEN closes in 3h20m"; short: "closes 3h20m"; shorter: "GOLDEN OPEN
        3h20m"; tiny: the state alone."""
        s = self.status
        left = fmt.duration(s.golden_change_in_s)
        word = "closes" if s.golden_open else "opens"
        if s.golden_open:
            text = Text("GOLDEN OPEN", self._style("good"))
        else:
            text = Text("golden closed", self._style("label"))
        tail = {"wide": f" {word} in {left}", "short": f" {word} {left}", "shorter": f" {left}"}
        text.append(tail.get(form, ""), self._style("label"))
        return text

    def _source(self, clip: int | None) -> Text:
        """The source and its state; `clip` None: every detail; a number: the last error
        (or, without one, the leading details) in that many cells; 0: no detail."""
        s = self.status
        text = Text(f"{s.source_name} ")
        text.append(s.source_state, self._style("good" if s.source_ok else "bad"))
        style = self._style("label" if s.source_ok else "warn")
        if clip is None:
            if s.source_detail:
                text.append(f" {s.source_detail}", style)
        elif clip > 0:
            if s.source_error:
                detail = (
                    s.source_error
                    if len(s.source_error) <= clip
                    else (s.source_error[: clip - 1] + "…")
                )
            else:
                detail = clip_parts(s.source_detail, clip)
            if detail:
                text.append(f" · {detail}", style)
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


DROPPED = -1
ERROR_WIDE = 40  # cells of the source's last error once the counters are cut
ERROR_NARROW = 24  # ... and on a narrow line (the fill gives it any room left over)
ERROR_MIN = 8  # fewer cells of an error say nothing: left out


@dataclass(frozen=True, slots=True)
class Segment:
    """One part of the status line: its forms from full to shortest, the priority at which
    each shorter form replaces the one before (`steps`), and the priority at which it goes.
    `fill(form, room)` redraws a form wider when the line has room to spare."""

    forms: list[Text]
    steps: tuple[int, ...] = ()
    drop: int = 0
    fill: Callable[[int, int], Text] | None = None


def _chosen(segments: list[Segment], form: list[int]) -> list[Text]:
    return [seg.forms[f] for seg, f in zip(segments, form, strict=True) if f != DROPPED]


def _grown(clip: int | None, room: int) -> int | None:
    """The error clip with `room` more cells (a bare form pays 3 for the " · " first)."""
    if clip is None:
        return None
    grown = clip + room if clip else room - len(" · ")
    return grown if grown >= ERROR_MIN else 0


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
