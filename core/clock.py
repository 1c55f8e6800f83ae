"""Time for the core. Nothing in core/ reads the wall clock except through a `Clock`.

Times are float seconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    """Market time as the core sees it."""

    def now(self) -> float:
        """Current market time, epoch seconds UTC."""
        ...

    def wall(self) -> float:
        """Wall time, for heartbeats and operator logs only."""
        ...

    async def sleep_until(self, t: float) -> None:
        """Return once market time has reached `t`."""
        ...


class RealClock:
    """Market time is wall time (live sources)."""

    def now(self) -> float:
        return time.time()

    def wall(self) -> float:
        return time.time()

    async def sleep_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await anyio.sleep(delay)


class SimClock:
    """Simulated market time.

    `speed` is market seconds per wall second (60 = one market minute a second); None means
    as fast as the CPU goes: time then only moves when a source calls `advance_to`, which
    also makes this the manual clock of tests.
    """

    def __init__(self, start: float, speed: float | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive, or None for max")
        self._t = float(start)
        self.speed = speed
        self._anchor = time.monotonic()

    def now(self) -> float:
        if self.speed is None:
            return self._t
        return self._t + (time.monotonic() - self._anchor) * self.speed

    def wall(self) -> float:
        return time.time()

    def advance_to(self, t: float) -> None:
        """Move market time forward to `t` (never backwards)."""
        if t > self.now():
            self._t = float(t)
            self._anchor = time.monotonic()

    def advance(self, seconds: float) -> None:
        self.advance_to(self.now() + seconds)

    async def sleep_until(self, t: float) -> None:
        if self.speed is None:
            self.advance_to(t)
            await anyio.lowlevel.checkpoint()
            return
        delay = (t - self.now()) / self.speed
        if delay > 0:
            await anyio.sleep(delay)
        else:
            # backfill: already past; still yield so the UI and signal handlers run
            await anyio.lowlevel.checkpoint()
        self.advance_to(t)


#: The accepted `--speed` range, market seconds per wall second ('max' aside): below it a
#: minute bar would take days, above it the pacing arithmetic loses meaning.
MIN_SPEED = 0.01
MAX_SPEED = 1e6
SPEED_ACCEPTS = f"a number from {MIN_SPEED:g} to {MAX_SPEED:g} (market seconds per second) or 'max'"


def parse_speed(text: str) -> float | None:
    """`--speed` values: a number in [MIN_SPEED, MAX_SPEED], or 'max' (None)."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not MIN_SPEED <= speed <= MAX_SPEED:  # also false for nan
        raise ValueError(f"--speed accepts {SPEED_ACCEPTS}, not {text!r}")
    return speed
