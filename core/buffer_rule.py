"""The slippage-buffer rule (DESIGN.md "Learning loop").

Per strategy and symbol, over the live trades closed in the lookback window: each live trade
is compared with its own shadow twin (the ideal fill at the signal close, no slippage; linked
by the twin's `twin_of`). With at least `min_trades` such pairs, PF_shadow > `shadow_edge_ratio`
x PF_live means our fills cost more than the fee gate assumed, so the symbol's slippage buffer
rises by `buffer_step_bps`, capped at `buffer_cap_bps`. PF_shadow is the PF of the twins of
exactly those live trades: like with like. Filtering the two ledgers by their own exit times
instead counted a live trade whose twin closed a minute after the cycle on one side only.
A live trade whose twin is still open is left out of both sides until the twin closes.

A raise needs a live trade closed since the symbol's previous raise: a 24-hour window is read
by six 4-hour cycles, and the same trades must not raise the buffer six times (nor keep
raising it while entries are paused).

Profit-factor edge cases: PF_live = inf (no losing live trade) can never be beaten, so no
raise; PF_shadow = inf with a finite PF_live is a gap, so a raise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .config import LearningConfig
from .profit_factor import format_pf, pf_above, profit_factor
from .trades import ClosedTrade


class BufferVerdict(StrEnum):
    RAISED = "raised"
    AT_CAP = "gap, buffer already at cap"
    NO_GAP = "no gap"
    NO_NEW_TRADES = "gap, but no live trade closed since the last raise"
    TOO_FEW_TRADES = "too few live trades"
    NO_SHADOW = "no shadow outcomes"  # kept so older history lines still read
    LIVE_UNBEATABLE = "live PF infinite"


def shadow_gap(pf_live: float | None, pf_shadow: float | None, ratio: float) -> bool:
    """PF_shadow > ratio x PF_live, with the edge cases of the module doc."""
    if pf_live is None or pf_shadow is None or math.isinf(pf_live):
        return False
    if math.isinf(pf_shadow):
        return True
    return pf_above(pf_shadow, ratio * pf_live)


@dataclass(frozen=True, slots=True)
class BufferCheck:
    """One strategy and symbol in one cycle: the two profit factors and the verdict."""

    strategy: str
    symbol: str
    live_trades: int
    shadow_trades: int
    pf_live: float | None
    pf_shadow: float | None
    verdict: BufferVerdict
    buffer_before_bps: float
    buffer_after_bps: float
    unpaired_live: int = 0  # live trades in the window whose twin is still open

    @property
    def message(self) -> str:
        figures = (
            f"PF shadow {format_pf(self.pf_shadow)} vs live {format_pf(self.pf_live)}"
            f" over {self.live_trades} paired live trades"
        )
        if self.verdict is BufferVerdict.RAISED:
            return (
                f"slippage buffer {self.buffer_before_bps:g} -> {self.buffer_after_bps:g} bps"
                f" ({self.strategy}: {figures})"
            )
        return f"{self.strategy}: {figures}: {self.verdict.value}"

    def to_record(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "live_trades": self.live_trades,
            "shadow_trades": self.shadow_trades,
            "pf_live": self.pf_live,
            "pf_shadow": self.pf_shadow,
            "verdict": self.verdict.value,
            "buffer_before_bps": self.buffer_before_bps,
            "buffer_after_bps": self.buffer_after_bps,
            "unpaired_live": self.unpaired_live,
        }


def paired_twins(
    live: Iterable[ClosedTrade], shadow: Iterable[ClosedTrade]
) -> list[tuple[ClosedTrade, ClosedTrade]]:
    """Each live trade with its closed shadow twin; a live trade whose twin is still open
    (or was never recorded) has no pair yet."""
    twins = {t.twin_of: t for t in shadow if t.twin_of is not None}
    return [(t, twins[t.id]) for t in live if t.id in twins]


def check_buffer(
    strategy: str,
    symbol: str,
    pairs: list[tuple[ClosedTrade, ClosedTrade]],
    buffer_bps: float,
    config: LearningConfig,
    raised_s: float | None = None,
    unpaired: int = 0,
) -> BufferCheck:
    """The buffer rule for one strategy and symbol over its (live, twin) pairs in the window.

    `raised_s` is when the symbol's buffer last rose: a further raise needs a live trade
    closed after it, so one batch of trades raises the buffer once, not at every cycle
    that still sees it in the window.
    """
    live = [t for t, _ in pairs]
    pf_live = profit_factor(live)
    pf_shadow = profit_factor(twin for _, twin in pairs)
    after = buffer_bps
    if len(pairs) < config.min_trades or pf_live is None or pf_shadow is None:
        verdict = BufferVerdict.TOO_FEW_TRADES
    elif math.isinf(pf_live):
        verdict = BufferVerdict.LIVE_UNBEATABLE
    elif not shadow_gap(pf_live, pf_shadow, config.shadow_edge_ratio):
        verdict = BufferVerdict.NO_GAP
    elif raised_s is not None and not any(t.exit_s > raised_s for t in live):
        verdict = BufferVerdict.NO_NEW_TRADES
    elif buffer_bps >= config.buffer_cap_bps:
        verdict = BufferVerdict.AT_CAP
    else:
        verdict = BufferVerdict.RAISED
        after = min(buffer_bps + config.buffer_step_bps, config.buffer_cap_bps)
    return BufferCheck(
        strategy,
        symbol,
        len(pairs),
        len(pairs),
        pf_live,
        pf_shadow,
        verdict,
        buffer_bps,
        after,
        unpaired,
    )


def buffer_checks(
    live: list[ClosedTrade],
    shadow: list[ClosedTrade],
    buffers: Mapping[str, tuple[float, float | None]],
    config: LearningConfig,
) -> list[BufferCheck]:
    """The buffer rule per strategy and symbol that traded live in the window.

    `buffers` gives each symbol's buffer and last raise as the cycle began, so a symbol rises
    by at most one step per cycle however many strategies trade it.
    """
    pairs = paired_twins(live, shadow)
    groups = sorted({(t.strategy, t.symbol) for t in live})
    checks = []
    for strategy, symbol in groups:
        group = [(t, s) for t, s in pairs if t.strategy == strategy and t.symbol == symbol]
        in_group = sum(1 for t in live if t.strategy == strategy and t.symbol == symbol)
        buffer_bps, raised_s = buffers[symbol]
        checks.append(
            check_buffer(
                strategy, symbol, group, buffer_bps, config, raised_s, in_group - len(group)
            )
        )
    return checks
