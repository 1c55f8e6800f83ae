"""`bigalpha-tui --no-ui`: the core under anyio, one line per event on stdout.

This module must not import textual or rich (a test checks it in a subprocess).
"""

from __future__ import annotations

import json
import math
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

import anyio
from anyio.abc import TaskStatus

from bigalpha_tui.control import open_control_server
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.numfmt import compact
from bigalpha_tui.core.snapshot import Event, Snapshot, SymbolView
from bigalpha_tui.core.sources.base import SourceHealth
from bigalpha_tui.core.types import SourceState


def iso(t: float | None) -> str:
    if t is None:
        return "—"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_h(h: float | None) -> str:
    return "—" if h is None or not math.isfinite(h) else f"{h:.2f}"


def summary_fields(view: SymbolView) -> dict[str, Any]:
    flow, hurst = view.flow, view.hurst
    return {
        "price": view.price,
        "whale_intensity": round(flow.intensity, 1),
        "whale_direction": flow.direction.value,
        "cvd": round(flow.cvd, 4),
        "h": None if hurst.h is None or not math.isfinite(hurst.h) else round(hurst.h, 3),
        "regime": hurst.regime.value,
    }


def summary_text(view: SymbolView) -> str:
    f = summary_fields(view)
    price = "—" if f["price"] is None else f"{f['price']:.6g}"
    return (
        f"price {price}  whale {f['whale_intensity']:5.1f} {f['whale_direction']:<7}  "
        f"CVD {compact(f['cvd'], signed=True)}  H {fmt_h(f['h'])}  {view.hurst.regime.label}"
    )


class EventPrinter:
    """Writes events and periodic summaries as text or JSON lines."""

    def __init__(
        self, out: IO[str], fmt: str = "text", on_closed: Callable[[], None] = lambda: None
    ) -> None:
        self.out = out
        self.fmt = fmt
        self.closed = False
        self.on_closed = on_closed

    def write(self, text: str) -> None:
        """Write and flush; a closed pipe (`| head`) ends the run instead of a traceback."""
        if self.closed:
            return
        try:
            self.out.write(text)
            self.out.flush()
        except (BrokenPipeError, ValueError):
            self.closed = True
            self.on_closed()

    def event(self, event: Event) -> None:
        if self.fmt == "json":
            record = {
                "time": iso(event.time_s),
                "kind": event.kind,
                "symbol": event.symbol,
                "message": event.message,
                **_jsonable(dict(event.data)),
            }
            self.write(json.dumps(record, allow_nan=False) + "\n")
        else:
            sym = f"{event.symbol:<9}" if event.symbol else " " * 9
            self.write(f"{iso(event.time_s)}  {event.kind:<12} {sym} {event.message}\n")

    def summary(self, snap: Snapshot) -> None:
        t = snap.heartbeat.market_time_s
        for view in snap.symbols:
            if self.fmt == "json":
                record = {
                    "time": iso(t),
                    "kind": "summary",
                    "symbol": view.symbol,
                    **_jsonable(summary_fields(view)),
                }
                self.write(json.dumps(record, allow_nan=False) + "\n")
            else:
                self.write(f"{iso(t)}  {'summary':<12} {view.symbol:<9} {summary_text(view)}\n")


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        out[key] = value
    return out


