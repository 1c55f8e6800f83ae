"""`bigalpha-tui replay FILE...`: the whole trading loop over kline files, then a report.

The same core as the cockpit and headless runs (engines, strategy, gates, paper broker,
shadow ledger, exits, learning loop), fed by the replay source as fast as it goes. It writes
to its own data folder: a fresh temporary one (removed afterwards) unless `--data-dir` names
one, never the operator's live store. Progress goes to stderr, only when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bigalpha_tui.cli import resolve_data_args
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.profit_factor import format_pf, profit_factor
from bigalpha_tui.core.sizing import fully_funded_equity_usd, largest_multiplier
from bigalpha_tui.core.snapshot import Snapshot
from bigalpha_tui.core.trades import ClosedTrade, Ledger
from bigalpha_tui.core.types import BlockReason, Conviction, ExitReason
from bigalpha_tui.data_args import add_config, add_data, add_json, add_row_options
from bigalpha_tui.scratch import scratch_dir

PROGRESS_EVERY_S = 0.2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui replay",
        description="Run the whole trading loop over Binance kline files and print a report.",
    )
    add_data(
        p,
        metavar="FILE",
        help="kline CSV files (or .gz, .zip, folders), or cached months: BTCUSDT:2025-01..2025-06"
        " (fetched first with `bigalpha-tui data fetch`)",
    )
    add_json(p, what="the report")
    add_row_options(p)
    p.add_argument(
        "--data-dir",
        help="write the run's store here (default: a fresh temporary folder, removed after)",
    )
    add_config(p)
    p.add_argument("--speed", default="max", help="market seconds per second, or 'max'")
    p.add_argument(
        "--streaming",
        action="store_true",
        help="apply the bars one by one through the streaming engines, as live and sim do"
        " (default at full speed: engine features computed per file in batches, same trades)",
    )
    return p


# -- the run --------------------------------------------------------------------------------


@dataclass
class TradeLog:
    """Every trade the run closed, by ledger."""

    trades: list[ClosedTrade] = field(default_factory=list)

    def add(self, trade: ClosedTrade) -> None:
        self.trades.append(trade)

    def of(self, ledger: Ledger) -> list[ClosedTrade]:
        return [t for t in self.trades if t.ledger is ledger]


class Progress:
    """A one-line progress bar on a terminal."""

    def __init__(self, out: IO[str], total_bars: int | None) -> None:
        self.out = out
        self.total_bars = total_bars
        self.started = time.monotonic()
        self.shown = 0.0

    def tick(self, core: Core, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.shown < PROGRESS_EVERY_S:
            return
        self.shown = now
        bars = core.heartbeat.bars_processed
        rate = bars / max(now - self.started, 1e-9)
        when = _iso(core.heartbeat.market_time_s)
        if self.total_bars:
            share = min(1.0, bars / self.total_bars)
            filled = int(share * 30)
            head = f"[{'#' * filled}{'.' * (30 - filled)}] {100 * share:5.1f}%"
        else:
            head = f"{bars:,} bars"
        self.out.write(f"\r{head}  {when}  {rate:,.0f} bars/s ")
        self.out.flush()

    def done(self) -> None:
        self.out.write("\n")
        self.out.flush()


def count_rows(paths: Iterable[Path]) -> int:
    """Data rows in the files (a header line is not counted), for the progress bar."""
    from bigalpha_tui.core.sources.replay import open_kline_text

    total = 0
    for path in paths:
        with open_kline_text(path, errors="replace") as fh:
            for line in fh:
                if line[:1].isdigit():
                    total += 1
    return total


#: stopping a replay (a process manager's SIGTERM, a closed SSH session's SIGHUP) unwinds it
#: like ctrl+c, so its temporary folder is removed; exit status 128 + the signal, as a shell
#: reports a process the signal ended
EXIT_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stopped_by_signals_as_exits() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (a replay run from a test's thread)
        return

    def stop(signum: int, _frame: object) -> None:
        for each in EXIT_SIGNALS:  # a second signal while unwinding must not cut the clean-up
            signal.signal(each, signal.SIG_IGN)
        print(f"replay: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        raise SystemExit(128 + signum)

    previous = {each: signal.signal(each, stop) for each in EXIT_SIGNALS}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def cmd_replay(argv: list[str]) -> int:
    from bigalpha_tui import runtime

    args = parser().parse_args(argv)
    args.files = resolve_data_args(args.files)
    temporary = args.data_dir is None
    with stopped_by_signals_as_exits():  # the finally below runs on SIGTERM/SIGHUP too
        data_dir = Path(scratch_dir("replay")) if temporary else None
        try:
            # a temporary folder is thrown away at the end: no fsync (3.5x faster on a month)
            report = run_replay(args, data_dir or Path(args.data_dir), durable=not temporary)
        finally:
            if data_dir is not None:
                shutil.rmtree(data_dir, ignore_errors=True)
    report["data_dir"] = "(temporary, removed)" if temporary else str(Path(args.data_dir))
    report.update(account_figures(runtime.effective_config(args), report["live"]["net_pnl_usd"]))
    if args.json:
        print(json.dumps(_jsonable(report), indent=2, allow_nan=False))
    else:
        print(render_report(report))
    return 0


@dataclass
class ReplayRun:
    """What one replay leaves: its trades, the final snapshot, the source's summary."""

    log: TradeLog
    snapshot: Snapshot
    source_detail: str
    elapsed_s: float

    def report(self) -> dict[str, Any]:
        return build_report(self.log, self.snapshot, self.source_detail, self.elapsed_s)


