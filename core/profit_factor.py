"""Profit factor: gross profit over gross loss of closed trades, net of fees.

The learning loop compares profit factors, so the edge cases are part of the rules:

- no trades: undefined, `None` (the symbol is skipped, drawn `—`);
- some profit and no loss: infinite, `math.inf` (drawn `∞`);
- no profit and some loss: 0.0;
- trades that all closed at exactly zero net: 1.0, break-even. They neither earned nor
  bled, which is what PF 1.0 means; calling it "no trades" would hide that the symbol
  traded, and 0/0 read as a loss would send a flat symbol to probation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .trades import ClosedTrade

#: Two profit factors this close (relative) are the same number: a threshold written in the
#: config as 0.8 must not be missed because 80/100 and 0.8 differ in the last float bit.
PF_REL_TOLERANCE = 1e-9


def profit_factor(trades: Iterable[ClosedTrade]) -> float | None:
    """Gross profit / gross loss of `trades` (pnl net of fees); see the module doc."""
    return profit_factor_of_pnls(t.pnl_usd for t in trades)


def profit_factor_of_pnls(pnls_usd: Iterable[float]) -> float | None:
    gross_profit = 0.0
    gross_loss = 0.0
    count = 0
    for pnl in pnls_usd:
        count += 1
        if pnl > 0:
            gross_profit += pnl
        elif pnl < 0:
            gross_loss -= pnl
    if count == 0:
        return None
    if gross_loss == 0.0:
        return math.inf if gross_profit > 0 else 1.0
    return gross_profit / gross_loss


def pf_above(pf: float, threshold: float) -> bool:
    """`pf > threshold`, with values within the tolerance counted as equal (so not above)."""
    if math.isinf(threshold):
        return False
    return pf > threshold + abs(threshold) * PF_REL_TOLERANCE


def pf_below(pf: float, threshold: float) -> bool:
    """`pf < threshold`, with values within the tolerance counted as equal (so not below)."""
    if math.isinf(pf):
        return False
    return pf < threshold - abs(threshold) * PF_REL_TOLERANCE


def pf_json(pf: float | None) -> float | str | None:
    """A profit factor for JSON output: null undefined, "inf" no loss, else the number."""
    if pf is None or math.isnan(pf):
        return None
    if math.isinf(pf):
        return "inf" if pf > 0 else "-inf"
    return round(pf, 4)


def format_pf(pf: float | None) -> str:
    """How a profit factor is drawn: `—` undefined, `∞` no loss, else two decimals."""
    if pf is None or math.isnan(pf):
        return "—"
    if math.isinf(pf):
        return "∞" if pf > 0 else "-∞"
    return f"{pf:.2f}"
