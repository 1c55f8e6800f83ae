"""Store: atomic JSON writes, torn-line-tolerant JSONL, quarantine instead of overwrite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bigalpha_tui.core.store import Store


def test_json_round_trip_carries_schema_version(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.write_json("engine_state.json", {"a": 1, "pf": float("inf")})
    raw = json.loads((tmp_path / "engine_state.json").read_text())
    assert raw["schema_version"] == 1
    assert store.read_json("engine_state.json") == {"a": 1, "pf": "inf"}


def test_missing_file_reads_as_none_without_warning(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.read_json("hurst_cache.json") is None
    assert store.warnings == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"schema_version": 1, "a":',
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'{"schema_version": 99, "a": 1}',
        b'{"a": 1}',
    ],
    ids=["empty", "truncated", "not-utf8", "not-object", "future-schema", "no-schema"],
)
def test_unreadable_file_is_set_aside_not_overwritten(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "hurst_cache.json").write_bytes(content)
    store = Store(tmp_path, now=lambda: 1_767_600_000.0)
    assert store.read_json("hurst_cache.json") is None
    aside = list(tmp_path.glob("hurst_cache.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert not (tmp_path / "hurst_cache.json").exists()
    assert any("set aside" in w.message for w in store.warnings)


def test_second_quarantine_in_the_same_second_keeps_both(tmp_path: Path) -> None:
    store = Store(tmp_path, now=lambda: 1_767_600_000.0)
    for content in (b"x", b"y"):
        (tmp_path / "symbol_states.json").write_bytes(content)
        store.read_json("symbol_states.json")
    kept = sorted(p.read_bytes() for p in tmp_path.glob("symbol_states.json.corrupt-*"))
    assert kept == [b"x", b"y"]


def test_payload_rejected_by_parser_is_quarantined(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_json("symbol_states.json", {"symbols": "not a mapping"})

    def parse(doc: dict[str, object]) -> object:
        symbols = doc["symbols"]
        if not isinstance(symbols, dict):
            raise ValueError("symbols must be a table")
        return symbols

    assert store.load_or_quarantine("symbol_states.json", parse) is None
    assert list(tmp_path.glob("symbol_states.json.corrupt-*"))


def test_read_only_store_never_moves_a_corrupt_file(tmp_path: Path) -> None:
    (tmp_path / "hurst_cache.json").write_bytes(b"{broken")
    store = Store(tmp_path, read_only=True)
    assert store.read_json("hurst_cache.json") is None
    assert (tmp_path / "hurst_cache.json").read_bytes() == b"{broken"


def test_jsonl_skips_a_torn_last_line_and_appends_after_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.append_jsonl("guard_blocks.jsonl", {"n": 1})
    with open(tmp_path / "guard_blocks.jsonl", "ab") as fh:
        fh.write(b'{"n": 2, "tor')  # a crash mid-append
    store.append_jsonl("guard_blocks.jsonl", {"n": 3})
    assert [r["n"] for r in list(store.iter_jsonl("guard_blocks.jsonl"))] == [1, 3]
    assert any("unreadable line" in w.message for w in store.warnings)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path)
    store.write_json("engine_state.json", {"v": "old"})

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    assert store.write_json("engine_state.json", {"v": "new"}) is False
    monkeypatch.undo()
    assert store.read_json("engine_state.json") == {"v": "old"}
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    assert store.last_write_error is not None and "disk full" in store.last_write_error
    assert store.write_json("engine_state.json", {"v": "new"})
    assert store.last_write_error is None


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bigalpha_tui.core.store import Store
    store = Store(Path(sys.argv[1]))
    blob = "x" * 200_000
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        store.write_json("positions_futures.json", {"version": i, "blob": blob})
    """
)


