"""The control channel: `bigalpha-tui ctl` steering a running core over a Unix socket."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from bigalpha_tui import ctl as ctl_mod
from bigalpha_tui.control import ControlError, ControlServer, Reply, socket_path
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.store import ENGINE_STATE, Store
from bigalpha_tui.core.types import BlockReason
from bigalpha_tui.ctl import NotRunning, cmd_ctl, send


class NoBars:
    name = "none"
    symbols: tuple[str, ...] = ()

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[object]:
        return
        yield  # pragma: no cover

    def health(self) -> object:
        from bigalpha_tui.core.sources.base import SourceHealth

        return SourceHealth(self.name)

    async def aclose(self) -> None:
        return None


def make_core(root: Path) -> Core:
    core = Core(Config(), NoBars(), SimClock(1_767_600_000.0), Store(root))  # type: ignore[arg-type]
    return core


async def ask(root: Path, text: str) -> Reply:
    """The `ctl` client's request, from a thread so the server's event loop keeps running."""
    return await anyio.to_thread.run_sync(partial(send, root, text, 5.0))


# -- the server in process -------------------------------------------------------------


@pytest.mark.anyio
async def test_pause_over_the_socket_pauses_the_core(short_tmp: Path) -> None:
    core = make_core(short_tmp)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        reply = await ask(short_tmp, "pause")
        guard = await ask(short_tmp, "guard whale_conflict off")
        tg.cancel_scope.cancel()
    assert reply == Reply(True, "entries paused (exits keep running)")
    assert guard.ok and core.guards_enabled[BlockReason.WHALE_CONFLICT] is False
    assert core.paused


@pytest.mark.anyio
async def test_a_refused_command_answers_not_ok_with_the_reason(short_tmp: Path) -> None:
    core = make_core(short_tmp)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        release = await ask(short_tmp, "release BTCUSDT")
        unknown = await ask(short_tmp, "close NOSUCH")
        garbage = await ask(short_tmp, "launch rockets")
        tg.cancel_scope.cancel()
    assert not release.ok and "BTCUSDT is not on probation" in release.message
    assert not unknown.ok and "unknown symbol NOSUCH; this run trades" in unknown.message
    assert "BTCUSDT" in unknown.message
    assert not garbage.ok and "unknown command" in garbage.message


@pytest.mark.anyio
async def test_a_pause_the_store_cannot_save_answers_applied_but_not_saved(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = make_core(short_tmp)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        monkeypatch.setattr(os, "fsync", full)
        reply = await ask(short_tmp, "pause")
        monkeypatch.undo()
        saved = await ask(short_tmp, "resume")
        tg.cancel_scope.cancel()
    assert reply.ok and not reply.saved and core.store.write_failures
    assert reply.message.startswith("entries paused")
    assert "applied but not saved: disk full: engine_state.json" in reply.message
    assert saved == Reply(True, "entries resumed")


def test_ctl_exits_3_when_the_command_was_applied_but_not_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "entries paused (exits keep running); applied but not saved: disk full"
    monkeypatch.setattr(ctl_mod, "send", lambda *_: Reply(True, message, saved=False))
    assert cmd_ctl(["--data-dir", str(tmp_path), "pause"]) == 3
    assert capsys.readouterr().err.strip() == message


@pytest.mark.anyio
async def test_learn_answers_with_the_cycle_summary(short_tmp: Path) -> None:
    core = make_core(short_tmp)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        reply = await ask(short_tmp, "learn")
        tg.cancel_scope.cancel()
    assert reply.ok and reply.message.startswith("learning cycle 1")


@pytest.mark.anyio
async def test_the_socket_is_private_and_removed_on_close(short_tmp: Path) -> None:
    path = socket_path(short_tmp)
    async with ControlServer(make_core(short_tmp), short_tmp):
        mode = os.stat(path).st_mode
        assert stat.S_ISSOCK(mode)
        assert stat.S_IMODE(mode) == 0o600
    assert not path.exists()


@pytest.mark.anyio
async def test_a_socket_left_by_a_crashed_run_is_replaced(short_tmp: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(socket_path(short_tmp)))
    dead.close()  # the file stays, nobody listens: what kill -9 leaves behind
    core = make_core(short_tmp)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        assert (await ask(short_tmp, "resume")).ok
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_live_socket_of_another_run_is_never_taken_over(short_tmp: Path) -> None:
    async with ControlServer(make_core(short_tmp), short_tmp):
        with pytest.raises(ControlError, match="another bigalpha-tui answers"):
            await ControlServer(make_core(short_tmp), short_tmp).start()
        assert socket_path(short_tmp).exists()


@pytest.mark.anyio
async def test_a_file_in_the_sockets_place_is_left_alone(short_tmp: Path) -> None:
    socket_path(short_tmp).write_text("operator notes")
    with pytest.raises(ControlError, match="not a socket"):
        await ControlServer(make_core(short_tmp), short_tmp).start()
    assert socket_path(short_tmp).read_text() == "operator notes"


# -- the client ------------------------------------------------------------------------


def test_ctl_with_nothing_running_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd_ctl(["--data-dir", str(tmp_path), "pause"]) == 2
    assert f"no bigalpha-tui is running on {tmp_path}" in capsys.readouterr().err


def test_ctl_with_a_stale_socket_says_nothing_runs(short_tmp: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(socket_path(short_tmp)))
    dead.close()
    with pytest.raises(NotRunning, match="no bigalpha-tui is running"):
        send(short_tmp, "pause", 1.0)


@pytest.mark.parametrize(
    "words", [[], ["fly"], ["guard", "FEE_EDGE"], ["guard", "GOLDEN_HOUR", "off"], ["release"]]
)
def test_ctl_usage_errors_exit_2(
    tmp_path: Path, words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd_ctl(["--data-dir", str(tmp_path), *words]) == 2
    assert "bigalpha-tui ctl:" in capsys.readouterr().err


# -- against a real headless run -------------------------------------------------------


CLI = (sys.executable, "-m", "bigalpha_tui.cli")


def ctl(data: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "ctl", "--data-dir", str(data), *words],
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for_socket(path: Path, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert process.poll() is None, "the headless run ended before opening its socket"
        assert time.monotonic() < deadline, "no control socket appeared"
        time.sleep(0.05)


def test_ctl_steers_a_real_headless_run(short_tmp: Path) -> None:
    data = short_tmp / "data"
    with open(short_tmp / "out.log", "wb") as out:
        run = subprocess.Popen(
            [*CLI, "--no-ui", "--speed", "60", "--data-dir", str(data)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_socket(socket_path(data), run)
        assert stat.S_IMODE(os.stat(socket_path(data)).st_mode) == 0o600
        pause = ctl(data, "pause")
        guard = ctl(data, "guard", "FEE_EDGE", "off")
        learn = ctl(data, "learn")
        release = ctl(data, "release", "NOSUCH")
        usage = ctl(data, "guard", "FEE_EDGE")
        assert (pause.returncode, pause.stdout.strip()) == (
            0,
            "entries paused (exits keep running)",
        )
        assert (guard.returncode, guard.stdout.strip()) == (0, "guard FEE_EDGE switched OFF")
        assert learn.returncode == 0 and re.match(r"learning cycle \d+ \(operator\)", learn.stdout)
        assert release.returncode == 1 and "unknown symbol NOSUCH" in release.stderr
        assert usage.returncode == 2 and "usage: guard NAME on|off" in usage.stderr
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 0
    assert not socket_path(data).exists()
    state = json.loads((data / ENGINE_STATE).read_text())
    assert state["paused"] is True and state["guards_enabled"]["FEE_EDGE"] is False
    log = (short_tmp / "out.log").read_text()
    assert "release NOSUCH: refused" in log
    assert ctl(data, "resume").returncode == 2  # nothing runs any more
