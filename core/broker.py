"""Paper fills for the live ledger (DESIGN.md "Positions and exits").

Market orders (entries, the emergency stop, operator closes) are moved against us by
slippage = half the spread + impact, where impact grows with the order's share of the bar's
quote volume (`impact_bps_per_pct_volume` per 1 %, the share capped at 100 %: an order can
never take more than the whole bar, which also keeps a zero-volume bar finite). Take-profit
tiers rest as limit orders and fill at their level without slippage. Every fill pays
`fee_bps` of its notional. The shadow ledger uses the same fees with zero slippage.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bar import Bar
from .config import BrokerConfig

BPS = 1e-4
PCT = 100.0


def bar_quote_volume(bar: Bar) -> float:
    """The bar's traded notional, valued at its typical price."""
    return bar.volume * (bar.high + bar.low + bar.close) / 3.0


def volume_share_pct(notional_usd: float, bar: Bar) -> float:
    """The order's share of the bar's quote volume in %, at most 100."""
    quote = bar_quote_volume(bar)
    if quote <= 0.0:
        return PCT
    return min(PCT, PCT * notional_usd / quote)


@dataclass(frozen=True, slots=True)
class Fill:
    """One executed order: the price after slippage, the slippage and the fee paid."""

    price: float
    slippage_bps: float
    fee_usd: float


class PaperBroker:
    def __init__(self, config: BrokerConfig, fee_bps: float) -> None:
        self.config = config
        self.fee_bps = fee_bps

    def slippage_bps(self, notional_usd: float, bar: Bar) -> float:
        impact = self.config.impact_bps_per_pct_volume * volume_share_pct(notional_usd, bar)
        return self.config.half_spread_bps + impact

    def fee_usd(self, qty: float, price: float) -> float:
        return qty * price * self.fee_bps * BPS

    def market(self, direction: int, qty: float, reference_price: float, bar: Bar) -> Fill:
        """A market order (+1 buys, -1 sells) at `reference_price`, moved against us."""
        slippage = self.slippage_bps(qty * reference_price, bar)
        price = reference_price * (1.0 + direction * slippage * BPS)
        return Fill(price, slippage, self.fee_usd(qty, price))

    def limit(self, qty: float, price: float) -> Fill:
        """A resting order filled at its own price."""
        return Fill(price, 0.0, self.fee_usd(qty, price))

    def ideal(self, qty: float, price: float) -> Fill:
        """The shadow ledger's fill: no slippage, same fee."""
        return Fill(price, 0.0, self.fee_usd(qty, price))
