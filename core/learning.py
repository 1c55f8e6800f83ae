"""The self-healing learning loop (DESIGN.md "Learning loop").

Every `interval_h` of market time, and when the operator asks, a cycle reads the closed
trades from the store and, per strategy and symbol:

- compares the live ledger's profit factor with the shadow ledger's (the ideal twins: signal
  close, no slippage). With at least `min_trades` closed live trades in the last
  `lookback_h`, PF_shadow > `shadow_edge_ratio` x PF_live means our fills cost more than the
  fee gate assumed, so the symbol's slippage buffer rises by `buffer_step_bps`, capped at
  `buffer_cap_bps`. A raise needs a live trade closed since the symbol's previous raise:
  a 24-hour window is read by six 4-hour cycles, and the same trades must not raise the
  buffer six times (nor keep raising it while entries are paused);
- runs the probation state machine (`probation.py`) on the golden-hour live trades.

Profit-factor edge cases in the buffer rule: PF_live = inf (no losing live trade) can never
be beaten, so no raise; PF_shadow = inf with a finite PF_live is a gap, so a raise; no shadow
outcome in the window (PF_shadow undefined) means nothing to compare, so no raise.

Schedule: cycles fall on the slots k x interval_h since 1970-01-01 00:00 UTC of market time
(00:00, 04:00, 08:00 ... UTC for 4 h). The latest slot a scheduled cycle ran for is saved
with the symbol states in one atomic write, so a restart neither repeats nor skips it. When
market time jumps over several slots (the bot was down), exactly one catch-up cycle runs, for
the latest missed slot, and its report counts the slots it stood in for. Operator cycles run
on top of the schedule and do not move it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .commands import Command, CommandKind
from .config import Config, LearningConfig
from .errors import CommandError
from .probation import (
    ProbationCheck,
    ProbationTransition,
    SymbolStatus,
    initial_status,
    judge_probation,
    optional_time_s,
    release,
)
from .profit_factor import format_pf, pf_above, pf_json, profit_factor
from .snapshot import LearningView, Snapshot, SymbolView
from .store import LEARNING_HISTORY, POSITIONS, SHADOW_OUTCOMES, SYMBOL_STATES, Store
from .trades import ClosedTrade, Ledger

if TYPE_CHECKING:
    from .engine import Core

Emit = Callable[..., object]


# -- the slippage-buffer rule ------------------------------------------------------------


class BufferVerdict(StrEnum):
    RAISED = "raised"
    AT_CAP = "gap, buffer already at cap"
    NO_GAP = "no gap"
    NO_NEW_TRADES = "gap, but no live trade closed since the last raise"
    TOO_FEW_TRADES = "too few live trades"
    NO_SHADOW = "no shadow outcomes"
    LIVE_UNBEATABLE = "live PF infinite"


def shadow_gap(pf_live: float | None, pf_shadow: float | None, ratio: float) -> bool:
    """PF_shadow > ratio x PF_live, with the edge cases of the module doc."""
    if pf_live is None or pf_shadow is None or math.isinf(pf_live):
        return False
    if math.isinf(pf_shadow):
        return True
    return pf_above(pf_shadow, ratio * pf_live)


@dataclass(frozen=True, slots=True)
class BufferCheck:
    """One strategy and symbol in one cycle: the two profit factors and the verdict."""

    strategy: str
    symbol: str
    live_trades: int
    shadow_trades: int
    pf_live: float | None
    pf_shadow: float | None
    verdict: BufferVerdict
    buffer_before_bps: float
    buffer_after_bps: float

    @property
    def message(self) -> str:
        figures = (
            f"PF shadow {format_pf(self.pf_shadow)} vs live {format_pf(self.pf_live)}"
            f" over {self.live_trades} live trades"
        )
        if self.verdict is BufferVerdict.RAISED:
            return (
                f"slippage buffer {self.buffer_before_bps:g} -> {self.buffer_after_bps:g} bps"
                f" ({self.strategy}: {figures})"
            )
        return f"{self.strategy}: {figures}: {self.verdict.value}"

    def to_record(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "live_trades": self.live_trades,
            "shadow_trades": self.shadow_trades,
            "pf_live": self.pf_live,
            "pf_shadow": self.pf_shadow,
            "verdict": self.verdict.value,
            "buffer_before_bps": self.buffer_before_bps,
            "buffer_after_bps": self.buffer_after_bps,
        }


def check_buffer(
    strategy: str,
    symbol: str,
    live: list[ClosedTrade],
    shadow: list[ClosedTrade],
    buffer_bps: float,
    config: LearningConfig,
    raised_s: float | None = None,
) -> BufferCheck:
    """The buffer rule for one strategy and symbol; `live`/`shadow` are already windowed.

    `raised_s` is when the symbol's buffer last rose: a further raise needs a live trade
    closed after it, so one batch of trades raises the buffer once, not at every cycle
    that still sees it in the window.
    """
    pf_live = profit_factor(live)
    pf_shadow = profit_factor(shadow)
    after = buffer_bps
    if len(live) < config.min_trades or pf_live is None:
        verdict = BufferVerdict.TOO_FEW_TRADES
    elif pf_shadow is None:
        verdict = BufferVerdict.NO_SHADOW
    elif math.isinf(pf_live):
        verdict = BufferVerdict.LIVE_UNBEATABLE
    elif not shadow_gap(pf_live, pf_shadow, config.shadow_edge_ratio):
        verdict = BufferVerdict.NO_GAP
    elif raised_s is not None and not any(t.exit_s > raised_s for t in live):
        verdict = BufferVerdict.NO_NEW_TRADES
    elif buffer_bps >= config.buffer_cap_bps:
        verdict = BufferVerdict.AT_CAP
    else:
        verdict = BufferVerdict.RAISED
        after = min(buffer_bps + config.buffer_step_bps, config.buffer_cap_bps)
    return BufferCheck(
        strategy, symbol, len(live), len(shadow), pf_live, pf_shadow, verdict, buffer_bps, after
    )


# -- one cycle ---------------------------------------------------------------------------


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
            "run": _iso(self.run_s),
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


def _iso(t: float) -> str:
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
    live = [t for t in live_all if in_window(t, now_s, learning)]
    shadow = [t for t in shadow_all if in_window(t, now_s, learning)]
    statuses = dict(states)
    for symbol in sorted({t.symbol for t in live} - set(statuses)):
        statuses[symbol] = initial_status(symbol, config)

    buffer_checks = _buffer_checks(live, shadow, statuses, learning)
    for buffer_check in buffer_checks:
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
        window_start_s=now_s - learning.lookback_h * 3600.0,
        live_trades_read=len(live_all),
        shadow_trades_read=len(shadow_all),
        live_trades_in_window=len(live),
        shadow_trades_in_window=len(shadow),
        buffer_checks=tuple(buffer_checks),
        probation_checks=tuple(probation_checks),
        transitions=tuple(transitions),
        statuses=MappingProxyType(statuses),
        unreadable_records=unreadable_records,
    )


def _buffer_checks(
    live: list[ClosedTrade],
    shadow: list[ClosedTrade],
    statuses: Mapping[str, SymbolStatus],
    config: LearningConfig,
) -> list[BufferCheck]:
    """The buffer rule per strategy and symbol that traded live in the window.

    Every check of a symbol starts from the buffer the cycle began with, so a symbol rises
    by at most one step per cycle however many strategies trade it.
    """
    groups = sorted({(t.strategy, t.symbol) for t in live})
    checks = []
    for strategy, symbol in groups:
        live_group = [t for t in live if t.strategy == strategy and t.symbol == symbol]
        shadow_group = [t for t in shadow if t.strategy == strategy and t.symbol == symbol]
        status = statuses[symbol]
        checks.append(
            check_buffer(
                strategy,
                symbol,
                live_group,
                shadow_group,
                status.slippage_buffer_bps,
                config,
                raised_s=status.buffer_raised_s,
            )
        )
    return checks


# -- the schedule ------------------------------------------------------------------------


def slot_at(now_s: float, interval_s: float) -> float:
    """The latest slot at or before `now_s` (slots are multiples of the interval)."""
    return math.floor(now_s / interval_s) * interval_s


@dataclass(frozen=True, slots=True)
class LearningSchedule:
    """When cycles ran and are due. `last_slot_s` None: no market time seen yet."""

    interval_s: float
    last_slot_s: float | None = None
    last_cycle_s: float | None = None
    cycles: int = 0
    last_summary: str = ""

    def next_due(self, now_s: float) -> float:
        """The slot the next scheduled cycle is for (at or before `now_s`: due now)."""
        if self.last_slot_s is None:
            return slot_at(now_s, self.interval_s) + self.interval_s
        return self.last_slot_s + self.interval_s

    def due(self, now_s: float) -> tuple[float, int] | None:
        """(slot, slots missed before it) when a scheduled cycle is due at `now_s`."""
        if self.last_slot_s is None:
            return None
        slot = slot_at(now_s, self.interval_s)
        if slot <= self.last_slot_s:
            return None
        missed = round((slot - self.last_slot_s) / self.interval_s) - 1
        return slot, missed

    def to_record(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "last_slot_s": self.last_slot_s,
            "last_cycle_s": self.last_cycle_s,
            "cycles": self.cycles,
            "last_summary": self.last_summary,
        }

    @classmethod
    def from_record(cls, interval_s: float, record: Mapping[str, Any]) -> LearningSchedule:
        """Saved times with the configured interval; a changed interval keeps the last slot."""
        cycles = record.get("cycles", 0)
        if not isinstance(cycles, int) or cycles < 0:
            raise ValueError("learning.cycles must be a count")
        return cls(
            interval_s=interval_s,
            last_slot_s=optional_time_s(record.get("last_slot_s")),
            last_cycle_s=optional_time_s(record.get("last_cycle_s")),
            cycles=cycles,
            last_summary=str(record.get("last_summary", "")),
        )


# -- reading the ledgers from the store --------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerRead:
    live: list[ClosedTrade] = field(default_factory=list)
    shadow: list[ClosedTrade] = field(default_factory=list)
    unreadable: int = 0


def closed_trade_records(positions_doc: Mapping[str, Any] | None) -> list[Any]:
    """The closed live trades inside `positions_futures.json` (its layout lives here only)."""
    if positions_doc is None:
        return []
    closed = positions_doc.get("closed", [])
    return list(closed) if isinstance(closed, list) else []


def _parse_trades(records: Iterable[Any], ledger: Ledger) -> tuple[list[ClosedTrade], int]:
    trades: list[ClosedTrade] = []
    bad = 0
    for record in records:
        try:
            trade = ClosedTrade.from_record(record)
        except (KeyError, TypeError, ValueError, AttributeError):
            bad += 1
            continue
        if trade.ledger is ledger:
            trades.append(trade)
    return trades, bad


def read_ledgers(store: Store) -> LedgerRead:
    """Closed live trades and shadow outcomes as the store holds them now."""
    live, bad_live = _parse_trades(closed_trade_records(store.read_json(POSITIONS)), Ledger.LIVE)
    shadow, bad_shadow = _parse_trades(
        store.iter_jsonl(SHADOW_OUTCOMES, with_rotated=True), Ledger.SHADOW
    )
    return LedgerRead(live, shadow, bad_live + bad_shadow)


# -- what `bigalpha-tui status` shows ----------------------------------------------------


def learning_status(store: Store) -> dict[str, Any]:
    """Last cycle, next due slot, and each symbol's state and buffer, JSON-ready.

    Reads `symbol_states.json` only (pass a read-only store to change nothing).
    """
    doc = store.read_json(SYMBOL_STATES) or {}
    raw_schedule = doc.get("learning") or {}
    symbols: dict[str, Any] = {}
    try:
        interval_s = float(raw_schedule.get("interval_s") or 0.0)
        schedule = LearningSchedule.from_record(interval_s, raw_schedule)
        for symbol, record in sorted((doc.get("symbols") or {}).items()):
            status = SymbolStatus.from_record(str(symbol), record)
            symbols[symbol] = {
                "state": status.state.value,
                "slippage_buffer_bps": status.slippage_buffer_bps,
                "golden_pf": pf_json(status.golden_pf),
                "golden_trades": status.golden_trades,
                "state_changed": None
                if status.state_changed_s is None
                else _iso(status.state_changed_s),
                "state_reason": status.state_reason,
            }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return {"error": f"{SYMBOL_STATES}: unexpected content ({exc})"}
    last = schedule.last_slot_s
    next_due_s = last + interval_s if last is not None and interval_s > 0 else None
    return {
        "cycles": schedule.cycles,
        "last_cycle_s": schedule.last_cycle_s,
        "last_cycle": None if schedule.last_cycle_s is None else _iso(schedule.last_cycle_s),
        "next_due_s": next_due_s,
        "next_due": None if next_due_s is None else _iso(next_due_s),
        "last_summary": schedule.last_summary,
        "symbols": symbols,
    }


# -- the loop ----------------------------------------------------------------------------


class LearningLoop:
    """Runs cycles on schedule and on demand, persists states, announces every change."""

    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        emit: Emit | None = None,
        symbols: Iterable[str] = (),
        read_only: bool = False,
    ) -> None:
        self.store = store
        self.config = config
        self.emit: Emit = emit or (lambda *args, **kwargs: None)
        self.read_only = read_only
        self.statuses: dict[str, SymbolStatus] = {s: initial_status(s, config) for s in symbols}
        self.schedule = LearningSchedule(config.learning.interval_h * 3600.0)
        self.last_report: CycleReport | None = None
        self._restarted = True  # the first due slot after a start is a catch-up
        self.restore()

    # -- persistence ---------------------------------------------------------------

    def restore(self) -> None:
        """Load states, buffers and the schedule; a corrupt file is set aside, defaults kept."""
        warned = len(self.store.warnings)
        self.store.load_or_quarantine(SYMBOL_STATES, self._restore)
        for warning in self.store.warnings[warned:]:
            self.emit("store_warning", "", f"{warning.file}: {warning.message}")

    def _restore(self, doc: dict[str, Any]) -> None:
        statuses = {
            str(symbol): SymbolStatus.from_record(str(symbol), record)
            for symbol, record in doc["symbols"].items()
        }
        schedule = LearningSchedule.from_record(self.schedule.interval_s, doc.get("learning", {}))
        last_report = doc.get("last_report")
        if last_report is not None and not isinstance(last_report, dict):
            raise ValueError("last_report must be an object")
        self.statuses.update(statuses)
        self.schedule = schedule
        if last_report is not None:
            self._append_history_once(last_report)

    def _append_history_once(self, record: dict[str, Any]) -> None:
        """Finish a cycle whose history line a crash cut off (states are saved first)."""
        last_cycle = None
        for line in self.store.iter_jsonl(LEARNING_HISTORY, with_rotated=True):
            last_cycle = line.get("cycle", last_cycle)
        if last_cycle != record.get("cycle"):
            self.store.append_jsonl(LEARNING_HISTORY, record)

    def save(self, report: CycleReport | None = None) -> None:
        """States and schedule in one atomic write; with a report, then its history line."""
        if self.read_only:
            return
        payload: dict[str, Any] = {
            "symbols": {s: v.to_record() for s, v in sorted(self.statuses.items())},
            "learning": self.schedule.to_record(),
        }
        record = report.to_record() if report is not None else None
        if record is not None:
            payload["last_report"] = record
        elif self.last_report is not None:
            payload["last_report"] = self.last_report.to_record()
        self.store.write_json(SYMBOL_STATES, payload)
        if record is not None:
            self.store.append_jsonl(LEARNING_HISTORY, record)

    # -- cycles --------------------------------------------------------------------

    def tick(self, now_s: float | None) -> CycleReport | None:
        """Called after each bar with its market time: run the scheduled cycle when due."""
        if now_s is None or self.read_only:
            return None
        restarted, self._restarted = self._restarted, False
        if self.schedule.last_slot_s is None:
            # first market time this store has seen: the first cycle is at the next slot
            first = slot_at(now_s, self.schedule.interval_s)
            self.schedule = dataclasses.replace(self.schedule, last_slot_s=first)
            self.save()
            return None
        # Market time behind the saved slot is a restart replaying bars since the last
        # checkpoint (at --speed max that can be hours of market time): the slot is done, so
        # wait for the next one. The schedule never moves back.
        due = self.schedule.due(now_s)
        if due is None:
            return None
        slot_s, missed = due
        trigger = CycleTrigger.CATCH_UP if missed or restarted else CycleTrigger.SCHEDULE
        return self._run(now_s, trigger, slot_s, missed)

    def run_now(self, now_s: float) -> CycleReport:
        """An operator cycle: runs at once, leaves the schedule where it is."""
        return self._run(now_s, CycleTrigger.OPERATOR, None, 0)

    def _run(
        self, now_s: float, trigger: CycleTrigger, slot_s: float | None, missed: int
    ) -> CycleReport:
        ledgers = read_ledgers(self.store)
        report = run_cycle(
            now_s,
            ledgers.live,
            ledgers.shadow,
            self.statuses,
            self.config,
            trigger=trigger,
            slot_s=slot_s,
            missed_slots=missed,
            cycle=self.schedule.cycles + 1,
            unreadable_records=ledgers.unreadable,
        )
        self.statuses = dict(report.statuses)
        self.schedule = dataclasses.replace(
            self.schedule,
            last_slot_s=slot_s if slot_s is not None else self.schedule.last_slot_s,
            last_cycle_s=now_s,
            cycles=report.cycle,
            last_summary=report.summary,
        )
        self.last_report = report
        self.save(report)
        self._announce(report)
        return report

    def _announce(self, report: CycleReport) -> None:
        for check in report.raises:
            self.emit(
                "buffer",
                check.symbol,
                check.message,
                strategy=check.strategy,
                before_bps=check.buffer_before_bps,
                after_bps=check.buffer_after_bps,
                pf_live=check.pf_live,
                pf_shadow=check.pf_shadow,
                live_trades=check.live_trades,
                cycle=report.cycle,
            )
        for transition in report.transitions:
            self._announce_transition(transition, report.cycle)
        if report.unreadable_records:
            self.emit(
                "learning",
                "",
                f"learning cycle {report.cycle}: skipped {report.unreadable_records}"
                " unreadable trade record(s)",
            )
        if report.trigger is not CycleTrigger.OPERATOR:  # an operator cycle answers as a toast
            self.emit("learning", "", report.summary, cycle=report.cycle)

    def _announce_transition(self, transition: ProbationTransition, cycle: int | None) -> None:
        self.emit(
            "probation",
            transition.symbol,
            transition.message,
            before=transition.before.value,
            after=transition.after.value,
            golden_pf=transition.golden_pf,
            golden_trades=transition.golden_trades,
            by_operator=transition.by_operator,
            cycle=cycle,
        )

    # -- operator ------------------------------------------------------------------

    def release(self, symbol: str, now_s: float) -> ProbationTransition:
        """Operator release; CommandError when the symbol is not on probation."""
        status = self.statuses.get(symbol)
        if status is None:
            raise CommandError(f"{symbol} is not on probation (the learning loop has not seen it)")
        released, transition = release(status, now_s)
        self.statuses[symbol] = released
        self.save()
        self._announce_transition(transition, None)
        return transition

    # -- what the trading loop and the snapshot read -------------------------------

    def status(self, symbol: str) -> SymbolStatus:
        return self.statuses.get(symbol) or initial_status(symbol, self.config)

    def slippage_buffer_bps(self, symbol: str) -> float:
        return self.status(symbol).slippage_buffer_bps

    def size_cap(self, symbol: str) -> float:
        return self.status(symbol).size_cap(self.config)

    def view(self, now_s: float | None) -> LearningView:
        known = self.schedule.last_slot_s is not None or now_s is not None
        next_s = self.schedule.next_due(now_s or 0.0) if known else None
        return LearningView(
            last_cycle_s=self.schedule.last_cycle_s,
            next_cycle_s=next_s,
            last_summary=self.schedule.last_summary,
            cycles=self.schedule.cycles,
        )

    def symbol_view(self, view: SymbolView) -> SymbolView:
        status = self.status(view.symbol)
        return dataclasses.replace(
            view,
            state=status.state,
            golden_pf=status.golden_pf,
            golden_trades=status.golden_trades,
            size_cap=status.size_cap(self.config),
            slippage_buffer_bps=status.slippage_buffer_bps,
            state_changed_s=status.state_changed_s,
            state_reason=status.state_reason,
        )

    def decorate(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with the learning view and each symbol's state, cap and buffer."""
        return dataclasses.replace(
            snapshot,
            symbols=tuple(self.symbol_view(v) for v in snapshot.symbols),
            learning=self.view(snapshot.heartbeat.market_time_s),
        )


