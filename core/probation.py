"""Symbol probation: a symbol that loses money in the golden hour trades at a capped size.

DESIGN.md "Learning loop": a symbol whose live profit factor over its golden-hour trades in
the last `lookback_h` (with at least `min_trades` of them) is below `probation_enter_pf`
goes to PROBATION, where its size multiple is capped at `sizing.probation_cap`; it returns
to ACTIVE when that profit factor is at or above `probation_exit_pf` again. The operator may
release a symbol at once.

After an operator release the symbol is judged only on trades entered after the release:
otherwise the next cycle would read the very trades that put it on probation and send it
straight back, and a release would last at most one learning interval.

Each transition is a `ProbationTransition` with its reason and figures; this module decides,
the learning loop records and announces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .config import Config, LearningConfig
from .errors import CommandError
from .profit_factor import format_pf, pf_below, profit_factor
from .store import from_finite
from .trades import ClosedTrade, Ledger
from .types import SymbolState


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    """What the learning loop decided about one symbol; persisted in `symbol_states.json`."""

    symbol: str
    state: SymbolState = SymbolState.ACTIVE
    slippage_buffer_bps: float = 0.0
    state_changed_s: float | None = None
    state_reason: str = ""
    golden_pf: float | None = None  # as of the last cycle that judged the symbol
    golden_trades: int = 0
    released_s: float | None = None  # last operator release: older trades no longer count
    buffer_raised_s: float | None = None  # last buffer raise: the next needs newer trades

    def size_cap(self, config: Config) -> float:
        """Largest size multiple for new entries on this symbol."""
        if self.state is SymbolState.PROBATION:
            return config.sizing.probation_cap
        return 1.0

    def to_record(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "slippage_buffer_bps": self.slippage_buffer_bps,
            "state_changed_s": self.state_changed_s,
            "state_reason": self.state_reason,
            "golden_pf": self.golden_pf,
            "golden_trades": self.golden_trades,
            "released_s": self.released_s,
            "buffer_raised_s": self.buffer_raised_s,
        }

    @classmethod
    def from_record(cls, symbol: str, record: Mapping[str, Any]) -> SymbolStatus:
        """Inverse of `to_record`; ValueError/KeyError/TypeError on a malformed record."""
        buffer_bps = from_finite(record["slippage_buffer_bps"])
        if not math.isfinite(buffer_bps) or buffer_bps < 0:
            raise ValueError(f"{symbol}: slippage_buffer_bps must be a number >= 0")
        golden_trades = record.get("golden_trades", 0)
        if not isinstance(golden_trades, int) or golden_trades < 0:
            raise ValueError(f"{symbol}: golden_trades must be a count")
        return cls(
            symbol=symbol,
            state=SymbolState(record["state"]),
            slippage_buffer_bps=buffer_bps,
            state_changed_s=optional_time_s(record.get("state_changed_s")),
            state_reason=str(record.get("state_reason", "")),
            golden_pf=_optional_pf(record.get("golden_pf")),
            golden_trades=golden_trades,
            released_s=optional_time_s(record.get("released_s")),
            buffer_raised_s=optional_time_s(record.get("buffer_raised_s")),
        )


def optional_time_s(value: Any) -> float | None:
    """A saved time in seconds, or None; ValueError on anything else."""
    if value is None:
        return None
    t = from_finite(value)
    if not math.isfinite(t):
        raise ValueError("a time must be a finite number of seconds")
    return t


def _optional_pf(value: Any) -> float | None:
    if value is None:
        return None
    pf = from_finite(value)
    if math.isnan(pf) or pf < 0:
        raise ValueError("a profit factor must be >= 0 or inf")
    return pf


def initial_status(symbol: str, config: Config) -> SymbolStatus:
    """A symbol the learning loop has not judged yet: ACTIVE, the starting buffer."""
    return SymbolStatus(symbol, slippage_buffer_bps=config.gates.initial_slippage_buffer_bps)


@dataclass(frozen=True, slots=True)
class ProbationTransition:
    """One change of a symbol's state, with the figures behind it."""

    symbol: str
    before: SymbolState
    after: SymbolState
    time_s: float
    reason: str
    golden_pf: float | None
    golden_trades: int
    by_operator: bool = False

    @property
    def message(self) -> str:
        return f"{self.before.value} -> {self.after.value}: {self.reason}"

    def to_record(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "before": self.before.value,
            "after": self.after.value,
            "time_s": self.time_s,
            "reason": self.reason,
            "golden_pf": self.golden_pf,
            "golden_trades": self.golden_trades,
            "by_operator": self.by_operator,
        }


