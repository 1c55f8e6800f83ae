"""The learning loop: profit factor, the slippage-buffer rule, cycles, schedule and store."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from learning_helpers import HOUR_S, NOW_S, shadow, trade, trades

from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.buffer_rule import BufferVerdict, check_buffer, paired_twins, shadow_gap
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.learning import LearningLoop
from bigalpha_tui.core.learning_cycle import CycleTrigger, run_cycle
from bigalpha_tui.core.learning_schedule import LearningSchedule
from bigalpha_tui.core.learning_store import learning_status
from bigalpha_tui.core.probation import SymbolStatus, initial_status
from bigalpha_tui.core.profit_factor import format_pf, profit_factor
from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.store import (
    LEARNING_HISTORY,
    POSITIONS,
    SHADOW_OUTCOMES,
    SYMBOL_STATES,
    Store,
)
from bigalpha_tui.core.trades import ClosedTrade
from bigalpha_tui.core.types import SymbolState

CONFIG = Config()
LEARNING = CONFIG.learning
START_BUFFER_BPS = CONFIG.gates.initial_slippage_buffer_bps

# five live trades with PF 1.0 (gross profit 100, gross loss 100)
LIVE_PF_1 = [50.0, 50.0, -40.0, -30.0, -30.0]


def utc(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC).timestamp()


# -- profit factor ---------------------------------------------------------------------


def test_profit_factor_is_gross_profit_over_gross_loss() -> None:
    assert profit_factor(trades([30.0, 20.0, -25.0])) == pytest.approx(2.0)


def test_profit_factor_without_trades_is_undefined() -> None:
    assert profit_factor([]) is None


def test_profit_factor_without_a_loss_is_infinite() -> None:
    assert profit_factor(trades([5.0, 0.0])) == math.inf


def test_profit_factor_without_a_profit_is_zero() -> None:
    assert profit_factor(trades([-5.0, 0.0])) == 0.0


def test_profit_factor_of_flat_trades_is_break_even() -> None:
    assert profit_factor(trades([0.0, 0.0])) == 1.0


def test_profit_factors_are_drawn_for_the_operator() -> None:
    assert format_pf(None) == "—"
    assert format_pf(math.inf) == "∞"
    assert format_pf(0.7912) == "0.79"
    assert format_pf(0.0) == "0.00"


# -- the slippage-buffer rule ----------------------------------------------------------


def buffer_check(
    live_pnls: list[float], shadow_pnls: list[float], buffer_bps: float = START_BUFFER_BPS
) -> Any:
    live = trades(live_pnls)
    pairs = paired_twins(live, shadow(shadow_pnls, of=live))
    return check_buffer("Alpha-OFI", "SOLUSDT", pairs, buffer_bps, LEARNING)


def test_buffer_rises_when_shadow_pf_beats_live_by_more_than_15_pct() -> None:
    check = buffer_check(LIVE_PF_1, [116.0, -100.0])
    assert check.verdict is BufferVerdict.RAISED
    assert check.buffer_after_bps == START_BUFFER_BPS + LEARNING.buffer_step_bps


def test_buffer_holds_when_shadow_pf_is_exactly_115_pct_of_live() -> None:
    check = buffer_check(LIVE_PF_1, [115.0, -100.0])
    assert check.verdict is BufferVerdict.NO_GAP
    assert check.buffer_after_bps == START_BUFFER_BPS


def test_the_15_pct_rule_scales_with_live_pf() -> None:
    live_pf_2 = [100.0, 100.0, 100.0, 100.0, -200.0]
    assert buffer_check(live_pf_2, [230.0, -100.0]).verdict is BufferVerdict.NO_GAP
    assert buffer_check(live_pf_2, [231.0, -100.0]).verdict is BufferVerdict.RAISED


def test_buffer_stops_at_its_cap() -> None:
    cap = LEARNING.buffer_cap_bps
    near = buffer_check(LIVE_PF_1, [200.0, -100.0], buffer_bps=cap - 1.0)
    assert near.verdict is BufferVerdict.RAISED and near.buffer_after_bps == cap
    at_cap = buffer_check(LIVE_PF_1, [200.0, -100.0], buffer_bps=cap)
    assert at_cap.verdict is BufferVerdict.AT_CAP and at_cap.buffer_after_bps == cap


def test_repeated_cycles_raise_the_buffer_to_the_cap_and_no_further() -> None:
    states = {"SOLUSDT": initial_status("SOLUSDT", CONFIG)}
    live: list[ClosedTrade] = []
    ideal: list[ClosedTrade] = []
    seen = []
    for k in range(20):
        now_s = NOW_S + k * LEARNING.interval_h * HOUR_S
        fresh = trades(LIVE_PF_1, exit_s=now_s - HOUR_S)  # fresh evidence every cycle
        live += fresh
        ideal += shadow([300.0, -100.0], of=fresh)
        states = dict(run_cycle(now_s, live, ideal, states, CONFIG).statuses)
        seen.append(states["SOLUSDT"].slippage_buffer_bps)
    assert seen[:3] == [4.0, 6.0, 8.0]
    assert max(seen) == seen[-1] == LEARNING.buffer_cap_bps


def test_the_same_trades_raise_the_buffer_only_once() -> None:
    live = trades(LIVE_PF_1)
    ideal = shadow([300.0, -100.0], of=live)
    first = run_cycle(NOW_S, live, ideal, {}, CONFIG)
    later_s = NOW_S + LEARNING.interval_h * HOUR_S
    second = run_cycle(later_s, live, ideal, first.statuses, CONFIG)
    assert second.buffer_checks[0].verdict is BufferVerdict.NO_NEW_TRADES
    assert second.statuses["SOLUSDT"].slippage_buffer_bps == START_BUFFER_BPS + 2.0
    newer = [*live, trade(0.0, exit_s=later_s - HOUR_S)]
    ideal = [*ideal, *shadow([0.0], of=newer[-1:])]
    third = run_cycle(later_s, newer, ideal, first.statuses, CONFIG)
    assert third.statuses["SOLUSDT"].slippage_buffer_bps == START_BUFFER_BPS + 4.0


def test_four_live_trades_are_not_enough_to_judge_the_buffer() -> None:
    check = buffer_check([50.0, 50.0, -50.0, -50.0], [500.0, -100.0])
    assert check.verdict is BufferVerdict.TOO_FEW_TRADES


def test_live_trades_older_than_the_lookback_are_ignored() -> None:
    old = trade(-100.0, exit_s=NOW_S - LEARNING.lookback_h * HOUR_S - 1.0)
    live = [*trades([50.0, 50.0, -50.0, -50.0]), old]
    report = run_cycle(NOW_S, live, shadow([500.0, -100.0], of=live), {}, CONFIG)
    (check,) = report.buffer_checks
    assert check.verdict is BufferVerdict.TOO_FEW_TRADES and check.live_trades == 4
    assert report.live_trades_read == 5 and report.live_trades_in_window == 4


def test_live_pf_infinite_can_never_be_beaten() -> None:
    assert not shadow_gap(math.inf, math.inf, LEARNING.shadow_edge_ratio)
    check = buffer_check([10.0] * 5, [10.0] * 5)
    assert check.verdict is BufferVerdict.LIVE_UNBEATABLE


def test_shadow_pf_infinite_against_finite_live_is_a_gap() -> None:
    assert buffer_check(LIVE_PF_1, [10.0, 10.0]).verdict is BufferVerdict.RAISED


def test_live_trades_whose_twins_are_still_open_are_not_compared() -> None:
    live = trades(LIVE_PF_1)
    pairs = paired_twins(live, shadow([300.0, -100.0], of=live)[:4])
    check = check_buffer("Alpha-OFI", "SOLUSDT", pairs, START_BUFFER_BPS, LEARNING, None, 1)
    assert check.verdict is BufferVerdict.TOO_FEW_TRADES
    assert (check.live_trades, check.unpaired_live) == (4, 1)


def test_a_losing_live_ledger_against_any_shadow_profit_is_a_gap() -> None:
    assert buffer_check([-10.0] * 5, [1.0, -100.0]).verdict is BufferVerdict.RAISED
    assert buffer_check([-10.0] * 5, [-1.0] * 5).verdict is BufferVerdict.NO_GAP


def test_buffer_is_judged_per_strategy_and_symbol() -> None:
    sol, btc = trades(LIVE_PF_1), trades(LIVE_PF_1, symbol="BTCUSDT")
    live = sol + btc
    ideal = shadow([300.0, -100.0], of=sol) + shadow([100.0, -100.0], of=btc)
    report = run_cycle(NOW_S, live, ideal, {}, CONFIG)
    assert report.statuses["SOLUSDT"].slippage_buffer_bps == START_BUFFER_BPS + 2.0
    assert report.statuses["BTCUSDT"].slippage_buffer_bps == START_BUFFER_BPS
    assert [c.symbol for c in report.raises] == ["SOLUSDT"]


def test_two_strategies_on_one_symbol_raise_it_once_per_cycle() -> None:
    mine, other = trades(LIVE_PF_1), trades(LIVE_PF_1, strategy="Other")
    live = mine + other
    ideal = shadow([300.0, -100.0], of=mine) + shadow([300.0, -100.0], of=other)
    report = run_cycle(NOW_S, live, ideal, {}, CONFIG)
    assert len(report.buffer_checks) == 2
    assert report.statuses["SOLUSDT"].slippage_buffer_bps == START_BUFFER_BPS + 2.0


def test_a_cycle_report_carries_inputs_figures_and_actions() -> None:
    sol = trades(LIVE_PF_1)
    live = sol + trades([-20.0] * 5, symbol="AVAXUSDT")
    report = run_cycle(NOW_S, live, shadow([300.0, -100.0], of=sol), {}, CONFIG, cycle=3)
    record = json.loads(json.dumps(report.to_record(), default=str))
    assert record["cycle"] == 3
    assert record["inputs"]["live_trades_in_window"] == 10
    assert record["inputs"]["shadow_trades_in_window"] == 5
    assert {c["symbol"] for c in record["probation_checks"]} == {"AVAXUSDT", "SOLUSDT"}
    assert record["transitions"][0]["symbol"] == "AVAXUSDT"
    assert record["symbols"]["AVAXUSDT"]["state"] == "PROBATION"
    assert "buffer SOLUSDT 4 bps" in report.summary
    assert "AVAXUSDT PROBATION" in report.summary


# -- the schedule ----------------------------------------------------------------------


def test_cycles_fall_on_4_hour_slots_of_utc() -> None:
    schedule = LearningSchedule(LEARNING.interval_h * HOUR_S, last_slot_s=utc(6, 8))
    assert schedule.next_due(utc(6, 9, 30)) == utc(6, 12)
    assert schedule.due(utc(6, 11, 59)) is None
    assert schedule.due(utc(6, 12)) == (utc(6, 12), 0)
    assert schedule.due(utc(6, 21, 5)) == (utc(6, 20), 2)


def run_segments(root: Path, segments: list[tuple[float, float]], step_s: float = 300.0) -> None:
    """Run the loop over market-time segments, a fresh process (loop and store) for each."""
    for start_s, end_s in segments:
        loop = LearningLoop(Store(root), CONFIG, symbols=("SOLUSDT",))
        t = start_s
        while t <= end_s:
            loop.before_bar(t)
            t += step_s


def history(root: Path) -> list[dict[str, Any]]:
    return list(Store(root).iter_jsonl(LEARNING_HISTORY))


def slots(root: Path) -> list[float]:
    return [r["slot_s"] for r in history(root)]


DAY_SLOTS = [utc(6, 12), utc(6, 16), utc(6, 20), utc(7, 0), utc(7, 4), utc(7, 8)]


def test_an_unbroken_day_runs_one_cycle_per_slot(tmp_path: Path) -> None:
    run_segments(tmp_path, [(utc(6, 8, 30), utc(7, 8, 30))])
    assert slots(tmp_path) == DAY_SLOTS
    assert [r["cycle"] for r in history(tmp_path)] == [1, 2, 3, 4, 5, 6]
    assert {r["trigger"] for r in history(tmp_path)} == {"schedule"}


@pytest.mark.parametrize(
    "stop", [(6, 11, 55), (6, 12, 0), (6, 12, 5), (6, 15, 55), (7, 0, 0), (7, 3, 20)]
)
def test_a_restart_neither_skips_nor_repeats_a_cycle(tmp_path: Path, stop: tuple[int, ...]) -> None:
    stop_s = utc(*stop)
    run_segments(tmp_path, [(utc(6, 8, 30), stop_s), (stop_s + 300.0, utc(7, 8, 30))])
    assert slots(tmp_path) == DAY_SLOTS


@pytest.mark.parametrize("replay_min", [5, 10, 30])
def test_bars_replayed_after_a_crash_do_not_repeat_the_cycle(
    tmp_path: Path, replay_min: int
) -> None:
    # the cycle at 12:00 was saved; the engine's checkpoint was older, so bars replay
    crash_s = utc(6, 12, 5)
    run_segments(tmp_path, [(utc(6, 8, 30), crash_s), (crash_s - replay_min * 60, utc(7, 8, 30))])
    assert slots(tmp_path) == DAY_SLOTS


def test_down_across_missed_slots_runs_one_catch_up_for_the_latest(tmp_path: Path) -> None:
    run_segments(tmp_path, [(utc(6, 8, 30), utc(6, 11)), (utc(6, 21, 10), utc(7, 8, 30))])
    records = history(tmp_path)
    assert slots(tmp_path) == [utc(6, 20), utc(7, 0), utc(7, 4), utc(7, 8)]
    assert records[0]["trigger"] == CycleTrigger.CATCH_UP.value
    assert records[0]["missed_slots"] == 2
    assert records[0]["run_s"] == utc(6, 21, 10)
    assert [r["trigger"] for r in records[1:]] == ["schedule"] * 3


def test_down_across_one_slot_runs_it_late_once(tmp_path: Path) -> None:
    run_segments(tmp_path, [(utc(6, 8, 30), utc(6, 11)), (utc(6, 13), utc(6, 17))])
    records = history(tmp_path)
    assert slots(tmp_path) == [utc(6, 12), utc(6, 16)]
    assert (records[0]["trigger"], records[0]["missed_slots"]) == ("catch-up", 0)


def test_the_first_run_waits_for_the_next_slot(tmp_path: Path) -> None:
    run_segments(tmp_path, [(utc(6, 9, 0), utc(6, 11, 55))])
    assert history(tmp_path) == []
    loop = LearningLoop(Store(tmp_path), CONFIG)
    assert loop.view(utc(6, 11, 55)).next_cycle_s == utc(6, 12)


def test_operator_cycles_do_not_move_the_schedule(tmp_path: Path) -> None:
    loop = LearningLoop(Store(tmp_path), CONFIG)
    loop.before_bar(utc(6, 8, 30))
    loop.run_now(utc(6, 9))
    assert loop.view(utc(6, 9)).next_cycle_s == utc(6, 12)
    assert loop.before_bar(utc(6, 12)) is not None
    assert [r["trigger"] for r in history(tmp_path)] == ["operator", "schedule"]


def test_market_time_behind_the_schedule_never_moves_it_back(tmp_path: Path) -> None:
    """A restart at --speed max replays hours of bars since the engines' last checkpoint:
    the slots those bars cross are done, so nothing runs and the schedule stays put."""
    loop = LearningLoop(Store(tmp_path), CONFIG)
    loop.before_bar(utc(6, 8, 30))
    assert loop.before_bar(utc(6, 12)) is not None
    assert loop.before_bar(utc(6, 16)) is not None
    restarted = LearningLoop(Store(tmp_path), CONFIG)
    for hour in (7, 9, 11, 12, 13, 15):  # replayed from a checkpoint 9 hours back
        assert restarted.before_bar(utc(6, hour)) is None
        assert restarted.view(utc(6, hour)).next_cycle_s == utc(6, 20)
    assert restarted.before_bar(utc(6, 20)) is not None
    assert slots(tmp_path) == [utc(6, 12), utc(6, 16), utc(6, 20)]


# -- the loop and the store ------------------------------------------------------------


def write_ledgers(root: Path, live: list[ClosedTrade], ideal: list[ClosedTrade]) -> None:
    store = Store(root)
    store.write_json(POSITIONS, {"open": [], "closed": [t.to_record() for t in live]})
    for t in ideal:
        store.append_jsonl(SHADOW_OUTCOMES, t.to_record())


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, dict[str, Any]]] = []

    def __call__(self, kind: str, symbol: str, message: str, **data: Any) -> None:
        self.events.append((kind, symbol, message, data))

    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


def test_a_cycle_reads_the_ledgers_from_the_store(tmp_path: Path) -> None:
    sol = trades(LIVE_PF_1)
    live = sol + trades([-20.0] * 5, symbol="AVAXUSDT")
    write_ledgers(tmp_path, live, shadow([300.0, -100.0], of=sol))
    recorder = Recorder()
    loop = LearningLoop(Store(tmp_path), CONFIG, emit=recorder)
    report = loop.run_now(NOW_S)
    assert report.live_trades_read == 10 and report.shadow_trades_read == 5
    assert loop.status("SOLUSDT").slippage_buffer_bps == START_BUFFER_BPS + 2.0
    assert loop.status("AVAXUSDT").state is SymbolState.PROBATION
    assert loop.status("AVAXUSDT").size_cap(CONFIG) == CONFIG.sizing.probation_cap
    assert recorder.kinds() == ["buffer", "probation"]
    _, symbol, message, data = recorder.events[1]
    assert symbol == "AVAXUSDT" and "ACTIVE -> PROBATION" in message
    assert data["golden_pf"] == 0.0 and data["golden_trades"] == 5


def test_states_and_buffers_survive_a_restart(tmp_path: Path) -> None:
    sol = trades(LIVE_PF_1)
    live = sol + trades([-20.0] * 5, symbol="AVAXUSDT")
    write_ledgers(tmp_path, live, shadow([300.0, -100.0], of=sol))
    LearningLoop(Store(tmp_path), CONFIG).run_now(NOW_S)
    again = LearningLoop(Store(tmp_path), CONFIG)
    assert again.status("SOLUSDT").slippage_buffer_bps == START_BUFFER_BPS + 2.0
    assert again.status("AVAXUSDT").state is SymbolState.PROBATION
    assert again.view(NOW_S).cycles == 1


def test_every_cycle_appends_its_report_to_the_history(tmp_path: Path) -> None:
    sol = trades(LIVE_PF_1)
    write_ledgers(tmp_path, sol, shadow([300.0, -100.0], of=sol))
    loop = LearningLoop(Store(tmp_path), CONFIG)
    loop.run_now(NOW_S)
    loop.run_now(NOW_S + 60.0)
    records = history(tmp_path)
    assert [r["cycle"] for r in records] == [1, 2]
    assert records[1]["buffer_checks"][0]["buffer_before_bps"] == START_BUFFER_BPS + 2.0
    assert records[1]["summary"].startswith("learning cycle 2")


def test_a_history_line_lost_in_a_crash_is_written_once_at_restart(tmp_path: Path) -> None:
    sol = trades(LIVE_PF_1)
    write_ledgers(tmp_path, sol, shadow([300.0, -100.0], of=sol))
    LearningLoop(Store(tmp_path), CONFIG).run_now(NOW_S)
    (tmp_path / LEARNING_HISTORY).write_text("")  # killed between the two writes
    LearningLoop(Store(tmp_path), CONFIG)
    LearningLoop(Store(tmp_path), CONFIG)
    assert [r["cycle"] for r in history(tmp_path)] == [1]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"schema_version": 1, "symbols": {"SOLUSDT": {"state": "BOGUS"}}}',
        b'{"schema_version": 1, "symbols": {"SOLUSDT": {"state": "ACTIVE",'
        b' "slippage_buffer_bps": "lots"}}}',
    ],
)
def test_a_corrupt_state_file_is_set_aside_and_defaults_used(
    tmp_path: Path, content: bytes
) -> None:
    (tmp_path / SYMBOL_STATES).write_bytes(content)
    recorder = Recorder()
    loop = LearningLoop(Store(tmp_path), CONFIG, emit=recorder, symbols=("SOLUSDT",))
    assert loop.status("SOLUSDT") == initial_status("SOLUSDT", CONFIG)
    assert len(list(tmp_path.glob(f"{SYMBOL_STATES}.corrupt-*"))) == 1
    assert [w.file for w in loop.store.warnings] == [SYMBOL_STATES]
    assert recorder.kinds() == []  # the core reports store warnings, once


def test_one_bad_symbol_state_costs_only_itself(tmp_path: Path) -> None:
    """A hand-edited buffer on one symbol used to set the whole file aside: every other
    symbol lost its probation and its buffer, and the schedule started again."""
    sol = trades(LIVE_PF_1)
    live = sol + trades([-20.0] * 5, symbol="AVAXUSDT")
    write_ledgers(tmp_path, live, shadow([300.0, -100.0], of=sol))
    LearningLoop(Store(tmp_path), CONFIG).run_now(NOW_S)
    doc = json.loads((tmp_path / SYMBOL_STATES).read_text())
    doc["symbols"]["SOLUSDT"]["slippage_buffer_bps"] = "nan"
    (tmp_path / SYMBOL_STATES).write_text(json.dumps(doc))
    again = LearningLoop(Store(tmp_path), CONFIG)
    assert again.status("AVAXUSDT").state is SymbolState.PROBATION
    assert again.status("SOLUSDT") == initial_status("SOLUSDT", CONFIG)
    assert again.view(NOW_S).cycles == 1
    (warning,) = [w for w in again.store.warnings if w.file == SYMBOL_STATES]
    assert "SOLUSDT" in warning.message and "set aside" in warning.message
    third = LearningLoop(Store(tmp_path), CONFIG)  # the file now holds what was kept
    assert third.store.warnings == [] and third.status("AVAXUSDT") == again.status("AVAXUSDT")
    assert len(list(tmp_path.glob(f"{SYMBOL_STATES}.corrupt-*"))) == 1


def test_unreadable_trade_records_are_counted_not_fatal(tmp_path: Path) -> None:
    write_ledgers(tmp_path, trades(LIVE_PF_1), [])
    with open(tmp_path / SHADOW_OUTCOMES, "a") as fh:
        fh.write('{"id": "half a record"}\n')
    report = LearningLoop(Store(tmp_path), CONFIG).run_now(NOW_S)
    assert report.unreadable_records == 1 and report.live_trades_read == 5


def test_release_of_a_symbol_not_on_probation_is_refused(tmp_path: Path) -> None:
    from bigalpha_tui.core.errors import CommandError

    loop = LearningLoop(Store(tmp_path), CONFIG, symbols=("SOLUSDT",))
    with pytest.raises(CommandError, match="SOLUSDT is not on probation"):
        loop.release("SOLUSDT", NOW_S)
    with pytest.raises(CommandError, match="NOSUCH is not on probation"):
        loop.release("NOSUCH", NOW_S)


def test_a_released_symbol_is_saved_active(tmp_path: Path) -> None:
    write_ledgers(tmp_path, trades([-20.0] * 5, symbol="AVAXUSDT"), [])
    loop = LearningLoop(Store(tmp_path), CONFIG)
    loop.run_now(NOW_S)
    loop.release("AVAXUSDT", NOW_S + 60.0)
    again = LearningLoop(Store(tmp_path), CONFIG)
    assert again.status("AVAXUSDT").state is SymbolState.ACTIVE
    assert again.status("AVAXUSDT").released_s == NOW_S + 60.0
    again.run_now(NOW_S + 120.0)  # the losses before the release no longer count
    assert again.status("AVAXUSDT").state is SymbolState.ACTIVE


def test_status_records_keep_infinite_profit_factors(tmp_path: Path) -> None:
    write_ledgers(tmp_path, trades([10.0] * 5), [])
    LearningLoop(Store(tmp_path), CONFIG).run_now(NOW_S)
    status = LearningLoop(Store(tmp_path), CONFIG).status("SOLUSDT")
    assert status.golden_pf == math.inf
    assert SymbolStatus.from_record("SOLUSDT", status.to_record()) == status


# -- wired into the core ---------------------------------------------------------------


class ListSource:
    """A source that yields the bars it was given, for driving a Core in tests."""

    name = "list"

    def __init__(self, bars: list[Bar]) -> None:
        self.bars_ = bars
        self.symbols = tuple(sorted({b.symbol for b in bars}))

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        for bar in self.bars_:
            if resume_after_ms is None or bar.open_ms > resume_after_ms:
                yield bar

    def health(self) -> SourceHealth:
        return SourceHealth(self.name)

    async def aclose(self) -> None:
        return None


def minute_bars(symbol: str, start_s: float, minutes: int) -> list[Bar]:
    start_ms = int(start_s * 1000)
    return [
        Bar(symbol, start_ms + i * 60_000, 100.0, 100.5, 99.5, 100.0, 1000.0, 500.0)
        for i in range(minutes)
    ]


def core_with_learning(root: Path, bars: list[Bar]) -> tuple[Core, LearningLoop]:
    clock = SimClock(bars[0].open_ms / 1000.0 if bars else NOW_S)
    core = Core(CONFIG, ListSource(bars), clock, Store(root))  # type: ignore[arg-type]
    assert core.learning is not None
    return core, core.learning


def last_command(core: Core) -> Event:
    return next(e for e in core.events if e.kind == "command")


def test_learn_command_runs_a_cycle_and_answers_with_its_summary(tmp_path: Path) -> None:
    sol = trades(LIVE_PF_1)
    write_ledgers(tmp_path, sol, shadow([300.0, -100.0], of=sol))
    core, loop = core_with_learning(tmp_path, [])
    core.submit(Command(CommandKind.LEARN))
    event = last_command(core)
    assert event.data["ok"] is True
    assert event.message.startswith("learning cycle 1")
    assert loop.status("SOLUSDT").slippage_buffer_bps == START_BUFFER_BPS + 2.0
    assert any(e.kind == "buffer" for e in core.events)


def test_release_command_for_a_symbol_not_on_probation_is_refused(tmp_path: Path) -> None:
    core, _ = core_with_learning(tmp_path, [])
    core.submit(Command(CommandKind.RELEASE, "BTCUSDT"))
    event = last_command(core)
    assert event.data["ok"] is False
    assert "BTCUSDT is not on probation" in event.message


def test_release_command_returns_a_symbol_to_active(tmp_path: Path) -> None:
    write_ledgers(tmp_path, trades([-20.0] * 5, symbol="AVAXUSDT"), [])
    core, loop = core_with_learning(tmp_path, [])
    core.submit(Command(CommandKind.LEARN))
    core.submit(Command(CommandKind.RELEASE, "AVAXUSDT"))
    event = last_command(core)
    assert event.data["ok"] is True and "PROBATION -> ACTIVE" in event.message
    assert loop.status("AVAXUSDT").state is SymbolState.ACTIVE


@pytest.mark.anyio
async def test_the_core_runs_the_scheduled_cycle_and_shows_it_in_snapshots(
    tmp_path: Path,
) -> None:
    write_ledgers(tmp_path, trades([-20.0] * 5, exit_s=utc(6, 11)), [])
    core, _ = core_with_learning(tmp_path, minute_bars("SOLUSDT", utc(6, 11, 50), 20))
    await core.run()
    assert slots(tmp_path) == [utc(6, 12)]
    snap = core.snapshot()
    assert snap.learning.cycles == 1
    assert snap.learning.last_cycle_s == utc(6, 12)
    assert snap.learning.next_cycle_s == utc(6, 16)
    view = snap.symbol("SOLUSDT")
    assert view is not None
    assert view.state is SymbolState.PROBATION
    assert view.size_cap == CONFIG.sizing.probation_cap
    assert view.golden_pf == 0.0 and view.golden_trades == 5
    assert view.slippage_buffer_bps == START_BUFFER_BPS
    assert view.state_changed_s == utc(6, 12)


def test_the_trading_loop_reads_buffers_and_probation_from_the_learning_loop(
    tmp_path: Path,
) -> None:
    sol = trades(LIVE_PF_1)
    write_ledgers(
        tmp_path, sol + trades([-20.0] * 5, symbol="AVAXUSDT"), shadow([300.0, -100.0], of=sol)
    )
    core, loop = core_with_learning(tmp_path, [])
    assert core.trading is not None and core.trading.terms is loop
    core.submit(Command(CommandKind.LEARN))
    terms = core.trading.terms
    assert terms.status("SOLUSDT").slippage_buffer_bps == START_BUFFER_BPS + 2.0
    assert terms.status("AVAXUSDT").state is SymbolState.PROBATION
    assert terms.status("BTCUSDT").slippage_buffer_bps == START_BUFFER_BPS


#: Execution a little costlier and exits a little tighter than the defaults. The default
#: simulator shows both rules in two days (tests/test_sim_personalities.py); this three-day run
#: on a costlier config is the long form.
DEMO_CONFIG = """
[sizing]
base_stake_usd = 5000.0
[broker]
half_spread_bps = 2.0
[exits]
tiers_pct = [0.2, 0.4, 0.6, 0.8]
stop_pct = 0.4
"""


CLI = (sys.executable, "-m", "bigalpha_tui.cli")


@pytest.mark.slow
def test_a_simulated_3_day_run_raises_a_buffer_and_puts_a_symbol_on_probation(
    tmp_path: Path, long_run: bool
) -> None:
    if not long_run:
        pytest.skip("long form (pytest --long); the default simulator's two days run always")
    config = tmp_path / "demo.toml"
    config.write_text(DEMO_CONFIG)
    data = tmp_path / "data"
    flags = ["--speed", "max", "--duration", "3d", "--log-format", "json"]
    run = subprocess.run(
        [*CLI, "--no-ui", *flags, "--data-dir", str(data), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds.count("buffer") >= 1
    assert any(e["kind"] == "probation" and e["after"] == "PROBATION" for e in events)
    # the 150-bar backfill from 06:00 crosses the 08:00 slot: 19 scheduled cycles in 3 days
    assert [r["trigger"] for r in history(data)] == ["schedule"] * 19
    status = subprocess.run(
        [*CLI, "status", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "learning: last cycle 2026-01-08 08:00:00 (19 so far)" in status.stdout
    assert "next due 2026-01-08 12:00:00 UTC" in status.stdout


def test_status_json_gives_profit_factors_as_numbers_null_or_inf(tmp_path: Path) -> None:
    """`status --json` is for scripts: no display dashes in it."""
    write_ledgers(tmp_path, trades([10.0] * 5), [])
    LearningLoop(Store(tmp_path), CONFIG, symbols=["SOLUSDT", "BTCUSDT"]).run_now(NOW_S)
    symbols = learning_status(Store(tmp_path))["symbols"]
    assert symbols["SOLUSDT"]["golden_pf"] == "inf"
    assert symbols["BTCUSDT"]["golden_pf"] is None
    assert json.loads(json.dumps(symbols)) == symbols
