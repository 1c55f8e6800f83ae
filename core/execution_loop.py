"""Route the trading loop's live orders to Binance USD-M futures (testnet; docs/execution.md).

Paper fills every order inside the bar. Here the trading loop only decides: an entry, or an
exit leg a bar triggered, becomes an `Intent` in a durable outbox (`execution_state.json`,
written atomically before an entry is sent). `drain` sends the outbox through the
`ExchangeBroker`, one intent at a time, and books what the exchange executed (its price, its
fee, its quantity) back into the trading loop. `Core.run` awaits the drain before every bar,
so a fill is in the book before the next bar is applied, as paper's is; the task `serve`
drains at once what arrives between bars (an operator's flatten) and reconciles the book with
the exchange every `execution.reconcile_every_min`.

Crash safety. Every order's client id derives from its position and leg, and every send is a
look-up first (exchange_broker.py). An intent found in the outbox at start may have been sent:
an exit is driven again (it finds its first order if there was one); an entry is only looked
up: adopted with its stop when the exchange has it, dropped when not (its signal is old
now). An entry the book decided but whose intent never reached the disk is looked up the same
way by the reconciliation at start. Nothing is ever sent twice under a new id.

New entries halt (`halt_reason`, shown by `Core.entries_halted_reason` in the snapshot and the
cockpit's status line) while: a position has no stop on the exchange and could not be closed
either (`unprotected`: the stop, else a reduce-only close, is tried again after
`retry_after_s`, or when the exchange's 418/429 hold-off ends if sooner; `serve` wakes for
it between bars; also in `status`); the exchange could not be prepared; an order's outcome
is unknown (looked up again after `retry_after_s`; an answer that came but could not be read
at once, then at the next drain); the account held a number that could not be read;
a reconciliation found a difference it cannot explain, until the operator acknowledges it
(`ctl ack-mismatch`); the live trades of the UTC day lost `execution.daily_loss_limit_usd`.
Exits never halt.

What a dropped entry's message says is what is known: the outbox records, on disk before
the send, that an entry is being sent (`Intent.sent_s`). Never sent: said so. Sent without an
answer and not found: looked up again `retry_after_s` after the send (also across a
restart), then dropped as most likely not taken, and watched (`doubtful`, as is a pending
entry whose outbox record was lost and that the exchange does not show): the drains look it
up by its client id every `retry_after_s` (before a bar, or from `serve`, which wakes for it
between bars) and always before a new entry on its symbol is sent; reconciliations look too.
Found filled, it is adopted at its real fill and its stop placed at once (a new entry on its
symbol is then not sent: one position per symbol); found having filled nothing, it is no
longer watched. It is watched until an entry on its symbol is booked (a late fill would then
show as a quantity that differs, under that entry's stop, which closes the whole position).

A position on the exchange that no order of ours explains is a difference that halts
entries, and is left alone: no stop of ours is placed on it (docs/execution.md says why).

Exits in exchange mode: tiers, T4, the operator's close and the stop leg are reduce-only market
orders sent when the bar triggers them (tiers therefore cross the spread, where paper assumes
a resting limit). A closing leg that fills only a part is booked for it and its rest is sent
at once under a new client id (`_exit`); the stop rests until nothing is left. A leg refused
because the position is gone (the stop on the exchange fired first) is booked at the
exchange's own closing fills. A tier smaller than the exchange's quantity step is skipped
(said once); T4 or the stop later closes everything left.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import anyio

from . import codec
from .bar import Bar
from .broker import Fill
from .clock import Clock
from .commands import Command, CommandKind
from .config import Config
from .engine import Core
from .exchange import ExchangeError, ExchangeGarbled, number_or_zero
from .exchange_broker import (
    ENTRY_LEG,
    ID_PREFIX,
    NO_STOP_LEG,
    ExchangeBroker,
    ExchangeFill,
    OrderRefused,
    OutcomeUnknown,
    PositionUnprotected,
    client_order_id,
)
from .exchange_reconcile import (
    LEFT_ALONE,
    Expected,
    Reconciliation,
    closed_while_down,
    reconcile,
)
from .execution import FLATTEN_LEG, AccountState, flatten
from .exits import ExitMode, bar_exits, open_trigger
from .orders import EntryOrder
from .positions import DUST_SHARE, ExitLeg, Position
from .snapshot import AccountOrderView, AccountPositionView, ExecutionView
from .trading import TradingLoop
from .types import ExitReason, Side

EXECUTION_STATE = "execution_state.json"
MIN_S = 60.0
DAY_S = 86_400.0
BPS = 1e4
#: Closing legs that take whatever is left of a position.
CLOSING = (ExitReason.T4, ExitReason.STOP, ExitReason.MANUAL)
#: `Intent.sent_s` of an entry that may have been sent at a time no record says.
UNKNOWN_SENT_S = 0.0

Emit = Callable[..., Any]


class IntentKind(StrEnum):
    ENTER = "enter"
    EXIT = "exit"
    FLATTEN = "flatten"  # after the book's positions: every other order and position


@dataclass(frozen=True, slots=True)
class Intent:
    """One order the trading loop (or the operator) decided, waiting to be sent."""

    kind: IntentKind
    position_id: str
    symbol: str
    side: Side
    qty: float
    leg: str  # the client order id's leg: E, T1..T4, STOP, MANUAL, FLAT
    reason: ExitReason | None = None  # an exit's reason in the book
    ref_price: float = 0.0  # the price the loop decided at (slippage is measured from it)
    final: bool = False  # closes the position: the resting stop is cancelled after it
    order: EntryOrder | None = None  # an entry's whole order (booked from it)
    #: perhaps sent already (found in the outbox at start, or its outcome was unknown): it
    #: is only looked up, never sent anew
    restored: bool = False
    #: an entry: when it was handed to the broker (written to disk before the send). None:
    #: never sent; 0.0: perhaps sent, at a time not known (an outbox from an older build)
    sent_s: float | None = None

    @property
    def key(self) -> str:
        return f"{self.position_id}/{self.leg}"

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "position_id": self.position_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": self.qty,
            "leg": self.leg,
            "reason": None if self.reason is None else self.reason.value,
            "ref_price": self.ref_price,
            "final": self.final,
            "order": None if self.order is None else self.order.to_record(),
            "sent_s": self.sent_s,
        }

    @classmethod
    def from_record(cls, record: Any) -> Intent:
        f = codec.field
        order = record.get("order") if isinstance(record, dict) else None
        reason = record.get("reason") if isinstance(record, dict) else None
        # no sent_s saved (an older build): it may have been sent, at a time not known
        sent = record.get("sent_s", UNKNOWN_SENT_S) if isinstance(record, dict) else None
        return cls(
            kind=codec.choice(IntentKind, f(record, "kind"), "kind"),
            position_id=codec.text(f(record, "position_id"), "position_id"),
            symbol=codec.text(f(record, "symbol"), "symbol"),
            side=codec.choice(Side, f(record, "side"), "side"),
            qty=codec.non_negative(f(record, "qty"), "qty"),
            leg=codec.text(f(record, "leg"), "leg"),
            reason=None if reason is None else codec.choice(ExitReason, reason, "reason"),
            ref_price=codec.non_negative(f(record, "ref_price"), "ref_price"),
            final=codec.flag(f(record, "final"), "final"),
            order=None if order is None else EntryOrder.from_record(order),
            restored=True,
            sent_s=None if sent is None else codec.non_negative(sent, "sent_s"),
        )


def day_start_s(now_s: float) -> float:
    return math.floor(now_s / DAY_S) * DAY_S


def daily_pnl_usd(trading: TradingLoop, now_s: float) -> float:
    """Live P&L since 00:00 UTC: trades closed today, plus the open positions (their legs
    taken, and the rest marked at the last bar's close)."""
    start = day_start_s(now_s)
    closed = math.fsum(t.pnl_usd for t in trading.book.closed_live if t.exit_s >= start)
    marks = trading.book.marks
    open_ = math.fsum(
        p.realised_usd + p.unrealised_usd(marks.get(p.symbol, p.entry_price))
        for p in trading.book.live.values()
    )
    return closed + open_


class ExecutionLoop:
    """The outbox, its sender, reconciliation and the halts of exchange execution."""

    def __init__(self, core: Core, broker: ExchangeBroker) -> None:
        assert core.trading is not None
        self.core = core
        self.trading: TradingLoop = core.trading
        self.broker = broker
        self.config: Config = core.config
        self.clock: Clock = core.clock
        self.store = core.store
        self.emit: Emit = core.emit
        self.outbox: list[Intent] = []
        self.mismatches: list[str] = []  # unexplained, not yet acknowledged
        self.acknowledged: set[str] = set()
        self.skipped: set[str] = set()  # legs too small to send (position/leg)
        self.prepare_error: str | None = None
        self.unknown: dict[str, str] = {}  # position id -> its order of unknown outcome
        #: positions whose order answered unreadably: the exchange took it, so it is looked
        #: up at the next drain, not `retry_after_s` later (its stop waits for its fill)
        self.look_soon: set[str] = set()
        #: position id -> why it has no stop on the exchange (entries halt meanwhile)
        self.unprotected: dict[str, str] = {}
        #: why the last reconciliation could not read the account (entries halt meanwhile)
        self.read_error: str | None = None
        #: entries dropped as not found although perhaps sent (id -> intent, dropped at, looked
        #: at once more): the first reconciliation `retry_after_s` after the drop looks them
        #: up once more, later ones whenever the exchange holds a position on their symbol
        #: that the book does not; watched until an entry on their symbol is booked
        self.doubtful: dict[str, tuple[Intent, float, bool]] = {}
        self.prepared = False
        self.started = False
        self.next_reconcile_s: float | None = None
        self.reconciliations = 0
        self._lock = anyio.Lock()
        self._wake = anyio.Event()
        self._loss_said_day: float | None = None
        self._retry_at_s: float | None = None  # after a failure: not before this
        #: when the watched dropped entries (`doubtful`) are looked up next (None: at once)
        self._watch_at_s: float | None = None
        self.account: AccountState | None = None  # the exchange as last read
        self.account_read_s: float | None = None
        self.account_gone: set[str] = set()  # client ids cancelled since that read
        self.restore()
        self.trading.router = self
        core.execution = self
        core.command_handlers[CommandKind.FLATTEN] = self._flatten_command
        core.command_handlers[CommandKind.ACK_MISMATCH] = self._ack_command

    # -- what the trading loop hands over (inside a bar: nothing is sent here) ------------

    def enter(self, order: EntryOrder) -> None:
        self._add(_entry_intent(order))

    def exits(self, position: Position, bar: Bar) -> None:
        """The exit legs `bar` triggers for a live position, as paper's `_exit_position`
        finds them; while one of its legs is on its way, the position waits (its stop rests
        on the exchange)."""
        if self.busy(position.id):
            return
        loop = self.trading
        mode = loop.mode_at(position, bar.open_ms / 1000.0)
        if mode is ExitMode.LADDER and position.force_hold_until_s is not None:
            position = loop.release_to_ladder(position)
        at_open = open_trigger(position, bar, self.config.exits)
        triggers = [at_open] if at_open else bar_exits(position, bar, mode, self.config.exits)
        left = position.open_qty
        for trigger in triggers:
            leg = trigger.reason.value
            closing = trigger.reason in CLOSING
            qty = left if closing else min(trigger.qty, left)
            if not closing and self._too_small(position, leg, qty):
                continue
            left -= qty
            final = closing or left <= DUST_SHARE * position.original_qty
            self._add(
                Intent(
                    IntentKind.EXIT,
                    position.id,
                    position.symbol,
                    position.side,
                    qty,
                    leg,
                    reason=trigger.reason,
                    ref_price=trigger.price,
                    final=final,
                )
            )
            if final:
                break

    def busy(self, position_id: str) -> bool:
        return any(i.position_id == position_id for i in self.outbox)

    def _too_small(self, position: Position, leg: str, qty: float) -> bool:
        key = f"{position.id}/{leg}"
        if key in self.skipped:
            return True
        rules = self.broker.rules.get(position.symbol)
        if rules is None or rules.qty(qty) >= rules.min_qty:
            return False
        self.skipped.add(key)
        self.emit(
            "order",
            position.symbol,
            f"{leg} skipped: {qty:.6g} is below the exchange's step ({rules.min_qty});"
            " the next closing leg takes it",
            id=position.id,
            leg=leg,
        )
        self._save()
        return True

    def _add(self, intent: Intent) -> None:
        if any(i.key == intent.key for i in self.outbox):
            return
        self.outbox.append(intent)
        self._save()
        self._wake.set()

    # -- halts ----------------------------------------------------------------------------

    def halt_reason(self) -> str | None:
        if self.unprotected:
            return (
                "POSITION WITHOUT AN EXCHANGE STOP: "
                + "; ".join(self.unprotected.values())
                + ": new entries halted; the stop, else a reduce-only close, is tried again"
                f" every {self.config.execution.retry_after_s:g} s (or when the exchange's"
                " hold-off ends, if sooner), between bars too"
            )
        if self.prepare_error is not None:
            return f"exchange not ready ({self.prepare_error}): new entries halted"
        if self.unknown:
            return f"{'; '.join(self.unknown.values())}: new entries halted until it is known"
        if self.read_error is not None:
            return (
                f"the exchange's account could not be read ({self.read_error}): new entries"
                " halted until a reconciliation reads it"
            )
        if self.mismatches:
            return (
                "exchange and book differ: "
                + "; ".join(self.mismatches)
                + ": new entries halted until `ctl ack-mismatch`"
            )
        return self._loss_halt()

    def _loss_halt(self) -> str | None:
        limit = self.config.execution.daily_loss_limit_usd
        now = self.clock.now()
        pnl = daily_pnl_usd(self.trading, now)
        if pnl > -limit:
            return None
        reason = (
            f"daily loss {pnl:+.2f} USDT reached execution.daily_loss_limit_usd ({limit:g}):"
            " new entries halted until 00:00 UTC"
        )
        day = day_start_s(now)
        if self._loss_said_day != day:
            self._loss_said_day = day
            self.emit("execution", "", reason, daily_pnl_usd=pnl, limit_usd=limit)
        return reason

    def view(self) -> ExecutionView:
        """What the cockpit shows of it: halts, the outbox, the account as last read."""
        positions: tuple[AccountPositionView, ...] = ()
        orders: list[AccountOrderView] = []
        if self.account is not None:
            positions = tuple(
                AccountPositionView(symbol, qty, price)
                for symbol, (qty, price) in sorted(self.account.positions.items())
            )
            for row in self.account.open_orders:
                orders.append(_order_view(row, "clientOrderId", "type", "origQty", "price"))
            for row in self.account.stops:
                orders.append(_order_view(row, "clientAlgoId", "orderType", "quantity", ""))
        return ExecutionView(
            mode=self.config.execution.mode,
            base_url=self.broker.client.base_url,
            mismatches=tuple(self.mismatches),
            unknown=tuple(self.unknown.values()),
            not_ready=self.prepare_error,
            waiting=tuple(
                f"{i.symbol} {i.leg} {i.side.value} {i.qty:.6g}"
                if i.kind is not IntentKind.FLATTEN
                else "flatten: cancel every order, close every position"
                for i in self.outbox
            ),
            account_read_s=self.account_read_s,
            account_positions=positions,
            account_orders=tuple(o for o in orders if o.client_id not in self.account_gone),
        )

    # -- the run ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the broker, drive what the outbox held, reconcile (entries decided but
        not in the outbox are looked up there)."""
        async with self._lock:
            if not await self._prepare():
                return
            await self._drain_locked()
            if not self.outbox:
                await self._reconcile_locked(at_start=True)
            self.started = True

    async def before_bar(self) -> None:
        await self.drain()
        now = self.clock.now()
        if self.next_reconcile_s is not None and now >= self.next_reconcile_s:
            await self.reconcile_now()

    async def serve(self) -> None:
        """Drain what arrives between bars; reconcile when due (checked on wall time too,
        so a quiet market still gets its reconciliation)."""
        every_s = self.config.execution.reconcile_every_min * MIN_S
        while True:
            with anyio.move_on_after(self._serve_wait_s(every_s)):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self.drain()
            due = self.next_reconcile_s
            if due is None or self.clock.now() >= due:
                await self.reconcile_now()

    def _serve_wait_s(self, every_s: float) -> float:
        """How long `serve` sleeps: until the next reconciliation, or, while a position has
        no stop on the exchange, until its retry is due, or, while a dropped entry is
        watched, until its next look-up (not only at the next bar)."""
        now = self.clock.now()
        wake: list[float] = []
        if self.unprotected:
            wake.append(now if self._retry_at_s is None else self._retry_at_s)
        if self._watched():
            wake.append(now if self._watch_at_s is None else self._watch_at_s)
        if not wake:
            return every_s
        floor_s = self.config.execution.min_request_interval_s  # never a busy loop
        return min(every_s, max(floor_s, min(wake) - now))

    async def drain(self) -> None:
        watch = self._watch_due()
        if not self.outbox and not self.unprotected and self.prepared and not watch:
            return
        if not self._retry_due() and (
            not self.prepared
            or (
                not watch
                and all(
                    i.position_id in self.unknown and i.position_id not in self.look_soon
                    for i in self.outbox
                )
            )
        ):
            return  # the bars go on; the exchange is tried again later
        async with self._lock:
            if await self._prepare():
                await self._drain_locked()

    async def _prepare(self) -> bool:
        if self.prepared:
            return True
        try:
            await self.broker.prepare()
        except ExchangeError as exc:
            if self.prepare_error is None:
                self.emit("execution", "", f"the exchange is not ready: {exc}", ok=False)
            self.prepare_error = str(exc)
            self._retry_at_s = self.clock.now() + self.config.execution.retry_after_s
            return False
        if self.prepare_error is not None:
            self.emit("execution", "", "the exchange answers again", ok=True)
        self.prepare_error = None
        self.prepared = True
        self.emit(
            "execution",
            "",
            f"orders go to {self.broker.client.base_url}"
            f" (clock offset {self.broker.client.offset_ms:+.0f} ms)",
            ok=True,
        )
        return True

    def _retry_due(self) -> bool:
        return self._retry_at_s is None or self.clock.now() >= self._retry_at_s

    async def _drain_locked(self) -> None:
        """Every intent in order, per position: an order of unknown outcome holds back the
        later intents of its own position only, until `retry_after_s` has passed."""
        due = self._retry_due()
        waiting = set() if due else set(self.unknown) - self.look_soon
        if due:
            await self._protect_all()
        await self._look_watched()  # before a new entry on its symbol is sent
        index = 0
        while index < len(self.outbox):
            intent = self.outbox[index]
            if intent.position_id in waiting:
                index += 1
                continue
            if intent.kind is IntentKind.ENTER and not intent.restored:
                # an entry is sent only once its intent, and that it is being sent, is on disk
                sending = dataclasses.replace(intent, sent_s=self.clock.now())
                self._replace(intent, sending)
                intent = sending
                if not self._save():
                    return
            try:
                try:
                    await self._execute(intent)
                except ExchangeGarbled as exc:
                    if intent.restored and intent.position_id in self.look_soon:
                        raise
                    # the exchange answered, so it took the order; its numbers could not be
                    # read: looked up once at once (an entry has no stop until it is booked)
                    self.emit(
                        "order",
                        intent.symbol,
                        f"{intent.symbol} {intent.leg}: answer unreadable ({exc}); looked up"
                        " at once, never sent again",
                        id=intent.position_id,
                        ok=False,
                    )
                    looked = dataclasses.replace(intent, restored=True)
                    self._replace(intent, looked)
                    intent = looked
                    self._save()
                    await self._execute(intent)
            except ExchangeError as exc:  # unknown outcome or no answer: tried again later
                message = f"{intent.symbol} {intent.leg}: outcome unknown ({exc})"
                if self.unknown.get(intent.position_id) != message:
                    self.emit("order", intent.symbol, message, id=intent.position_id, ok=False)
                self.unknown[intent.position_id] = message
                self._retry_at_s = self.clock.now() + self.config.execution.retry_after_s
                if isinstance(exc, ExchangeGarbled):
                    self.look_soon.add(intent.position_id)  # again at the next drain
                else:  # unanswered: the look-up window matters (a look too soon can miss it)
                    self.look_soon.discard(intent.position_id)
                waiting.add(intent.position_id)
                # perhaps sent: from now on it is looked up first, never sent anew
                self._replace(intent, dataclasses.replace(intent, restored=True))
                self._save()
                index += 1
                continue
            self.unknown.pop(intent.position_id, None)
            self.look_soon.discard(intent.position_id)
            self._replace(intent, None)
            self._save()
        if not self.unknown and not self.unprotected and self.prepared:
            self._retry_at_s = None

    def _replace(self, intent: Intent, by: Intent | None) -> None:
        for i, queued in enumerate(self.outbox):
            if queued is intent:
                if by is None:
                    del self.outbox[i]
                else:
                    self.outbox[i] = by
                return

    async def _execute(self, intent: Intent) -> None:
        if intent.kind is IntentKind.ENTER:
            await self._enter(intent)
        elif intent.kind is IntentKind.EXIT:
            await self._exit(intent)
        else:
            done = await flatten(self.broker)
            for line in done.lines:
                self.emit("flatten", "", line)
            # read the account again soon: the cockpit then shows it empty, not as before
            self.next_reconcile_s = self.clock.now()
            if done.left:  # kept in the outbox: the flatten is driven again later
                rest = ", ".join(f"{symbol} {qty:+g}" for symbol, qty in sorted(done.left.items()))
                raise OutcomeUnknown(
                    f"flatten: {rest} still open, under their stops; tried again in"
                    f" {self.config.execution.retry_after_s:g} s"
                )

    # -- entries ----------------------------------------------------------------------------

    async def _enter(self, intent: Intent) -> None:
        order = intent.order
        assert order is not None
        if self._live(order.id, order.symbol) is not None:
            return  # booked before the restart; only the outbox did not say so yet
        pending = self.trading.book.pending.get(order.symbol)
        if not intent.restored and (pending is None or pending.id != order.id):
            return  # cancelled before it was sent (a pause, an operator close)
        if not intent.restored and order.symbol in self.trading.book.live:
            # one position per symbol: one-way mode would add this one to it
            self.trading.drop_pending(order.id, f"{order.symbol} holds a position already")
            return
        if intent.restored:
            # sent before the restart or unanswered, or not: look, never send an old signal
            cid = client_order_id(order.id, ENTRY_LEG)
            if await self.broker.lookup(order.symbol, cid) is None:
                self._drop_entry(order, self._not_found(intent, cid))
                if intent.sent_s is not None:  # perhaps sent: watched, looked up later
                    self._watch(intent)
                return
        try:
            outcome = await self.broker.open_position(
                order.id, order.symbol, order.side, order.qty, order.signal_price
            )
        except OrderRefused as exc:
            self.trading.drop_pending(order.id, f"refused: {exc}")
            return
        except PositionUnprotected as exc:
            self._book_entry(order, exc.fill)
            self._mark_unprotected(order.id, order.symbol, exc.detail)
            return
        if outcome.fill is None:
            self.trading.drop_pending(order.id, "nothing filled on the exchange")
            return
        self._book_entry(order, outcome.fill)
        if outcome.stop_id is not None:
            self.emit(
                "stop",
                order.symbol,
                f"stop resting on the exchange ({outcome.stop_id})",
                id=order.id,
            )
        elif outcome.emergency_exit is not None:
            self._book_exit_fill(
                order.id, ExitReason.STOP, outcome.emergency_exit, outcome.fill.price
            )
            self.emit(
                "order",
                order.symbol,
                f"no stop could be placed on the exchange ({self.broker.stop_error}):"
                " closed at once with a reduce-only order",
                id=order.id,
                ok=False,
            )
            if self._live(order.id, order.symbol) is not None:  # the close filled a part
                self._mark_unprotected(
                    order.id,
                    order.symbol,
                    f"no stop could be placed ({self.broker.stop_error}) and the reduce-only"
                    " close filled only a part",
                )

    def _not_found(self, intent: Intent, cid: str) -> str:
        """What is known of an entry the exchange has no order for: never sent (dropped),
        sent too recently to tell (OutcomeUnknown: looked up again later), or sent long
        enough ago that the exchange would show it by now (dropped, and said so)."""
        if intent.sent_s is None:
            return f"never sent (the bot stopped before sending it); no order {cid} on the exchange"
        wait_s = self.config.execution.retry_after_s
        age_s = self.clock.now() - intent.sent_s
        if intent.sent_s != UNKNOWN_SENT_S and age_s < wait_s:
            raise OutcomeUnknown(
                f"{intent.symbol}: order {cid} was sent {age_s:.0f} s ago without an answer and"
                f" the exchange shows no order yet; looked up again in {wait_s - age_s:.0f} s,"
                " never sent twice"
            )
        when = (
            "before the restart (when is not on record)"
            if intent.sent_s == UNKNOWN_SENT_S
            else f"{age_s:.0f} s ago"
        )
        return (
            f"sent {when} without an answer, and the exchange still shows no order {cid}:"
            f" dropped as most likely not taken; {self._appears_later(intent.symbol)}"
        )

    def _drop_entry(self, order: EntryOrder, why: str) -> None:
        """Drop a pending entry; said even when the book cancelled it meanwhile."""
        if order.symbol in self.trading.book.pending:
            self.trading.drop_pending(order.id, why)
        else:
            self.emit(
                "cancel",
                order.symbol,
                f"entry {order.side} (cancelled in the book meanwhile): {why}",
                id=order.id,
            )

    # -- entries dropped as not taken, still watched ----------------------------------------

    def _appears_later(self, symbol: str) -> str:
        """Said of an entry dropped while the exchange might still show it later."""
        return (
            f"not sent again; looked up again every {self.config.execution.retry_after_s:g} s"
            f" (and before a new entry on {symbol} is sent), and adopted with its stop if the"
            " exchange shows it"
        )

    def _watch(self, intent: Intent) -> None:
        """Watch an entry dropped as not taken although perhaps sent; it was just looked
        up, so the next look is `retry_after_s` later."""
        now = self.clock.now()
        self.doubtful[intent.position_id] = (intent, now, False)
        look_at = now + self.config.execution.retry_after_s
        if self._watch_at_s is None or look_at < self._watch_at_s:
            self._watch_at_s = look_at
        self._save()

    def _watched(self) -> dict[str, EntryOrder]:
        """The dropped entries that can still be adopted: not on a symbol the book holds, nor
        on one whose entry of unknown outcome may be on the exchange (it is looked up itself)."""
        if not self.doubtful:
            return {}  # the usual case, at every drain
        held = set(self.trading.book.live)
        held |= {i.symbol for i in self.outbox if i.kind is IntentKind.ENTER and i.restored}
        return {
            pid: intent.order
            for pid, (intent, _, _) in self.doubtful.items()
            if intent.order is not None and intent.symbol not in held
        }

    def _watch_due(self) -> bool:
        """The watched entries are looked up `retry_after_s` after their last look (at once
        after a restart), and always before a new entry on their symbol is sent."""
        watched = self._watched()
        if not watched:
            return False
        if self._watch_at_s is None or self.clock.now() >= self._watch_at_s:
            return True
        symbols = {order.symbol for order in watched.values()}
        return any(
            i.kind is IntentKind.ENTER and not i.restored and i.symbol in symbols
            for i in self.outbox
        )

    async def _look_watched(self) -> None:
        """Look each watched entry up by its client id (paced by the rate limiter, one
        request each): one the exchange filled after all is adopted with its stop; one it
        shows as finished with nothing filled is no longer watched."""
        if not self._watch_due():
            return
        self._watch_at_s = self.clock.now() + self.config.execution.retry_after_s
        for pid, order in self._watched().items():
            if pid not in self.doubtful or order.symbol in self.trading.book.live:
                continue  # adopted meanwhile, or its symbol is the book's now
            cid = client_order_id(pid, ENTRY_LEG)
            try:
                found = await self.broker.lookup(order.symbol, cid)
                if found is None:
                    self._looked(pid)
                    continue
                found = await self.broker.settle(order.symbol, cid, found)
                fill = await self.broker.fill_of(order.symbol, cid, found)
            except ExchangeError:
                continue  # a ban, no answer, an unreadable one: looked up again later
            if fill.qty > 0.0:
                await self._adopt_dropped(order, fill)
                continue
            del self.doubtful[pid]
            self._save()
            self.emit(
                "order",
                order.symbol,
                f"an entry dropped as not taken is on the exchange after all ({cid},"
                f" {fill.status}) and filled nothing: no longer watched",
                id=pid,
            )

    def _looked(self, position_id: str) -> None:
        """Looked at once more since its drop: the reconciliation's own look is not needed."""
        intent, dropped_s, looked = self.doubtful[position_id]
        if not looked:
            self.doubtful[position_id] = (intent, dropped_s, True)
            self._save()

    async def _adopt_dropped(self, order: EntryOrder, fill: ExchangeFill) -> None:
        """Book an entry dropped as not taken that the exchange filled after all, and place
        its stop at once (else close it reduce-only, else list it as without a stop)."""
        position = self._book_entry(order, fill)
        self._explained(order.symbol)
        self.emit(
            "order",
            order.symbol,
            "an entry dropped as not taken is on the exchange after all: adopted at its fill"
            f" ({fill.qty:.6g} @ {fill.price:.6g})",
            id=order.id,
            ok=False,
        )
        try:
            await self._protect(position)
        except ExchangeError as exc:
            self._mark_unprotected(position.id, position.symbol, f"not protected yet ({exc})")

    # -- positions without their stop on the exchange ---------------------------------------

    def _mark_unprotected(self, position_id: str, symbol: str, detail: str) -> None:
        line = f"{symbol}: {detail}"
        if self.unprotected.get(position_id) != line:
            self.emit(
                "stop",
                symbol,
                f"POSITION WITHOUT AN EXCHANGE STOP: {line}; new entries halted, tried again"
                f" in {self.config.execution.retry_after_s:g} s",
                id=position_id,
                ok=False,
            )
        self.unprotected[position_id] = line
        now = self.clock.now()
        self._retry_at_s = now + self.config.execution.retry_after_s
        held_until = self.broker.client.limiter.paused_until  # a 418/429 hold-off
        if now < held_until < self._retry_at_s:
            self._retry_at_s = held_until  # the first moment a request can go again
        self._save()

    def _live_by_id(self, position_id: str) -> Position | None:
        return next((p for p in self.trading.book.live.values() if p.id == position_id), None)

    async def _protect_all(self) -> None:
        for position_id in list(self.unprotected):
            position = self._live_by_id(position_id)
            if position is None:  # closed meanwhile (an exit, a flatten, an adoption)
                self.unprotected.pop(position_id, None)
                self._save()
                continue
            try:
                await self._protect(position)
            except ExchangeError as exc:
                self._mark_unprotected(position.id, position.symbol, f"not protected yet ({exc})")

    async def _protect(self, position: Position, why: str | None = None) -> None:
        """Place the missing stop (unless `why` says it just failed); if it cannot be
        placed, close the position reduce-only; if neither, it stays listed."""
        if why is None:
            stop = await self.broker.ensure_stop(
                position.id, position.symbol, position.side, position.entry_price
            )
            if stop is not None:
                self.unprotected.pop(position.id, None)
                self._save()
                self.emit(
                    "stop",
                    position.symbol,
                    f"stop resting on the exchange ({stop})",
                    id=position.id,
                )
                return
            why = f"the stop could not be placed ({self.broker.stop_error})"
        qty = self._to_nearest_step(position.symbol, position.open_qty)
        # its own client id per booked leg: a retry after a lost answer finds its order, and
        # a close after a partial one is a new order, not the old fill booked twice
        leg = NO_STOP_LEG + (str(len(position.exits)) if position.exits else "")
        try:
            fill = await self.broker.close_leg(
                position.id, leg, position.symbol, position.side, qty
            )
        except OrderRefused as exc:
            self.unprotected.pop(position.id, None)
            self._save()
            await self._adopt_or_halt(position, f"its reduce-only close was refused ({exc})")
            return
        except ExchangeError as exc:
            detail = f"{why} and the reduce-only close could not be sent ({exc})"
            self._mark_unprotected(position.id, position.symbol, detail)
            return
        if fill.qty <= 0.0:
            self.unprotected.pop(position.id, None)
            self._save()
            await self._adopt_or_halt(position, "its reduce-only close filled nothing")
            return
        mark = self.trading.book.marks.get(position.symbol, position.entry_price)
        self._book_exit_fill(position.id, ExitReason.STOP, fill, mark)
        self.emit(
            "order",
            position.symbol,
            f"{why}: closed with a reduce-only order",
            id=position.id,
            ok=False,
        )
        if self._live_by_id(position.id) is not None:
            self._mark_unprotected(
                position.id, position.symbol, f"{why} and the reduce-only close filled a part"
            )

    def _book_entry(self, order: EntryOrder, fill: ExchangeFill) -> Position:
        slippage = order.side.sign * (fill.price / order.signal_price - 1.0) * BPS
        position = self.trading.book_entry(
            order, Fill(fill.price, slippage, fill.fee_usd), fill.qty, self.clock.now()
        )
        # one position per symbol: an entry dropped earlier on it can no longer be adopted
        # as its own (a late fill of it would show as a quantity that differs)
        watched = {p: d for p, d in self.doubtful.items() if d[0].symbol != order.symbol}
        if len(watched) != len(self.doubtful):
            self.doubtful = watched
            self._save()
        return position

    # -- exits ------------------------------------------------------------------------------

    def _live(self, position_id: str, symbol: str) -> Position | None:
        position = self.trading.book.live.get(symbol)
        return position if position is not None and position.id == position_id else None

    async def _exit(self, intent: Intent) -> None:
        """Send the leg and book what it filled. A closing leg that filled only a part (the
        rest expired or was cancelled) is booked for that part, and the rest is sent at once
        as a new order with its own client id (`<leg><legs booked>`: T44, STOP2, ...), so a
        look-up never finds the part already booked; the stop rests until nothing is left.
        Still open after `send_attempts` such orders: tried again after `retry_after_s`."""
        assert intent.reason is not None
        position = self._live(intent.position_id, intent.symbol)
        if position is None:
            return  # closed meanwhile (adopted by a reconciliation, a flatten)
        if not intent.final and intent.reason in position.tiers_taken:
            return  # booked before the restart; only the outbox did not say so yet
        for _ in range(self.config.execution.send_attempts):
            leg = intent.leg
            if intent.final and any(x.reason is intent.reason for x in position.exits):
                leg = f"{intent.leg}{len(position.exits)}"  # a part of it is booked already
            qty = position.open_qty if intent.final else min(intent.qty, position.open_qty)
            if intent.final:
                qty = self._to_nearest_step(intent.symbol, qty)
            try:
                fill = await self.broker.close_leg(
                    position.id, leg, position.symbol, position.side, qty, final=intent.final
                )
            except OrderRefused as exc:
                await self._adopt_or_halt(position, f"{leg} refused ({exc})")
                return
            if fill.qty <= 0.0:
                await self._adopt_or_halt(position, f"{leg} filled nothing")
                return
            self._book_exit_fill(position.id, intent.reason, fill, intent.ref_price, intent.final)
            position = self._live(intent.position_id, intent.symbol)
            if not intent.final or position is None:
                return
            self.emit(
                "order",
                intent.symbol,
                f"{leg} filled {fill.qty:.6g} of {qty:.6g}; the rest ({position.open_qty:.6g})"
                " is sent as a new order; the stop rests meanwhile",
                id=intent.position_id,
                ok=False,
            )
        raise OutcomeUnknown(
            f"{intent.symbol} {intent.leg}: {position.open_qty:.6g} still open after"
            f" {self.config.execution.send_attempts} closes that filled only a part; tried again"
            f" in {self.config.execution.retry_after_s:g} s, the stop rests meanwhile"
        )

    def _to_nearest_step(self, symbol: str, qty: float) -> float:
        """A closing quantity rounded to the nearest step (the broker rounds down, which
        would leave a step's worth open for float dust)."""
        rules = self.broker.rules.get(symbol)
        if rules is None:
            return qty
        return float(rules.step * (Decimal(repr(qty)) / rules.step).to_integral_value())

    def _book_exit_fill(
        self,
        position_id: str,
        reason: ExitReason,
        fill: ExchangeFill,
        ref_price: float,
        final: bool = True,
    ) -> None:
        position = next((p for p in self.trading.book.live.values() if p.id == position_id), None)
        if position is None:
            return
        qty = min(fill.qty, position.open_qty)
        rules = self.broker.rules.get(position.symbol)
        half_step = float(rules.step) / 2 if rules is not None else 0.0
        if final and abs(position.open_qty - fill.qty) <= half_step:
            qty = position.open_qty  # closed on the exchange: closed in the book
        slippage = -position.side.sign * (fill.price / ref_price - 1.0) * BPS if ref_price else 0.0
        leg = ExitLeg(reason, qty, fill.price, self.clock.now(), fill.fee_usd, slippage)
        self.trading.book_exit(position, leg)
        if position_id in self.unprotected and self._live_by_id(position_id) is None:
            del self.unprotected[position_id]  # closed: nothing left to protect
            self._save()

    async def _adopt_or_halt(self, position: Position, why: str) -> None:
        """An exit that did nothing: when the position is gone on the exchange and its
        closing fills explain it (the stop fired), book those; else a mismatch."""
        expected = self._expected(position)
        fill = await closed_while_down(self.broker, expected, position.open_qty)
        if fill is not None:
            self._book_exit_fill(position.id, ExitReason.STOP, fill, fill.price)
            return
        self._mismatch([f"{position.symbol}: {why}, and no fills on the exchange explain it"])

    def _expected(self, position: Position) -> Expected:
        since_ms = int(position.entry_s * 1000 + self.broker.client.offset_ms)
        return Expected(
            position.id,
            position.symbol,
            position.side,
            position.open_qty,
            since_ms,
            closed_qty=position.closed_qty,
        )

    # -- reconciliation ----------------------------------------------------------------------

    async def reconcile_now(self) -> Reconciliation | None:
        async with self._lock:
            if not await self._prepare() or self.outbox:
                return None
            return await self._reconcile_locked(at_start=not self.started)

    async def _reconcile_locked(self, *, at_start: bool) -> Reconciliation | None:
        book = self.trading.book
        expected = [self._expected(p) for p in book.live.values()]
        expected += [
            Expected(o.id, o.symbol, o.side, 0.0, int(o.signal_close_s * 1000), pending=True)
            for o in book.pending.values()
        ]
        # a dropped entry that was perhaps sent: looked up once more `retry_after_s` after
        # the drop, and again whenever the exchange holds a position on its symbol that the
        # book does not; not while its symbol is the book's (one position per symbol)
        taken = set(book.live) | set(book.pending)
        look_s = self.clock.now() - self.config.execution.retry_after_s
        doubtful = {
            pid: i.order
            for pid, (i, _, _) in self.doubtful.items()
            if i.order is not None and i.symbol not in taken
        }
        due = {
            pid
            for pid, (_, dropped_s, looked) in self.doubtful.items()
            if pid in doubtful and not looked and dropped_s <= look_s
        }
        sent = [
            Expected(o.id, o.symbol, o.side, 0.0, int(o.signal_close_s * 1000), pending=True)
            for o in doubtful.values()
        ]
        expected += [e for e in sent if e.position_id in due]
        watched = [e for e in sent if e.position_id not in due]
        self.next_reconcile_s = self.clock.now() + self.config.execution.reconcile_every_min * MIN_S
        try:
            report = await reconcile(self.broker, expected, watched)
        except ExchangeGarbled as exc:
            # an account read wrong is worse than none: entries wait for a clean read
            self.emit("reconcile", "", f"reconciliation failed: {exc}", ok=False)
            self.read_error = str(exc)
            self.next_reconcile_s = self.clock.now() + self.config.execution.retry_after_s
            self.core.changed()
            return None
        except ExchangeError as exc:
            self.emit("reconcile", "", f"reconciliation failed: {exc}", ok=False)
            return None
        self.read_error = None
        self.reconciliations += 1
        self.started = True
        self.account = report.account
        self.account_read_s = self.clock.now()
        self.account_gone = set(report.cancelled)
        self.core.changed()
        pending = {o.id: o for o in book.pending.values()}
        for pid, fill in report.adopted_entries.items():
            if pid in doubtful:
                self._book_entry(doubtful[pid], fill)
                self._explained(doubtful[pid].symbol)
                self.emit(
                    "reconcile",
                    doubtful[pid].symbol,
                    "an entry dropped as not taken is on the exchange after all: adopted",
                    id=pid,
                    ok=False,
                )
                continue
            order = pending.pop(pid)
            self._book_entry(order, fill)
            self.emit("reconcile", order.symbol, "entry sent before the restart: adopted", id=pid)
        looked = {pid for pid in due if pid in self.doubtful}
        if looked:  # looked at once more; still watched for a position on its symbol
            for pid in looked:
                intent, dropped_s, _ = self.doubtful[pid]
                self.doubtful[pid] = (intent, dropped_s, True)
            self._save()
        for pid, order in pending.items():
            seen = report.dropped_entries.get(pid, "no order on the exchange")
            unseen = pid in report.unseen_entries  # perhaps sent: it may still show up
            self.trading.drop_pending(
                pid,
                "decided, but no record of its sending is left (never sent, or"
                f" {EXECUTION_STATE} was lost); {seen}: dropped; "
                + (self._appears_later(order.symbol) if unseen else "not sent again"),
            )
            if unseen:
                self._watch(_entry_intent(order, sent_s=UNKNOWN_SENT_S))
        for pid, fill in report.adopted_exits.items():
            self._book_exit_fill(pid, ExitReason.STOP, fill, fill.price)
            self.emit("reconcile", "", "exit made on the exchange while down: adopted", id=pid)
        for stop in report.stops_placed:
            self.emit("reconcile", "", f"missing stop placed ({stop})")
        for pid, why in report.unprotected.items():
            position = self._live_by_id(pid)
            if position is None:
                continue
            try:
                await self._protect(position, why)
            except ExchangeError as exc:  # e.g. the fills that would explain it unreadable
                self._mark_unprotected(pid, position.symbol, f"{why}; not closed ({exc})")
        for cid in report.cancelled:
            self.emit("reconcile", "", f"orphaned order cancelled ({cid})")
        self._mismatch(report.mismatches)
        if at_start or report.adopted_entries or report.adopted_exits or report.mismatches:
            foreign = ", ".join(report.foreign)
            foreign = f"; not ours, left alone: {foreign}" if foreign else ""
            self.emit(
                "reconcile",
                "",
                f"reconciled: {len(book.live)} open, {len(report.mismatches)} difference(s)"
                + foreign,
                mismatches=list(report.mismatches),
            )
        return report

    def _explained(self, symbol: str) -> None:
        """A position reported as one the book does not hold is now the book's: that
        difference no longer halts entries."""
        unheld = f"{symbol}: exchange holds "
        kept = [m for m in self.mismatches if not (m.startswith(unheld) and LEFT_ALONE in m)]
        if len(kept) != len(self.mismatches):
            self.mismatches = kept
            self._save()

    def _mismatch(self, found: list[str]) -> None:
        new = [m for m in found if m not in self.acknowledged and m not in self.mismatches]
        if not new:
            return
        self.mismatches.extend(new)
        self._save()
        for line in new:
            self.emit("mismatch", "", f"{line}: new entries halted until `ctl ack-mismatch`")

    # -- operator commands -----------------------------------------------------------------

    def _ack_command(self, command: Command) -> str:
        if not self.mismatches:
            return "no difference between the exchange and the book to acknowledge"
        acknowledged = list(self.mismatches)
        self.acknowledged.update(acknowledged)
        self.mismatches.clear()
        self._save()
        return f"acknowledged: {'; '.join(acknowledged)}; new entries may open again"

    def _flatten_command(self, command: Command) -> str:
        """Pause entries; close every book position (reduce-only), then cancel every order
        and stop and close whatever else the account holds. Sent at once, between bars."""
        self.core.paused = True
        self.core.save_engine_state()
        self.trading.cancel_pending("flatten")
        for position in self.trading.book.live.values():
            self._add(
                Intent(
                    IntentKind.EXIT,
                    position.id,
                    position.symbol,
                    position.side,
                    position.open_qty,
                    FLATTEN_LEG,
                    reason=ExitReason.MANUAL,
                    ref_price=self.trading.book.marks.get(position.symbol, position.entry_price),
                    final=True,
                )
            )
        minute = int(self.clock.now() // MIN_S)
        self._add(Intent(IntentKind.FLATTEN, f"FLAT-{minute}", "*", Side.LONG, 0.0, FLATTEN_LEG))
        return (
            f"flatten: entries paused; closing {len(self.trading.book.live)} position(s) and"
            " cancelling every order on the exchange (results follow in the log)"
        )

    # -- persistence -------------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        return {
            "outbox": [i.to_record() for i in self.outbox],
            "mismatches": list(self.mismatches),
            "acknowledged": sorted(self.acknowledged),
            "skipped": sorted(self.skipped),
            "unprotected": dict(sorted(self.unprotected.items())),
            "doubtful": [
                {**i.to_record(), "dropped_s": dropped_s, "looked": looked}
                for i, dropped_s, looked in self.doubtful.values()
            ],
        }

    def _save(self) -> bool:
        self.core.changed()  # the outbox or the differences: the cockpit shows them
        return self.store.write_json(EXECUTION_STATE, self.to_doc())

    def restore(self) -> None:
        """The outbox and the differences as saved; a file set aside is said (the
        reconciliation at start still looks up every entry the book decided)."""
        known = len(self.store.warnings)
        self.store.load_or_quarantine(EXECUTION_STATE, self._restore)
        for warning in self.store.warnings[known:]:
            self.emit("store_warning", "", f"{warning.file}: {warning.message}")

    def _restore(self, doc: dict[str, Any]) -> None:
        if not isinstance(doc.get("outbox"), list):
            raise KeyError("outbox")
        bad: list[str] = []
        self.outbox = codec.Reader(bad).items(doc, "outbox", Intent.from_record)
        if isinstance(doc.get("doubtful"), list):
            doubtful = codec.Reader(bad).items(doc, "doubtful", _doubtful_from_record)
            self.doubtful = {d[0].position_id: d for d in doubtful}
        if bad:
            self.store.set_aside_records(EXECUTION_STATE, bad)
        self.mismatches = [str(m) for m in doc.get("mismatches", [])]
        self.acknowledged = {str(m) for m in doc.get("acknowledged", [])}
        self.skipped = {str(m) for m in doc.get("skipped", [])}
        unprotected = doc.get("unprotected", {})
        if isinstance(unprotected, dict):
            self.unprotected = {str(k): str(v) for k, v in unprotected.items()}


