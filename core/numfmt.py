"""Numbers as the operator reads them, shared by the cockpit's widgets and the headless
output, so both print a figure the same way (`+97.7k`, never `+9.766e+04` beside `97.7k`).

Plain functions with no textual or rich import: `--no-ui` must not load either.
"""

from __future__ import annotations

import math

DASH = "—"
INFINITY = "∞"

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def compact(x: float | None, *, signed: bool = False) -> str:
    """3 significant figures with a k/M/G suffix: 1234 -> 1.23k, -935000 -> -935k."""
    if x is None or math.isnan(x):
        return DASH
    if math.isinf(x):
        return ("-" if x < 0 else "+" if signed else "") + INFINITY
    sign = "-" if x < 0 else ("+" if signed else "")
    a = abs(x)
    for scale, suffix in _SI:
        if a >= scale * 0.9995:
            return f"{sign}{_three_figures(a / scale)}{suffix}"
    if a < 0.0005:
        return "0" if not signed else "±0"
    return f"{sign}{_three_figures(a)}"


def _three_figures(a: float) -> str:
    if a >= 99.95:
        return f"{a:.0f}"
    if a >= 9.995:
        return f"{a:.1f}"
    if a >= 0.9995:
        return f"{a:.2f}"
    return f"{a:.3f}"


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def price(x: float | None) -> str:
    """Prices with decimals that suit their size: 94,251.2 / 3,215.24 / 138.41 / 2.2403."""
    if not finite(x):
        return DASH
    assert x is not None
    a = abs(x)
    if a >= 10_000:
        return f"{x:,.1f}"
    if a >= 100:
        return f"{x:,.2f}"
    if a >= 1:
        return f"{x:.4f}"
    return f"{x:.6f}"


def qty(x: float) -> str:
    """Position size in base units, 4 significant figures."""
    if not math.isfinite(x):
        return DASH
    return f"{x:.4g}"


def usd(x: float | None, *, signed: bool = True) -> str:
    """Money in quote currency: +$12.30, -$1.2k for large amounts."""
    if not finite(x):
        return DASH
    assert x is not None
    sign = "-" if x < 0 else ("+" if signed else "")
    a = abs(x)
    body = f"{a:,.2f}" if a < 10_000 else compact(a)
    return f"{sign}${body}"
