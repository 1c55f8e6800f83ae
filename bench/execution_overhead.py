"""What a signed order costs us, apart from the exchange: signing, and a loopback round trip.

Runs the signed client against the fake USD-M exchange of the tests on 127.0.0.1 and prints,
from one run, side by side: the time to build and sign one query string, one signed GET
round trip through httpx and the rate limiter (spacing off), and a whole entry (look-up,
MARKET order, fill query, fee query, stop look-up, stop) in requests and milliseconds.

    python bench/execution_overhead.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_usdm_exchange import API_KEY, API_SECRET, FakeUsdmExchange, usdm_exchange

from bigalpha_tui.core.clock import RealClock
from bigalpha_tui.core.config import ExecutionConfig
from bigalpha_tui.core.exchange import ApiKeys, UsdmClient, sign
from bigalpha_tui.core.exchange_broker import ExchangeBroker
from bigalpha_tui.core.ratelimit import HostRateLimiter
from bigalpha_tui.core.types import Side


def sign_us(rounds: int) -> float:
    params = {"symbol": "BTCUSDT", "origClientOrderId": "ba-0123456789abcdef01234567-E"}
    start = time.perf_counter()
    for i in range(rounds):
        text = urlencode({**params, "timestamp": 1_767_258_000_000 + i, "recvWindow": 5000})
        sign(API_SECRET, text)
    return (time.perf_counter() - start) / rounds * 1e6


async def measure(url: str, rounds: int) -> tuple[float, float, int]:
    clock = RealClock()
    limiter = HostRateLimiter(clock, min_interval_s=0.0, name="bench")
    client = UsdmClient(url, ApiKeys(API_KEY, API_SECRET), clock, limiter)
    broker = ExchangeBroker(
        client, ExecutionConfig(mode="testnet"), clock, fee_bps=5.0, stop_pct=1.0
    )
    try:
        await broker.prepare()
        start = time.perf_counter()
        for _ in range(rounds):
            await client.request("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
        get_ms = (time.perf_counter() - start) / rounds * 1e3
        before = client.requests_sent
        start = time.perf_counter()
        entries = max(1, rounds // 20)
        for i in range(entries):
            await broker.open_position(f"B-{i}", "BTCUSDT", Side.LONG, 0.004, 50_000.0)
            await broker.close_leg(f"B-{i}", "MANUAL", "BTCUSDT", Side.LONG, 0.004)
        entry_ms = (time.perf_counter() - start) / entries * 1e3
        per_round_trip = (client.requests_sent - before) // entries
        return get_ms, entry_ms, per_round_trip
    finally:
        await client.aclose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=200)
    args = p.parse_args()
    signing = sign_us(args.rounds * 50)
    with usdm_exchange(FakeUsdmExchange(now=time.time)) as ex:
        get_ms, trip_ms, requests = anyio.run(measure, ex.url, args.rounds)
    print(f"sign one query          : {signing:8.1f} us")
    print(
        f"signed GET round trip   : {get_ms * 1e3:8.1f} us  ({get_ms * 1e3 / signing:.0f}x signing)"
    )
    print(
        f"entry + stop + close    : {trip_ms * 1e3:8.1f} us  in {requests} requests"
        f" ({trip_ms / get_ms:.1f}x one GET)"
    )


if __name__ == "__main__":
    main()
