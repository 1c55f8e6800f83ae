"""The bot's bar loop with 0 and 5 cockpits attached, and what one cockpit receives.

    python bench/attach.py [--minutes 2000] [--seconds 20]

1. The simulator at full speed for `--minutes` market minutes, the control server streaming
   to 0, then 5, reader threads (standing in for attached cockpits) at 20 Hz (20 times the
   default UI rate, to make any cost visible): wall milliseconds per bar-minute.
2. The simulator at `--speed 60` (a market minute a second) for `--seconds` wall seconds,
   one cockpit at the default 1 Hz: bytes per second it receives (target below 15 KB/s).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import anyio

from bigalpha_tui.control import SUBSCRIBE, ControlServer, socket_path
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimSource
from bigalpha_tui.core.store import Store


class Reader(threading.Thread):
    """A cockpit's socket: subscribe, then read and count bytes until closed."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(socket_path(root)))
        self.sock.sendall(SUBSCRIBE.encode() + b"\n")
        self.bytes = 0
        self.first_s: float | None = None

    def run(self) -> None:
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            if self.first_s is None:
                self.first_s = time.monotonic()
            self.bytes += len(chunk)


def make_core(root: Path, speed: float | None) -> Core:
    config = Config()
    clock = SimClock(DEFAULT_START_MS / 1000.0, speed)
    source = SimSource(clock, symbols=config.source.symbols, seed=config.source.seed)
    return Core(config, source, clock, Store(root, durable=False))


async def bar_loop(clients: int, minutes: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="ba-") as folder:
        root = Path(folder)
        core = make_core(root, None)
        server = ControlServer(core, root, stream_period_s=0.05)
        async with server, anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            readers = [Reader(root) for _ in range(clients)]
            for reader in readers:
                reader.start()
            while len(server.subscribers) < clients:
                await anyio.sleep(0.01)
            started = time.perf_counter()
            await core.run(minutes * 60.0)
            elapsed = time.perf_counter() - started
            tg.cancel_scope.cancel()
        for reader in readers:
            reader.sock.close()
        return elapsed, core.heartbeat.bars_processed


async def bytes_per_second(seconds: float) -> float:
    with tempfile.TemporaryDirectory(prefix="ba-") as folder:
        root = Path(folder)
        core = make_core(root, 60.0)
        server = ControlServer(core, root)  # the UI rate of the default config: 1 Hz
        async with server, anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            tg.start_soon(core.run)
            await anyio.sleep(3.0)  # the back-fill comes at once: not the steady rate
            reader = Reader(root)
            reader.start()
            await anyio.sleep(1.5)  # the whole first snapshot, then count from there
            counted_from, start_bytes = time.monotonic(), reader.bytes
            await anyio.sleep(seconds)
            rate = (reader.bytes - start_bytes) / (time.monotonic() - counted_from)
            core.stop()
            tg.cancel_scope.cancel()
        reader.sock.close()
        return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()
    for clients in (0, 5, 0, 5):
        elapsed, bars = anyio.run(bar_loop, clients, args.minutes)
        per_minute = elapsed / args.minutes * 1000.0
        print(
            f"bar loop, {clients} cockpits attached (20 Hz): {per_minute:.2f} ms per market"
            f" minute ({bars} bars, {elapsed:.2f} s)"
        )
    rate = anyio.run(bytes_per_second, args.seconds)
    print(f"one cockpit at 1 Hz, sim at --speed 60: {rate / 1000:.1f} KB/s")


if __name__ == "__main__":
    main()
