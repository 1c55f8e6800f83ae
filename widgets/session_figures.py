"""One line under the status line: what the bot did and whether it made money.

`Today +$14.62 │ Bot up since 08:30 · 11 trades · 64% won · PF live 1.84 (11) · shadow
2.10 (11) · fees $3.20`

Today is the market day's (00:00 UTC of the market clock) realised P&L net of fees: the live
trades closed since midnight, as the journal shows them, plus the exits (take-profit tiers)
open positions took since midnight (`core/trading_view.py`). The rest counts the trades the
bot closed since it started, as freqtrade and hummingbot count theirs: a cockpit attached to
a running bot shows the bot's figures, so closing and reopening the cockpit keeps them, but a
restart of the bot begins a new count, which is why the line says when the bot came up (and
calls them the bot's at every width) rather than "session". The core computes every figure
(`SessionView`); this widget only picks the longest wording that fits the width, dropping the
least needed figures first (the start time, fees, then the words), never cutting a number in
half.
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
    pfs = [("PF ", "label"), *live, DOT, ("shadow ", "label"), *shadow]
    rate = [DOT, *won(view)] if view.trades else []  # beside the count: no `0 trades` twice
    bot: list[Piece] = [("Bot ", "label")]  # the bot's figures, since it (re)started
    up = [("Bot up since ", "label"), (started(view), "")] if view.started_s is not None else []
    timed = [[*today, BAR, *up, DOT, (trades, ""), *rate]] if up else []
    return [
        *(
            [*t, DOT, ("PF live ", "label"), *live, DOT, ("shadow ", "label"), *shadow, *fees]
            for t in timed
        ),
        *([*t, DOT, *pfs, *fees] for t in timed),
        *([*today, BAR, *up, DOT, *won(view), DOT, *pfs, *fees] for _ in timed),
        [*today, BAR, *bot, (trades, ""), *rate, DOT, *pfs, *fees],
        [*today, BAR, *bot, *won(view), DOT, *pfs, *fees],
        [*today, BAR, *bot, *won(view), DOT, *pfs],
        [*today, BAR, *bot, *won(view), DOT, ("PF ", "label"), *live, (" sh ", "label"), *shadow],
        [*today, BAR, *won(view), DOT, ("PF ", "label"), *live, (" sh ", "label"), *shadow],
        [*today, BAR, ("PF ", "label"), *live, (" sh ", "label"), *shadow],
    ]  # fmt: skip


def started(view: SessionView) -> str:
    """When the bot came up: `08:30`, with the date when that was before today's 00:00 UTC."""
    start = view.started_s
    if start is None:
        return fmt.DASH
    if view.day_start_s is not None and start < view.day_start_s:
        return fmt.utc_day_minute(start)
    return fmt.utc_clock(start, seconds=False)


def width_of(pieces: list[Piece]) -> int:
    return sum(Text(text).cell_len for text, _ in pieces)


def fit(view: SessionView, width: int) -> list[Piece]:
    """The longest wording of the line that fits `width` cells (the shortest otherwise)."""
    options = variants(view)
    return next((p for p in options if width_of(p) <= width), options[-1])


class SessionFigures(Widget):
    """Today's P&L and, since the bot started, its trades, win rate, live and shadow PF and
    fees."""

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
