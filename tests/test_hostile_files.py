"""Hostile files: no symlink is followed, everything is owner-only, deep JSON is set aside.

The bot may run as root: a symlink planted where a store file, log, rotated log, lock or
`logs/cockpit.log` should be must never lead a read, an append, a truncate or a chmod to the
file it points at. The link itself is set aside as `NAME.corrupt-<time>` (the lock: start-up
stops with one line). Every folder the store makes is 0700 and every file 0600.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigalpha_tui import runtime
from bigalpha_tui.core import store as store_mod
from bigalpha_tui.core.errors import StoreError
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import (
    ENGINE_STATE,
    GUARD_BLOCKS,
    JSON_FILES,
    JSONL_FILES,
    LEARNING_HISTORY,
    POSITIONS,
    SHADOW_OUTCOMES,
    Store,
    StoreLock,
)

CLI = [sys.executable, "-m", "bigalpha_tui.cli"]
PRECIOUS = b"root:x:0:0:root:/root:/bin/bash\n"


@pytest.fixture(autouse=True)
def release_locks() -> Iterator[None]:
    yield
    for lock in list(store_mod._HELD_LOCKS.values()):
        lock.release()


@pytest.fixture
def wide_umask() -> Iterator[None]:
    """The usual 022: anything the store does not make private itself would be 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def build(data: Path, tmp: Path) -> runtime.Runtime:
    args = argparse.Namespace(data_dir=str(data), config=os.devnull)
    return runtime.build(args)


def feed_bars(rt: runtime.Runtime, minutes: int = 5) -> None:
    stream = simulate_minutes(rt.config.source.symbols, 7, DEFAULT_START_MS, SimParams())
    for _, minute in zip(range(minutes), stream, strict=False):
        for bar in minute:
            assert rt.core.process_bar(bar)


def plant_link(tmp_path: Path, where: Path, content: bytes = PRECIOUS) -> Path:
    """A symlink at `where` to a file outside the store holding `content`."""
    target = tmp_path / "outside" / f"victim-{where.name}"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(content)
    target.chmod(0o644)
    where.parent.mkdir(parents=True, exist_ok=True)
    where.symlink_to(target)
    return target


def assert_untouched(target: Path, content: bytes = PRECIOUS) -> None:
    assert target.read_bytes() == content, f"{target.name}: the link's target was written"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644, "the link's target was chmod'ed"


def set_aside_links(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.glob(f"{Path(name).name}.corrupt-*") if p.is_symlink()]


# -- 1. no symlink is followed ----------------------------------------------------------------


@pytest.mark.parametrize("name", JSON_FILES)
def test_a_symlinked_state_file_is_set_aside_not_read(tmp_path: Path, name: str) -> None:
    data = tmp_path / "store"
    (data / "intelligence").mkdir(parents=True)
    valid = json.dumps({"schema_version": 1, "paused": True, "symbols": {}}).encode()
    target = plant_link(tmp_path, data / name, valid)
    rt = build(data, tmp_path)
    feed_bars(rt)
    rt.core.checkpoint()
    assert_untouched(target, valid)
    assert set_aside_links((data / name).parent, name), "the link itself must be set aside"
    told = [w for w in rt.core.snapshot().warnings if w.startswith(f"{name}:")]
    assert told and "symbolic link" in told[0]
    assert not (data / name).is_symlink()


@pytest.mark.parametrize("name", JSONL_FILES)
def test_a_symlinked_log_is_set_aside_and_never_appended_to(tmp_path: Path, name: str) -> None:
    data = tmp_path / "store"
    data.mkdir()
    line = b'{"id": "G-victim", "cycle": 1}\n'
    target = plant_link(tmp_path, data / name, line)
    rt = build(data, tmp_path)
    assert [r.get("id") for r in list(rt.store.iter_jsonl(name))] == []
    assert rt.store.append_jsonl(name, {"id": "X-1"})
    feed_bars(rt)
    rt.core.checkpoint()
    assert_untouched(target, line)
    assert set_aside_links(data, name)
    assert [r["id"] for r in list(rt.store.iter_jsonl(name))][:1] == ["X-1"]
    assert not (data / name).is_symlink()


