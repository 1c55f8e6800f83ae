"""Exit never hangs: the cockpit on a real pty ends soon after its state is saved, whatever
the terminal does, and frees the data folder for the next run.

The frozen-terminal case is what a stalled SSH client does: the cockpit's output fills the
pty, the terminal never reads it again, and then the operator (or systemd) sends SIGTERM.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bigalpha_tui.core.store import ENGINE_STATE, LOCK_FILE, POSITIONS

#: what the issue promises for the loop of quits; a frozen terminal gets the same bound
EXIT_BOUND_S = 3.0


def take_terminal() -> None:
    """In the child, in its new session: the pty becomes its controlling terminal, so
    closing the pty sends it SIGHUP as a dropped SSH session does."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyCockpit:
    """`bigalpha-tui` on a fresh pty whose controlling side this test reads, or not."""

    def __init__(self, data: Path, term: str, home: Path, *command: str) -> None:
        self.data = data
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = {**os.environ, "TERM": term, "XDG_CONFIG_HOME": str(home / "xdg")}
        env.pop("BIGALPHA_DATA_DIR", None)
        self.master = master
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bigalpha_tui.cli",
                *(command or ("--speed", "60")),
                "--data-dir",
                str(data),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=take_terminal,
        )
        os.close(slave)
        self.output = bytearray()

    def read_for(self, seconds: float) -> None:
        """Read (and keep) everything it draws for this long."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:  # the pty closed: the process is gone
                    return

    def read_until_drawn(self, timeout_s: float = 30.0) -> None:
        """Read until the main screen is up (its footer names the quit key)."""
        end = time.monotonic() + timeout_s
        while b"Quit" not in self.output:
            assert time.monotonic() < end, f"no cockpit on the pty: {bytes(self.output[-500:])!r}"
            assert self.proc.poll() is None, f"exited early: {bytes(self.output[-500:])!r}"
            self.read_for(0.1)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def unread_bytes(self) -> int:
        raw = fcntl.ioctl(self.master, termios.FIONREAD, b"\0\0\0\0")
        return int(struct.unpack("i", raw)[0])

    def seconds_to_exit(self, *, reading: bool, limit_s: float = 30.0) -> float | None:
        """Seconds until the process ended (reading its output meanwhile, or not); None
        when it is still alive after `limit_s`."""
        start = time.monotonic()
        while time.monotonic() - start < limit_s:
            if self.proc.poll() is not None:
                return time.monotonic() - start
            if reading:
                self.read_for(0.05)
            else:
                time.sleep(0.05)
        return None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


@pytest.fixture
def cockpits(tmp_path: Path) -> Iterator[list[PtyCockpit]]:
    """Started cockpits, killed at the end of the test if one is still running."""
    started: list[PtyCockpit] = []
    yield started
    for cockpit in started:
        cockpit.close()


def lock_is_free(data: Path) -> bool:
    fd = os.open(data / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def saved_since(data: Path, wall_s: float) -> bool:
    """The engine state and the book are valid JSON, the engine state written at or after
    `wall_s` (the exit's own save, not an earlier checkpoint)."""
    state = json.loads((data / ENGINE_STATE).read_text())
    json.loads((data / POSITIONS).read_text())
    written_s = (data / ENGINE_STATE).stat().st_mtime
    return bool(state["last_bar_ms"] > 0) and written_s >= wall_s - 0.05


def test_sigterm_ends_a_cockpit_whose_terminal_stopped_reading(
    tmp_path: Path, cockpits: list[PtyCockpit], long_run: bool, report_figure: Callable[[str], None]
) -> None:
    """Read for 5 s, stop reading (the pty fills within a second, then every frame and
    every key waits on it), SIGTERM: the state is saved, the process ends, the lock is free.

    The short form fills Textual's output queue with key presses instead of 30 s of ticks."""
    data = tmp_path / "data"
    cockpit = PtyCockpit(data, "xterm-256color", tmp_path)
    cockpits.append(cockpit)
    cockpit.read_until_drawn()
    cockpit.read_for(5.0 if long_run else 1.0)
    if long_run:
        time.sleep(30.0)
    else:
        deadline = time.monotonic() + 10
        while cockpit.unread_bytes() < 4000:  # the pty's buffer holds about 4 KiB
            assert time.monotonic() < deadline, "the cockpit stopped drawing"
            time.sleep(0.05)
        for _ in range(40):  # each `]` redraws a panel: more frames than Textual queues
            cockpit.type(b"]")
            time.sleep(0.02)
        time.sleep(1.0)
    assert cockpit.proc.poll() is None
    signalled_s = time.time()
    cockpit.proc.send_signal(signal.SIGTERM)
    took_s = cockpit.seconds_to_exit(reading=False, limit_s=10.0)
    assert took_s is not None, "still running 10 s after SIGTERM with a frozen terminal"
    assert took_s < EXIT_BOUND_S + 2.0, f"took {took_s:.1f} s"
    assert cockpit.proc.returncode == 0
    assert lock_is_free(data)
    assert saved_since(data, signalled_s)
    # one line says how it ended: the terminal found stuck once the UI closed, or (on a busy
    # machine, a UI slow to close) the watchdog's grace period over
    log = (data / "logs" / "cockpit.log").read_text()
    assert "ending the process (state saved)" in log
    report_figure(f"exit with a frozen terminal: {took_s:.2f} s after SIGTERM")


#: "hangup" closes the terminal, as a dropped SSH session does
QUITS = ("q", "SIGHUP", "SIGTERM", "SIGINT", "hangup")
CLI_RUN = (sys.executable, "-m", "bigalpha_tui.cli")
TERMS = ("xterm-256color", "xterm")
#: runs in the default loops: every way to quit once, both TERMs among them; --long runs 50
SHORT_RUNS = len(QUITS)


def quit_and_term(run: int) -> tuple[str, str]:
    """The run's way to quit and its TERM: the first five runs take every way once with
    alternating TERMs, the next five the other TERM each (five is odd), so ten runs hold
    every pair."""
    return QUITS[run % len(QUITS)], TERMS[run % len(TERMS)]


def quit_cockpit(cockpit: PtyCockpit, how: str) -> None:
    if how == "q":
        cockpit.type(b"q")
    elif how == "hangup":
        os.close(cockpit.master)  # the kernel sends SIGHUP
        cockpit.master = -1
    else:
        cockpit.proc.send_signal(signal.Signals[how])


def test_quits_in_a_loop_each_exit_within_3_s(
    tmp_path: Path, cockpits: list[PtyCockpit], long_run: bool, report_figure: Callable[[str], None]
) -> None:
    """`q`, SIGHUP, SIGTERM, SIGINT and a closed terminal in turn, on one data folder: each
    run saves, exits 0 within 3 s and leaves the lock free for the next (5 runs; 50 with
    --long)."""
    data = tmp_path / "data"
    slowest_s = 0.0
    runs = 50 if long_run else SHORT_RUNS
    for run in range(runs):
        how, term = quit_and_term(run)
        cockpit = PtyCockpit(data, term, tmp_path)
        cockpits.append(cockpit)
        cockpit.read_until_drawn()
        asked_s = time.time()
        quit_cockpit(cockpit, how)
        took_s = cockpit.seconds_to_exit(reading=how != "hangup", limit_s=10.0)
        assert took_s is not None, f"run {run} ({how}, TERM={term}) still alive after 10 s"
        assert took_s < EXIT_BOUND_S, f"run {run} ({how}, TERM={term}) took {took_s:.1f} s"
        assert cockpit.proc.returncode == 0, f"run {run} ({how}): {bytes(cockpit.output[-300:])!r}"
        assert lock_is_free(data)
        assert saved_since(data, asked_s)
        cockpit.close()
        slowest_s = max(slowest_s, took_s)
    report_figure(f"{runs} quits in a loop on a pty: slowest exit {slowest_s:.2f} s")


def test_attached_cockpits_quit_in_a_loop_and_the_bot_runs_on(
    tmp_path: Path, cockpits: list[PtyCockpit], long_run: bool
) -> None:
    """An attached cockpit ends on `q`, SIGHUP, SIGTERM, SIGINT or a closed terminal within
    3 s, exit 0, and the bot it watched never notices (5 runs; 50 with --long)."""
    data = tmp_path / "data"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("BIGALPHA_DATA_DIR", None)
    bot = subprocess.Popen(
        [*CLI_RUN, "--no-ui", "--speed", "60", "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        for run in range(50 if long_run else SHORT_RUNS):
            how, term = quit_and_term(run)
            cockpit = PtyCockpit(data, term, tmp_path, "attach")
            cockpits.append(cockpit)
            cockpit.read_until_drawn()
            quit_cockpit(cockpit, how)
            took_s = cockpit.seconds_to_exit(reading=how != "hangup", limit_s=10.0)
            assert took_s is not None, f"run {run} ({how}, TERM={term}) still alive after 10 s"
            assert took_s < EXIT_BOUND_S, f"run {run} ({how}, TERM={term}) took {took_s:.1f} s"
            assert cockpit.proc.returncode == 0, f"run {run} ({how})"
            cockpit.close()
            assert bot.poll() is None, "the bot stopped with its cockpit"
        assert not lock_is_free(data), "the bot let go of its store"
    finally:
        bot.terminate()
        assert bot.wait(timeout=30) == 0


class TmuxCockpit:
    """`bigalpha-tui` in a detached tmux session of its own tmux server."""

    def __init__(self, data: Path, term: str, home: Path, server: str) -> None:
        self.server = server
        command = [
            "exec",
            "env",
            f"TERM={term}",
            f"XDG_CONFIG_HOME={home / 'xdg'}",
            sys.executable,
            "-m",
            "bigalpha_tui.cli",
            "--speed",
            "60",
            "--data-dir",
            str(data),
        ]
        self.tmux("new-session", "-d", "-s", "cockpit", "-x", "80", "-y", "24", " ".join(command))
        self.pid = int(self.tmux("display-message", "-p", "-t", "cockpit", "#{pane_pid}"))

    def tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.server, "-f", os.devnull, *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return done.stdout.strip()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "cockpit")

    def alive(self) -> bool:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except FileNotFoundError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def close(self) -> None:
        self.tmux("kill-server")
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_quits_in_a_loop_under_tmux(
    tmp_path: Path, long_run: bool, report_figure: Callable[[str], None]
) -> None:
    """`q`, a closed tmux session (a real SIGHUP) and SIGTERM, with TERM=xterm-256color and
    xterm inside tmux: each exits within 3 s (4 runs; 50 with --long)."""
    data = tmp_path / "data"
    slowest_s = 0.0
    runs = 50 if long_run else 4
    for run in range(runs):
        how = ("q", "hangup", "SIGTERM")[run % 3]
        term = TERMS[run % len(TERMS)]
        cockpit = TmuxCockpit(data, term, tmp_path, server=f"bigalpha-test-{os.getpid()}")
        try:
            deadline = time.monotonic() + 30
            while "Quit" not in cockpit.screen():
                assert cockpit.alive() and time.monotonic() < deadline, "no cockpit in tmux"
                time.sleep(0.1)
            asked_s, start = time.time(), time.monotonic()
            if how == "q":
                cockpit.tmux("send-keys", "-t", "cockpit", "q")
            elif how == "hangup":
                cockpit.tmux("kill-session", "-t", "cockpit")
            else:
                os.kill(cockpit.pid, signal.SIGTERM)
            # the pane's process shows as a zombie while its last threads end: the lock is
            # what the next start needs
            while (cockpit.alive() or not lock_is_free(data)) and time.monotonic() - start < 10:
                time.sleep(0.05)
            took_s = time.monotonic() - start
            assert took_s < EXIT_BOUND_S, f"run {run} ({how}, TERM={term}) took {took_s:.1f} s"
            assert saved_since(data, asked_s)
            slowest_s = max(slowest_s, took_s)
        finally:
            cockpit.close()
    report_figure(f"{runs} quits in a loop under tmux: slowest exit {slowest_s:.2f} s")
