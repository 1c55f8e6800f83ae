"""The blocked-signal path written for speed says exactly what the plain code said.

About a third of all bars of a month make a signal, almost all blocked (by the golden hour at
night): the decision, the block's record and line, and the folded event line are made by
faster code. Each is checked here against the straightforward version it replaced, on every
kind of decision the gates can make: the same decisions, the same bytes in
`guard_blocks.jsonl`, the same convictions and the same event lines.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from trading_helpers import (
    SYMBOL,
    T0_MS,
    at_utc,
    feed,
    make_loop,
    make_signal,
    signal_bar,
    warm_bars,
)

from bigalpha_tui.core import trading
from bigalpha_tui.core.config import GateConfig, SizingConfig
from bigalpha_tui.core.frozen import slot_maker
from bigalpha_tui.core.gates import Decision, GateContext, GatePipeline
from bigalpha_tui.core.positions import Position
from bigalpha_tui.core.sizing import (
    conviction,
    retail_agrees,
    size_breakdown,
    whales_agree,
)
from bigalpha_tui.core.snapshot import Event, GuardBlockView
from bigalpha_tui.core.store import GUARD_BLOCKS, to_json
from bigalpha_tui.core.strategy import Signal
from bigalpha_tui.core.trading import block_entry, block_line, block_record
from bigalpha_tui.core.types import (
    SWITCHABLE_GUARDS,
    BlockReason,
    Conviction,
    Regime,
    Side,
    WhaleDirection,
)

NIGHT_S = at_utc(20, 0)
DAY_S = at_utc(10, 0)


def reference_decide(
    pipeline: GatePipeline,
    ctx: GateContext,
    size: object,
    guards_enabled: Mapping[BlockReason, bool],
) -> Decision:
    """The gate pipeline as it was first written: every gate asked in order, lists built."""
    passed: list[BlockReason] = []
    skipped: list[BlockReason] = []
    blocked_by: BlockReason | None = None
    detail = ""
    for gate in pipeline.gates:
        if gate.reason in SWITCHABLE_GUARDS and not guards_enabled.get(gate.reason, True):
            skipped.append(gate.reason)
            continue
        why = gate.check(ctx)
        if why is not None:
            blocked_by, detail = gate.reason, why
            break
        passed.append(gate.reason)
    return Decision(
        signal=ctx.signal,
        passed=tuple(passed),
        skipped=tuple(skipped),
        blocked_by=blocked_by,
        detail=detail,
        size=size,  # type: ignore[arg-type]
        golden_hour_open=pipeline.golden_hour.is_open(ctx.signal.time_s),
    )


def guard_sets() -> list[dict[BlockReason, bool]]:
    return [
        dict(zip(SWITCHABLE_GUARDS, flags, strict=True))
        for flags in itertools.product((True, False), repeat=len(SWITCHABLE_GUARDS))
    ]


def contexts() -> list[GateContext]:
    """Every gate blocking in turn, and none, at night and by day."""
    found = []
    for time_s, paused, cooldown, positions, edge, whale, side in itertools.product(
        (NIGHT_S, DAY_S),
        (False, True),
        (None, NIGHT_S + 3600, DAY_S - 3600),
        (0, 5),
        (50.0, 1.0),
        (WhaleDirection.NEUTRAL, WhaleDirection.SELL, WhaleDirection.BUY),
        (Side.LONG, Side.SHORT),
    ):
        signal = make_signal(side, time_s=time_s, edge_bps=edge, whale=whale)
        found.append(GateContext(signal, paused, positions, 2.0, cooldown))
    return found


def test_the_gates_decide_as_every_gate_asked_in_order_did() -> None:
    pipeline = GatePipeline(GateConfig())
    size = size_breakdown(Conviction.NORMAL, Regime.RANDOM, False, SizingConfig())
    reasons = set()
    for ctx, guards in itertools.product(contexts(), guard_sets()):
        expected = reference_decide(pipeline, ctx, size, guards)
        assert pipeline.decide(ctx, size, guards) == expected
        early = pipeline.decide_early(ctx.signal, ctx.paused, size)
        if early is not None:  # what the trading loop reads first
            assert early == expected
        reasons.add(expected.blocked_by)
        # the tuples are kept per outcome: a later decision must not see them change
        assert pipeline.decide(ctx, size, guards).passed == expected.passed
    assert reasons == {*BlockReason, None}  # every gate blocked somewhere, and none


def test_the_early_gates_leave_the_rest_to_the_pipeline() -> None:
    pipeline = GatePipeline(GateConfig())
    size = size_breakdown(Conviction.NORMAL, Regime.RANDOM, False, SizingConfig())
    night, day = make_signal(time_s=NIGHT_S), make_signal(time_s=DAY_S)
    assert pipeline.decide_early(day, False, size) is None  # the golden hour is open
    blocked = pipeline.decide_early(night, False, size)
    assert blocked is not None and blocked.blocked_by is BlockReason.GOLDEN_HOUR
    paused = pipeline.decide_early(day, True, size)
    assert paused is not None and paused.blocked_by is BlockReason.PAUSED
    assert paused.golden_hour_open


def test_conviction_reads_the_signs_as_the_agreement_helpers_do() -> None:
    for side, whale, retail, cross in itertools.product(
        Side,
        WhaleDirection,
        (-0.3, 0.0, 0.2, math.nan),
        (None, 0.3, 0.5, 0.7, math.nan),
    ):
        if not whales_agree(side, whale, cross):
            expected = Conviction.NORMAL
        elif retail_agrees(side, retail):
            expected = Conviction.ULTRA
        else:
            expected = Conviction.HIGH
        assert conviction(side, whale, retail, cross) is expected, (side, whale, retail, cross)


def twin_of(signal: Signal) -> Position:
    """What a block's record reads of its twin: the id."""
    return SimpleNamespace(id=f"B-{signal.id}")  # type: ignore[return-value]