class SummaryTimer:
    """Calls `emit` every `every_s` of market time, checked after each bar."""

    def __init__(self, every_s: float, emit: Callable[[], None]) -> None:
        self.every_s = every_s
        self.emit = emit
        self.next_s: float | None = None

    def tick(self, market_s: float | None) -> None:
        if market_s is None:
            return
        if self.next_s is None:
            self.next_s = (market_s // self.every_s + 1) * self.every_s
        if market_s >= self.next_s:
            self.emit()
            self.next_s = (market_s // self.every_s + 1) * self.every_s


HEALTH_POLL_S = 2.0


def describe_health(health: SourceHealth) -> str:
    """One line an operator can act on: state, data age, last error, next request."""
    parts = [f"source {health.name}: {health.state.value}"]
    if health.detail:
        detail = health.detail
        if detail.startswith(health.state.value):
            detail = detail[len(health.state.value) :].lstrip(" ,;")
        if detail:
            parts.append(detail)
    if health.data_age_s is not None:
        parts.append(f"data {health.data_age_s / 60:.0f} min old")
    if health.last_error:
        parts.append(f"last error: {health.last_error}")
    if health.rate_limited:
        parts.append(f"{health.rate_limited} x HTTP 429")
    return "; ".join(parts)


async def watch_source_health(core: Core) -> None:
    """Log each change of the source's state, so a dead feed shows even with no bars.

    Polled on wall time, in the app shell: the core only sees the source between bars.
    """
    last: tuple[object, ...] | None = None
    while True:
        health = core.source.health()
        key = (health.state, health.last_error)
        if key != last:
            # a normal start (warming, then ok) is no news, and announcing it at a wall-clock
            # moment would make two runs of the same seed print different lines
            quiet = (SourceState.OK, SourceState.WARMING)
            was_quiet = last is None or last[0] in quiet
            if not (was_quiet and health.state in quiet):
                core.emit("source", "", describe_health(health), state=health.state.value)
            last = key
        await anyio.sleep(HEALTH_POLL_S)


async def run_headless(
    core: Core,
    duration_s: float | None,
    out: IO[str] = sys.stdout,
    fmt: str = "text",
    restore_signals_after: bool = True,
) -> int:
    """Run until the duration passes, the source ends, or SIGINT/SIGTERM; state is flushed.

    After a stop signal, repeats only say that state is being saved; with
    `restore_signals_after` False they keep doing so after the return (the CLI, which exits
    next)."""
    printer = EventPrinter(out, fmt, on_closed=core.stop)
    for event in reversed(core.events):  # start-up warnings recorded before we subscribed
        printer.event(event)
    core.observers.append(printer.event)
    timer = SummaryTimer(
        core.config.ui.summary_every_min * 60.0, lambda: printer.summary(core.snapshot())
    )
    core.step_observers.append(lambda: timer.tick(core.heartbeat.market_time_s))

    control = await open_control_server(core)  # `bigalpha-tui ctl` (None when read-only)
    try:
        async with anyio.create_task_group() as tg:

            async def watch_signals(*, task_status: TaskStatus[None]) -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    task_status.started()  # handlers are installed before the core starts
                    async for signum in signals:
                        name = signal.Signals(signum).name
                        core.emit("stop", "", f"received {name}; saving state")
                        tg.cancel_scope.cancel()
                        break
                # a second Ctrl-C (or `timeout`, which signals the child and its group) must
                # not interrupt the final save: repeats are noted until the run returns
                hold_repeated_signals()

            await tg.start(watch_signals)
            tg.start_soon(watch_source_health, core)
            if control is not None:
                tg.start_soon(control.serve)
            try:
                await core.run(duration_s)
            finally:
                tg.cancel_scope.cancel()
    finally:
        if control is not None:
            await control.aclose()
        if restore_signals_after:
            restore_signals()
    printer.summary(core.snapshot())
    return final_save_status(core)


EXIT_SAVE_FAILED = 1


def final_save_status(core: Core) -> int:
    """0 when the last save went through; else one line on stderr and EXIT_SAVE_FAILED, so a
    supervisor or script sees that the store holds an older state than the run reached."""
    error = core.store.last_write_error
    if core.read_only or error is None:
        return 0
    print(
        f"bigalpha-tui: the last save failed ({error}); the store holds an earlier state",
        file=sys.stderr,
    )
    return EXIT_SAVE_FAILED


_held: dict[int, Any] = {}


def hold_repeated_signals() -> None:
    """Until `restore_signals`, SIGINT and SIGTERM only say that state is being saved."""

    def repeat(signum: int, _frame: object) -> None:
        # runs between any two bytecodes: touch nothing of the core, just say it
        name = signal.Signals(signum).name
        print(f"bigalpha-tui: received {name} again; still saving state", file=sys.stderr)

    for signum in (signal.SIGINT, signal.SIGTERM):
        _held.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, repeat)


def restore_signals() -> None:
    while _held:
        signum, handler = _held.popitem()
        signal.signal(signum, handler)