def test_a_log_that_becomes_a_symlink_while_running_is_not_appended_to(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    assert store.append_jsonl(GUARD_BLOCKS, {"id": "B-1"})
    (tmp_path / "store" / GUARD_BLOCKS).unlink()
    target = plant_link(tmp_path, tmp_path / "store" / GUARD_BLOCKS)
    assert store.append_jsonl(GUARD_BLOCKS, {"id": "B-2"})
    assert_untouched(target)
    assert [r["id"] for r in list(store.iter_jsonl(GUARD_BLOCKS))] == ["B-2"]


def test_a_symlinked_rotated_log_is_set_aside_not_read_or_rotated_into(tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    victim_line = b'{"id": "S-victim"}\n'
    target = plant_link(tmp_path, data / f"{SHADOW_OUTCOMES}.1", victim_line)
    store = Store(data, jsonl_rotate_bytes=200)
    ids = [r["id"] for r in store.iter_jsonl(SHADOW_OUTCOMES, with_rotated=True)]
    assert "S-victim" not in ids
    for n in range(40):  # several rotations shift every generation
        assert store.append_jsonl(SHADOW_OUTCOMES, {"id": f"S-{n}", "pad": "x" * 20})
    assert_untouched(target, victim_line)
    assert "S-victim" not in [
        r["id"] for r in list(store.iter_jsonl(SHADOW_OUTCOMES, with_rotated=True))
    ]
    assert not [p for p in data.iterdir() if p.is_symlink() and ".corrupt-" not in p.name]


def test_a_symlinked_lock_stops_start_up_and_its_target_is_untouched(tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    target = plant_link(tmp_path, data / ".lock")
    with pytest.raises(StoreError) as err:
        StoreLock(data).acquire()
    assert "symbolic link" in str(err.value) and str(data / ".lock") in str(err.value)
    assert_untouched(target)
    done = subprocess.run(
        [*CLI, "--no-ui", "--duration", "1m", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and ".lock" in done.stderr
    assert_untouched(target)


def test_a_folder_where_the_lock_should_be_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / ".lock").mkdir()
    with pytest.raises(StoreError, match="not a plain file"):
        StoreLock(tmp_path).acquire()


@pytest.mark.parametrize("name", [POSITIONS, GUARD_BLOCKS])
def test_a_folder_or_fifo_where_a_store_file_should_be_is_set_aside(
    tmp_path: Path, name: str
) -> None:
    data = tmp_path / "store"
    data.mkdir()
    (data / name).mkdir()
    (data / name / "inside").write_bytes(PRECIOUS)
    os.mkfifo(data / ENGINE_STATE)  # a read would block forever
    rt = build(data, tmp_path)
    feed_bars(rt)
    rt.core.checkpoint()
    aside = list(data.glob(f"{name}.corrupt-*"))
    assert len(aside) == 1 and (aside[0] / "inside").read_bytes() == PRECIOUS
    assert [p for p in data.glob(f"{ENGINE_STATE}.corrupt-*") if stat.S_ISFIFO(p.lstat().st_mode)]
    assert (data / name).is_file() or not (data / name).exists()


def test_the_cockpit_log_never_follows_a_symlink(tmp_path: Path) -> None:
    from bigalpha_tui.app import COCKPIT_LOG, log_away_from_the_screen

    target = plant_link(tmp_path, tmp_path / "store" / COCKPIT_LOG)
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        log_away_from_the_screen(tmp_path / "store" / COCKPIT_LOG)
        logging.getLogger("bigalpha_tui.core.ratelimit").warning("fapi: connection error")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved:
            root.addHandler(handler)
    assert_untouched(target)
    log_file = tmp_path / "store" / COCKPIT_LOG
    assert not log_file.is_symlink() and "fapi: connection error" in log_file.read_text()
    assert set_aside_links(log_file.parent, COCKPIT_LOG.name)
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("folder", ["", "intelligence", "logs"])
def test_a_symlinked_data_folder_is_refused(tmp_path: Path, folder: str) -> None:
    real = tmp_path / "real"
    (real / "intelligence").mkdir(parents=True)
    data = tmp_path / "store"
    if folder:
        data.mkdir()
        (data / folder).symlink_to(real / "intelligence", target_is_directory=True)
    else:
        data.symlink_to(real, target_is_directory=True)
    with pytest.raises(StoreError, match="symbolic link"):
        StoreLock(data).acquire()
        Store(data)
    assert sorted(p.name for p in real.rglob("*")) == ["intelligence"]


# -- 2. owner-only ------------------------------------------------------------------------


def modes_under(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(os.lstat(root).st_mode)}
    for folder, dirs, files in os.walk(root):
        for entry in (*dirs, *files):
            path = Path(folder) / entry
            out[str(path.relative_to(root))] = os.lstat(path).st_mode
    return out


def assert_owner_only(root: Path) -> None:
    wrong = {}
    for rel, mode in modes_under(root).items():
        if rel == ".":
            want = 0o700
            got = mode
        else:
            assert not stat.S_ISLNK(mode) or ".corrupt-" in rel, rel
            want = 0o700 if stat.S_ISDIR(mode) else 0o600
            got = stat.S_IMODE(mode)
        if got != want and not stat.S_ISLNK(mode):
            wrong[rel] = oct(got)
    assert not wrong, f"not owner-only: {wrong}"


def test_every_file_and_folder_the_store_writes_is_owner_only(
    tmp_path: Path, wide_umask: None
) -> None:
    from bigalpha_tui.app import COCKPIT_LOG, log_away_from_the_screen

    data = tmp_path / "store"
    (data / "intelligence").mkdir(parents=True, mode=0o755)
    (data / "intelligence").chmod(0o755)
    (data / LEARNING_HISTORY).write_bytes(b'{"id": "L-0"}\n')  # an older version's 0644 log
    (data / LEARNING_HISTORY).chmod(0o644)
    (data / POSITIONS).write_bytes(b"garbage")  # quarantined
    (data / ENGINE_STATE).write_bytes(b'{"guards_off": []}')  # migrated, original kept
    (data / GUARD_BLOCKS).write_bytes(b'{"id": "B-0"}\n{"id": "B-')  # torn tail repaired
    rt = runtime.build(argparse.Namespace(data_dir=str(data), config=os.devnull))
    rt.store.jsonl_rotate_bytes = 300
    for n in range(40):
        assert rt.store.append_jsonl(SHADOW_OUTCOMES, {"id": f"S-{n}", "pad": "x" * 20})
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        log_away_from_the_screen(data / COCKPIT_LOG)
        logging.getLogger("x").warning("a line for the cockpit log")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved:
            root.addHandler(handler)
    feed_bars(rt, 30)
    rt.core.checkpoint()
    names = set(modes_under(data))
    assert {".lock", f"{SHADOW_OUTCOMES}.4", str(COCKPIT_LOG), "logs"} <= names
    assert any(".corrupt-" in n for n in names) and any(".schema0-" in n for n in names)
    assert_owner_only(data)


def test_a_headless_run_leaves_only_owner_only_files(tmp_path: Path) -> None:
    data = tmp_path / "store"
    done = subprocess.run(
        [*CLI, "--no-ui", "--speed", "max", "--duration", "2h", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr
    assert (data / POSITIONS).exists()
    assert_owner_only(data)


# -- 4. deeply nested JSON -------------------------------------------------------------------

DEEP = {
    "list": b"[" * 100_000 + b"]" * 100_000,
    "list-1000": b"[" * 1000 + b"]" * 1000,
    "object": b'{"a":' * 1000 + b"1" + b"}" * 1000,
}


@pytest.mark.parametrize("kind", DEEP)
@pytest.mark.parametrize("name", JSON_FILES)
def test_a_deeply_nested_state_file_is_set_aside_and_the_app_starts(
    tmp_path: Path, name: str, kind: str
) -> None:
    data = tmp_path / "store"
    (data / "intelligence").mkdir(parents=True)
    (data / name).write_bytes(DEEP[kind])
    rt = build(data, tmp_path)
    aside = list((data / name).parent.glob(f"{Path(name).name}.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [DEEP[kind]]
    feed_bars(rt)


@pytest.mark.parametrize("name", JSONL_FILES)
def test_a_deeply_nested_log_line_is_skipped_and_counted(tmp_path: Path, name: str) -> None:
    data = tmp_path / "store"
    data.mkdir()
    deep = b"[" * 100_000 + b"]" * 100_000
    (data / name).write_bytes(b'{"id": "X-1", "cycle": 1}\n' + deep + b"\n")
    rt = build(data, tmp_path)
    assert [r["id"] for r in list(rt.store.iter_jsonl(name))] == ["X-1"]
    assert any("skipped 1 unreadable line" in w for w in rt.core.snapshot().warnings)
    feed_bars(rt)


def test_a_data_folder_shared_with_other_files_is_never_narrowed(
    tmp_path: Path, wide_umask: None, caplog: pytest.LogCaptureFixture
) -> None:
    """`--data-dir ~` or `/tmp`: the operator's own files and folders keep their modes."""
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "notes.txt").write_bytes(b"mine")
    for path, mode in ((home, 0o755), (home / "photos", 0o755), (home / "notes.txt", 0o644)):
        path.chmod(mode)
    store = Store(home)
    assert store.append_jsonl(GUARD_BLOCKS, {"id": "B-1"})
    modes = {p.name: stat.S_IMODE(p.lstat().st_mode) for p in (home, *home.iterdir())}
    assert modes["home"] == 0o755 and modes["photos"] == 0o755 and modes["notes.txt"] == 0o644
    assert modes[GUARD_BLOCKS] == 0o600 and modes["intelligence"] == 0o700
    assert "give the store a folder of its own" in caplog.text


def test_status_never_reads_through_a_symlink_and_moves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    book = json.dumps({"schema_version": 1, "open": [], "totals": {"closed_count": 99}})
    target = plant_link(tmp_path, data / POSITIONS, book.encode())
    store = Store(data, read_only=True)
    assert store.read_json(POSITIONS) is None
    assert "symbolic link" in store.warnings[0].message and "read-only" in store.warnings[0].message
    assert (data / POSITIONS).is_symlink()
    assert_untouched(target, book.encode())


def test_the_cli_refuses_a_symlinked_data_folder_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "store").symlink_to(tmp_path / "real", target_is_directory=True)
    done = subprocess.run(
        [*CLI, "--no-ui", "--duration", "1m", "--data-dir", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "symbolic link" in done.stderr
    assert list((tmp_path / "real").iterdir()) == []


def test_a_full_disk_at_the_first_start_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real_open = os.open

    def full(path: object, flags: int, *args: object) -> int:
        if str(path).endswith(".lock"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(StoreError, match=r"cannot create the lock file .*No space left"):
        StoreLock(tmp_path / "store").acquire()