def run_replay(args: argparse.Namespace, data_dir: Path, *, durable: bool = True) -> dict[str, Any]:
    return run_loop(args, data_dir, durable=durable, show_progress=sys.stderr.isatty()).report()


def run_loop(
    args: argparse.Namespace,
    data_dir: Path,
    *,
    durable: bool = True,
    show_progress: bool = False,
    config: Config | None = None,
    window_ms: tuple[int, int] | None = None,
    streaming: bool | None = None,
    record_blocks: bool | None = None,
) -> ReplayRun:
    """One replay of `args.files` into `data_dir`; `config` replaces the file's (a sweep's
    variant), `window_ms` keeps the bars opening in [start, end) (the run starts cold).
    `durable` False: the folder is thrown away afterwards, so no fsync and (unless
    `record_blocks`) no block record or event (`TradingLoop.record_blocks`): the report is
    the same.

    At full speed on a fresh store the engine features are computed in batches
    (`core/batch.py`) and fed to the same trading loop: the same trades as the streaming
    path, much faster. `streaming` True (or `args.streaming`) keeps the bar-by-bar path."""
    import anyio

    from bigalpha_tui import runtime
    from bigalpha_tui.core import batch
    from bigalpha_tui.core.sources.replay import expand_paths

    start_ms, end_ms = window_ms if window_ms is not None else (None, None)
    namespace = argparse.Namespace(
        source="replay",
        speed=args.speed,
        symbols=None,
        seed=None,
        files=args.files,
        skip_bad_rows=args.skip_bad_rows,
        allow_no_flow=args.allow_no_flow,
        symbol=args.symbol,
        data_dir=str(data_dir),
        config=args.config,
        start_ms=start_ms,
        end_ms=end_ms,
    )
    rt = runtime.build(namespace, durable=durable, config=config)
    core = rt.core
    if not durable:
        rt.store.buffer_logs = True  # a throwaway folder: log lines written once, at the end
    if core.learning is not None:
        core.learning.keep_checked_records()
    if core.trading is not None:
        core.trading.record_blocks = durable if record_blocks is None else record_blocks
    log = TradeLog()
    if core.trading is not None:
        core.trading.trade_observers.append(log.add)
    progress = None
    if show_progress:
        progress = Progress(sys.stderr, None)
        core.progress_observers.append(lambda: progress.tick(core))
    if streaming is None:
        streaming = bool(getattr(args, "streaming", False))
    started = time.perf_counter()
    input_of = None if streaming else batch.batch_input_of(core)
    if input_of is not None:
        data = input_of(core.resume_after_ms())
        if progress is not None:  # the bars to apply (the window's): parsed already
            progress.total_bars = data.applied
        batch.run_batch(core, data)
    else:
        if progress is not None:
            progress.total_bars = count_rows(expand_paths(args.files))
        anyio.run(core.run)
    elapsed_s = time.perf_counter() - started
    if progress is not None:
        progress.tick(core, force=True)
        progress.done()
    return ReplayRun(log, core.snapshot(), rt.source.health().detail, elapsed_s)


