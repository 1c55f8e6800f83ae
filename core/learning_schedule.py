"""When learning cycles are due (DESIGN.md "Learning loop": every 4 hours of market time).

Cycles fall on the slots k x interval_h since 1970-01-01 00:00 UTC of market time (00:00,
04:00, 08:00 ... UTC for 4 h). The cycle for a slot runs before the first bar that opens at
or after it, so it reads exactly the bars that closed by then, whichever symbol's bar came
first and wherever a restart fell. The latest slot a cycle ran for is
saved with the symbol states in one atomic write, so a restart neither repeats nor skips it.
When market time jumps over several slots (a gap in the data), exactly one catch-up cycle
runs, for the latest missed slot, and its report counts the slots it stood in for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .frozen import fast_init
from .probation import optional_time_s


def slot_at(now_s: float, interval_s: float) -> float:
    """The latest slot at or before `now_s` (slots are multiples of the interval)."""
    return math.floor(now_s / interval_s) * interval_s


@fast_init
@dataclass(frozen=True, slots=True)
class LearningSchedule:
    """When cycles ran and are due. `last_slot_s` None: no market time seen yet."""

    interval_s: float
    last_slot_s: float | None = None
    last_cycle_s: float | None = None
    cycles: int = 0
    last_summary: str = ""

    def next_due(self, now_s: float) -> float:
        """The slot the next scheduled cycle is for (at or before `now_s`: due now)."""
        if self.last_slot_s is None:
            return slot_at(now_s, self.interval_s) + self.interval_s
        return self.last_slot_s + self.interval_s

    def due(self, now_s: float) -> tuple[float, int] | None:
        """(slot, slots missed before it) when a scheduled cycle is due at `now_s`."""
        if self.last_slot_s is None:
            return None
        slot = slot_at(now_s, self.interval_s)
        if slot <= self.last_slot_s:
            return None
        missed = round((slot - self.last_slot_s) / self.interval_s) - 1
        return slot, missed

    def to_record(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "last_slot_s": self.last_slot_s,
            "last_cycle_s": self.last_cycle_s,
            "cycles": self.cycles,
            "last_summary": self.last_summary,
        }

    @classmethod
    def from_record(cls, interval_s: float, record: Mapping[str, Any]) -> LearningSchedule:
        """Saved times with the configured interval; a changed interval keeps the last slot."""
        cycles = record.get("cycles", 0)
        if not isinstance(cycles, int) or cycles < 0:
            raise ValueError("learning.cycles must be a count")
        return cls(
            interval_s=interval_s,
            last_slot_s=optional_time_s(record.get("last_slot_s")),
            last_cycle_s=optional_time_s(record.get("last_cycle_s")),
            cycles=cycles,
            last_summary=str(record.get("last_summary", "")),
        )
