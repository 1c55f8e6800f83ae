"""Hand-made closed trades for the learning-loop tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from bigalpha_tui.core.trades import ClosedTrade, Ledger
from bigalpha_tui.core.types import Conviction, ExitReason, Regime, Side

#: Tuesday 2026-01-06 12:00 UTC: a slot of the 4-hour schedule, inside the golden hour.
NOW_S = datetime(2026, 1, 6, 12, 0, tzinfo=UTC).timestamp()
HOUR_S = 3600.0
STRATEGY = "Alpha-OFI"

_ids = itertools.count(1)


def trade(
    pnl_usd: float,
    *,
    symbol: str = "SOLUSDT",
    ledger: Ledger = Ledger.LIVE,
    exit_s: float = NOW_S - HOUR_S,
    entry_s: float | None = None,
    golden: bool = True,
    strategy: str = STRATEGY,
    twin_of: str | None = None,
) -> ClosedTrade:
    """One closed trade with the given net P&L, closed an hour before NOW_S by default."""
    entry = exit_s - 1800.0 if entry_s is None else entry_s
    return ClosedTrade(
        id=f"t{next(_ids)}",
        ledger=ledger,
        strategy=strategy,
        symbol=symbol,
        side=Side.LONG,
        entry_s=entry,
        exit_s=exit_s,
        entry_price=1000.0,
        exit_price=1000.0 + pnl_usd / 1.0,
        qty=1.0,
        fees_usd=0.1,
        pnl_usd=pnl_usd,
        conviction=Conviction.NORMAL,
        entry_regime=Regime.RANDOM,
        exit_reasons=(ExitReason.T1,),
        golden_hour_entry=golden,
        twin_of=twin_of,
    )


def trades(pnls: list[float], **kwargs: object) -> list[ClosedTrade]:
    return [trade(p, **kwargs) for p in pnls]  # type: ignore[arg-type]


def shadow(
    pnls: list[float], of: list[ClosedTrade] | None = None, **kwargs: object
) -> list[ClosedTrade]:
    """Shadow trades; with `of`, the twins of those live trades (symbol, strategy and exit
    time taken from each, P&Ls padded with break-even twins to one per live trade)."""
    if of is None:
        return [trade(p, ledger=Ledger.SHADOW, **kwargs) for p in pnls]  # type: ignore[arg-type]
    assert len(pnls) <= len(of), "a live trade has one twin"
    padded = [*pnls, *[0.0] * (len(of) - len(pnls))]
    return [
        trade(
            p,
            ledger=Ledger.SHADOW,
            **{"symbol": t.symbol, "strategy": t.strategy, "exit_s": t.exit_s, **kwargs},  # type: ignore[arg-type]
            twin_of=t.id,
        )
        for p, t in zip(padded, of, strict=True)
    ]