# -- the report -------------------------------------------------------------------------


def ledger_figures(trades: list[ClosedTrade]) -> dict[str, Any]:
    pnls = [t.pnl_usd for t in trades]
    wins = sum(1 for p in pnls if p > 0)
    return {
        "trades": len(trades),
        "wins": wins,
        "win_rate_pct": 100.0 * wins / len(trades) if trades else None,
        "net_pnl_usd": math.fsum(pnls),
        "fees_usd": math.fsum(t.fees_usd for t in trades),
        "profit_factor": profit_factor(trades),
        "max_drawdown_usd": max_drawdown_usd(trades),
    }


def max_drawdown_usd(trades: list[ClosedTrade]) -> float:
    """Largest fall of the closed-trade equity curve from a previous peak (in exit order)."""
    peak = equity = worst = 0.0
    for trade in sorted(trades, key=lambda t: (t.exit_s, t.id)):
        equity += trade.pnl_usd
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return worst


def group_figures(trades: list[ClosedTrade]) -> dict[str, Any]:
    pnls = [t.pnl_usd for t in trades]
    return {
        "trades": len(trades),
        "net_pnl_usd": math.fsum(pnls),
        "avg_pnl_usd": math.fsum(pnls) / len(pnls) if pnls else None,
        "win_rate_pct": 100.0 * sum(p > 0 for p in pnls) / len(pnls) if pnls else None,
    }


def build_report(
    log: TradeLog, snap: Snapshot, source_detail: str, elapsed_s: float
) -> dict[str, Any]:
    live = log.of(Ledger.LIVE)
    legs = Counter(reason for t in live for reason in t.exit_reasons)
    held = [t for t in live if t.force_held]
    bars = snap.heartbeat.bars_processed
    return {
        "source": source_detail,
        "bars": bars,
        "elapsed_s": elapsed_s,
        "bars_per_s": bars / elapsed_s if elapsed_s > 0 else None,
        "last_bar": _iso(snap.heartbeat.market_time_s),
        "live": ledger_figures(live),
        "shadow": ledger_figures(log.of(Ledger.SHADOW)),
        "exits_by_tier": {r.value: legs.get(r, 0) for r in ExitReason},
        "force_hold": {
            "force_held": group_figures(held),
            "the_rest": group_figures([t for t in live if not t.force_held]),
        },
        "by_conviction": {
            c.value: group_figures([t for t in live if t.conviction is c]) for c in Conviction
        },
        "guard_report": {
            s.reason.value: {
                "blocked": s.blocked,
                "open_twins": s.open_twins,
                "opportunity_cost_usd": s.opportunity_cost_usd,
            }
            for s in snap.guard_stats
        },
        "open_positions": len(snap.positions),
        "unrealised_pnl_usd": snap.unrealised_pnl_usd,
        "symbols": {
            v.symbol: {"state": v.state.value, "slippage_buffer_bps": v.slippage_buffer_bps}
            for v in snap.symbols
        },
        "learning_cycles": snap.learning.cycles,
    }


def account_figures(config: Config, net_pnl_usd: float) -> dict[str, Any]:
    """The paper account the live P&L is measured against (see `fully_funded_equity_usd`)."""
    start = fully_funded_equity_usd(config.sizing, config.gates.max_positions)
    return {
        "base_stake_usd": config.sizing.base_stake_usd,
        "max_positions": config.gates.max_positions,
        "largest_multiplier": largest_multiplier(config.sizing),
        "starting_equity_usd": start,
        "ending_equity_usd": start + net_pnl_usd,
        "return_pct": 100.0 * net_pnl_usd / start if start > 0 else None,
    }


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:+,.2f}"