# -- wiring into the core ----------------------------------------------------------------


def attach_learning(core: Core) -> LearningLoop:
    """Give `core` a learning loop: the schedule after each bar, LEARN and RELEASE commands,
    the buffers and probation states its trading loop reads, and the learning fields of
    every snapshot."""
    loop = LearningLoop(
        core.store,
        core.config,
        emit=core.emit,
        symbols=core.config.source.symbols,
        read_only=core.read_only,
    )

    def market_now() -> float:
        t = core.heartbeat.market_time_s
        return core.clock.now() if t is None else t

    def on_learn(command: Command) -> str:
        return loop.run_now(market_now()).summary

    def on_release(command: Command) -> str:
        return loop.release(command.target, market_now()).message

    trading = getattr(core, "trading", None)
    if trading is not None:
        trading.terms = loop  # the fee gate's buffer and the probation size cap
    core.command_handlers[CommandKind.LEARN] = on_learn
    core.command_handlers[CommandKind.RELEASE] = on_release

    def after_bar() -> None:
        loop.tick(core.heartbeat.market_time_s)

    core.step_observers.append(after_bar)
    build = core.build_snapshot

    def build_snapshot() -> Snapshot:
        return loop.decorate(build())

    core.build_snapshot = build_snapshot  # type: ignore[method-assign]
    return loop
