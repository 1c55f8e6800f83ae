"""The Textual cockpit: the core runs in an async worker of this app, and one UI tick (at
most `ui.refresh_hz`, 1 Hz by default) reads the core's latest snapshot and hands it to the
visible widgets, which skip values that did not change. Keys send commands through the
core's command queue; their results come back as "command" events and show as toasts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import select
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from importlib import resources
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import ClassVar, TextIO

import anyio
from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.driver import Driver
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import AwaitMount
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from bigalpha_tui.core.commands import Command, CommandKind, guard_command
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import CommandError, ConfigError, StoreError, sole_error
from bigalpha_tui.core.golden_hour import GoldenHour
from bigalpha_tui.core.journal import Journal, read_journal
from bigalpha_tui.core.snapshot import Event, PositionView, Snapshot
from bigalpha_tui.core.store import Store, make_room_for_private_file, private_opener
from bigalpha_tui.core.types import BlockReason, SourceState, SymbolState
from bigalpha_tui.exit_watchdog import ExitWatchdog
from bigalpha_tui.screens.events import DetailView, EventsScreen
from bigalpha_tui.screens.execution import LiveAsk
from bigalpha_tui.screens.guards import GuardsScreen
from bigalpha_tui.screens.main import MainScreen
from bigalpha_tui.widgets import fmt
from bigalpha_tui.widgets.guard_log import GuardLog, block_fields
from bigalpha_tui.widgets.probation_table import ProbationTable, probation_fields
from bigalpha_tui.widgets.status_bar import StatusBar, StatusInfo

#: actions that steer the bot: disabled in read-only mode
STEERING = frozenset({"toggle_pause", "pause", "resume", "learn", "release", "close_position"})
STEERING |= {"flatten", "ack_mismatch"}
#: actions that only make sense on the main screen (not under a dialog)
MAIN_SCREEN_ONLY = STEERING | {"guards", "journal", "focus_symbol", "step_panel", "help", "quit"}
MAIN_SCREEN_ONLY |= {"events"}
MAIN_SCREEN_ONLY |= {"charts"}
MAIN_SCREEN_ONLY |= {"flatten", "execution"}
#: of those, the ones that also answer over a full screen (charts, journal, events), whose
#: status line shows what they change (PAUSED, HALTED) or whose dialog opens over it; the
#: rest act on the main screen's focus or open a screen of their own there
FULL_SCREEN_TOO = frozenset({"toggle_pause", "pause", "resume", "learn", "help"})
FULL_SCREEN_TOO |= {"flatten", "execution"}
#: key pairs shown in the footer only while it matters (the other, hidden twin answers then)
FOOTER_WHEN = ("flatten", "execution")
#: narrower than this, F and h stay off the footer (they would push `? Help` and `q Quit` off
#: it); help and the palette list them at every width
EXCHANGE_FOOTER_MIN_WIDTH = 100
SOURCE_OK = {SourceState.OK, SourceState.WARMING, SourceState.FINISHED}
#: each saves the state and ends the cockpit, like `q`
STOP_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


#: longest wait for a key to be handled (or a screen to be built) before the next typed key
#: goes on regardless: a key whose widget went away mid-way is never reported handled
KEY_WAIT_S = 0.25


class KeyHandled(Message):
    """Sent after a key to the widget the key went to: it bubbles up behind the key, so its
    arrival at the app says the key was handled all the way up (bindings included)."""

    def __init__(self, token: object) -> None:
        super().__init__()
        self.token = token


def load_css() -> str:
    """The cockpit stylesheet, shipped as package data in `bigalpha_tui.assets`."""
    return resources.files("bigalpha_tui.assets").joinpath("cockpit.tcss").read_text("utf-8")


def golden_hour(now_s: float, config: Config) -> tuple[bool, float]:
    """(open now, seconds to the next change) of the UTC entry window, for display only,
    by the core's own rule (windows across midnight included).

    Used when the core's snapshot does not carry the golden-hour fields yet.
    """
    window = GoldenHour.from_config(config.gates)
    return window.is_open(now_s), window.next_change_s(now_s) - now_s


def source_detail(snapshot: Snapshot, market_now_s: float) -> str:
    """Rate limiting, backoff and the last error in a few words."""
    health = snapshot.source
    parts: list[str] = []
    if health.rate_limited:
        parts.append(f"429×{health.rate_limited}")
    if health.errors:
        parts.append(f"{health.errors} errors")
    if health.next_request_s is not None and health.next_request_s > market_now_s:
        parts.append(f"next {fmt.duration(health.next_request_s - market_now_s)}")
    if health.last_error:
        parts.append(health.last_error)  # the status line clips it to the room it has
    if not parts and health.detail:
        parts.append(health.detail)
    return " · ".join(parts)


class CockpitCommands(Provider):
    """Every cockpit action by name in the command palette (ctrl+p)."""

    def commands(self) -> list[tuple[str, str, str]]:
        """(title, action, help) for the actions that can run now."""
        app = self.app
        assert isinstance(app, CockpitApp)
        entries = [
            ("Pause / resume entries", "toggle_pause", "p — new entries stop; exits keep running"),
            ("Run the learning cycle now", "learn", "l — probation and slippage buffers"),
            ("Guards…", "guards", "g — switch a guard off or on"),
            ("Trade journal…", "journal", "t — every closed trade, newest first"),
            ("Events…", "events", "e — the event log, newest first, / to filter"),
            ("Charts…", "charts", "c — P&L live vs shadow, price with trades, H"),
            ("Release focused symbol from probation", "release", "r"),
            ("Close focused position", "close_position", "x — at the next bar's open"),
            ("Flatten: close every position…", "flatten(0)", "F — asks twice"),
            ("Halt and exchange detail…", "execution(0)", "h — why entries halt; acknowledge"),
            ("Keys and help", "help", "? or F1"),
            ("Quit (state is saved, positions stay)", "quit", "q"),
        ]
        for index, symbol in enumerate(app.main.cards, start=1):
            entries.append((f"Focus {symbol}", f"focus_symbol({index})", f"{index}"))
        out = []
        for title, action, help_text in entries:
            name = action.split("(")[0]
            if app.action_allowed(name) is True and app.works_on(name, self.screen):
                out.append((title, action, help_text))
        return out

    def entries(self) -> list[tuple[str, Callable[[], object], str, bool]]:
        """(title, callback, help, listed before typing) for ours, then Textual's own
        (Theme, Screenshot, …): one provider, so ours always come first (two providers
        would answer in the order of a set, which changes from run to run)."""
        out = [(t, self._runner(action), h, True) for t, action, h in self.commands()]
        system = sorted(self.app.get_system_commands(self.screen), key=lambda c: c.title)
        for command in system:
            out.append((command.title, command.callback, command.help, command.discover))
        return out

    async def discover(self) -> Hits:
        for title, callback, help_text, listed in self.entries():
            if listed:
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text, _ in self.entries():
            score = matcher.match(title)
            if score > 0:
                # the palette sorts by score and keeps this order between equal scores
                yield Hit(score, matcher.highlight(title), callback, help=help_text)

    def _runner(self, action: str) -> Callable[[], object]:
        async def run() -> None:
            await self.app.run_action(action)

        return run


class CockpitApp(App[int]):
    """The cockpit over one `Core`."""

    TITLE = "bigalpha-tui"
    CSS = load_css()
    ENABLE_COMMAND_PALETTE = True
    # Textual's system commands (Theme, Screenshot, …) come through ours, after them
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {CockpitCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        # one key, two bindings: the footer says what `p` does now (check_action hides the other)
        Binding("p", "pause", "Pause", id="pause", tooltip="stop new entries; exits keep running"),
        Binding("p", "resume", "Resume", id="resume", tooltip="let new entries in again"),
        Binding("l", "learn", "Learn", id="learn", tooltip="run the learning cycle now"),
        Binding("g", "guards", "Guards", id="guards", tooltip="switch guards off or on"),
        # not in the footer: at 80 columns it would push `q Quit` out
        Binding(
            "t",
            "journal",
            "Journal",
            id="journal",
            tooltip="closed trades, newest first",
            show=False,
        ),
        Binding("e", "events", "Events", id="events", tooltip="the event log, in full", show=False),
        Binding("c", "charts", "Charts", id="charts", tooltip="P&L curve, price and H", show=False),
        Binding("r", "release", "Release", id="release", tooltip="release focused symbol"),
        Binding("x", "close_position", "Close", id="close", tooltip="close focused position"),
        # in the footer on an exchange only (and `h` while entries are halted); the hidden
        # twin answers the key otherwise (check_action)
        Binding(
            "F,shift+f",  # a terminal with the kitty keyboard protocol sends shift+f
            "flatten(1)",
            "Flatten",
            id="flatten",
            tooltip="close every position, cancel every order (asks twice)",
        ),
        Binding("F,shift+f", "flatten(0)", "Flatten", id="flatten-quiet", show=False),
        Binding(
            "h",
            "execution(1)",
            "Halted",
            id="execution",
            tooltip="why entries are halted, the differences in full; acknowledge",
        ),
        Binding("h", "execution(0)", "Halted", id="execution-quiet", show=False),
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("q", "quit", "Quit", id="quit", tooltip="state is saved, positions stay"),
        Binding("ctrl+q", "quit", "Quit", id="quit-ctrl", show=False, priority=True),
        Binding("left_square_bracket", "step_panel(-1)", "Prev panel", id="prev-panel", show=False),
        Binding("right_square_bracket", "step_panel(1)", "Next panel", id="next-panel", show=False),
        *(
            Binding(str(i), f"focus_symbol({i})", f"Symbol {i}", id=f"symbol-{i}", show=False)
            for i in range(1, 10)
        ),
    ]

    def __init__(
        self,
        core: Core,
        *,
        duration_s: float | None = None,
        run_core: bool = True,
        wall_clock: Callable[[], float] = time.time,
        snapshot_source: Callable[[], Snapshot] | None = None,
        watch_tty: bool = False,
        serve_control: bool = False,
        driver_class: type[Driver] | None = None,
        exit_watchdog: ExitWatchdog | None = None,
        live_ask: LiveAsk | None = None,
    ) -> None:
        super().__init__(driver_class=driver_class)
        self.core = core
        self.config: Config = core.config
        self.duration_s = duration_s
        self.run_core = run_core
        self.wall_clock = wall_clock
        self.snapshot_source = snapshot_source or core.snapshot
        self.watch_tty = watch_tty
        self.serve_control = serve_control
        self.exit_watchdog = exit_watchdog
        self.live_ask = live_ask  # live: the word is typed before the core starts
        self.animation_level = "none"
        self.tick_period_s = 1.0 / self.config.ui.refresh_hz
        self.started_wall_s = wall_clock()
        self.started_market_s = core.clock.now()  # this session's start, for the charts
        self.core_problem = ""
        self.fatal_message = ""  # bad input the core found at start: said on exit, status 2
        self.toasts: list[tuple[str, SeverityLevel]] = []
        self.core_worker: Worker[None] | None = None
        self._tick_timer: Timer | None = None
        self._quitting = False
        self._footer_paused = False
        # typed keys wait here while the one before is on its way (see on_event)
        self._typed: deque[events.Key] = deque()
        self._key_in_flight: object | None = None
        self._key_watchdog: Timer | None = None
        self._mount_waits: set[asyncio.Task[None]] = set()
        symbols = [v.symbol for v in self.snapshot_source().symbols] or list(
            self.config.source.symbols
        )
        self.main = MainScreen(self.config, symbols, on_ready=self._start)

    # -- start and stop -----------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return self.main

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Textual's own palette entries, less its "Quit" (ours says what quitting keeps) and
        its "Keys" side panel (it squeezed the cockpit and esc did not close it): our "Keys
        and help" opens the `?` screen instead."""
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    def action_show_help_panel(self) -> None:
        """Textual's key panel, however asked for, is our help screen (esc closes it)."""
        if self.check_action("help", ()):
            self.action_help()

    # -- typed keys, one at a time ------------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        """Keys typed in one burst (`e/sol`, a paste) are handed on one at a time: each once
        the one before was handled all the way up and the focus it moved has moved, and
        never to a screen still being built. Textual hands each key to whatever has focus
        when it arrives, so `/sol` typed fast went to the list under the search box and its
        `l` ran Learn, and keys after `e` went to the screen being replaced."""
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._typed.append(event)
            if self._key_in_flight is None:
                await self._next_key()
            elif self._key_watchdog is None:
                self._key_watchdog = self.set_timer(KEY_WAIT_S, self._key_waited_too_long)
            return
        await super().on_event(event)

    async def _next_key(self) -> None:
        if self._key_in_flight is not None or not self._typed:
            return
        if not self.screen_stack:
            self._typed.clear()  # shutting down: nothing to type into
            return
        screen = self.screen
        token = object()
        self._key_in_flight = token
        if not screen.is_mounted:  # being built: its widgets and focus are not there yet
            task = asyncio.create_task(self._when_mounted(screen, token))
            self._mount_waits.add(task)
            task.add_done_callback(self._mount_waits.discard)
            return
        event = self._typed.popleft()
        target = self.focused or screen  # where Textual sends a key no priority key takes
        await super().on_event(event)
        # the marker follows the key up; a widget that already closed takes neither
        if not (event.is_forwarded and target.post_message(KeyHandled(token))):
            self.call_later(self._key_done, token)

    async def _when_mounted(self, screen: Screen[object], token: object) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._mounted(screen), KEY_WAIT_S)
        self.call_later(self._key_done, token)

    @staticmethod
    async def _mounted(screen: Screen[object]) -> None:
        await AwaitMount(screen, [screen])

    def on_key_handled(self, message: KeyHandled) -> None:
        message.stop()
        # after whatever the key queued here (a focus move) has run
        self.call_later(self._key_done, message.token)

    async def _key_done(self, token: object) -> None:
        if token is not self._key_in_flight:
            return  # given up on by the watchdog
        self._key_in_flight = None
        if self._key_watchdog is not None:
            self._key_watchdog.stop()
            self._key_watchdog = None
        await self._next_key()

    async def _key_waited_too_long(self) -> None:
        self._key_watchdog = None
        token = self._key_in_flight
        if token is not None:
            await self._key_done(token)

    def on_mount(self) -> None:
        self.core.observers.append(self.on_core_event)
        if self.watch_tty:
            self._install_signal_handlers()

    def _start(self) -> None:
        """Once the main screen is mounted: first draw, the tick, then the core loop."""
        self.refresh_view()
        self._arm_tick()
        if self.live_ask is not None:
            from bigalpha_tui.screens.execution import ask_live

            ask_live(self, self.live_ask, self._live_confirmed)
            return
        if self.run_core:
            # after the first frame is out: the source's back-fill would hold it back
            self.call_after_refresh(self._start_core)

    def _live_confirmed(self) -> None:
        self.live_ask = None
        if self.run_core:
            self.call_after_refresh(self._start_core)

    def _start_core(self) -> None:
        if self.core_worker is None and not self._quitting:
            self.core_worker = self.run_worker(
                self._run_core(), name="core", group="core", exit_on_error=False
            )

    async def _run_core(self) -> None:
        """The core loop, with the `bigalpha-tui ctl` socket beside it as in headless mode."""
        from bigalpha_tui.control import ControlError, open_control_server

        try:
            control = await open_control_server(self.core) if self.serve_control else None
        except ControlError as exc:
            self.exit(2, message=f"bigalpha-tui: {exc}")
            return
        try:
            async with anyio.create_task_group() as tg:
                if control is not None:
                    tg.start_soon(control.serve)
                try:
                    await self.core.run(self.duration_s)
                finally:
                    tg.cancel_scope.cancel()
        finally:
            if control is not None:
                await control.aclose()

    def _install_signal_handlers(self) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self._on_stop_signal)

    def _on_stop_signal(self) -> None:
        self.call_later(self.action_quit)

    async def action_quit(self) -> None:
        """Stop the core after its current bar, save its state, leave positions open."""
        if self._quitting:
            return
        self._quitting = True
        self.core.stop()
        worker = self.core_worker
        if worker is not None and worker.is_running:
            worker.cancel()
            with contextlib.suppress(Exception):
                await worker.wait()
        if self.exit_watchdog is None:
            self.core.checkpoint()
        else:
            with self.exit_watchdog.saving():
                self.core.checkpoint()
            self.exit_watchdog.arm(0)
        self.exit(0)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self.core_worker or self._quitting:
            return
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            if error is not None:
                error = sole_error(error)
            if isinstance(error, ConfigError):
                # bad input found at start (e.g. a symbol the exchange does not list): one
                # line and exit status 2, as headless says it
                self.fatal_message = str(error)
                self.exit(return_code=2)
                return
            self.core_problem = "STOPPED"
            self.toast(f"The core stopped: {error!r}. State up to the last bar is saved.", "error")
        elif event.state is WorkerState.SUCCESS:
            if self.duration_s is not None:
                self.exit(0)
                return
            self.core_problem = "FINISHED"
            self.toast("The core loop finished (the source has no more bars).", "warning")
        self.refresh_view()

    # -- the UI tick ----------------------------------------------------------------------

    def _arm_tick(self) -> None:
        self._tick_timer = self.set_timer(self.tick_period_s, self._tick, name="ui-tick")

    def _tick(self) -> None:
        if self._quitting or not self.screen_stack:
            return  # shutting down: no more frames
        try:
            if self.watch_tty and terminal_gone():
                self.call_later(self.action_quit)
                return
            self.refresh_view()
        finally:
            self._arm_tick()

    def refresh_view(self) -> None:
        """Read the latest snapshot and draw it on whichever screen is showing."""
        if not self.screen_stack:
            return
        snapshot = self.snapshot_source()
        if snapshot.paused != self._footer_paused:
            self._footer_paused = snapshot.paused
            # the footer's p: Pause <-> Resume, once the frame with the new state is out (the
            # footer rebuilds all its keys, which would hold that frame back)
            self.call_after_refresh(self.refresh_bindings)
        # the main screen is drawn under dialogs too: its clock and heartbeat never freeze;
        # behind a full screen (charts, journal, events), and under a dialog over one, it is
        # not, since Textual would repaint what changed on it through the screen on top; it
        # catches up when it shows again. A full screen has a status line of its own.
        screen = self.screen
        base = next((s for s in reversed(self.screen_stack) if not s.is_modal), self.main)
        market_now = self.core.clock.now()
        if base is self.main:
            self.main.show(snapshot, self.status_info(snapshot, market_now), market_now)
        else:
            for bar in base.query(StatusBar):
                bar.status = self.status_info(snapshot, market_now)
        if isinstance(screen, GuardsScreen):
            screen.show(snapshot)
        elif isinstance(screen, EventsScreen):
            screen.show(snapshot.events)
        elif hasattr(screen, "show_snapshot"):  # charts, journal (imported on first use)
            screen.show_snapshot(snapshot)

    def status_info(self, snapshot: Snapshot, market_now_s: float) -> StatusInfo:
        if snapshot.golden_hour_next_change_s is not None:
            golden_open = snapshot.golden_hour_open
            change_in = snapshot.golden_hour_next_change_s - market_now_s
        else:
            golden_open, change_in = golden_hour(market_now_s, self.config)
        wall_now = self.wall_clock()
        age = snapshot.heartbeat.age_s(wall_now)
        waited = age if age is not None else wall_now - self.started_wall_s
        health = snapshot.source
        return StatusInfo(
            market_time_s=market_now_s,
            golden_open=golden_open,
            golden_change_in_s=change_in,
            source_name=health.name,
            source_state=health.state.value,
            source_ok=health.state in SOURCE_OK,
            source_detail=source_detail(snapshot, market_now_s),
            heartbeat_age_s=age,
            stale=self.core_problem == "" and waited > self.stale_after_s(),
            paused=snapshot.paused,
            net_pnl_usd=snapshot.net_pnl_usd,
            read_only=snapshot.read_only or self.core.read_only,
            warnings=snapshot.warnings,
            core_problem=self.core_problem,
            halted_reason=snapshot.entries_halted_reason or "",
            source_error=health.last_error or "",
            guards_off=tuple(r.value for r, on in snapshot.guards_enabled.items() if not on),
        )

    def stale_after_s(self) -> float:
        """Wall seconds without a bar before the heartbeat counts as stale.

        A bar closes every market minute, so the wait scales with the clock's speed.
        """
        speed = getattr(self.core.clock, "speed", 1.0) or 1000.0
        return max(10.0, 2.5 * 60.0 / speed)

    # -- commands -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.screen_stack:
            return False
        # under a dialog the main screen's keys are off, over a full screen most of them
        if not self.works_on(action, self.screen):
            return False
        allowed = self.action_allowed(action)
        if action in FOOTER_WHEN:
            from bigalpha_tui.screens.execution import footer_shows

            # the shown twin when it matters now, else the hidden one
            shown = footer_shows(action, self.snapshot_source())
            shown = shown and self.size.width >= EXCHANGE_FOOTER_MIN_WIDTH
            fits = shown == bool(parameters[0])
            return allowed if fits else False
        if action in ("pause", "resume"):
            # the one that fits the state; False hides the other from the footer, and `p`
            # falls through to the binding that fits
            fits = self.snapshot_source().paused == (action == "resume")
            return allowed if fits else False
        return allowed

    def works_on(self, action: str, screen: Screen[object]) -> bool:
        """Whether an app key answers while `screen` is on top: every key on the main
        screen, the `FULL_SCREEN_TOO` keys over a full screen, none under a dialog (the
        command palette runs its choice as it closes, so it does not count as one)."""
        if action not in MAIN_SCREEN_ONLY or screen is self.main:
            return True
        if isinstance(screen, CommandPalette):
            return True
        return action in FULL_SCREEN_TOO and not screen.is_modal

    def action_allowed(self, action: str) -> bool | None:
        """Whether an action can run in this session, whatever screen is showing."""
        if action in STEERING and self.core.read_only:
            return False  # hidden from the footer and refused: this session only watches
        if action == "execution":
            # paper has no exchange to show: the detail only says why entries halt, if they do
            snapshot = self.snapshot_source()
            return snapshot.execution.on_exchange or snapshot.entries_halted_reason is not None
        # panel keys only matter when panels are tabs
        return not (action == "step_panel" and self.main.wide)

    def submit(self, command: Command) -> bool:
        """Send a command; the result arrives as a "command" event (see on_core_event)."""
        try:
            self.core.submit(command)
        except CommandError as exc:
            self.toast(f"{command.describe()}: {exc}", "error")
            return False
        self.refresh_view()
        return True

    def on_core_event(self, event: Event) -> None:
        """Core observer (called on this event loop): toast command results and warnings."""
        if event.kind == "command":
            ok = bool(event.data.get("ok", True))
            message = event.message
            if event.symbol and event.symbol not in message:
                # a result that does not name its symbol ("PROBATION -> ACTIVE: ...") would
                # leave the operator guessing which one it was
                message = f"{event.symbol}: {message}"
            self.toast(message, "information" if ok else "error")
        elif event.kind == "store_warning":
            self.toast(event.message, "warning")

    def toast(self, message: str, severity: SeverityLevel = "information") -> None:
        self.toasts.append((message, severity))
        self.notify(message, severity=severity, markup=False)

    def action_toggle_pause(self) -> None:
        paused = self.snapshot_source().paused
        self.submit(Command(CommandKind.RESUME if paused else CommandKind.PAUSE))

    def action_pause(self) -> None:
        self.submit(Command(CommandKind.PAUSE))

    def action_resume(self) -> None:
        self.submit(Command(CommandKind.RESUME))

    def action_learn(self) -> None:
        self.submit(Command(CommandKind.LEARN))

    def action_guards(self) -> None:
        screen = GuardsScreen(
            self.config,
            self.snapshot_source(),
            self.switch_guard,
            read_only=self.core.read_only,
        )
        self.push_screen(screen, lambda _: self.refresh_view())

    def action_journal(self) -> None:
        from bigalpha_tui.screens.journal import JournalScreen  # on first use: a faster start

        closed = self.snapshot_source().closed_trades  # another count later: read again
        self.push_full_screen(JournalScreen(self.read_journal, closed))

    def action_events(self) -> None:
        events = EventsScreen(self.snapshot_source().events)
        self.push_full_screen(events)

    def on_guard_log_selected(self, message: GuardLog.Selected) -> None:
        """`enter` on a blocked entry: its reason in full."""
        block = message.block
        self.push_screen(DetailView(f"Blocked {block.symbol}", block_fields(block)))

    @on(DataTable.RowSelected, "#probation-table")
    def _probation_row_selected(self, event: DataTable.RowSelected) -> None:
        """`enter` on a probation row: why the symbol is in its state, in full."""
        table = event.data_table
        view = table.view_at_cursor() if isinstance(table, ProbationTable) else None
        if view is not None:
            self.push_screen(
                DetailView(f"{view.symbol} {view.state.value}", probation_fields(view))
            )

    def action_charts(self) -> None:
        from bigalpha_tui.screens.charts import ChartsScreen  # on first use: a faster start

        snapshot = self.snapshot_source()
        # the core's own start (market time), carried in its snapshot: an attached cockpit's
        # session is the bot's, as the session line says, not the time the cockpit opened
        start = snapshot.session.started_s
        if start is None:
            start = getattr(self.core, "started_market_s", None) or self.started_market_s
        screen = ChartsScreen(
            self.config,
            self.read_journal,
            snapshot,
            self.main.focused_symbol(),
            start,
            read_closes=self.read_saved_closes,
        )
        self.push_full_screen(screen)

    def push_full_screen(self, screen: Screen[None]) -> None:
        """Charts, journal, events: their status line drawn with their first frame, the main
        screen brought up to date when they close."""
        self.push_screen(screen, lambda _: self.refresh_view())
        self.call_after_refresh(self.refresh_view)

    def read_journal(self) -> Journal:
        """The store's closed trades, through a read-only store of our own (it runs in a
        thread: the core's store is the core's)."""
        try:
            return read_journal(Store(self.core.data_dir, read_only=True))
        except StoreError as exc:
            self.call_from_thread(self.toast, f"Journal: {exc}", "error")
            return Journal()

    def read_saved_closes(self) -> dict[str, tuple[tuple[float, float], ...]]:
        """The price history the store's Hurst state holds (from before the bot's start: a
        restarted bot's snapshot has only the bars since), read as `read_journal` reads."""
        from bigalpha_tui.core.charts import read_saved_closes

        try:
            return read_saved_closes(Store(self.core.data_dir, read_only=True))
        except StoreError as exc:
            self.call_from_thread(self.toast, f"Price history: {exc}", "error")
            return {}

    def switch_guard(self, reason: BlockReason, on: bool) -> None:
        self.submit(guard_command(reason.value, on))

    def action_release(self) -> None:
        symbol = self.main.focused_symbol()
        if symbol is None:
            self.toast("Focus a symbol first (1-9, or a probation table row).", "warning")
            return
        view = self.snapshot_source().symbol(symbol)
        if view is None or view.state is not SymbolState.PROBATION:
            self.toast(f"{symbol} is not on probation.", "warning")
            return
        pf = fmt.profit_factor(view.golden_pf)
        self.confirm(
            f"Release {symbol} from probation?",
            f"Golden-hour PF {pf} over {view.golden_trades} trades; size cap "
            f"{view.size_cap:g}× goes back to full size.",
            Command(CommandKind.RELEASE, symbol),
            title="Release symbol",
        )

    def focused_position(self) -> PositionView | None:
        symbol = self.main.focused_symbol()
        positions = self.snapshot_source().positions
        focused = self.main.focused
        from bigalpha_tui.widgets.positions_table import PositionsTable

        if isinstance(focused, PositionsTable):
            return focused.position_at_cursor()
        return next((p for p in positions if p.symbol == symbol), None)

    def action_close_position(self) -> None:
        position = self.focused_position()
        if position is None:
            symbol = self.main.focused_symbol()
            where = f" for {symbol}" if symbol else ""
            self.toast(f"No open position{where}.", "warning")
            return
        self.confirm(
            f"Close {position.side.value} {fmt.qty(position.qty)} {position.symbol}?",
            f"Market order at the next bar's open. When asked: price move "
            f"{fmt.pct(position.pnl_pct)}, P&L {fmt.usd(position.pnl_usd)}"
            " net of fees paid so far.",
            Command(CommandKind.CLOSE, position.symbol),
            title="Close position",
        )

    def action_flatten(self, shown: int = 0) -> None:
        from bigalpha_tui.screens.execution import ask_flatten

        ask_flatten(self)

    def action_execution(self, shown: int = 0) -> None:
        from bigalpha_tui.screens.execution import show_execution

        show_execution(self)

    def confirm(self, question: str, detail: str, command: Command, *, title: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.submit(command)

        from bigalpha_tui.screens.confirm import ConfirmDialog  # on first use: a faster start

        self.push_screen(ConfirmDialog(question, detail, title=title), answered)

    def action_focus_symbol(self, index: int) -> None:
        self.main.focus_symbol(index)

    def action_step_panel(self, step: int) -> None:
        self.main.step_panel(step)

    def action_help(self) -> None:
        from bigalpha_tui.screens.help import HelpScreen, legend  # on first use: a faster start

        self.push_screen(HelpScreen(list(self.binding_rows()), marks=legend(self.config)))

    def binding_rows(self) -> Iterable[tuple[str, str, str, bool]]:
        """(keys, description, tooltip, enabled) per app binding, in BINDINGS order, with the
        keys as currently mapped (`set_keymap`) and the nine symbol keys folded into one.
        Enabled: the key answers in this session on the screen under help and dialogs."""
        here = next((s for s in reversed(self.screen_stack) if not s.is_modal), self.main)
        keys_by_id: dict[str, list[str]] = {}
        for bindings in self._bindings.key_to_bindings.values():
            for binding in bindings:
                if binding.id:
                    keys_by_id.setdefault(binding.id, []).append(self.get_key_display(binding))
        digits_done = False
        for entry in type(self).BINDINGS:
            if not isinstance(entry, Binding):
                continue
            binding = entry
            if binding.id is None or binding.id == "quit-ctrl" or binding.id.endswith("-quiet"):
                continue
            if binding.action.startswith("focus_symbol"):
                if not digits_done:
                    digits_done = True
                    yield ("1 … 9", "Focus a symbol", "and its table rows", True)
                continue
            keys = " ".join(_bracket(k) for k in keys_by_id.get(binding.id, []))
            name = binding.action.split("(")[0]
            enabled = self.action_allowed(name) is not False and self.works_on(name, here)
            description, tooltip = binding.description, binding.tooltip
            if name == "execution":
                description, tooltip = self.execution_label()
            yield (keys, description, tooltip, enabled)

    def execution_label(self) -> tuple[str, str]:
        """What `h` opens, in words that hold whether or not entries are halted now."""
        snapshot = self.snapshot_source()
        if snapshot.entries_halted_reason is not None:
            return ("Halted", "why entries are halted now, the differences in full; acknowledge")
        if snapshot.execution.on_exchange:
            return (
                "Exchange",
                "the account as last read, orders waiting or of unknown outcome; when entries"
                " halt, why, and the acknowledgement",
            )
        return ("Halt detail", "why entries are halted; on paper only while they are")


def _bracket(key: str) -> str:
    return {"left_square_bracket": "[", "right_square_bracket": "]"}.get(key, key)


def terminal_gone() -> bool:
    """True when stdin hung up (SSH dropped, terminal closed) or stopped being a TTY."""
    try:
        fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
    except (ValueError, OSError):
        return True
    if fd < 0 or not os.isatty(fd):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLHUP | select.POLLERR | select.POLLNVAL)
    return any(
        mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, mask in poller.poll(0)
    )


