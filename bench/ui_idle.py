"""Cockpit responsiveness: idle CPU in a real terminal, and key-press-to-frame latency.

    python bench/ui_idle.py                 # all parts, ~5 minutes
    python bench/ui_idle.py --seconds 30 --size 120x40 --presses 200
    python bench/ui_idle.py --skip-idle --skip-keys --starts 5   # first frame only

1. Idle CPU. `bigalpha-tui --speed S` is started in a pseudo-terminal of the given size (as
   an SSH session would run it), left alone for a warm-up, then its CPU time (user + system,
   from psutil) and the bytes it writes to the terminal are measured over `--seconds`. Speed 1
   is live pace (a bar a minute); speed 60 is a bar a second, so every UI tick redraws the
   symbol cards. With `--screens c,t` the same is measured again with each screen open (the
   key is sent after the warm-up: `c` charts, `t` journal). Finally `q` is sent (twice when a
   screen is open: the first only leaves it) and the time to a clean exit is measured.
0. First frame. `bigalpha-tui --speed 60` is started in a pty `--starts` times; the time from
   the spawn to the first frame that holds the whole main screen (the footer's `Quit`, drawn
   in the same frame as the cards and the status line) is measured: Python's start-up, the
   imports, the store and the source's back-fill included.
2. Key to frame. Headless through `App.run_test()`: `p` is pressed repeatedly, and the time
   from the key press to the first rendered frame whose status line shows the new PAUSED state
   is measured (the status bar's `render()` is wrapped to timestamp each frame). Once with the
   core loop stopped, once with the core running at speed 60 in its worker. Then, on the
   charts screen with the core running at speed 60, `1` and `2` alternate and the time to the
   first frame of the price chart naming the new symbol is measured.

Targets (issues 5 and 13): idle CPU below 5 % of one core at live speed; key-to-frame p95
< 50 ms; first full frame < 1 s at 120x40.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import math
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

IDLE_CPU_TARGET_PCT = 5.0
KEY_P95_TARGET_MS = 50.0
FIRST_FRAME_TARGET_S = 1.0
#: the footer's last key: in the terminal's bytes once the whole first frame is drawn
FIRST_FRAME_MARKER = b"Quit"


@dataclass
class IdleResult:
    speed: str
    screen: str
    cpu_pct: float
    bytes_per_s: float
    quit_s: float
    exit_code: int | None


@dataclass
class KeyResult:
    label: str
    presses: int
    p50_ms: float
    p95_ms: float
    max_ms: float


# -- 1. idle CPU in a pty ------------------------------------------------------------------


def _drain(fd: int, counter: list[int], stop: threading.Event) -> None:
    """Read everything the app writes (as a terminal would) and count the bytes."""
    import select

    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        counter[0] += len(data)


def _spawn(
    speed: str, data_dir: str, cols: int, rows: int, exe: str | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """The cockpit (`exe`, else this environment's) in a new pty of cols x rows:
    (process, master fd)."""
    exe = exe or shutil.which("bigalpha-tui")
    command = [exe] if exe else [sys.executable, "-m", "bigalpha_tui.cli"]
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [*command, "--data-dir", data_dir, "--speed", speed],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    return proc, master


def _stop(proc: subprocess.Popen[bytes], master: int, keys: bytes) -> int | None:
    os.write(master, keys)
    try:
        code: int | None = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        code = None
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    return code


@dataclass
class StartResult:
    wall_s: float  # spawn to the first whole frame
    cpu_s: float  # the process's CPU time by then (steadier than wall on a busy machine)


def measure_first_frame(cols: int, rows: int, exe: str | None = None) -> StartResult:
    """Time from the spawn to the first whole frame of the main screen."""
    import select

    data_dir = tempfile.mkdtemp(prefix="bigalpha-bench-start-")
    start = time.monotonic()
    proc, master = _spawn("60", data_dir, cols, rows, exe)
    ps = psutil.Process(proc.pid)
    seen = b""
    took = cpu = math.nan
    try:
        while time.monotonic() - start < 30:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                seen = seen[-64:] + os.read(master, 65536)
                if FIRST_FRAME_MARKER in seen:
                    took = time.monotonic() - start
                    times = ps.cpu_times()
                    cpu = times.user + times.system
                    break
        reader = threading.Thread(target=_drain, args=(master, [0], threading.Event()))
        reader.daemon = True
        reader.start()
        _stop(proc, master, b"q")
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
    return StartResult(took, cpu)


def measure_idle(
    speed: str, seconds: float, warmup_s: float, cols: int, rows: int, screen: str = ""
) -> IdleResult:
    """CPU and bytes while nobody types; `screen`: a key to open a screen after the warm-up."""
    data_dir = tempfile.mkdtemp(prefix="bigalpha-bench-")
    proc, master = _spawn(speed, data_dir, cols, rows)
    counter = [0]
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, counter, stop), daemon=True)
    reader.start()
    try:
        time.sleep(warmup_s)
        if screen:
            os.write(master, screen.encode())
            time.sleep(2.0)  # the screen's first draw (and its store read) is not idle
        ps = psutil.Process(proc.pid)
        cpu0 = ps.cpu_times()
        bytes0, wall0 = counter[0], time.monotonic()
        time.sleep(seconds)
        cpu1 = ps.cpu_times()
        bytes1, wall1 = counter[0], time.monotonic()
        used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        cpu_pct = 100.0 * used / (wall1 - wall0)
        bytes_per_s = (bytes1 - bytes0) / (wall1 - wall0)
        quit_start = time.monotonic()
        code = _stop(proc, master, b"qq" if screen else b"q")
        quit_s = time.monotonic() - quit_start
    finally:
        stop.set()
        reader.join(timeout=2)
        with contextlib.suppress(OSError):
            os.close(master)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(data_dir, ignore_errors=True)
    return IdleResult(speed, SCREEN_NAMES.get(screen, "main"), cpu_pct, bytes_per_s, quit_s, code)


SCREEN_NAMES = {"c": "charts", "t": "journal"}


# -- 2. key to frame, headless ---------------------------------------------------------------


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100.0 * (len(ordered) - 1))))
    return ordered[index]


async def measure_keys(presses: int, core_running: bool, cols: int, rows: int) -> KeyResult:
    from bigalpha_tui.app import CockpitApp
    from bigalpha_tui.core.clock import SimClock
    from bigalpha_tui.core.config import Config
    from bigalpha_tui.core.engine import Core
    from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimSource
    from bigalpha_tui.core.store import Store
    from bigalpha_tui.widgets.status_bar import StatusBar

    frames: list[tuple[float, bool]] = []
    original = StatusBar.render

    def timed_render(self: StatusBar) -> object:
        rendered = original(self)
        frames.append((time.perf_counter(), self.status.paused))
        return rendered

    StatusBar.render = timed_render  # type: ignore[method-assign]
    data_dir = Path(tempfile.mkdtemp(prefix="bigalpha-bench-keys-"))
    try:
        config = Config()
        clock = SimClock(DEFAULT_START_MS / 1000.0, 60.0 if core_running else None)
        source = SimSource(clock, symbols=config.source.symbols, seed=config.source.seed)
        core = Core(config, source, clock, Store(data_dir))
        app = CockpitApp(core, run_core=core_running)
        latencies: list[float] = []
        async with app.run_test(size=(cols, rows)) as pilot:
            await pilot.pause(0.5)
            for _ in range(presses):
                expected = not core.paused
                start = time.perf_counter()
                await pilot.press("p")
                deadline = start + 2.0
                seen = None
                while seen is None and time.perf_counter() < deadline:
                    seen = next((t for t, p in frames if t >= start and p is expected), None)
                    if seen is None:
                        await asyncio.sleep(0.0005)
                if seen is None:
                    raise RuntimeError("no frame showed the new PAUSED state within 2 s")
                latencies.append((seen - start) * 1000.0)
                frames.clear()
            await pilot.press("q")
    finally:
        StatusBar.render = original  # type: ignore[method-assign]
        shutil.rmtree(data_dir, ignore_errors=True)
    label = "core running at speed 60" if core_running else "core loop stopped"
    return KeyResult(
        label,
        len(latencies),
        statistics.median(latencies),
        _percentile(latencies, 95),
        max(latencies),
    )


async def measure_chart_keys(presses: int, cols: int, rows: int) -> KeyResult:
    """On the charts screen, core running at speed 60: `1`/`2` to the price chart's frame."""
    from bigalpha_tui.app import CockpitApp
    from bigalpha_tui.core.clock import SimClock
    from bigalpha_tui.core.config import Config
    from bigalpha_tui.core.engine import Core
    from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimSource
    from bigalpha_tui.core.store import Store
    from bigalpha_tui.widgets.braille_chart import BrailleChart

    frames: list[tuple[float, str]] = []
    original = BrailleChart.render_line

    def timed_render(self: BrailleChart, y: int) -> object:
        if y == 0 and self.id == "chart-price":
            frames.append((time.perf_counter(), str(self.border_title)))
        return original(self, y)

    BrailleChart.render_line = timed_render  # type: ignore[method-assign,assignment]
    data_dir = Path(tempfile.mkdtemp(prefix="bigalpha-bench-charts-"))
    try:
        config = Config()
        clock = SimClock(DEFAULT_START_MS / 1000.0, 60.0)
        source = SimSource(clock, symbols=config.source.symbols, seed=config.source.seed)
        core = Core(config, source, clock, Store(data_dir))
        app = CockpitApp(core, run_core=True)
        latencies: list[float] = []
        symbols = config.source.symbols
        async with app.run_test(size=(cols, rows)) as pilot:
            await pilot.pause(0.5)
            await pilot.press("c")
            await pilot.pause(0.5)
            for i in range(presses):
                index = 2 if i % 2 == 0 else 1
                expected = symbols[index - 1]
                start = time.perf_counter()
                await pilot.press(str(index))
                deadline = start + 2.0
                seen = None
                while seen is None and time.perf_counter() < deadline:
                    seen = next(
                        (t for t, title in frames if t >= start and title.startswith(expected)),
                        None,
                    )
                    if seen is None:
                        await asyncio.sleep(0.0005)
                if seen is None:
                    raise RuntimeError("no frame showed the new symbol's price within 2 s")
                latencies.append((seen - start) * 1000.0)
                frames.clear()
            await pilot.press("q", "q")
    finally:
        BrailleChart.render_line = original  # type: ignore[method-assign]
        shutil.rmtree(data_dir, ignore_errors=True)
    return KeyResult(
        "charts 1/2, core at speed 60",
        len(latencies),
        statistics.median(latencies),
        _percentile(latencies, 95),
        max(latencies),
    )


# -- report ---------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    done = [v for v in values if math.isfinite(v)]
    return statistics.median(done) if done else math.nan


def start_lines(label: str, starts: list[StartResult]) -> list[str]:
    wall = _median([s.wall_s for s in starts])
    cpu = _median([s.cpu_s for s in starts])
    ok = wall < FIRST_FRAME_TARGET_S
    runs = " ".join(f"{s.wall_s:.2f}" for s in starts)
    return [
        f"{label:<34}{wall:>8.2f} s{cpu:>9.2f} s   wall runs: {runs}"
        f"  target < {FIRST_FRAME_TARGET_S:g} s: {'PASS' if ok else 'FAIL'}"
    ]


def report(
    starts: dict[str, list[StartResult]],
    idle: list[IdleResult],
    keys: list[KeyResult],
    cols: int,
    rows: int,
) -> str:
    lines = [f"bigalpha-tui cockpit responsiveness ({cols}x{rows}, {os.cpu_count()} CPUs)", ""]
    if starts:
        lines.append(f"{'first full frame (median)':<34}{'wall':>10}{'CPU':>10}")
        for label, results in starts.items():
            lines += start_lines(label, results)
        lines.append("")
    lines.append(f"{'idle in a pty':<34}{'CPU % of a core':>16}{'bytes/s':>10}{'quit':>9}")
    for r in idle:
        target = ""
        if r.speed == "1":
            ok = r.cpu_pct < IDLE_CPU_TARGET_PCT
            target = f"  target < {IDLE_CPU_TARGET_PCT:g} %: {'PASS' if ok else 'FAIL'}"
        exit_note = "" if r.exit_code == 0 else f" (exit {r.exit_code})"
        lines.append(
            f"{f'--speed {r.speed}, {r.screen} screen':<34}"
            f"{r.cpu_pct:>15.2f}%{r.bytes_per_s:>10.0f}"
            f"{r.quit_s:>8.2f}s{exit_note}{target}"
        )
    lines.append("")
    lines.append(
        f"{'key p -> frame (headless)':<34}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'n':>6}"
    )
    for k in keys:
        ok = k.p95_ms < KEY_P95_TARGET_MS
        lines.append(
            f"{k.label:<34}{k.p50_ms:>10.2f}{k.p95_ms:>10.2f}{k.max_ms:>10.2f}{k.presses:>6}"
            f"  target p95 < {KEY_P95_TARGET_MS:g} ms: {'PASS' if ok else 'FAIL'}"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=25.0, help="measured seconds per speed")
    p.add_argument("--warmup", type=float, default=6.0, help="seconds before measuring")
    p.add_argument("--size", default="120x40", help="terminal size COLSxROWS")
    p.add_argument("--speeds", default="1,60", help="comma-separated --speed values")
    p.add_argument("--presses", type=int, default=200, help="key presses per latency run")
    p.add_argument("--starts", type=int, default=3, help="first-frame runs (0: skip)")
    p.add_argument(
        "--baseline",
        default="",
        help="another build's bigalpha-tui: its first frame is measured in turn with this one's",
    )
    p.add_argument(
        "--screens", default="c,t", help="keys of screens to hold open while idle ('' for none)"
    )
    p.add_argument("--skip-idle", action="store_true")
    p.add_argument("--skip-keys", action="store_true")
    args = p.parse_args()
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    starts: dict[str, list[StartResult]] = {}
    builds = [("this build", None)] + ([("baseline", args.baseline)] if args.baseline else [])
    for _ in range(args.starts):
        for label, exe in builds:  # in turn, so both see the same machine load
            print(f"measuring the first frame ({label}) …", file=sys.stderr)
            starts.setdefault(label, []).append(measure_first_frame(cols, rows, exe))
    idle: list[IdleResult] = []
    screens = ["", *(k.strip() for k in args.screens.split(",") if k.strip())]
    if not args.skip_idle:
        for screen in screens:
            for speed in args.speeds.split(","):
                name = SCREEN_NAMES.get(screen, "main")
                print(f"measuring idle CPU at --speed {speed}, {name} …", file=sys.stderr)
                idle.append(
                    measure_idle(speed.strip(), args.seconds, args.warmup, cols, rows, screen)
                )
    keys: list[KeyResult] = []
    if not args.skip_keys:
        for running in (False, True):
            print(
                f"measuring key latency ({'running' if running else 'stopped'}) …", file=sys.stderr
            )
            keys.append(asyncio.run(measure_keys(args.presses, running, cols, rows)))
        print("measuring key latency on the charts …", file=sys.stderr)
        keys.append(asyncio.run(measure_chart_keys(args.presses, cols, rows)))
    print(report(starts, idle, keys, cols, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
