"""The trading loop: strategy -> gates -> paper broker + shadow ledger -> exits, every bar.

For each closed bar of a symbol, in this order:

1. an entry order placed at the previous bar's close fills at this bar's open (live, with
   slippage and fees) and its ideal shadow twin is booked at the signal bar's close (no
   slippage, same fees); an order whose next bar is missing (a gap in the data) is cancelled;
2. exits run for every position of the symbol (live, shadow twins, blocked twins), at every
   hour, paused or not (see `exits.py` for the rules and the intrabar stop-first reading);
3. Alpha-OFI reads the bar; a signal on a symbol without a live position or pending order
   goes through the gates. Passed: an entry order for the next bar's open. Blocked: the block
   is logged with its reason and a blocked twin follows it under the same exit rules.

Every blocked decision is counted, logged and recorded; a blocked twin follows it unless one
is already open for the same symbol, side and reason (the same opportunity, still followed).

Persistence: the whole book (`book.py`) is one atomic `positions_futures.json` written at the
end of every bar that changed it, with the last bar applied per symbol; a bar at or before
that is skipped after a restart. What the snapshot shows is built in `trading_view.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from json.encoder import encode_basestring_ascii
from typing import Any, Protocol

from . import book as book_mod
from . import codec, numfmt
from .bar import Bar
from .book import Book
from .broker import Fill, PaperBroker
from .clock import Clock
from .config import Config
from .errors import CommandError
from .exits import (
    ExitMode,
    ExitTrigger,
    bar_exits,
    exit_mode,
    hold_band,
    open_trigger,
    quiet_band,
    quiet_bar,
)
from .flow import FlowState
from .frozen import slot_maker
from .gates import Decision, GateContext, GatePipeline
from .hurst import HurstReading
from .ledger import RecentIds
from .orders import EntryControls, EntryOrder
from .positions import ExitLeg, Position
from .sizing import SizeBreakdown, conviction, size_breakdown, stake_usd
from .snapshot import GuardBlockView
from .store import GUARD_BLOCKS, LIVE_OUTCOMES, POSITIONS, SHADOW_OUTCOMES, Store
from .strategy import AlphaOfi, Signal
from .trades import ClosedTrade, Ledger
from .types import (
    BlockReason,
    Conviction,
    ExitReason,
    Regime,
    Side,
    SymbolState,
    WhaleDirection,
)

MIN_S = 60.0
HOUR_S = 3600.0

#: A str as the json encoder writes it (ASCII, quoted and escaped): `block_line`'s texts.
_json_str: Callable[[str], str] = encode_basestring_ascii

Emit = Callable[..., Any]

#: `GuardBlockView(...)` by position, at half the cost (one per blocked signal)
_guard_block_view = slot_maker(GuardBlockView)


class OrderRouter(Protocol):
    """Testnet/live: where the loop's live orders go instead of the paper broker
    (`execution_loop.py`). The loop decides; the router sends and books what was executed."""

    def enter(self, order: EntryOrder) -> None: ...

    def exits(self, position: Position, bar: Bar) -> None: ...


class SymbolTermsView(Protocol):
    """What the trading loop reads from a symbol's learning-loop status."""

    @property
    def state(self) -> SymbolState: ...

    @property
    def slippage_buffer_bps(self) -> float: ...


class SymbolTerms(Protocol):
    """Where the per-symbol probation state and slippage buffer come from (the learning
    loop; `FixedTerms` where there is none)."""

    def status(self, symbol: str) -> SymbolTermsView: ...


@dataclass(frozen=True, slots=True)
class _ActiveStatus:
    symbol: str
    state: SymbolState
    slippage_buffer_bps: float


class FixedTerms:
    """Every symbol ACTIVE with the configured initial slippage buffer."""

    def __init__(self, initial_slippage_buffer_bps: float) -> None:
        self.initial_slippage_buffer_bps = initial_slippage_buffer_bps

    def status(self, symbol: str) -> SymbolTermsView:
        return _ActiveStatus(symbol, SymbolState.ACTIVE, self.initial_slippage_buffer_bps)