COCKPIT_LOG = Path("logs") / "cockpit.log"
COCKPIT_LOG_BYTES = 1 << 20  # rotated past 1 MiB, two old files kept
COCKPIT_LOG_KEEP = 2


def log_away_from_the_screen(path: Path | None) -> None:
    """Library warnings (rate limiter, sources) go to a file under the data folder, not to
    the terminal the cockpit draws on; the operator sees them as health and events. A
    read-only session writes nothing, so it drops them."""
    handler: logging.Handler
    set_aside: str | None = None
    if path is None:
        handler = logging.NullHandler()
    else:
        set_aside = make_room_for_private_file(path)
        handler = PrivateLogHandler(
            path, maxBytes=COCKPIT_LOG_BYTES, backupCount=COCKPIT_LOG_KEEP, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    if set_aside:
        logging.getLogger(__name__).warning("cockpit log: %s", set_aside)


class PrivateLogHandler(RotatingFileHandler):
    """A rotating log that never follows a symlink and is born 0600."""

    def _open(self) -> TextIO:
        return open(
            self.baseFilename,
            self.mode,
            encoding=self.encoding,
            errors=self.errors,
            opener=private_opener,
        )


def run_app(args: argparse.Namespace) -> int:
    """`bigalpha-tui` with no subcommand: the cockpit over a core built from the options."""
    from bigalpha_tui import runtime
    from bigalpha_tui.headless import final_save_status
    from bigalpha_tui.terminal_driver import CockpitDriver

    if not (sys.stdin.isatty() and sys.__stderr__ is not None and sys.__stderr__.isatty()):
        print(
            "bigalpha-tui: the cockpit needs a terminal; use --no-ui to run headless",
            file=sys.stderr,
        )
        return 2
    duration = runtime.parse_duration(args.duration) if args.duration else None
    rt = runtime.build(args, read_only=args.read_only)
    from bigalpha_tui.screens.execution import live_ask_for

    live_ask = None if rt.core.read_only else live_ask_for(rt.config)
    log_away_from_the_screen(None if rt.core.read_only else rt.store.root / COCKPIT_LOG)
    watchdog = ExitWatchdog()
    app = CockpitApp(
        rt.core,
        duration_s=duration,
        watch_tty=True,
        serve_control=True,
        driver_class=CockpitDriver,
        exit_watchdog=watchdog,
        live_ask=live_ask,
    )

    def final_save(code: int) -> int:
        rt.core.checkpoint()
        if app.fatal_message:
            print(f"bigalpha-tui: {app.fatal_message}", file=sys.stderr)
            return code
        return final_save_status(rt.core) if code == 0 else code  # a failed save is no 0

    return run_guarded(app, watchdog, final_save)


def run_guarded(app: CockpitApp, watchdog: ExitWatchdog, final_save: Callable[[int], int]) -> int:
    """Run a cockpit to its end, then save (`final_save` takes and returns the exit code)
    with no signal able to cut the save short, and end the process within 2 s of the save
    even when the terminal stopped reading (the watchdog)."""
    from bigalpha_tui.terminal_driver import terminal_stopped_reading

    code = 1  # unless the app returns: a crash in the UI
    try:
        app.run()
        code = app.return_code or 0
    finally:
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        with watchdog.saving():
            code = final_save(code)
        watchdog.arm(code)
        if terminal_stopped_reading():
            # Python's own exit would wait on the stuck writer's lock on the terminal, then
            # abort: end here, with the right code
            watchdog.exit_now("the terminal stopped reading; its screen is left as it was")
    return code
