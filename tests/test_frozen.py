"""`fast_init`: the per-bar frozen dataclasses build the same objects as before, faster."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import pytest

from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.flow import FlowState
from bigalpha_tui.core.frozen import fast_init
from bigalpha_tui.core.gates import Decision, GateContext
from bigalpha_tui.core.hurst import HurstReading
from bigalpha_tui.core.learning_schedule import LearningSchedule
from bigalpha_tui.core.ledger import GuardTally
from bigalpha_tui.core.strategy import Signal
from bigalpha_tui.core.trades import ClosedTrade
from bigalpha_tui.core.types import Regime, WhaleDirection

FAST = (Bar, FlowState, HurstReading, Signal, GateContext, Decision, GuardTally, ClosedTrade)


@dataclasses.dataclass(frozen=True, slots=True)
class Plain:
    """What the dataclass module itself makes, to compare against."""

    symbol: str
    open_ms: int
    close: float = 1.5
    note: str | None = None


@fast_init
@dataclasses.dataclass(frozen=True, slots=True)
class Fast:
    """The same declaration with `fast_init`."""

    symbol: str
    open_ms: int
    close: float = 1.5
    note: str | None = None


def fields_of(obj: object) -> tuple[object, ...]:
    return tuple(getattr(obj, f.name) for f in dataclasses.fields(obj))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("X", 1), {}),
        (("X", 1, 2.5), {}),
        (("X",), {"open_ms": 3, "note": "n"}),
        ((), {"note": None, "close": 0.0, "open_ms": 0, "symbol": ""}),
    ],
)
def test_fast_init_builds_what_the_dataclass_init_builds(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, fast = Plain(*args, **kwargs), Fast(*args, **kwargs)  # type: ignore[arg-type]
    assert fields_of(fast) == fields_of(plain)
    assert repr(fast).replace("Fast", "Plain") == repr(plain)
    assert pickle.loads(pickle.dumps(fast)) == fast
    assert dataclasses.replace(fast, close=9.0).close == 9.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.close = 2.0  # type: ignore[misc]


def test_fast_init_refuses_what_the_dataclass_init_would_do_differently() -> None:
    with pytest.raises(TypeError):
        Fast("X")  # a missing argument, as before
    with pytest.raises(TypeError):
        Fast("X", 1, 2.0, None, 5)  # one too many
    with pytest.raises(TypeError):
        Fast("X", 1, symbol="Y")  # twice

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithFactory:
        values: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPostInit:
        value: int

        def __post_init__(self) -> None:
            raise AssertionError

    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        value: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        value: int

    for cls in (WithFactory, WithPostInit, NoSlots, NotFrozen):
        with pytest.raises(TypeError):
            fast_init(cls)


@pytest.mark.parametrize("cls", [*FAST, LearningSchedule])
def test_the_per_bar_classes_keep_their_signature(cls: type) -> None:
    """Same parameter names, order and defaults as the dataclass declares."""
    params = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields, strict=True):
        want = inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        assert p.default == want or p.default is want


def test_a_bar_and_its_features_are_built_as_before() -> None:
    bar = Bar("AVAXUSDT", 60_000, 10.0, 11.0, 9.0, 10.5, 100.0, 60.0)
    assert (bar.interval_ms, bar.cross_buy_ratio, bar.has_flow) == (60_000, None, True)
    assert bar.close_s == bar.close_ms / 1000.0 == 120.0
    flow = FlowState("AVAXUSDT", cvd=2.0, direction=WhaleDirection.BUY)
    assert (flow.cvd, flow.whale_cvd, flow.direction, flow.flow_available) == (
        2.0,
        0.0,
        WhaleDirection.BUY,
        True,
    )
    reading = HurstReading(0.6, 0.07, Regime.TRUE_TREND, Regime.RANDOM, 1, 120)
    assert reading == HurstReading(
        h=0.6,
        band=0.07,
        raw_regime=Regime.TRUE_TREND,
        regime=Regime.RANDOM,
        trend_sign=1,
        returns_seen=120,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        bar.close = 1.0  # type: ignore[misc]