class TradingLoop:
    """Strategy, gates, paper broker, shadow ledger and exits for every symbol."""

    #: Skip the exit rules for a bar that reaches neither the stop nor any tier that could
    #: fill (most bars of most positions): the same outcome, a fraction of the cost.
    quiet_exits = True
    #: Write each blocked signal's record (`guard_blocks.jsonl`) and event. Off for a run
    #: whose folder is thrown away at the end (a replay without --data-dir, a sweep task):
    #: nobody reads those, and they were most of a replay's time (a block on every signal
    #: bar of a closed golden hour). The gates still decide every signal, the counts, the
    #: guard log and the blocked twins ("would have made") stay as they are.
    record_blocks = True

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        emit: Emit,
        *,
        terms: SymbolTerms | None = None,
        read_only: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.emit = emit
        self.read_only = read_only
        self.terms = terms or FixedTerms(config.gates.initial_slippage_buffer_bps)
        self.gates = GatePipeline(config.gates)
        self.broker = PaperBroker(config.broker, config.gates.fee_bps)
        self.book = Book()
        self.trade_observers: list[Callable[[ClosedTrade], None]] = []
        self._dirty = False
        self._bands: dict[str, tuple[Position, tuple[float, float]]] = {}
        self._quiet: dict[str, tuple[Position, float, float]] = {}  # `_quiet_for`'s bands
        self._sizes: dict[tuple[str, str, bool], SizeBreakdown] = {}  # `_size`'s answers
        self._sizes_for: object = None  # the sizing config they were made for
        self._least: dict[tuple[str, bool], tuple[object, float]] = {}  # `_least_stake`'s
        # `_open_blocked_twin`'s ids per (symbol, side, reason), for the twins dict named
        self._twin_index: dict[tuple[str, str, str], str] = {}
        self._twin_index_of: object = None
        self.halted_signals = 0  # signals passed over while the store could not write
        self._outcomes = RecentIds(store, SHADOW_OUTCOMES)
        self._blocks = RecentIds(store, GUARD_BLOCKS)
        # the journal's full history; written, never read by any decision
        self._live_log = RecentIds(store, LIVE_OUTCOMES)
        self.router: OrderRouter | None = None  # testnet/live; None: paper fills
        #: makes a symbol's strategy at its first bar (a batch replay's knows the bars ahead)
        self.new_strategy: Callable[[str], AlphaOfi] = self.streaming_strategy
        self.restore()

    @property
    def _logs(self) -> tuple[RecentIds, ...]:
        return (self._outcomes, self._live_log, self._blocks)

    # what the rest of the core and the tests read of the book
    @property
    def live(self) -> Mapping[str, Position]:
        return self.book.live

    @property
    def pending(self) -> Mapping[str, EntryOrder]:
        return self.book.pending

    @property
    def twins(self) -> Mapping[str, Position]:
        return self.book.twins

    @property
    def closed_live(self) -> list[ClosedTrade]:
        return self.book.closed_live

    @property
    def last_open_ms(self) -> Mapping[str, int]:
        return self.book.last_open_ms

    # -- the step --------------------------------------------------------------------

    def applied(self, bar: Bar) -> bool:
        """True when this bar (or a later one of its symbol) was already applied."""
        return bar.open_ms <= self.book.last_open_ms.get(bar.symbol, -1)

    def on_bar(
        self, bar: Bar, flow: FlowState, hurst: HurstReading, controls: EntryControls
    ) -> None:
        if self.applied(bar):
            return
        self._fill_pending(bar, controls)
        self._run_exits(bar)
        symbol, book = bar.symbol, self.book
        # one position per symbol: a signal on a symbol holding a position or an entry order
        # would be dropped unread (`_on_signal`'s first test; nothing counts or logs it), so
        # the strategy only moves its windows and makes none
        wanted = symbol not in book.live and symbol not in book.pending
        signal = self._strategy(symbol).update(bar, flow, hurst, wanted)
        self.signal_and_marks(symbol, signal, bar.open_ms, hurst.regime, bar.close, controls)

    def signal_and_marks(
        self,
        symbol: str,
        signal: Signal | None,
        open_ms: int,
        regime: Regime,
        close: float,
        controls: EntryControls,
    ) -> None:
        """`on_bar` after the strategy: the signal through the gates, the symbol's last
        values (its bar's open, regime and close), the book saved when due. A batch replay
        calls it alone for a signal bar it knows has no entry order to fill and nothing for
        the exits (`quiet_band`), with the signal made from its columns
        (`BatchOfi.signal_at`)."""
        if signal is not None:
            self._on_signal(signal, controls)
        self.note_marks(symbol, open_ms, regime, close)
        # A durable store gets the book at the end of every bar that changed it (kill -9
        # loses nothing); a throwaway one (replay's) only when it is read: `flush`.
        changed = self._dirty and self.store.durable
        waiting = self._outcomes.backlog or self._live_log.backlog or self._blocks.backlog
        if changed or not self.store.healthy or waiting:
            self.save()  # while the disk refuses, every bar retries: the first success heals

    def note_marks(self, symbol: str, open_ms: int, regime: Regime, close: float) -> None:
        """The symbol's last values: its last bar's open, regime and close."""
        book = self.book
        book.last_open_ms[symbol] = open_ms
        book.last_regime[symbol] = regime
        book.marks[symbol] = close

    @property
    def backlogged(self) -> bool:
        """Log records the disk refused wait to be written (every bar retries)."""
        return bool(self._outcomes.backlog or self._live_log.backlog or self._blocks.backlog)

    def flush(self) -> None:
        """Save the book if it changed since the last save (before someone reads it)."""
        if self._dirty:
            self.save()

    def _strategy(self, symbol: str) -> AlphaOfi:
        strategy = self.book.strategies.get(symbol)
        if strategy is None:
            strategy = self.new_strategy(symbol)
            self.book.strategies[symbol] = strategy
        return strategy

    def streaming_strategy(self, symbol: str) -> AlphaOfi:
        return AlphaOfi(symbol, self.config.strategy)

    # -- entries ---------------------------------------------------------------------

    def _on_signal(self, signal: Signal, controls: EntryControls) -> None:
        symbol = signal.symbol
        if symbol in self.book.live or symbol in self.book.pending:
            return  # one position per symbol
        if self.stale(signal.time_s, self.clock.now()):
            return  # a catch-up bar: the moment to act on it has passed
        if controls.halted_reason is not None:
            self.halted_signals += 1
            return  # nothing new may be opened that the book could not record
        decision = self.decide(signal, controls)
        qty = stake_usd(decision.size_multiplier, self.config.sizing) / signal.price
        if not qty > 0.0:
            return
        if decision.allowed:
            self._place_order(decision, qty)
        else:
            self._block(decision, qty)

    def decide(self, signal: Signal, controls: EntryControls) -> Decision:
        symbol, book = signal.symbol, self.book
        status = self.terms.status(symbol)
        level = conviction(
            signal.side, signal.whale_direction, signal.retail_ofi, signal.cross_buy_ratio
        )
        size = self._size(level, signal.regime, status.state is SymbolState.PROBATION)
        early = self.gates.decide_early(signal, controls.paused, size)
        if early is not None:
            return early  # paused, or outside the golden hour
        ctx = GateContext(
            signal,
            controls.paused,
            len(book.live) + len(book.pending),
            status.slippage_buffer_bps,
            book.cooldown_until_s.get(symbol),
        )
        return self.gates.decide(ctx, size, controls.guards_enabled)

    def _size(self, level: Conviction, regime: Regime, on_probation: bool) -> SizeBreakdown:
        """`size_breakdown`, made once per (conviction, regime, probation) and sizing: a
        frozen value, the same for every signal bar that shares them."""
        sizing = self.config.sizing
        if self._sizes_for is not sizing:
            self._sizes, self._sizes_for = {}, sizing
        key = (level._value_, regime._value_, on_probation)
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = size_breakdown(level, regime, on_probation, sizing)
        return size

    def _place_order(self, decision: Decision, qty: float) -> None:
        signal = decision.signal
        self.book.pending[signal.symbol] = EntryOrder(
            id=f"L-{signal.id}",
            strategy=signal.strategy,
            symbol=signal.symbol,
            side=signal.side,
            qty=qty,
            signal_open_ms=signal.bar_open_ms,
            signal_close_s=signal.time_s,
            signal_price=signal.price,
            conviction=decision.size.conviction,
            entry_regime=signal.regime,
            size_multiplier=decision.size_multiplier,
            golden_hour_entry=decision.golden_hour_open,
        )
        self._dirty = True
        if self.router is not None:
            self.router.enter(self.book.pending[signal.symbol])

    def _fill_pending(self, bar: Bar, controls: EntryControls) -> None:
        if self.router is not None:
            return  # the router books the exchange's fill (or cancels the order)
        order = self.book.pending.pop(bar.symbol, None)
        if order is None:
            return
        self._dirty = True
        if controls.halted_reason is not None:
            self.emit(
                "cancel",
                bar.symbol,
                f"entry {order.side} cancelled: {controls.halted_reason}",
                id=order.id,
            )
            return
        if bar.open_ms != order.fill_open_ms:
            self.emit(
                "cancel",
                bar.symbol,
                f"entry {order.side} cancelled: no bar at the signal's close (gap in the data)",
                id=order.id,
            )
            return
        fill = self.broker.market(order.side.sign, order.qty, bar.open, bar)
        live = self._open_position(order, Ledger.LIVE, order.id, bar.open_ms / 1000.0, fill)
        self.book.live[bar.symbol] = live
        ideal = self.broker.ideal(order.qty, order.signal_price)
        twin = self._open_position(
            order, Ledger.SHADOW, f"S-{order.id}", order.signal_close_s, ideal
        )
        self.book.twins[twin.id] = replace(twin, twin_of=live.id)
        self._announce_entry(live, order)

    def _open_position(
        self, order: EntryOrder, ledger: Ledger, position_id: str, entry_s: float, fill: Fill
    ) -> Position:
        return Position(
            id=position_id,
            ledger=ledger,
            strategy=order.strategy,
            symbol=order.symbol,
            side=order.side,
            original_qty=order.qty,
            entry_price=fill.price,
            entry_s=entry_s,
            entry_fee_usd=fill.fee_usd,
            conviction=order.conviction,
            entry_regime=order.entry_regime,
            size_multiplier=order.size_multiplier,
            golden_hour_entry=order.golden_hour_entry,
            force_hold_until_s=self._force_hold_until(order.entry_regime, entry_s),
            entry_slippage_bps=fill.slippage_bps,
        )

    def _force_hold_until(self, regime: Regime, entry_s: float) -> float | None:
        if regime is not Regime.TRUE_TREND:
            return None
        return entry_s + self.config.exits.force_hold_min * MIN_S

    def _announce_entry(self, live: Position, order: EntryOrder) -> None:
        hold = ""
        if live.force_hold_until_s is not None:
            hold = f" force-hold {(live.force_hold_until_s - live.entry_s) / MIN_S:g} min"
        self.emit(
            "entry",
            live.symbol,
            f"{live.side} {numfmt.qty(live.original_qty)} @ {numfmt.price(live.entry_price)}"
            f" ({live.conviction.value} {live.size_multiplier:g}x,"
            f" {live.entry_regime.label}, slippage {live.entry_slippage_bps:.1f} bps){hold}",
            id=live.id,
            side=live.side.value,
            qty=live.original_qty,
            price=live.entry_price,
            conviction=live.conviction.value,
            size_multiplier=live.size_multiplier,
            regime=live.entry_regime.value,
            slippage_bps=live.entry_slippage_bps,
            signal_price=order.signal_price,
            force_hold_until_s=live.force_hold_until_s,
        )

    # -- blocks ----------------------------------------------------------------------

    def _block(self, decision: Decision, qty: float) -> None:
        """Every blocked decision is counted, logged and recorded; a blocked twin follows it
        unless one is already open for the same symbol, side and reason (the same
        opportunity, still being followed: that keeps the twins bounded)."""
        signal = decision.signal
        reason = decision.blocked_by
        assert reason is not None
        symbol, side, book = signal.symbol, signal.side, self.book
        twin = self._open_blocked_twin(symbol, side, reason)
        new_twin = twin is None
        if twin is None:
            twin = self._blocked_twin(decision, qty, reason)
            book.twins[twin.id] = twin  # the only one open for the key: the first next time
        detail = decision.detail
        self.note_block(signal.time_s, symbol, side, reason, detail)
        if not self.record_blocks:
            return
        self._blocks.append_once(*block_entry(decision, twin, new_twin))
        # `_value_`: an enum's value without the `value` property's cost (a block per signal
        # bar of a closed golden hour)
        reason_value, side_value = reason._value_, side._value_
        self.emit(
            "block",
            symbol,
            f"{side_value} blocked by {reason_value}: {detail}",
            reason=reason_value,
            side=side_value,
            detail=detail,
            edge_bps=signal.expected_edge_bps,
            ofi=signal.ofi,
            conviction=decision.size.conviction._value_,
            twin=twin.id,
            new_twin=new_twin,
        )

    def note_block(
        self, time_s: float, symbol: str, side: Side, reason: BlockReason, detail: str
    ) -> None:
        """A block counted and put on the guard log (newest first)."""
        book = self.book
        book.guard.note_block(reason)
        book.guard_log.appendleft(_guard_block_view(time_s, symbol, side, reason, detail))
        self._dirty = True

    def quiet_block(
        self,
        symbol: str,
        side: Side,
        time_s: float,
        regime: Regime,
        price: float,
        controls: EntryControls,
    ) -> tuple[BlockReason, str] | None:
        """The block `_on_signal` makes of a fresh signal of `symbol` (its side, close time,
        regime and price), known without its `Signal`: (reason, detail) for `note_block`,
        which is then the block's whole effect. None (nothing done) when that is not
        known so: the caller makes the signal and takes `signal_and_marks`'s way.

        Known: the pause or a closed golden hour blocks it (the first two gates: most
        signal bars of a day, at night) on a flat symbol, with the blocked twin of the same
        symbol, side and reason already open (`_block` follows that one), no block record
        (`record_blocks` off), a throwaway store with nothing to write (no save is due at
        the bar), entries not halted, and a size that trades at every conviction in
        `regime` (`_on_signal`'s quantity test). A batch replay asks for its signal bars
        on a flat symbol, after `stale`."""
        book = self.book
        if (
            symbol in book.live
            or symbol in book.pending
            or self.record_blocks
            or controls.halted_reason is not None
            or self.store.durable
            or not self.store.healthy
            or self.backlogged
        ):
            return None
        early = self.gates.early_block(time_s, controls.paused)
        if early is None:
            return None
        on_probation = self.terms.status(symbol).state is SymbolState.PROBATION
        if not self._least_stake(regime, on_probation) / price > 0.0:
            return None  # some conviction would not trade: the signal decides
        if self._open_blocked_twin(symbol, side, early[0]) is None:
            return None  # a new twin follows this block: made from the signal
        return early

    def stale(self, time_s: float, now_s: float) -> bool:
        """A signal closed at `time_s` is too old to act on at `now_s` (a catch-up bar)."""
        return now_s - time_s > self.config.strategy.max_signal_age_s

    def _least_stake(self, regime: Regime, on_probation: bool) -> float:
        """The smallest stake any conviction gets in `regime` (`stake_usd` of `_size`)."""
        sizing = self.config.sizing
        key = (regime._value_, on_probation)
        known = self._least.get(key)
        if known is not None and known[0] is sizing:
            return known[1]
        least = min(
            stake_usd(self._size(level, regime, on_probation).multiplier, sizing)
            for level in Conviction
        )
        self._least[key] = (sizing, least)
        return least

    def _open_blocked_twin(self, symbol: str, side: Side, reason: BlockReason) -> Position | None:
        """The first open blocked twin of `symbol`, `side` and `reason` in the book's order.

        Its id is kept per (symbol, side, reason) for the next block (most signal bars of a
        closed golden hour find the same twin): still in the book and still matching, it is
        the first one, as a twin is never moved ahead of another in the dict and a matching
        one is only added when none is open. A stale id, or another `twins` dict (a book
        loaded from disk), and the twins are read again."""
        twins = self.book.twins
        index = self._twin_index
        if self._twin_index_of is not twins:
            index.clear()
            self._twin_index_of = twins
        key = (symbol, side._value_, reason._value_)
        known = index.get(key)
        if known is not None:
            twin = twins.get(known)
            if (
                twin is not None
                and twin.block_reason is reason
                and twin.symbol == symbol
                and twin.side is side
            ):
                return twin
            del index[key]
        for twin in twins.values():
            if twin.block_reason is reason and twin.symbol == symbol and twin.side is side:
                index[key] = twin.id
                return twin
        return None

    def _blocked_twin(self, decision: Decision, qty: float, reason: BlockReason) -> Position:
        signal = decision.signal
        return Position(
            id=f"B-{signal.id}",
            ledger=Ledger.BLOCKED,
            strategy=signal.strategy,
            symbol=signal.symbol,
            side=signal.side,
            original_qty=qty,
            entry_price=signal.price,
            entry_s=signal.time_s,
            entry_fee_usd=self.broker.ideal(qty, signal.price).fee_usd,
            conviction=decision.size.conviction,
            entry_regime=signal.regime,
            size_multiplier=decision.size_multiplier,
            golden_hour_entry=decision.golden_hour_open,
            force_hold_until_s=self._force_hold_until(signal.regime, signal.time_s),
            block_reason=reason,
        )

    # -- exits -----------------------------------------------------------------------

    def _run_exits(self, bar: Bar) -> None:
        symbol, low, high = bar.symbol, bar.low, bar.high
        live = self.book.live.get(symbol)
        if live is not None:
            if self.router is None:
                if not self._quiet_for(live, low, high):
                    self._exit_position(live, bar)
            else:
                self.router.exits(live, bar)  # the twins below stay on paper
        for twin in [t for t in self.book.twins.values() if t.symbol == symbol]:
            if not self._quiet_for(twin, low, high):
                self._exit_position(twin, bar)

    def _quiet_for(self, position: Position, low: float, high: float) -> bool:
        """`_exit_position`'s first test, for most position-bars of a replay: a position on
        the ladder for good, no close asked, and a bar inside its quiet band. The band is
        kept per position object as (lo, hi), `quiet_bar` then reads `low > lo and high <
        hi` for either side; (inf, -inf) for a position the rules must see every bar."""
        cached = self._quiet.get(position.id)
        if cached is None or cached[0] is not position:
            cached = self._quiet_entry(position)
        return low > cached[1] and high < cached[2]

    def _quiet_entry(self, position: Position) -> tuple[Position, float, float]:
        lo, hi = math.inf, -math.inf
        if (
            self.quiet_exits
            and (position.force_hold_until_s is None or position.released_to_ladder)
            and not position.close_requested
        ):
            stop, nearest = self._band(position)
            lo, hi = (stop, nearest) if position.side is Side.LONG else (nearest, stop)
        cached = self._quiet[position.id] = (position, lo, hi)
        return cached

    def quiet_band(self, symbol: str) -> tuple[float, float, float]:
        """(lo, hi, until_s) such that a bar of `symbol` opening before `until_s` with low >
        lo and high < hi changes nothing in its exits: every position and twin of the symbol
        keeps its mode and the bar stays inside its quiet band (`exits.quiet_band`: no exit
        in any mode). A position in force-hold can change mode only when its hold is over
        and the regime its next bar reads is not TRUE TREND (`exit_mode`): that bar's open
        bounds `until_s`; a regime change is a bar the batch run applies whole, and looks
        again after. (inf, -inf, -inf) when the symbol's next bar must be seen whatever it
        is (an entry order waiting, a position asked to close, quiet exits off, an
        exchange's router); (-inf, inf, inf) with nothing open. A batch replay passes over
        the bars inside the band."""
        book = self.book
        inf = math.inf
        if symbol in book.pending or self.router is not None or not self.quiet_exits:
            return inf, -inf, -inf
        lo, hi, until_s = -inf, inf, inf
        live = book.live.get(symbol)
        positions = [t for t in book.twins.values() if t.symbol == symbol]
        if live is not None:
            positions.append(live)
        trend = book.last_regime.get(symbol, Regime.WARMING) is Regime.TRUE_TREND
        for position in positions:
            if position.close_requested:
                return inf, -inf, -inf
            hold = position.force_hold_until_s
            if hold is not None and not position.released_to_ladder:
                # in a force-hold mode until its bar at `until_s` (or a regime change):
                # only the stop and T4 can fill
                if not trend:
                    until_s = min(until_s, hold)
                stop, nearest = hold_band(position, self.config.exits)
            else:
                stop, nearest = self._band(position)
            if position.side is Side.LONG:
                lo, hi = max(lo, stop), min(hi, nearest)
            else:
                lo, hi = max(lo, nearest), min(hi, stop)
        return lo, hi, until_s

    def mode_at(self, position: Position, at_s: float) -> ExitMode:
        regime = self.book.last_regime.get(position.symbol, Regime.WARMING)
        return exit_mode(position, at_s, regime)

    def _exit_position(self, position: Position, bar: Bar) -> None:
        if (
            self.quiet_exits
            and (position.force_hold_until_s is None or position.released_to_ladder)
            and not position.close_requested
            and quiet_bar(self._band(position), position.side, bar)
        ):
            return  # the ladder for good (no release to make) and a quiet bar: nothing
        mode = self.mode_at(position, bar.open_ms / 1000.0)
        if mode is ExitMode.LADDER and position.force_hold_until_s is not None:
            position = self._release_to_ladder(position)
        quiet = self.quiet_exits and not position.close_requested
        if quiet and quiet_bar(self._band(position), position.side, bar):
            self._store_position(position)
            return
        at_open = open_trigger(position, bar, self.config.exits)
        triggers = [at_open] if at_open else bar_exits(position, bar, mode, self.config.exits)
        for trigger in triggers:
            position = position.with_exit(self._exit_leg(position, trigger, bar))
            self._dirty = True
        self._store_position(position)
        if triggers and position.ledger is Ledger.LIVE:
            self._announce_exits(position, len(triggers))
        if position.is_closed:
            self._close(position)

    def _band(self, position: Position) -> tuple[float, float]:
        cached = self._bands.get(position.id)
        if cached is not None and cached[0] is position:
            return cached[1]
        band = quiet_band(position, self.config.exits)
        self._bands[position.id] = (position, band)
        return band

    def _release_to_ladder(self, position: Position) -> Position:
        if position.released_to_ladder:
            return position
        self._dirty = True
        if position.ledger is Ledger.LIVE:
            self.emit(
                "ladder",
                position.symbol,
                "force-hold over and the regime is no longer TRUE TREND: standard ladder",
                id=position.id,
            )
        return replace(position, released_to_ladder=True)

    def _exit_leg(self, position: Position, trigger: ExitTrigger, bar: Bar) -> ExitLeg:
        if position.ledger is not Ledger.LIVE:
            fill = self.broker.ideal(trigger.qty, trigger.price)
        elif trigger.market:
            fill = self.broker.market(-position.side.sign, trigger.qty, trigger.price, bar)
        else:
            fill = self.broker.limit(trigger.qty, trigger.price)
        # an exit at the open happened at the open; one inside the bar is known at its close
        time_s = bar.open_ms / 1000.0 if trigger.at_open else bar.close_s
        return ExitLeg(
            trigger.reason, trigger.qty, fill.price, time_s, fill.fee_usd, fill.slippage_bps
        )

    def _store_position(self, position: Position) -> None:
        if position.ledger is Ledger.LIVE:
            self.book.live[position.symbol] = position
        else:
            self.book.twins[position.id] = position

    def _announce_exits(self, position: Position, legs: int) -> None:
        for leg in position.exits[-legs:]:
            left = position.open_qty
            tail = "closed" if position.is_closed else f"{numfmt.qty(left)} left"
            self.emit(
                "exit",
                position.symbol,
                f"{leg.reason.value} {position.side} {numfmt.qty(leg.qty)}"
                f" @ {numfmt.price(leg.price)} ({numfmt.usd(position.leg_net_pnl_usd(leg))}),"
                f" {tail}",
                id=position.id,
                reason=leg.reason.value,
                qty=leg.qty,
                price=leg.price,
                pnl_usd=position.leg_net_pnl_usd(leg),
                closed=position.is_closed,
            )

    def _close(self, position: Position) -> None:
        self._bands.pop(position.id, None)
        self._quiet.pop(position.id, None)
        trade = position.closed_trade()
        if position.ledger is Ledger.LIVE:
            del self.book.live[position.symbol]
            self._start_cooldown(trade)
            record = trade.to_record()
            self.book.closed_live.append(trade)
            self.book.closed_records.append(record)
            self.book.realised_closed_usd += trade.pnl_usd
            self.book.closed_count += 1
            self._prune_history(trade.exit_s)
            self._live_log.append_once(record)
        else:
            del self.book.twins[position.id]
            self.book.guard.note_twin_closed(trade)
            self._outcomes.append_once(trade.to_record())
        for observer in self.trade_observers:
            observer(trade)

    def _start_cooldown(self, trade: ClosedTrade) -> None:
        """A position the operator closed takes no new entry for `operator_cooldown_min`."""
        cooldown = self.config.gates.operator_cooldown_min * MIN_S
        expired = [s for s, t in self.book.cooldown_until_s.items() if t <= trade.exit_s]
        for symbol in expired:
            del self.book.cooldown_until_s[symbol]
        if ExitReason.MANUAL in trade.exit_reasons and cooldown > 0:
            self.book.cooldown_until_s[trade.symbol] = trade.exit_s + cooldown

    def _prune_history(self, now_s: float) -> None:
        keep_h = max(self.config.store.live_history_h, self.config.learning.lookback_h)
        cutoff = now_s - keep_h * HOUR_S
        if self.book.closed_live and self.book.closed_live[0].exit_s < cutoff:
            book = self.book
            records = book.closed_records
            if len(records) != len(book.closed_live):  # never apart; if so, serialise again
                records = [t.to_record() for t in book.closed_live]
            kept = [
                (t, r) for t, r in zip(book.closed_live, records, strict=True) if t.exit_s >= cutoff
            ]
            book.closed_live = [t for t, _ in kept]
            book.closed_records = [r for _, r in kept]

    # -- exchange execution: what the router books (core/execution_loop.py) -------------

    def book_entry(self, order: EntryOrder, fill: Fill, qty: float, entry_s: float) -> Position:
        """An entry the exchange filled (`qty` at `fill`): the live position and its shadow
        twin, as `_fill_pending` books a paper fill; its pending order is done."""
        if (pending := self.book.pending.get(order.symbol)) is not None and pending.id == order.id:
            del self.book.pending[order.symbol]
        order = replace(order, qty=qty)
        live = self._open_position(order, Ledger.LIVE, order.id, entry_s, fill)
        self.book.live[order.symbol] = live
        ideal = self.broker.ideal(order.qty, order.signal_price)
        twin = self._open_position(
            order, Ledger.SHADOW, f"S-{order.id}", order.signal_close_s, ideal
        )
        self.book.twins[twin.id] = replace(twin, twin_of=live.id)
        self._announce_entry(live, order)
        self.save()
        return live

    def book_exit(self, position: Position, leg: ExitLeg) -> None:
        """An exit leg the exchange executed for a live position."""
        position = position.with_exit(leg)
        self._store_position(position)
        self._announce_exits(position, 1)
        if position.is_closed:
            self._close(position)
        self.save()

    def drop_pending(self, order_id: str, why: str) -> None:
        """An entry the exchange did not fill: its pending order goes, and says why."""
        for symbol, order in list(self.book.pending.items()):
            if order.id == order_id:
                del self.book.pending[symbol]
                self.emit("cancel", symbol, f"entry {order.side} cancelled: {why}", id=order.id)
                self.save()

    def release_to_ladder(self, position: Position) -> Position:
        """The position released from its force-hold (booked), as `_exit_position` does."""
        released = self._release_to_ladder(position)
        if released is not position:
            self._store_position(released)
        return released

    # -- operator --------------------------------------------------------------------

    def cancel_pending(self, why: str) -> int:
        """Cancel every entry order not yet filled (a pause: nothing new opens after it)."""
        orders = list(self.book.pending.values())
        self.book.pending.clear()
        for order in orders:
            self.emit("cancel", order.symbol, f"entry {order.side} cancelled: {why}", id=order.id)
        if orders:
            self.save()
        return len(orders)

    def request_close(self, symbol: str) -> str:
        """Operator close: the live position (and its twin) exit at the next bar's open."""
        if symbol in self.book.pending:
            order = self.book.pending.pop(symbol)
            self.save()
            return f"{symbol}: entry order {order.side} cancelled before its fill"
        position = self.book.live.get(symbol)
        if position is None:
            raise CommandError(f"{symbol} has no open position")
        self.book.live[symbol] = replace(position, close_requested=True)
        for twin in list(self.book.twins.values()):
            if twin.twin_of == position.id:
                self.book.twins[twin.id] = replace(twin, close_requested=True)
        self.save()
        return f"{symbol}: closing {position.side} at the next bar's open"

    # -- persistence -----------------------------------------------------------------

    def save(self) -> None:
        self._dirty = False
        if self.read_only:
            return
        if not all(log.flush() for log in self._logs):
            # the logs first: a book saved past a record the disk refused would lose it
            self._dirty = True
            return
        doc = self.to_doc()
        # the book's own list, which the next closed trade grows: the document gets a copy,
        # so that nothing in it changes after the write (its records never change) and a
        # throwaway store may keep it, encoded only if it is read or flushed (`owned`)
        doc["closed"] = list(doc["closed"])
        self.store.write_json(POSITIONS, doc, owned=True)

    def to_doc(self) -> dict[str, Any]:
        return book_mod.encode(self.book)

    def restore(self) -> None:
        latest_s = codec.latest_time_s(self.clock.wall())
        decoded = self.store.load_or_quarantine(
            POSITIONS, lambda doc: book_mod.decode(doc, self.config, latest_s)
        )
        if decoded is None:
            return
        self.book = decoded.book
        if decoded.set_aside:
            self.store.set_aside_records(POSITIONS, decoded.set_aside)
            self.save()  # the file holds the records kept: the next start finds nothing bad


