"""A throwaway store hands the learning cycle what the trading loop just wrote.

In a replay (a store with `buffer_logs`, `LearningLoop.keep_checked_records`) each cycle takes
the outcome records appended since the last one (`Store.follow_log`) and the closed trades of
the book waiting in memory (`Store.pending_doc`), instead of writing them out and reading
them back; the book and the symbol states wait unencoded until read or flushed
(`write_json(owned=True)`). Every cycle must read what a fresh read of the store reads, and
every file must hold the same bytes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import anyio
import pytest
from learning_helpers import shadow

from bigalpha_tui.core import batch, learning
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.columns import BatchInput
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.learning_store import LedgerRead, LogTail, RecordMemo, read_ledgers
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import (
    GUARD_BLOCKS,
    POSITIONS,
    SHADOW_OUTCOMES,
    SYMBOL_STATES,
    Store,
    to_json,
)
from bigalpha_tui.core.trades import ClosedTrade

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")


class _ListSource:
    name = "list"
    speed = None

    def __init__(self, bars: list[Bar], clock: SimClock) -> None:
        self._bars = bars
        self._clock = clock

    async def bars(self, resume_after_ms: int | None = None) -> Any:
        for bar in self._bars:
            await self._clock.sleep_until(bar.close_s)
            yield bar

    def health(self) -> SourceHealth:
        return SourceHealth(name=self.name)

    async def aclose(self) -> None:
        return None


class _CheckingStore(Store):
    """A store that remembers the bytes each owned document had when it was written and
    checks, whenever one is superseded, read or flushed, that it still encodes to them
    (nothing in it changed after the write)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.written: dict[str, bytes] = {}
        self.checked = 0

    def _check(self, name: str) -> None:
        self.pending_doc(name)

    def write_json(self, name: str, payload: dict[str, Any], *, owned: bool = False) -> bool:
        self._check(name)
        self.written[name] = to_json({"schema_version": 1, **payload}).encode()
        return super().write_json(name, payload, owned=owned)

    def pending_doc(self, name: str) -> dict[str, Any] | None:
        doc = super().pending_doc(name)
        if doc is not None:
            assert to_json(doc).encode() == self.written[name], f"{name} changed after its write"
            self.checked += 1
        return doc

    def _pending_bytes(self, name: str) -> bytes | None:
        """Encoded for the reader, but left waiting unencoded: a later change to it is
        still seen (the test's fresh reads must not hide one)."""
        self._check(name)
        doc = self.pending_doc(name)
        return super()._pending_bytes(name) if doc is None else to_json(doc).encode()


def _bars(days: float) -> list[Bar]:
    minutes = simulate_minutes(SYMBOLS, 7, DEFAULT_START_MS, SimParams())
    return [bar for minute in itertools.islice(minutes, int(days * 1440)) for bar in minute]


def _types(read: LedgerRead) -> list[Any]:
    """Every trade read, field by field with its type (1 and 1.0 are told apart)."""
    return [
        [(name, type(value), value) for name, value in t.to_record().items()]
        for t in (*read.live, *read.shadow)
    ]


def _files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.is_file()}


def _run(root: Path, bars: list[Bar], *, handed: bool, batched: bool) -> Core:
    clock = SimClock(bars[0].open_ms / 1000.0)
    store = _CheckingStore(root, durable=False)
    store.buffer_logs = handed
    core = Core(Config(), _ListSource(bars, clock), clock, store)
    if handed:
        assert core.learning is not None
        core.learning.keep_checked_records()
    if batched:
        batch.run_batch(core, BatchInput.from_bars(bars, checked=True))
    else:
        anyio.run(core.run)
    return core


