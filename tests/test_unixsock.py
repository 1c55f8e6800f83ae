"""The control channel's socket streams: a cancel at any moment leaves nothing behind.

The cockpit quitting, the bot stopping and a send timeout all cancel a task that waits on a
socket. With anyio's own Unix streams a cancel landing in the same turn of the event loop as
the socket becoming ready made asyncio report `InvalidStateError` (seen as a failed attach
test in CI). Each race here is made deterministic: the socket is made ready, and the cancel is
queued so that it runs in the very turn the readiness callback runs.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest

from bigalpha_tui.unixsock import LineStream, UnixListener, connect_unix

pytestmark = pytest.mark.anyio


def catch_loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


def pair() -> tuple[LineStream, socket.socket]:
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return LineStream(ours), peer


async def test_a_read_cancelled_as_its_line_arrives_reports_nothing_and_loses_nothing() -> None:
    errors = catch_loop_errors()
    stream, peer = pair()
    scope = anyio.CancelScope()

    async def reader() -> None:
        with scope:
            await stream.receive_until(b"\n", 1024)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.05)  # the reader waits on the socket
        peer.send(b"first\n")  # ready at the next turn...
        asyncio.get_running_loop().call_soon(scope.cancel)  # ...where the cancel runs first
    await anyio.sleep(0.05)
    assert errors == []
    assert scope.cancelled_caught
    assert await stream.receive_until(b"\n", 1024) == b"first"  # still there for the next read
    await stream.aclose()
    peer.close()


async def test_a_send_cancelled_as_the_peer_drains_reports_nothing() -> None:
    errors = catch_loop_errors()
    stream, peer = pair()
    peer.setblocking(False)
    scope = anyio.CancelScope()

    async def writer() -> None:
        with scope:
            await stream.send(b"x" * (8 << 20))  # more than the socket buffers hold

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        await anyio.sleep(0.05)  # the writer waits for room
        while True:  # the peer reads: room at the next turn, where the cancel runs first
            try:
                peer.recv(1 << 20)
            except BlockingIOError:
                break
        asyncio.get_running_loop().call_soon(scope.cancel)
    await anyio.sleep(0.05)
    assert errors == []
    assert scope.cancelled_caught
    await stream.aclose()
    peer.close()


async def test_a_listener_cancelled_as_a_client_connects_reports_nothing(tmp_path: Path) -> None:
    errors = catch_loop_errors()
    path = tmp_path / "s.sock"
    listener = UnixListener.bind(path)
    served: list[bytes] = []

    async def handler(stream: LineStream) -> None:
        async with stream:
            served.append(await stream.receive_until(b"\n", 64))

    scope = anyio.CancelScope()

    async def serve() -> None:
        with scope:
            await listener.serve(handler)

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        await anyio.sleep(0.05)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(path))  # the listener is readable at the next turn
        asyncio.get_running_loop().call_soon(scope.cancel)
    await anyio.sleep(0.05)
    assert errors == []
    await listener.aclose()
    client.close()


async def test_lines_come_whole_across_chunks_and_bad_lines_say_why() -> None:
    stream, peer = pair()
    peer.sendall(b"he")
    peer.sendall(b"llo\nwor")
    peer.sendall(b"ld\n" + b"y" * 100)
    assert await stream.receive_until(b"\n", 64) == b"hello"
    assert await stream.receive_until(b"\n", 64) == b"world"
    with pytest.raises(anyio.DelimiterNotFound):  # a line longer than allowed
        await stream.receive_until(b"\n", 64)
    other, other_peer = pair()
    other_peer.sendall(b"half a li")
    other_peer.close()
    with pytest.raises(anyio.IncompleteRead):  # the peer went away mid-line
        await other.receive_until(b"\n", 64)
    for s in (stream, other):
        await s.aclose()
    peer.close()


async def test_closing_wakes_a_waiting_reader_and_the_stream_round_trips(tmp_path: Path) -> None:
    stream, peer = pair()
    outcome: list[str] = []

    async def reader() -> None:
        try:
            await stream.receive_until(b"\n", 64)
        except anyio.ClosedResourceError:
            outcome.append("closed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        await anyio.sleep(0.05)
        await stream.aclose()
    assert outcome == ["closed"]
    peer.close()

    path = tmp_path / "echo.sock"
    listener = UnixListener.bind(path)

    async def echo(conn: LineStream) -> None:
        async with conn:
            await conn.send(await conn.receive_until(b"\n", 64) + b"!\n")

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, echo)
        async with await connect_unix(path) as client:
            await client.send(b"ping\n")
            assert await client.receive_until(b"\n", 64) == b"ping!"
        tg.cancel_scope.cancel()
    await listener.aclose()
    with pytest.raises(OSError):
        await connect_unix(tmp_path / "nobody.sock")
