"""The golden hour: the UTC window in which new entries are allowed (DESIGN.md gate 2).

Half-open: with the default 09:00-16:00, 08:59:59 is closed, 09:00:00 open, 15:59:59 open and
16:00:00 closed. A window whose end is before its start wraps past midnight. Only entries
respect it: exits, the learning loop and data collection run at any hour.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import GateConfig, parse_hhmm

DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class GoldenHour:
    start_s_of_day: int
    end_s_of_day: int

    @classmethod
    def from_config(cls, gates: GateConfig) -> GoldenHour:
        return cls(parse_hhmm(gates.golden_hour_start), parse_hhmm(gates.golden_hour_end))

    def is_open(self, time_s: float) -> bool:
        """True when `time_s` (epoch seconds, UTC) is inside the window."""
        second = time_s % DAY_S
        if self.start_s_of_day < self.end_s_of_day:
            return self.start_s_of_day <= second < self.end_s_of_day
        return second >= self.start_s_of_day or second < self.end_s_of_day

    def next_change_s(self, time_s: float) -> float:
        """The next instant after `time_s` at which the window opens or closes."""
        day_start = time_s - time_s % DAY_S
        edges = sorted(
            day_start + offset + edge
            for offset in (0, DAY_S)
            for edge in (self.start_s_of_day % DAY_S, self.end_s_of_day % DAY_S)
        )
        return next(t for t in edges if t > time_s)

    def describe(self) -> str:
        return f"{_hhmm(self.start_s_of_day)}-{_hhmm(self.end_s_of_day)} UTC"


def _hhmm(second_of_day: int) -> str:
    return f"{second_of_day // 3600:02d}:{second_of_day % 3600 // 60:02d}"
