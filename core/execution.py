"""Which execution a run may start with: paper, or signed orders the operator asked for twice.

`execution.mode` in the config is the first ask; for live, the second is `--confirm-live` on
the headless command line, or the word typed in the cockpit before its core starts
(`bigalpha_tui/screens/execution.py`). Testnet and live need keys. Every refusal is one
`ConfigError` line.

A testnet run routes the trading loop's orders to the exchange (`execution_loop.py`) when
its bars are the exchange's own (source binance or coinglass); the simulator and replays
never send orders. Live stays refused with one line in this build, for the reasons in
`LIVE_NOT_SAFE` (docs/execution.md). `bigalpha-tui exchange ...` tries the keys and the
exchange by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .config import EXCHANGE_SOURCES, PAPER, Config, ExecutionConfig
from .errors import ConfigError
from .exchange import (
    ApiKeys,
    ExchangeError,
    ExchangeGarbled,
    UsdmClient,
    base_url,
    exchange_number,
    load_keys,
)
from .exchange_broker import ALGO_PATH, OPEN_ALGOS_PATH, ExchangeBroker, OrderRefused
from .ratelimit import HostRateLimiter, api_key_id
from .types import Side

POSITION_RISK_PATH = "/fapi/v2/positionRisk"
OPEN_ORDERS_PATH = "/fapi/v1/openOrders"
ALL_OPEN_ORDERS_PATH = "/fapi/v1/allOpenOrders"
MINUTE_S = 60.0
#: The leg of a flatten's close in its client id (FLAT, then FLAT1... for repeats).
FLATTEN_LEG = "FLAT"
LIVE = "live"
#: Why live stays refused (docs/execution.md, "not safe"): ways to lose real money that the
#: tests against the fake exchange cannot rule out. Lift only once they are fixed or measured
#: on the real testnet.
LIVE_NOT_SAFE = (
    "the routing has run only against a fake exchange, never the real testnet; a 418 ban"
    " right after a fill can leave the position without its stop"
)


def check_start(
    config: ExecutionConfig,
    *,
    confirm_live: bool,
    headless: bool,
    environ: Mapping[str, str] | None = None,
) -> ApiKeys | None:
    """The keys a run in `config.mode` uses (None for paper); ConfigError when it may not
    start that way."""
    mode = config.mode
    if confirm_live and mode != LIVE:
        raise ConfigError(
            f"--confirm-live confirms execution.mode = 'live', but the mode is {mode!r};"
            " nothing was started"
        )
    if mode == PAPER:
        return None
    keys = load_keys(config, environ)
    # the cockpit asks for the typed word itself, before its core starts
    if mode == LIVE and headless and not confirm_live:
        raise ConfigError(
            "execution.mode 'live' sends real orders with real money: add --confirm-live to"
            " start it"
        )
    return keys


def refuse_unrouted(config: Config) -> None:
    """Stop a run whose orders cannot be routed: live (`LIVE_NOT_SAFE`), or testnet on a
    market that is not the exchange's (the simulator, a replay)."""
    ex = config.execution
    if ex.mode == PAPER:
        return
    if ex.mode == LIVE:
        raise ConfigError(
            f"execution.mode 'live' ({base_url(ex)}) stays refused in this build: {LIVE_NOT_SAFE}"
            " (docs/execution.md); nothing was sent; use execution.mode = 'testnet'"
        )
    if config.source.name not in EXCHANGE_SOURCES:
        raise ConfigError(
            f"execution.mode {ex.mode!r} trades the exchange's market: set source.name to"
            f" {' or '.join(EXCHANGE_SOURCES)} (source {config.source.name!r} never sends"
            " orders; set execution.mode = 'paper' for it)"
        )


# -- by hand: `bigalpha-tui exchange check|roundtrip|flatten` ---------------------------------


def build_broker(config: Config, keys: ApiKeys, clock: Clock) -> ExchangeBroker:
    """A broker on its own signed client and rate limiter (one per API key)."""
    ex = config.execution
    limiter = HostRateLimiter(
        clock,
        min_interval_s=ex.min_request_interval_s,
        backoff_base_s=ex.min_request_interval_s,
        backoff_cap_s=config.source.backoff_cap_s,
        name=f"binance-usdm key {api_key_id(keys.key)}",
    )
    client = UsdmClient(
        base_url(ex),
        keys,
        clock,
        limiter,
        recv_window_ms=ex.recv_window_ms,
        timeout_s=ex.request_timeout_s,
        max_wait_s=ex.max_wait_s,
    )
    return ExchangeBroker(
        client, ex, clock, fee_bps=config.gates.fee_bps, stop_pct=config.exits.stop_pct
    )


@dataclass(frozen=True, slots=True)
class AccountState:
    """What the account holds: positions (signed qty, entry price), open orders, stops."""

    positions: dict[str, tuple[float, float]]
    open_orders: list[dict[str, Any]]
    stops: list[dict[str, Any]]


