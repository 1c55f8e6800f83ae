"""Hostile clients of the control socket: the bot stays up and answers the next client.

Each case attacks a running `ControlServer` (in process, on the asyncio backend) the way a
local program could, then asks a normal question and expects the normal answer.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
import tempfile
from functools import partial
from pathlib import Path

import anyio
import pytest

from bigalpha_tui import control, unixsock
from bigalpha_tui.control import MAX_REQUEST_BYTES, ControlServer, Reply, socket_path
from bigalpha_tui.ctl import send
from bigalpha_tui.unixsock import LineStream, UnixListener

pytestmark = pytest.mark.anyio


def make_core(root: Path) -> object:
    from test_ctl import make_core as core_of

    return core_of(root)


async def ask(root: Path, text: str) -> Reply:
    return await anyio.to_thread.run_sync(partial(send, root, text, 5.0))


def raw_client(root: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5.0)
    sock.connect(os.fspath(socket_path(root)))
    return sock


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


async def test_hostile_lines_are_dropped_and_the_next_client_is_answered(short_tmp: Path) -> None:
    """A line longer than allowed, a client that connects and closes at once, one that
    never ends its line, a NUL in the command: none stops the server."""
    core = make_core(short_tmp)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:  # type: ignore[arg-type]
        tg.start_soon(server.serve)
        long = raw_client(short_tmp)
        long.sendall(b"p" * (MAX_REQUEST_BYTES * 4) + b"\n")
        assert await anyio.to_thread.run_sync(read_reply, long) == b""  # dropped, closed
        long.close()
        raw_client(short_tmp).close()  # connects and closes at once
        silent = raw_client(short_tmp)
        silent.sendall(b"pause")  # and never a newline
        nul = raw_client(short_tmp)
        nul.sendall(b"pau\x00se\n")
        answer = Reply.from_line(await anyio.to_thread.run_sync(read_reply, nul))
        nul.close()
        assert not answer.ok and "unknown command" in answer.message.lower()
        reply = await ask(short_tmp, "pause")
        silent.close()
        tg.cancel_scope.cancel()
    assert reply.ok and core.paused  # type: ignore[attr-defined]


async def test_a_line_of_exactly_the_limit_reads_alike_however_it_arrives() -> None:
    """A request of exactly `max_bytes` is taken whether its newline comes in the same
    chunk or a moment later (before, the second way was refused as too long)."""
    for split in (False, True):
        ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        stream = LineStream(ours)
        line = b"x" * 64
        if split:
            peer.send(line)

            async def newline_later(peer: socket.socket = peer) -> None:
                await anyio.sleep(0.05)
                peer.send(b"\n")

            async with anyio.create_task_group() as tg:
                tg.start_soon(newline_later)
                got = await stream.receive_until(b"\n", 64)
        else:
            peer.send(line + b"\n")
            got = await stream.receive_until(b"\n", 64)
        assert got == line, split
        peer.send(b"y" * 65 + b"\n")
        with pytest.raises(anyio.DelimiterNotFound):
            await stream.receive_until(b"\n", 64)
        await stream.aclose()
        peer.close()


async def test_a_burst_of_a_thousand_connections_leaves_the_server_answering(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # silent clients are dropped after REQUEST_TIMEOUT_S: 1,000 of them, served 64 at a time,
    # took 150 s at the real 10 s; the same story at 0.2 s
    monkeypatch.setattr(control, "REQUEST_TIMEOUT_S", 0.2)
    core = make_core(short_tmp)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:  # type: ignore[arg-type]
        tg.start_soon(server.serve)

        def burst() -> int:
            held = []
            for _ in range(1000):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(os.fspath(socket_path(short_tmp)))  # waits while the backlog is full
                held.append(sock)
            for sock in held:
                sock.close()
            return len(held)

        connected = await anyio.to_thread.run_sync(burst)
        reply = await ask(short_tmp, "pause")
        tg.cancel_scope.cancel()
    assert connected == 1000
    assert reply.ok


async def test_running_out_of_file_descriptors_does_not_stop_the_server(
    short_tmp: Path,
) -> None:
    """accept() failing with EMFILE (clients holding every descriptor the process may open)
    is waited out: once they close, the next client is answered. Before, the error left
    the listener as BrokenResourceError and ended the control server's task group."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to find the highest open descriptor")
    core = make_core(short_tmp)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    async with ControlServer(core, short_tmp) as server, anyio.create_task_group() as tg:  # type: ignore[arg-type]
        tg.start_soon(server.serve)
        await anyio.sleep(0.05)  # the server waits in accept()
        clients = []
        for _ in range(3):  # connected (in the backlog), not yet accepted
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(os.fspath(socket_path(short_tmp)))
            clients.append(sock)
        fillers: list[int] = []
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (max(map(int, os.listdir("/proc/self/fd"))) + 1, hard)
        )
        try:
            while True:  # every descriptor number below the limit taken
                try:
                    fillers.append(os.dup(clients[0].fileno()))
                except OSError:
                    break
            await anyio.sleep(0.3)  # the server's accept() fails with EMFILE meanwhile
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for sock in clients:
            sock.close()
        reply = await ask(short_tmp, "pause")
        tg.cancel_scope.cancel()
    assert reply.ok


async def test_accept_errors_of_one_connection_are_passed_over() -> None:
    """ECONNABORTED (a client gone before it was accepted) and EMFILE do not end `serve`."""
    errors = [OSError(errno.ECONNABORTED, "aborted"), OSError(errno.EMFILE, "too many")]

    class Flaky:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def fileno(self) -> int:
            return self.sock.fileno()

        def accept(self) -> tuple[socket.socket, object]:
            if errors:
                raise errors.pop(0)
            return self.sock.accept()

        def close(self) -> None:
            self.sock.close()

    with tempfile.TemporaryDirectory(prefix="ba-") as folder:
        path = Path(folder) / "s.sock"
        listener = UnixListener.bind(path)
        listener._io.sock = Flaky(listener._io.sock)  # type: ignore[assignment]
        served: list[bytes] = []

        async def handler(stream: LineStream) -> None:
            async with stream:
                served.append(await stream.receive_until(b"\n", 100))

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            client = await unixsock.connect_unix(path)
            await client.send(b"hello\n")
            with anyio.fail_after(5):
                while not served:
                    await anyio.sleep(0.01)
            await client.aclose()
            tg.cancel_scope.cancel()
        await listener.aclose()
    assert served == [b"hello"] and errors == []


async def test_a_burst_holds_no_more_connections_than_allowed_and_all_are_served() -> None:
    """With `max_connections` the listener leaves the rest in the backlog: never more open
    at once (each holds a descriptor the store needs), and every one is served in turn."""
    open_now = 0
    most = 0
    served: list[bytes] = []

    async def handler(stream: LineStream) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            async with stream:
                served.append(await stream.receive_until(b"\n", 100))
                await anyio.sleep(0.01)
        finally:
            open_now -= 1

    with tempfile.TemporaryDirectory(prefix="ba-") as folder:
        path = Path(folder) / "s.sock"
        listener = UnixListener.bind(path, backlog=64)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handler, 4)

            def burst() -> None:
                clients = []
                for i in range(40):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.connect(os.fspath(path))
                    sock.sendall(b"%d\n" % i)
                    clients.append(sock)
                for sock in clients:
                    sock.settimeout(5.0)
                    assert sock.recv(10) == b""  # served and closed
                    sock.close()

            await anyio.to_thread.run_sync(burst)
            tg.cancel_scope.cancel()
        await listener.aclose()
    assert sorted(served, key=int) == [b"%d" % i for i in range(40)]
    assert most == 4
