"""The gate pipeline between a signal and an order (DESIGN.md "Gates, in order").

Each gate is one small class answering one question for one signal: block it or not, and why,
in words an operator can read. They run in DESIGN order and the first block decides:

1. PAUSED          the operator paused new entries (exits keep running);
2. GOLDEN_HOUR     outside the golden hour no new entry;
3. COOLDOWN        the operator closed this symbol's position less than
                   `operator_cooldown_min` ago (a close by hand is not an invitation to
                   re-enter on the next bar);
4. MAX_POSITIONS   at most `max_positions` open (pending entries count: they will fill);
5. FEE_EDGE        the expected edge must cover round-trip fees plus the symbol's buffer;
6. WHALE_CONFLICT  the whales must not be trading against the signal.

MAX_POSITIONS, FEE_EDGE and WHALE_CONFLICT are guards the operator may switch off; a
switched-off guard is recorded as skipped.
The `Decision` keeps the gates passed, the one that blocked (if any) and the final size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from .config import GateConfig
from .frozen import fast_init
from .golden_hour import GoldenHour
from .sizing import SizeBreakdown
from .strategy import Signal
from .types import SWITCHABLE_GUARDS, BlockReason


@fast_init
@dataclass(frozen=True, slots=True)
class GateContext:
    """Everything a gate may look at besides the signal itself."""

    signal: Signal
    paused: bool
    open_positions: int  # live positions plus entry orders waiting for their fill
    slippage_buffer_bps: float
    cooldown_until_s: float | None = None  # the operator closed the symbol: no entry before


class Gate(Protocol):
    reason: BlockReason

    def check(self, ctx: GateContext) -> str | None:
        """None to let the signal through, else why it is blocked (plain words)."""
        ...


class PausedGate:
    reason = BlockReason.PAUSED
    detail = "entries are paused by the operator"

    def check(self, ctx: GateContext) -> str | None:
        return self.detail if ctx.paused else None


class GoldenHourGate:
    reason = BlockReason.GOLDEN_HOUR

    def __init__(self, window: GoldenHour) -> None:
        self.window = window
        #: why a signal is blocked, the same words every time (the window is frozen)
        self.closed_detail = f"outside the golden hour ({window.describe()})"

    def check(self, ctx: GateContext) -> str | None:
        if self.window.is_open(ctx.signal.time_s):
            return None
        return self.closed_detail


class CooldownGate:
    reason = BlockReason.COOLDOWN

    def check(self, ctx: GateContext) -> str | None:
        until = ctx.cooldown_until_s
        if until is None or ctx.signal.time_s >= until:
            return None
        clock = datetime.fromtimestamp(until, UTC).strftime("%H:%M UTC")
        return f"closed by the operator: no new entry before {clock}"


class MaxPositionsGate:
    reason = BlockReason.MAX_POSITIONS

    def __init__(self, max_positions: int) -> None:
        self.max_positions = max_positions

    def check(self, ctx: GateContext) -> str | None:
        if ctx.open_positions < self.max_positions:
            return None
        return f"{ctx.open_positions} positions open, the most allowed is {self.max_positions}"


class FeeEdgeGate:
    reason = BlockReason.FEE_EDGE

    def __init__(self, fee_bps: float) -> None:
        self.fee_bps = fee_bps

    def hurdle_bps(self, slippage_buffer_bps: float) -> float:
        """Round-trip fees plus the symbol's slippage buffer."""
        return 2.0 * self.fee_bps + slippage_buffer_bps

    def check(self, ctx: GateContext) -> str | None:
        hurdle = self.hurdle_bps(ctx.slippage_buffer_bps)
        edge = ctx.signal.expected_edge_bps
        if edge >= hurdle:
            return None
        return (
            f"expected edge {edge:.1f} bps < fees {2.0 * self.fee_bps:g} bps"
            f" + buffer {ctx.slippage_buffer_bps:g} bps"
        )


class WhaleConflictGate:
    reason = BlockReason.WHALE_CONFLICT

    def check(self, ctx: GateContext) -> str | None:
        whale = ctx.signal.whale_direction
        if whale.sign != -ctx.signal.side.sign:
            return None
        return f"whales are {'buying' if whale.sign > 0 else 'selling'} against a {ctx.signal.side}"


@fast_init
@dataclass(frozen=True, slots=True)
class Decision:
    """What the gates made of one signal, and the size it would trade at."""

    signal: Signal
    passed: tuple[BlockReason, ...]
    skipped: tuple[BlockReason, ...]  # guards the operator switched off
    blocked_by: BlockReason | None
    detail: str  # why it was blocked; empty when it passed
    size: SizeBreakdown
    golden_hour_open: bool

    @property
    def allowed(self) -> bool:
        return self.blocked_by is None

    @property
    def size_multiplier(self) -> float:
        return self.size.multiplier


