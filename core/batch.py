"""Batch replay: a whole file's engine features at once, fed to the same trading loop.

A replay at full speed on a fresh store knows every bar up front. Its bars come as
columns (`columns.BatchInput`: no `Bar` object per row), each symbol's engine features
are computed for all its bars in a few numpy passes (`batch_features.py`: whale CVD,
Hurst, Alpha-OFI's window sums; no look-ahead), and the core then applies the bars in the
streaming order with those features in place of its engines: the trading loop (strategy,
gates, broker, twins, exits) and the learning loop are the very same code. Live and sim
keep the streaming path.

At the end the engines are rebuilt from the final window (`from_state`), so the snapshot,
the checkpoint and a later resume see what a streaming run leaves.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .bar import Bar
from .batch_features import (
    IntArray,
    SymbolFeatures,
    compute_features,
    exact_window_sums,
    flow_features,
    hurst_features,
)
from .clock import SimClock
from .columns import REJECTED, BatchInput
from .config import StrategyConfig
from .engine import Core, SymbolEngines
from .flow import FlowState, WhaleFlowEngine
from .hurst import HurstReading, HurstTracker
from .sources.replay import no_gc
from .strategy import BPS_PER_UNIT, AlphaOfi, Signal, signal_side
from .trading import TradingLoop
from .types import BlockReason, Side

__all__ = [
    "BatchFeed",
    "BatchOfi",
    "batch_input_of",
    "exact_window_sums",
    "flow_features",
    "hurst_features",
    "run_batch",
]


class BatchOfi(AlphaOfi):
    """Alpha-OFI over a symbol's bars known ahead: the OFI and ATR window sums of every bar
    come computed (`batch_features.ofi_features`), so `update` only looks its bar up and
    builds the signal the streaming strategy builds. Its state (saved with the book) is the
    streaming one at the last bar taken; `streaming()` hands that over to a plain
    `AlphaOfi` at the end of the run."""

    def __init__(self, config: StrategyConfig, features: SymbolFeatures) -> None:
        super().__init__(features.columns.symbol, config)
        self._features = features
        self._open_ms = features.columns.open_ms_list
        self._fires = features.ofi.fires
        self._next = 0

    def update(
        self, bar: Bar, flow: FlowState, hurst: HurstReading, wanted: bool = True
    ) -> Signal | None:
        i = self._next
        if i >= len(self._open_ms) or self._open_ms[i] != bar.open_ms:
            raise RuntimeError(f"batch Alpha-OFI out of step on {bar.symbol} at {bar.open_ms}")
        self._next = i + 1
        if not (wanted and self._fires[i]):
            return None
        ofi_columns = self._features.ofi
        ofi = ofi_columns.ofi[i]
        side = signal_side(ofi, self.config.ofi_threshold)
        assert side is not None
        atr_bps = BPS_PER_UNIT * ofi_columns.range_sums[i] / self.config.atr_bars / bar.close
        return self.signal(bar, side, ofi, atr_bps, flow, hurst)

    def signal_at(self, k: int) -> Signal | None:
        """`update` of row k, wanted, from the columns alone (the rows before it made no
        signal: a batch run passed them): the same `Signal`, without the `Bar`, `FlowState`
        and `HurstReading` a signal bar's step would make. The strategy then stands after
        row k."""
        self._next = k + 1
        if not self._fires[k]:
            return None
        features = self._features
        columns = features.columns
        ofi_columns = features.ofi
        ofi = ofi_columns.ofi[k]
        side = signal_side(ofi, self.config.ofi_threshold)
        assert side is not None
        open_ms, close = columns.open_ms_list[k], columns.close_list[k]
        atr_bps = BPS_PER_UNIT * ofi_columns.range_sums[k] / self.config.atr_bars / close
        direction, retail_ofi, intensity, cross = features.flow.signal_fields(k)
        return self.signal_of(
            open_ms,
            (open_ms + columns.interval_ms) / 1000.0,  # `Bar.close_s`
            close,
            side,
            ofi,
            atr_bps,
            direction,
            retail_ofi,
            intensity,
            cross,
            features.regimes[k],
            features.hurst.h_at(k),
        )

    def skip_to(self, k: int) -> None:
        """Stand after row k-1 (the rows between made no signal: a batch run passed them)."""
        self._next = k

    def to_state(self) -> dict[str, Any]:
        i = self._next
        ofi = self._features.ofi
        first_flow = max(0, i - self.config.ofi_bars)
        return {
            "flow": [
                [d, v]
                for d, v in zip(ofi.deltas[first_flow:i], ofi.volumes[first_flow:i], strict=True)
            ],
            "ranges": ofi.true_ranges[max(0, i - self.config.atr_bars) : i],
            "previous_close": self._features.columns.close_list[i - 1] if i else None,
        }

    def streaming(self) -> AlphaOfi:
        """A plain `AlphaOfi` standing where this one stands."""
        return AlphaOfi.from_state(self.symbol, self.config, self.to_state())


# ------------------------------------------------------------------------- the run


class BatchFeed:
    """The core's engine stage during a batch run: the precomputed features, in order."""

    def __init__(self, features: list[SymbolFeatures], rejected: dict[int, Bar]) -> None:
        self.features = features
        self.by_symbol = {f.columns.symbol: f for f in features}
        # the bars the core refuses were never checked; every applied one was
        self._unchecked = {id(bar) for bar in rejected.values()}

    def problem(self, bar: Bar) -> str | None:
        return bar.problem() if id(bar) in self._unchecked else None

    def apply(self, core: Core, engines: SymbolEngines, bar: Bar) -> None:
        feats = self.by_symbol[engines.symbol]
        i = feats.next
        open_ms = feats.columns.open_ms_list
        if i >= len(open_ms) or open_ms[i] != bar.open_ms:
            raise RuntimeError(f"batch replay out of step on {bar.symbol} at {bar.open_ms}")
        feats.next = i + 1
        engines.last_flow = feats.flow_at(i)
        engines.flow_open_ms = bar.open_ms
        reading = feats.hurst_at(i)
        core.note_regime_change(engines, reading)
        engines.last_hurst = reading
        engines.hurst_open_ms = bar.open_ms

    def install_end_state(self, core: Core) -> None:
        """Rebuild each symbol's streaming engines at the last bar applied."""
        settings = core.tracker_settings()
        for feats in self.features:
            applied = feats.next
            if applied == 0:
                continue
            symbol = feats.columns.symbol
            flow_end, hurst_end = feats.flow_state, feats.hurst_state
            if applied != len(feats.columns):  # stopped early: the state at that bar
                head = feats.columns.head(applied)
                _, flow_end = flow_features(head, core.config)
                _, hurst_end = hurst_features(head, settings)
            engines = core.engines(symbol)
            if flow_end is not None:
                engines.flow = WhaleFlowEngine.from_state(symbol, core.config.flow, flow_end)
            if hurst_end is not None:
                engines.hurst = HurstTracker.from_state(hurst_end, **settings)


