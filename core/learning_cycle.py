"""One learning cycle as a pure function, and the report it appends to the history.

A cycle reads the closed live trades and shadow outcomes, runs the slippage-buffer rule
(`buffer_rule.py`) per strategy and symbol and the probation state machine (`probation.py`)
per symbol, and returns the new states with everything it read and decided.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from .buffer_rule import BufferCheck, BufferVerdict, buffer_checks
from .config import Config, LearningConfig
from .probation import (
    ProbationCheck,
    ProbationTransition,
    SymbolStatus,
    initial_status,
    judge_probation,
)
from .trades import ClosedTrade, Ledger


class CycleTrigger(StrEnum):
    SCHEDULE = "schedule"
    CATCH_UP = "catch-up"  # the bot was down when the slot fell due
    OPERATOR = "operator"


def in_window(trade: ClosedTrade, now_s: float, config: LearningConfig) -> bool:
    """Closed in the last `lookback_h` of market time (later closes are not seen yet)."""
    return now_s - config.lookback_h * 3600.0 < trade.exit_s <= now_s


@dataclass(frozen=True, slots=True)
class CycleReport:
    """Everything one cycle read, computed and did; appended to learning_history.jsonl."""

    cycle: int
    trigger: CycleTrigger
    run_s: float
    slot_s: float | None
    missed_slots: int
    window_start_s: float
    live_trades_read: int
    shadow_trades_read: int
    live_trades_in_window: int
    shadow_trades_in_window: int
    buffer_checks: tuple[BufferCheck, ...]
    probation_checks: tuple[ProbationCheck, ...]
    transitions: tuple[ProbationTransition, ...]
    statuses: Mapping[str, SymbolStatus]
    unreadable_records: int = 0

    @property
    def raises(self) -> tuple[BufferCheck, ...]:
        """One raise per symbol (several strategies on a symbol raise it once)."""
        seen: dict[str, BufferCheck] = {}
        for check in self.buffer_checks:
            if check.verdict is BufferVerdict.RAISED:
                seen.setdefault(check.symbol, check)
        return tuple(seen.values())

    @property
    def summary(self) -> str:
        """One line for the toast, the event log and `status`."""
        head = f"learning cycle {self.cycle} ({self._when()}):"
        inputs = (
            f"{self.live_trades_in_window} live / {self.shadow_trades_in_window} shadow trades"
            f" in {(self.run_s - self.window_start_s) / 3600:g} h"
        )
        actions = [f"buffer {c.symbol} {c.buffer_after_bps:g} bps" for c in self.raises]
        actions += [f"{t.symbol} {t.after.value}" for t in self.transitions]
        # what changed first: a line cut short on a narrow panel keeps it
        return f"{head} {', '.join(actions) if actions else 'no changes'}; {inputs}"

    def _when(self) -> str:
        if self.slot_s is None:
            return self.trigger.value
        slot = datetime.fromtimestamp(self.slot_s, UTC).strftime("%H:%M UTC")
        if self.trigger is CycleTrigger.CATCH_UP:
            missed = f", {self.missed_slots} earlier slot(s) skipped" if self.missed_slots else ""
            return f"catch-up for {slot}{missed}"
        return slot

    def to_record(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "trigger": self.trigger.value,
            "run_s": self.run_s,
            "run": iso(self.run_s),
            "slot_s": self.slot_s,
            "missed_slots": self.missed_slots,
            "window_start_s": self.window_start_s,
            "inputs": {
                "live_trades_read": self.live_trades_read,
                "shadow_trades_read": self.shadow_trades_read,
                "live_trades_in_window": self.live_trades_in_window,
                "shadow_trades_in_window": self.shadow_trades_in_window,
                "unreadable_records": self.unreadable_records,
            },
            "buffer_checks": [c.to_record() for c in self.buffer_checks],
            "probation_checks": [c.to_record() for c in self.probation_checks],
            "transitions": [t.to_record() for t in self.transitions],
            "symbols": {s: v.to_record() for s, v in sorted(self.statuses.items())},
            "summary": self.summary,
        }


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_cycle(
    now_s: float,
    live_trades: Iterable[ClosedTrade],
    shadow_trades: Iterable[ClosedTrade],
    states: Mapping[str, SymbolStatus],
    config: Config,
    *,
    trigger: CycleTrigger = CycleTrigger.OPERATOR,
    slot_s: float | None = None,
    missed_slots: int = 0,
    cycle: int = 1,
    unreadable_records: int = 0,
) -> CycleReport:
    """One learning cycle as a pure function: new states and buffers, and the full report."""
    learning = config.learning
    live_all = [t for t in live_trades if t.ledger is Ledger.LIVE]
    shadow_all = [t for t in shadow_trades if t.ledger is Ledger.SHADOW]
    # `in_window`, its bound made once: a replay's cycle goes through every shadow outcome
    # of the run so far
    start_s = now_s - learning.lookback_h * 3600.0
    live = [t for t in live_all if start_s < t.exit_s <= now_s]
    shadow = [t for t in shadow_all if start_s < t.exit_s <= now_s]
    statuses = dict(states)
    for symbol in sorted({t.symbol for t in live} - set(statuses)):
        statuses[symbol] = initial_status(symbol, config)

    buffers = {s: (v.slippage_buffer_bps, v.buffer_raised_s) for s, v in statuses.items()}
    checks = buffer_checks(live, shadow_all, buffers, learning)
    for buffer_check in checks:
        if buffer_check.verdict is BufferVerdict.RAISED:
            statuses[buffer_check.symbol] = dataclasses.replace(
                statuses[buffer_check.symbol],
                slippage_buffer_bps=buffer_check.buffer_after_bps,
                buffer_raised_s=now_s,
            )

    probation_checks: list[ProbationCheck] = []
    transitions: list[ProbationTransition] = []
    for symbol in sorted(statuses):
        new, check, transition = judge_probation(statuses[symbol], live, now_s, learning)
        statuses[symbol] = new
        probation_checks.append(check)
        if transition is not None:
            transitions.append(transition)

    return CycleReport(
        cycle=cycle,
        trigger=trigger,
        run_s=now_s,
        slot_s=slot_s,
        missed_slots=missed_slots,
        window_start_s=start_s,
        live_trades_read=len(live_all),
        shadow_trades_read=len(shadow_all),
        live_trades_in_window=len(live),
        shadow_trades_in_window=len(shadow),
        buffer_checks=tuple(checks),
        probation_checks=tuple(probation_checks),
        transitions=tuple(transitions),
        statuses=MappingProxyType(statuses),
        unreadable_records=unreadable_records,
    )