def _entry_intent(order: EntryOrder, sent_s: float | None = None) -> Intent:
    """The intent of entry `order`; with `sent_s`, one perhaps sent (only looked up)."""
    return Intent(
        IntentKind.ENTER,
        order.id,
        order.symbol,
        order.side,
        order.qty,
        ENTRY_LEG,
        ref_price=order.signal_price,
        order=order,
        restored=sent_s is not None,
        sent_s=sent_s,
    )


def _doubtful_from_record(record: Any) -> tuple[Intent, float, bool]:
    dropped_s = codec.non_negative(codec.field(record, "dropped_s"), "dropped_s")
    # an older build kept only entries not yet looked at once more
    looked = record.get("looked", False) if isinstance(record, dict) else False
    return Intent.from_record(record), dropped_s, codec.flag(looked, "looked")


def _order_view(
    row: dict[str, Any], id_key: str, kind_key: str, qty_key: str, price_key: str
) -> AccountOrderView:
    cid = str(row.get(id_key, ""))
    price = number_or_zero(row.get(price_key)) if price_key else 0.0
    trigger = number_or_zero(row.get("stopPrice", row.get("triggerPrice")))
    return AccountOrderView(
        symbol=str(row.get("symbol", "")),
        client_id=cid,
        kind=str(row.get(kind_key, "")),
        side=str(row.get("side", "")),
        qty=number_or_zero(row.get(qty_key)),
        price=price or trigger,
        ours=cid.startswith(ID_PREFIX),
    )


def attach_execution(core: Core, broker: ExchangeBroker) -> ExecutionLoop:
    """Route `core`'s live orders through `broker` (testnet/live)."""
    return ExecutionLoop(core, broker)