def _usd(value: float | None, sign: bool = True) -> str:
    """`+$1,234.56`, `-$0.50` (`$1,250.00` without `sign`)."""
    if value is None:
        return "—"
    text = f"${abs(value):,.2f}"
    if not sign:
        return text if value >= 0 else "-" + text
    return ("-" if value < 0 else "+") + text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def _signed_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f} %"


def render_report(report: dict[str, Any]) -> str:
    live, shadow = report["live"], report["shadow"]
    rate = report["bars_per_s"]
    lines = [
        f"replay: {report['source']}",
        f"bars {report['bars']:,} up to {report['last_bar']} UTC in {report['elapsed_s']:.1f} s"
        f" ({rate:,.0f} bars/s)"
        if rate
        else f"bars {report['bars']:,}",
        "",
        *_account_lines(report),
        f"{'ledger':<8} {'trades':>7} {'win rate':>9} {'net P&L $':>11} {'fees $':>9}"
        f" {'PF':>6} {'max DD $':>9}",
    ]
    for name, fig in (("live", live), ("shadow", shadow)):
        lines.append(
            f"{name:<8} {fig['trades']:>7} {_pct(fig['win_rate_pct']):>9}"
            f" {_money(fig['net_pnl_usd']):>11} {fig['fees_usd']:>9.2f}"
            f" {format_pf(fig['profit_factor']):>6} {fig['max_drawdown_usd']:>9.2f}"
        )
    tiers = "  ".join(f"{k} {v}" for k, v in report["exits_by_tier"].items())
    lines += ["", f"exits by tier (live legs, count): {tiers}", ""]
    for name, key in (("force-held", "force_held"), ("the rest", "the_rest")):
        fig = report["force_hold"][key]
        lines.append(
            f"{name:<11} {fig['trades']:>5} trades  net {_usd(fig['net_pnl_usd'])}"
            f"  avg {_usd(fig['avg_pnl_usd'])}  win rate {_pct(fig['win_rate_pct'])}"
        )
    lines += ["", "by conviction:"]
    for name, fig in report["by_conviction"].items():
        lines.append(f"  {name:<7} {fig['trades']:>5} trades  net {_usd(fig['net_pnl_usd'])}")
    lines += [
        "",
        f"{'guard':<15} {'blocked':>8} {'open twins':>11} {'opportunity cost $':>19}",
    ]
    for reason in BlockReason:
        g = report["guard_report"].get(reason.value)
        if g is None:
            continue
        lines.append(
            f"{reason.value:<15} {g['blocked']:>8} {g['open_twins']:>11}"
            f" {_money(g['opportunity_cost_usd']):>19}"
        )
    lines.append("  (counts of signals; opportunity cost > 0: the guard cost money, < 0: saved)")
    lines += [
        "",
        f"open positions at the end: {report['open_positions']}"
        f" (unrealised {_usd(report['unrealised_pnl_usd'])})",
        f"learning cycles: {report['learning_cycles']}",
        f"data folder: {report['data_dir']}",
    ]
    return "\n".join(lines)


def _account_lines(report: dict[str, Any]) -> list[str]:
    """Starting and ending equity of the live ledger; a report without them (a sweep's
    replay) has none."""
    if "starting_equity_usd" not in report:
        return []
    return [
        f"starting equity {_usd(report['starting_equity_usd'], sign=False)}:"
        f" {report['max_positions']} positions × {_usd(report['base_stake_usd'], sign=False)}"
        f" stake × {report['largest_multiplier']:g}x (the largest multiple), unlevered",
        f"ending equity   {_usd(report['ending_equity_usd'], sign=False)}"
        f" (live, realised: {_usd(report['live']['net_pnl_usd'])},"
        f" {_signed_pct(report['return_pct'])})",
        "",
    ]


def _iso(t: float | None) -> str:
    if t is None:
        return "—"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