class GatePipeline:
    """The five gates in DESIGN order."""

    def __init__(self, config: GateConfig) -> None:
        self.golden_hour = GoldenHour.from_config(config)
        self.fee_edge = FeeEdgeGate(config.fee_bps)
        self._golden_gate = GoldenHourGate(self.golden_hour)
        self.gates: tuple[Gate, ...] = (
            PausedGate(),
            self._golden_gate,
            CooldownGate(),
            MaxPositionsGate(config.max_positions),
            self.fee_edge,
            WhaleConflictGate(),
        )
        self._steps = tuple((g, g.reason, g.reason in SWITCHABLE_GUARDS) for g in self.gates)
        # (passed, skipped) per outcome: the gate that blocked and the guards switched off
        # before it decide both, and a signal bar's decision needs no new tuples
        self._outcomes: dict[int, tuple[tuple[BlockReason, ...], tuple[BlockReason, ...]]] = {}
        self._paused_gate = self.gates[0]
        self._past_pause = (BlockReason.PAUSED,)
        self._paused_block = (BlockReason.PAUSED, PausedGate.detail)
        # `decide_early` stands for the first two steps (fixed with them, here)
        self._early = (
            type(self._paused_gate) is PausedGate
            and self._steps[0][0] is self._paused_gate
            and self._steps[1][0] is self._golden_gate
        )

    def decide_early(self, signal: Signal, paused: bool, size: SizeBreakdown) -> Decision | None:
        """`decide`'s answer when the pause or the golden hour blocks `signal`: the first two
        gates, which read nothing but the switch and the signal's time (most signal bars
        of a day end here, at night), so no `GateContext` is made. None when both let it
        through (or the pipeline's first gates are not these two): then `decide`."""
        early = self.early_block(signal.time_s, paused)
        if early is None:
            return None
        reason, detail = early
        if reason is BlockReason.PAUSED:
            golden_open = self.golden_hour.is_open(signal.time_s)
            return Decision(signal, (), (), reason, detail, size, golden_open)
        return Decision(signal, self._past_pause, (), reason, detail, size, False)

    def early_block(self, time_s: float, paused: bool) -> tuple[BlockReason, str] | None:
        """The first two gates' answer for a signal at `time_s`: (reason, detail) when the
        pause or a closed golden hour blocks it; None when both let it through, or when the
        pipeline does not start with these two (then only `decide` knows)."""
        golden = self._golden_gate
        if not self._early or golden.window is not self.golden_hour:
            return None
        if paused:
            return self._paused_block
        if self.golden_hour.is_open(time_s):
            return None
        return BlockReason.GOLDEN_HOUR, golden.closed_detail

    def early_block_until(self, time_s: float, paused: bool) -> float:
        """The time before which `early_block`'s answer at `time_s` holds for a later
        signal (the switch unchanged): the golden hour's next change, or never."""
        return math.inf if paused else self.golden_hour.next_change_s(time_s)

    def decide(
        self, ctx: GateContext, size: SizeBreakdown, guards_enabled: Mapping[BlockReason, bool]
    ) -> Decision:
        time_s = ctx.signal.time_s
        golden = self._golden_gate
        golden_open = self.golden_hour.is_open(time_s)
        # the golden-hour gate reads the same window (unless someone gave the pipeline
        # another one): its answer is the one just read, not a second reading
        golden_known = golden.window is self.golden_hour
        blocked_by: BlockReason | None = None
        detail = ""
        steps = self._steps
        at = len(steps)  # the step that blocked; len(steps): none did
        off = 0  # bit i: step i is a guard switched off
        for i, (gate, reason, switchable) in enumerate(steps):
            if switchable and not guards_enabled.get(reason, True):
                off |= 1 << i
                continue
            if gate is golden and golden_known:
                why = None if golden_open else golden.closed_detail
            else:
                why = gate.check(ctx)
            if why is not None:
                blocked_by, detail, at = reason, why, i
                break
        outcome = self._outcomes.get(at << len(steps) | off)
        if outcome is None:
            outcome = self._outcome(at, off)
        return Decision(ctx.signal, outcome[0], outcome[1], blocked_by, detail, size, golden_open)

    def _outcome(
        self, at: int, off: int
    ) -> tuple[tuple[BlockReason, ...], tuple[BlockReason, ...]]:
        """The gates passed and the guards skipped when step `at` blocked (or none did:
        `at` is the number of steps) with the steps of the bits in `off` switched off."""
        reasons = [reason for _, reason, _ in self._steps[:at]]
        outcome = (
            tuple(r for i, r in enumerate(reasons) if not off >> i & 1),
            tuple(r for i, r in enumerate(reasons) if off >> i & 1),
        )
        self._outcomes[at << len(self._steps) | off] = outcome
        return outcome