@pytest.mark.parametrize("batched", [False, True])
def test_every_cycle_reads_the_handed_over_records_as_a_fresh_read_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    """Two simulated days, six symbols: at every cycle the trades handed over equal, field
    by field and type by type, what a fresh read of the store gives at that moment; the
    hand-over is what the cycles used; and the files at the end hold the bytes of a run
    that wrote everything at once and read it back."""
    bars = _bars(2.0)
    real = learning.read_ledgers
    seen = {"cycles": 0, "handed_shadow": 0, "handed_live": 0}

    def checked_read(
        store: Store, cache: Any = None, tail: LogTail | None = None, memo: Any = None
    ) -> LedgerRead:
        live_waiting = store.pending_doc(POSITIONS) is not None
        size = -1 if tail is None else tail.size
        kept = real(store, cache, tail, memo)
        if tail is not None and size >= 0 and tail.size >= 0:
            seen["handed_shadow"] += 1  # the log's records came from the store's journal
        seen["handed_live"] += live_waiting
        fresh = real(store)  # reads the files (and writes what waits, as any read does)
        assert kept == fresh
        assert _types(kept) == _types(fresh)
        seen["cycles"] += 1
        return kept

    monkeypatch.setattr(learning, "read_ledgers", checked_read)
    handed = _run(tmp_path / "handed", bars, handed=True, batched=batched)
    monkeypatch.setattr(learning, "read_ledgers", real)
    plain = _run(tmp_path / "plain", bars, handed=False, batched=False)

    assert seen["cycles"] >= 10
    assert seen["handed_shadow"] >= seen["cycles"] - 1  # all but the first cycle
    assert seen["handed_live"] == seen["cycles"]
    assert handed.trading is not None and plain.trading is not None
    shadow_lines = (tmp_path / "plain" / SHADOW_OUTCOMES).read_bytes().count(b"\n")
    assert shadow_lines > 50  # the cycles had twins to read
    files = _files(tmp_path / "handed")
    files.pop(".lock", None)
    want = _files(tmp_path / "plain")
    want.pop(".lock", None)
    assert files == want
    history = [
        json.loads(line)
        for line in (tmp_path / "handed" / "learning_history.jsonl").read_text().splitlines()
    ]
    assert [h["cycle"] for h in history] == list(range(1, seen["cycles"] + 1))
    store = handed.store
    assert isinstance(store, _CheckingStore) and store.checked > 0


def _shadow_records(n: int, start: float = 1.0) -> list[dict[str, Any]]:
    return [t.to_record() for t in shadow([start + i for i in range(n)])]


def _followed(root: Path, **kwargs: Any) -> Store:
    store = Store(root, durable=False, **kwargs)
    store.buffer_logs = True
    store.follow_log(SHADOW_OUTCOMES)
    return store


def _read_whole(store: Store) -> int:
    data = store.read_log_bytes(SHADOW_OUTCOMES)
    assert data is not None
    store.log_read_to(SHADOW_OUTCOMES, len(data))
    return len(data)


def test_a_followed_log_hands_over_the_records_appended_since_the_last_read(
    tmp_path: Path,
) -> None:
    store = _followed(tmp_path)
    records = _shadow_records(5)
    for record in records[:2]:
        store.append_jsonl(SHADOW_OUTCOMES, record)
    assert store.appended_records(SHADOW_OUTCOMES, 0) is None  # not read once yet
    size = _read_whole(store)
    for record in records[2:]:
        store.append_jsonl(SHADOW_OUTCOMES, record)
    handed = store.appended_records(SHADOW_OUTCOMES, size)
    assert handed is not None
    new, size_now = handed
    assert new == records[2:]
    assert store.appended_records(SHADOW_OUTCOMES, size) is None  # that size is gone by
    assert store.appended_records(SHADOW_OUTCOMES, size_now) == ([], size_now)
    store.flush_logs()  # written out meanwhile (a checkpoint): still the same log
    more = _shadow_records(2, 10.0)
    for record in more:
        store.append_jsonl(SHADOW_OUTCOMES, record)
    handed = store.appended_records(SHADOW_OUTCOMES, size_now)
    assert handed is not None and handed[0] == more
    data = store.read_log_bytes(SHADOW_OUTCOMES)
    assert data is not None and len(data) == handed[1]
    assert [json.loads(line) for line in data.splitlines()] == json.loads(to_json(records + more))


@pytest.mark.parametrize("change", ["cut", "grown", "removed", "caller_text", "direct"])
def test_a_followed_log_the_store_cannot_vouch_for_is_read_from_the_file(
    tmp_path: Path, change: str
) -> None:
    """Changed on disk behind the store's back, a line appended as the caller's own text,
    or a store that writes at once: no hand-over (the reader then reads the file)."""
    store = _followed(tmp_path)
    store.append_jsonl(SHADOW_OUTCOMES, _shadow_records(1)[0])
    size = _read_whole(store)
    record = _shadow_records(1, 5.0)[0]
    path = store.path(SHADOW_OUTCOMES)
    if change == "caller_text":
        store.append_jsonl(SHADOW_OUTCOMES, record, text=json.dumps(record))
    else:
        store.append_jsonl(SHADOW_OUTCOMES, record)
    if change == "cut":
        path.write_bytes(path.read_bytes()[:-5])
    elif change == "grown":
        with path.open("ab") as fh:
            fh.write(b'{"id": "extra"}\n')
    elif change == "removed":
        path.unlink()
    elif change == "direct":
        store.buffer_logs = False
    assert store.appended_records(SHADOW_OUTCOMES, size) is None


