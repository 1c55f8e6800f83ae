"""Orders on the exchange, from the cockpit (docs/execution.md).

- `F` (shift+f) flattens: a first question says what flatten does, a second one
  (`SecondConfirm`: `F` again, not `y`) lists what will be closed: the book's positions with
  their size and notional, and on an exchange the account as last read (positions the book
  does not hold, open orders, resting stops) and the orders still waiting to be sent. Only
  then the same command as `ctl flatten --yes` goes to the core (or, attached, to the bot).
- `h` opens `ExecutionScreen`: why entries are halted, every unexplained difference in full,
  orders of unknown outcome, the outbox, and the account as last read. `a` there
  acknowledges the differences behind a confirmation (the same as `ctl ack-mismatch`).
- `LiveConfirmScreen`: before a live cockpit starts its core, the operator types `LIVE`;
  `esc` or another word ends the cockpit with exit status 2 and one line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.snapshot import AccountOrderView, ExecutionView, Snapshot
from bigalpha_tui.screens.confirm import ConfirmDialog, SecondConfirm
from bigalpha_tui.widgets import fmt

if TYPE_CHECKING:
    from bigalpha_tui.app import CockpitApp

LIVE_WORD = "LIVE"


def footer_shows(action: str, snapshot: Snapshot) -> bool:
    """Whether the footer shows the key now: flatten on an exchange, `h` while halted."""
    if action == "flatten":
        return snapshot.execution.on_exchange
    return snapshot.entries_halted_reason is not None


# -- flatten ----------------------------------------------------------------------------------


def ask_flatten(app: CockpitApp) -> None:
    """Two questions, then `flatten --yes` to the core (or the bot); a no at either leaves
    everything as it is."""

    def last(yes: bool | None) -> None:
        if yes:
            app.submit(Command(CommandKind.FLATTEN, on=True))

    def first(yes: bool | None) -> None:
        if not yes:
            return
        dialog = SecondConfirm(
            "Close all of this now?",
            "shift+F flattens; n or esc leaves everything as it is.",
            title="Flatten: last question",
            body=flatten_preview(app.snapshot_source()),
        )
        app.push_screen(dialog, last)

    question, detail = flatten_question(app.snapshot_source())
    app.push_screen(ConfirmDialog(question, detail, title="Flatten"), first)


def flatten_question(snapshot: Snapshot) -> tuple[str, str]:
    """The first question and what it explains."""
    n = len(snapshot.positions)
    ex = snapshot.execution
    if ex.on_exchange:
        detail = (
            f"Pauses new entries, closes {n} position(s) of the book with reduce-only market"
            f" orders on {ex.base_url or ex.mode}, then cancels every open order and stop on"
            " the account and closes whatever else it holds. Next: the list of what will be"
            " closed."
        )
    else:
        detail = (
            f"Paper: pauses new entries and closes {n} position(s) at the next bar's open."
            " Next: the list of what will be closed."
        )
    return "Flatten: close every position?", detail


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(overflow="fold")
    return grid


def _order_text(order: AccountOrderView) -> str:
    size = "all" if order.qty == 0.0 else fmt.qty(order.qty)
    at = f" @ {fmt.price(order.price)}" if order.price else ""
    whose = "" if order.ours else " (not ours)"
    return f"{order.kind} {order.side} {size}{at}  {order.client_id}{whose}"


def flatten_preview(snapshot: Snapshot) -> RenderableType:
    """What a flatten closes and cancels, as the cockpit knows it now."""
    parts: list[RenderableType] = []
    positions = _grid()
    total = 0.0
    for p in snapshot.positions:
        notional = abs(p.qty) * p.mark_price
        total += notional
        positions.add_row(
            p.symbol, f"{p.side.value} {fmt.qty(p.qty)}", f"≈ {fmt.usd(notional, signed=False)}"
        )
    title = f"Positions of the book: {len(snapshot.positions)}"
    if snapshot.positions:
        title += f", ≈ {fmt.usd(total, signed=False)} notional"
    parts.append(Text(title, style="bold"))
    if snapshot.positions:
        parts.append(positions)
    ex = snapshot.execution
    if not ex.on_exchange:
        parts.append(Text("Paper: no exchange; closed at the next bar's open.", style="dim"))
        return Group(*parts)
    book = {p.symbol for p in snapshot.positions}
    others = [p for p in ex.account_positions if p.symbol not in book]
    orders = ex.account_orders
    if ex.account_read_s is None:
        parts.append(Text("The account has not been read yet: flatten reads it first.", "dim"))
    else:
        when = fmt.utc_clock(ex.account_read_s, seconds=False)
        parts.append(Text(f"On the account at {when} UTC (flatten reads it again):", "bold"))
        grid = _grid()
        for ap in others:
            price = _price(snapshot, ap.symbol, ap.entry_price)
            grid.add_row(
                ap.symbol,
                f"{ap.qty:+g}",
                f"≈ {fmt.usd(abs(ap.qty) * price, signed=False)}  not in the book",
            )
        for order in orders:
            grid.add_row(order.symbol, "cancel", _order_text(order))
        if others or orders:
            parts.append(grid)
        else:
            parts.append(Text("  no other position, no open order or stop", "dim"))
    if ex.waiting:
        parts.append(Text(f"Waiting to be sent: {len(ex.waiting)}", "bold"))
        parts.append(Text("\n".join(f"  {w}" for w in ex.waiting)))
    return Group(*parts)


def _price(snapshot: Snapshot, symbol: str, fallback: float) -> float:
    view = snapshot.symbol(symbol)
    return view.price if view is not None and view.price else fallback


# -- the halt and the differences -------------------------------------------------------------


def execution_rows(snapshot: Snapshot, *, can_ack: bool = True) -> list[tuple[str, str]]:
    """Label and value, every line in full."""
    ex = snapshot.execution
    rows: list[tuple[str, str]] = []
    rows.append(("Orders", f"{ex.mode} ({ex.base_url})" if ex.on_exchange else "paper"))
    rows.append(("Entries", snapshot.entries_halted_reason or "open: nothing halts them"))
    for i, line in enumerate(ex.mismatches, start=1):
        rows.append((f"Difference {i}", line))
    if ex.mismatches:
        how = "a" if can_ack else "from a steering session, or `bigalpha-tui ctl ack-mismatch`"
        rows.append(
            (
                "What to do",
                "Look at the account on the exchange's website. Close or keep what differs"
                f" by hand, then acknowledge ({how}): entries open again; the same difference"
                " unchanged does not halt again, a new one does.",
            )
        )
    if ex.not_ready:
        rows.append(("Not ready", ex.not_ready))
    for line in ex.unknown:
        rows.append(("Unknown", line))
    for line in ex.waiting:
        rows.append(("Waiting", line))
    if not ex.on_exchange:
        return rows
    if ex.account_read_s is None:
        rows.append(("Account", "not read yet"))
        return rows
    when = fmt.utc_clock(ex.account_read_s, seconds=False)
    rows.append(("Account", f"as read at {when} UTC (the last reconciliation)"))
    book = {p.symbol: p for p in snapshot.positions}
    for ap in ex.account_positions:
        held = book.get(ap.symbol)
        mine = f"the book {held.side.value} {fmt.qty(held.qty)}" if held else "the book: none"
        rows.append((ap.symbol, f"{ap.qty:+g} @ {fmt.price(ap.entry_price)}  ({mine})"))
    for order in ex.account_orders:
        rows.append((order.symbol, _order_text(order)))
    if not ex.account_positions and not ex.account_orders:
        rows.append(("", "no position, no open order or stop"))
    return rows


def show_execution(app: CockpitApp) -> None:
    """`h`: the detail; its `a` asks before `ack-mismatch` goes to the core (or the bot)."""

    def acknowledge(lines: Sequence[str]) -> None:
        app.confirm(
            f"Acknowledge {len(lines)} difference(s) between the exchange and the book?",
            "New entries open again. The same difference found unchanged later does not halt"
            " again; a new one does.",
            Command(CommandKind.ACK_MISMATCH),
            title="Acknowledge",
        )

    can_ack = app.action_allowed("ack_mismatch") is True
    screen = ExecutionScreen(app.snapshot_source(), acknowledge, can_ack=can_ack)
    app.push_screen(screen, lambda _: app.refresh_view())


class ExecutionScreen(ModalScreen[None]):
    """`h`: the halt in full, with `a` to acknowledge the differences (not when watching)."""

    DEFAULT_CSS = """
    ExecutionScreen { align: center middle; background: $background 60%; }
    ExecutionScreen > #execution-body {
        width: 95%;
        max-width: 110;
        height: auto;
        max-height: 95%;
        border: round $error;
        border-title-color: $text-error;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    ExecutionScreen #execution-fields { height: auto; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "dismiss", "Back", id="execution-back"),
        Binding("a", "acknowledge", "Acknowledge", id="execution-ack"),
    ]

    def __init__(
        self, snapshot: Snapshot, acknowledge: Callable[[Sequence[str]], None], *, can_ack: bool
    ) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.acknowledge = acknowledge
        self.can_ack = can_ack
        self._shown: tuple[ExecutionView, str | None] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="execution-body"):
            yield Static(id="execution-fields")
        yield Footer()  # this dialog's keys, not those of the screen beneath

    def on_mount(self) -> None:
        self.show_snapshot(self.snapshot)

    def show_snapshot(self, snapshot: Snapshot) -> None:
        """Redrawn at the UI tick when the halt or the account changed (after `a`, too)."""
        key = (snapshot.execution, snapshot.entries_halted_reason)
        if key == self._shown:
            return
        self._shown = key
        self.snapshot = snapshot
        from bigalpha_tui.screens.events import fields_table

        body = self.query_one("#execution-body")
        halted = snapshot.entries_halted_reason is not None
        body.border_title = "Entries halted" if halted else "Orders and the exchange"
        acks = self.ack_possible()
        body.border_subtitle = "a: acknowledge · esc: back" if acks else "esc: back"
        rows = execution_rows(snapshot, can_ack=self.can_ack)
        self.query_one("#execution-fields", Static).update(fields_table(rows))
        self.refresh_bindings()

    def ack_possible(self) -> bool:
        return self.can_ack and bool(self.snapshot.execution.mismatches)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "acknowledge":
            return self.ack_possible()
        return True

    def action_acknowledge(self) -> None:
        if self.ack_possible():
            self.acknowledge(self.snapshot.execution.mismatches)


