"""The local control channel: operator commands for a running core over a Unix socket.

`<data_dir>/control.sock`, mode 0600 (only the user who runs the bot can steer it). One
connection carries one request: a command line as `bigalpha-tui ctl` takes it
(`pause`, `guard FEE_EDGE off`, `release SOLUSDT` ...), answered by one line of JSON
`{"ok": bool, "saved": bool, "message": str}` holding the result event the core logged for it.

The request `subscribe` instead keeps the connection open and streams the core's snapshots
to it as JSON lines (`bigalpha-tui attach`): a `hello`, then one `snap` line at the UI rate
whenever something changed, carrying only what changed since the line before (see
`core/snapshot_codec.py`). Every subscriber has a small bounded queue; one that falls behind
(a frozen SSH session) is dropped, never waited for, so the bar loop never slows down.

The server runs in the core's event loop, so a request is between bars by construction and
the command applies at once (`Core.submit`). A socket left by a crashed run is replaced; a
socket some other process still answers on is never taken over. The socket is removed when
the server closes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bigalpha_tui.core import snapshot_codec as codec
from bigalpha_tui.core.commands import parse_command
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import BigAlphaError, CommandError
from bigalpha_tui.core.snapshot import Event
from bigalpha_tui.unixsock import LineStream, UnixListener

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
SOCKET_MODE = 0o600
MAX_REQUEST_BYTES = 4096
REQUEST_TIMEOUT_S = 10.0  # a client that connects and says nothing is dropped
RESULT_TIMEOUT_S = 30.0  # a command queued behind a bar in flight
SUBSCRIBE = "subscribe"
STREAM_VERSION = 1
MAX_SUBSCRIBERS = 16
#: connections served at once (subscribers included); more wait in the listen backlog, so a
#: burst of clients never takes the file descriptors the store needs to save
MAX_CONNECTIONS = 64
SUBSCRIBER_QUEUE = 4  # lines waiting for one subscriber; one more and it is dropped
SEND_TIMEOUT_S = 5.0  # one line not taken by the client within this: dropped
#: sun_path holds 108 bytes with the terminating NUL on Linux (104 on the BSDs).
MAX_SOCKET_PATH_BYTES = 107


class ControlError(BigAlphaError):
    """The control channel cannot start (another process owns the socket path)."""


class SocketPathTooLong(ControlError):
    """The data folder's path does not fit in a Unix socket address."""


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


