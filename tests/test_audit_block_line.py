"""`block_line` against the json encoder on hostile records: byte for byte, or handed back."""

from __future__ import annotations

import enum
import random
import struct
import types
from collections.abc import Iterator
from typing import Any

import pytest

from bigalpha_tui.core.store import to_json
from bigalpha_tui.core.trading import _BLOCK_KEYS, block_line

FLOATS = ("time_s", "ofi", "atr_bps", "expected_edge_bps", "retail_ofi", "size_multiplier", "price")
ODD_FLOATS = (
    0.0,
    -0.0,
    1e-7,
    1e16,
    1e22,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,  # the smallest normal
    2.225073858507201e-308,  # the largest subnormal
    1.7976931348623157e308,
    0.1,
    1 / 3,
    float(2**53 + 2),
    123456789012345678.0,
)
ODD_TEXT = ('"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "\u2028", "\ud800", "\U0001f600", "/")


def records(seed: int, count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)

    def number() -> float:
        if rng.random() < 0.4:  # any bit pattern: subnormals, huge, tiny, nan, inf
            value: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            return value
        return rng.choice(ODD_FLOATS)

    def text() -> str:
        return "".join(rng.choice((*ODD_TEXT, "a", "B1")) for _ in range(rng.randint(0, 6)))

    for _ in range(count):
        record: dict[str, Any] = {}
        for key in _BLOCK_KEYS:
            if key in FLOATS:
                record[key] = number()
            elif key in ("passed", "skipped"):
                gates = [text() for _ in range(rng.randint(0, 3))]
                record[key] = tuple(gates) if rng.random() < 0.2 else gates
            elif key == "new_twin":
                record[key] = rng.random() < 0.5
            elif key == "reason":
                record[key] = None if rng.random() < 0.3 else text()
            else:
                record[key] = text()
        yield record


def test_every_record_it_writes_is_the_encoders_text() -> None:
    written = 0
    for record in records(seed=14, count=20_000):
        line = block_line(record)
        if line is not None:
            written += 1
            assert line == to_json(record), record
    assert written > 15_000  # most records are written by the template, not handed back


class Side(enum.StrEnum):
    LONG = "long"


def test_str_subclasses_are_written_as_the_encoder_writes_them() -> None:
    record = next(records(seed=1, count=1))
    record = {**record, "side": Side.LONG, "symbol": type("Sym", (str,), {})('BTC"USDT')}
    assert block_line(record) == to_json(record)


def _block(record: dict[str, Any]) -> dict[str, Any]:
    return {key: record[key] for key in _BLOCK_KEYS}


@pytest.mark.parametrize("kind", ["mappingproxy", "reordered dict subclass"])
def test_a_record_that_is_not_a_plain_dict_is_handed_back(kind: str) -> None:
    """A read-only mapping the encoder refuses (TypeError), or a dict subclass iterating its
    keys in another order than its items: block_line wrote a line for both (fails before)."""
    record = _block(next(records(seed=2, count=1)))
    record["ofi"] = record["atr_bps"] = record["price"] = 1.0
    record["time_s"] = record["expected_edge_bps"] = 2.0
    record["retail_ofi"] = record["size_multiplier"] = 0.5

    class Reordered(dict[str, Any]):
        def __iter__(self) -> Iterator[str]:
            return iter(_BLOCK_KEYS)

    odd: Any
    if kind == "mappingproxy":
        odd = types.MappingProxyType(record)
        with pytest.raises(TypeError):
            to_json(odd)
    else:
        odd = Reordered(reversed(list(record.items())))
        assert to_json(odd) != to_json(record)
    assert block_line(odd) is None