@pytest.mark.slow
def test_killed_writer_leaves_every_file_old_or_new(tmp_path: Path) -> None:
    """SIGKILL a process that rewrites a 200 KB file in a loop; the file always parses."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    seen_versions: set[int] = set()
    kills = 25
    for attempt in range(kills):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "store")], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(0.02 + (attempt % 5) * 0.013)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        store = Store(tmp_path / "store")  # opening the store sweeps a killed write's temp
        assert not list((tmp_path / "store").glob(".*.tmp"))
        doc = store.read_json("positions_futures.json")
        if doc is not None:
            assert doc["blob"] == "x" * 200_000
            seen_versions.add(doc["version"])
        assert not list((tmp_path / "store").glob("*.corrupt-*")), "a killed write tore a file"
    assert seen_versions, "the writer never completed a write"


def test_second_instance_on_the_same_store_is_refused(tmp_path: Path) -> None:
    from bigalpha_tui.core.errors import StoreError
    from bigalpha_tui.core.store import StoreLock

    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from bigalpha_tui.core.store import StoreLock\n"
        "StoreLock(Path(sys.argv[1])).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    try:
        with pytest.raises(StoreError) as err:
            StoreLock(tmp_path).acquire()
        assert f"pid {holder.pid}" in str(err.value) and "--data-dir" in str(err.value)
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops the lock with the process
        holder.wait()
    again = StoreLock(tmp_path)
    again.acquire()
    again.release()


def test_cli_refuses_a_second_headless_run_but_status_still_reads(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    cmd = [sys.executable, "-m", "bigalpha_tui.cli"]
    first = subprocess.Popen(
        [*cmd, "--no-ui", "--speed", "60", "--data-dir", store], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "store" / ".lock").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        second = subprocess.run(
            [*cmd, "--no-ui", "--data-dir", store], capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert "another bigalpha-tui" in second.stderr and "Traceback" not in second.stderr
        status = subprocess.run(
            [*cmd, "status", "--data-dir", store], capture_output=True, text=True, timeout=60
        )
        assert status.returncode == 0, status.stderr
    finally:
        first.terminate()
        first.wait(timeout=30)


# -- rotation --------------------------------------------------------------------------------


def test_a_log_past_its_size_is_rotated_and_readers_of_history_still_see_it(
    tmp_path: Path,
) -> None:
    from bigalpha_tui.core.store import ROTATED_KEEP

    store = Store(tmp_path, jsonl_rotate_bytes=200)
    for n in range(60):
        assert store.append_jsonl("shadow_trade_outcomes.jsonl", {"id": f"S-{n}", "pad": "x" * 20})
    names = sorted(p.name for p in tmp_path.glob("shadow_trade_outcomes.jsonl*"))
    assert names == ["shadow_trade_outcomes.jsonl"] + [
        f"shadow_trade_outcomes.jsonl.{n}" for n in range(1, ROTATED_KEEP + 1)
    ]
    assert all(p.stat().st_size < 260 for p in tmp_path.glob("shadow_trade_outcomes.jsonl*"))
    recent = [r["id"] for r in list(store.iter_jsonl("shadow_trade_outcomes.jsonl"))]
    history = [
        r["id"] for r in list(store.iter_jsonl("shadow_trade_outcomes.jsonl", with_rotated=True))
    ]
    assert history[-len(recent) :] == recent and len(history) > len(recent)
    assert history == sorted(history, key=lambda i: int(i[2:]))  # oldest first, no gap inside
    assert history[-1] == "S-59" and int(history[0][2:]) > 0  # the oldest were dropped


def test_the_learning_loop_and_the_duplicate_guard_read_a_just_rotated_log(
    tmp_path: Path,
) -> None:
    from bigalpha_tui.core.learning_store import read_ledgers
    from bigalpha_tui.core.ledger import RecentIds
    from bigalpha_tui.core.trades import ClosedTrade, Ledger

    store = Store(tmp_path, jsonl_rotate_bytes=1)  # every append rotates the one before
    trade = ClosedTrade.from_record(_closed_shadow_record())
    assert trade.ledger is Ledger.SHADOW
    ids = RecentIds(store, "shadow_trade_outcomes.jsonl")
    assert ids.append_once(trade.to_record())
    assert ids.append_once({**trade.to_record(), "id": "S-2"})
    assert (tmp_path / "shadow_trade_outcomes.jsonl.1").exists()
    again = RecentIds(Store(tmp_path, jsonl_rotate_bytes=1), "shadow_trade_outcomes.jsonl")
    assert not again.append_once(trade.to_record()), "a rotated record was appended twice"
    shadow = read_ledgers(store).shadow
    assert sorted(t.id for t in shadow) == sorted([trade.id, "S-2"])
    assert all(t.ledger is Ledger.SHADOW for t in shadow)


def _closed_shadow_record() -> dict[str, object]:
    from learning_helpers import trade

    from bigalpha_tui.core.trades import Ledger

    return trade(1.0, ledger=Ledger.SHADOW).to_record()