InputOf = Callable[[int | None], BatchInput]
#: A block known for a symbol's signals of one side: (closes before, side, reason, detail).
_Block = tuple[float, Side, BlockReason, str]


def batch_input_of(core: Core) -> InputOf | None:
    """The source's whole input at once, when the core can run in batch: a source that
    can hand it over (`batch_input` as columns, or `batch_bars` as a list), a clock it
    drives (a SimClock at full speed) and a store with no engine or trading state yet (a
    fresh run)."""
    source = core.source
    get_input = getattr(source, "batch_input", None)
    get_bars = getattr(source, "batch_bars", None)
    clock = core.clock
    if get_input is None and get_bars is None:
        return None
    if not isinstance(clock, SimClock) or clock.speed is not None:
        return None
    if getattr(source, "speed", None) is not None:
        return None
    if core.symbols or (core.trading is not None and core.trading.last_open_ms):
        return None
    if get_input is not None:
        result: InputOf = get_input
        return result
    checked = bool(getattr(source, "bars_checked", False))
    assert get_bars is not None
    bars_of: Callable[[int | None], list[Bar]] = get_bars
    return lambda resume_after_ms: BatchInput.from_bars(bars_of(resume_after_ms), checked)


def run_batch(core: Core, data: BatchInput | list[Bar]) -> None:
    """Apply `data` (bars in the source's order, or the same as columns) through `core`
    with batch-computed features: the same steps as `Core.run` with the engines replaced,
    then one checkpoint."""
    if isinstance(data, list):
        data = BatchInput.from_bars(data, bool(getattr(core.source, "bars_checked", False)))
    if not data.order:
        core.checkpoint()
        return
    clock = core.clock
    assert isinstance(clock, SimClock)
    with no_gc():
        feed = BatchFeed(
            compute_features(data, core.config, core.tracker_settings()), data.rejected
        )
        run = _Run(core, data, feed)
        # The bars and their features live through the run and hold no cycles to collect:
        # out of the collector's scans (each full scan would walk a month of them again).
        # Frozen before the collector is back on: else its first pass, due at once after
        # so many allocations, walks all of them one more time (0.2 s a month).
        gc.freeze()
    core.feature_feed = feed
    trading = core.trading
    if trading is not None:  # each symbol's strategy, made at its first bar, in batch
        strategy_config = core.config.strategy
        trading.new_strategy = lambda symbol: BatchOfi(strategy_config, feed.by_symbol[symbol])
    core.start_run()
    try:
        run.steps()
    finally:
        # also when an exception unwinds the run (ctrl+c; `replay` turns SIGTERM into
        # SystemExit): the state of the last step taken, engines included, is what the
        # checkpoint below saves and a resume (`--data-dir`) starts from
        gc.unfreeze()
        run.finish()
        core.feature_feed = None
        if trading is not None:
            trading.new_strategy = trading.streaming_strategy
            strategies = trading.book.strategies
            for symbol, strategy in strategies.items():
                if isinstance(strategy, BatchOfi):
                    strategies[symbol] = strategy.streaming()
        feed.install_end_state(core)
        core.checkpoint()


