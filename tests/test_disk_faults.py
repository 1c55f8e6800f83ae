"""Disk faults: `os.replace`, `os.fsync` and file writes fail with EIO or ENOSPC.

A core fed simulated bars trades for a few hours on a healthy disk, then the disk refuses
every write for an hour and a quarter, then heals. While it refuses: every file keeps its
old bytes, no temp file stays behind, the operator reads "disk full" / "store write failed"
in the snapshot (cockpit) and in the headless log, new entries stop (signals passed over,
a waiting entry order cancelled) while exits go on. When the disk heals the next bar's save
succeeds, the halt lifts by itself, entries resume, and no ledger record was lost.
"""

from __future__ import annotations

import errno
import io
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from trading_helpers import ListSource

from bigalpha_tui.core import store as store_mod
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import (
    GUARD_BLOCKS,
    JSON_FILES,
    JSONL_FILES,
    POSITIONS,
    SHADOW_OUTCOMES,
    Store,
)
from bigalpha_tui.headless import EventPrinter

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")
HEALTHY_UNTIL_MIN = 230  # 12:20 UTC: positions open, golden hour on
BROKEN_UNTIL_MIN = 305  # signals (entries on a healthy disk) and exits fall in between
HEALED_UNTIL_MIN = 430


def minutes() -> list[list[Bar]]:
    stream = simulate_minutes(SYMBOLS, 7, DEFAULT_START_MS, SimParams())
    return list(itertools.islice(stream, HEALED_UNTIL_MIN))


MINUTES = minutes()


class Disk:
    """Makes one kind of store write fail with one errno while `broken`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, op: str, code: int) -> None:
        self.op = op
        self.code = code
        self.broken = False
        self.injected = 0
        real_replace, real_fdopen = os.replace, os.fdopen
        real_open = open

        def fail(what: str) -> None:
            if self.broken and self.op == what:
                self.injected += 1
                raise OSError(self.code, os.strerror(self.code))

        def replace(src: Any, dst: Any) -> None:
            fail("replace")
            real_replace(src, dst)

        def fsync(fd: int) -> None:
            # a healthy fsync is a no-op: nothing here cuts the power, so flushing the page
            # cache would prove nothing and cost most of the test's time (every read below
            # sees the written bytes either way); what is tested is a refused fsync
            fail("fsync")

        def fdopen(fd: int, *args: Any, **kwargs: Any) -> IO[Any]:
            return FailingWrites(real_fdopen(fd, *args, **kwargs), fail)

        def store_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> IO[Any]:
            fh = real_open(file, mode, *args, **kwargs)
            return FailingWrites(fh, fail) if "a" in mode or "w" in mode else fh

        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(store_mod, "open", store_open, raising=False)


class FailingWrites:
    """A file object whose `write` fails while the disk is broken."""

    def __init__(self, inner: IO[Any], fail: Any) -> None:
        self.inner = inner
        self.fail = fail

    def write(self, data: Any) -> int:
        self.fail("write")
        return int(self.inner.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> FailingWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.inner)


def feed(core: Core, rows: list[list[Bar]]) -> list[Event]:
    seen: list[Event] = []
    core.observers.append(seen.append)
    assert isinstance(core.clock, SimClock)
    for minute in rows:
        for bar in minute:
            core.clock.advance_to(bar.close_s)
            core.process_bar(bar)
    core.observers.remove(seen.append)
    return seen


def store_bytes(data: Path) -> dict[str, bytes]:
    return {n: (data / n).read_bytes() for n in (*JSON_FILES, *JSONL_FILES) if (data / n).exists()}


def kinds(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.kind == kind]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
@pytest.mark.parametrize("op", ["replace", "fsync", "write"])
def test_a_refusing_disk_halts_entries_keeps_old_files_and_heals_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str, code: int
) -> None:
    disk = Disk(monkeypatch, op, code)
    core = Core(Config(), ListSource([]), SimClock(DEFAULT_START_MS / 1000), Store(tmp_path))
    log = io.StringIO()
    core.observers.append(EventPrinter(log).event)
    feed(core, MINUTES[:HEALTHY_UNTIL_MIN])
    core.checkpoint()
    assert core.trading is not None and core.trading.live, "positions must be open"
    before = store_bytes(tmp_path)

    disk.broken = True
    during = feed(core, MINUTES[HEALTHY_UNTIL_MIN:BROKEN_UNTIL_MIN])
    core.checkpoint()
    snap = core.snapshot()
    words = "disk full" if code == errno.ENOSPC else "store write failed"
    now = store_bytes(tmp_path)
    for name, old in before.items():
        if name in JSON_FILES or op != "replace":
            assert now[name] == old, f"{name}: a refused write changed the file"
        else:  # appends need no replace: a log may grow, never change what it held
            assert now[name].startswith(old), name
    assert not [p.name for p in tmp_path.rglob("*.tmp")], "a temp file was left behind"
    assert snap.entries_halted_reason is not None and words in snap.entries_halted_reason
    assert any(words in w for w in snap.warnings)
    assert [e.data["healthy"] for e in kinds(during, "store")] == [False]
    assert words in log.getvalue() and "new entries halted" in log.getvalue()
    assert not kinds(during, "entry"), "an entry opened while the store could not record it"
    assert core.trading.halted_signals + len(kinds(during, "cancel")) > 0
    assert kinds(during, "exit"), "exits must go on while entries are halted"
    assert disk.injected > 0

    disk.broken = False
    after = feed(core, MINUTES[BROKEN_UNTIL_MIN:])
    core.checkpoint()
    snap = core.snapshot()
    assert snap.entries_halted_reason is None and core.store.healthy
    assert [e.data["healthy"] for e in kinds(after, "store")] == [True]
    assert "store writes work again" in log.getvalue()
    assert kinds(after, "entry"), "entries must resume by themselves"
    assert_ledgers_whole(tmp_path, core)


def assert_ledgers_whole(data: Path, core: Core) -> None:
    """Nothing the outage refused is missing once it healed: the files equal the memory."""
    assert core.trading is not None
    store = Store(data, read_only=True)
    book = store.read_json(POSITIONS)
    assert book is not None
    assert book["last_open_ms"] == core.trading.last_open_ms
    assert [t["id"] for t in book["closed"]] == [t.id for t in core.trading.closed_live]
    outcomes = [o["id"] for o in list(store.iter_jsonl(SHADOW_OUTCOMES))]
    blocks = [b["id"] for b in list(store.iter_jsonl(GUARD_BLOCKS))]
    assert len(outcomes) == len(set(outcomes)) and len(blocks) == len(set(blocks))
    twinned = {t.get("twin_of") for t in [*store.iter_jsonl(SHADOW_OUTCOMES), *book["twins"]]}
    for trade in book["closed"]:
        assert trade["id"] in twinned, trade["id"]
    blocked = sum(t["blocked"] for t in book["guard"].values())
    assert blocked == len(blocks), "a block record was lost in the outage"
    assert store.warnings == []


def test_a_failed_append_leaves_no_half_record_to_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync fails after the bytes reached the file: the append is undone, the retry is the
    only copy."""
    disk = Disk(monkeypatch, "fsync", errno.EIO)
    store = Store(tmp_path)
    assert store.append_jsonl(SHADOW_OUTCOMES, {"id": "S-1"})
    disk.broken = True
    assert not store.append_jsonl(SHADOW_OUTCOMES, {"id": "S-2"})
    disk.broken = False
    assert store.append_jsonl(SHADOW_OUTCOMES, {"id": "S-2"})
    assert [r["id"] for r in list(store.iter_jsonl(SHADOW_OUTCOMES))] == ["S-1", "S-2"]