def decisions() -> list[Decision]:
    """Decisions the pipeline makes (blocked by each gate, guards off, passed), each with
    a signal of every layout a record can have: odd texts, numbers the encoder must
    write itself (an int, a numpy float, inf, nan) and plain floats."""
    pipeline = GatePipeline(GateConfig())
    sizes = [
        size_breakdown(level, regime, probation, SizingConfig())
        for level, regime, probation in itertools.product(
            Conviction, (Regime.RANDOM, Regime.TRUE_TREND), (False, True)
        )
    ]
    made = []
    for i, (ctx, guards) in enumerate(itertools.product(contexts()[::7], guard_sets())):
        made.append(pipeline.decide(ctx, sizes[i % len(sizes)], guards))
    signal = made[0].signal
    odd = [
        dict(symbol='BT"C\\USDT\u00e9'),
        dict(price=100),
        dict(ofi=np.float64(0.25)),
        dict(atr_bps=math.inf),
        dict(retail_ofi=math.nan),
        dict(expected_edge_bps=-0.0),
        dict(time_s=1e300, price=1e300),  # each finite, their sum not
        dict(ofi=0.1 + 0.2, atr_bps=1 / 3),
    ]
    for changes in odd:
        odd_signal = dataclasses.replace(signal, **changes)  # type: ignore[arg-type]
        made.append(dataclasses.replace(made[0], signal=odd_signal))
    made.append(dataclasses.replace(made[1], detail="whales are \u201cbuying\u201d\n\tagainst"))
    return made


def test_a_blocks_line_is_the_encoders_text_of_its_record() -> None:
    kinds = set()
    for decision, new_twin in itertools.product(decisions(), (True, False)):
        twin = twin_of(decision.signal)
        record = block_record(decision, twin, new_twin)
        id_record, line = block_entry(decision, twin, new_twin)
        assert line == block_line(record)
        if line is None:  # the log writes the whole record with the encoder
            assert id_record == record
        else:  # the log writes this line and reads the record's id alone
            assert line == to_json(record)
            assert id_record == {"id": record["id"]}
        kinds.add((line is None, decision.blocked_by))
    assert (True, BlockReason.GOLDEN_HOUR) in kinds and (False, BlockReason.GOLDEN_HOUR) in kinds
    assert {reason for _, reason in kinds} == {*BlockReason, None}


def test_the_guard_blocks_file_holds_the_records_the_blocks_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the trading loop: each line reads back as `block_record` of its decision."""
    night_ms = T0_MS + 10 * 3_600_000
    loop = make_loop(tmp_path, clock_s=night_ms / 1000)
    made: list[tuple[Decision, Position, bool]] = []

    def keep(decision: Decision, twin: Position, new_twin: bool) -> tuple[dict[str, Any], Any]:
        made.append((decision, twin, new_twin))
        return block_entry(decision, twin, new_twin)

    monkeypatch.setattr(trading, "block_entry", keep)
    feed(loop, [*warm_bars(start_ms=night_ms)])
    feed(loop, [signal_bar(m, Side.LONG, start_ms=night_ms) for m in (14, 15, 16)])
    loop.store.flush_logs()
    lines = loop.store.path(GUARD_BLOCKS).read_text().splitlines()
    assert len(lines) == len(made) == 3
    assert [new for _, _, new in made] == [True, False, False]
    for line, (decision, twin, new_twin) in zip(lines, made, strict=True):
        assert line == to_json(block_record(decision, twin, new_twin))


def test_a_restored_log_folds_as_a_live_one(tmp_path: Path) -> None:
    """`_folded` given the event's dict (as `emit` gives it) or not: the same line."""
    from test_restart import new_core

    core = new_core(tmp_path)
    core.emit(
        "block", SYMBOL, "LONG blocked by GOLDEN_HOUR: closed", reason="GOLDEN_HOUR", side="LONG"
    )
    core.emit(
        "block", SYMBOL, "LONG blocked by GOLDEN_HOUR: closed", reason="GOLDEN_HOUR", side="LONG"
    )
    data = {"reason": "GOLDEN_HOUR", "side": "LONG", "detail": "closed"}
    event = Event(core.clock.now() + 60, "block", SYMBOL, "LONG blocked", MappingProxyType(data))
    before = list(core.events)
    from_view = core._folded(event)
    core.events.clear()
    core.events.extend(before)
    from_dict = core._folded(event, dict(data))
    assert from_view == from_dict
    assert from_view.data["repeats"] == 3 and from_view.message.startswith("LONG blocked (3x")


def test_a_slot_made_object_is_the_one_its_class_makes() -> None:
    make = slot_maker(GuardBlockView)
    args = (NIGHT_S, SYMBOL, Side.LONG, BlockReason.GOLDEN_HOUR, "outside")
    made, built = make(*args), GuardBlockView(*args)
    assert made == built and repr(made) == repr(built) and hash(made) == hash(built)
    with pytest.raises(FrozenInstanceError):
        made.detail = "changed"  # type: ignore[misc]
    event = slot_maker(Event)(1.0, "block", SYMBOL, "m", MappingProxyType({}))
    assert event == Event(1.0, "block", SYMBOL, "m")


def test_slot_maker_refuses_what_it_would_make_differently() -> None:
    @dataclasses.dataclass
    class Plain:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            raise ValueError("never skipped")

    for cls in (Plain, Checked):
        with pytest.raises(TypeError):
            slot_maker(cls)
