"""Bars as columns: what a batch replay reads instead of one `Bar` object per bar.

A replay knows every bar up front. Building a `Bar` for each of a month's 200,000 rows
costs more than everything numpy does with them, and most bars are never looked at one by
one: the batch loop (`core/batch.py`) reads the columns, and makes a `Bar` only for a bar
the trading rules must see (`BarColumns.bar`).

- `BarColumns`: one symbol's applied bars (strictly increasing open times, every row sane:
  what a fresh core's engines would apply), column by column.
- `BatchInput`: every symbol's columns and the order the core applies their bars in (the
  streaming order: `order[g]` is the symbol code of step g; each symbol's bars come in
  their column order). A step whose code is `REJECTED` carries a bar the core refuses
  (out of order, duplicate or insane: `rejected[g]`), applied through the core as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from .bar import MINUTE_MS, Bar

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: `BatchInput.order` code of a step whose bar the core refuses (`BatchInput.rejected`).
REJECTED = -1


@dataclass(eq=False)
class BarColumns:
    """One symbol's bars as columns, in applied order. `cross_buy_ratio` None: no bar has
    one (kline files); `interval_ms` is every bar's."""

    symbol: str
    open_ms: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    taker_buy_volume: FloatArray
    has_flow: BoolArray
    cross_buy_ratio: list[float | None] | None = None
    interval_ms: int = MINUTE_MS

    def __len__(self) -> int:
        return int(self.open_ms.size)

    @cached_property
    def open_ms_list(self) -> list[int]:
        out: list[int] = self.open_ms.tolist()
        return out

    @cached_property
    def low_list(self) -> list[float]:
        out: list[float] = self.low.tolist()
        return out

    @cached_property
    def high_list(self) -> list[float]:
        out: list[float] = self.high.tolist()
        return out

    @cached_property
    def close_list(self) -> list[float]:
        out: list[float] = self.close.tolist()
        return out

    def bar(self, k: int) -> Bar:
        """The `Bar` of row k, equal to the one the streaming source yields."""
        cross = None if self.cross_buy_ratio is None else self.cross_buy_ratio[k]
        return Bar(
            self.symbol,
            self.open_ms_list[k],
            float(self.open[k]),
            self.high_list[k],
            self.low_list[k],
            self.close_list[k],
            float(self.volume[k]),
            float(self.taker_buy_volume[k]),
            self.interval_ms,
            cross,
            bool(self.has_flow[k]),
        )

    def head(self, stop: int) -> BarColumns:
        """The first `stop` rows (a run stopped early: the engines' state at that bar)."""
        return BarColumns(
            self.symbol,
            self.open_ms[:stop],
            self.open[:stop],
            self.high[:stop],
            self.low[:stop],
            self.close[:stop],
            self.volume[:stop],
            self.taker_buy_volume[:stop],
            self.has_flow[:stop],
            None if self.cross_buy_ratio is None else self.cross_buy_ratio[:stop],
            self.interval_ms,
        )

    @classmethod
    def from_bars(cls, symbol: str, bars: Sequence[Bar]) -> BarColumns:
        """Columns of bars already made (all of `symbol`, in applied order)."""
        n = len(bars)
        intervals = {b.interval_ms for b in bars}
        if len(intervals) > 1:
            raise ValueError(f"{symbol}: bars of several intervals cannot be columns")
        cross = [b.cross_buy_ratio for b in bars]
        return cls(
            symbol,
            np.fromiter((b.open_ms for b in bars), np.int64, n),
            np.fromiter((b.open for b in bars), np.float64, n),
            np.fromiter((b.high for b in bars), np.float64, n),
            np.fromiter((b.low for b in bars), np.float64, n),
            np.fromiter((b.close for b in bars), np.float64, n),
            np.fromiter((b.volume for b in bars), np.float64, n),
            np.fromiter((b.taker_buy_volume for b in bars), np.float64, n),
            np.fromiter((b.has_flow for b in bars), np.bool_, n),
            None if all(c is None for c in cross) else cross,
            intervals.pop() if intervals else MINUTE_MS,
        )


@dataclass(eq=False)
class BatchInput:
    """Every symbol's applied bars as columns, and the streaming order of the steps."""

    symbols: tuple[str, ...]
    columns: list[BarColumns]  # columns[code] is symbols[code]'s
    order: list[int]  # step g applies the next row of columns[order[g]], or a rejected bar
    rejected: dict[int, Bar] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def applied(self) -> int:
        """Steps whose bar the engines apply."""
        return len(self.order) - len(self.rejected)

    @classmethod
    def from_bars(cls, bars: Sequence[Bar], checked: bool = False) -> BatchInput:
        """`bars` in the order a source yields them. A bar the core's engines refuse (not
        later than its symbol's last applied bar, or insane: `Bar.problem`) becomes a
        rejected step. `checked`: every bar already passed `Bar.problem`."""
        own: dict[str, list[Bar]] = {}
        codes: dict[str, int] = {}
        last: dict[str, int] = {}
        order: list[int] = []
        rejected: dict[int, Bar] = {}
        for g, bar in enumerate(bars):
            symbol = bar.symbol
            if bar.open_ms > last.get(symbol, -1) and (checked or bar.problem() is None):
                code = codes.get(symbol)
                if code is None:
                    code = codes[symbol] = len(codes)
                    own[symbol] = []
                own[symbol].append(bar)
                last[symbol] = bar.open_ms
                order.append(code)
            else:
                order.append(REJECTED)
                rejected[g] = bar
        symbols = tuple(codes)
        return cls(symbols, [BarColumns.from_bars(s, own[s]) for s in symbols], order, rejected)
