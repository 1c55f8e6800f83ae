"""`fast_init` against the generated `__init__`: the same objects in every way a caller sees."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from dataclasses import FrozenInstanceError, InitVar, dataclass
from functools import partial
from typing import Any, ClassVar

import pytest

from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.frozen import fast_init


@dataclass(frozen=True, slots=True)
class Generated:
    name: str
    price: float
    size: float = 1.5
    tags: tuple[str, ...] = ()
    unit: ClassVar[str] = "usd"


@fast_init
@dataclass(frozen=True, slots=True)
class Fast:
    name: str
    price: float
    size: float = 1.5
    tags: tuple[str, ...] = ()
    unit: ClassVar[str] = "usd"


def _error(call: Any) -> str:
    try:
        call()
    except (TypeError, FrozenInstanceError) as exc:
        return f"{type(exc).__name__}: {exc}".replace("Generated", "X").replace("Fast", "X")
    return "no error"


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("a", 1.0), {}),
        (("a", -0.0, 2.0, ("x",)), {}),
        (("a",), {"price": float("nan")}),
        ((), {"tags": (), "name": "b", "price": 3.0}),
    ],
)
def test_objects_made_by_fast_init_behave_as_the_generated_ones(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    slow, fast = Generated(*args, **kwargs), Fast(*args, **kwargs)
    assert repr(fast).replace("Fast", "Generated") == repr(slow)
    assert (fast == Fast(*args, **kwargs)) == (slow == Generated(*args, **kwargs))
    assert hash(fast) == hash(Fast(*args, **kwargs))
    assert hash(dataclasses.astuple(fast)) == hash(dataclasses.astuple(slow))
    for twin in (pickle.loads(pickle.dumps(fast)), copy.copy(fast), copy.deepcopy(fast)):
        assert repr(twin) == repr(fast) and type(twin) is Fast
    assert repr(dataclasses.replace(fast, size=9.0)).replace("Fast", "Generated") == repr(
        dataclasses.replace(slow, size=9.0)
    )
    for attempt in (
        lambda o: setattr(o, "price", 2.0),
        lambda o: delattr(o, "name"),
        lambda o: setattr(o, "other", 1),
    ):
        assert _error(partial(attempt, fast)) == _error(partial(attempt, slow))


def test_wrong_calls_fail_with_the_generated_inits_messages() -> None:
    assert str(inspect.signature(Fast)) == str(inspect.signature(Generated))
    for args, kwargs in [
        ((), {}),
        (("a", 1.0, 2.0, (), 5), {}),
        (("a", 1.0), {"name": "b"}),
        (("a", 1.0), {"unit": "eur"}),
        (("a", 1.0), {"nope": 1}),
    ]:
        fast, slow = partial(Fast, *args, **kwargs), partial(Generated, *args, **kwargs)
        assert _error(fast) == _error(slow)


def test_the_real_bar_round_trips_through_pickle_copy_and_replace() -> None:
    bar = Bar("BTCUSDT", 1_769_904_000_000, 1.0, 2.0, 0.5, 1.5, 10.0, 4.0, has_flow=False)
    assert pickle.loads(pickle.dumps(bar)) == bar == copy.deepcopy(bar)
    assert dataclasses.replace(bar, close=1.25).close == 1.25
    with pytest.raises(FrozenInstanceError):
        bar.close = 3.0  # type: ignore[misc]


def test_a_subclass_keeps_the_fast_init_or_gets_its_own() -> None:
    @dataclass(frozen=True, slots=True)
    class Child(Fast):
        extra: int = 0

    assert repr(Child("a", 1.0, extra=2)).endswith(
        "Child(name='a', price=1.0, size=1.5, tags=(), extra=2)"
    )
    with pytest.raises(TypeError, match="plain fields only"):
        fast_init(Child)  # its inherited fields are not its own slots: refused, not wrong

    class Plain(Fast):
        __slots__ = ()

    assert Plain("a", 1.0) != Fast("a", 1.0)  # as with the generated __init__
    assert (Plain("a", 1.0) == Plain("a", 1.0)) and "Plain(name='a'" in repr(Plain("a", 1.0))


def test_an_initvar_is_refused_when_the_class_is_defined() -> None:
    """The generated __init__ takes an InitVar as a parameter; fast_init dropped it, so the
    class took one argument fewer than it declares (fails before)."""
    with pytest.raises(TypeError, match="fields only"):

        @fast_init
        @dataclass(frozen=True, slots=True)
        class WithInitVar:
            a: int
            scale: InitVar[int] = 1
