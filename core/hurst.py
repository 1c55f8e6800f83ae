"""Hurst regime: estimate H over the last 100 log returns and publish a confirmed regime.

DESIGN.md "Hurst regime". At n = 100 the estimator decides whether the label means
anything: on exact fractional Gaussian noise the usual rescaled-range tools put only
~57-63 % of windows in the right regime, a Whittle estimator with the exact fGn spectral
density ~80 % (the Gaussian MLE, the efficiency limit, 78-83 %). So the default method is
``"whittle"``; ``"rs_al"`` (Anis-Lloyd/Peters-corrected rescaled range, the plan's own
method) is kept as the documented alternative. Both are vectorised over windows.

Undefined input never raises inside the trading loop: a window with NaN/inf, too few
points, or zero variance (a flat market: every close equal, or a perfectly constant
drift) gives ``nan``, which ``classify`` turns into WARMING. We return nan rather than
0.5 for a flat window because it holds no information about H, and 0.5 would claim a
measurement (RANDOM) that was never made.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from .frozen import fast_init
from .types import Regime

FloatArray = npt.NDArray[np.float64]

#: Returns in the strict estimation window (DESIGN.md: no estimate before 100).
WINDOW_RETURNS = 100
#: H above this is a persistent, trending market.
TREND_ABOVE = 0.55
#: H below this is mean-reverting noise.
NOISE_BELOW = 0.45
#: Bars the raw label must hold before the published regime follows it.
CONFIRM_BARS = 5
#: H values kept for the sparkline.
HISTORY_LEN = 120

METHODS: tuple[str, ...] = ("whittle", "rs_al")
DEFAULT_METHOD = "whittle"

#: Fewest points either estimator accepts (Whittle: 7 Fourier frequencies; R/S-AL: two
#: block sizes of >= 8).
MIN_POINTS = 16

# Whittle search grid: H in [0.01, 0.99], refined by a parabola through the best three.
_H_GRID = np.round(np.linspace(0.01, 0.99, 99), 10)
# Exact fGn density: sum |lambda + 2 pi k|^(-2H-1) over |k| <= _SPECTRAL_TERMS, plus the
# midpoint-rule integral of the tail (relative error < 1e-7 even at H = 0.01).
_SPECTRAL_TERMS = 200
# Rows per batch in hurst_exponents, to keep the (rows x grid) contrast matrix in cache.
_CHUNK_ROWS = 8192
# A window whose range is below this share of its largest |return| is flat (float noise).
_FLAT_RTOL = 1e-9
# Power off the Nyquist frequency below this share of the total is float noise.
_BOUNCE_RTOL = 1e-12
# |net log return| at or below this is float noise, not a direction.
_FLAT_NET_RETURN = 1e-12
# R/S-AL uses every divisor of n at least this long as a block size.
_RS_MIN_BLOCK = 8

# Standard deviation of the estimate on exact fGn by window length: measured with
# `python bench/hurst_accuracy.py --band` (20 000 windows per (H, n), seed 20240611), as
# the root mean square of the per-H standard deviations over H = 0.3, 0.4, 0.5, 0.6, 0.7.
# Whittle at n = 100 ranges from 0.063 (H = 0.3) to 0.076 (H = 0.7).
_WHITTLE_BAND: dict[int, float] = {
    32: 0.1481,
    50: 0.1088,
    100: 0.0705,
    200: 0.0472,
    400: 0.0323,
    800: 0.0222,
}
_RS_AL_BAND: dict[int, float] = {
    32: 0.1625,
    50: 0.1386,
    100: 0.1007,
    200: 0.0642,
    400: 0.0493,
    800: 0.0389,
}


def check_method(method: str) -> str:
    """Return ``method`` if it is a known estimator, else raise ValueError naming them."""
    if method not in METHODS:
        accepted = ", ".join(repr(m) for m in METHODS)
        raise ValueError(f"unknown Hurst method {method!r}; accepted values: {accepted}")
    return method


# --------------------------------------------------------------------------- estimators


def hurst_exponent(log_returns: np.ndarray, method: str = DEFAULT_METHOD) -> float:
    """H of the last 100 log returns; nan when there are fewer, or they are not finite/flat."""
    check_method(method)
    series = np.asarray(log_returns, dtype=np.float64).ravel()
    if series.size < WINDOW_RETURNS:
        return math.nan
    window = series[-WINDOW_RETURNS:]
    return float(hurst_exponents(window[np.newaxis, :], method)[0])


def hurst_exponents(windows: np.ndarray, method: str = DEFAULT_METHOD) -> np.ndarray:
    """H of each row of a 2-D array of log returns (one window per row), vectorised.

    Rows holding NaN/inf or with zero variance give nan; so does every row when a row
    has fewer than ``MIN_POINTS`` points.
    """
    result, usable, clean = _prepared(windows, method)
    if clean is None:
        return result
    estimate = _whittle if method == "whittle" else _rs_al
    parts = [
        estimate(clean[start : start + _CHUNK_ROWS])
        for start in range(0, clean.shape[0], _CHUNK_ROWS)
    ]
    result[usable] = np.concatenate(parts)
    return result


def tracker_exponents(windows: np.ndarray, method: str = DEFAULT_METHOD) -> FloatArray:
    """H of each row exactly as `hurst_exponents` gives it for that row alone (the
    tracker's call, one window a bar), without a whole call per row.

    A many-row call rounds differently from a one-row call only in the matrix product
    (BLAS picks another kernel for one row: seen up to 7e-14 apart); every other step works
    row by row with the same operations whatever the row count. So those steps run on all
    rows at once and the product runs one row at a time, as a one-row call does it: the
    same bits (tested against one-row calls), at ~4 us a row instead of ~50. R/S-AL has no
    product but is not checked that way: one call per row.
    """
    if method != "whittle":
        check_method(method)
        data = np.asarray(windows, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"windows must be 2-D (one window per row), got {data.ndim}-D")
        return np.array(
            [hurst_exponents(data[j : j + 1], method)[0] for j in range(data.shape[0])],
            dtype=np.float64,
        )
    result, usable, clean = _prepared(windows, method)
    if clean is not None:
        result[usable] = _whittle(clean, row_by_row=True)
    return result


def _prepared(
    windows: np.ndarray, method: str
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray | None]:
    """(all-nan result, the usable rows, their standardised windows) for an estimate; no
    windows (None) when nothing can be estimated (too short, none usable)."""
    check_method(method)
    data = np.asarray(windows, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"windows must be 2-D (one window per row), got {data.ndim}-D")
    rows, n = data.shape
    result = np.full(rows, np.nan)
    if n < MIN_POINTS or rows == 0:
        return result, np.zeros(rows, dtype=np.bool_), None
    usable = _usable_rows(data)
    if not usable.any():
        return result, usable, None
    return result, usable, _standardise(data[usable])


def _band(n: int, table: Mapping[int, float]) -> float:
    if n < MIN_POINTS:
        return math.nan
    sizes = sorted(table)
    if n <= sizes[0]:
        return table[sizes[0]] * math.sqrt(sizes[0] / n)
    if n >= sizes[-1]:
        return table[sizes[-1]] * math.sqrt(sizes[-1] / n)
    logs = np.log(np.array(sizes, dtype=np.float64))
    stds = np.log(np.array([table[s] for s in sizes]))
    return float(np.exp(np.interp(math.log(n), logs, stds)))


def classify(
    h: float | None, trend_above: float = TREND_ABOVE, noise_below: float = NOISE_BELOW
) -> Regime:
    """Raw regime label of one H estimate (None/NaN: WARMING)."""
    if h is None or math.isnan(h):
        return Regime.WARMING
    if h > trend_above:
        return Regime.TRUE_TREND
    if h < noise_below:
        return Regime.NOISE
    return Regime.RANDOM


def _usable_rows(data: FloatArray) -> npt.NDArray[np.bool_]:
    """Rows that are all finite and not flat (flat rows carry no information about H)."""
    finite = np.asarray(np.isfinite(data).all(axis=1), dtype=np.bool_)
    safe = np.where(finite[:, np.newaxis], data, 0.0)
    spread = safe.max(axis=1) - safe.min(axis=1)
    scale = np.abs(safe).max(axis=1)
    usable: npt.NDArray[np.bool_] = finite & np.isfinite(spread) & (spread > _FLAT_RTOL * scale)
    return usable


def _standardise(data: FloatArray) -> FloatArray:
    """Demean and scale each row to unit range; H is scale-free, and this avoids underflow."""
    centred = data - data.mean(axis=1, keepdims=True)
    spread = centred.max(axis=1, keepdims=True) - centred.min(axis=1, keepdims=True)
    scaled: FloatArray = centred / spread
    return scaled


# ------------------------------------------------------------------------------ Whittle


def fgn_spectral_density(h: np.ndarray, freqs: np.ndarray) -> FloatArray:
    """Exact spectral density of unit-variance fGn, shape (len(h), len(freqs)).

    f(l; H) = sin(pi H) Gamma(2H + 1) / pi * (1 - cos l) * sum_k |l + 2 pi k|^(-2H-1),
    normalised so that gamma(k) = integral over [-pi, pi] of f(l) cos(k l).
    """
    hs = np.asarray(h, dtype=np.float64).reshape(-1, 1)
    lam = np.asarray(freqs, dtype=np.float64).reshape(1, -1)
    exponent = -2.0 * hs - 1.0
    near = np.abs(lam) ** exponent
    body = np.zeros(np.broadcast_shapes(hs.shape, lam.shape))
    for k in range(1, _SPECTRAL_TERMS + 1):
        body += (2 * np.pi * k + lam) ** exponent + (2 * np.pi * k - lam) ** exponent
    tail_start = 2 * np.pi * (_SPECTRAL_TERMS + 0.5)
    tail = ((tail_start + lam) ** (-2 * hs) + (tail_start - lam) ** (-2 * hs)) / (4 * np.pi * hs)
    log_gamma = np.array([math.lgamma(2 * x + 1) for x in hs.ravel()]).reshape(hs.shape)
    scale = np.sin(np.pi * hs) * np.exp(log_gamma) / np.pi
    density: FloatArray = scale * (1 - np.cos(lam)) * (near + body + tail)
    return density


@lru_cache(maxsize=16)
def _whittle_tables(n: int) -> tuple[FloatArray, FloatArray]:
    """Per window length: 1/f on the H grid at the Fourier frequencies, and mean log f."""
    freqs = 2 * np.pi * np.arange(1, (n - 1) // 2 + 1) / n
    density = fgn_spectral_density(_H_GRID, freqs)
    inverse = np.ascontiguousarray((1.0 / density).T)
    mean_log = np.log(density).mean(axis=1)
    inverse.setflags(write=False)
    mean_log.setflags(write=False)
    return inverse, mean_log


def _whittle(clean: FloatArray, row_by_row: bool = False) -> FloatArray:
    """Whittle H per row: minimise log(mean I/f) + mean log f over the grid, then refine.
    `row_by_row`: the matrix product and the refinement one row at a time, as a one-row
    call makes them (`tracker_exponents`); every other step works row by row anyway."""
    n = clean.shape[1]
    inverse, mean_log = _whittle_tables(n)
    spectrum = np.fft.rfft(clean, axis=1)[:, 1 : (n - 1) // 2 + 1]
    periodogram = spectrum.real**2 + spectrum.imag**2
    # A pure +-a alternation (a bid-ask bounce) has all its power at the Nyquist frequency,
    # which the Whittle sum leaves out: it is the most anti-persistent series there is.
    bounce = periodogram.sum(axis=1) <= _BOUNCE_RTOL * n * (clean * clean).sum(axis=1)
    periodogram[bounce] = 1.0
    if not row_by_row:
        contrast = np.log(periodogram @ inverse) + mean_log
        return np.where(bounce, _H_GRID[0], _refine_minimum(contrast))
    product = np.concatenate([periodogram[j : j + 1] @ inverse for j in range(len(clean))])
    contrast = np.log(product) + mean_log
    return np.array(
        [
            _GRID_FIRST if flat else float(_refine_one(row)[0])
            for flat, row in zip(bounce.tolist(), contrast, strict=True)
        ]
    )


def _refine_minimum(contrast: FloatArray) -> FloatArray:
    """Vertex of the parabola through each row's grid minimum and its two neighbours.

    A minimum at the edge of the grid stays there: H is reported within [0.01, 0.99].
    """
    if contrast.shape[0] == 1:
        return _refine_one(contrast[0])
    rows = np.arange(contrast.shape[0])
    at = contrast.argmin(axis=1)
    best = np.minimum(np.maximum(at, 1), contrast.shape[1] - 2)
    left, mid, right = contrast[rows, best - 1], contrast[rows, best], contrast[rows, best + 1]
    curvature = left - 2 * mid + right
    # For an interior grid minimum the vertex lies within half a step of it.
    offset = np.where(curvature > 0, 0.5 * (left - right) / np.maximum(curvature, 1e-300), 0.0)
    h: FloatArray = _H_GRID[best] + offset * (_H_GRID[1] - _H_GRID[0])
    h[at == 0] = _H_GRID[0]
    h[at == contrast.shape[1] - 1] = _H_GRID[-1]
    return h


def _refine_one(contrast: FloatArray) -> FloatArray:
    """`_refine_minimum` of one row (the tracker's call, every bar) with Python floats:
    the same IEEE operations in the same order, so the same H to the bit, without the
    dozen small array operations (13.6 -> 1.5 us)."""
    last = contrast.shape[0] - 1
    at = int(contrast.argmin())
    if at == 0 or at == last:
        return np.array([_GRID_FIRST if at == 0 else _GRID_LAST])
    left, mid, right = contrast[at - 1 : at + 2].tolist()
    curvature = left - 2 * mid + right
    offset = 0.5 * (left - right) / max(curvature, 1e-300) if curvature > 0 else 0.0
    return np.array([_GRID_AT[at] + offset * _GRID_STEP])


_GRID_AT: list[float] = _H_GRID.tolist()
_GRID_FIRST, _GRID_LAST = _GRID_AT[0], _GRID_AT[-1]
_GRID_STEP = float(_H_GRID[1] - _H_GRID[0])


# ------------------------------------------------------------------------------ R/S-AL


@lru_cache(maxsize=16)
def _rs_block_sizes(n: int) -> tuple[int, ...]:
    """Block sizes for R/S: divisors of n from 8 up (all data used), else a log-spaced set."""
    divisors = tuple(s for s in range(_RS_MIN_BLOCK, n + 1) if n % s == 0)
    if len(divisors) >= 3:
        return divisors
    spaced = {round(n / 2 ** (j / 2)) for j in range(int(2 * math.log2(n)) + 1)}
    return tuple(sorted(s for s in spaced if _RS_MIN_BLOCK <= s <= n))


def expected_rs(n: int) -> float:
    """Anis-Lloyd expected R/S of n iid normals, with Peters' (n - 1/2)/n small-n factor."""
    i = np.arange(1, n)
    total = float(np.sqrt((n - i) / i).sum())
    if n <= 340:
        front = math.exp(math.lgamma((n - 1) / 2) - math.lgamma(n / 2)) / math.sqrt(math.pi)
    else:
        front = 1 / math.sqrt(n * math.pi / 2)
    return (n - 0.5) / n * front * total


def _rs_al(clean: FloatArray) -> FloatArray:
    """R/S-AL H per row: 0.5 + slope of log(R/S / E[R/S]) against log(block size)."""
    n = clean.shape[1]
    sizes = _rs_block_sizes(n)
    log_sizes = np.log(np.array(sizes, dtype=np.float64))
    excess = np.stack([_mean_log_rs(clean, s) - math.log(expected_rs(s)) for s in sizes], axis=1)
    weight = np.isfinite(excess).astype(np.float64)
    excess = np.where(weight > 0, excess, 0.0)
    count = weight.sum(axis=1)
    safe_count = np.maximum(count, 1.0)
    x_mean = (weight * log_sizes).sum(axis=1) / safe_count
    y_mean = (weight * excess).sum(axis=1) / safe_count
    dx = (log_sizes - x_mean[:, np.newaxis]) * weight
    sxx = (dx * dx).sum(axis=1)
    sxy = (dx * (excess - y_mean[:, np.newaxis])).sum(axis=1)
    slope = sxy / np.where(sxx > 0, sxx, 1.0)
    h: FloatArray = np.where((count >= 2) & (sxx > 0), 0.5 + slope, np.nan)
    return h


def _mean_log_rs(clean: FloatArray, size: int) -> FloatArray:
    """log of the mean R/S over the non-overlapping blocks of ``size`` (latest data kept)."""
    blocks = clean.shape[1] // size
    cut = clean[:, clean.shape[1] - blocks * size :].reshape(clean.shape[0], blocks, size)
    centred = cut - cut.mean(axis=2, keepdims=True)
    walk = np.cumsum(centred, axis=2)
    spread = np.maximum(walk.max(axis=2), 0.0) - np.minimum(walk.min(axis=2), 0.0)
    sigma = centred.std(axis=2)
    valid = sigma > 0
    ratio = np.where(valid, spread / np.where(valid, sigma, 1.0), 0.0)
    count = valid.sum(axis=1)
    mean = ratio.sum(axis=1) / np.maximum(count, 1)
    log_mean: FloatArray = np.full(clean.shape[0], np.nan)
    ok = (count > 0) & (mean > 0)
    log_mean[ok] = np.log(mean[ok])
    return log_mean


# ------------------------------------------------------------------------------ tracker


def confirm_step(
    candidate: Regime, run: int, published: Regime, raw: Regime, confirm_bars: int
) -> tuple[Regime, int, Regime]:
    """One bar of the confirmation rule: publish ``raw`` once it has held for
    ``confirm_bars`` consecutive bars. Returns (candidate, run, published)."""
    if raw == candidate:
        run += 1
    else:
        candidate, run = raw, 1
    if run >= confirm_bars:
        published = raw
    return candidate, run, published


def trend_sign(net_log_return: float) -> int:
    """Direction of the window's net log return (exactly summed); 0 when flat."""
    if abs(net_log_return) <= _FLAT_NET_RETURN:
        return 0
    return 1 if net_log_return > 0 else -1


@fast_init
@dataclass(frozen=True, slots=True)
class HurstReading:
    """One bar's Hurst view of a symbol: H with its +- band, raw and published regime."""

    h: float | None
    band: float
    raw_regime: Regime
    regime: Regime
    trend_sign: int
    returns_seen: int


class HurstTracker:
    """Streaming per-symbol regime: feed every bar's close to ``update``.

    The published regime follows the raw label only after it has agreed for
    ``confirm_bars`` consecutive bars (1 = the plan's raw rule), because on a series
    whose true H never changes the raw label still flips every 13-21 bars.
    """

    def __init__(
        self,
        *,
        window: int = WINDOW_RETURNS,
        trend_above: float = TREND_ABOVE,
        noise_below: float = NOISE_BELOW,
        confirm_bars: int = CONFIRM_BARS,
        method: str = DEFAULT_METHOD,
        history_len: int = HISTORY_LEN,
    ) -> None:
        if window < MIN_POINTS:
            raise ValueError(f"window must be at least {MIN_POINTS} returns, got {window}")
        if not 0.0 < noise_below <= trend_above < 1.0:
            raise ValueError(
                "need 0 < noise_below <= trend_above < 1, "
                f"got noise_below={noise_below}, trend_above={trend_above}"
            )
        if confirm_bars < 1:
            raise ValueError(f"confirm_bars must be at least 1, got {confirm_bars}")
        if history_len < 1:
            raise ValueError(f"history_len must be at least 1, got {history_len}")
        self.window = window
        self.trend_above = trend_above
        self.noise_below = noise_below
        self.confirm_bars = confirm_bars
        self.method = check_method(method)
        self.history_len = history_len
        self.band = _band(window, _WHITTLE_BAND if method == "whittle" else _RS_AL_BAND)
        self.rejected = 0
        self._returns: deque[float] = deque(maxlen=window)
        self._last_close: float | None = None
        self._returns_seen = 0
        self._candidate = Regime.WARMING
        self._run = 0
        self._published = Regime.WARMING
        self._history: deque[float] = deque(maxlen=history_len)
        self._reading = self._warming_reading()

    @property
    def reading(self) -> HurstReading:
        """The latest reading (WARMING until the window is full)."""
        return self._reading

    @property
    def history(self) -> tuple[float, ...]:
        """Recent H values, oldest first (nan where the window was flat)."""
        return tuple(self._history)

    def update(self, close: float) -> HurstReading:
        """Take one bar's close; a non-positive or non-finite close is ignored and counted."""
        if not (math.isfinite(close) and close > 0):
            self.rejected += 1
            return self._reading
        if self._last_close is not None:
            self._returns.append(math.log(close / self._last_close))
            self._returns_seen += 1
        self._last_close = float(close)
        if len(self._returns) < self.window:
            self._reading = self._warming_reading()
            return self._reading
        h = self._estimate()
        self._history.append(h)
        raw = classify(h, self.trend_above, self.noise_below)
        self._confirm(raw)
        self._reading = self._make_reading(h, raw)
        return self._reading

    def _estimate(self) -> float:
        window = np.fromiter(self._returns, dtype=np.float64, count=self.window)
        return float(hurst_exponents(window[np.newaxis, :], self.method)[0])

    def _confirm(self, raw: Regime) -> None:
        self._candidate, self._run, self._published = confirm_step(
            self._candidate, self._run, self._published, raw, self.confirm_bars
        )

    def _trend_sign(self) -> int:
        return trend_sign(math.fsum(self._returns))

    def _make_reading(self, h: float, raw: Regime) -> HurstReading:
        return HurstReading(
            h=None if math.isnan(h) else h,
            band=self.band,
            raw_regime=raw,
            regime=self._published,
            trend_sign=self._trend_sign(),
            returns_seen=self._returns_seen,
        )

    def _warming_reading(self) -> HurstReading:
        return HurstReading(
            h=None,
            band=self.band,
            raw_regime=Regime.WARMING,
            regime=Regime.WARMING,
            trend_sign=0,
            returns_seen=self._returns_seen,
        )

    # ----------------------------------------------------------------------- persistence

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state, so a restart resumes without warming up again."""
        return {
            "last_close": self._last_close,
            "returns": list(self._returns),
            "returns_seen": self._returns_seen,
            "candidate": self._candidate.value,
            "run": self._run,
            "published": self._published.value,
            "history": [None if math.isnan(h) else h for h in self._history],
            "rejected": self.rejected,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], **kwargs: Any) -> HurstTracker:
        """Rebuild a tracker from ``to_state`` output; ValueError when it is malformed.

        ``kwargs`` are the constructor's settings. If ``window`` has grown since the state
        was saved, the tracker keeps the returns it has and warms up again; if it shrank,
        only the latest returns are kept.
        """
        tracker = cls(**kwargs)
        if not isinstance(state, Mapping):
            raise ValueError(f"Hurst state must be a mapping, got {type(state).__name__}")
        returns = [v for v in _float_list(state, "returns", allow_none=False) if v is not None]
        history = _float_list(state, "history", allow_none=True)
        last_close = _optional_positive(state, "last_close")
        returns_seen = _count(state, "returns_seen")
        run = _count(state, "run")
        rejected = _count(state, "rejected")
        candidate = _regime(state, "candidate")
        published = _regime(state, "published")
        if returns and last_close is None:
            raise ValueError("Hurst state has returns but no last_close")
        if returns_seen < len(returns):
            raise ValueError("Hurst state returns_seen is smaller than its window of returns")
        tracker._last_close = last_close
        tracker._returns.extend(returns)
        tracker._returns_seen = returns_seen
        tracker.rejected = rejected
        tracker._history.extend(math.nan if h is None else h for h in history)
        if len(tracker._returns) == tracker.window:
            tracker._candidate, tracker._run, tracker._published = candidate, run, published
            h = tracker._estimate()
            tracker._reading = tracker._make_reading(
                h, classify(h, tracker.trend_above, tracker.noise_below)
            )
        else:
            tracker._reading = tracker._warming_reading()
        return tracker


def _float_list(state: Mapping[str, Any], key: str, *, allow_none: bool) -> list[float | None]:
    values = state.get(key)
    if not isinstance(values, list):
        raise ValueError(f"Hurst state {key!r} must be a list")
    out: list[float | None] = []
    for value in values:
        if value is None and allow_none:
            out.append(None)
        elif _is_number(value) and math.isfinite(value):
            out.append(float(value))
        else:
            raise ValueError(f"Hurst state {key!r} holds a bad value: {value!r}")
    return out


def _optional_positive(state: Mapping[str, Any], key: str) -> float | None:
    value = state.get(key)
    if value is None:
        return None
    if not (_is_number(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"Hurst state {key!r} must be a positive number or null, got {value!r}")
    return float(value)


def _count(state: Mapping[str, Any], key: str) -> int:
    value = state.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"Hurst state {key!r} must be a non-negative integer, got {value!r}")
    return value


def _regime(state: Mapping[str, Any], key: str) -> Regime:
    value = state.get(key)
    if not isinstance(value, str):
        raise ValueError(f"Hurst state {key!r} must be a regime name, got {value!r}")
    try:
        return Regime(value)
    except ValueError:
        accepted = ", ".join(r.value for r in Regime)
        raise ValueError(f"Hurst state {key!r} must be one of {accepted}, got {value!r}") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
