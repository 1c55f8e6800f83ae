"""The parts of the exit guarantee, without a terminal: the driver's writes never wait, and
the watchdog ends the process only after the save, with the run's exit code."""

from __future__ import annotations

import io
import logging
import threading
import time
from typing import Any

import pytest
from textual.drivers._writer_thread import MAX_QUEUED_WRITES, WriterThread

from bigalpha_tui.exit_watchdog import ExitWatchdog
from bigalpha_tui.terminal_driver import CLOSE_WAIT_S, CockpitDriver


class FakeApp:
    """What the driver calls on its app: `call_later`."""

    def __init__(self) -> None:
        self.later: list[tuple[Any, dict[str, Any]]] = []

    def call_later(self, callback: Any, **kwargs: Any) -> None:
        self.later.append((callback, kwargs))

    def refresh(self, **kwargs: Any) -> None:
        pass


def stalled_driver() -> tuple[CockpitDriver, FakeApp]:
    """A driver whose writer thread never runs: a terminal that stopped reading (built on a
    running event loop, as Textual builds it)."""
    app = FakeApp()
    driver = CockpitDriver(app)  # type: ignore[arg-type]
    driver._writer_thread = WriterThread(io.StringIO())
    return driver, app


@pytest.mark.anyio
async def test_a_write_to_a_full_queue_is_dropped_not_waited_for() -> None:
    driver, _ = stalled_driver()
    started = time.monotonic()
    for _ in range(MAX_QUEUED_WRITES + 5):
        driver.write("frame")
    assert time.monotonic() - started < 0.5
    assert driver.dropped_frames == 5


@pytest.mark.anyio
async def test_the_first_write_after_the_queue_drained_asks_for_a_full_repaint() -> None:
    driver, app = stalled_driver()
    for _ in range(MAX_QUEUED_WRITES + 1):
        driver.write("frame")
    writer = driver._writer_thread
    assert writer is not None
    while not writer._queue.empty():  # the terminal reads again
        writer._queue.get_nowait()
    driver.write("frame")
    assert app.later == [(app.refresh, {"layout": True})]
    assert driver.dropped_frames == 0


@pytest.mark.anyio
async def test_closing_waits_a_bounded_time_for_a_stalled_terminal() -> None:
    driver, _ = stalled_driver()
    for _ in range(MAX_QUEUED_WRITES):
        driver.write("frame")
    started = time.monotonic()
    driver.close()
    assert time.monotonic() - started < 2 * CLOSE_WAIT_S + 0.5


def test_the_watchdog_ends_the_process_after_the_grace_period_with_the_code() -> None:
    ended: list[int] = []
    done = threading.Event()

    def end_process(code: int) -> None:
        ended.append(code)
        done.set()

    watchdog = ExitWatchdog(grace_s=0.1, end_process=end_process)
    started = time.monotonic()
    watchdog.arm(3)
    assert done.wait(5)
    assert ended == [3] and time.monotonic() - started >= 0.1


def test_the_watchdog_never_cuts_a_save_short(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []
    done = threading.Event()

    def end_process(code: int) -> None:
        events.append(f"end {code}")
        done.set()

    watchdog = ExitWatchdog(grace_s=0.05, end_process=end_process)
    with caplog.at_level(logging.WARNING), watchdog.saving():
        watchdog.arm(0)
        time.sleep(0.3)  # a slow disk: the grace period is over, the save is not
        events.append("saved")
    assert done.wait(5)
    assert events == ["saved", "end 0"]
    assert "the UI did not shut down within 0.05 s of the state being saved" in caplog.text
