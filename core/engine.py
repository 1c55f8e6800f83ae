"""The core loop: source -> Bar -> engines -> (strategy, gates, broker, exits) -> snapshot.

One `Core` serves the cockpit, the headless runner and replay alike. It is driven by
`run()` (async, paced by the source and the injected clock) or bar by bar through
`process_bar()` in tests. Operator commands wait in a queue and are applied between bars.
Observers (UI, logger, alerts) receive events through callbacks that must not block.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import anyio

from . import codec, trading_view
from .bar import Bar
from .clock import Clock
from .commands import Command, CommandKind
from .config import Config
from .errors import CommandError
from .flow import FlowState, WhaleFlowEngine
from .frozen import slot_maker
from .hurst import HurstReading, HurstTracker
from .learning import LearningLoop
from .orders import EntryControls
from .snapshot import Event, ExecutionView, Heartbeat, Snapshot, SymbolView
from .snapshot_codec import CodecError, decode, to_json
from .sources.base import BarSource, SourceHealth
from .store import ENGINE_STATE, HURST_CACHE, RECENT_EVENTS, WHALE_FLOW, Store
from .strategy import Signal
from .trading import TradingLoop
from .types import SWITCHABLE_GUARDS, BlockReason, Regime

log = logging.getLogger(__name__)

EVENT_LOG_LEN = 200

#: `Event(...)` with every field by position, at half the cost (an event per signal bar)
_event = slot_maker(Event)


class ExecutionHooks(Protocol):
    """Testnet/live order routing (`execution_loop.py`): started with the run, drained
    before every bar, and a reason to halt new entries."""

    async def start(self) -> None: ...

    async def serve(self) -> None: ...

    async def before_bar(self) -> None: ...

    def halt_reason(self) -> str | None: ...

    def view(self) -> ExecutionView: ...


@dataclass
class SymbolEngines:
    """Per-symbol streaming state."""

    symbol: str
    flow: WhaleFlowEngine
    hurst: HurstTracker
    last_bar: Bar | None = None
    #: recent (close time s, close) for the price chart; display only, not saved
    closes: deque[tuple[float, float]] = dataclasses.field(default_factory=deque)
    last_flow: FlowState | None = None
    last_hurst: HurstReading | None = None
    flow_open_ms: int = -1  # the last bar each engine applied (saved in separate files,
    hurst_open_ms: int = -1  # so after a crash one may stand a bar ahead of the other)

    @property
    def last_open_ms(self) -> int:
        """The last bar both engines applied."""
        return min(self.flow_open_ms, self.hurst_open_ms)


class FeatureFeed(Protocol):
    """Engine output computed ahead of the bars (a batch replay): applied in their place."""

    def apply(self, core: Core, engines: SymbolEngines, bar: Bar) -> None: ...

    def problem(self, bar: Bar) -> str | None:
        """`bar.problem()`, known ahead for the bars it was computed for."""
        ...


def _count(value: Any) -> int:
    """A folded line's count as the log holds it; 1 when absent or not a sane count (a
    restored log is a file: it may hold anything)."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**53:
        return value
    return 1