@dataclass(frozen=True, slots=True)
class Reply:
    """`ok`: applied; `saved`: and written to the store (a restart keeps it)."""

    ok: bool
    message: str
    saved: bool = True

    def to_line(self) -> bytes:
        doc = {"ok": self.ok, "saved": self.saved, "message": self.message}
        return (json.dumps(doc) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> Reply:
        """ValueError when the line is not a reply."""
        doc: Any = json.loads(line.decode("utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("ok"), bool):
            raise ValueError("not a control reply")
        return cls(doc["ok"], str(doc.get("message", "")), doc.get("saved") is not False)


class _CommandResult:
    """An observer that catches the result event of one submitted command."""

    def __init__(self, described: str) -> None:
        self.described = described
        self.event: Event | None = None
        self.done = anyio.Event()

    def __call__(self, event: Event) -> None:
        mine = event.kind == "command" and event.data.get("command") == self.described
        if mine and self.event is None:
            self.event = event
            self.done.set()


async def submit_and_wait(core: Core, text: str, timeout_s: float = RESULT_TIMEOUT_S) -> Reply:
    """Parse, submit and wait for the core's verdict on one command line."""
    try:
        command = parse_command(text)
    except CommandError as exc:
        return Reply(False, str(exc))
    result = _CommandResult(command.describe())
    core.observers.append(result)
    try:
        try:
            core.submit(command)
        except CommandError as exc:
            return Reply(False, f"{command.describe()}: refused: {exc}")
        with anyio.move_on_after(timeout_s):
            await result.done.wait()
    finally:
        with contextlib.suppress(ValueError):
            core.observers.remove(result)
    if result.event is None:
        return Reply(False, f"{command.describe()}: queued, no result within {timeout_s:g} s")
    data = result.event.data
    return Reply(bool(data.get("ok")), result.event.message, data.get("saved") is not False)


class _Subscriber:
    """One attached cockpit: its queue of lines and the scope that drops it."""

    def __init__(self) -> None:
        self.send, self.receive = anyio.create_memory_object_stream[bytes](SUBSCRIBER_QUEUE)
        self.scope = anyio.CancelScope()
        self.dropped = False

    def offer(self, line: bytes) -> bool:
        """Queue a line without waiting; a full queue drops the subscriber (False)."""
        if self.dropped:
            return False
        try:
            self.send.send_nowait(line)
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.drop()
            return False
        return True

    def drop(self) -> None:
        self.dropped = True
        self.scope.cancel()


class ControlServer:
    """Serves `core` on `<data_dir>/control.sock`: `await start()`, `serve()`, `aclose()`."""

    def __init__(self, core: Core, data_dir: Path, *, stream_period_s: float | None = None) -> None:
        self.core = core
        self.path = socket_path(data_dir)
        self._listener: UnixListener | None = None
        self._inode: int | None = None
        self.stream_period_s = stream_period_s or 1.0 / max(core.config.ui.refresh_hz, 0.1)
        self.subscribers: list[_Subscriber] = []
        self.dropped_subscribers = 0
        self._fields: dict[str, Any] | None = None  # what every subscriber holds now

    async def start(self) -> None:
        """Bind the socket (mode 0600); ControlError when another process answers on it."""
        raw = os.fsencode(self.path)
        if len(raw) > MAX_SOCKET_PATH_BYTES:
            raise SocketPathTooLong(
                f"the control socket path {self.path} is {len(raw)} bytes, longer than a Unix"
                f" socket allows ({MAX_SOCKET_PATH_BYTES}); use a shorter --data-dir"
            )
        clear_stale_socket(self.path)
        old_umask = os.umask(0o777 & ~SOCKET_MODE)  # born 0600: never a moment others could connect
        try:
            self._listener = UnixListener.bind(self.path)
        except OSError as exc:
            raise ControlError(f"cannot open the control socket {self.path}: {exc}") from None
        finally:
            os.umask(old_umask)
        self._inode = os.lstat(self.path).st_ino

    async def serve(self) -> None:
        """Answer connections until cancelled."""
        if self._listener is None:
            await self.start()
        assert self._listener is not None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._publish)
            await self._listener.serve(self._handle, MAX_CONNECTIONS)

    async def aclose(self) -> None:
        """Stop listening and remove the socket (only if it is still ours)."""
        if self._listener is not None:
            with anyio.CancelScope(shield=True):
                await self._listener.aclose()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _handle(self, stream: LineStream) -> None:
        async with stream:
            try:
                with anyio.fail_after(REQUEST_TIMEOUT_S):
                    line = await stream.receive_until(b"\n", MAX_REQUEST_BYTES)
                text = line.decode("utf-8", errors="replace").strip()
                if text == SUBSCRIBE:
                    await self._stream(stream)
                    return
                reply = await submit_and_wait(self.core, text)
                await stream.send(reply.to_line())
            except (
                TimeoutError,
                anyio.EndOfStream,
                anyio.IncompleteRead,
                anyio.DelimiterNotFound,
                anyio.BrokenResourceError,
                anyio.ClosedResourceError,
                OSError,
            ) as exc:
                log.info("control: dropped a request: %s", exc.__class__.__name__)
            except Exception:  # one bad request must never stop the core beside it
                log.exception("control: request failed")

    # -- snapshot streaming (`bigalpha-tui attach`) ---------------------------------------

    def _line(self, change: dict[str, Any]) -> bytes:
        clock = self.core.clock
        return codec.dumps(
            {
                "t": "snap",
                "now": clock.now(),
                "speed": getattr(clock, "speed", 1.0),
                "d": change,
            }
        )

    async def _stream(self, stream: LineStream) -> None:
        """Send the hello and the whole snapshot, then the changes, until dropped."""
        if len(self.subscribers) >= MAX_SUBSCRIBERS:
            await stream.send(
                Reply(False, f"{MAX_SUBSCRIBERS} cockpits attached already").to_line()
            )
            return
        sub = _Subscriber()
        if self._fields is None:
            self._fields = codec.encode_fields(self.core.snapshot())
        hello = {"t": "hello", "version": STREAM_VERSION, "pid": os.getpid()}
        sub.offer(codec.dumps(hello))
        sub.offer(self._line({"set": self._fields}))
        self.subscribers.append(sub)
        try:
            with sub.scope:
                async with sub.receive:
                    async for line in sub.receive:
                        try:
                            with anyio.fail_after(SEND_TIMEOUT_S):
                                await stream.send(line)
                        except TimeoutError:
                            sub.drop()
        finally:
            with contextlib.suppress(ValueError):
                self.subscribers.remove(sub)
            if sub.dropped:
                self.dropped_subscribers += 1
                log.info("control: dropped a cockpit that fell behind")
            if not self.subscribers:
                self._fields = None

    async def _publish(self) -> None:
        """At the UI rate: the changes since the last line, to every subscriber."""
        while True:
            await anyio.sleep(self.stream_period_s)
            self.publish_once()

    def publish_once(self) -> None:
        if not self.subscribers or self._fields is None:
            return
        fields = codec.encode_fields(self.core.snapshot())
        change = codec.delta(self._fields, fields)
        if change is None:
            return
        self._fields = fields
        line = self._line(change)
        for sub in list(self.subscribers):
            sub.offer(line)


def clear_stale_socket(path: Path) -> None:
    """Remove a socket no process answers on; ControlError for a live one or a non-socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlError(f"{path} exists and is not a socket; move it away and start again")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        pass  # left by a run that crashed: nobody listens
    except OSError as exc:
        raise ControlError(f"cannot check the control socket {path}: {exc}") from None
    else:
        raise ControlError(
            f"another bigalpha-tui answers on {path}; stop it, or use another --data-dir"
        )
    finally:
        probe.close()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


async def open_control_server(
    core: Core, *, stream_period_s: float | None = None
) -> ControlServer | None:
    """The control server of `core`'s data folder, started; None in read-only mode.

    A path too long for a Unix socket is warned about and the run goes on without the
    channel; a live socket of another process stops the start-up (ControlError).
    """
    if core.read_only:
        return None
    server = ControlServer(core, core.store.root, stream_period_s=stream_period_s)
    try:
        await server.start()
    except SocketPathTooLong as exc:
        core.emit("control", "", f"no control channel: {exc}")
        return None
    return server
