"""Symbol probation: enter below golden-hour PF 0.8, leave at 1.0, operator release."""

from __future__ import annotations

import pytest
from learning_helpers import HOUR_S, NOW_S, trade, trades

from bigalpha_tui.core.config import Config
from bigalpha_tui.core.errors import CommandError
from bigalpha_tui.core.probation import (
    SymbolStatus,
    initial_status,
    judge_probation,
    release,
)
from bigalpha_tui.core.types import SymbolState

CONFIG = Config()
LEARNING = CONFIG.learning

# five golden-hour trades each: gross profit / gross loss of 100
PF_079 = [40.0, 39.0, -50.0, -25.0, -25.0]
PF_080 = [40.0, 40.0, -50.0, -25.0, -25.0]
PF_099 = [50.0, 49.0, -50.0, -25.0, -25.0]
PF_100 = [50.0, 50.0, -50.0, -25.0, -25.0]


def active() -> SymbolStatus:
    return initial_status("SOLUSDT", CONFIG)


def on_probation() -> SymbolStatus:
    return SymbolStatus("SOLUSDT", SymbolState.PROBATION, 2.0, NOW_S - 10 * HOUR_S, "test")


def test_golden_hour_pf_079_puts_the_symbol_on_probation() -> None:
    status, check, transition = judge_probation(active(), trades(PF_079), NOW_S, LEARNING)
    assert status.state is SymbolState.PROBATION
    assert transition is not None
    assert transition.before is SymbolState.ACTIVE and transition.after is SymbolState.PROBATION
    assert transition.golden_trades == 5
    assert transition.golden_pf == pytest.approx(0.79)
    assert "0.79" in transition.reason and "5 trades" in transition.reason
    assert status.state_changed_s == NOW_S
    assert check.after is SymbolState.PROBATION


def test_golden_hour_pf_080_stays_active() -> None:
    status, _, transition = judge_probation(active(), trades(PF_080), NOW_S, LEARNING)
    assert status.state is SymbolState.ACTIVE
    assert transition is None
    assert status.golden_pf == pytest.approx(0.80)


def test_probation_ends_at_golden_hour_pf_100() -> None:
    status, _, transition = judge_probation(on_probation(), trades(PF_100), NOW_S, LEARNING)
    assert status.state is SymbolState.ACTIVE
    assert transition is not None and transition.after is SymbolState.ACTIVE
    assert "1.00" in transition.reason


def test_probation_holds_at_golden_hour_pf_099() -> None:
    status, _, transition = judge_probation(on_probation(), trades(PF_099), NOW_S, LEARNING)
    assert status.state is SymbolState.PROBATION
    assert transition is None


def test_a_pf_between_the_thresholds_keeps_either_state() -> None:
    pf_09 = [50.0, 40.0, -50.0, -25.0, -25.0]
    assert judge_probation(active(), trades(pf_09), NOW_S, LEARNING)[2] is None
    assert judge_probation(on_probation(), trades(pf_09), NOW_S, LEARNING)[2] is None


def test_trades_entered_outside_the_golden_hour_are_ignored() -> None:
    good_golden = trades([30.0, 30.0, 30.0, -10.0, -10.0])
    awful_off_hours = trades([-100.0] * 10, golden=False)
    status, check, transition = judge_probation(
        active(), good_golden + awful_off_hours, NOW_S, LEARNING
    )
    assert transition is None
    assert check.golden_trades == 5
    assert status.golden_pf == pytest.approx(90.0 / 20.0)


def test_off_hours_losses_alone_never_judge_a_symbol() -> None:
    _, check, transition = judge_probation(
        active(), trades([-100.0] * 10, golden=False), NOW_S, LEARNING
    )
    assert transition is None
    assert check.golden_trades == 0


def test_four_golden_hour_trades_are_not_enough() -> None:
    status, _, transition = judge_probation(active(), trades([-10.0] * 4), NOW_S, LEARNING)
    assert transition is None and status.state is SymbolState.ACTIVE


def test_trades_closed_before_the_lookback_are_ignored() -> None:
    old = trade(-10.0, exit_s=NOW_S - LEARNING.lookback_h * HOUR_S)
    _, check, transition = judge_probation(active(), [*trades([-10.0] * 4), old], NOW_S, LEARNING)
    assert transition is None and check.golden_trades == 4


def test_other_symbols_trades_do_not_count() -> None:
    _, check, transition = judge_probation(
        active(), trades([-10.0] * 5, symbol="BTCUSDT"), NOW_S, LEARNING
    )
    assert transition is None and check.golden_trades == 0


def test_probation_caps_the_size_multiple() -> None:
    assert on_probation().size_cap(CONFIG) == CONFIG.sizing.probation_cap
    assert active().size_cap(CONFIG) == 1.0


def test_operator_release_returns_the_symbol_to_active() -> None:
    status, transition = release(on_probation(), NOW_S)
    assert status.state is SymbolState.ACTIVE
    assert transition.by_operator
    assert status.released_s == NOW_S


def test_release_of_an_active_symbol_is_refused() -> None:
    with pytest.raises(CommandError, match="not on probation"):
        release(active(), NOW_S)


def test_after_a_release_only_newer_trades_judge_the_symbol() -> None:
    released, _ = release(on_probation(), NOW_S - 2 * HOUR_S)
    losers_before = trades([-10.0] * 5, exit_s=NOW_S - 3 * HOUR_S)
    status, check, transition = judge_probation(released, losers_before, NOW_S, LEARNING)
    assert transition is None and check.golden_trades == 0
    losers_after = trades([-10.0] * 5, entry_s=NOW_S - HOUR_S, exit_s=NOW_S - 0.5 * HOUR_S)
    status, _, transition = judge_probation(released, losers_before + losers_after, NOW_S, LEARNING)
    assert transition is not None and status.state is SymbolState.PROBATION


def test_symbol_status_survives_its_record() -> None:
    status, _, _ = judge_probation(active(), trades(PF_079), NOW_S, LEARNING)
    assert SymbolStatus.from_record(status.symbol, status.to_record()) == status


def test_a_negative_buffer_in_a_record_is_rejected() -> None:
    record = active().to_record() | {"slippage_buffer_bps": -1}
    with pytest.raises(ValueError):
        SymbolStatus.from_record("SOLUSDT", record)


def test_the_table_figures_are_the_ones_the_reason_states_every_cycle() -> None:
    """On probation at PF 0.79, the next cycle reads PF 0.99: the table's GH PF and Trades
    and the reason beside them say the same thing (they used to disagree until a
    transition)."""
    first, _, _ = judge_probation(active(), trades(PF_079), NOW_S, LEARNING)
    later_s = NOW_S + LEARNING.interval_h * HOUR_S
    newer = trades(PF_099, exit_s=later_s - HOUR_S)
    second, _, transition = judge_probation(first, newer, later_s, LEARNING)
    assert transition is None and second.state is SymbolState.PROBATION
    assert second.golden_pf == pytest.approx(0.99) and second.golden_trades == 5
    assert "0.99" in second.state_reason and "5 trades" in second.state_reason
    assert second.state_changed_s == NOW_S  # on probation since the first cycle


def test_a_release_shows_no_figures_until_newer_trades_judge_the_symbol() -> None:
    judged, _, _ = judge_probation(active(), trades(PF_079), NOW_S, LEARNING)
    released, _ = release(judged, NOW_S + 60.0)
    assert (released.golden_pf, released.golden_trades) == (None, 0)
    assert "released by the operator" in released.state_reason
