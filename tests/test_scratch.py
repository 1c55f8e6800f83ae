"""Throwaway folders a killed replay or sweep left behind are removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bigalpha_tui import scratch

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).parent / "data"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_folders_of_dead_processes_go_and_nothing_else_does(temp_root: Path) -> None:
    dead = _dead_pid()
    left = temp_root / f"bigalpha-replay-{dead}-abc_1234"
    (left / "sub").mkdir(parents=True)
    (left / "sub" / "trades.jsonl").write_text("{}\n")
    running = temp_root / f"bigalpha-replay-{os.getppid()}-def56789"  # a live process's
    running.mkdir()
    other_kind = temp_root / f"bigalpha-sweep-{dead}-ghi01234"
    other_kind.mkdir()
    unrelated = temp_root / f"something-{dead}-else"
    unrelated.mkdir()
    # a symlink named like a left folder, pointing at a folder that must survive
    precious = temp_root / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    link = temp_root / f"bigalpha-replay-{dead}-link0000"
    link.symlink_to(precious, target_is_directory=True)
    plain_file = temp_root / f"bigalpha-replay-{dead}-file0000"
    plain_file.write_text("not a folder")

    made = scratch.scratch_dir("replay")

    assert not left.exists()
    assert running.is_dir() and other_kind.is_dir() and unrelated.is_dir()
    assert link.is_symlink() and (precious / "keep.txt").read_text() == "keep"
    assert plain_file.is_file()
    assert made.parent == temp_root and made.name.startswith(f"bigalpha-replay-{os.getpid()}-")
    assert made.stat().st_mode & 0o777 == 0o700
    # the new folder is this process's: a second run while it lives leaves it alone
    scratch.remove_stale("replay")
    assert made.is_dir()


def test_a_killed_replay_leaves_a_folder_the_next_replay_removes(temp_root: Path) -> None:
    """SIGKILL cannot be caught: the replay's folder stays until the next replay starts."""
    data = TEST_DATA / "AVAXUSDT-1m-2026-02-head.csv.gz"
    env = {**os.environ, "TMPDIR": str(temp_root)}
    command = [sys.executable, "-m", "bigalpha_tui.cli", "replay", str(data), "--json"]
    slow = [*command, "--speed", "60"]  # paced: a bar a second, plenty of time to kill it
    child = subprocess.Popen(slow, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30.0
    while not list(temp_root.glob("bigalpha-replay-*")) and time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.skip("the replay finished before it could be killed")
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    left = list(temp_root.glob(f"bigalpha-replay-{child.pid}-*"))
    assert left, "a SIGKILLed replay leaves its folder (nothing can remove it then)"
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not [p for p in left if p.exists()]
    assert not list(temp_root.glob("bigalpha-replay-*"))  # its own is gone too
