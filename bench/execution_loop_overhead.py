"""What routing orders to the exchange costs the bar loop when no order is due.

Runs the same quiet bars (no signal) through `Core.run` three ways, in one run, side by
side: paper; testnet routed to the fake USD-M exchange of the tests on 127.0.0.1 with the
reconciliation once a day (the drain before every bar, the halt checks); and testnet with
the default reconciliation every 5 market minutes (at max speed that is one every 5 bars,
where live sees one every 5 wall minutes).

    python bench/execution_loop_overhead.py [--bars 3000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_usdm_exchange import API_KEY, API_SECRET, FakeUsdmExchange, usdm_exchange
from trading_helpers import SYMBOL, T0_MS, ListSource, make_bar, quiet_config

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.exchange import ApiKeys
from bigalpha_tui.core.execution import build_broker
from bigalpha_tui.core.execution_loop import attach_execution
from bigalpha_tui.core.store import Store


class ClockedSource(ListSource):
    def __init__(self, bars: list, clock: SimClock) -> None:  # type: ignore[type-arg]
        super().__init__(bars)
        self.clock = clock

    async def bars(self, resume_after_ms: int | None = None):  # type: ignore[no-untyped-def]
        async for bar in super().bars(resume_after_ms):
            self.clock.advance_to(bar.close_s)
            yield bar


def one_run(bars: list, config: Config, url: str | None) -> tuple[float, int]:  # type: ignore[type-arg]
    clock = SimClock(T0_MS / 1000)
    with tempfile.TemporaryDirectory() as tmp:
        core = Core(config, ClockedSource(bars, clock), clock, Store(Path(tmp), durable=False))
        execution = None
        if url is not None:
            broker = build_broker(config, ApiKeys(API_KEY, API_SECRET), clock)
            execution = attach_execution(core, broker)

        async def main() -> None:
            try:
                await core.run()
            finally:
                if execution is not None:
                    await execution.broker.client.aclose()

        start = time.perf_counter()
        anyio.run(main)
        elapsed = time.perf_counter() - start
        sent = 0 if execution is None else execution.broker.client.requests_sent
        return elapsed, sent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bars", type=int, default=3000)
    args = p.parse_args()
    bars = [make_bar(i, 100.0, high=100.2, low=99.8) for i in range(args.bars)]
    clock = SimClock(T0_MS / 1000)
    with usdm_exchange(FakeUsdmExchange(now=clock.now, prices={SYMBOL: 100.0})) as ex:
        paper = quiet_config()
        routed = {
            "mode": "testnet",
            "testnet_base_url": ex.url,
            "min_request_interval_s": 0.05,
        }
        daily = quiet_config(execution={**routed, "reconcile_every_min": 1440.0})
        every5 = quiet_config(execution=routed)
        rows = [
            ("paper", *one_run(bars, paper, None)),
            ("testnet, reconcile daily", *one_run(bars, daily, ex.url)),
            ("testnet, reconcile every 5 min", *one_run(bars, every5, ex.url)),
        ]
    base = rows[0][1]
    print(f"{args.bars} quiet bars through Core.run (no order due), one run:")
    for name, elapsed, sent in rows:
        print(
            f"  {name:<32} {elapsed:6.2f} s  {args.bars / elapsed:8.0f} bars/s"
            f"  x{elapsed / base:5.2f}  {sent:5d} signed requests"
        )


if __name__ == "__main__":
    main()
