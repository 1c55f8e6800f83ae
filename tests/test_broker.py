"""Paper fills: slippage model, fees, next-bar-open entries and the shadow twin's pricing."""

from __future__ import annotations

from pathlib import Path

import pytest
from trading_helpers import (
    feed,
    make_bar,
    make_loop,
    quiet_config,
    signal_bar,
    warm_bars,
)

from bigalpha_tui.core.broker import PaperBroker, volume_share_pct
from bigalpha_tui.core.config import BrokerConfig
from bigalpha_tui.core.positions import ExitLeg, Position
from bigalpha_tui.core.store import SHADOW_OUTCOMES
from bigalpha_tui.core.trades import Ledger
from bigalpha_tui.core.types import Conviction, ExitReason, Regime, Side

BROKER = PaperBroker(BrokerConfig(half_spread_bps=1.0, impact_bps_per_pct_volume=2.0), 5.0)


def test_slippage_is_half_spread_plus_impact_by_share_of_bar_volume() -> None:
    bar = make_bar(0, 100.0, volume=1000.0)  # 100 000 USD traded
    assert BROKER.slippage_bps(1000.0, bar) == pytest.approx(1.0 + 2.0 * 1.0)
    assert BROKER.slippage_bps(5000.0, bar) == pytest.approx(1.0 + 2.0 * 5.0)


def test_an_order_larger_than_the_bar_counts_as_the_whole_bar() -> None:
    assert volume_share_pct(1e9, make_bar(0, 100.0, volume=1.0)) == 100.0
    assert volume_share_pct(10.0, make_bar(0, 100.0, volume=0.0)) == 100.0


def test_a_buy_pays_more_and_a_sell_receives_less() -> None:
    bar = make_bar(0, 100.0, volume=1000.0)
    buy = BROKER.market(+1, 10.0, 100.0, bar)  # 1 % of volume: 3 bps
    sell = BROKER.market(-1, 10.0, 100.0, bar)
    assert buy.price == pytest.approx(100.03)
    assert sell.price == pytest.approx(99.97)


def test_fees_are_five_bps_a_side_on_the_fill_notional() -> None:
    assert BROKER.limit(2.0, 150.0).fee_usd == pytest.approx(2.0 * 150.0 * 0.0005)
    assert BROKER.ideal(2.0, 150.0) == BROKER.limit(2.0, 150.0)


def test_round_trip_pnl_is_net_of_both_fees() -> None:
    position = Position(
        id="p",
        ledger=Ledger.LIVE,
        strategy="Alpha-OFI",
        symbol="BTCUSDT",
        side=Side.SHORT,
        original_qty=2.0,
        entry_price=100.0,
        entry_s=0.0,
        entry_fee_usd=0.1,
        conviction=Conviction.NORMAL,
        entry_regime=Regime.RANDOM,
        size_multiplier=1.0,
        golden_hour_entry=True,
        force_hold_until_s=None,
        exits=(
            ExitLeg(ExitReason.T1, 1.0, 99.5, 60.0, 0.04975),
            ExitLeg(ExitReason.STOP, 1.0, 101.0, 120.0, 0.0505),
        ),
    )
    trade = position.closed_trade()
    assert trade.pnl_usd == pytest.approx((0.5 - 1.0) - 0.1 - 0.04975 - 0.0505)
    assert trade.fees_usd == pytest.approx(0.1 + 0.04975 + 0.0505)
    assert trade.exit_price == pytest.approx(100.25)
    assert trade.exit_reasons == (ExitReason.T1, ExitReason.STOP)


def _entered(tmp: Path, open_price: float = 100.2):  # type: ignore[no-untyped-def]
    config = quiet_config(broker={"half_spread_bps": 1.0, "impact_bps_per_pct_volume": 2.0})
    loop = make_loop(tmp, config)
    feed(loop, [*warm_bars(), signal_bar(14, Side.LONG, close=100.0)])
    feed(loop, [make_bar(15, open_price, open=open_price, volume=1000.0)])
    return loop


def test_live_entry_fills_at_the_next_open_moved_against_us(tmp_path: Path) -> None:
    loop = _entered(tmp_path, open_price=100.2)
    live = loop.live["BTCUSDT"]
    qty = 100.0 * 0.5 / 100.0  # base stake x (NORMAL 1.0 x RANDOM 0.5) at the signal close
    share_pct = 100.0 * qty * 100.2 / (1000.0 * 100.2)
    slippage_bps = 1.0 + 2.0 * share_pct
    assert live.original_qty == pytest.approx(qty)
    assert live.entry_slippage_bps == pytest.approx(slippage_bps)
    assert live.entry_price == pytest.approx(100.2 * (1 + slippage_bps / 10_000))
    assert live.entry_fee_usd == pytest.approx(qty * live.entry_price * 0.0005)


def test_shadow_twin_fills_at_the_signal_close_without_slippage(tmp_path: Path) -> None:
    loop = _entered(tmp_path, open_price=100.2)
    live = loop.live["BTCUSDT"]
    (twin,) = loop.twins.values()
    assert twin.ledger is Ledger.SHADOW and twin.twin_of == live.id
    assert twin.entry_price == 100.0
    assert twin.entry_slippage_bps == 0.0
    assert twin.original_qty == live.original_qty
    assert twin.entry_fee_usd == pytest.approx(twin.original_qty * 100.0 * 0.0005)


def test_live_and_shadow_exit_by_the_same_rules_at_their_own_levels(tmp_path: Path) -> None:
    loop = _entered(tmp_path, open_price=100.2)
    live = loop.live["BTCUSDT"]
    # 100.55 is past the twin's T1 (100.5) but short of the live T1 (100.2 x 1.005 + slippage)
    feed(loop, [make_bar(16, 100.3, open=100.3, high=100.55)])
    (twin,) = loop.twins.values()
    assert twin.tiers_taken == (ExitReason.T1,)
    assert loop.live["BTCUSDT"].exits == () and live.entry_price * 1.005 > 100.55


def test_live_stop_is_a_market_order_and_pays_slippage_twin_does_not(tmp_path: Path) -> None:
    loop = _entered(tmp_path, open_price=100.0)
    live = loop.live["BTCUSDT"]
    feed(loop, [make_bar(16, 99.0, open=100.0, low=98.5, volume=1000.0)])
    trade = loop.closed_live[-1]
    stop_level = live.entry_price * 0.99
    assert trade.exit_price < stop_level
    assert trade.exit_price == pytest.approx(
        stop_level * (1 - live.entry_slippage_bps / 10_000), rel=1e-4
    )
    (outcome,) = list(loop.store.iter_jsonl(SHADOW_OUTCOMES))
    assert outcome["ledger"] == "shadow" and outcome["exit_price"] == pytest.approx(99.0)
