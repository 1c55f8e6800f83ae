"""`bigalpha-tui attach`: the cockpit over a bot that runs in another process.

The bot (`--no-ui`, or another cockpit) streams its snapshots on its control socket
(`subscribe`, see control.py); `RemoteCore` stands in for the core the cockpit usually runs:
`snapshot()` is the latest streamed one, `submit()` sends the command as a `ctl` request and
hands the reply back as a "command" event, `run()` keeps the connection and, when the bot
goes away, retries every `RETRY_S` seconds. Until the bot answers the cockpit shows the
store's last state, read-only, marked "BOT STOPPED".
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import anyio
import anyio.abc
from textual.worker import Worker

from bigalpha_tui import locations, unixsock
from bigalpha_tui.app import CockpitApp
from bigalpha_tui.control import SUBSCRIBE, Reply, socket_path
from bigalpha_tui.core import snapshot_codec as codec
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import CommandError
from bigalpha_tui.core.snapshot import Event, Heartbeat, Snapshot
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.status_bar import StatusInfo

log = logging.getLogger(__name__)

RETRY_S = 2.0
MAX_LINE_BYTES = 16 << 20
COMMAND_TIMEOUT_S = 35.0


class RemoteClock:
    """The bot's market clock, as last told, running on at the bot's speed while attached."""

    def __init__(self, wall: Callable[[], float] = time.monotonic) -> None:
        self._wall = wall
        self.market_s: float | None = None
        self.at_wall_s = 0.0
        self.speed: float | None = 1.0
        self.running = False

    def set(self, market_s: float, speed: float | None) -> None:
        self.market_s = market_s
        self.speed = speed
        self.at_wall_s = self._wall()

    def now(self) -> float:
        if self.market_s is None:
            return time.time()
        if not self.running or not self.speed:
            return self.market_s
        return self.market_s + (self._wall() - self.at_wall_s) * self.speed

    def wall(self) -> float:
        return time.time()


class RemoteCore:
    """What `CockpitApp` uses of a core, fed by a bot's control socket.

    `offline`: a read-only core over the same store, shown until the bot first answers.
    """

    def __init__(
        self,
        data_dir: Path,
        config: Config,
        *,
        offline: Core | None = None,
        read_only: bool = False,
        retry_s: float = RETRY_S,
        clock: RemoteClock | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.clock = clock or RemoteClock()
        self.observers: list[Callable[[Event], None]] = []
        self.want_read_only = read_only
        self.retry_s = retry_s
        self.offline = offline
        self.connected = False
        self.attaches = 0  # connections made so far
        self.bot_pid: int | None = None
        self.lines_received = 0
        self.bytes_received = 0
        self._fields: dict[str, Any] | None = None
        self._snapshot: Snapshot | None = None
        self._stop = False
        self._scope: anyio.CancelScope | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        if offline is not None:
            beat = offline.snapshot().heartbeat.market_time_s
            self.clock.set(beat if beat is not None else offline.clock.now(), None)

    # -- what the cockpit reads ---------------------------------------------------------

    @property
    def read_only(self) -> bool:
        """No steering with --read-only, nor while no bot answers."""
        return self.want_read_only or not self.connected

    def snapshot(self) -> Snapshot:
        if self._snapshot is not None:
            return self._snapshot
        if self.offline is not None:
            return self.offline.snapshot()
        return Snapshot(Heartbeat(), SourceHealth("bot"))

    def link(self) -> tuple[str, bool]:
        """The status line's word for the connection, and whether it is good news."""
        if self.connected:
            return ("RECONNECTED" if self.attaches > 1 else "ATTACHED"), True
        last = self.snapshot().heartbeat.market_time_s
        if last is None and self.offline is not None and self.offline.last_bar_ms is not None:
            last = self.offline.last_bar_ms / 1000.0 + 60.0  # the close of the store's last bar
        when = f" at {fmt.utc_clock(last, seconds=False)} UTC" if last is not None else ""
        return f"BOT STOPPED{when}", False

    def stop(self) -> None:
        self._stop = True
        if self._scope is not None:
            self._scope.cancel()

    def checkpoint(self) -> None:
        """The bot saves its own state; nothing to do here."""

    # -- steering -----------------------------------------------------------------------

    def submit(self, command: Command) -> None:
        """Send `command` to the bot; its verdict arrives as a "command" event."""
        if self.want_read_only:
            raise CommandError("read-only mode: commands are disabled")
        if not self.connected or self._tg is None:
            raise CommandError("no bot is running on this data folder")
        # the symbol rides on the result, as the core's own command events carry it: a reply
        # like "PROBATION -> ACTIVE: ..." does not name it
        symbol = "" if command.kind is CommandKind.GUARD else command.target
        self._tg.start_soon(self._send_command, command.describe(), symbol)

    async def _send_command(self, text: str, symbol: str = "") -> None:
        try:
            with anyio.fail_after(COMMAND_TIMEOUT_S):
                stream = await unixsock.connect_unix(socket_path(self.data_dir))
                async with stream:
                    await stream.send(text.encode() + b"\n")
                    line = await stream.receive_until(b"\n", 1 << 16)
            reply = Reply.from_line(line)
        except (OSError, TimeoutError, ValueError, anyio.EndOfStream, anyio.IncompleteRead) as exc:
            reply = Reply(False, f"{text}: not sent ({exc.__class__.__name__}: the bot went away?)")
        except (anyio.DelimiterNotFound, anyio.BrokenResourceError) as exc:
            reply = Reply(False, f"{text}: no answer ({exc.__class__.__name__})")
        self.emit("command", reply.message, symbol, command=text, ok=reply.ok, saved=reply.saved)

    def emit(self, kind: str, message: str, symbol: str = "", **data: Any) -> None:
        event = Event(self.clock.now(), kind, symbol, message, MappingProxyType(data))
        for observer in list(self.observers):
            try:
                observer(event)
            except Exception:
                log.exception("observer failed on %s; removed", kind)
                self.observers.remove(observer)

    # -- the connection -----------------------------------------------------------------

    def apply_line(self, line: bytes) -> None:
        """One line of the stream; ValueError (CodecError) when it does not decode."""
        self.lines_received += 1
        self.bytes_received += len(line)
        doc = json.loads(line)
        if not isinstance(doc, dict):
            raise ValueError("not a stream line")
        if doc.get("t") == "hello":
            pid = doc.get("pid")
            self.bot_pid = pid if isinstance(pid, int) else None
            return
        if doc.get("t") != "snap":
            raise ValueError(f"unexpected stream line {str(doc)[:60]}")
        change = doc.get("d")
        if not isinstance(change, dict):
            raise ValueError("a snap line without its change")
        fields = {} if self._fields is None else dict(self._fields)
        codec.apply_delta(fields, change)
        self._snapshot = codec.decode_snapshot(fields)
        self._fields = fields
        now, speed = doc.get("now"), doc.get("speed")
        if isinstance(now, int | float):
            self.clock.set(float(now), float(speed) if isinstance(speed, int | float) else None)

    async def run(self, duration_s: float | None = None) -> None:
        """Stay attached (retrying every `retry_s` while no bot answers) until `stop()`."""
        self._stop = False
        with anyio.CancelScope() as self._scope:
            async with anyio.create_task_group() as self._tg:
                while not self._stop:
                    try:
                        await self._attach_once()
                    except (OSError, anyio.EndOfStream, anyio.IncompleteRead) as exc:
                        log.debug("attach: %s", exc)
                    except (ValueError, anyio.DelimiterNotFound, anyio.BrokenResourceError) as exc:
                        log.warning("attach: dropped the stream: %s", exc)
                    if self.connected:
                        self.connected = False
                        self.clock.running = False
                        self.emit("link", "the bot stopped; showing its last state")
                    await anyio.sleep(self.retry_s)
        self._tg = None

    async def _attach_once(self) -> None:
        stream = await unixsock.connect_unix(socket_path(self.data_dir))
        async with stream:
            await stream.send(SUBSCRIBE.encode() + b"\n")
            self._fields = None  # a new connection starts from a whole snapshot
            while True:
                line = await stream.receive_until(b"\n", MAX_LINE_BYTES)
                self.apply_line(line)
                if not self.connected and self._fields is not None:
                    self.connected = True
                    self.clock.running = True
                    self.attaches += 1
                    word = "reconnected to" if self.attaches > 1 else "attached to"
                    pid = f" (pid {self.bot_pid})" if self.bot_pid else ""
                    self.emit("link", f"{word} the running bot{pid}")


