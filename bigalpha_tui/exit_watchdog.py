"""The exit guarantee: once the state is saved, the process ends within a grace period,
whatever the UI is doing.

A UI can hang in its own shutdown (a terminal that stopped reading holds every write), and
a hung process keeps the data-folder lock, so every restart is refused. Nothing is left to
lose once the state is on disk: after the grace period the process logs one line and ends
with `os._exit`. A save that is still running is never cut short: the watchdog waits for it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: seconds from "state saved" to the end of the process, at the latest
EXIT_GRACE_S = 2.0

log = logging.getLogger(__name__)


class ExitWatchdog:
    """Armed once the state is saved; ends the process `grace_s` later if it still runs."""

    def __init__(
        self, grace_s: float = EXIT_GRACE_S, end_process: Callable[[int], object] = os._exit
    ) -> None:
        self.grace_s = grace_s
        self._end_process = end_process
        self._saving = threading.Lock()
        self._thread: threading.Thread | None = None
        self.exit_code = 0

    @contextmanager
    def saving(self) -> Iterator[None]:
        """Around a save: the watchdog does not end the process while it runs."""
        with self._saving:
            yield

    def arm(self, exit_code: int) -> None:
        """Start the grace period (once; a later call only updates the exit code)."""
        self.exit_code = exit_code
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._expire, name="exit-watchdog", daemon=True)
        self._thread.start()

    def _expire(self) -> None:
        threading.Event().wait(self.grace_s)
        self.exit_now(
            f"the UI did not shut down within {self.grace_s:g} s of the state being saved"
        )

    def exit_now(self, why: str) -> None:
        """End the process now, after any save in progress; one line in the log says why."""
        with self._saving:
            log.warning("exit: %s; ending the process (state saved)", why)
            for handler in logging.getLogger().handlers:
                handler.flush()
            self._end_process(self.exit_code)