async def account_state(client: UsdmClient) -> AccountState:
    risk = await client.request("GET", POSITION_RISK_PATH)
    positions: dict[str, tuple[float, float]] = {}
    if not isinstance(risk, list):
        raise ExchangeGarbled("the exchange's positions answer is not a list")
    for row in risk:
        if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
            raise ExchangeGarbled(f"the exchange's positions list holds {str(row)[:40]!r}")
        symbol = row["symbol"]
        amount = exchange_number(row.get("positionAmt"), f"{symbol} positionAmt")
        if amount != 0.0:
            price = exchange_number(row.get("entryPrice"), f"{symbol} entryPrice")
            positions[symbol] = (amount, price)
    orders = await client.request("GET", OPEN_ORDERS_PATH)
    stops = await client.request("GET", OPEN_ALGOS_PATH)
    if isinstance(stops, dict):
        stops = stops.get("orders", [])
    return AccountState(
        positions,
        [o for o in orders if isinstance(o, dict)] if isinstance(orders, list) else [],
        [s for s in stops if isinstance(s, dict)] if isinstance(stops, list) else [],
    )


@dataclass(frozen=True, slots=True)
class Flattened:
    """What a flatten did (one line each) and what it left open: symbol -> signed quantity
    as last read (a close that kept filling only a part, or could not be sent)."""

    lines: list[str]
    left: dict[str, float]


async def flatten(broker: ExchangeBroker) -> Flattened:
    """Cancel every open order, close every position with reduce-only market orders, then
    cancel every stop (a repeat is harmless: reduce-only cannot open anything).

    A close that fills only a part is followed by another for the rest, up to
    `send_attempts` closes a symbol, each bounded as every order is (tries, `max_wait_s`,
    fill polls). A symbol still open after them, or whose close could not be sent (a ban),
    keeps its stops and is in `left`; the lines say so. The stops go last: a close that
    cannot be sent leaves its position with its stop."""
    client = broker.client
    state = await account_state(client)
    lines: list[str] = []
    symbols = set(state.positions)
    symbols |= {str(o.get("symbol")) for o in state.open_orders}
    for symbol in sorted(symbols):
        await client.request("DELETE", ALL_OPEN_ORDERS_PATH, {"symbol": symbol})
        lines.append(f"{symbol}: open orders cancelled")
    minute = int(broker.clock.now() // MINUTE_S)
    left: dict[str, float] = {}
    closes: dict[str, int] = {}
    for symbol, (amount, _) in sorted(state.positions.items()):
        rest, closes[symbol] = await _close_all(broker, symbol, amount, minute, lines)
        if rest != 0.0:
            left[symbol] = rest
    for stop in state.stops:
        symbol = str(stop.get("symbol"))
        if symbol in left:
            lines.append(f"{symbol}: stop {stop.get('clientAlgoId')} left resting for the rest")
            continue
        try:
            await client.request(
                "DELETE", ALGO_PATH, {"symbol": symbol, "algoId": str(stop.get("algoId"))}
            )
            lines.append(f"{symbol}: stop {stop.get('clientAlgoId')} cancelled")
        except ExchangeError as exc:
            lines.append(f"{symbol}: stop {stop.get('clientAlgoId')} not cancelled ({exc})")
    for symbol, rest in sorted(left.items()):
        lines.append(
            f"{symbol}: {rest:+g} STILL OPEN after {closes[symbol]} close(s); its stops stay;"
            " run flatten again"
        )
    if not lines:
        lines.append("nothing open: no position, no order")
    return Flattened(lines, left)


async def _close_all(
    broker: ExchangeBroker, symbol: str, amount: float, minute: int, lines: list[str]
) -> tuple[float, int]:
    """Close the signed `amount` reduce-only until the exchange holds none of it, at most
    `send_attempts` closes; what is left (as last read) and how many closes were sent.

    Each close's client id derives from the minute, the symbol and the amount it closes
    (and, when a close of the same amount filled nothing, how many were sent before): a
    retry after a lost answer, or a re-run within the minute, finds that close instead of
    sending it twice, and the close of a rest (another amount) is a new order."""
    sent: dict[float, int] = {}
    left = amount
    count = 0
    for _ in range(broker.config.send_attempts):
        side = Side.LONG if left > 0 else Side.SHORT
        again = sent.get(left, 0)
        sent[left] = again + 1
        leg = FLATTEN_LEG + (str(again) if again else "")
        count += 1
        try:
            fill = await broker.close_leg(
                f"FLAT-{symbol}-{left!r}-{minute}", leg, symbol, side, abs(left), final=False
            )
            lines.append(f"{symbol}: closed {side} {fill.qty:g} @ {fill.price:g}")
        except OrderRefused as exc:
            lines.append(f"{symbol}: close refused ({exc})")
            refused = True
        except ExchangeError as exc:  # no answer, a ban: what is left is as last read
            lines.append(f"{symbol}: close not sent or its outcome unknown ({exc})")
            return left, count
        else:
            refused = False
        before = left
        try:
            left = await position_amount(client=broker.client, symbol=symbol)
        except ExchangeError as exc:
            lines.append(f"{symbol}: what is left could not be read ({exc})")
            return before, count
        if left == 0.0 or (refused and left == before):
            return left, count  # closed, or refused again for the same: no point
        if left * amount < 0.0:  # the other side now: not ours to close here
            return left, count
    return left, count


async def position_amount(client: UsdmClient, symbol: str) -> float:
    """The signed quantity the account holds on `symbol` (0.0: none)."""
    rows = await client.request("GET", POSITION_RISK_PATH, {"symbol": symbol})
    if not isinstance(rows, list):
        raise ExchangeGarbled("the exchange's positions answer is not a list")
    total = 0.0
    for row in rows:
        if isinstance(row, dict) and row.get("symbol") == symbol:
            total += exchange_number(row.get("positionAmt"), f"{symbol} positionAmt")
    return total
