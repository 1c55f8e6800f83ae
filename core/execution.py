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
from .config import Config, ExecutionConfig
from .errors import ConfigError
from .exchange import (
    ApiKeys,
    ExchangeGarbled,
    ExchangeRejected,
    UsdmClient,
    base_url,
    exchange_number,
    load_keys,
)
from .exchange_broker import ALGO_PATH, OPEN_ALGOS_PATH, ExchangeBroker
from .ratelimit import HostRateLimiter, api_key_id
from .types import Side

POSITION_RISK_PATH = "/fapi/v2/positionRisk"
OPEN_ORDERS_PATH = "/fapi/v1/openOrders"
ALL_OPEN_ORDERS_PATH = "/fapi/v1/allOpenOrders"
PAPER = "paper"
LIVE = "live"
#: Sources whose bars are Binance USD-M futures' own (the market orders are sent to).
EXCHANGE_SOURCES = ("binance", "coinglass")
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


async def flatten(broker: ExchangeBroker) -> list[str]:
    """Cancel every open order, close every position with a reduce-only market order, then
    cancel every stop (a repeat is harmless: reduce-only cannot open anything). The stops go
    last: a close that cannot be sent (a ban) leaves its position with its stop. One line
    each."""
    client = broker.client
    state = await account_state(client)
    lines: list[str] = []
    symbols = set(state.positions)
    symbols |= {str(o.get("symbol")) for o in state.open_orders}
    for symbol in sorted(symbols):
        await client.request("DELETE", ALL_OPEN_ORDERS_PATH, {"symbol": symbol})
        lines.append(f"{symbol}: open orders cancelled")
    minute = int(broker.clock.now() // 60)
    partly: set[str] = set()  # closed in part only: their stops stay for the rest
    for symbol, (amount, _) in sorted(state.positions.items()):
        side = Side.LONG if amount > 0 else Side.SHORT
        fill = await broker.close_leg(
            f"FLAT-{symbol}-{minute}", "FLAT", symbol, side, abs(amount), final=False
        )
        lines.append(f"{symbol}: closed {side} {fill.qty:g} @ {fill.price:g}")
        rules = broker.rules.get(symbol)
        half_step = float(rules.step) / 2 if rules is not None else 0.0
        if fill.qty < abs(amount) - half_step:
            partly.add(symbol)
            lines.append(
                f"{symbol}: {abs(amount) - fill.qty:g} left open (the close filled a part)"
            )
    for stop in state.stops:
        symbol = str(stop.get("symbol"))
        if symbol in partly:
            lines.append(f"{symbol}: stop {stop.get('clientAlgoId')} left resting for the rest")
            continue
        try:
            await client.request(
                "DELETE", ALGO_PATH, {"symbol": symbol, "algoId": str(stop.get("algoId"))}
            )
            lines.append(f"{symbol}: stop {stop.get('clientAlgoId')} cancelled")
        except ExchangeRejected as exc:
            lines.append(f"{symbol}: stop {stop.get('clientAlgoId')} not cancelled ({exc})")
    if not lines:
        lines.append("nothing open: no position, no order")
    return lines