def block_record(decision: Decision, twin: Position, new_twin: bool) -> dict[str, Any]:
    # enum values read as `_value_` (the `value` property costs more, once per block)
    signal = decision.signal
    blocked_by = decision.blocked_by
    return {
        "id": f"G-{signal.id}",
        "time_s": signal.time_s,
        "symbol": signal.symbol,
        "side": signal.side._value_,
        "reason": None if blocked_by is None else blocked_by._value_,
        "detail": decision.detail,
        "passed": [r._value_ for r in decision.passed],
        "skipped": [r._value_ for r in decision.skipped],
        "ofi": signal.ofi,
        "atr_bps": signal.atr_bps,
        "expected_edge_bps": signal.expected_edge_bps,
        "whale_direction": signal.whale_direction._value_,
        "retail_ofi": signal.retail_ofi,
        "regime": signal.regime._value_,
        "conviction": decision.size.conviction._value_,
        "size_multiplier": decision.size_multiplier,
        "price": signal.price,
        "twin_id": twin.id,  # the twin following this opportunity (new, or already open)
        "new_twin": new_twin,
    }


def block_entry(
    decision: Decision, twin: Position, new_twin: bool
) -> tuple[dict[str, Any], str | None]:
    """A block's record and line for `RecentIds.append_once` (one per blocked signal):
    `block_line(block_record(...))` made straight from the decision, whose layout is known
    here, so only its numbers are checked. With the line, the log reads only the record's
    id (it writes the line, and keeps the record beside it only while the disk refuses),
    so the record is its id alone; without one (a number only the encoder writes), the
    whole `block_record`."""
    signal = decision.signal
    t, ofi, atr, edge = signal.time_s, signal.ofi, signal.atr_bps, signal.expected_edge_bps
    retail, size, price = signal.retail_ofi, decision.size_multiplier, signal.price
    if not (type(new_twin) is bool and _plain_floats(t, ofi, atr, edge, retail, size, price)):
        return block_record(decision, twin, new_twin), None  # as `block_line` says
    record_id = f"G-{signal.id}"
    blocked_by = decision.blocked_by
    s, texts = _json_str, _ENUM_JSON
    try:
        whale = signal.whale_direction._value_
        regime, conviction_value = signal.regime._value_, decision.size.conviction._value_
        middle = _block_middle(
            signal.symbol,
            signal.side,
            blocked_by,
            decision.detail,
            decision.passed,
            decision.skipped,
        )
        # `!r` of a float (checked above) is `float.__repr__`, as the encoder writes it
        line = (
            f'{{"id":{s(record_id)},"time_s":{t!r},{middle}'
            f'{ofi!r},"atr_bps":{atr!r},"expected_edge_bps":{edge!r},'
            f'"whale_direction":{texts.get(whale) or s(whale)},"retail_ofi":{retail!r},'
            f'"regime":{texts.get(regime) or s(regime)},'
            f'"conviction":{texts.get(conviction_value) or s(conviction_value)},'
            f'"size_multiplier":{size!r},"price":{price!r},"twin_id":{s(twin.id)},'
            f'"new_twin":{"true" if new_twin else "false"}}}'
        )
    except TypeError:  # a text that is not a str
        return block_record(decision, twin, new_twin), None
    return {"id": record_id}, line


