"""The gate pipeline in DESIGN order, golden-hour edges to the second, and sizing."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from trading_helpers import at_utc, make_signal

from bigalpha_tui.core.config import Config, GateConfig, SizingConfig
from bigalpha_tui.core.gates import GateContext, GatePipeline
from bigalpha_tui.core.golden_hour import GoldenHour
from bigalpha_tui.core.sizing import conviction, size_breakdown
from bigalpha_tui.core.types import (
    SWITCHABLE_GUARDS,
    BlockReason,
    Conviction,
    Regime,
    Side,
    WhaleDirection,
)

ALL_ON = MappingProxyType({g: True for g in SWITCHABLE_GUARDS})
SIZE = size_breakdown(Conviction.NORMAL, Regime.RANDOM, False, SizingConfig())


def decide(
    signal=None,  # type: ignore[no-untyped-def]
    *,
    paused: bool = False,
    open_positions: int = 0,
    buffer_bps: float = 2.0,
    guards=ALL_ON,  # type: ignore[no-untyped-def]
):
    ctx = GateContext(signal or make_signal(), paused, open_positions, buffer_bps)
    return GatePipeline(GateConfig()).decide(ctx, SIZE, guards)


# -- each gate ---------------------------------------------------------------------------


def test_a_signal_that_passes_every_gate_is_allowed_and_lists_them() -> None:
    decision = decide()
    assert decision.allowed
    assert decision.passed == tuple(BlockReason)
    assert decision.blocked_by is None


def test_paused_blocks_new_entries() -> None:
    decision = decide(paused=True)
    assert decision.blocked_by is BlockReason.PAUSED
    assert "paused" in decision.detail


@pytest.mark.parametrize(
    ("hh", "mm", "ss", "open_"),
    [(8, 59, 59, False), (9, 0, 0, True), (15, 59, 59, True), (16, 0, 0, False)],
)
def test_golden_hour_edges_to_the_second(hh: int, mm: int, ss: int, open_: bool) -> None:
    window = GoldenHour.from_config(GateConfig())
    assert window.is_open(at_utc(hh, mm, ss)) is open_
    decision = decide(make_signal(time_s=at_utc(hh, mm, ss)))
    assert (decision.blocked_by is BlockReason.GOLDEN_HOUR) is not open_


def test_golden_hour_next_change_is_the_next_edge() -> None:
    window = GoldenHour.from_config(GateConfig())
    assert window.next_change_s(at_utc(8, 59, 59)) == at_utc(9, 0)
    assert window.next_change_s(at_utc(9, 0)) == at_utc(16, 0)
    assert window.next_change_s(at_utc(16, 0)) == at_utc(9, 0, day=6)


def test_a_window_past_midnight_wraps() -> None:
    window = GoldenHour.from_config(GateConfig(golden_hour_start="22:00", golden_hour_end="02:00"))
    assert window.is_open(at_utc(23, 0)) and window.is_open(at_utc(1, 59, 59))
    assert not window.is_open(at_utc(2, 0)) and not window.is_open(at_utc(21, 59, 59))


def test_max_positions_blocks_the_sixth_entry() -> None:
    assert decide(open_positions=4).allowed
    decision = decide(open_positions=5)
    assert decision.blocked_by is BlockReason.MAX_POSITIONS
    assert "5 positions open" in decision.detail


def test_fee_edge_blocks_an_edge_below_fees_plus_buffer() -> None:
    # hurdle = 2 x 5 bps fees + 2 bps buffer = 12 bps
    assert decide(make_signal(edge_bps=12.0)).allowed
    decision = decide(make_signal(edge_bps=11.99))
    assert decision.blocked_by is BlockReason.FEE_EDGE
    assert "fees 10 bps + buffer 2 bps" in decision.detail


def test_a_higher_slippage_buffer_raises_the_fee_hurdle() -> None:
    signal = make_signal(edge_bps=15.0)
    assert decide(signal, buffer_bps=4.0).allowed
    assert decide(signal, buffer_bps=6.0).blocked_by is BlockReason.FEE_EDGE


def test_whale_conflict_blocks_a_long_when_whales_sell() -> None:
    decision = decide(make_signal(Side.LONG, whale=WhaleDirection.SELL))
    assert decision.blocked_by is BlockReason.WHALE_CONFLICT
    assert "selling against a LONG" in decision.detail


def test_whale_conflict_blocks_a_short_when_whales_buy() -> None:
    decision = decide(make_signal(Side.SHORT, whale=WhaleDirection.BUY))
    assert decision.blocked_by is BlockReason.WHALE_CONFLICT


def test_neutral_whales_never_conflict() -> None:
    assert decide(make_signal(Side.SHORT, whale=WhaleDirection.NEUTRAL)).allowed


# -- order and switches ------------------------------------------------------------------


def test_the_first_blocking_gate_decides_and_later_gates_are_not_run() -> None:
    signal = make_signal(time_s=at_utc(20, 0), edge_bps=1.0, whale=WhaleDirection.SELL)
    decision = decide(signal, paused=True, open_positions=5)
    assert decision.blocked_by is BlockReason.PAUSED
    assert decision.passed == ()
    decision = decide(signal, open_positions=5)
    assert decision.blocked_by is BlockReason.GOLDEN_HOUR
    assert decision.passed == (BlockReason.PAUSED,)


def test_gates_run_in_design_order() -> None:
    signal = make_signal(edge_bps=1.0, whale=WhaleDirection.SELL)
    decision = decide(signal, open_positions=5)
    assert decision.blocked_by is BlockReason.MAX_POSITIONS
    assert decide(signal).blocked_by is BlockReason.FEE_EDGE


def test_a_switched_off_guard_is_skipped_and_recorded() -> None:
    guards = MappingProxyType({**ALL_ON, BlockReason.MAX_POSITIONS: False})
    decision = decide(open_positions=9, guards=guards)
    assert decision.allowed
    assert decision.skipped == (BlockReason.MAX_POSITIONS,)
    assert BlockReason.MAX_POSITIONS not in decision.passed


def test_paused_and_golden_hour_cannot_be_switched_off() -> None:
    guards = MappingProxyType({r: False for r in BlockReason})
    assert decide(paused=True, guards=guards).blocked_by is BlockReason.PAUSED


def test_decision_records_golden_hour_and_the_size_multiplier() -> None:
    decision = decide(make_signal(time_s=at_utc(9, 0)))
    assert decision.golden_hour_open
    assert decision.size_multiplier == pytest.approx(0.5)  # NORMAL 1.0 x RANDOM 0.5


# -- sizing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("whale", "retail", "level"),
    [
        (WhaleDirection.BUY, 0.2, Conviction.ULTRA),
        (WhaleDirection.BUY, -0.2, Conviction.HIGH),
        (WhaleDirection.BUY, 0.0, Conviction.HIGH),
        (WhaleDirection.NEUTRAL, 0.2, Conviction.NORMAL),
        (WhaleDirection.SELL, 0.2, Conviction.NORMAL),
    ],
)
def test_conviction_of_a_long(whale: WhaleDirection, retail: float, level: Conviction) -> None:
    assert conviction(Side.LONG, whale, retail) is level


def test_conviction_of_a_short_mirrors_the_long() -> None:
    assert conviction(Side.SHORT, WhaleDirection.SELL, -0.1) is Conviction.ULTRA
    assert conviction(Side.SHORT, WhaleDirection.SELL, 0.1) is Conviction.HIGH


def test_cross_exchange_flow_must_confirm_the_whales_when_present() -> None:
    assert conviction(Side.LONG, WhaleDirection.BUY, 0.2, cross_buy_ratio=0.58) is Conviction.ULTRA
    assert conviction(Side.LONG, WhaleDirection.BUY, 0.2, cross_buy_ratio=0.45) is Conviction.NORMAL


@pytest.mark.parametrize(
    ("level", "regime", "probation", "multiplier"),
    [
        (Conviction.ULTRA, Regime.TRUE_TREND, False, 2.5),
        (Conviction.HIGH, Regime.TRUE_TREND, False, 1.5),
        (Conviction.NORMAL, Regime.TRUE_TREND, False, 1.0),
        (Conviction.ULTRA, Regime.RANDOM, False, 1.25),
        (Conviction.HIGH, Regime.RANDOM, False, 0.75),
        (Conviction.NORMAL, Regime.RANDOM, False, 0.5),
        (Conviction.ULTRA, Regime.NOISE, False, 2.5),
        (Conviction.NORMAL, Regime.WARMING, False, 1.0),
        (Conviction.ULTRA, Regime.TRUE_TREND, True, 0.2),
        (Conviction.HIGH, Regime.RANDOM, True, 0.2),
        (Conviction.NORMAL, Regime.NOISE, True, 0.2),
    ],
)
def test_size_multiplier(
    level: Conviction, regime: Regime, probation: bool, multiplier: float
) -> None:
    size = size_breakdown(level, regime, probation, SizingConfig())
    assert size.multiplier == pytest.approx(multiplier)


def test_probation_cap_is_a_ceiling_not_a_factor() -> None:
    sizing = SizingConfig(probation_cap=0.6)
    assert size_breakdown(Conviction.NORMAL, Regime.RANDOM, True, sizing).multiplier == 0.5
    assert size_breakdown(Conviction.ULTRA, Regime.RANDOM, True, sizing).multiplier == 0.6


def test_sizing_reads_the_config_not_literals() -> None:
    sizing = Config().sizing.__class__(ultra=3.0, random_regime=0.25)
    assert size_breakdown(Conviction.ULTRA, Regime.RANDOM, False, sizing).multiplier == 0.75
