"""Textual's Linux driver, except the cockpit never waits for a terminal that stopped
reading (a frozen SSH client): a frame that finds the output queue full is dropped, and
closing waits a bounded time for the last bytes to go out.

Textual queues its writes for a writer thread and blocks the event loop once 30 are
waiting; the core runs on that loop, so a stalled terminal used to stall the bot, its
signal handlers and its exit. The screen is repainted in full once the terminal drains.
"""

from __future__ import annotations

import queue
import threading

from textual.drivers._writer_thread import WriterThread
from textual.drivers.linux_driver import LinuxDriver

#: how long closing waits for the terminal to take the last bytes (restore sequences)
CLOSE_WAIT_S = 0.5


class CockpitDriver(LinuxDriver):
    """The Linux driver with writes that never block the event loop."""

    #: frames not sent since the terminal last kept up
    dropped_frames: int = 0

    def write(self, data: str) -> None:
        writer = self._writer_thread
        assert writer is not None, "Driver must be in application mode"
        # the terminal reads again: the frames it missed were diffs, so draw it all anew
        caught_up = self.dropped_frames > 0 and writer._queue.empty()
        try:
            writer._queue.put_nowait(data)
        except queue.Full:
            self.dropped_frames += 1
            return
        if caught_up:
            self.dropped_frames = 0
            self._app.call_later(self._app.refresh, layout=True)

    def close(self) -> None:
        writer = self._writer_thread
        if writer is None:
            return
        try:
            writer._queue.put(None, timeout=CLOSE_WAIT_S)
        except queue.Full:
            return
        writer.join(CLOSE_WAIT_S)


def terminal_stopped_reading() -> bool:
    """True when a writer thread is still blocked on the terminal after its app closed."""
    return any(isinstance(t, WriterThread) and t.is_alive() for t in threading.enumerate())