#: each enum value `block_entry` writes, as the json encoder writes it (made once)
_ENUM_JSON: dict[str, str] = {
    member._value_: _json_str(member._value_)
    for enum in (Side, BlockReason, WhaleDirection, Regime, Conviction)
    for member in enum
}

#: per symbol, `_block_middle`'s last text and what it was made of
_MIDDLES: dict[
    str, tuple[Side, BlockReason | None, str, tuple[BlockReason, ...], tuple[BlockReason, ...], str]
] = {}


def _block_middle(
    symbol: str,
    side: Side,
    blocked_by: BlockReason | None,
    detail: str,
    passed: tuple[BlockReason, ...],
    skipped: tuple[BlockReason, ...],
) -> str:
    """A block line's text from its symbol to its OFI's key: the same for every signal
    bar of a symbol's night (the same side, gate, words and gate lists, the very objects
    the gates keep), so it is made again only when one of them changes."""
    known = _MIDDLES.get(symbol)
    if (
        known is not None
        and known[0] is side
        and known[1] is blocked_by
        and known[2] is detail
        and known[3] is passed
        and known[4] is skipped
    ):
        return known[5]
    s, texts = _json_str, _ENUM_JSON
    side_value = side._value_
    reason = (
        "null" if blocked_by is None else texts.get(blocked_by._value_) or s(blocked_by._value_)
    )
    text = (
        f'"symbol":{s(symbol)},"side":{texts.get(side_value) or s(side_value)},'
        f'"reason":{reason},"detail":{s(detail)},"passed":{_reason_list(passed)},'
        f'"skipped":{_reason_list(skipped)},"ofi":'
    )
    if len(_MIDDLES) >= 256:
        _MIDDLES.clear()
    _MIDDLES[symbol] = (side, blocked_by, detail, passed, skipped, text)
    return text