# -- live -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveAsk:
    """What the operator is shown before typing the word."""

    base_url: str
    symbols: tuple[str, ...]
    keys_from: str
    max_notional_usd: float
    daily_loss_limit_usd: float
    word: str = LIVE_WORD


NOT_CONFIRMED = (
    f"live trading not confirmed (esc, or a word other than {LIVE_WORD}): nothing was started"
)


def live_ask_for(config: Config) -> LiveAsk | None:
    """What a live cockpit asks before its core starts; None for paper and testnet."""
    from bigalpha_tui.core.exchange import base_url, load_keys
    from bigalpha_tui.core.execution import LIVE

    ex = config.execution
    if ex.mode != LIVE:
        return None
    return LiveAsk(
        base_url(ex),
        config.source.symbols,
        load_keys(ex).origin,
        ex.max_notional_usd,
        ex.daily_loss_limit_usd,
    )


def ask_live(app: CockpitApp, ask: LiveAsk, then: Callable[[], None]) -> None:
    """The typed word, then `then()` (the core starts); anything else ends the cockpit with
    exit status 2 and one line (`CockpitApp.fatal_message`)."""

    def answered(yes: bool | None) -> None:
        if yes:
            app.core.emit("execution", "", f"live: the operator typed {ask.word}; starting")
            then()
            return
        app.fatal_message = NOT_CONFIRMED
        app.exit(return_code=2)

    app.push_screen(LiveConfirmScreen(ask), answered)


