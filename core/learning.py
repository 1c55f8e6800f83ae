"""The self-healing learning loop (DESIGN.md "Learning loop"): runs cycles on schedule and
on demand, persists the symbol states and the schedule, announces every change.

The rules are elsewhere: the slippage-buffer rule in `buffer_rule.py`, probation in
`probation.py`, one cycle in `learning_cycle.py`, the schedule in `learning_schedule.py`, the
store readers in `learning_store.py`. `Core` builds the loop and calls `before_bar` with each
bar's open time: a cycle due at a slot runs before the first bar at or after it.

A restart may re-feed bars that closed before the last cycle ran (the book on disk is older
than `symbol_states.json`, e.g. after a crash): those bars are traded on the states that were
in force when they first closed, read from the history, not on the states the later cycle
left; otherwise the resumed run would decide differently from the run that never stopped.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import codec
from .bar import MINUTE_MS
from .config import Config
from .errors import CommandError
from .learning_cycle import CycleReport, CycleTrigger, run_cycle
from .learning_schedule import LearningSchedule, slot_at
from .learning_store import LogTail, RecordMemo, TradeCache, read_ledgers
from .probation import ProbationTransition, SymbolStatus, initial_status, release
from .snapshot import LearningView, SymbolView
from .store import LEARNING_HISTORY, SHADOW_OUTCOMES, SYMBOL_STATES, Store

Emit = Callable[..., object]


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
        # while re-fed bars from before the last cycle are applied: the states as of each
        # one's close, from the history (run times ascending, states after each cycle)
        self._history: list[tuple[float, dict[str, SymbolStatus]]] | None = None
        self._history_times: list[float] = []
        self._as_of: Mapping[str, SymbolStatus] | None = None
        # the outcomes read last cycle, already checked (`keep_checked_records`)
        self._trade_cache: TradeCache | None = None
        self._log_tail: LogTail | None = None  # and how far the log was read
        self._live_memo: RecordMemo | None = None  # the book's closed trades, checked
        # `_calm`'s bounds, for the schedule they were made from
        self._calm_for: LearningSchedule | None = None
        self._calm_from_s = self._calm_until_s = -math.inf
        self.restore()

    def keep_checked_records(self) -> None:
        """Keep the outcome records each cycle checked, so the next cycle does not check
        them again (a replay runs hundreds of cycles over a growing log; the records stay in
        memory between cycles, which a long live run does not need)."""
        if self._trade_cache is None:
            self._trade_cache = {}
            self._log_tail = LogTail()
            self._live_memo = {}
            if not self.read_only:
                # a throwaway store (`buffer_logs`) then hands each cycle the outcomes
                # appended since the last one, instead of writing them out and reading
                # them back (the book likewise: `read_ledgers`)
                self.store.follow_log(SHADOW_OUTCOMES)

    # -- persistence ---------------------------------------------------------------

    def restore(self) -> None:
        """Load states, buffers and the schedule; a corrupt file is set aside, defaults kept
        (the store keeps the warning; `Core` tells the operator once, with every other)."""
        self.store.load_or_quarantine(SYMBOL_STATES, self._restore)

    def _restore(self, doc: dict[str, Any]) -> None:
        """Each symbol's state read alone (a bad one is set aside, that symbol starts ACTIVE
        with the initial buffer); the schedule and the last report likewise."""
        if not isinstance(doc.get("symbols"), dict):
            raise KeyError("symbols")  # another file's layout: set aside whole
        bad: list[str] = []
        statuses = codec.Reader(bad).entries(doc, "symbols", SymbolStatus.from_record)
        try:
            raw = doc.get("learning", {})
            if not isinstance(raw, dict):
                raise codec.RecordError("not an object")
            self.schedule = LearningSchedule.from_record(self.schedule.interval_s, raw)
        except (ValueError, TypeError, KeyError) as exc:
            bad.append(f"learning schedule: {exc}; the next slot is the first cycle")
        last_report = doc.get("last_report")
        if last_report is not None and not isinstance(last_report, dict):
            bad.append("last_report: not an object")
            last_report = None
        self.statuses.update(statuses)
        if last_report is not None:
            self._append_history_once(last_report)
        if bad:
            self.store.set_aside_records(SYMBOL_STATES, bad)
            self.save()  # the file holds the states kept: the next start finds nothing bad

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
        self.store.write_json(SYMBOL_STATES, payload, owned=True)  # made afresh above
        if record is not None:
            self.store.append_jsonl(LEARNING_HISTORY, record)

    # -- cycles --------------------------------------------------------------------

    def _calm(self, open_s: float) -> bool:
        """True when `before_bar(open_s)` has nothing to do: no cycle due, no re-fed bar
        (most bars; the bounds are made once per schedule, inside the exact tests': a bar
        opening after the last cycle ran, and a second before the next slot)."""
        schedule = self.schedule
        if schedule is not self._calm_for:
            self._calm_for = schedule
            last, ran = schedule.last_slot_s, schedule.last_cycle_s
            self._calm_until_s = -math.inf if last is None else last + schedule.interval_s - 1.0
            self._calm_from_s = -math.inf if ran is None else ran
        return (
            self._calm_from_s < open_s < self._calm_until_s
            and self._as_of is None
            and self._history is None
        )

    def cycle_due(self, open_s: float) -> bool:
        """Will `before_bar(open_s)` run a scheduled cycle?"""
        if self._calm(open_s):
            return False
        last = self.schedule.last_slot_s
        return not self.read_only and last is not None and self.schedule.due(open_s) is not None

    def before_bar(self, open_s: float) -> CycleReport | None:
        """Called before each bar is applied, with its open time: when a slot has come, its
        cycle runs first, on exactly the bars that closed by then (a bar opening after the
        slot means a gap in the data: the cycle runs late, as a catch-up)."""
        if self.read_only or self._calm(open_s):
            return None
        self._note_refed_bar(open_s)
        if self.schedule.last_slot_s is None:
            # first market time this store has seen: the first cycle is at the next slot
            first = slot_at(open_s, self.schedule.interval_s)
            self.schedule = dataclasses.replace(self.schedule, last_slot_s=first)
            self.save()
            return None
        # A bar behind the saved slot is a restart re-feeding bars since the engines' last
        # checkpoint: that slot is done. The schedule never moves back.
        due = self.schedule.due(open_s)
        if due is None:
            return None
        slot_s, missed = due
        late = missed > 0 or open_s > slot_s
        trigger = CycleTrigger.CATCH_UP if late else CycleTrigger.SCHEDULE
        return self._run(open_s, trigger, slot_s, missed)

    def _note_refed_bar(self, open_s: float) -> None:
        """A bar that closed before the last cycle ran is a restart re-feeding bars the book
        on disk had not seen: it is traded on the states in force when it first closed."""
        close_s = open_s + MINUTE_MS / 1000.0
        last_s = self.schedule.last_cycle_s
        if last_s is None or close_s > last_s:
            self._as_of = None
            self._history = None  # caught up
            return
        if self._history is None:
            self._history = self._history_states()
            self._history_times = [t for t, _ in self._history]
        # the cycles that ran before this bar closed (a cycle runs before its slot's bar)
        i = bisect.bisect_left(self._history_times, close_s)
        self._as_of = self._history[i - 1][1] if i else {}

    def _history_states(self) -> list[tuple[float, dict[str, SymbolStatus]]]:
        """Each recorded cycle's run time and the states it left; unreadable lines skipped
        (the store already warned about them)."""
        out: list[tuple[float, dict[str, SymbolStatus]]] = []
        for record in self.store.iter_jsonl(LEARNING_HISTORY, with_rotated=True):
            try:
                run_s = float(record["run_s"])
                symbols = record["symbols"]
                states = {s: SymbolStatus.from_record(s, r) for s, r in symbols.items()}
            except (ValueError, TypeError, KeyError, AttributeError):
                continue
            out.append((run_s, states))
        out.sort(key=lambda entry: entry[0])
        return out

    def run_now(self, now_s: float) -> CycleReport:
        """An operator cycle: runs at once, leaves the schedule where it is."""
        return self._run(now_s, CycleTrigger.OPERATOR, None, 0)

    def _run(
        self, now_s: float, trigger: CycleTrigger, slot_s: float | None, missed: int
    ) -> CycleReport:
        ledgers = read_ledgers(self.store, self._trade_cache, self._log_tail, self._live_memo)
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
        states = self.statuses if self._as_of is None else self._as_of
        return states.get(symbol) or initial_status(symbol, self.config)

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