#: `_reason_list`'s texts by the identity of the tuple (the gates keep a few, for good)
_REASON_LISTS: dict[int, tuple[tuple[BlockReason, ...], str]] = {}


def _reason_list(reasons: tuple[BlockReason, ...]) -> str:
    """The values of `reasons` as the json encoder writes them in a list."""
    known = _REASON_LISTS.get(id(reasons))
    if known is not None and known[0] is reasons:
        return known[1]
    text = f"[{','.join([_json_str(r._value_) for r in reasons])}]"
    if len(_REASON_LISTS) >= 64:
        _REASON_LISTS.clear()
    _REASON_LISTS[id(reasons)] = (reasons, text)  # kept alive: its id stays its own
    return text


_BLOCK_KEYS = (
    "id",
    "time_s",
    "symbol",
    "side",
    "reason",
    "detail",
    "passed",
    "skipped",
    "ofi",
    "atr_bps",
    "expected_edge_bps",
    "whale_direction",
    "retail_ofi",
    "regime",
    "conviction",
    "size_multiplier",
    "price",
    "twin_id",
    "new_twin",
)


_LISTS = (list, tuple)  # what the json encoder writes as a list


def _plain_floats(*values: object) -> bool:
    """Every value a float (not an int, a bool or a subclass) and all finite (the sum too):
    what `float.__repr__` writes as the json encoder does."""
    total = 0.0
    for value in values:
        if type(value) is not float:
            return False
        total += value  # an overflowing sum is refused too (the encoder's "inf" check)
    return math.isfinite(total)


