"""The guard report counts every blocked decision: checked against an independent count.

On ten days of a real month of Binance 1-minute klines, the gates' inputs are recomputed
here from the raw rows with plain formulas (OFI over 5 bars, ATR over 14, whale bars and
whale CVD over 60, the golden hour as UTC hours), without any of the core's classes, and
every signal the core had to decide (no position of its own open) is put through the gates
in DESIGN order. FEE_EDGE and WHALE_CONFLICT must be blocked exactly as often as the core's
guard report says, and each must come out in the dozens: a symbol's open blocked twin used
to silence every later block on that symbol, and the report showed 3 and 0.
"""

from __future__ import annotations

import dataclasses
import gzip
import math
from collections import Counter
from pathlib import Path

import anyio
import pytest

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.sources.replay import ReplaySource
from bigalpha_tui.core.store import GUARD_BLOCKS, Store
from bigalpha_tui.core.trades import ClosedTrade, Ledger
from bigalpha_tui.core.trading_view import guard_views

MONTH = "binance_um_klines_1m/AVAXUSDT-1m-2026-02.csv.gz"
DAYS = 10
ROWS = DAYS * 24 * 60


def rows(path: Path) -> list[tuple[int, float, float, float, float, float]]:
    """(open_ms, high, low, close, volume, taker_buy) of the first ROWS rows."""
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            f = line.strip().split(",")
            if not f[0].isdigit():
                continue
            out.append((int(f[0]), float(f[2]), float(f[3]), float(f[4]), float(f[5]), float(f[9])))
            if len(out) == ROWS:
                break
    return out


def independent_blocks(
    bars: list[tuple[int, float, float, float, float, float]],
    in_position: list[tuple[float, float]],
    config: Config,
) -> Counter[str]:
    """Reason of every blocked decision, from the raw rows and the core's live trades."""
    s, g, f = config.strategy, config.gates, config.flow
    counts: Counter[str] = Counter()
    window = f.window_bars
    whale_flags: list[bool] = []
    for i, (open_ms, _, _, close, volume, _) in enumerate(bars):
        previous = [b[4] for b in bars[max(0, i - window) : i]]
        mean = math.fsum(previous) / len(previous) if previous else 0.0
        whale = len(previous) == window and mean > 0 and volume > f.whale_volume_multiple * mean
        whale_flags.append(whale)
        if i + 1 < s.atr_bars or i + 1 < s.ofi_bars:
            continue
        last = bars[i + 1 - s.ofi_bars : i + 1]
        last_volume = math.fsum(b[4] for b in last)
        if last_volume <= 0:
            continue
        ofi = math.fsum(2 * b[5] - b[4] for b in last) / last_volume
        if abs(ofi) <= s.ofi_threshold:
            continue
        close_s = open_ms / 1000.0 + 60.0
        if any(entry_s < close_s < exit_s for entry_s, exit_s in in_position):
            continue  # one position per symbol: not a decision
        ranges = []
        for j in range(i + 1 - s.atr_bars, i + 1):
            h, lo, prev = bars[j][1], bars[j][2], bars[j - 1][3] if j > 0 else None
            ranges.append(h - lo if prev is None else max(h - lo, abs(h - prev), abs(lo - prev)))
        atr_bps = 10_000.0 * math.fsum(ranges) / len(ranges) / close
        edge = abs(ofi) * atr_bps * math.sqrt(s.horizon_bars)
        in_view = range(max(0, i + 1 - window), i + 1)
        whale_cvd = math.fsum(2 * bars[k][5] - bars[k][4] for k in in_view if whale_flags[k])
        whale_vol = math.fsum(bars[k][4] for k in in_view if whale_flags[k])
        whale_sign = 0
        any_whale = any(whale_flags[k] for k in in_view)
        if any_whale and whale_vol > 0 and abs(whale_cvd) >= f.neutral_share * whale_vol:
            whale_sign = 1 if whale_cvd > 0 else -1
        hour = (open_ms // 60_000 + 1) % 1440 / 60  # the close, in hours of the UTC day
        if not 9 <= hour < 16:
            counts["GOLDEN_HOUR"] += 1
        elif edge < 2 * g.fee_bps + g.initial_slippage_buffer_bps:
            counts["FEE_EDGE"] += 1
        elif whale_sign == -(1 if ofi > 0 else -1):
            counts["WHALE_CONFLICT"] += 1
    return counts


async def replay(core: Core, source: ReplaySource, limit: int) -> None:
    fed = 0
    async for bar in source.bars(None):
        core.process_bar(bar)
        fed += 1
        if fed == limit:
            return


@pytest.mark.slow
def test_every_fee_edge_and_whale_conflict_block_is_counted(
    shared_data: Path, tmp_path: Path
) -> None:
    path = shared_data / MONTH
    bars = rows(path)
    # the learning loop may not move the buffer: the independent count uses the initial one
    config = Config()
    capped = dataclasses.replace(
        config.learning, buffer_cap_bps=config.gates.initial_slippage_buffer_bps
    )
    config = dataclasses.replace(config, learning=capped)
    clock = SimClock(0.0)
    source = ReplaySource([path], clock)
    core = Core(config, source, clock, Store(tmp_path, durable=False))
    assert core.trading is not None
    closed: list[ClosedTrade] = []
    core.trading.trade_observers.append(closed.append)
    anyio.run(replay, core, source, ROWS)
    assert core.rejected_bars == {}
    in_position = [(t.entry_s, t.exit_s) for t in closed if t.ledger is Ledger.LIVE]
    in_position += [(p.entry_s, math.inf) for p in core.trading.live.values()]
    assert len(in_position) >= 10
    expected = independent_blocks(bars, in_position, config)
    report = {v.reason.value: v.blocked for v in guard_views(core.trading.book)}
    logged = Counter(r["reason"] for r in core.store.iter_jsonl(GUARD_BLOCKS))
    for reason in ("GOLDEN_HOUR", "FEE_EDGE", "WHALE_CONFLICT"):
        assert report[reason] == logged[reason] == expected[reason], reason
    assert expected["FEE_EDGE"] >= 10 and expected["WHALE_CONFLICT"] >= 10, expected
