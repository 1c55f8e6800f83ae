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
from collections.abc import Callable
from typing import Any

from .bar import Bar
from .batch_features import (
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
    core.started_market_s = clock.now()
    completed = False
    columns = data.columns
    rows = [0] * len(columns)
    rejected = data.rejected
    try:
        for g, code in enumerate(data.order):
            if code == REJECTED:
                bar = rejected[g]
            else:
                k = rows[code]
                rows[code] = k + 1
                bar = columns[code].bar(k)
            clock.advance_to(bar.close_s)
            if core.commands:
                core.apply_commands()
            core.step_at(bar, checkpoints=False)
            if core.stopping:
                break
        completed = True
    finally:
        gc.unfreeze()
        core.feature_feed = None
        if trading is not None:
            trading.new_strategy = trading.streaming_strategy
            strategies = trading.book.strategies
            for symbol, strategy in strategies.items():
                if isinstance(strategy, BatchOfi):
                    strategies[symbol] = strategy.streaming()
        if completed:
            feed.install_end_state(core)
        core.checkpoint()