class Core:
    """The trading core of one feature store."""

    def __init__(
        self,
        config: Config,
        source: BarSource,
        clock: Clock,
        store: Store,
        *,
        read_only: bool = False,
        trading: bool = True,
    ) -> None:
        self.config = config
        self.source = source
        self.clock = clock
        self.store = store
        self.read_only = read_only
        self.symbols: dict[str, SymbolEngines] = {}
        self.events: deque[Event] = deque(maxlen=EVENT_LOG_LEN)
        self.observers: list[Callable[[Event], None]] = []
        self.step_observers: list[Callable[[], None]] = []
        # display only (a progress bar): called after a step now and then (the streaming
        # loop: every step; a batch replay: every few thousand steps), with the heartbeat
        # as after it; unlike a step observer, one does not make a batch run take every step
        self.progress_observers: list[Callable[[], None]] = []
        # the heartbeat's figures, set every bar; the `Heartbeat` is made when read
        self._beat: tuple[float | None, float | None, int] = (None, None, 0)
        self._heartbeat: Heartbeat | None = Heartbeat()
        self.rejected_bars: dict[str, int] = {}
        self.last_bar_ms: int | None = None
        self.started_market_s: float | None = None
        self._last_checkpoint_ms: int | None = None
        self._last_checkpoint_wall_s = 0.0
        self._snapshot: Snapshot | None = None
        self._stop = False
        self._in_step = False
        self._event_time_s: float | None = None
        self._since_text: dict[float, str] = {}  # `_since`'s answers
        self._controls: EntryControls | None = None  # `on_bar`'s last switches
        self.paused = False
        self._store_was_healthy = True
        self.guards_enabled: dict[BlockReason, bool] = {g: True for g in SWITCHABLE_GUARDS}
        self.commands: deque[Command] = deque()
        self.commands_applied = 0  # commands applied so far (a batch run looks again after)
        self.command_handlers: dict[CommandKind, Callable[[Command], str]] = {}
        self.trading: TradingLoop | None = None
        self.session = trading_view.SessionTally(clock.now())  # trades closed from now on
        # a batch replay's precomputed engine output (`batch.py`), used instead of the engines
        self.feature_feed: FeatureFeed | None = None
        self.learning: LearningLoop | None = None
        self.execution: ExecutionHooks | None = None  # testnet/live; None: paper
        if trading:
            self.learning = LearningLoop(
                store, config, emit=self.emit, symbols=config.source.symbols, read_only=read_only
            )
            self.trading = TradingLoop(
                config, store, clock, self.emit, terms=self.learning, read_only=read_only
            )
            self.trading.trade_observers.append(self.session.note)
            self.command_handlers[CommandKind.CLOSE] = self._close_command
            self.command_handlers[CommandKind.LEARN] = self._learn_command
            self.command_handlers[CommandKind.RELEASE] = self._release_command
            self.command_handlers[CommandKind.FLATTEN] = self._flatten_command
            self.command_handlers[CommandKind.ACK_MISMATCH] = lambda _: (
                "nothing to acknowledge: execution.mode is paper"
            )
        self.restore()

    @property
    def heartbeat(self) -> Heartbeat:
        """When the core last processed a bar (market and wall time) and how many it did."""
        beat = self._heartbeat
        if beat is None:
            beat = self._heartbeat = Heartbeat(*self._beat)
        return beat

    # -- observers --------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The store's folder (the cockpit's journal reads it with a store of its own)."""
        return self.store.root

    def emit(self, kind: str, symbol: str, message: str, **data: Any) -> Event:
        """Record an event and hand it to every observer; an observer's error is logged once."""
        # while a bar is being applied, its events happen at its close (a back-fill or a
        # replay runs far behind the clock); otherwise at the clock's now
        at_s = self._event_time_s if self._event_time_s is not None else self.clock.now()
        event = _event(at_s, kind, symbol, message, MappingProxyType(data))
        self.events.appendleft(self._folded(event, data) if kind == "block" else event)
        for observer in list(self.observers) if self.observers else ():
            try:
                observer(event)
            except Exception:  # an observer must never stop the core
                log.exception("observer failed on %s; removed", kind)
                self.observers.remove(observer)
        self._snapshot = None
        return event

    def _folded(self, event: Event, data: dict[str, Any] | None = None) -> Event:
        """The line the event log keeps: a block repeating the symbol's last line (same side
        and guard: the golden hour blocks every signal bar of a night) replaces that line
        with a count, so a night of blocks does not push the day's entries and exits out of
        the log. Observers (headless, logs) still get every block; so do the counts, the
        guard log and `guard_blocks.jsonl`.

        `data`: the dict behind `event.data`, when the caller has it (a dict merges at a
        quarter of a read-only view's cost: one block per signal bar of a closed golden hour).
        """
        if event.kind != "block":
            return event
        symbol = event.symbol
        if data is None:
            data = dict(event.data)
        for i, earlier in enumerate(self.events):
            if earlier.symbol != symbol:
                continue
            if earlier.kind != "block":
                return event
            before = earlier.data
            if before.get("reason") != data.get("reason") or before.get("side") != data.get("side"):
                return event
            repeats = _count(before.get("repeats")) + 1
            first_s = before.get("first_s")
            if not (isinstance(first_s, float) and earlier.time_s >= first_s >= 0.0):
                first_s = earlier.time_s  # none, or spoiled in a restored log: from this line
            del self.events[i]
            return _event(
                event.time_s,
                event.kind,
                symbol,
                f"{event.message} ({repeats}x since {self._since(first_s)})",
                MappingProxyType({**data, "repeats": repeats, "first_s": first_s}),
            )
        return event

    def _since(self, first_s: float) -> str:
        """A folded line's start as it reads ("02-01 13:05"); a night of blocks folds into
        one line per symbol with one start, so each text is made once."""
        text = self._since_text.get(first_s)
        if text is None:
            if len(self._since_text) >= EVENT_LOG_LEN:
                self._since_text.clear()
            text = self._since_text[first_s] = time.strftime("%m-%d %H:%M", time.gmtime(first_s))
        return text

    # -- per-symbol engines ----------------------------------------------------------

    def engines(self, symbol: str) -> SymbolEngines:
        engines = self.symbols.get(symbol)
        if engines is None:
            engines = SymbolEngines(
                symbol,
                WhaleFlowEngine(symbol, self.config.flow),
                self._new_tracker(),
                closes=deque(maxlen=self.config.ui.chart_bars),
            )
            self.symbols[symbol] = engines
        return engines

    def tracker_settings(self) -> dict[str, Any]:
        return self.tracker_settings_of(self.config)

    @staticmethod
    def tracker_settings_of(config: Config) -> dict[str, Any]:
        """The Hurst tracker's settings from a config."""
        h = config.hurst
        return {
            "window": h.window,
            "trend_above": h.trend_above,
            "noise_below": h.noise_below,
            "confirm_bars": h.confirm_bars,
            "method": h.method,
            "history_len": h.history_len,
        }

    def _new_tracker(self) -> HurstTracker:
        return HurstTracker(**self.tracker_settings())

    # -- the step --------------------------------------------------------------------

    def process_bar(self, bar: Bar) -> bool:
        """Feed one closed bar through every stage. False when the bar was rejected."""
        self._in_step = True
        try:
            return self._process_bar(bar)
        finally:
            self._in_step = False

    def _process_bar(self, bar: Bar) -> bool:
        """Each stage applies a bar once: after a restart the engines (checkpointed every few
        minutes) and the trading book (saved at every change) may stand at different bars,
        and each skips what it has already applied."""
        engines = self.symbols.get(bar.symbol) or self.engines(bar.symbol)
        engines_fresh = bar.open_ms > engines.last_open_ms
        trading_fresh = self.trading is not None and not self.trading.applied(bar)
        if not (engines_fresh or trading_fresh):
            self._reject(bar, "out-of-order or duplicate bar")
            return False
        feed = self.feature_feed
        problem = bar.problem() if feed is None else feed.problem(bar)
        if problem is not None:
            self._reject(bar, problem)
            return False
        if self.learning is not None:
            open_s = bar.open_ms / 1000.0
            if self.trading is not None and self.learning.cycle_due(open_s):
                # the cycle reads the closed trades from the store; and the book on disk then
                # stands at this bar, so a restart never re-feeds a bar from before the cycle
                self.trading.save()
            self.learning.before_bar(open_s)
        if engines_fresh:
            self._update_engines(engines, bar)
        engines.last_bar = bar
        close_s = bar.close_s
        closes = engines.closes
        if not closes or close_s > closes[-1][0]:
            closes.append((close_s, bar.close))
        self.on_bar(bar, engines)
        self.note_store_health()
        last_ms = self.last_bar_ms
        self.last_bar_ms = bar.open_ms if last_ms is None or bar.open_ms > last_ms else last_ms
        self._beat = (close_s, self.clock.wall(), self._beat[2] + 1)
        self._heartbeat = None
        self._snapshot = None
        return True

    def restore_beat(self, close_s: float, bars: int, last_bar_ms: int) -> None:
        """The bar count, last close and last open as a run that applied every bar has them
        (a batch run passes over bars that change nothing else)."""
        self._beat = (close_s, self.clock.wall(), bars)
        self.last_bar_ms = last_bar_ms
        self._heartbeat = None
        self._snapshot = None

    def _update_engines(self, engines: SymbolEngines, bar: Bar) -> None:
        if self.feature_feed is not None:
            self.feature_feed.apply(self, engines, bar)
            return
        if bar.open_ms > engines.flow_open_ms:
            engines.last_flow = engines.flow.update(bar)
            engines.flow_open_ms = bar.open_ms
        if bar.open_ms > engines.hurst_open_ms:
            reading = engines.hurst.update(bar.close)
            self.note_regime_change(engines, reading)
            engines.last_hurst = reading
            engines.hurst_open_ms = bar.open_ms

    def on_bar(self, bar: Bar, engines: SymbolEngines) -> None:
        """Trading stages after the engines (strategy, gates, broker, exits)."""
        if self.trading is None:
            return
        flow = engines.last_flow or engines.flow.state()
        hurst = engines.last_hurst or engines.hurst.reading
        self.trading.on_bar(bar, flow, hurst, self.entry_controls())

    def entry_controls(self) -> EntryControls:
        """The operator's switches and the halt that the gates read now."""
        paused, halted = self.paused, self.entries_halted_reason()
        controls = self._controls
        if (
            controls is None
            or controls.paused is not paused
            or controls.halted_reason != halted
            or controls.guards_enabled is not self.guards_enabled
        ):  # the same switches bar after bar: one object until one changes
            controls = self._controls = EntryControls(paused, self.guards_enabled, halted)
        return controls

    def entries_halted_reason(self) -> str | None:
        """Why new entries are halted now (the store cannot write, or the exchange: a
        mismatch, an unknown order outcome, the daily loss limit), or None."""
        error = self.store.last_write_error
        if error is None:
            return None if self.execution is None else self.execution.halt_reason()
        return f"{error}: new entries halted until the store writes again (exits go on)"

    def note_store_health(self) -> None:
        """Tell the operator once when store writes start failing and once when they heal."""
        healthy = self.store.healthy
        if healthy == self._store_was_healthy:
            return
        self._store_was_healthy = healthy
        if healthy:
            self.emit("store", "", "store writes work again: new entries resume", healthy=True)
        else:
            reason = self.entries_halted_reason() or ""
            self.emit("store", "", reason, healthy=False, error=self.store.last_write_error)

    def _close_command(self, command: Command) -> str:
        assert self.trading is not None
        return self.trading.request_close(command.target)

    def _flatten_command(self, command: Command) -> str:
        """Paper: pause entries and close every live position at the next bar's open (the
        exchange's flatten replaces this handler)."""
        assert self.trading is not None
        self.paused = True
        self.save_engine_state()
        self.trading.cancel_pending("flatten")
        closing = [self.trading.request_close(s) for s in list(self.trading.live)]
        return "; ".join(["entries paused", *closing])

    def _learn_command(self, command: Command) -> str:
        assert self.learning is not None
        if self.trading is not None:
            self.trading.flush()
        return self.learning.run_now(self.market_now()).summary

    def _release_command(self, command: Command) -> str:
        assert self.learning is not None
        if self.trading is not None:
            # the book on disk stands at the release: a restart never re-feeds a bar from
            # before it (that bar would meet the released state, not the one it first met)
            self.trading.save()
        return self.learning.release(command.target, self.market_now()).message

    def market_now(self) -> float:
        """Market time of the last bar applied (the clock's before the first)."""
        t = self.heartbeat.market_time_s
        return self.clock.now() if t is None else t

    def _reject(self, bar: Bar, reason: str) -> None:
        count = self.rejected_bars.get(reason, 0) + 1
        self.rejected_bars[reason] = count
        if count == 1 or count % 1000 == 0:
            self.emit(
                "bar_rejected",
                bar.symbol,
                f"bar rejected: {reason} (x{count})",
                reason=reason,
                count=count,
                open_ms=bar.open_ms,
            )

    def note_regime_change(self, engines: SymbolEngines, reading: HurstReading) -> None:
        before = engines.last_hurst.regime if engines.last_hurst else Regime.WARMING
        if reading.regime is not before:
            h = "—" if reading.h is None else f"{reading.h:.2f}"
            self.emit(
                "regime",
                engines.symbol,
                f"regime {before.label} -> {reading.regime.label} (H = {h})",
                regime=reading.regime.value,
                previous=before.value,
                h=reading.h,
            )

    # -- the loop --------------------------------------------------------------------

    async def run(self, duration_s: float | None = None) -> None:
        """Consume the source until it ends, `stop()` is called, or `duration_s` passes.
        With exchange execution: its start (reconciliation) first, its task beside."""
        if self.execution is None:
            await self._run_bars(duration_s)
            return
        async with anyio.create_task_group() as tg:
            await self.execution.start()
            tg.start_soon(self.execution.serve)
            try:
                await self._run_bars(duration_s)
            finally:
                tg.cancel_scope.cancel()

    def start_run(self) -> float:
        """A run starts: a stop asked before it is forgotten; its market start (now)."""
        self._stop = False
        self.started_market_s = self.clock.now()
        return self.started_market_s

    async def _run_bars(self, duration_s: float | None) -> None:
        start = self.start_run()
        end: float | None = None
        try:
            async for bar in self.source.bars(self.resume_after_ms()):
                if duration_s is not None and end is None:
                    # from now, or from the first bar when the data starts later (a
                    # replay's clock starts at 0, not at its file's first bar)
                    end = max(start, bar.open_ms / 1000.0) + duration_s
                if end is not None and bar.close_s > end:
                    break
                if self.execution is not None:
                    await self.execution.before_bar()  # results booked before the bar
                self.apply_commands()
                self.step_at(bar)
                if self._stop:
                    break
        finally:
            self.checkpoint()

    def step_at(self, bar: Bar, *, checkpoints: bool = True) -> None:
        """One bar of the loop, its events dated at its close; `checkpoints` False leaves
        the engines' state to the end of the run (a batch replay: one write at the end)."""
        self._event_time_s = bar.close_s
        try:
            self.process_bar(bar)
            if checkpoints:
                self.maybe_checkpoint(bar)
            self.note_store_health()
            for observer in self.step_observers:
                observer()
            for progress in self.progress_observers:
                progress()
        finally:
            self._event_time_s = None

    def step_entries_only(
        self,
        symbol: str,
        signal: Signal | None,
        open_ms: int,
        regime: Regime,
        close: float,
        close_s: float,
    ) -> None:
        """A batch replay's step for a bar that can only make an entry decision (it knows:
        no regime change, no learning cycle due, no entry order to fill, every position and
        twin of the symbol inside its quiet band): the bar's signal through the trading
        loop's gates (`TradingLoop.signal_and_marks`), its events dated at its close. The
        engines' last values are the caller's to bring up to date, and the step observers
        its to call (`observe_step`), once it has set what they read."""
        trading = self.trading
        assert trading is not None
        self._event_time_s = close_s
        self._in_step = True
        try:
            trading.signal_and_marks(symbol, signal, open_ms, regime, close, self.entry_controls())
            self.note_store_health()
        finally:
            self._in_step = False
            self._event_time_s = None

    def observe_step(self, bar: Bar) -> None:
        """The step observers, as `step_at` calls them after `bar` (events dated at its
        close; a command they submit applies at once)."""
        self._event_time_s = bar.close_s
        try:
            for observer in self.step_observers:
                observer()
        finally:
            self._event_time_s = None

    @property
    def stopping(self) -> bool:
        """`stop()` was asked: the loop ends after the current bar."""
        return self._stop

    def stop(self) -> None:
        """Ask the loop to end after the current bar (state is then saved)."""
        self._stop = True

    # -- operator commands -----------------------------------------------------------

    def submit(self, command: Command) -> None:
        """Queue a command; it is applied at once when no bar is being processed.

        The UI, `ctl` and the core share one event loop, so a caller outside `process_bar`
        is by construction between bars.
        """
        if self.read_only:
            raise CommandError("read-only mode: commands are disabled")
        self.commands.append(command)
        if not self._in_step:
            self.apply_commands()

    def apply_commands(self) -> None:
        """Apply queued operator commands, in order, each logged with its result."""
        while self.commands:
            command = self.commands.popleft()
            self.commands_applied += 1
            failures = self.store.write_failures
            try:
                result = self.apply_command(command)
            except CommandError as exc:
                self.emit(
                    "command",
                    command.target,
                    f"{command.describe()}: refused: {exc}",
                    command=command.describe(),
                    ok=False,
                )
                continue
            saved = self.store.write_failures == failures
            if not saved:
                result += f"; applied but not saved: {self.store.last_write_error}"
            self.emit(
                "command",
                command.target if command.kind is not CommandKind.GUARD else "",
                result,
                command=command.describe(),
                ok=True,
                saved=saved,
            )

    def apply_command(self, command: Command) -> str:
        if command.kind is CommandKind.PAUSE:
            self.paused = True
            self.save_engine_state()
            cancelled = 0 if self.trading is None else self.trading.cancel_pending("paused")
            if cancelled:
                return (
                    f"entries paused (exits keep running); {cancelled} entry order(s)"
                    " not yet filled cancelled"
                )
            return "entries paused (exits keep running)"
        if command.kind is CommandKind.RESUME:
            self.paused = False
            self.save_engine_state()
            return "entries resumed"
        if command.kind is CommandKind.GUARD:
            reason = BlockReason(command.target)
            self.guards_enabled[reason] = bool(command.on)
            self.save_engine_state()
            return f"guard {reason.value} switched {'on' if command.on else 'OFF'}"
        if command.kind in (CommandKind.CLOSE, CommandKind.RELEASE):
            known = set(self.symbols) | set(self.config.source.symbols)
            if command.target not in known:
                raise CommandError(
                    f"unknown symbol {command.target}; this run trades {', '.join(sorted(known))}"
                )
        handler = self.command_handlers.get(command.kind)
        if handler is None:
            raise CommandError(f"{command.kind.value} is not available in this build")
        return handler(command)

    def resume_after_ms(self) -> int | None:
        """The last bar every per-symbol engine has applied; the source resumes after it.

        A symbol the book trades but whose engines have no saved state (none checkpointed
        yet, or a file set aside) needs its whole history again: None, from the start (the
        book skips the bars it has applied). Resuming after the book's bar instead would
        leave those engines cold, WARMING where the uninterrupted run read a regime.
        """
        engine_ms = {s: e.last_open_ms for s, e in self.symbols.items()}
        booked = self.trading.last_open_ms if self.trading is not None else {}
        if any(engine_ms.get(symbol, -1) < 0 for symbol in booked):
            return None
        seen = [ms for ms in engine_ms.values() if ms >= 0]
        return min(seen) if seen else None

    # -- persistence -----------------------------------------------------------------

    def maybe_checkpoint(self, bar: Bar) -> None:
        """Checkpoint every `checkpoint_every_min` of market time, but not more often than
        every `checkpoint_min_wall_s` of wall time (at --speed max a day passes in seconds)."""
        every_ms = int(self.config.store.checkpoint_every_min * 60_000)
        wall_s = self.clock.wall()
        if self._last_checkpoint_ms is None:
            self._last_checkpoint_ms = bar.open_ms
            self._last_checkpoint_wall_s = wall_s
        elif (
            bar.open_ms - self._last_checkpoint_ms >= every_ms
            and wall_s - self._last_checkpoint_wall_s >= self.config.store.checkpoint_min_wall_s
        ):
            self.checkpoint()
            self._last_checkpoint_ms = bar.open_ms
            self._last_checkpoint_wall_s = wall_s

    def checkpoint(self) -> None:
        """Save the engines' state (atomic per file; each records the last bar it applied)."""
        if self.read_only:
            return
        self.store.flush_logs()  # a throwaway replay's store keeps its log lines until here
        if self.trading is not None:
            self.trading.save()  # first: the book must never be older than the engines
        flow = {
            s: {**e.flow.to_state(), "last_open_ms": e.flow_open_ms}
            for s, e in self.symbols.items()
            if e.flow_open_ms >= 0
        }
        hurst = {
            s: {**e.hurst.to_state(), "last_open_ms": e.hurst_open_ms}
            for s, e in self.symbols.items()
            if e.hurst_open_ms >= 0
        }
        self.store.write_json(WHALE_FLOW, {"symbols": flow})
        self.store.write_json(HURST_CACHE, {"symbols": hurst})
        self.store.write_json(RECENT_EVENTS, {"events": [to_json(e) for e in self.events]})
        self.save_engine_state()
        self.store.flush_logs()  # a throwaway store's state files, kept in memory until here

    def changed(self) -> None:
        """Something the snapshot shows changed without a bar or an event (the exchange's
        account read again, the outbox): the next `snapshot()` is built anew."""
        self._snapshot = None

    def save_engine_state(self) -> None:
        if not self.read_only:
            self.store.write_json(ENGINE_STATE, self.engine_state())
        self._snapshot = None

    def engine_state(self) -> dict[str, Any]:
        return {
            "last_bar_ms": self.last_bar_ms,
            "source": self.source.name,
            "paused": self.paused,
            "guards_enabled": {r.value: on for r, on in self.guards_enabled.items()},
        }

    def _restore_engine_state(self, doc: dict[str, Any]) -> None:
        if "paused" not in doc:  # another file's layout: set aside, not overwritten later
            raise KeyError("paused")
        last = doc.get("last_bar_ms")
        if last is not None and not isinstance(last, int):
            raise ValueError("last_bar_ms must be an integer")
        paused = doc.get("paused", False)
        if not isinstance(paused, bool):
            raise ValueError("paused must be true or false")
        guards = {BlockReason(k): bool(v) for k, v in doc.get("guards_enabled", {}).items()}
        if any(g not in SWITCHABLE_GUARDS for g in guards):
            raise ValueError("guards_enabled names a guard that cannot be switched")
        self.last_bar_ms = last
        self.paused = paused
        self.guards_enabled.update(guards)

    def restore(self) -> None:
        """Crash-only start: load whatever the store holds, defaults for the rest."""
        self.store.load_or_quarantine(WHALE_FLOW, self._restore_flow)
        self.store.load_or_quarantine(HURST_CACHE, self._restore_hurst)
        self.store.load_or_quarantine(ENGINE_STATE, self._restore_engine_state)
        self.store.load_or_quarantine(RECENT_EVENTS, self._restore_events)
        for warning in self.store.warnings:
            self.emit("store_warning", "", f"{warning.file}: {warning.message}")

    def _per_symbol(
        self, name: str, doc: dict[str, Any], read: Callable[[str, Any], tuple[Any, int]]
    ) -> dict[str, tuple[Any, int]]:
        """Each symbol's saved state read alone: a bad one is set aside and that symbol's
        engine rebuilds from its history (the source then resumes from the start)."""
        if not isinstance(doc.get("symbols"), dict):
            raise KeyError("symbols")  # another file's layout: set aside whole
        bad: list[str] = []
        restored = codec.Reader(bad).entries(doc, "symbols", read)
        if bad:
            self.store.set_aside_records(name, bad)
        return restored

    def _last_ms(self, state: Any) -> int:
        latest_s = codec.latest_time_s(self.clock.wall())
        return codec.time_ms(codec.field(state, "last_open_ms"), "last_open_ms", latest_s)

    def _restore_events(self, doc: dict[str, Any]) -> None:
        """The event log as the last checkpoint left it, so a restart (and a cockpit that
        attaches to it) does not open on an empty log; an unreadable line is passed over."""
        if not isinstance(doc.get("events"), list):
            raise KeyError("events")
        kept: list[Event] = []
        for record in doc["events"]:
            try:
                kept.append(decode(Event, record))
            except (CodecError, ValueError, TypeError, KeyError):
                continue
        self.events.extend(kept)  # newest first, as saved

    def _restore_flow(self, doc: dict[str, Any]) -> None:
        restored = self._per_symbol(
            WHALE_FLOW,
            doc,
            lambda symbol, state: (
                WhaleFlowEngine.from_state(symbol, self.config.flow, state),
                self._last_ms(state),
            ),
        )
        for symbol, (engine, last_ms) in restored.items():
            engines = self.engines(symbol)
            engines.flow = engine
            engines.last_flow = engine.state()
            engines.flow_open_ms = last_ms

    def _restore_hurst(self, doc: dict[str, Any]) -> None:
        restored = self._per_symbol(
            HURST_CACHE,
            doc,
            lambda _, state: (
                HurstTracker.from_state(state, **self.tracker_settings()),
                self._last_ms(state),
            ),
        )
        for symbol, (tracker, last_ms) in restored.items():
            engines = self.engines(symbol)
            engines.hurst = tracker
            engines.last_hurst = tracker.reading
            engines.hurst_open_ms = last_ms

    # -- snapshot --------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest immutable view (rebuilt only after something changed)."""
        if self._snapshot is None:
            self._snapshot = self.build_snapshot()
        else:
            # the source's health moves without bars (an outage is exactly when none come)
            health = self.source_health()
            if health != self._snapshot.source:
                self._snapshot = dataclasses.replace(self._snapshot, source=health)
        return self._snapshot

    def build_snapshot(self) -> Snapshot:
        snapshot = Snapshot(
            heartbeat=self.heartbeat,
            source=self.source_health(),
            symbols=tuple(self.symbol_view(e) for e in self.symbols.values()),
            events=tuple(self.events),
            warnings=tuple(f"{w.file}: {w.message}" for w in self.store.warnings)
            + ((self.store.last_write_error,) if self.store.last_write_error else ()),
            read_only=self.read_only,
            entries_halted_reason=None if self.trading is None else self.entries_halted_reason(),
            paused=self.paused,
            guards_enabled=MappingProxyType(dict(self.guards_enabled)),
            # paper (also a replay under a testnet config): no orders leave the process
            execution=ExecutionView() if self.execution is None else self.execution.view(),
        )
        if self.learning is not None:
            snapshot = dataclasses.replace(
                snapshot,
                symbols=tuple(self.learning.symbol_view(v) for v in snapshot.symbols),
                learning=self.learning.view(self.heartbeat.market_time_s),
            )
        return snapshot if self.trading is None else self.with_trading(snapshot, self.trading)

    def with_trading(self, snapshot: Snapshot, trading: TradingLoop) -> Snapshot:
        """The snapshot with positions, guard log and stats, golden hour and P&L."""
        now_s = self.clock.now()
        golden = trading.gates.golden_hour
        return dataclasses.replace(
            snapshot,
            positions=trading_view.position_views(trading, now_s),
            guard_log=tuple(trading.book.guard_log),
            guard_stats=trading_view.guard_views(trading.book),
            golden_hour_open=golden.is_open(now_s),
            golden_hour_next_change_s=golden.next_change_s(now_s),
            realised_pnl_usd=trading_view.realised_usd(trading.book),
            unrealised_pnl_usd=trading_view.unrealised_usd(trading.book),
            closed_trades=trading.book.closed_count,
            session=self.session.view(trading.book, now_s),
        )

    def source_health(self) -> SourceHealth:
        return self.source.health()

    def symbol_view(self, engines: SymbolEngines) -> SymbolView:
        flow = engines.last_flow or engines.flow.state()
        return SymbolView(
            symbol=engines.symbol,
            price=engines.last_bar.close if engines.last_bar else None,
            flow=flow,
            hurst=engines.hurst.reading,
            h_history=tuple(h for h in engines.hurst.history if math.isfinite(h)),
            closes=tuple(engines.closes),
        )
