"""One strict way to read a persisted field (STYLE.md "One codec, strict everywhere").

Every record the store holds is decoded field by field through these readers: a number must
be a real JSON number (not a bool, not the string "nan"), finite, and inside its range; a
flag must be true or false; a name must be one of its enum's values; a time must fall
between the first block of Bitcoin and a year past the wall clock (a bar "applied" in 2100
would freeze every exit). Each reader raises `RecordError` (a ValueError) naming the field,
so one bad record is set aside alone with a reason an operator can read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

#: 2009-01-03 00:00 UTC: no market data this project reads is older.
EARLIEST_S = 1_230_940_800.0
#: How far past the wall clock a saved time may lie (a simulator running ahead of it).
AHEAD_S = 366 * 86_400.0

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


class RecordError(ValueError):
    """A persisted field that is missing, of the wrong type or out of range."""


def field(record: Mapping[str, Any], key: str) -> Any:
    if not isinstance(record, Mapping):
        raise RecordError(f"expected an object, got {type(record).__name__}")
    if key not in record:
        raise RecordError(f"{key} is missing")
    return record[key]


def number(value: Any, what: str, *, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite JSON number in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise RecordError(f"{what} must be a finite number in [{low:g}, {high:g}], got {value!r}")
    return number


def positive(value: Any, what: str) -> float:
    result = number(value, what)
    if not result > 0:
        raise RecordError(f"{what} must be above 0, got {value!r}")
    return result


def non_negative(value: Any, what: str) -> float:
    return number(value, what, low=0.0)


def count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RecordError(f"{what} must be a count (an integer >= 0), got {value!r}")
    return value


def flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise RecordError(f"{what} must be true or false, got {value!r}")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError(f"{what} must be a non-empty string, got {value!r}")
    return value


def choice(kind: type[E], value: Any, what: str) -> E:
    try:
        return kind(value)
    except (ValueError, TypeError):
        accepted = ", ".join(str(m.value) for m in kind)
        raise RecordError(f"{what} must be one of {accepted}, got {value!r}") from None


def time_s(value: Any, what: str, latest_s: float) -> float:
    """Epoch seconds between `EARLIEST_S` and `latest_s`."""
    return number(value, what, low=EARLIEST_S, high=latest_s)


def time_ms(value: Any, what: str, latest_s: float) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(f"{what} must be an integer of milliseconds, got {value!r}")
    time_s(value / 1000.0, what, latest_s)
    return value


def optional(read: Callable[[Any], T], value: Any) -> T | None:
    return None if value is None else read(value)


def latest_time_s(wall_s: float) -> float:
    """The latest time a saved record may carry, given the wall clock now."""
    return wall_s + AHEAD_S


class Reader:
    """Reads lists and maps of records one by one, collecting a line for each it leaves out
    (a bad record costs only itself)."""

    def __init__(self, bad: list[str]) -> None:
        self.bad = bad

    def items(self, doc: Mapping[str, Any], key: str, read: Callable[[Any], T]) -> list[T]:
        records = doc.get(key, [])
        if not isinstance(records, list):
            self.bad.append(f"{key}: not a list")
            return []
        out = []
        for index, record in enumerate(records):
            try:
                out.append(read(record))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.bad.append(f"{key}[{index}]{_name(record)}: {exc}")
        return out

    def entries(
        self, doc: Mapping[str, Any], key: str, read: Callable[[str, Any], T]
    ) -> dict[str, T]:
        values = doc.get(key, {})
        if not isinstance(values, Mapping):
            self.bad.append(f"{key}: not an object")
            return {}
        out = {}
        for symbol, value in values.items():
            try:
                out[text(symbol, "symbol")] = read(symbol, value)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.bad.append(f"{key} {symbol}: {exc}")
        return out


def _name(record: Any) -> str:
    if isinstance(record, Mapping) and isinstance(record.get("id"), str):
        return f" {record['id']}"
    return ""