#: Steps between two looks at a stop or a command asked from outside the run (a signal
#: handler): the run then stops at most this many bars later, its state whole.
_POLL_STEPS = 4096
_INF = math.inf


class _Run:
    """The batch run's steps, passing over the bars that change nothing.

    Most bars of a replay change nothing but a symbol's last values (its mark, regime,
    engine readings, chart closes, the strategy's place): no signal on a flat symbol, no
    regime change, no learning cycle due, and every open position and twin of the symbol
    inside its quiet band (`TradingLoop.quiet_band`: the exits' own test). Such a bar is
    only counted; each symbol's last values are brought up to date (`catch_up`) before
    the core next applies a bar of that symbol, and every symbol's before anything that
    reads them all (a learning cycle saves the book; a rejected bar; the end). Every other
    bar goes through `Core.step_at` as in the streaming run: the same code decides.

    A pass-over is conservative: a bar is applied whenever it might do something (a
    signal fires, even if the gates will block it), so an extra apply only costs time.
    The equality of the two paths (tests/test_replay_batch.py, and over variant configs,
    data shapes, commands and stops tests/test_batch_equality_configs.py) checks that
    nothing is passed over that mattered.

    Read from outside mid-run: the step observers are called after every step taken
    (applied or entries-only), not after a passed-over one, with the heartbeat as the
    streaming run has it; a command they apply, or one queued during a step, is seen at
    the same bar as in the streaming run. A snapshot built mid-run is not the streaming
    one: other symbols' last values stand at their last step taken, the Hurst gauges
    (the trackers are rebuilt at the end) read WARMING, and the charts hold only the
    applied bars' closes (display only; all whole at the end)."""

    def __init__(self, core: Core, data: BatchInput, feed: BatchFeed) -> None:
        self.core = core
        assert isinstance(core.clock, SimClock)
        self.clock = core.clock
        self._trading = core.trading
        self.data = data
        self.feed = feed
        n = len(data.order)
        order = np.asarray(data.order, dtype=np.int64)
        symbols = len(data.columns)
        applied = order != REJECTED
        # each symbol's steps, in order: its rows' places in the run (rejected steps last)
        grouped = np.argsort(np.where(applied, order, symbols), kind="stable")
        bounds = np.concatenate(([0], np.cumsum(np.bincount(order[applied], minlength=symbols))))
        self.at: list[IntArray] = [grouped[bounds[c] : bounds[c + 1]] for c in range(symbols)]
        # per step, as numpy columns (the loop reads them a chunk at a time as lists: a
        # year of many symbols must not become a list of Python numbers per step)
        self.order_col = order
        self.row_col = np.zeros(n, dtype=np.int64)
        self.static_col = np.full(n, 2, dtype=np.int8)  # 2: apply whatever; 1: a signal fires
        self.low_col = np.zeros(n)
        self.high_col = np.zeros(n)
        self.open_col = np.zeros(n, dtype=np.int64)
        self.long_col = np.zeros(n, dtype=np.int8)  # a signal's side: 1 long, 0 short
        close_ms = np.zeros(n, dtype=np.int64)
        threshold = core.config.strategy.ofi_threshold
        for c, feats in enumerate(feed.features):
            at = self.at[c]
            self.row_col[at] = np.arange(at.size)
            changed = np.array(feats.regime_changed, dtype=np.bool_)
            changed[:1] = True  # a symbol's first bar makes its engines and strategy
            fires = np.array(feats.ofi.fires, dtype=np.int8)
            self.static_col[at] = np.where(changed, np.int8(2), fires)
            columns = feats.columns
            self.low_col[at] = columns.low
            self.high_col[at] = columns.high
            self.open_col[at] = columns.open_ms
            self.long_col[at] = feats.ofi.ofi.array > threshold  # `signal_side`, if it fires
            close_ms[at] = columns.open_ms + columns.interval_ms
        for g, bar in data.rejected.items():
            close_ms[g] = bar.open_ms + bar.interval_ms
        # the clock at step g: the streaming source moves it to every bar's close (a passed-
        # over one's too, and a rejected one's), never back: the latest close so far. A
        # source whose symbols are not merged by time (one lagging minutes behind) would
        # else meet a clock a passed-over bar of another symbol should have moved, and a
        # signal's age (`max_signal_age_s`) would differ.
        # (a clock started later than the data stands where it stands: it never goes back)
        self.clock_col = np.maximum(np.maximum.accumulate(close_ms) / 1000.0, self.clock.now())
        self.close_ms_col = close_ms
        # for the heartbeat at any step: applied steps before it, the last one's index
        self.applied_before = np.concatenate(([0], np.cumsum(applied)))
        self.last_applied = np.maximum.accumulate(np.where(applied, np.arange(n), -1))
        self.max_open = np.maximum.accumulate(np.where(applied, self.open_col, -1))
        self.synced = [0] * symbols  # rows whose last values are in place
        self.flat = [True] * symbols
        self.lo = [-_INF] * symbols
        self.hi = [_INF] * symbols
        self.until_ms = [_INF] * symbols  # a bar opening at or after it: a force-hold may end
        self.due_ms = -_INF  # a bar opening at or after it: a learning cycle may run
        self.limit = [-_INF] * symbols  # the earlier of the two
        # per symbol and side (short, long): a signal's block known without its `Signal`
        # (`TradingLoop.quiet_block`) as (closes before, side, reason, detail), until the
        # symbol is looked at again (`_look`: whatever may change it is a step applied)
        self.blocks: list[list[_Block | None]] = [[None, None] for _ in range(symbols)]
        self.symbols = [feats.columns.symbol for feats in feed.features]
        self.every = False  # apply every bar (the store refuses writes)
        self.done = 0  # steps taken

    def rows_before(self, code: int, g: int) -> int:
        """Rows of symbol `code` in steps 0..g-1."""
        return int(np.searchsorted(self.at[code], g))

    @property
    def trading(self) -> TradingLoop:
        """The trading loop (an entries-only step is made only when there is one)."""
        assert self._trading is not None
        return self._trading

    # -- the steps -----------------------------------------------------------------

    def steps(self) -> None:
        core = self.core
        flat, lo, hi, limit = self.flat, self.lo, self.hi, self.limit
        blocks, symbols = self.blocks, self.symbols
        observers = core.step_observers  # one added mid-run sees every step from then on
        trading = self._trading
        stale = None if trading is None else trading.stale
        note_block = None if trading is None else trading.note_block
        n = self.order_col.size
        g = 0
        every = self.every
        while g < n:
            start, stop = g, min(n, g + _POLL_STEPS)
            order = self.order_col[start:stop].tolist()
            static = self.static_col[start:stop].tolist()
            low = self.low_col[start:stop].tolist()
            high = self.high_col[start:stop].tolist()
            opens = self.open_col[start:stop].tolist()
            rows = self.row_col[start:stop].tolist()
            clock = self.clock_col[start:stop].tolist()
            longs = self.long_col[start:stop].tolist()
            closes = self.close_ms_col[start:stop].tolist()
            for i in range(stop - start):
                c = order[i]
                e = static[i]
                if (
                    e < 2
                    and low[i] > lo[c]
                    and high[i] < hi[c]
                    and opens[i] < limit[c]
                    and not every
                ):
                    if not (e and flat[c]):
                        continue  # nothing happens at this bar: passed over
                    known = blocks[c][longs[i]]
                    if known is not None and not observers:
                        time_s = closes[i] / 1000.0  # `Bar.close_s`
                        if time_s < known[0]:  # its block known: counted, and passed over
                            assert stale is not None and note_block is not None
                            if not stale(time_s, clock[i]):
                                note_block(time_s, symbols[c], known[1], known[2], known[3])
                            continue
                    self.entries_only(start + i, c, rows[i], clock[i])  # only its signal
                else:
                    self.apply(start + i, c, rows[i], opens[i], clock[i])
                if core.stopping:
                    self.done = start + i + 1
                    return
                every = self.every
            g = self.done = stop
            if core.progress_observers:  # a progress bar: the heartbeat as after step g-1
                self._beat_before(g)
                for progress in core.progress_observers:
                    progress()
            # a command waiting at the end stays queued, as the streaming loop leaves it
            # (it applies commands only before a bar)
            if core.commands and g < n:
                self.catch_up_all(g)
                core.apply_commands()
                self.look_again()
                every = self.every
            if core.stopping:
                return

    def apply(self, g: int, code: int, k: int, open_ms: int, clock_s: float) -> None:
        """Step g (symbol `code`'s row k) through the core, its symbol's last values (or
        all) brought up first."""
        core = self.core
        whole = code == REJECTED or open_ms >= self.due_ms or self.every
        if whole:
            self.catch_up_all(g)
        else:
            self.catch_up(code, k)
            if core.step_observers or core.progress_observers:  # they read the heartbeat
                self._beat_before(g)
        rejected = code == REJECTED
        bar = self.data.rejected[g] if rejected else self.feed.features[code].columns.bar(k)
        self.clock.advance_to(clock_s)
        if core.commands:
            core.apply_commands()
            whole = True
        commands_applied = core.commands_applied
        self.done = g + 1  # an exception from here on (a step observer's) ends the run here
        core.step_at(bar, checkpoints=False)
        if not rejected:
            self.synced[code] = k + 1
        # a command applied in the step (by a step observer: at once, as the streaming loop
        # applies it) may concern any symbol (a close, a flatten): all looked at again
        if whole or core.commands_applied != commands_applied:
            self.look_again()
        else:
            self._look(code)
            trading = core.trading
            self.every = (  # `_every_step`, inline: once a step
                core.store.last_write_error is not None
                or (trading is not None and trading.backlogged)
                or bool(core.commands)
            )

    def entries_only(self, g: int, code: int, k: int, clock_s: float) -> None:
        """Step g, a bar whose only business is its signal (a flat symbol, nothing for the
        exits, no regime change, no cycle due): the strategy and the gates alone
        (`Core.step_entries_only`, which leaves the book's last values at this bar); the
        engines' are caught up as for a passed-over bar, when next needed."""
        core = self.core
        if core.commands:
            self.apply(g, code, k, int(self.open_col[g]), clock_s)  # a command, then the step
            return
        feats = self.feed.features[code]
        columns = feats.columns
        symbol = columns.symbol
        trading = self.trading
        book = trading.book
        strategy = book.strategies[symbol]
        assert isinstance(strategy, BatchOfi)
        self.clock.advance_to(clock_s)
        twins = len(book.twins)
        commands_applied = core.commands_applied
        self.done = g + 1
        open_ms, close = columns.open_ms_list[k], columns.close_list[k]
        close_s = (open_ms + columns.interval_ms) / 1000.0  # `Bar.close_s`
        regime = feats.regimes[k]
        side = signal_side(feats.ofi.ofi[k], strategy.config.ofi_threshold)
        assert side is not None  # a signal fires at every entries-only step
        controls = core.entry_controls()
        stale = trading.stale(close_s, clock_s)
        block = None
        if not stale:
            block = trading.quiet_block(symbol, side, close_s, regime, close, controls)
        if stale or block is not None:  # decided without its `Signal`
            strategy.skip_to(k + 1)
            if block is not None:
                trading.note_block(close_s, symbol, side, *block)
                if not core.step_observers:  # the symbol's next ones too, until looked at
                    until_s = trading.gates.early_block_until(close_s, controls.paused)
                    self.blocks[code][side is Side.LONG] = (until_s, side, *block)
            trading.note_marks(symbol, open_ms, regime, close)
        else:
            signal = strategy.signal_at(k)  # the strategy's signal, from the columns alone
            core.step_entries_only(symbol, signal, open_ms, regime, close, close_s)
        # the step observers (a progress bar, a stop) are called as after any step, with
        # the heartbeat as after this one
        if core.step_observers:
            self._beat_before(g + 1)
            core.observe_step(columns.bar(k))
        if core.commands_applied != commands_applied:  # a step observer's: any symbol
            self.look_again()
            return
        # the gates can only add: an entry order, or a blocked twin to follow
        if len(book.twins) != twins or symbol in book.pending:
            self._look(code)
        self.every = (  # `_every_step`, inline: once a step
            core.store.last_write_error is not None or trading.backlogged or bool(core.commands)
        )

    # -- passing over, catching up -------------------------------------------------

    def catch_up(self, code: int, k: int, whole: bool = False) -> None:
        """Symbol `code`'s last values as after its row k-1 (the rows since the last catch-
        up or applied bar passed over). Not `whole`: only those the step applying row k
        reads before it sets them; `whole` also the last bar and flow reading."""
        if k == 0:
            return
        feats = self.feed.features[code]
        columns = feats.columns
        symbol = columns.symbol
        engines = self.core.symbols[symbol]
        j = k - 1
        if whole:
            engines.last_flow = feats.flow_at(j)
            engines.last_bar = columns.bar(j)
        if self.synced[code] >= k:
            return
        open_ms = columns.open_ms_list[j]
        engines.flow_open_ms = open_ms
        engines.last_hurst = feats.hurst_at(j)  # its regime: the step's previous one
        engines.hurst_open_ms = open_ms
        feats.next = k
        trading = self.core.trading
        if trading is not None:
            book = trading.book
            strategy = book.strategies.get(symbol)
            if isinstance(strategy, BatchOfi):
                strategy.skip_to(k)
            trading.note_marks(symbol, open_ms, feats.regimes[j], columns.close_list[j])
        self.synced[code] = k

    def catch_up_all(self, g: int) -> None:
        """Every symbol's last values as after step g-1, and the core's heartbeat."""
        for code in range(len(self.at)):
            self.catch_up(code, self.rows_before(code, g), whole=True)
        self._beat_before(g)

    def finish(self) -> None:
        """At the end (or a stop): the clock, every symbol's last values, and its chart
        closes (display only, read by the snapshot) rebuilt from the columns as the applied
        bars left them."""
        g = self.done
        if g:  # the clock where the streaming source left it: the last bar read
            self.clock.advance_to(float(self.clock_col[g - 1]))
        self.catch_up_all(g)
        for code in range(len(self.at)):
            k = self.rows_before(code, g)
            if k == 0:
                continue
            columns = self.feed.features[code].columns
            closes = self.core.symbols[columns.symbol].closes
            first = max(0, k - (closes.maxlen or k))
            interval_s = columns.interval_ms / 1000.0
            closes.clear()
            closes.extend(
                (o / 1000.0 + interval_s, c)
                for o, c in zip(
                    columns.open_ms_list[first:k], columns.close_list[first:k], strict=True
                )
            )

    def _beat_before(self, g: int) -> None:
        """The core's bar count, last bar and heartbeat as after step g-1."""
        core = self.core
        if g == 0:
            return
        last = int(self.last_applied[g - 1])
        if last < 0:
            return
        code, k = int(self.order_col[last]), int(self.row_col[last])
        columns = self.feed.features[code].columns
        close_s = (columns.open_ms_list[k] + columns.interval_ms) / 1000.0
        core.restore_beat(close_s, int(self.applied_before[g]), int(self.max_open[g - 1]))

    def _every_step(self) -> bool:
        """Must the next step be applied whatever it is? While the store refuses writes or
        log records wait (every bar retries them), and when a command waits (an event
        observer's, queued during the step): the streaming loop applies it before the next
        bar, so the next step applies it first."""
        core = self.core
        trading = core.trading
        return (
            not core.store.healthy
            or (trading is not None and trading.backlogged)
            or bool(core.commands)
        )

    def look_again(self) -> None:
        """After a step that may have changed anything: every symbol's state looked at."""
        core = self.core
        self.every = self._every_step()
        learning = core.learning
        last_slot_s = None if learning is None else learning.schedule.last_slot_s
        if learning is None or learning.read_only:
            self.due_ms = _INF
        elif last_slot_s is None:
            self.due_ms = -_INF
        else:
            # the next slot, a millisecond early (bars open on whole minutes): the cycle's
            # own test (`LearningLoop.cycle_due`) decides at the bar applied whole there
            self.due_ms = (last_slot_s + learning.schedule.interval_s) * 1000.0 - 1.0
        for code in range(len(self.synced)):
            self._look(code)

    def _look(self, code: int) -> None:
        trading = self.core.trading
        if trading is None:
            self.flat[code] = False  # no signals are traded
            self.lo[code], self.hi[code], self.until_ms[code] = -_INF, _INF, _INF
        else:
            symbol = self.feed.features[code].columns.symbol
            book = trading.book
            self.flat[code] = symbol not in book.live and symbol not in book.pending
            lo, hi, until_s = trading.quiet_band(symbol)
            self.lo[code], self.hi[code] = lo, hi
            self.until_ms[code] = until_s * 1000.0 - 1000.0  # a second early: the rule decides
        self.limit[code] = min(self.until_ms[code], self.due_ms)
        self.blocks[code] = [None, None]