class LiveConfirmScreen(ModalScreen[bool]):
    """Dismisses with True when the operator typed the word and pressed enter; False on
    another word or `esc`."""

    DEFAULT_CSS = """
    LiveConfirmScreen { align: center middle; background: $background 80%; }
    LiveConfirmScreen > #live-dialog {
        width: 95%;
        max-width: 76;
        height: auto;
        border: thick $error;
        border-title-color: $text-error;
        border-title-style: bold;
        background: $surface;
        padding: 1 2;
    }
    LiveConfirmScreen #live-text { height: auto; margin-bottom: 1; }
    LiveConfirmScreen Input { width: 30; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "refuse", "Cancel", id="live-cancel"),
    ]

    AUTO_FOCUS = "#live-word"

    def __init__(self, ask: LiveAsk) -> None:
        super().__init__()
        self.ask = ask

    def compose(self) -> ComposeResult:
        ask = self.ask
        text = Text()
        text.append("Real orders with real money.\n", style="bold")
        text.append(
            f"Orders go to {ask.base_url} for {', '.join(ask.symbols)} (API keys from"
            f" {ask.keys_from}). Each symbol's notional is capped at"
            f" {ask.max_notional_usd:g} USDT; entries halt after a daily loss of"
            f" {ask.daily_loss_limit_usd:g} USDT.\n\n"
        )
        text.append(f"Type {ask.word} and press enter to start. ")
        text.append("esc or anything else: nothing starts.", style="dim")
        with Vertical(id="live-dialog") as dialog:
            dialog.border_title = "Live trading"
            yield Static(text, id="live-text")
            yield Input(placeholder=ask.word, id="live-word")
        yield Footer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() == self.ask.word)

    def action_refuse(self) -> None:
        self.dismiss(False)
