"""Display formatting shared by the cockpit widgets: numbers, money, times, arrows.

Pure functions of their arguments (no widget state), so every widget draws a value the same
way and the rules are testable without an app. The ones headless output and the
core's event messages print too (`compact`, `price`, `qty`, `usd`) live in `core/numfmt.py`,
which imports neither textual nor rich.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.cells import cell_len

from bigalpha_tui.core.numfmt import DASH as DASH
from bigalpha_tui.core.numfmt import INFINITY as INFINITY
from bigalpha_tui.core.numfmt import compact as compact
from bigalpha_tui.core.numfmt import finite as finite
from bigalpha_tui.core.numfmt import price as price
from bigalpha_tui.core.numfmt import qty as qty
from bigalpha_tui.core.numfmt import usd as usd


def pct(x: float | None, *, decimals: int = 2) -> str:
    """Signed percentage: +0.84%."""
    if not finite(x):
        return DASH
    return f"{x:+.{decimals}f}%"


def profit_factor(pf: float | None) -> str:
    """PF: None (no trades) as a dash, no losses as ∞, else two decimals."""
    if pf is None or math.isnan(pf):
        return DASH
    if math.isinf(pf):
        return INFINITY
    return f"{pf:.2f}"


def duration(seconds: float | None) -> str:
    """A span for the operator: 45s, 27m, 3h27m, 2d4h."""
    if seconds is None or not math.isfinite(seconds):
        return DASH
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s" if m < 10 else f"{m}m"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h}h"


def utc_clock(t: float | None, *, seconds: bool = True) -> str:
    """HH:MM:SS (or HH:MM) UTC of an epoch time."""
    if not finite(t):
        return DASH
    assert t is not None
    fmt = "%H:%M:%S" if seconds else "%H:%M"
    return datetime.fromtimestamp(t, UTC).strftime(fmt)


def utc_stamp(t: float | None) -> str:
    """YYYY-MM-DD HH:MM:SS UTC of an epoch time."""
    if not finite(t):
        return DASH
    assert t is not None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def utc_day_minute(t: float | None) -> str:
    """MM-DD HH:MM UTC of an epoch time: a date and a time in 11 columns."""
    if not finite(t):
        return DASH
    assert t is not None
    return datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M")


def same_utc_day(t: float, now_s: float) -> bool:
    """Do two epoch times fall on the same UTC date (the market day)?"""
    return datetime.fromtimestamp(t, UTC).date() == datetime.fromtimestamp(now_s, UTC).date()


def clock_or_date(t: float | None, now_s: float | None, *, with_time: bool = True) -> str:
    """HH:MM for a time on the market day of `now_s`; an earlier (or later) day adds its
    date, MM-DD HH:MM (or only MM-DD without `with_time`, for narrow columns). Without a
    `now_s` the date is always shown: a time alone would pass for today."""
    if not finite(t):
        return DASH
    assert t is not None
    if finite(now_s) and now_s is not None and same_utc_day(t, now_s):
        return utc_clock(t, seconds=False)
    return utc_day_minute(t) if with_time else datetime.fromtimestamp(t, UTC).strftime("%m-%d")


def time_left(seconds: float) -> str:
    """A countdown that cannot be read as a clock time: 12m left, 45s left, 1h05m left."""
    total = max(0, math.ceil(seconds))
    if total < 60:
        return f"{total}s left"
    minutes = math.ceil(total / 60)
    if minutes < 60:
        return f"{minutes}m left"
    return f"{minutes // 60}h{minutes % 60:02d}m left"


def trend_arrow(sign: int) -> str:
    return "▲" if sign > 0 else "▼" if sign < 0 else "▶"


def fit_parts(parts: Sequence[str], width: int, sep: str = " · ") -> str:
    """`parts` joined by `sep`, starting a new line before a part that would not fit in
    `width` columns, so a narrow terminal wraps a summary between its parts, never inside
    one ("net +$5.95" stays whole) and never cuts the last one off."""
    lines: list[str] = []
    line = ""
    for part in parts:
        joined = f"{line}{sep}{part}" if line else part
        if line and cell_len(joined) > width:
            lines.append(line)
            line = part
        else:
            line = joined
    if line:
        lines.append(line)
    return "\n".join(lines)
