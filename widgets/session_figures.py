"""One line under the status line: what the bot did and whether it made money.

`Today +$14.62 │ Session since 08:30 · 11 trades · 64% won · PF live 1.84 (11) · shadow
2.10 (11) · fees $3.20`

Today's P&L is the market day's (00:00 UTC of the market clock) closed live trades, net of
fees; the rest counts the trades this session closed (since the core started). The core
computes every figure (`SessionView`); this widget only picks the longest wording that fits
the width, dropping the least needed figures first (fees, then the words), never cutting a
number in half.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from bigalpha_tui.core.snapshot import SessionView

from . import fmt

#: a piece of a line: (text, component style name or "")
Piece = tuple[str, str]
BAR = (" │ ", "label")
DOT = (" · ", "label")


def pf_style(pf: float | None) -> str:
    """A profit factor under 1 loses money; over 1 earns."""
    if pf is None:
        return ""
    return "gain" if pf > 1.0 else "loss" if pf < 1.0 else ""


def money_style(usd: float) -> str:
    return "gain" if usd > 0 else "loss" if usd < 0 else ""


def won(view: SessionView) -> list[Piece]:
    """`64% won`, or `0 trades` before the first (no rate to give)."""
    rate = view.win_rate
    if rate is None:
        return [(f"{view.trades} trades", "")]
    return [(f"{rate * 100:.0f}%", ""), (" won", "label")]


def variants(view: SessionView) -> list[list[Piece]]:
    """The line in every wording, longest first."""
    today: list[Piece] = [
        ("Today ", "label"),
        (fmt.usd(view.today_pnl_usd), money_style(view.today_pnl_usd)),
    ]
    trades = f"{view.trades} trade{'' if view.trades == 1 else 's'}"
    live: list[Piece] = [
        (fmt.profit_factor(view.live_pf), pf_style(view.live_pf)),
        (f" ({view.trades})", "label"),
    ]
    shadow: list[Piece] = [
        (fmt.profit_factor(view.shadow_pf), pf_style(view.shadow_pf)),
        (f" ({view.shadow_trades})", "label"),
    ]
    fees = [DOT, ("fees ", "label"), (fmt.usd(view.fees_usd, signed=False), "")]
    since: list[Piece] = []
    if view.started_s is not None:
        since = [(f" since {fmt.utc_clock(view.started_s, seconds=False)}", "label")]
    pfs = [("PF ", "label"), *live, DOT, ("shadow ", "label"), *shadow]
    rate = [DOT, *won(view)] if view.trades else []  # beside the count: no `0 trades` twice
    return [
        [
            *today, BAR, ("Session", "label"), *since, DOT, (trades, ""), *rate,
            DOT, ("PF live ", "label"), *live, DOT, ("shadow ", "label"), *shadow, *fees,
        ],
        [*today, BAR, ("Session ", "label"), (trades, ""), *rate, DOT, *pfs, *fees],
        [*today, BAR, ("Session ", "label"), *won(view), DOT, *pfs, *fees],
        [*today, BAR, ("Session ", "label"), *won(view), DOT, *pfs],
        [*today, BAR, *won(view), DOT, ("PF ", "label"), *live, (" sh ", "label"), *shadow],
        [*today, BAR, ("PF ", "label"), *live, (" sh ", "label"), *shadow],
    ]  # fmt: skip


def width_of(pieces: list[Piece]) -> int:
    return sum(Text(text).cell_len for text, _ in pieces)


def fit(view: SessionView, width: int) -> list[Piece]:
    """The longest wording of the line that fits `width` cells (the shortest otherwise)."""
    options = variants(view)
    return next((p for p in options if width_of(p) <= width), options[-1])


class SessionFigures(Widget):
    """Today's P&L and the session's trades, win rate, live and shadow PF and fees."""

    DEFAULT_CSS = """
    SessionFigures {
        height: 1;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $panel;
    }
    SessionFigures > .session-figures--label { color: $foreground-muted; }
    SessionFigures > .session-figures--gain { color: $text-success; }
    SessionFigures > .session-figures--loss { color: $text-error; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "session-figures--label",
        "session-figures--gain",
        "session-figures--loss",
    }

    figures: reactive[SessionView] = reactive(SessionView, layout=False)
    """The core's session figures (`Snapshot.session`)."""

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"session-figures--{name}", partial=True)

    def render(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for text, style in fit(self.figures, self.content_size.width):
            line.append(text, self._style(style) if style else "")
        return line