def test_a_followed_log_near_its_rotation_size_is_read_from_the_file(tmp_path: Path) -> None:
    """The flush a read makes would rotate the log: the hand-over stops short of it, and the
    reader (the cycle) reads what a fresh read reads, rotated generations included."""
    records = _shadow_records(30)
    line = len(to_json(records[0])) + 1
    store = _followed(tmp_path / "kept", jsonl_rotate_bytes=8 * line)
    fresh = Store(tmp_path / "fresh", durable=False, jsonl_rotate_bytes=8 * line)
    cache: dict[Any, Any] = {}
    tail = LogTail()
    memo: RecordMemo = {}
    handed = 0
    for i, record in enumerate(records):
        store.append_jsonl(SHADOW_OUTCOMES, record)
        fresh.append_jsonl(SHADOW_OUTCOMES, record)
        if i % 3 == 2:
            before = tail.size
            kept = read_ledgers(store, cache, tail, memo)
            handed += before >= 0 and tail.size > before
            assert kept == read_ledgers(fresh)
    assert handed >= 1
    assert store.rotated_paths(SHADOW_OUTCOMES)
    assert _files(tmp_path / "kept") == _files(tmp_path / "fresh")


def test_an_owned_document_waits_unencoded_and_is_written_as_a_direct_store_writes(
    tmp_path: Path,
) -> None:
    direct = Store(tmp_path / "direct", durable=False)
    buffered = Store(tmp_path / "buffered", durable=False)
    buffered.buffer_logs = True
    doc = {"closed": [{"x": 0.1, "inf": float("inf")}], "n": 1}
    for store in (direct, buffered):
        store.write_json(POSITIONS, doc, owned=True)
        store.write_json(SYMBOL_STATES, {"symbols": {}})
    assert direct.pending_doc(POSITIONS) is None  # a direct store writes at once
    waiting = buffered.pending_doc(POSITIONS)
    assert waiting is not None and waiting["closed"] is doc["closed"]  # not encoded
    assert buffered.pending_doc(SYMBOL_STATES) is None  # not owned: encoded at the write
    assert buffered.read_json(POSITIONS) == direct.read_json(POSITIONS)
    assert buffered.pending_doc(POSITIONS) is None  # read: encoded once, kept so
    buffered.write_json(POSITIONS, doc, owned=True)  # moved behind SYMBOL_STATES
    assert buffered.flush_logs(GUARD_BLOCKS) and not buffered.path(POSITIONS).exists()
    direct.write_json(POSITIONS, doc)
    assert buffered.flush_logs()
    assert _files(tmp_path / "buffered") == _files(tmp_path / "direct")
    assert b'"inf":"inf"' in buffered.path(POSITIONS).read_bytes()


def _outcome(record: Any) -> Any:
    try:
        return repr(ClosedTrade.from_record(record))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return type(exc).__name__, str(exc)


def test_a_trade_record_reads_and_fails_alike_as_a_dict_and_as_any_mapping() -> None:
    """`ClosedTrade.from_record` looks a plain dict's fields up directly: every record, with
    any field missing or spoiled (one or two at a time), reads to the same trade or fails
    with the same first fault as through `codec.field` (a read-only mapping goes there)."""
    trade = shadow([2.5])[0]
    record = trade.to_record()
    spoilt: list[Any] = [None, "", "x", -1.0, 0.0, float("nan"), True, [], ["x"], {}, 1e300, 7]
    variants: list[dict[str, Any]] = [dict(record)]
    keys = list(record)
    for key in keys:
        variants.append({k: v for k, v in record.items() if k != key})
        variants.extend({**record, key: value} for value in spoilt)
    for first, second in itertools.combinations(keys, 2):
        variants.append({k: v for k, v in record.items() if k not in (first, second)})
        variants.append({**record, first: "", second: None})
        variants.append({k: ("" if k == first else v) for k, v in record.items() if k != second})
    read = 0
    for variant in variants:
        fast = _outcome(variant)
        assert fast == _outcome(MappingProxyType(variant)), variant
        read += isinstance(fast, str)
    assert read >= 1 and read < len(variants)
    assert _outcome(dict(record)) == repr(trade)