def block_line(record: Mapping[str, Any]) -> str | None:
    """`store.to_json(record)` for a `block_record`, written out: about twice as fast as the
    json encoder, and a block comes with every signal bar of a closed golden hour. None
    (encode it as any record) unless the record has exactly that layout: the same keys in
    the same order, every number a finite float, every text a str, `new_twin` a bool."""
    if type(record) is not dict:  # a Mapping the encoder refuses, or a dict subclass whose
        return None  # iteration order may not be the order of the items the encoder writes
    if tuple(record) != _BLOCK_KEYS or type(record["new_twin"]) is not bool:
        return None
    if type(record["passed"]) not in _LISTS or type(record["skipped"]) not in _LISTS:
        return None  # a str would be joined letter by letter; the encoder writes it whole
    r = record
    t, ofi, atr, edge = r["time_s"], r["ofi"], r["atr_bps"], r["expected_edge_bps"]
    retail, size, price = r["retail_ofi"], r["size_multiplier"], r["price"]
    if not _plain_floats(t, ofi, atr, edge, retail, size, price):
        return None  # an int or a non-finite float (or an overflowing sum): the encoder's
    f = float.__repr__
    s = _json_str
    try:
        reason = "null" if r["reason"] is None else s(r["reason"])
        return (
            f'{{"id":{s(r["id"])},"time_s":{f(t)},"symbol":{s(r["symbol"])},'
            f'"side":{s(r["side"])},"reason":{reason},"detail":{s(r["detail"])},'
            f'"passed":[{",".join(map(s, r["passed"]))}],'
            f'"skipped":[{",".join(map(s, r["skipped"]))}],"ofi":{f(ofi)},"atr_bps":{f(atr)},'
            f'"expected_edge_bps":{f(edge)},"whale_direction":{s(r["whale_direction"])},'
            f'"retail_ofi":{f(retail)},"regime":{s(r["regime"])},'
            f'"conviction":{s(r["conviction"])},"size_multiplier":{f(size)},"price":{f(price)},'
            f'"twin_id":{s(r["twin_id"])},"new_twin":{"true" if r["new_twin"] else "false"}}}'
        )
    except TypeError:  # a text that is not a str
        return None
