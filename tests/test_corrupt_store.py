"""Corrupt and foreign files: every store file, spoiled every way, is set aside and reported.

Truncated, empty, non-UTF-8, another file's layout, a future `schema_version` and a hand
edit (valid JSON, wrong types) of every state file: the app (`runtime.build`, as the cockpit
and the headless runner start) starts, the file's bytes are kept in `NAME.corrupt-<time>`
(never overwritten), and the operator is told which file and why (snapshot warning and a
`store_warning` event). A state file from before `schema_version` (schema 0) is migrated.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from bigalpha_tui import runtime
from bigalpha_tui.core import store as store_mod
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import (
    ENGINE_STATE,
    GUARD_BLOCKS,
    HURST_CACHE,
    JSON_FILES,
    LEARNING_HISTORY,
    POSITIONS,
    RECENT_EVENTS,
    SHADOW_OUTCOMES,
    SYMBOL_STATES,
    WHALE_FLOW,
    Store,
)
from bigalpha_tui.core.types import BlockReason

#: A hand edit of each file: valid JSON, current schema, wrong types where it matters.
HAND_EDITS: dict[str, dict[str, object]] = {
    WHALE_FLOW: {"symbols": {"BTCUSDT": {"cvd": "lots", "last_open_ms": "yesterday"}}},
    HURST_CACHE: {"symbols": ["BTCUSDT"]},
    SYMBOL_STATES: {"symbols": {"BTCUSDT": {"state": "ASLEEP", "slippage_buffer_bps": "x"}}},
    POSITIONS: {"open": [{"id": 7, "symbol": "BTCUSDT", "side": "UP"}], "last_open_ms": {}},
    ENGINE_STATE: {"paused": "yes please", "guards_enabled": {"FEE_EDGE": False}},
    RECENT_EVENTS: {"events": "the usual"},
}

SPOILED: dict[str, bytes] = {
    "truncated": b'{"schema_version": 1, "symbols": {"BTCU',
    "empty": b"",
    "not-utf8": b"\xff\xfe\x00\x81 garbage \xc3\x28",
    "other-layout": b'{"schema_version": 1, "colour": "blue", "items": [1, 2, 3]}',
    "future-schema": b'{"schema_version": 7, "symbols": {}, "open": [], "paused": false}',
    "not-an-object": b"[1, 2, 3]",
}


def kinds_of_spoil(name: str) -> list[tuple[str, bytes]]:
    hand = json.dumps({"schema_version": 1, **HAND_EDITS[name]}).encode()
    return [*SPOILED.items(), ("hand-edited", hand)]


CASES = [(name, kind, raw) for name in JSON_FILES for kind, raw in kinds_of_spoil(name)]


def build(data: Path, tmp: Path) -> runtime.Runtime:
    args = argparse.Namespace(data_dir=str(data), config=os.devnull)  # no user config read
    return runtime.build(args)


@pytest.fixture(autouse=True)
def release_locks() -> object:
    yield
    for lock in list(store_mod._HELD_LOCKS.values()):
        lock.release()


def feed_a_few_bars(rt: runtime.Runtime) -> None:
    stream = simulate_minutes(rt.config.source.symbols, 7, DEFAULT_START_MS, SimParams())
    for _, minute in zip(range(5), stream, strict=False):
        for bar in minute:
            assert rt.core.process_bar(bar)


@pytest.mark.parametrize(
    ("name", "kind", "raw"), CASES, ids=[f"{n.split('/')[-1]}-{k}" for n, k, _ in CASES]
)
def test_a_spoiled_state_file_is_set_aside_reported_and_the_app_starts(
    tmp_path: Path, name: str, kind: str, raw: bytes
) -> None:
    data = tmp_path / "store"
    (data / "intelligence").mkdir(parents=True)
    (data / name).write_bytes(raw)
    rt = build(data, tmp_path)
    aside = list(data.glob(f"{name}.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [raw], "the spoiled bytes must be kept as they were"
    told = [w for w in rt.core.snapshot().warnings if w.startswith(f"{name}:")]
    assert len(told) == 1 and aside[0].name in told[0] and "set aside" in told[0]
    events = [e for e in rt.core.events if e.kind == "store_warning" and name in e.message]
    assert len(events) == 1, "the operator's event log must say it too, once"
    feed_a_few_bars(rt)  # the app runs on from defaults
    rt.core.checkpoint()
    assert aside[0].read_bytes() == raw, "the set-aside copy was overwritten"


def test_a_spoiled_file_says_why(tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    (data / HURST_CACHE).write_bytes(SPOILED["future-schema"])
    (data / ENGINE_STATE).write_bytes(SPOILED["not-utf8"])
    (data / POSITIONS).write_bytes(
        json.dumps({"schema_version": 1, **HAND_EDITS[POSITIONS]}).encode()
    )
    warnings = build(data, tmp_path).core.snapshot().warnings
    assert any("schema_version 7, expected 1" in w for w in warnings)
    assert any(w.startswith(ENGINE_STATE) and "not valid JSON" in w for w in warnings)
    # the book is read record by record: the bad one is named and set aside alone
    assert any(w.startswith(POSITIONS) and "open[0]" in w and "set aside" in w for w in warnings)


# -- the logs --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [SHADOW_OUTCOMES, GUARD_BLOCKS, LEARNING_HISTORY])
def test_a_log_cut_mid_line_or_garbled_is_reported_and_the_app_starts(
    tmp_path: Path, name: str
) -> None:
    data = tmp_path / "store"
    data.mkdir()
    whole = b'{"id": "X-1", "cycle": 1}\n'
    garbled = b"\xff\xfe not json at all\n"
    torn = b'{"id": "X-2", "cyc'
    (data / name).write_bytes(whole + garbled + torn)
    rt = build(data, tmp_path)
    aside = list(data.glob(f"{name}.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [torn]  # the torn tail, kept
    assert (data / name).read_bytes() == whole + garbled  # appends never rewrite a log
    list(rt.store.iter_jsonl(name))  # what the learning loop and status do
    told = [w for w in rt.core.snapshot().warnings if w.startswith(f"{name}:")]
    assert any("torn last line" in w for w in told) and any("unreadable line" in w for w in told)
    feed_a_few_bars(rt)


def test_an_empty_log_is_simply_empty(tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    (data / SHADOW_OUTCOMES).write_bytes(b"")
    rt = build(data, tmp_path)
    assert rt.core.snapshot().warnings == ()


# -- migration -------------------------------------------------------------------------------


LEGACY_ENGINE_STATE = b'{"last_bar_ms": 1767604800000, "paused": true, "guards_off": ["FEE_EDGE"]}'


@pytest.mark.parametrize("version", ["missing", "0"])
def test_a_schema_0_engine_state_is_migrated_and_the_original_kept(
    tmp_path: Path, version: str
) -> None:
    data = tmp_path / "store"
    data.mkdir()
    raw = LEGACY_ENGINE_STATE
    if version == "0":
        raw = raw.replace(b"{", b'{"schema_version": 0, ', 1)
    (data / ENGINE_STATE).write_bytes(raw)
    rt = build(data, tmp_path)
    core = rt.core
    assert core.paused is True
    assert core.guards_enabled[BlockReason.FEE_EDGE] is False
    assert core.guards_enabled[BlockReason.WHALE_CONFLICT] is True
    assert core.last_bar_ms == 1767604800000
    migrated = json.loads((data / ENGINE_STATE).read_bytes())
    assert migrated["schema_version"] == 1 and migrated["guards_enabled"] == {"FEE_EDGE": False}
    kept = list(data.glob(f"{ENGINE_STATE}.schema0-*"))
    assert [p.read_bytes() for p in kept] == [raw]
    assert not list(data.glob("*.corrupt-*"))
    assert any("migrated from schema 0 to 1" in w for w in core.snapshot().warnings)


def test_a_legacy_file_without_a_migration_is_set_aside(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (tmp_path / HURST_CACHE).write_bytes(b'{"symbols": {}}')
    assert store.read_json(HURST_CACHE) is None
    assert list(tmp_path.glob(f"{HURST_CACHE}.corrupt-*"))


def test_a_legacy_file_the_migration_cannot_read_is_set_aside(tmp_path: Path) -> None:
    store = Store(tmp_path)
    (tmp_path / ENGINE_STATE).write_bytes(b'{"paused": false, "guards_off": "FEE_EDGE"}')
    assert store.read_json(ENGINE_STATE) is None
    assert list(tmp_path.glob(f"{ENGINE_STATE}.corrupt-*"))
    assert any("could not be migrated" in w.message for w in store.warnings)


def test_a_read_only_store_reads_a_legacy_file_without_touching_it(tmp_path: Path) -> None:
    (tmp_path / ENGINE_STATE).write_bytes(LEGACY_ENGINE_STATE)
    doc = Store(tmp_path, read_only=True).read_json(ENGINE_STATE)
    assert doc is not None and doc["guards_enabled"] == {"FEE_EDGE": False}
    assert (tmp_path / ENGINE_STATE).read_bytes() == LEGACY_ENGINE_STATE
    assert sorted(p.name for p in tmp_path.iterdir()) == [ENGINE_STATE]