class AttachApp(CockpitApp):
    """The cockpit over a `RemoteCore`: says whether it is attached, toasts link changes."""

    def __init__(
        self, remote: RemoteCore, *, notice: str = "", run_core: bool = True, **kwargs: Any
    ) -> None:
        # RemoteCore has every part of Core the cockpit uses; "running" it is the link loop
        super().__init__(cast(Core, remote), run_core=run_core, serve_control=False, **kwargs)
        self.remote = remote
        self.notice = notice

    def on_mount(self) -> None:
        # CockpitApp.on_mount runs too (Textual calls each class's handler)
        if self.notice:
            self.toast(self.notice, "warning")

    def status_info(self, snapshot: Snapshot, market_now_s: float) -> StatusInfo:
        info = super().status_info(snapshot, market_now_s)
        link, ok = self.remote.link()
        return dataclasses.replace(info, link=link, link_ok=ok)

    def on_core_event(self, event: Event) -> None:
        if event.kind == "link":
            self.toast(event.message, "information" if self.remote.connected else "warning")
            self.refresh_bindings()  # steering keys come and go with the bot
            self.refresh_view()
            return
        super().on_core_event(event)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.core_worker:
            # the link loop only ends on quit; the bot's own state is in the status line
            event.prevent_default()  # not CockpitApp's "the core stopped"


