"""Exit rules: ladder take-profits, the emergency stop and force-hold (DESIGN.md "Positions
and exits"). Pure functions of a position and one bar; the trading loop prices the fills.

Ladder: on a favourable move from entry of T1 +0.5 %, T2 +1.0 %, T3 +1.5 %, T4 +2.0 %, a
quarter of the ORIGINAL size closes at each of T1-T3 and whatever is left at T4. The emergency
stop at -1.0 % closes everything.

Force-hold: a position entered while the regime was TRUE_TREND has only the emergency stop and
T4 (which then closes the whole position) until `force_hold_until_s` (entry + 45 min); T1-T3
touches are ignored. When the hold ends, the live regime decides: still TRUE_TREND -> keep
"T4/stop only"; anything else -> back to the standard ladder, for good (the release is
one-way, so the mode cannot flicker with the regime label).

Intrabar rule. A bar's high and low both count: for a long, the low is checked against the
stop and the high against the tiers (mirrored for a short). One bar cannot tell which extreme
came first, so a bar that crosses the stop closes the whole position at the stop and takes no
tier in that bar, even if its other extreme crossed T1-T4: stop first, the conservative
reading. A bar that opens beyond a level fills at its open (a gap through the stop costs more
than the stop; a gap through a tier earns the open). The mode is fixed at the bar's open:
the force-hold covers the bars that open before the deadline, and the regime read is the one
published at the previous bar's close, so no exit decision uses the bar it is applied to.
Nothing vetoes the stop: not the force-hold, not a pause, not an operator close in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .bar import Bar
from .config import ExitConfig
from .positions import TIERS, Position
from .types import ExitReason, Regime, Side

PCT = 100.0


class ExitMode(StrEnum):
    FORCE_HOLD = "force-hold"  # within the 45 minutes: stop or T4 (whole) only
    T4_STOP_ONLY = "T4/stop only"  # hold over, regime still TRUE_TREND
    LADDER = "ladder"


@dataclass(frozen=True, slots=True)
class ExitTrigger:
    """An exit the bar triggered: how much closes, where, and whether it is a market order."""

    reason: ExitReason
    qty: float
    price: float
    market: bool  # stop and operator close cross the spread; tiers are resting limits
    at_open: bool = False  # filled at the bar's open (a gap, or an operator close)


def exit_mode(position: Position, at_s: float, live_regime: Regime) -> ExitMode:
    """The exit rules in force for `position` at `at_s` (a bar's open)."""
    if position.force_hold_until_s is None or position.released_to_ladder:
        return ExitMode.LADDER
    if at_s < position.force_hold_until_s:
        return ExitMode.FORCE_HOLD
    if live_regime is Regime.TRUE_TREND:
        return ExitMode.T4_STOP_ONLY
    return ExitMode.LADDER


def level_price(entry_price: float, side: Side, move_pct: float) -> float:
    """The price `move_pct` % from entry in the position's favour (negative: against)."""
    return entry_price * (1.0 + side.sign * move_pct / PCT)


def stop_price(position: Position, config: ExitConfig) -> float:
    return level_price(position.entry_price, position.side, -config.stop_pct)


def tier_price(position: Position, tier: ExitReason, config: ExitConfig) -> float:
    return level_price(position.entry_price, position.side, config.tiers_pct[TIERS.index(tier)])


def adverse_extreme(bar: Bar, side: Side) -> float:
    return bar.low if side is Side.LONG else bar.high


def favourable_extreme(bar: Bar, side: Side) -> float:
    return bar.high if side is Side.LONG else bar.low


def reached(price: float, level: float, side: Side, favourable: bool) -> bool:
    """Has `price` reached `level`, moving in (favourable) or against the position's side?"""
    direction = side.sign if favourable else -side.sign
    return (price - level) * direction >= 0.0


def fill_at_level(bar: Bar, level: float, side: Side, favourable: bool) -> float:
    """The level, or the bar's open when the bar opened beyond it (a gap)."""
    return bar.open if reached(bar.open, level, side, favourable) else level


def stop_trigger(position: Position, bar: Bar, config: ExitConfig) -> ExitTrigger | None:
    level = stop_price(position, config)
    if not reached(adverse_extreme(bar, position.side), level, position.side, favourable=False):
        return None
    price = fill_at_level(bar, level, position.side, favourable=False)
    return ExitTrigger(ExitReason.STOP, position.open_qty, price, True, price == bar.open)


def tier_trigger(
    position: Position, bar: Bar, tier: ExitReason, qty: float, config: ExitConfig
) -> ExitTrigger | None:
    level = tier_price(position, tier, config)
    if not reached(favourable_extreme(bar, position.side), level, position.side, favourable=True):
        return None
    price = fill_at_level(bar, level, position.side, favourable=True)
    return ExitTrigger(tier, qty, price, False, price == bar.open)


def ladder_triggers(position: Position, bar: Bar, config: ExitConfig) -> list[ExitTrigger]:
    """Every tier not yet taken that this bar reached, in order; T4 takes the rest."""
    triggers: list[ExitTrigger] = []
    remaining = position.open_qty
    slice_qty = config.tier_fraction * position.original_qty
    for tier in TIERS:
        if tier in position.tiers_taken or remaining <= 0.0:
            continue
        qty = remaining if tier is ExitReason.T4 else min(slice_qty, remaining)
        trigger = tier_trigger(position, bar, tier, qty, config)
        if trigger is None:
            break  # the tiers are increasing: one not reached means none beyond it is
        triggers.append(trigger)
        remaining -= qty
    return triggers


def bar_exits(
    position: Position, bar: Bar, mode: ExitMode, config: ExitConfig
) -> list[ExitTrigger]:
    """The exits one bar triggers for `position` under `mode` (stop first, see module doc)."""
    stop = stop_trigger(position, bar, config)
    if stop is not None:
        return [stop]
    if mode is ExitMode.LADDER:
        return ladder_triggers(position, bar, config)
    t4 = tier_trigger(position, bar, ExitReason.T4, position.open_qty, config)
    return [] if t4 is None else [t4]


def open_trigger(position: Position, bar: Bar, config: ExitConfig) -> ExitTrigger | None:
    """At the bar's open: a gap through the stop, else an operator close, else nothing.

    The stop is checked first so that an operator close in flight never hides a stop.
    """
    level = stop_price(position, config)
    if reached(bar.open, level, position.side, favourable=False):
        return ExitTrigger(ExitReason.STOP, position.open_qty, bar.open, True, True)
    if position.close_requested:
        return ExitTrigger(ExitReason.MANUAL, position.open_qty, bar.open, True, True)
    return None


def quiet_band(position: Position, config: ExitConfig) -> tuple[float, float]:
    """The stop and the nearest tier that could still fill (every tier not taken, and T4,
    which the force-hold modes check whatever was taken): a bar whose range stays strictly
    between them triggers no exit in any mode, at its open or inside it."""
    taken = position.tiers_taken
    levels = [
        tier_price(position, tier, config)
        for tier in TIERS
        if tier is ExitReason.T4 or tier not in taken
    ]
    nearest = min(levels) if position.side is Side.LONG else max(levels)
    return stop_price(position, config), nearest


def hold_band(position: Position, config: ExitConfig) -> tuple[float, float]:
    """The stop and T4: in the force-hold modes (FORCE_HOLD, T4_STOP_ONLY) no other level
    fills (`bar_exits`, `open_trigger`), so a bar strictly between them triggers nothing
    for as long as the position stays in one of them."""
    return stop_price(position, config), tier_price(position, ExitReason.T4, config)


def quiet_bar(band: tuple[float, float], side: Side, bar: Bar) -> bool:
    """True when `bar` reaches neither level of `band` (the exact negation of `reached`
    for the stop, the open and each tier; a sane bar's open lies within its range)."""
    stop, nearest = band
    if side is Side.LONG:
        return bar.low > stop and bar.high < nearest
    return bar.high < stop and bar.low > nearest
