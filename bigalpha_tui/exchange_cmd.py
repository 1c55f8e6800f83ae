"""`bigalpha-tui exchange`: signed Binance USD-M requests by hand (docs/execution.md).

    bigalpha-tui exchange check                 keys, clock offset, positions, orders, stops
    bigalpha-tui exchange roundtrip SYMBOL      testnet only: a small long, its stop, its close
    bigalpha-tui exchange flatten --yes         cancel every order and stop, close every
                                                position, again for what a partial close
                                                left (live: also --confirm-live)

Keys come from BINANCE_API_KEY/BINANCE_API_SECRET or execution.key_file, and are never
printed. Exit status: 0 done, 1 the exchange did not do what was asked (the line says what
is known), 2 bad input or no keys.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bigalpha_tui import locations

if TYPE_CHECKING:
    from bigalpha_tui.core.config import Config
    from bigalpha_tui.core.exchange_broker import ExchangeBroker
EXIT_FAILED = 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui exchange",
        description="Signed Binance USD-M futures requests by hand, in execution.mode"
        " testnet or live (docs/execution.md).",
    )
    sub = p.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="keys, clock offset, positions, open orders, stops")
    trip = sub.add_parser(
        "roundtrip", help="testnet only: open a small long, show its stop, close it"
    )
    trip.add_argument("symbol", help="e.g. BTCUSDT")
    trip.add_argument("--usd", type=float, help="notional (default: sizing.base_stake_usd)")
    flat = sub.add_parser("flatten", help="cancel every order and stop, close every position")
    flat.add_argument("--yes", action="store_true", help="yes: close every position")
    flat.add_argument("--confirm-live", action="store_true", help="live mode: confirm")
    for command in (check, trip, flat):
        command.add_argument("--config", help="config file (default: the user config folder)")
    return p


def cmd_exchange(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from bigalpha_tui.core import config as config_mod
    from bigalpha_tui.core.errors import ConfigError
    from bigalpha_tui.core.exchange import load_keys

    config = config_mod.load(locations.config_path(args.config), must_exist=bool(args.config))
    mode = config.execution.mode
    if mode == "paper":
        raise ConfigError(
            "exchange: execution.mode is 'paper', which sends nothing; set execution.mode ="
            " 'testnet' in the config to talk to the testnet"
        )
    if args.action == "roundtrip" and mode != "testnet":
        raise ConfigError("exchange roundtrip places orders for a test: testnet only")
    if args.action == "flatten":
        if not args.yes:
            raise ConfigError("exchange flatten closes every position: add --yes to confirm")
        if mode == "live" and not args.confirm_live:
            raise ConfigError("exchange flatten in live mode: add --confirm-live as well")
    keys = load_keys(config.execution)
    from bigalpha_tui.core.clock import RealClock
    from bigalpha_tui.core.execution import build_broker

    broker = build_broker(config, keys, RealClock())
    print(f"exchange: {broker.client.base_url} ({mode}), {keys}")
    actions: dict[str, Callable[[], Awaitable[int]]] = {
        "check": lambda: _check(broker, config.source.symbols),
        "roundtrip": lambda: _roundtrip(broker, args.symbol.upper(), args.usd, config),
        "flatten": lambda: _flatten(broker),
    }
    return _run(broker, actions[args.action])


def _run(broker: ExchangeBroker, action: Callable[[], Awaitable[int]]) -> int:
    import anyio

    from bigalpha_tui.core.exchange import ExchangeError

    async def main() -> int:
        try:
            return await action()
        except ExchangeError as exc:
            print(f"bigalpha-tui: exchange: {exc}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            await broker.client.aclose()

    return anyio.run(main)


async def _check(broker: ExchangeBroker, symbols: tuple[str, ...]) -> int:
    from bigalpha_tui.core.execution import account_state

    await broker.prepare()
    print(f"clock: the server is {broker.client.offset_ms:+.0f} ms from this machine")
    missing = [s for s in symbols if s not in broker.rules]
    listed = f"{len(broker.rules)} symbols listed"
    print(f"symbols: {listed}" + (f"; not listed: {', '.join(missing)}" if missing else ""))
    state = await account_state(broker.client)
    if not state.positions:
        print("positions: none")
    for symbol, (amount, entry) in sorted(state.positions.items()):
        print(f"position: {symbol} {amount:+g} @ {entry:g}")
    print(f"open orders: {len(state.open_orders)}")
    for stop in state.stops:
        print(
            f"stop: {stop.get('symbol')} {stop.get('side')} {stop.get('orderType')}"
            f" trigger {stop.get('triggerPrice')} ({stop.get('clientAlgoId')})"
        )
    if not state.stops:
        print("stops: none")
    return 0


async def _roundtrip(broker: ExchangeBroker, symbol: str, usd: float | None, config: Config) -> int:
    from bigalpha_tui.core.errors import ConfigError
    from bigalpha_tui.core.types import Side

    await broker.prepare()
    if symbol not in broker.rules:
        raise ConfigError(f"exchange roundtrip: {symbol} is not listed on {broker.client.base_url}")
    notional = config.sizing.base_stake_usd if usd is None else usd
    if not 0.0 < notional <= config.sizing.base_stake_usd * 10:
        raise ConfigError(
            f"exchange roundtrip: --usd accepts more than 0 and at most ten base stakes"
            f" ({config.sizing.base_stake_usd * 10:g})"
        )
    price = await broker.client.price(symbol)
    position_id = f"RT-{symbol}-{int(broker.clock.now())}"
    outcome = await broker.open_position(position_id, symbol, Side.LONG, notional / price, price)
    if outcome.fill is None:
        print(f"entry: nothing filled ({symbol} {notional:g} USDT)")
        return EXIT_FAILED
    fill = outcome.fill
    print(f"entry: LONG {fill.qty:g} @ {fill.price:g}, fee {fill.fee_usd:.4f} USDT")
    if outcome.emergency_exit is not None:
        exit_fill = outcome.emergency_exit
        print(f"stop: refused by the exchange; closed at once @ {exit_fill.price:g}")
        return EXIT_FAILED
    print(f"stop: resting on the exchange ({outcome.stop_id})")
    exit_fill = await broker.close_leg(position_id, "MANUAL", symbol, Side.LONG, fill.qty)
    print(f"exit: {exit_fill.qty:g} @ {exit_fill.price:g}, fee {exit_fill.fee_usd:.4f} USDT")
    left = await broker.open_stop_ids(symbol)
    print("stop: cancelled" if outcome.stop_id not in left else "stop: STILL RESTING")
    return 0 if outcome.stop_id not in left else EXIT_FAILED


async def _flatten(broker: ExchangeBroker) -> int:
    from bigalpha_tui.core.execution import flatten

    await broker.prepare()
    done = await flatten(broker)
    for line in done.lines:
        print(line)
    return EXIT_FAILED if done.left else 0
