"""Position size: base stake x conviction x regime, capped on probation (DESIGN.md "Sizing").

Conviction: ULTRA (2.5x) when the whale direction and the retail OFI both agree with the
signal; HIGH (1.5x) when only the whales agree; NORMAL (1.0x) otherwise. When CoinGlass adds a
cross-exchange taker split, the whales "agree" only if that split leans the same way too.
Regime: RANDOM 0.5x, every other regime 1.0x. A symbol on PROBATION is capped at 0.2x: the
cap is a ceiling on the product, not a further factor, so every probation entry is 0.2x at
most whatever its conviction.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SizingConfig
from .types import Conviction, Regime, Side, WhaleDirection

CROSS_NEUTRAL_RATIO = 0.5  # a cross-exchange taker buy share that leans neither way


def whales_agree(side: Side, whale: WhaleDirection, cross_buy_ratio: float | None) -> bool:
    if whale.sign != side.sign:
        return False
    if cross_buy_ratio is None:
        return True
    lean = cross_buy_ratio - CROSS_NEUTRAL_RATIO
    return lean * side.sign > 0


def retail_agrees(side: Side, retail_ofi: float) -> bool:
    return retail_ofi * side.sign > 0


#: `WhaleDirection.sign` by value, read without the property (a conviction per signal bar)
_WHALE_SIGN = {w.value: w.sign for w in WhaleDirection}


def conviction(
    side: Side, whale: WhaleDirection, retail_ofi: float, cross_buy_ratio: float | None = None
) -> Conviction:
    """`whales_agree` then `retail_agrees`, written out (the same tests, in the same order):
    one call per signal bar instead of four."""
    sign = 1 if side is Side.LONG else -1  # `Side.sign`
    if _WHALE_SIGN[whale._value_] != sign:
        return Conviction.NORMAL
    if cross_buy_ratio is not None and not (cross_buy_ratio - CROSS_NEUTRAL_RATIO) * sign > 0:
        return Conviction.NORMAL
    return Conviction.ULTRA if retail_ofi * sign > 0 else Conviction.HIGH


def conviction_multiplier(level: Conviction, sizing: SizingConfig) -> float:
    return {
        Conviction.ULTRA: sizing.ultra,
        Conviction.HIGH: sizing.high,
        Conviction.NORMAL: sizing.normal,
    }[level]


def regime_multiplier(regime: Regime, sizing: SizingConfig) -> float:
    return sizing.random_regime if regime is Regime.RANDOM else 1.0


@dataclass(frozen=True, slots=True)
class SizeBreakdown:
    """How a size multiplier was reached (kept on the decision for the operator)."""

    conviction: Conviction
    conviction_x: float
    regime_x: float
    probation_cap: float | None  # the cap applied, None when the symbol is ACTIVE

    @property
    def multiplier(self) -> float:
        product = self.conviction_x * self.regime_x
        return product if self.probation_cap is None else min(product, self.probation_cap)

    def describe(self) -> str:
        text = f"{self.conviction.value} {self.conviction_x:g}x * regime {self.regime_x:g}x"
        if self.probation_cap is not None:
            text += f", probation cap {self.probation_cap:g}x"
        return f"{text} = {self.multiplier:g}x"


def size_breakdown(
    level: Conviction, regime: Regime, on_probation: bool, sizing: SizingConfig
) -> SizeBreakdown:
    return SizeBreakdown(
        conviction=level,
        conviction_x=conviction_multiplier(level, sizing),
        regime_x=regime_multiplier(regime, sizing),
        probation_cap=sizing.probation_cap if on_probation else None,
    )


def stake_usd(multiplier: float, sizing: SizingConfig) -> float:
    return sizing.base_stake_usd * multiplier


def largest_multiplier(sizing: SizingConfig) -> float:
    """The biggest size multiple an entry can get (the best conviction in the best regime)."""
    best_conviction = max(conviction_multiplier(level, sizing) for level in Conviction)
    return best_conviction * max(1.0, sizing.random_regime)


def fully_funded_equity_usd(sizing: SizingConfig, max_positions: int) -> float:
    """The paper account a replay's P&L is measured against: the capital that holds the
    largest book the rules allow (`max_positions` open, each at the largest multiple)
    without leverage. The stakes are fixed, so this number does not change any trade."""
    return max_positions * stake_usd(largest_multiplier(sizing), sizing)
