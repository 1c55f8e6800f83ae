"""Line streams over Unix sockets that stay quiet when cancelled (the control channel).

anyio's own Unix socket streams (4.16 and before, asyncio backend) wait for a socket with
`loop.add_reader(fd, future.set_result, None)`. When a cancel (a cockpit quitting, the bot
stopping, a send timeout) lands in the same turn of the event loop as the socket becoming
ready, the queued callback sets the result of a future the cancel has already finished:
asyncio logs "Exception in callback ... InvalidStateError" and anyio's test runner fails the
test. Here every wait registers a callback that checks its future first and removes itself
before the waiting task goes on, so a cancel at any moment leaves nothing behind.

Errors keep anyio's vocabulary, so callers catch the same things as with anyio streams:
`anyio.IncompleteRead` when the peer closes in the middle of a line, `anyio.DelimiterNotFound`
when a line is longer than allowed, `anyio.BrokenResourceError` when the connection fails,
`anyio.ClosedResourceError` when this side closed it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import anyio
import anyio.lowlevel

from bigalpha_tui.core.logrepeats import RepeatedLog

RECEIVE_BYTES = 65536
LISTEN_BACKLOG = 16
#: accept() out of descriptors or memory (a burst of clients holding them): wait this long,
#: then accept again, instead of spinning on a listener that stays readable or giving up
ACCEPT_RETRY_S = 0.1
#: accept() errors that concern one connection (gone before it was accepted): the next one
_ACCEPT_SKIP = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
#: accept() errors of a moment (descriptors or memory run out): wait, then accept again
_ACCEPT_WAIT = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

log = logging.getLogger(__name__)


class _Waiter:
    """Readiness of one socket, one reader and one writer at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closed = False
        self._pending: dict[asyncio.Future[None], bool] = {}  # future -> readable

    async def wait(self, *, readable: bool) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        loop = asyncio.get_running_loop()
        fd = self.sock.fileno()
        future: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not future.done():  # a cancel may have finished it in this very turn
                future.set_result(None)

        if readable:
            loop.add_reader(fd, ready)
        else:
            loop.add_writer(fd, ready)
        self._pending[future] = readable
        try:
            await future
        finally:
            # removed at once, not from a done-callback a turn later (the anyio race);
            # after close() the fd is gone (its number may already serve another socket)
            if self._pending.pop(future, None) is not None and not self.closed:
                self._unregister(fd, readable)
        if self.closed:
            raise anyio.ClosedResourceError

    @staticmethod
    def _unregister(fd: int, readable: bool) -> None:
        loop = asyncio.get_running_loop()
        if readable:
            loop.remove_reader(fd)
        else:
            loop.remove_writer(fd)

    def close(self) -> None:
        """Wake every waiter (they raise ClosedResourceError), then close the socket."""
        self.closed = True
        fd = self.sock.fileno()
        for future, readable in list(self._pending.items()):
            self._unregister(fd, readable)
            if not future.done():
                future.set_result(None)
        self._pending.clear()
        self.sock.close()


