"""A hostile `positions_futures.json` never costs the valid open positions their stops.

Hypothesis spoils some records of a book that holds five open positions (wrong types,
non-finite numbers, "nan" strings, negative sizes, times in the year 2100, deep nesting,
missing fields) and a few per-symbol entries. The trading loop must start, keep every record
that was not spoiled exactly as it was, set each spoiled one aside with its name, and still
fire the emergency stop of every position it kept.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trading_helpers import T0_MS, make_bar, make_loop

from bigalpha_tui.core.positions import Position
from bigalpha_tui.core.store import POSITIONS, Store
from bigalpha_tui.core.trades import Ledger
from bigalpha_tui.core.types import Conviction, ExitReason, Regime, Side

SYMBOLS = [f"S{i}USDT" for i in range(5)]
YEAR_2100_S = 4_102_444_800.0
DEEP: Any = 0  # deep enough to be absurd, shallow enough that the document still parses
for _ in range(200):  # (a whole file nested past the parser's limit is set aside whole)
    DEEP = [DEEP]

#: Values no field of its kind may hold.
NOT_A_NUMBER = ["nan", "inf", "-inf", "100", True, None, [], {}, DEEP]
HOSTILE: dict[str, list[Any]] = {
    "original_qty": [*NOT_A_NUMBER, 0.0, -1.0],
    "entry_price": [*NOT_A_NUMBER, 0.0, -100.0],
    "entry_s": [*NOT_A_NUMBER, YEAR_2100_S, -1.0],
    "entry_fee_usd": [*NOT_A_NUMBER, -0.05],
    "size_multiplier": [*NOT_A_NUMBER, -1.0],
    "side": ["UP", 1, None, DEEP],
    "ledger": ["paper", None, 3],
    "entry_regime": ["SIDEWAYS", None],
    "golden_hour_entry": ["yes", 1, None],
    "id": [7, "", None, DEEP],
    "exits": ["none", [{"reason": "T1", "qty": "nan"}], [{"reason": "T9"}]],
}


def position(symbol: str) -> Position:
    return Position(
        id=f"L-{symbol}",
        ledger=Ledger.LIVE,
        strategy="Alpha-OFI",
        symbol=symbol,
        side=Side.LONG,
        original_qty=1.0,
        entry_price=100.0,
        entry_s=T0_MS / 1000.0,
        entry_fee_usd=0.05,
        conviction=Conviction.NORMAL,
        entry_regime=Regime.RANDOM,
        size_multiplier=1.0,
        golden_hour_entry=True,
        force_hold_until_s=None,
    )


spoils = st.dictionaries(
    st.sampled_from(range(len(SYMBOLS))),
    st.sampled_from(sorted(HOSTILE)).flatmap(
        lambda key: st.tuples(st.just(key), st.sampled_from(HOSTILE[key]))
    ),
    max_size=4,
)
bad_entries = st.dictionaries(
    st.sampled_from(SYMBOLS),
    st.sampled_from([int(YEAR_2100_S * 1000), "soon", -5, 1.5e308, None]),
    max_size=2,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spoils=spoils, bad_last_ms=bad_entries, bad_total=st.sampled_from([None, "nan", -3, 1e309]))
def test_valid_positions_survive_a_hostile_book_and_keep_their_stops(
    tmp_path_factory: Any,
    spoils: dict[int, tuple[str, Any]],
    bad_last_ms: dict[str, Any],
    bad_total: Any,
) -> None:
    data = tmp_path_factory.mktemp("book")
    records = [position(s).to_record() for s in SYMBOLS]
    for index, (key, value) in spoils.items():
        records[index][key] = value
    last_ms = {s: T0_MS - 60_000 for s in SYMBOLS}
    last_ms.update(bad_last_ms)
    totals: dict[str, Any] = {"realised_closed_usd": 0.0, "closed_count": 0}
    if bad_total is not None:
        totals["closed_count" if isinstance(bad_total, int) else "realised_closed_usd"] = bad_total
    doc = {"schema_version": 1, "open": records, "last_open_ms": last_ms, "totals": totals}
    text = json.dumps(doc).replace("Infinity", "1e999")  # 1e309 overflows to inf when read
    (data / POSITIONS).write_text(text)

    loop = make_loop(data, clock_s=T0_MS / 1000.0)

    kept = {s for i, s in enumerate(SYMBOLS) if i not in spoils}
    assert {p.symbol for p in loop.live.values()} == kept
    for symbol in kept:
        assert loop.live[symbol] == position(symbol)
    told = [w.message for w in loop.store.warnings if w.file == POSITIONS]
    if spoils or bad_last_ms or bad_total is not None:
        assert len(told) == 1 and "set aside" in told[0] and "kept" in told[0]
        assert len(list(Path(data).glob(f"{POSITIONS}.corrupt-*"))) == 1
        again = make_loop(data, clock_s=T0_MS / 1000.0)  # the file now holds what was kept
        assert again.store.warnings == [] and again.live == loop.live
        assert len(list(Path(data).glob(f"{POSITIONS}.corrupt-*"))) == 1
    assert math.isfinite(loop.book.realised_closed_usd) and loop.book.closed_count >= 0

    for symbol in kept:  # the first bar back crosses every stop (-1 %)
        loop.on_bar(
            make_bar(0, 98.5, open=100.0, low=98.5, symbol=symbol),
            *_inputs(symbol),
        )
    assert loop.live == {}
    assert {t.symbol for t in loop.closed_live} == kept
    assert all(t.exit_reasons == (ExitReason.STOP,) for t in loop.closed_live)
    assert Store(data).read_json(POSITIONS) is not None  # saved, readable


def _inputs(symbol: str) -> tuple[Any, Any, Any]:
    from trading_helpers import controls, flow, hurst

    return flow(symbol=symbol), hurst(), controls()