def bot_answers(data_dir: Path) -> bool:
    """Whether a bot answers on the data folder's control socket."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(socket_path(data_dir)))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def first_snapshot(remote: RemoteCore, timeout_s: float = 2.0) -> bool:
    """Read the bot's hello and whole snapshot once, before the cockpit draws (its symbol
    cards are laid out from it). False when no bot answers."""
    with contextlib.suppress(OSError, ValueError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout_s)
        sock.connect(os.fspath(socket_path(remote.data_dir)))
        sock.sendall(SUBSCRIBE.encode() + b"\n")
        with sock.makefile("rb") as lines:
            for _ in range(2):
                remote.apply_line(lines.readline(MAX_LINE_BYTES))
        remote.clock.running = False
        return remote._fields is not None
    return False


def attach_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui attach",
        description="Open the cockpit on the bot running on a data folder (--no-ui or another"
        " cockpit); with none running, show the store's last state until one starts.",
    )
    p.add_argument("--data-dir", help=f"feature store folder (env {locations.DATA_DIR_ENV})")
    p.add_argument("--config", help="config file (default: the user config folder)")
    p.add_argument(
        "--read-only", action="store_true", help="watch without steering: steering keys are off"
    )
    return p


def cmd_attach(argv: list[str]) -> int:
    return run_attach(attach_parser().parse_args(argv))


def run_attach(args: argparse.Namespace, notice: str = "") -> int:
    """The attached cockpit on `args.data_dir` (run options other than the store's ignored)."""
    from bigalpha_tui import runtime
    from bigalpha_tui.app import log_away_from_the_screen, run_guarded
    from bigalpha_tui.exit_watchdog import ExitWatchdog
    from bigalpha_tui.terminal_driver import CockpitDriver

    if not (sys.stdin.isatty() and sys.__stderr__ is not None and sys.__stderr__.isatty()):
        print("bigalpha-tui attach: the cockpit needs a terminal", file=sys.stderr)
        return 2
    ns = argparse.Namespace(
        data_dir=getattr(args, "data_dir", None), config=getattr(args, "config", None)
    )
    offline = runtime.build(ns, read_only=True).core
    remote = RemoteCore(
        offline.store.root, offline.config, offline=offline, read_only=bool(args.read_only)
    )
    first_snapshot(remote)
    log_away_from_the_screen(None)  # the bot's folder is the bot's: nothing written there
    # the same exit guarantees as the embedded cockpit: a frozen terminal never holds it
    watchdog = ExitWatchdog()
    app = AttachApp(
        remote,
        notice=notice,
        watch_tty=True,
        driver_class=CockpitDriver,
        exit_watchdog=watchdog,
    )
    return run_guarded(app, watchdog, lambda code: code)  # the bot keeps its own store