class LineStream:
    """A connected Unix stream socket read by lines; `async with` closes it."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._io = _Waiter(sock)
        self._buffer = bytearray()

    async def send(self, data: bytes) -> None:
        """Send all of `data`, waiting while the peer's buffer is full."""
        await anyio.lowlevel.checkpoint()
        view = memoryview(data)
        while view:
            if self._io.closed:
                raise anyio.ClosedResourceError
            try:
                sent = self._io.sock.send(view)
            except (BlockingIOError, InterruptedError):
                await self._io.wait(readable=False)
                continue
            except OSError as exc:
                raise anyio.BrokenResourceError from exc
            view = view[sent:]

    async def receive_until(self, delimiter: bytes, max_bytes: int) -> bytes:
        """The bytes before the next `delimiter` (which is consumed, not returned)."""
        await anyio.lowlevel.checkpoint()
        searched = 0
        while True:
            at = self._buffer.find(delimiter, searched)
            if at >= 0:
                if at > max_bytes:
                    raise anyio.DelimiterNotFound(max_bytes)
                line = bytes(self._buffer[:at])
                del self._buffer[: at + len(delimiter)]
                return line
            if len(self._buffer) >= max_bytes + len(delimiter):
                # no line of at most max_bytes can end here any more (a line of exactly
                # max_bytes is taken however its delimiter arrives: with it or later)
                raise anyio.DelimiterNotFound(max_bytes)
            searched = max(0, len(self._buffer) - len(delimiter) + 1)
            if self._io.closed:
                raise anyio.ClosedResourceError
            try:
                chunk = self._io.sock.recv(RECEIVE_BYTES)
            except (BlockingIOError, InterruptedError):
                await self._io.wait(readable=True)
                continue
            except OSError as exc:
                raise anyio.BrokenResourceError from exc
            if not chunk:
                raise anyio.IncompleteRead
            self._buffer += chunk

    async def aclose(self) -> None:
        if not self._io.closed:
            self._io.close()
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> LineStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def connect_unix(path: Path | str) -> LineStream:
    """Connect to the Unix socket at `path` (OSError when nobody listens there)."""
    await anyio.lowlevel.checkpoint()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    waiter = _Waiter(sock)
    try:
        try:
            sock.connect(os.fspath(path))
        except (BlockingIOError, InterruptedError):
            await waiter.wait(readable=False)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, os.strerror(error)) from None
    except BaseException:
        sock.close()
        raise
    return LineStream(sock)


class UnixListener:
    """A listening Unix socket: `serve(handler)` runs `handler` for each connection."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._io = _Waiter(sock)
        self._accept_log = RepeatedLog(log, logging.WARNING)  # once, then counted

    @classmethod
    def bind(cls, path: Path | str, backlog: int = LISTEN_BACKLOG) -> UnixListener:
        """Bind and listen at `path`; the file's mode comes from the caller's umask.

        bind(2) never follows a symlink: an existing path of any kind is EADDRINUSE.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(os.fspath(path))
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    async def accept(self) -> LineStream:
        """The next connection. A client gone before it was accepted is passed over; out of
        descriptors (EMFILE) or memory, it waits `ACCEPT_RETRY_S` and accepts again, so a
        burst of clients never ends `serve` (only a broken listener does)."""
        await anyio.lowlevel.checkpoint()
        while True:
            if self._io.closed:
                raise anyio.ClosedResourceError
            try:
                client, _ = self._io.sock.accept()
            except (BlockingIOError, InterruptedError):
                await self._io.wait(readable=True)
                continue
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP:
                    continue
                if exc.errno in _ACCEPT_WAIT:
                    self._accept_log.log(
                        "accept", f"control socket: cannot accept ({exc.strerror}); waiting"
                    )
                    await anyio.sleep(ACCEPT_RETRY_S)
                    continue
                raise anyio.BrokenResourceError from exc
            self._accept_log.end()
            return LineStream(client)

    async def serve(
        self, handler: Callable[[LineStream], Awaitable[None]], max_connections: int = 0
    ) -> None:
        """Accept connections until cancelled, each handled in its own task. With
        `max_connections`, no more are open at once: the next waits in the listen backlog
        until one closes (a burst of clients cannot take every file descriptor the
        process needs for its store)."""
        limiter = anyio.Semaphore(max_connections) if max_connections > 0 else None

        async def handle(stream: LineStream) -> None:
            try:
                await handler(stream)
            finally:
                if limiter is not None:
                    limiter.release()

        async with anyio.create_task_group() as tg:
            while True:
                if limiter is not None:
                    await limiter.acquire()
                try:
                    stream = await self.accept()
                except BaseException:
                    if limiter is not None:
                        limiter.release()
                    raise
                tg.start_soon(handle, stream)

    async def aclose(self) -> None:
        if not self._io.closed:
            self._io.close()
        await anyio.lowlevel.checkpoint()
