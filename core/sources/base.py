"""What every market-data source gives the core: closed bars in time order, and its health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from ..bar import Bar
from ..types import SourceState


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How a source is doing, as shown in the cockpit header and headless summaries."""

    name: str
    state: SourceState = SourceState.WARMING
    last_ok_s: float | None = None
    last_error: str | None = None
    errors: int = 0
    rate_limited: int = 0
    next_request_s: float | None = None
    data_age_s: float | None = None
    skipped_rows: int = 0
    detail: str = ""


class BarSource(Protocol):
    """A source of closed 1-minute bars for several symbols.

    `bars(resume_after_ms)` yields closed bars in non-decreasing open time across symbols
    (all symbols of one minute before the next minute). Bars with open time <=
    `resume_after_ms` are not yielded (the core already saw them); where the source has
    history, the bars missed since then come first (catch-up after a restart).
    A source paces itself with the injected clock and never reads the wall clock.
    """

    name: str
    symbols: tuple[str, ...]

    def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]: ...

    def health(self) -> SourceHealth: ...

    async def aclose(self) -> None: ...
