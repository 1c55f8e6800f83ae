"""The batch replay (`core/batch.py`) trades exactly as the streaming path.

Both paths run the same bars on fresh stores; everything a user or the learning loop sees
must be equal, floats compared exactly: every closed trade (live, shadow and blocked twins),
the guard counts and block records, the learning history and symbol states, the events, the
final engine state and every file the store holds at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from bigalpha_tui.core import batch, batch_features
from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.columns import BarColumns, BatchInput
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.flow import ExactSum, WhaleFlowEngine
from bigalpha_tui.core.hurst import HurstReading, HurstTracker
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.replay import ReplaySource
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import GUARD_BLOCKS, JSON_FILES, JSONL_FILES, RECENT_EVENTS, Store
from bigalpha_tui.core.trades import ClosedTrade
from bigalpha_tui.core.types import Regime

SHARED_MONTH = "binance_um_klines_1m"
DAY_MS = 86_400_000
DAYS_PER_FILE = 3  # the default suite; `--long` runs the whole month


class ListSource:
    """Bars in memory, as a source yields them (the clock follows each bar's close); it
    hands the list over at once for the batch path."""

    name = "list"
    speed = None

    def __init__(self, bars: list[Bar], clock: SimClock) -> None:
        self._bars = bars
        self._clock = clock

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        for bar in self._bars:
            await self._clock.sleep_until(bar.close_s)
            yield bar

    def batch_bars(self, resume_after_ms: int | None = None) -> list[Bar]:
        return list(self._bars)

    def health(self) -> SourceHealth:
        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None


@dataclass
class Outcome:
    trades: list[dict[str, Any]]
    events: list[tuple[Any, ...]]
    snapshot: dict[str, Any]
    files: dict[str, Any]
    engines: dict[str, Any]


def _run(
    make_source: Any,
    data_dir: Path,
    *,
    streaming: bool,
    config: Config,
    observer: Callable[[Core], None] | None = None,
    record_blocks: bool = True,
    setup: Callable[[Core], None] | None = None,
    interrupted: bool = False,
    durable: bool = False,
) -> Outcome:
    clock = SimClock(0.0)
    source = make_source(clock)
    store = Store(data_dir, durable=durable)
    # the batch run also checks the buffered logs (a throwaway replay's); a durable store
    # (`replay --data-dir`) writes at once on both paths
    store.buffer_logs = not (streaming or durable)
    core = Core(config, source, clock, store)
    if not streaming and core.learning is not None:
        core.learning.keep_checked_records()  # the batch run also checks the cache
    trades: list[ClosedTrade] = []
    assert core.trading is not None
    core.trading.trade_observers.append(trades.append)
    core.trading.record_blocks = record_blocks
    if observer is not None:
        core.step_observers.append(lambda: observer(core))
    if setup is not None:  # switches, observers: the same on both paths
        setup(core)
    with pytest.raises(KeyboardInterrupt) if interrupted else contextlib.nullcontext():
        if streaming:
            anyio.run(core.run)
        else:
            input_of = batch.batch_input_of(core)
            assert input_of is not None, "a fresh replay at full speed runs in batch"
            batch.run_batch(core, input_of(core.resume_after_ms()))
    snap = core.snapshot()
    store = core.store
    return Outcome(
        trades=[t.to_record() for t in trades],
        events=[(e.time_s, e.kind, e.symbol, e.message, dict(e.data)) for e in core.events],
        snapshot={
            "bars": snap.heartbeat.bars_processed,
            "market_time_s": snap.heartbeat.market_time_s,
            "guard_stats": snap.guard_stats,
            "guard_log": snap.guard_log,
            "positions": snap.positions,
            "realised": snap.realised_pnl_usd,
            "unrealised": snap.unrealised_pnl_usd,
            "closed": snap.closed_trades,
            "symbols": snap.symbols,
            "learning": snap.learning,
            "rejected": dict(core.rejected_bars),
            # read at the clock's now: the clock must end where the streaming source left it
            "clock_s": core.clock.now(),
            "golden_hour": (snap.golden_hour_open, snap.golden_hour_next_change_s),
            "session": snap.session,
        },
        files={
            **{name: store.read_json(name) for name in JSON_FILES},
            **{name: list(store.iter_jsonl(name, with_rotated=True)) for name in JSONL_FILES},
        },
        engines={
            s: (e.flow.to_state(), e.hurst.to_state(), e.flow_open_ms, e.hurst_open_ms)
            for s, e in core.symbols.items()
        },
    )


def assert_same_run(
    make_source: Any,
    tmp_path: Path,
    config: Config | None = None,
    *,
    setup: Callable[[Core], None] | None = None,
    record_blocks: bool = True,
    durable: bool = False,
) -> Outcome:
    config = config or Config()
    kwargs: dict[str, Any] = {
        "config": config,
        "setup": setup,
        "record_blocks": record_blocks,
        "durable": durable,
    }
    streamed = _run(make_source, tmp_path / "streaming", streaming=True, **kwargs)
    batched = _run(make_source, tmp_path / "batch", streaming=False, **kwargs)
    assert batched.trades == streamed.trades  # every ledger, every float exactly
    assert batched.snapshot == streamed.snapshot
    assert batched.files == streamed.files  # block records, outcomes, learning history, book
    assert batched.events == streamed.events
    assert batched.engines == streamed.engines
    return streamed


def _replay(paths: list[Path], days: float | None, *, allow_no_flow: bool = False) -> Any:
    def make(clock: SimClock) -> ReplaySource:
        source = ReplaySource(paths, clock, allow_no_flow=allow_no_flow)
        if days is not None:
            source.end_ms = source.first_open_ms + int(days * DAY_MS)
        return source

    return make


# -- real data -----------------------------------------------------------------------------


def shared_files(shared: Path) -> list[Path]:
    files = sorted((shared / SHARED_MONTH).glob("*-1m-2026-02.csv.gz"))
    if not files:
        pytest.skip(f"no 2026-02 kline files in {shared / SHARED_MONTH}")
    return files


@pytest.mark.slow
def test_every_shared_2026_02_file_trades_the_same_in_batch(
    shared_data: Path, tmp_path: Path, long_run: bool
) -> None:
    days = None if long_run else DAYS_PER_FILE
    for path in shared_files(shared_data):
        outcome = assert_same_run(_replay([path], days), tmp_path / path.name)
        assert outcome.trades, f"{path.name}: the comparison must cover trades"
        assert any(s.blocked for s in outcome.snapshot["guard_stats"]), path.name


@pytest.mark.slow
def test_every_other_shared_kline_file_trades_the_same_in_batch(
    shared_data: Path, tmp_path: Path, long_run: bool
) -> None:
    """The other months (2023 to 2026-07), the secondary klines and the OHLCV-only fallback
    files (no taker flow: replayed with flow features off); two months' symbols merged.
    One day each by default (the suite's time), whole files with --long."""
    days = None if long_run else 1.0
    months = sorted(
        p for p in (shared_data / SHARED_MONTH).glob("*-1m-*.csv.gz") if "2026-02" not in p.name
    )
    if not months:
        pytest.skip(f"no kline files in {shared_data / SHARED_MONTH}")
    for path in months:
        outcome = assert_same_run(_replay([path], days), tmp_path / path.name)
        assert outcome.trades, f"{path.name}: the comparison must cover trades"
    pair = [p for p in months if "-2023-02" in p.name]
    if len(pair) > 1:
        assert_same_run(_replay(pair, days), tmp_path / "2023-02-together")
    flowless = [
        *sorted((shared_data / "binance_klines_1m_secondary").glob("*.csv.gz")),
        *sorted((shared_data / "ohlcv_1m_fallback").glob("*.csv.gz")),
    ]
    for path in flowless:
        assert_same_run(_replay([path], days, allow_no_flow=True), tmp_path / path.name)


def test_shared_files_together_trade_the_same_in_batch(shared_data: Path, tmp_path: Path) -> None:
    """Several symbols merged minute by minute: max positions and the shared book count."""
    files = shared_files(shared_data)
    outcome = assert_same_run(_replay(files, 1.5), tmp_path)
    assert len({t["symbol"] for t in outcome.trades}) > 1


def test_in_repo_excerpts_trade_the_same_in_batch(test_data: Path, tmp_path: Path) -> None:
    files = [
        test_data / "AVAXUSDT-1m-2026-02-head.csv.gz",
        test_data / "LINKUSDT-1m-2026-02-noheader.csv",
        test_data / "AVAXUSDT-1m-2023-09-zero-volume.csv.gz",
    ]
    for path in files:
        assert_same_run(_replay([path], None), tmp_path / path.name)
    # bars without taker flow (an OHLCV-only file, and one with its taker columns empty)
    for name in ("SOLUSDT_1m_2025-01-01-head.csv.gz", "battle_hymn_BTCUSDT_1m-seam.csv.gz"):
        path = test_data / name
        assert_same_run(_replay([path], None, allow_no_flow=True), tmp_path / name)


def test_a_simulated_week_trades_the_same_in_batch(tmp_path: Path) -> None:
    """Simulated markets with whale bursts, regime switches and learning cycles."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    minutes = simulate_minutes(symbols, 11, DEFAULT_START_MS, SimParams())
    bars = [bar for minute in itertools.islice(minutes, 2 * 1440) for bar in minute]
    outcome = assert_same_run(lambda clock: ListSource(bars, clock), tmp_path)
    assert outcome.trades
    assert outcome.snapshot["learning"].cycles > 0


def test_a_batch_run_stopped_part_way_leaves_what_a_streaming_run_stopped_there_leaves(
    tmp_path: Path,
) -> None:
    """The batch run passes over the bars that change nothing and brings each symbol's
    last values up to date later: stopped part-way (a SIGTERM, or a step observer's stop),
    every symbol's state, the book, the engines and the files stand where a streaming run
    stopped at the same bar leaves them, and a progress observer counts every bar."""
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    minutes = simulate_minutes(symbols, 11, DEFAULT_START_MS, SimParams())
    bars = [bar for minute in itertools.islice(minutes, 1440) for bar in minute]
    counts: list[int] = []

    def stop_batch(core: Core) -> None:
        counts.append(core.heartbeat.bars_processed)
        if counts[-1] >= 2500 and not core.stopping:
            core.stop()

    config = Config()
    batched = _run(
        lambda clock: ListSource(bars, clock),
        tmp_path / "batch",
        streaming=False,
        config=config,
        observer=stop_batch,
    )
    stopped_at = batched.snapshot["bars"]
    assert 2500 <= stopped_at < len(bars)
    assert counts == sorted(set(counts))  # counted up, never twice the same
    assert len(counts) < len(bars) // 2  # most bars were passed over

    def stop_streaming(core: Core) -> None:
        if core.heartbeat.bars_processed >= stopped_at:
            core.stop()

    streamed = _run(
        lambda clock: ListSource(bars, clock),
        tmp_path / "streaming",
        streaming=True,
        config=config,
        observer=stop_streaming,
    )
    assert batched.trades == streamed.trades
    assert batched.snapshot == streamed.snapshot
    assert batched.files == streamed.files
    assert batched.events == streamed.events
    assert batched.engines == streamed.engines


def test_a_run_that_records_no_blocks_trades_counts_and_learns_the_same(
    test_data: Path, tmp_path: Path
) -> None:
    """A throwaway replay writes no block record or event (`record_blocks` off): the
    trades, the guard counts and log, the blocked twins' outcomes, the learning and every
    other file and event are those of a run that records them all, on both paths."""
    make = _replay([test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"], None)
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    minutes = simulate_minutes(symbols, 11, DEFAULT_START_MS, SimParams())
    bars = [bar for minute in itertools.islice(minutes, 2 * 1440) for bar in minute]
    week = lambda clock: ListSource(bars, clock)  # noqa: E731
    config = Config()
    for name, source in (("excerpt", make), ("simulated", week)):
        full = _run(source, tmp_path / name / "full", streaming=True, config=config)
        lean = {
            streaming: _run(
                source,
                tmp_path / name / f"lean-{streaming}",
                streaming=streaming,
                config=config,
                record_blocks=False,
            )
            for streaming in (True, False)
        }
        blocked = sum(s.blocked for s in full.snapshot["guard_stats"])
        assert blocked > 0 and len(full.files[GUARD_BLOCKS]) == blocked
        for run in lean.values():
            assert run.trades == full.trades
            assert run.snapshot == full.snapshot
            kept = {**run.files, RECENT_EVENTS: None}
            assert kept == full.files | {GUARD_BLOCKS: [], RECENT_EVENTS: None}
            # the event log keeps its last 200 lines: the same lines, less the blocks
            full_lines = [e for e in full.events if e[1] != "block"]
            assert run.events[: len(full_lines)] == full_lines
            assert not [e for e in run.events if e[1] == "block"]
            assert run.engines == full.engines
        assert lean[True] == lean[False]


def test_bad_bars_are_rejected_alike(tmp_path: Path) -> None:
    """Out-of-order, duplicate and insane bars are rejected by both paths the same way."""
    minutes = simulate_minutes(("BTCUSDT",), 3, DEFAULT_START_MS, SimParams())
    bars = [bar for minute in itertools.islice(minutes, 600) for bar in minute]
    bad = Bar("BTCUSDT", bars[300].open_ms + 30 * MINUTE_MS, 1.0, 0.5, 1.0, 1.0, 1.0, 0.5)
    mixed = [*bars[:200], bars[150], bars[199], *bars[200:300], bad, *bars[300:]]
    outcome = assert_same_run(lambda clock: ListSource(mixed, clock), tmp_path)
    assert outcome.snapshot["rejected"]


# -- the features alone --------------------------------------------------------------------


def _exact(values: list[float], window: int) -> list[float]:
    total = ExactSum()
    units = [ExactSum.units(v) for v in values]
    out = []
    for i, u in enumerate(units):
        total.add(u)
        if i >= window:
            total.remove(units[i - window])
        out.append(total.value)
    return out


@pytest.mark.parametrize(
    "values",
    [
        [0.1, 0.2, 0.3, -0.6, 1e-9, 3.0, -3.0, 0.7] * 40,  # cancellations, decimals
        [1e15, 1.0, -1e15, 1e-3, 2.5, -1.0] * 30,  # wide: past two limbs, exact fallback
        [float(i % 7) for i in range(500)],  # integers (AVAX volumes)
        [0.0] * 100,
    ],
)
def test_window_sums_equal_exact_sum_bit_for_bit(values: list[float]) -> None:
    got = batch.exact_window_sums(np.array(values), 60).tolist()
    assert got == _exact(values, 60)


def test_flow_features_equal_the_engine_bar_by_bar(test_data: Path) -> None:
    """Simulated whales, zero-volume minutes and bars without taker flow: every published
    state equal to the engine's, every float bit for bit (signed zeros too)."""
    from bigalpha_tui.core.sources.replay import parse_kline_file

    minutes = simulate_minutes(("SOLUSDT",), 5, DEFAULT_START_MS, SimParams())
    sets = [
        [minute[0] for minute in itertools.islice(minutes, 1500)],
        list(parse_kline_file(test_data / "AVAXUSDT-1m-2023-09-zero-volume.csv.gz")),
        list(
            parse_kline_file(test_data / "battle_hymn_BTCUSDT_1m-seam.csv.gz", allow_no_flow=True)
        ),
    ]
    config = Config()
    for bars in sets:
        symbol = bars[0].symbol
        engine = WhaleFlowEngine(symbol, config.flow)
        streamed = [engine.update(bar) for bar in bars]
        columns, end = batch.flow_features(BarColumns.from_bars(symbol, bars), config)
        states = list(columns)  # each state made when read
        assert states == streamed
        assert repr(states) == repr(streamed)
        half = columns[len(bars) // 2]
        assert columns[len(bars) // 2] is half  # asked again at once: kept, not made again
        assert end is not None
        restored = WhaleFlowEngine.from_state(symbol, config.flow, end)
        assert restored.to_state() == engine.to_state()
    whale = batch.flow_features(BarColumns.from_bars("X", sets[0]), config)[0]
    assert any(s.last_bar_was_whale for s in whale)


def test_hurst_features_equal_the_tracker_even_at_a_threshold() -> None:
    """A threshold set exactly at an H the tracker computed: the chunked estimate rounds
    differently (~1e-14), and must still classify as the tracker does."""
    rng = np.random.default_rng(7)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, 900)))
    bars = [
        Bar("X", DEFAULT_START_MS + i * MINUTE_MS, c, c, c, c, 1.0, 0.5)
        for i, c in enumerate(closes.tolist())
    ]
    probe = HurstTracker(confirm_bars=1)
    hs = [probe.update(b.close).h for b in bars]
    # pick an H that the chunked batch gives differently from the tracker
    windows = np.lib.stride_tricks.sliding_window_view(np.diff(np.log(closes)), 100)
    chunked = batch_features._batched_h(windows, "whittle")
    streamed_h = hs[100:]
    # one the chunked estimate puts just above: it would read TRUE TREND without the recheck
    above = [
        h for h, c in zip(streamed_h, chunked.tolist(), strict=True) if h is not None and c > h
    ]
    knife = next((h for h in above if 0.3 < h < 0.7), None)
    if knife is None:
        pytest.skip("this numpy computes the chunked H bit-identically; nothing to recheck")
    settings = {
        "window": 100,
        "trend_above": knife,
        "noise_below": min(knife, 0.45),
        "confirm_bars": 1,
        "method": "whittle",
        "history_len": 120,
    }
    tracker = HurstTracker(**settings)
    streamed = [tracker.update(b.close) for b in bars]
    readings, end = batch.hurst_features(BarColumns.from_bars("X", bars), settings)
    # what decides: the labels, the run, the trend sign; H itself to rounding, and exactly
    # where an event shows it (a regime change)
    decided = [(r.raw_regime, r.regime, r.trend_sign, r.returns_seen) for r in readings]
    assert decided == [(r.raw_regime, r.regime, r.trend_sign, r.returns_seen) for r in streamed]
    assert any(r.raw_regime.value == "RANDOM" and r.h == knife for r in streamed)
    for i, (got, want) in enumerate(zip(readings, streamed, strict=True)):
        if want.h is None:
            assert got.h is None
            continue
        assert got.h is not None and abs(got.h - want.h) < 1e-12
        if i and want.regime is not streamed[i - 1].regime:
            assert got.h == want.h
    assert end is not None
    assert HurstTracker.from_state(end, **settings).to_state() == tracker.to_state()
    assert not math.isnan(knife)


def test_skipping_quiet_bars_changes_no_exit(
    tmp_path: Path, test_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exit rules skipped on bars that reach no level (`quiet_exits`) give exactly the
    trades of the rules run on every bar."""
    from bigalpha_tui.core.trading import TradingLoop

    minutes = simulate_minutes(("BTCUSDT", "SOLUSDT"), 13, DEFAULT_START_MS, SimParams())
    bars = [bar for minute in itertools.islice(minutes, 1440) for bar in minute]
    sources = [
        lambda clock: ListSource(bars, clock),
        _replay([test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"], None),
    ]
    for i, make in enumerate(sources):
        quick = _run(make, tmp_path / f"quick{i}", streaming=True, config=Config())
        monkeypatch.setattr(TradingLoop, "quiet_exits", False)
        full = _run(make, tmp_path / f"full{i}", streaming=True, config=Config())
        monkeypatch.setattr(TradingLoop, "quiet_exits", True)
        assert quick.trades == full.trades
        assert quick.trades or i, "the simulated day must close trades"
        assert quick.files == full.files
        assert quick.events == full.events


def test_buffered_logs_write_the_same_files_and_rotations(tmp_path: Path) -> None:
    """A throwaway store's log lines wait in memory, then land (rotations included) exactly
    where one append at a time puts them; a read sees every line appended before it."""
    stores = {}
    for mode in ("direct", "buffered"):
        store = Store(tmp_path / mode, durable=False, jsonl_rotate_bytes=300)
        store.buffer_logs = mode == "buffered"
        for i in range(40):
            store.append_jsonl("guard_blocks.jsonl", {"id": f"G-{i}", "detail": "x" * (i % 7)})
            if i == 17:
                assert len(list(store.iter_jsonl("guard_blocks.jsonl", with_rotated=True))) == 18
        store.flush_logs()
        stores[mode] = store
    direct, buffered = (tmp_path / "direct", tmp_path / "buffered")
    names = sorted(p.name for p in direct.iterdir() if p.name.startswith("guard_blocks"))
    assert len(names) > 2  # the log rotated
    assert names == sorted(p.name for p in buffered.iterdir() if p.name.startswith("guard_"))
    for name in names:
        assert (direct / name).read_bytes() == (buffered / name).read_bytes(), name


def test_replay_command_runs_batch_by_default_and_streaming_on_request(
    tmp_path: Path, test_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bigalpha_tui.replay_cmd import parser, run_loop

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    batches: list[int] = []
    real = batch.run_batch

    def counted(core: Core, bars: list[Bar]) -> None:
        batches.append(len(bars))
        real(core, bars)

    monkeypatch.setattr(batch, "run_batch", counted)
    path = str(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz")
    fast = run_loop(parser().parse_args([path]), tmp_path / "fast", durable=False)
    assert batches == [fast.snapshot.heartbeat.bars_processed] == [299]
    slow = run_loop(parser().parse_args([path, "--streaming"]), tmp_path / "slow", durable=False)
    assert batches == [299]  # the streaming run did not batch
    assert slow.report()["guard_report"] == fast.report()["guard_report"]


def test_kept_outcome_records_read_as_a_fresh_read_does(tmp_path: Path) -> None:
    """The learning loop's kept records (replay) never serve a stale or broken line: an
    edited line, a new line and a line gone bad read exactly as without the cache."""
    from learning_helpers import shadow

    from bigalpha_tui.core.learning_store import TradeCache, read_ledgers
    from bigalpha_tui.core.store import SHADOW_OUTCOMES

    store = Store(tmp_path, durable=False)
    for t in shadow([1.0, -2.0, 3.0]):
        store.append_jsonl(SHADOW_OUTCOMES, t.to_record())
    cache: TradeCache = {}
    assert read_ledgers(store, cache) == read_ledgers(store)
    path = store.path(SHADOW_OUTCOMES)
    lines = path.read_bytes().splitlines(keepends=True)
    edited = lines[1].replace(b'"pnl_usd":-2.0', b'"pnl_usd":-5.0')
    assert edited != lines[1]
    extra = (json.dumps(shadow([7.0])[0].to_record()) + "\n").encode()
    path.write_bytes(lines[0] + edited + b'{"id": "broken"}\n' + lines[2] + extra)
    kept = read_ledgers(store, cache)
    assert kept == read_ledgers(store)
    assert [t.pnl_usd for t in kept.shadow] == [1.0, -5.0, 3.0, 7.0]
    assert kept.unreadable == 1


# -- the whole-file kline reader -----------------------------------------------------------


def _read_both(path: Path, **options: Any) -> tuple[Any, Any]:
    """What the streaming parser and the batch path's whole-file read give: the bars and
    skip counts, or the error message."""
    from bigalpha_tui.core.sources.replay import (
        DiskReader,
        ParseOptions,
        ReplayStats,
        parse_kline_file,
    )

    def outcome(read: Any) -> Any:
        stats = ReplayStats()
        try:
            return list(read(stats)), dict(stats.skipped_by_reason)
        except Exception as exc:  # the message a user sees, whatever the type
            return type(exc).__name__, str(exc)

    streamed = outcome(lambda stats: parse_kline_file(path, stats=stats, **options))
    whole = outcome(lambda stats: DiskReader().read_all(path, None, ParseOptions(**options), stats))
    return streamed, whole


def test_the_whole_file_reader_reads_clean_files_at_once_as_the_parser_does(
    test_data: Path,
) -> None:
    from bigalpha_tui.core.sources.replay import ParseOptions, clean_kline_bars

    for name, symbol in (
        ("AVAXUSDT-1m-2026-02-head.csv.gz", "AVAXUSDT"),
        ("LINKUSDT-1m-2026-02-noheader.csv", "LINKUSDT"),
        ("AVAXUSDT-1m-2023-09-zero-volume.csv.gz", "AVAXUSDT"),
    ):
        path = test_data / name
        at_once = clean_kline_bars(path, symbol, ParseOptions())
        assert at_once is not None, f"{name} is clean: read at once"
        streamed, whole = _read_both(path)
        assert whole == streamed == (at_once, {})
    for name in ("SOLUSDT_1m_2025-01-01-head.csv.gz", "battle_hymn_BTCUSDT_1m-seam.csv.gz"):
        path = test_data / name  # no taker flow: streamed, refused or read alike
        assert clean_kline_bars(path, "X", ParseOptions(allow_no_flow=True)) is None
        for allow in (False, True):
            streamed, whole = _read_both(path, allow_no_flow=allow)
            assert whole == streamed


def _edit_row(line: str, column: int, value: str) -> str:
    fields = line.split(",")
    fields[column] = value
    return ",".join(fields)


@pytest.mark.parametrize(
    "edit",
    [
        lambda ln: _edit_row(ln, 2, "abc"),  # non-numeric high
        lambda ln: _edit_row(ln, 4, "nan"),  # non-finite close
        lambda ln: _edit_row(ln, 3, "-1"),  # non-positive low
        lambda ln: _edit_row(ln, 2, "0.001"),  # high below the others
        lambda ln: _edit_row(ln, 5, "-3"),  # negative volume
        lambda ln: _edit_row(ln, 9, "99999999"),  # taker-buy above volume
        lambda ln: _edit_row(ln, 9, ""),  # empty taker-buy column
        lambda ln: _edit_row(ln, 9, " "),  # blank taker-buy column
        lambda ln: _edit_row(ln, 0, str(int(ln.split(",")[0]) + 1)),  # off the minute
        lambda ln: _edit_row(ln, 0, "17699"),  # a timestamp outside 2009-2100
        lambda ln: _edit_row(ln, 0, " " + ln.split(",")[0]),  # a padded timestamp
        lambda ln: _edit_row(ln, 6, str(int(ln.split(",")[6]) + 240_000)),  # a 5-minute bar
        lambda ln: _edit_row(ln, 6, ""),  # no close time (accepted)
        lambda ln: _edit_row(ln, 6, "x"),  # a non-numeric close time
        lambda ln: ln + ",0",  # 13 columns
        lambda ln: ",".join(ln.split(",")[:11]),  # 11 columns
        lambda ln: ",".join(ln.split(",")[:6]),  # an OHLCV row among klines
        lambda ln: ln + "\n\n   ",  # blank lines (skipped)
        lambda ln: _edit_row(ln, 1, " 1_0.5 "),  # what float() reads (accepted)
        lambda ln: _edit_row(ln, 0, str(int(ln.split(",")[0]) // 1000)),  # epoch seconds
        lambda ln: _edit_row(ln, 0, "2026-02-01T03:00:00Z"),  # an ISO time
        lambda ln: _edit_row(ln, 11, "é"),  # not ASCII (an ignored column)
        lambda ln: "open_time,open",  # a header-like row inside the data
    ],
)
def test_the_whole_file_reader_fails_and_skips_as_the_parser_does(
    tmp_path: Path, test_data: Path, edit: Any
) -> None:
    """A crafted bad row (or an odd but valid one): the batch path's read accepts, rejects,
    skips and reports it exactly as the streaming parser does (same message, same line)."""
    import gzip

    source = test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"
    lines = gzip.decompress(source.read_bytes()).decode().splitlines()
    lines[150] = edit(lines[150])
    for name, text in (
        ("AVAXUSDT-1m-2026-02.csv", "\n".join(lines) + "\n"),
        ("AVAXUSDT-1m-2026-02-crlf.csv", "\r\n".join(lines[1:])),  # no header, CRLF
    ):
        path = tmp_path / name
        path.write_text(text, newline="")
        for skip in (False, True):
            streamed, whole = _read_both(path, skip_bad_rows=skip)
            assert whole == streamed, (name, skip)


def test_a_truncated_gzip_fails_as_the_parser_says(tmp_path: Path, test_data: Path) -> None:
    data = (test_data / "AVAXUSDT-1m-2026-02-head.csv.gz").read_bytes()
    path = tmp_path / "AVAXUSDT-1m-2026-02.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    streamed, whole = _read_both(path)
    assert streamed[0] == "DataError" and "cannot read" in streamed[1]
    assert whole == streamed


def _batch_ofi(bars: list[Bar], config: Config) -> batch.BatchOfi:
    settings = Core.tracker_settings_of(config)
    (features,) = batch_features.compute_features(BatchInput.from_bars(bars), config, settings)
    return batch.BatchOfi(config.strategy, features)


def test_batch_alpha_ofi_signals_and_state_equal_the_streaming_strategy(test_data: Path) -> None:
    """Signal for signal (every field, floats exactly) and state for state at every bar:
    real rows with zero-volume minutes, simulated ones, and bars without taker flow."""
    from bigalpha_tui.core.sources.replay import parse_kline_file
    from bigalpha_tui.core.strategy import AlphaOfi

    config = Config()
    flow_engine = WhaleFlowEngine("X", config.flow)
    tracker = HurstTracker()
    minutes = simulate_minutes(("SOLUSDT",), 5, DEFAULT_START_MS, SimParams())
    sets = [
        list(parse_kline_file(test_data / "AVAXUSDT-1m-2023-09-zero-volume.csv.gz")),
        [minute[0] for minute in itertools.islice(minutes, 400)],
        list(
            parse_kline_file(test_data / "battle_hymn_BTCUSDT_1m-seam.csv.gz", allow_no_flow=True)
        ),
    ]
    for bars in sets:
        symbol = bars[0].symbol
        streaming = AlphaOfi(symbol, config.strategy)
        batched = _batch_ofi(bars, config)
        unwanted = AlphaOfi(symbol, config.strategy)  # asked for no signal on odd bars
        unwanted_batch = _batch_ofi(bars, config)
        signals = 0
        for k, bar in enumerate(bars):
            flow, hurst = flow_engine.update(bar), tracker.update(bar.close)
            want = streaming.update(bar, flow, hurst)
            assert batched.update(bar, flow, hurst) == want
            assert batched.to_state() == streaming.to_state()
            signals += want is not None
            wanted = k % 2 == 0
            for other in (unwanted, unwanted_batch):
                # not wanted: no signal, but the windows move as if it were
                assert other.update(bar, flow, hurst, wanted) == (want if wanted else None)
                assert other.to_state() == streaming.to_state()
        assert signals, symbol
        assert batched.streaming().to_state() == streaming.to_state()


def test_replay_bars_passed_the_sanity_check_the_batch_run_skips(tmp_path: Path) -> None:
    """A replay source promises checked bars (`bars_checked`): even skipping bad rows, no
    bar it hands over has a `Bar.problem`, so the batch run need not check them again."""
    rows = [
        f"{DEFAULT_START_MS + i * MINUTE_MS},10,11,9,10.5,100,"
        f"{DEFAULT_START_MS + (i + 1) * MINUTE_MS - 1},0,0,{150 if i % 3 else 40},0,0"
        for i in range(30)
    ]
    path = tmp_path / "BTCUSDT-1m-test.csv"
    path.write_text("\n".join(rows) + "\n")
    source = ReplaySource([path], SimClock(0.0), skip_bad_rows=True)
    assert source.bars_checked
    bars = source.batch_bars()
    assert len(bars) == 10 and source.skipped_by_reason == {"taker-buy volume above volume": 20}
    assert all(bar.problem() is None for bar in bars)


def test_a_batch_run_leaves_the_garbage_collector_as_it_found_it(
    tmp_path: Path, test_data: Path
) -> None:
    """The batch path pauses the collector while it builds bars and features, and keeps
    them out of its scans during the run: both undone after, also when a file is bad."""
    import gc

    bad = tmp_path / "AVAXUSDT-1m-2026-02.csv"
    bad.write_text(
        "1769904000000,1,2,0.5,1.5,10,1769904059999,0,0,5,0,0\n"
        "1769904060000,1,2,0.5,1.5,10,1769904119999,0,0,abc,0,0\n"
    )
    source = ReplaySource([bad], SimClock(0.0))  # the first row reads well
    with pytest.raises(Exception, match="line 2: taker-buy volume 'abc' is not a number"):
        source.batch_bars()
    assert gc.isenabled()
    assert_same_run(_replay([test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"], None), tmp_path)
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_block_lines_are_the_encoders_text(tmp_path: Path) -> None:
    """`block_line` writes a guard block exactly as the json encoder would (every record of
    a simulated day, read back and encoded again), and hands any other layout back to it."""
    from bigalpha_tui.core.store import GUARD_BLOCKS, to_json
    from bigalpha_tui.core.trading import block_line

    minutes = simulate_minutes(("BTCUSDT", "SOLUSDT"), 13, DEFAULT_START_MS, SimParams())
    bars = [bar for minute in itertools.islice(minutes, 1440) for bar in minute]
    _run(lambda clock: ListSource(bars, clock), tmp_path, streaming=True, config=Config())
    lines = (tmp_path / GUARD_BLOCKS).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len({r["reason"] for r in records}) > 1, "the day must block for several reasons"
    for line, record in zip(lines, records, strict=True):
        assert block_line(record) == to_json(record) == line
    record = records[0]
    odd = [
        {**record, "reason": None, "detail": 'a "quoted" d\u00e9tail\n', "skipped": ["FEE_EDGE"]},
        {**record, "passed": [], "new_twin": True, "ofi": -0.0, "price": 1e-7, "time_s": 1e22},
    ]
    for edited in odd:
        assert block_line(edited) == to_json(edited)
    refused = [
        {**record, "ofi": math.inf},  # the encoder writes it as a string
        {**record, "price": math.nan},
        {**record, "atr_bps": 1.7e308, "price": 1.7e308},  # finite, but the sum is not
        {**record, "size_multiplier": 1},  # an int: "1", not "1.0"
        {**record, "extra": 1},
        {k: v for k, v in record.items() if k != "detail"},
        {**record, "new_twin": 0},
        {**record, "detail": 3},
        {**record, "reason": 3},
    ]
    for edited in refused:
        assert block_line(edited) is None
    # gate lists: a tuple is written as a list; a str or a nested list is handed back
    tuple_lists = {**record, "passed": tuple(record["passed"])}
    assert block_line(tuple_lists) == to_json(tuple_lists)  # a tuple is written as a list
    for edited in (
        {**record, "passed": "".join(record["passed"][:1]) or "FEE_EDGE"},  # a str, not a list
        {**record, "symbol": [record["symbol"]]},
        {**record, "symbol": (record["symbol"],)},
        {**record, "skipped": [["FEE_EDGE"]]},
    ):
        assert block_line(edited) is None
        assert to_json(edited) != to_json(record)


def test_a_grown_outcome_log_is_read_from_where_the_last_read_stopped(tmp_path: Path) -> None:
    """With a `LogTail` the learning loop's read goes through the new lines only while the
    log just grew, and reads exactly what a fresh read reads whatever happened to the file:
    lines appended, one still without its newline, a line edited, a bad line, rotation."""
    from learning_helpers import shadow

    from bigalpha_tui.core.learning_store import LogTail, TradeCache, read_ledgers
    from bigalpha_tui.core.store import SHADOW_OUTCOMES

    store = Store(tmp_path, durable=False, jsonl_rotate_bytes=4000)
    path = store.path(SHADOW_OUTCOMES)
    cache: TradeCache = {}
    tail = LogTail()
    line = [
        (json.dumps(t.to_record()) + "\n").encode()
        for t in shadow([float(i) for i in range(1, 40)])
    ]

    def same(grown: bool) -> None:
        kept = read_ledgers(store, cache, tail)
        assert kept == read_ledgers(store)
        if grown:  # read through the tail: it stands at the file's last whole line
            data = path.read_bytes()
            assert tail.data == data[: data.rfind(b"\n") + 1] and tail.trades

    same(grown=False)  # no log yet
    path.write_bytes(b"".join(line[:3]))
    same(grown=True)
    with path.open("ab") as fh:
        fh.write(line[3] + line[4][:20])  # the last line still being written: unreadable
    same(grown=False)
    with path.open("ab") as fh:
        fh.write(line[4][20:])
    same(grown=True)
    assert [t.pnl_usd for t in read_ledgers(store, cache, tail).shadow] == [1.0, 2.0, 3.0, 4.0, 5.0]
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"pnl_usd": 2.0', b'"pnl_usd": 9.0'))  # same length
    same(grown=False)
    assert [t.pnl_usd for t in read_ledgers(store, cache, tail).shadow][1] == 9.0
    with path.open("ab") as fh:
        fh.write(b'{"id": "broken"}\n' + line[5])
    same(grown=False)
    assert read_ledgers(store, cache, tail).unreadable == 1
    path.write_bytes(path.read_bytes().replace(b'{"id": "broken"}\n', b""))
    same(grown=True)
    with path.open("ab") as fh:
        fh.write(line[6].rstrip(b"\n"))  # a whole record, its newline not written yet
    same(grown=True)
    assert len(read_ledgers(store, cache, tail).shadow) == 7
    with path.open("ab") as fh:
        fh.write(b"\n")
    same(grown=True)
    for record in shadow([float(i) for i in range(10, 40)]):  # past 4000 bytes: rotated
        store.append_jsonl(SHADOW_OUTCOMES, record.to_record())
    assert store.rotated_paths(SHADOW_OUTCOMES)
    same(grown=False)
    assert len(read_ledgers(store, cache, tail).shadow) == 7 + 30


def test_a_throwaway_stores_state_files_wait_in_memory_until_the_flush(tmp_path: Path) -> None:
    """A buffered store keeps each state file's last version in memory (reads see it) and
    writes it at `flush_logs`, the same bytes a direct store writes at once."""
    from bigalpha_tui.core.store import GUARD_BLOCKS, POSITIONS

    direct = Store(tmp_path / "direct", durable=False)
    buffered = Store(tmp_path / "buffered", durable=False)
    buffered.buffer_logs = True
    for i in range(3):
        for store in (direct, buffered):
            assert store.write_json(POSITIONS, {"n": i, "x": 0.1 * i})
        assert (
            buffered.read_json(POSITIONS) == direct.read_json(POSITIONS) == {"n": i, "x": 0.1 * i}
        )
    assert not buffered.path(POSITIONS).exists()
    assert buffered.flush_logs(GUARD_BLOCKS)  # a log's flush leaves the state files waiting
    assert not buffered.path(POSITIONS).exists()
    assert buffered.flush_logs()
    assert buffered.path(POSITIONS).read_bytes() == direct.path(POSITIONS).read_bytes()
    assert buffered.read_json(POSITIONS) == {"n": 2, "x": 0.2}


@pytest.mark.parametrize("confirm_bars", [1, 2, 5, 40])
def test_hurst_features_confirm_and_sign_as_the_tracker_for_any_confirmation(
    confirm_bars: int,
) -> None:
    """The labels, the confirmation run and the published regime come from column
    arithmetic: equal to the tracker's `confirm_step` bar by bar, with runs shorter and
    longer than the confirmation, flat stretches (no H: WARMING again) and flat net
    returns (a sign of 0, decided by `fsum`)."""
    rng = np.random.default_rng(confirm_bars)
    steps = rng.normal(0.0, 1e-3, 1500)
    steps[400:560] = 0.0  # a flat market: every window inside it has no H
    steps[900:1000] = np.tile([2e-3, -2e-3], 50)  # a bounce: H at the grid's edge
    closes = 100.0 * np.exp(np.cumsum(steps))
    bars = [
        Bar("X", DEFAULT_START_MS + i * MINUTE_MS, c, c, c, c, 1.0, 0.5)
        for i, c in enumerate(closes.tolist())
    ]
    settings = {
        "window": 100,
        "trend_above": 0.5,
        "noise_below": 0.45,
        "confirm_bars": confirm_bars,
        "method": "whittle",
        "history_len": 120,
    }
    tracker = HurstTracker(**settings)
    streamed = [tracker.update(b.close) for b in bars]
    readings, end = batch.hurst_features(BarColumns.from_bars("X", bars), settings)

    def decided(r: HurstReading) -> tuple[object, ...]:
        return (r.raw_regime, r.regime, r.trend_sign, r.returns_seen, r.h is None)

    assert [decided(r) for r in readings] == [decided(r) for r in streamed]
    kinds = {r.raw_regime for r in streamed}
    assert Regime.WARMING in kinds and len(kinds) >= 3
    assert {r.trend_sign for r in streamed} == {-1, 0, 1}
    assert end is not None
    assert HurstTracker.from_state(end, **settings).to_state() == tracker.to_state()


@pytest.mark.parametrize(
    "texts",
    [
        ["1769904000000", "1769904059999", "9999999999999", "0000000000000"],  # one width
        ["176990400000", "1769904000000", "17699040000000"],  # 12, 13 and 14 digits
        ["1769904000000", "176990400000a"],
        ["1769904000000", "17699040000/0"],  # "/" is just below "0"
        ["1769904000000", "17699040000:0"],  # ":" just above "9"
        ["1769904000000", " 769904000000"],
        ["1769904000000", "+769904000000"],
        ["1769904000000", "-769904000000"],
        ["1769904000000", "1769904000.00"],
        ["1769904000000000", "1769904059999999"],  # microseconds (16 digits)
        ["1769904000000000000"],  # too wide (19)
        ["1769904000000", ""],
        [],
    ],
)
def test_the_whole_file_reader_reads_times_as_int_does(texts: list[str]) -> None:
    """Epoch time columns: read as a digit matrix when every field has one width, exactly
    the integers `int` reads; anything but plain digits of 12-18 characters: None."""
    from bigalpha_tui.core.sources.replay import _digits

    plain = bool(texts) and all(t.isdigit() and 12 <= len(t) <= 18 for t in texts)
    got = _digits(texts)
    if not plain:
        assert got is None
        return
    assert got is not None and got.dtype == np.int64
    assert got.tolist() == [int(t) for t in texts]
