"""Say a failure once, then count it: a full disk must not fill the log with the same line.

`RepeatedLog.log(kind, message)` logs the first message of a kind; further messages of the
same kind are only counted, with a reminder at 10, 100, 1000 ... repeats and a final count
when the run of repeats ends (`end()`, or a message of another kind).
"""

from __future__ import annotations

import logging


class RepeatedLog:
    """One logger and level; repeats of the same `kind` are counted, not logged."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger = logger
        self.level = level
        self.kind: str | None = None
        self.repeats = 0
        self._next_reminder = 10

    def log(self, kind: str, message: str) -> None:
        if kind == self.kind:
            self.repeats += 1
            if self.repeats == self._next_reminder:
                self._next_reminder *= 10
                self.logger.log(self.level, "%s (repeated %d times so far)", message, self.repeats)
            return
        self.end()
        self.kind = kind
        self.logger.log(self.level, "%s", message)

    def end(self) -> None:
        """The run of repeats is over: log how many there were (if any went unlogged)."""
        if self.kind is not None and self.repeats:
            self.logger.log(self.level, "… %s: repeated %d times in all", self.kind, self.repeats)
        self.kind = None
        self.repeats = 0
        self._next_reminder = 10
