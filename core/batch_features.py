"""A whole file's engine features at once, for the batch replay (`core/batch.py`).

The streaming engines (`flow.py` whale CVD, `hurst.py` tracker) cost most of a replay's
time, one bar at a time. A replay knows every bar up front, so here each symbol's features
are computed for all its bars (`columns.BarColumns`) in a few numpy passes, with no
look-ahead (bar i's features read bars 0..i only). Equal to the streaming engines bit for
bit where a decision depends on it:

- whale CVD: the engine keeps its window sums exactly (`ExactSum`, read back correctly
  rounded). Here each column is scaled to integers (every float is an integer multiple of
  2**e for the column's smallest e), split in two int64 limbs and summed over the window by
  cumulative sums (wrapping uint64 arithmetic: the difference of two cumulative sums is
  exact however far the running total wraps); the two limb sums, each below 2**53, are
  exact floats and one float addition rounds their total correctly, like the engine. A
  column too wide for two limbs falls back to Python integers (exact, slower). The whale
  flag, the whale count (an integer, so NEUTRAL is decided as the engine does) and the
  published `FlowState` fields follow (`_flow_rows`: the engine's `flow_state` for every
  bar at once, the same float operations; tested equal to the engine, signed zeros
  included).
- Hurst: H for all windows in chunks (`_batched_h`: `hurst_exponents`' bits with less
  work per chunk). A chunked FFT and matrix product round differently from the tracker's
  one-row call (seen: up to 7e-14), so every H within `H_RECHECK` of a regime threshold or
  at the grid's edge, every H an event shows (a regime change) and the final history are
  the tracker's own values (`hurst.tracker_exponents`: the one-row call's bits for many
  rows at once). The raw label, the confirmation run (`confirm_step`) and the trend sign
  (an exact `fsum` wherever the quick sum is within `NET_RETURN_RECHECK` of the flat
  threshold) then match the tracker's.

The features are kept as columns: a bar's `FlowState` and `HurstReading` are made only
when the loop asks for them (`SymbolFeatures.flow_at`/`hurst_at`), since most bars are
never looked at one by one and making an object per bar cost more than all the numpy
passes (measured on the five 2026-02 files, 201,600 bars: 1.37 s CPU with every object
made up front, 0.34 s as columns).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from .columns import BarColumns, BatchInput
from .config import Config, StrategyConfig
from .flow import ExactSum, FlowState
from .hurst import (
    _FLAT_RTOL,
    MIN_POINTS,
    HurstReading,
    HurstTracker,
    _whittle,
    hurst_exponents,
    tracker_exponents,
    trend_sign,
)
from .types import Regime, WhaleDirection

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Windows per chunk of the batched H (`_batched_h`): measured fastest on the 2026-02 files
#: (1.1 us a window at 512, 1.25 at 256, 1.4 at 128, 1.8 at 64; flat beyond 512).
HURST_CHUNK_ROWS = 512
#: A batched H this close to a regime threshold is recomputed alone (batched differs <1e-13).
H_RECHECK = 1e-9
#: A quick window sum of log returns this close to 0 is summed again exactly (`fsum`).
NET_RETURN_RECHECK = 1e-9
#: Exponent floor for the limb sums: results stay normal floats, so one rounding is all.
_LOWEST_EXPONENT = -960
_MANTISSA_BITS = 53


# ------------------------------------------------------------------------- exact sums


def _window_int_sums(values: IntArray, window: int) -> IntArray:
    """sum of values[max(0, i - window + 1) .. i] for each i, exact while it fits int64."""
    wrapped = np.concatenate(([np.uint64(0)], np.cumsum(values.view(np.uint64))))
    starts = np.maximum(np.arange(values.size) - window + 1, 0)
    sums: IntArray = (wrapped[1:] - wrapped[starts]).view(np.int64)
    return sums


def _window_sums_python(values: FloatArray, window: int) -> FloatArray:
    units = [ExactSum.units(v) for v in values.tolist()]
    one = 1 << 1074
    total = 0
    out: list[float] = []
    for i, u in enumerate(units):
        total += u
        if i >= window:
            total -= units[i - window]
        out.append(total / one)
    return np.array(out, dtype=np.float64)


def exact_window_sums(values: FloatArray, window: int) -> FloatArray:
    """The sum of the last `window` values (fewer at the start) at every index, correctly
    rounded from the exact sum: what `ExactSum` reads for the same window."""
    n = values.size
    nonzero = values != 0.0
    if n == 0 or not nonzero.any():
        return np.zeros(n)
    _, exponents = np.frexp(values[nonzero])
    low = int(exponents.min()) - _MANTISSA_BITS  # every value is a multiple of 2**low
    high = int(exponents.max())  # every |value| < 2**high
    span = window.bit_length()  # window < 2**span
    split = _MANTISSA_BITS - span  # low limb < 2**split, its window sums < 2**53
    if low < _LOWEST_EXPONENT or high - low - split + span > _MANTISSA_BITS:
        return _window_sums_python(values, window)
    scaled = np.ldexp(values, -low)  # exact integers
    hi = np.floor(np.ldexp(scaled, -split))
    lo = scaled - np.ldexp(hi, split)  # in [0, 2**split), exact
    hi_sums = _window_int_sums(hi.astype(np.int64), window).astype(np.float64)
    lo_sums = _window_int_sums(lo.astype(np.int64), window).astype(np.float64)
    # both sums are exact floats (< 2**53): one addition rounds the exact total once
    total: FloatArray = np.ldexp(np.ldexp(hi_sums, split) + lo_sums, low)
    return total


# ------------------------------------------------------------------------- features


#: A `FlowColumns` row: `FlowState`'s fields but the symbol and the cross ratio, in order
#: (the direction as its `_DIRECTION_OF_CODE` code): one `item()` reads a row's Python values.
FLOW_ROW = np.dtype(
    [
        ("cvd", np.float64),
        ("whale_cvd", np.float64),
        ("retail_cvd", np.float64),
        ("whale_volume", np.float64),
        ("retail_volume", np.float64),
        ("whale_bars", np.int64),
        ("window_bars", np.int64),
        ("retail_ofi", np.float64),
        ("intensity", np.float64),
        ("direction", np.int64),
        ("last_bar_was_whale", np.bool_),
        ("flow_available", np.bool_),
    ]
)
#: A `HurstColumns` row from the first full window on: H (nan: none), raw label code, sign.
HURST_ROW = np.dtype([("h", np.float64), ("raw", np.int64), ("sign", np.int64)])


_Row = TypeVar("_Row")


class _LazyRows(Sequence[_Row]):
    """A sequence whose row k is made when read (`at`): the length, indexing, slicing and
    iteration of `FlowColumns` and `HurstColumns`."""

    _size: int

    def at(self, k: int) -> _Row:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, k: int) -> _Row: ...

    @overload
    def __getitem__(self, k: slice) -> list[_Row]: ...

    def __getitem__(self, k: int | slice) -> _Row | list[_Row]:
        if isinstance(k, slice):
            return [self.at(i) for i in range(*k.indices(len(self)))]
        return self.at(k)

    def __iter__(self) -> Iterator[_Row]:
        return map(self.at, range(len(self)))


class FlowColumns(_LazyRows[FlowState]):
    """What `WhaleFlowEngine.update` returns after each bar, as columns: row k's `FlowState`
    is made only when it is read (`at`, or an index). Most bars of a replay are never looked
    at one by one; making a state for each cost more than computing them all. The row read
    last is kept (a loop asks for a bar's state more than once in a row); keeping every
    state made would cost more (a month's worth of objects for the collector to scan).
    `rows`: every bar's fields (`FLOW_ROW`), for a loop that filters bars in numpy."""

    def __init__(
        self, symbol: str, rows: npt.NDArray[np.void], cross: list[float | None] | None
    ) -> None:
        self.symbol = symbol
        self.rows = rows
        self._cross = cross  # the last cross ratio seen at each bar; None: none anywhere
        self._size = int(rows.size)
        self._last = -1  # the row asked last, kept: a loop asks a bar's state more than once
        self._state = FlowState(symbol)

    def at(self, k: int) -> FlowState:
        """Row k's state (IndexError past the end, as a list)."""
        if k == self._last:
            return self._state
        if k < 0:
            k += self._size
        if not 0 <= k < self._size:
            raise IndexError(f"flow row {k} of {self._size}")
        fields: Any = self.rows.item(k)  # a tuple of Python floats, ints and bools
        (
            cvd,
            whale_cvd,
            retail_cvd,
            whale_volume,
            retail_volume,
            whale_bars,
            window_bars,
            ofi,
            intensity,
            code,
            whale,
            available,
        ) = fields
        state = self._state = FlowState(
            self.symbol,
            cvd,
            whale_cvd,
            retail_cvd,
            whale_volume,
            retail_volume,
            whale_bars,
            window_bars,
            ofi,
            intensity,
            _DIRECTION_OF_CODE[code],
            whale,
            None if self._cross is None else self._cross[k],
            available,
        )
        self._last = k
        return state

    def signal_fields(self, k: int) -> tuple[WhaleDirection, float, float, float | None]:
        """Row k's direction, retail OFI, intensity and cross ratio (what a `Signal` reads
        of `at(k)`), without making the `FlowState`."""
        fields: Any = self.rows.item(k)
        cross = None if self._cross is None else self._cross[k]
        return _DIRECTION_OF_CODE[fields[9]], fields[7], fields[8], cross


class HurstColumns(_LazyRows[HurstReading]):
    """What `HurstTracker.update` returns after each bar, as columns: row k's `HurstReading`
    is made only when it is read (`at`, or an index); the row read last is kept, as in
    `FlowColumns`. `regimes` (the published regime after each bar) and `changed` (it
    differs from the bar before's, the first bar's from WARMING: a regime event) are
    lists, read bar by bar; `rows` (`HURST_ROW`) holds bar `warming + j`'s fields at j."""

    def __init__(
        self,
        band: float,
        warming: int,
        rows: npt.NDArray[np.void],
        regimes: list[Regime],
        changed: list[bool],
    ) -> None:
        self.band = band
        self.warming = warming  # bars 0 .. warming - 1 have no full window yet
        self.rows = rows
        self.regimes = regimes
        self.changed = changed
        self._size = len(regimes)
        self._last = -1  # the row asked last, kept: a loop asks a bar's reading more than once
        self._reading = HurstReading(None, band, Regime.WARMING, Regime.WARMING, 0, 0)

    def at(self, k: int) -> HurstReading:
        """Row k's reading (IndexError past the end, as a list)."""
        if k == self._last:
            return self._reading
        if k < 0:
            k += self._size
        if not 0 <= k < self._size:
            raise IndexError(f"Hurst row {k} of {self._size}")
        j = k - self.warming
        if j < 0:
            reading = HurstReading(None, self.band, Regime.WARMING, Regime.WARMING, 0, k)
        else:
            fields: Any = self.rows.item(j)
            h, raw, sign = fields
            reading = HurstReading(
                None if h != h else h,  # h != h: nan
                self.band,
                _REGIME_OF_CODE[raw],
                self.regimes[k],
                sign,
                k,
            )
        self._reading = reading
        self._last = k
        return reading

    def h_at(self, k: int) -> float | None:
        """Row k's H (what `at(k).h` reads), without making the `HurstReading`."""
        j = k - self.warming
        if j < 0:
            return None
        h: float = self.rows.item(j)[0]
        return None if h != h else h  # h != h: nan


@dataclass(eq=False)
class SymbolFeatures:
    """One symbol's engine output for each of its applied bars (row k: after bar k), and
    the engines' state after the last. `next`: the row the run applies next. `regimes`
    (the published regime after each bar) and `regime_changed` (row k's differs from row
    k-1's, row 0's from WARMING: the core emits a regime event at that bar) are lists, for
    a loop that reads them bar by bar; `flow_at`/`hurst_at` make a bar's objects when
    asked."""

    columns: BarColumns
    flow: FlowColumns
    hurst: HurstColumns
    ofi: OfiColumns
    flow_state: dict[str, Any] | None
    hurst_state: dict[str, Any] | None
    next: int = 0
    regimes: list[Regime] = field(init=False)
    regime_changed: list[bool] = field(init=False)
    #: row k's `FlowState` / `HurstReading`, made when asked (the columns' `at`)
    flow_at: Callable[[int], FlowState] = field(init=False)
    hurst_at: Callable[[int], HurstReading] = field(init=False)

    def __post_init__(self) -> None:
        self.regimes = self.hurst.regimes
        self.regime_changed = self.hurst.changed
        self.flow_at = self.flow.at
        self.hurst_at = self.hurst.at

    def regime_at(self, k: int) -> Regime:
        return self.regimes[k]


def flow_features(columns: BarColumns, config: Config) -> tuple[FlowColumns, dict[str, Any] | None]:
    """What `WhaleFlowEngine.update` returns for each bar, and its state after the last."""
    symbol = columns.symbol
    cfg = config.flow
    window = cfg.window_bars
    n = len(columns)
    if n == 0:
        return FlowColumns(symbol, np.zeros(0, FLOW_ROW), None), None
    volume, taker, has_flow = columns.volume, columns.taker_buy_volume, columns.has_flow
    delta = np.where(has_flow, 2.0 * taker - volume, 0.0)  # Bar.delta, or 0 without flow
    volume_sums = exact_window_sums(volume, window)
    whale = np.zeros(n, dtype=np.bool_)
    if n > window:
        previous = volume_sums[window - 1 : n - 1]  # the full window before each bar
        whale[window:] = (previous > 0.0) & (
            volume[window:] > cfg.whale_volume_multiple * (previous / window)
        )
    cvd = exact_window_sums(delta, window)
    whale_volume = exact_window_sums(np.where(whale, volume, 0.0), window)
    whale_cvd = exact_window_sums(np.where(whale, delta, 0.0), window)
    whale_count = _window_int_sums(whale.astype(np.int64), window)
    cross: list[float | None] | None = None
    last_cross: float | None = None
    if columns.cross_buy_ratio is not None:
        cross = [None] * n
        for k, ratio in enumerate(columns.cross_buy_ratio):
            if ratio is not None:
                last_cross = ratio
            cross[k] = last_cross
    rows = _flow_rows(
        window,
        cfg.neutral_share,
        volume_sums,
        cvd,
        whale_volume,
        whale_cvd,
        whale_count,
        whale,
        has_flow,
    )
    start = max(0, n - window)
    end_state = {
        "bars": [
            [v, d, w]
            for v, d, w in zip(
                volume[start:].tolist(), delta[start:].tolist(), whale[start:].tolist(), strict=True
            )
        ],
        "bars_seen": n,
        "cross_buy_ratio": last_cross,
        "last_bar_was_whale": bool(whale[-1]),
        "flow_available": bool(has_flow[-1]),
    }
    return FlowColumns(symbol, rows, cross), end_state


#: `whale_direction` as codes for the column arithmetic of `_flow_rows`.
_DIRECTION_OF_CODE = (WhaleDirection.NEUTRAL, WhaleDirection.BUY, WhaleDirection.SELL)


def _flow_rows(
    window: int,
    neutral_share: float,
    volume: FloatArray,
    cvd: FloatArray,
    whale_volume: FloatArray,
    whale_cvd: FloatArray,
    whale_bars: IntArray,
    last_bar_was_whale: npt.NDArray[np.bool_],
    flow_available: npt.NDArray[np.bool_],
) -> npt.NDArray[np.void]:
    """`flow.flow_state`'s fields for every bar at once (`FlowColumns` rows): the same
    float operations in the same order, and Python's `max`/`min` as `where` (they keep the
    first argument unless the second is strictly beyond it: a signed zero comes out as
    there)."""
    retail_volume = volume - whale_volume
    retail_volume = np.where(retail_volume < 0.0, 0.0, retail_volume)  # max(x, 0.0)
    retail_cvd = cvd - whale_cvd
    with np.errstate(divide="ignore", invalid="ignore"):
        retail_ofi = np.where(retail_volume > 0, retail_cvd / retail_volume, 0.0)
        intensity = np.where(volume > 0, 100.0 * whale_volume / volume, 0.0)
    retail_ofi = np.where(retail_ofi < 1.0, retail_ofi, 1.0)  # min(1.0, x)
    retail_ofi = np.where(retail_ofi > -1.0, retail_ofi, -1.0)  # max(-1.0, x)
    intensity = np.where(intensity < 100.0, intensity, 100.0)
    intensity = np.where(intensity > 0.0, intensity, 0.0)
    neutral = (
        (whale_bars == 0)
        | (whale_volume <= 0.0)
        | (np.abs(whale_cvd) < neutral_share * whale_volume)
    )
    # `whale_direction`: 0 NEUTRAL, 1 BUY, 2 SELL
    code = np.where(neutral, 0, np.where(whale_cvd > 0, 1, 2))
    rows = np.empty(volume.size, dtype=FLOW_ROW)
    rows["cvd"] = cvd
    rows["whale_cvd"] = whale_cvd
    rows["retail_cvd"] = retail_cvd
    rows["whale_volume"] = whale_volume
    rows["retail_volume"] = retail_volume
    rows["whale_bars"] = whale_bars
    rows["window_bars"] = np.minimum(np.arange(1, volume.size + 1), window)
    rows["retail_ofi"] = retail_ofi
    rows["intensity"] = intensity
    rows["direction"] = code
    rows["last_bar_was_whale"] = last_bar_was_whale
    rows["flow_available"] = flow_available
    return rows


def _batched_h(windows: FloatArray, method: str) -> FloatArray:
    """`hurst_exponents` of `windows` in chunks of `HURST_CHUNK_ROWS` rows, on one BLAS
    thread: a chunk's matrix product is small, and a second thread on a shared machine
    waits for a busy core (the 2026-02 month's features: 0.37 s on one thread, 0.87-1.42 s
    on two with the other core busy; the same H either way, as the tracker's rechecks
    are row by row)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _batched_h_chunks(windows, method)


def _batched_h_chunks(windows: FloatArray, method: str) -> FloatArray:
    """`_batched_h`'s work, with less work per chunk for Whittle than `hurst_exponents`
    (the same bits): a row's range and largest |return| come from its max and min, which
    `_standardise` needs too (rounding is monotonic, so the centred max is the max minus
    the mean, rounded once), and the rows go straight to `_whittle`."""
    rows, n = windows.shape
    out = np.full(rows, np.nan)
    if method != "whittle" or n < MIN_POINTS:
        for s in range(0, rows, HURST_CHUNK_ROWS):
            chunk = np.ascontiguousarray(windows[s : s + HURST_CHUNK_ROWS])
            out[s : s + HURST_CHUNK_ROWS] = hurst_exponents(chunk, method)
        return out
    for s in range(0, rows, HURST_CHUNK_ROWS):
        chunk = np.array(windows[s : s + HURST_CHUNK_ROWS])  # a copy: worked on in place
        high = chunk.max(axis=1)  # nan when the row holds one (max and min propagate it)
        low = chunk.min(axis=1)
        with np.errstate(invalid="ignore"):  # inf - inf: nan, a row that is not usable
            spread = high - low
            # `_usable_rows`: all finite, and a range beyond float noise of the largest |x|
            usable = (
                np.isfinite(high)
                & np.isfinite(low)
                & np.isfinite(spread)
                & (spread > _FLAT_RTOL * np.maximum(high, -low))
            )
        if not usable.all():
            if not usable.any():
                continue
            chunk, high, low = chunk[usable], high[usable], low[usable]
        # `_standardise`, in place
        mean = chunk.mean(axis=1)
        np.subtract(chunk, mean[:, np.newaxis], out=chunk)
        np.divide(chunk, ((high - mean) - (low - mean))[:, np.newaxis], out=chunk)
        out[s : s + HURST_CHUNK_ROWS][usable] = _whittle(chunk)
    return out


#: `classify`'s labels as codes for the column arithmetic of `hurst_features`.
_REGIME_OF_CODE = (Regime.WARMING, Regime.TRUE_TREND, Regime.NOISE, Regime.RANDOM)
_REGIME_ARRAY = np.array(_REGIME_OF_CODE, dtype=object)
_WARMING, _TREND, _NOISE, _RANDOM = range(4)


def _regime_codes(h: FloatArray, trend_above: float, noise_below: float) -> IntArray:
    """`classify` for every H at once (nan: WARMING; the same strict comparisons)."""
    codes: IntArray = np.where(
        np.isnan(h),
        _WARMING,
        np.where(h > trend_above, _TREND, np.where(h < noise_below, _NOISE, _RANDOM)),
    ).astype(np.int64)
    return codes


def _confirmed_codes(raw: IntArray, confirm_bars: int) -> tuple[IntArray, int]:
    """`confirm_step` over every bar at once, from a fresh tracker (candidate WARMING, run
    0): a label's run counts its equal raw labels in a row (the first bar starts a run of
    1 either way), a bar whose run reaches `confirm_bars` publishes its label, and every
    bar shows the last label published (WARMING before any). Also the run at the end."""
    m = raw.size
    if m == 0:
        return raw.copy(), 0
    index = np.arange(m)
    starts = np.ones(m, dtype=np.bool_)
    starts[1:] = raw[1:] != raw[:-1]
    run_start = np.maximum.accumulate(np.where(starts, index, 0))
    run = index - run_start + 1
    last = np.maximum.accumulate(np.where(run >= confirm_bars, index, -1))
    published: IntArray = np.where(last >= 0, raw[np.maximum(last, 0)], _WARMING)
    return published, int(run[-1])


def _signs(net: FloatArray, returns: list[float], window: int) -> IntArray:
    """`trend_sign` of each window's net log return: the quick sum where it is clearly
    away from flat, an exact `fsum` where it is within `NET_RETURN_RECHECK` of zero."""
    signs: IntArray = np.where(net > 0.0, 1, -1).astype(np.int64)
    for k in np.flatnonzero(np.abs(net) < NET_RETURN_RECHECK).tolist():
        signs[k] = trend_sign(math.fsum(returns[k : k + window]))
    return signs


def hurst_features(
    columns: BarColumns, settings: dict[str, Any]
) -> tuple[HurstColumns, dict[str, Any] | None]:
    """What `HurstTracker.update` returns for each bar (every close valid: the core rejects
    the others first), and the tracker's state after the last."""
    tracker = HurstTracker(**settings)  # validates the settings; gives the band
    window, method = tracker.window, tracker.method
    n = len(columns)
    band = tracker.band
    if n == 0:
        return HurstColumns(band, 0, np.zeros(0, HURST_ROW), [], []), None
    closes = columns.close_list
    # the tracker's `math.log(close / last_close)`: the same division, the same log
    close = columns.close
    returns = list(map(math.log, (close[1:] / close[:-1]).tolist()))
    count = max(0, n - window)  # bars n - count .. n - 1 have a full window
    series = np.array(returns, dtype=np.float64)
    windows = sliding_window_view(series, window) if count else np.zeros((0, window))
    h = _batched_h(windows, method)
    net = windows.sum(axis=1)  # quick window sums for the trend sign (`_signs`)

    own = np.zeros(count, dtype=np.bool_)  # H recomputed alone: the tracker's own value

    def recheck(ks: npt.NDArray[np.bool_]) -> None:
        todo = np.flatnonzero(ks & ~own)
        if todo.size:
            h[todo] = tracker_exponents(windows[todo], method)
        own[ks] = True

    recheck(
        (np.abs(h - tracker.trend_above) < H_RECHECK)
        | (np.abs(h - tracker.noise_below) < H_RECHECK)
        | (h <= 0.01 + H_RECHECK)
        | (h >= 0.99 - H_RECHECK)
    )
    raw_codes = _regime_codes(h, tracker.trend_above, tracker.noise_below)
    codes, run_end = _confirmed_codes(raw_codes, tracker.confirm_bars)
    warming = n - count
    all_codes = np.concatenate((np.full(warming, _WARMING, dtype=np.int64), codes))
    changed = all_codes != np.concatenate(([_WARMING], all_codes[:-1]))
    # an H an event shows (the published regime changed) and the history the tracker
    # keeps are the tracker's own values
    history_from = max(0, count - tracker.history_len)
    recheck(changed[warming:] | (np.arange(count) >= history_from))
    signs = _signs(net, returns, window)
    regimes: list[Regime] = _REGIME_ARRAY[all_codes].tolist()
    rows = np.empty(count, dtype=HURST_ROW)
    rows["h"], rows["raw"], rows["sign"] = h, raw_codes, signs
    readings = HurstColumns(band, warming, rows, regimes, changed.tolist())
    if count:
        candidate, published = _REGIME_OF_CODE[raw_codes[-1]], regimes[-1]
    else:
        candidate = published = Regime.WARMING
    end_state = {
        "last_close": closes[-1],
        "returns": returns[-window:],
        "returns_seen": n - 1,
        "candidate": candidate.value,
        "run": run_end,
        "published": published.value,
        "history": [None if math.isnan(x) else x for x in h[history_from:].tolist()],
        "rejected": 0,
    }
    return readings, end_state


class FloatColumn(Sequence[float]):
    """A float column read as a list (an item, a slice: a list), without turning the whole
    column into Python floats first."""

    def __init__(self, values: FloatArray) -> None:
        self._values = values

    @property
    def array(self) -> FloatArray:
        """The column itself (read only)."""
        return self._values

    def __len__(self) -> int:
        return int(self._values.size)

    @overload
    def __getitem__(self, k: int) -> float: ...

    @overload
    def __getitem__(self, k: slice) -> list[float]: ...

    def __getitem__(self, k: int | slice) -> float | list[float]:
        if isinstance(k, slice):
            part: list[float] = self._values[k].tolist()
            return part
        value: float = self._values.item(k)
        return value

    def __iter__(self) -> Iterator[float]:
        return iter(self._values.tolist())


@dataclass(eq=False)
class OfiColumns:
    """Alpha-OFI's window sums for every bar of a symbol (`BatchOfi` reads them)."""

    fires: list[bool]  # a signal at this bar (warm, flow, beyond the threshold)
    ofi: FloatColumn
    range_sums: FloatColumn
    deltas: FloatColumn
    volumes: FloatColumn
    true_ranges: FloatColumn


def ofi_features(columns: BarColumns, config: StrategyConfig) -> OfiColumns:
    """The OFI and ATR window sums of every bar at once, exactly (`exact_window_sums` is
    correctly rounded, as `math.fsum`)."""
    n = len(columns)
    high, low, close = columns.high, columns.low, columns.close
    volume, taker, has_flow = columns.volume, columns.taker_buy_volume, columns.has_flow
    delta = np.where(has_flow, 2.0 * taker - volume, 0.0)  # Bar.delta, or 0 without flow
    flow_volume = np.where(has_flow, volume, 0.0)
    ranges = high - low  # `true_range`: the first bar has no previous close
    if n > 1:
        previous = close[:-1]
        ranges[1:] = np.maximum(
            np.maximum(ranges[1:], np.abs(high[1:] - previous)), np.abs(low[1:] - previous)
        )
    delta_sums = exact_window_sums(delta, config.ofi_bars)
    volume_sums = exact_window_sums(flow_volume, config.ofi_bars)
    range_sums = exact_window_sums(ranges, config.atr_bars)
    with np.errstate(divide="ignore", invalid="ignore"):
        ofi = delta_sums / volume_sums
    threshold = config.ofi_threshold
    fires = has_flow & (volume_sums > 0.0) & ((ofi > threshold) | (ofi < -threshold))
    fires[: max(config.ofi_bars, config.atr_bars) - 1] = False  # not warm yet
    return OfiColumns(
        fires.tolist(),
        FloatColumn(ofi),
        FloatColumn(range_sums),
        FloatColumn(delta),
        FloatColumn(flow_volume),
        FloatColumn(ranges),
    )


def compute_features(
    data: BatchInput, config: Config, settings: dict[str, Any]
) -> list[SymbolFeatures]:
    """Each symbol's features, in `data.columns` order."""
    out: list[SymbolFeatures] = []
    for columns in data.columns:
        flows, flow_end = flow_features(columns, config)
        readings, hurst_end = hurst_features(columns, settings)
        ofi = ofi_features(columns, config.strategy)
        out.append(SymbolFeatures(columns, flows, readings, ofi, flow_end, hurst_end))
    return out