@dataclass(frozen=True, slots=True)
class ProbationCheck:
    """What one cycle saw for one symbol's golden-hour trades, and what it decided."""

    symbol: str
    golden_trades: int
    golden_pf: float | None
    before: SymbolState
    after: SymbolState
    verdict: str  # one line an operator can read

    def to_record(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "golden_trades": self.golden_trades,
            "golden_pf": self.golden_pf,
            "before": self.before.value,
            "after": self.after.value,
            "verdict": self.verdict,
        }


def golden_hour_trades(
    trades: Iterable[ClosedTrade],
    symbol: str,
    now_s: float,
    config: LearningConfig,
    *,
    since_s: float | None = None,
) -> list[ClosedTrade]:
    """The symbol's live trades entered in the golden hour and closed in the lookback window.

    `since_s` (an operator release) drops trades entered before it.
    """
    window_start_s = now_s - config.lookback_h * 3600.0
    return [
        t
        for t in trades
        if t.ledger is Ledger.LIVE
        and t.symbol == symbol
        and t.golden_hour_entry
        and window_start_s < t.exit_s <= now_s
        and (since_s is None or t.entry_s >= since_s)
    ]


def judge_probation(
    status: SymbolStatus,
    live_trades: Iterable[ClosedTrade],
    now_s: float,
    config: LearningConfig,
) -> tuple[SymbolStatus, ProbationCheck, ProbationTransition | None]:
    """Run the state machine for one symbol; the new status, what was seen, any transition."""
    since_s = status.released_s
    golden = golden_hour_trades(live_trades, status.symbol, now_s, config, since_s=since_s)
    n = len(golden)
    pf = profit_factor(golden)
    figures = f"golden-hour PF {format_pf(pf)} over {n} trade{'s' if n != 1 else ''}"
    after = status.state
    if n < config.min_trades or pf is None:
        verdict = f"{figures}: fewer than {config.min_trades}, not judged"
    elif status.state is SymbolState.ACTIVE:
        if pf_below(pf, config.probation_enter_pf):
            after, verdict = SymbolState.PROBATION, f"{figures} < {config.probation_enter_pf:.2f}"
        else:
            verdict = f"{figures} >= {config.probation_enter_pf:.2f}"
    elif pf_below(pf, config.probation_exit_pf):
        verdict = f"{figures} < {config.probation_exit_pf:.2f}"
    else:
        after, verdict = SymbolState.ACTIVE, f"{figures} >= {config.probation_exit_pf:.2f}"
    check = ProbationCheck(status.symbol, n, pf, status.state, after, verdict)
    # the figures shown beside the reason are the ones it states, every cycle
    judged = replace(status, golden_pf=pf, golden_trades=n, state_reason=verdict)
    if after is status.state:
        return judged, check, None
    transition = ProbationTransition(status.symbol, status.state, after, now_s, verdict, pf, n)
    moved = replace(judged, state=after, state_changed_s=now_s, state_reason=verdict)
    return moved, check, transition


def release(status: SymbolStatus, now_s: float) -> tuple[SymbolStatus, ProbationTransition]:
    """Operator release from probation; CommandError when the symbol is not on probation."""
    if status.state is not SymbolState.PROBATION:
        raise CommandError(f"{status.symbol} is not on probation (it is {status.state.value})")
    reason = "released by the operator; judged afresh on trades entered from now"
    transition = ProbationTransition(
        status.symbol,
        SymbolState.PROBATION,
        SymbolState.ACTIVE,
        now_s,
        reason,
        status.golden_pf,
        status.golden_trades,
        by_operator=True,
    )
    released = replace(
        status,
        state=SymbolState.ACTIVE,
        state_changed_s=now_s,
        state_reason=reason,
        released_s=now_s,
        golden_pf=None,  # judged afresh: no trade counts yet
        golden_trades=0,
    )
    return released, transition
