"""`bigalpha-tui sweep DATA... --set KEY=V1,V2 ...`: every combination, replayed in parallel.

Each combination is one full replay (the same loop and report as `bigalpha-tui replay`) in
its own temporary, non-durable data folder, run on local processes (`--jobs`) or on Ray
(`--ray`, see sweep_run.py); each data file reaches a worker once, not once per replay. The
table is sorted by one metric of the live ledger.

`--walk-forward TRAIN:TEST` splits the data's market time into consecutive windows: on each
training window every combination runs and the best by the sort metric is chosen; only that
one's result on the following test window is reported, with the out-of-sample totals. Every
window's replay starts cold (engines warm up on its first bars, nothing carried over) and
positions still open at a window's end are not counted (shown as open).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from bigalpha_tui.cli import resolve_data_args
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.profit_factor import format_pf
from bigalpha_tui.core.sources.replay import set_file_reader
from bigalpha_tui.data_args import add_config, add_data, add_json, add_row_options
from bigalpha_tui.replay_cmd import _iso, _jsonable, _money, _pct, ledger_figures
from bigalpha_tui.sweep_data import WorkerFiles
from bigalpha_tui.sweep_plan import (
    Fold,
    Variant,
    build_grid,
    parse_moment_ms,
    parse_walk_forward,
    walk_forward_folds,
)
from bigalpha_tui.sweep_run import (
    RAY_LOCAL,
    Runner,
    Task,
    check_ray_address,
    data_files,
    import_ray,
    run_all,
    runner_for,
)

#: The metrics a sweep sorts by, and whether a higher value is better.
METRICS: dict[str, bool] = {
    "profit_factor": True,
    "net_pnl_usd": True,
    "win_rate_pct": True,
    "trades": True,
    "max_drawdown_usd": False,
}

T = TypeVar("T")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui sweep",
        description="Replay every combination of config values, in parallel, and rank them.",
    )
    add_data(p, metavar="DATA")
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2",
        help="config values to try (repeat for more keys; every combination runs)",
    )
    p.add_argument(
        "--sort", choices=tuple(METRICS), default="profit_factor", help="rank by (live ledger)"
    )
    p.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1, help="processes")
    p.add_argument("--from", dest="start", help="first market time used (UTC), e.g. 2026-02-03")
    p.add_argument("--to", dest="end", help="market time the data stops before (UTC)")
    p.add_argument(
        "--walk-forward",
        metavar="TRAIN:TEST",
        help="choose on each training window, report only the next test window (e.g. 10d:3d)",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const=RAY_LOCAL,
        metavar="ADDRESS",
        help="run the replays on Ray: a local Ray started here (--ray), or the cluster at"
        " ADDRESS (--ray=ADDRESS); needs the [cluster] extra",
    )
    add_json(p, what="the results")
    add_config(p, what="base config file")
    add_row_options(p)
    return p


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of processes >= 1, not {text!r}")
    return value


# -- ranking ----------------------------------------------------------------------------


def rank_key(metric: str) -> Callable[[dict[str, Any]], tuple[bool, float]]:
    """Sort key, best first; a row without the metric (no trades) sorts last."""
    higher_better = METRICS[metric]

    def key(row: dict[str, Any]) -> tuple[bool, float]:
        value = row[metric]
        if value is None:
            return True, 0.0
        return False, -float(value) if higher_better else float(value)

    return key


def ranked(rows: Sequence[T], metric: str, row_of: Callable[[T], dict[str, Any]]) -> list[T]:
    """Best first; ties keep grid order."""
    key = rank_key(metric)
    return sorted(rows, key=lambda item: key(row_of(item)))


# -- the command ------------------------------------------------------------------------


def cmd_sweep(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.ray is not None:
        import_ray()  # without Ray: one line now, before any work
        check_ray_address(args.ray)  # an address that does not answer: one line, not minutes
    args.files = resolve_data_args(args.files)
    args.speed = "max"
    grid = build_grid(base_config(args), args.sets)
    try:
        files = data_files(args)
        span_ms = data_span_ms(args)
        if args.walk_forward:
            train_ms, test_ms = parse_walk_forward(args.walk_forward)
            folds = walk_forward_folds(span_ms, train_ms, test_ms)
            with running(args, files, len(grid) * len(folds)) as runner:
                result = walk_forward(runner, args, grid, folds)
            print(_dumps(result) if args.json else render_walk_forward(args, result))
            return 0
        with running(args, files, len(grid)) as runner:
            outcomes = run_all(runner, args, [Task(v, span_ms) for v in grid], "sweep")
    finally:
        set_file_reader(None)
    rows = ranked([o.row for o in outcomes], args.sort, lambda row: row)
    print(_dumps(rows) if args.json else render_sweep(args, rows))
    return 0


@contextmanager
def running(args: argparse.Namespace, files: WorkerFiles, most_tasks: int) -> Iterator[Runner]:
    runner = runner_for(args, files, most_tasks)
    try:
        yield runner
    finally:
        runner.close()


def base_config(args: argparse.Namespace) -> Config:
    from bigalpha_tui import runtime

    files_args = argparse.Namespace(config=args.config, source="replay", speed=args.speed)
    return runtime.effective_config(files_args)


def data_span_ms(args: argparse.Namespace) -> tuple[int, int]:
    """[first bar's open, last bar's close) of the data, cut to --from/--to."""
    from bigalpha_tui.core.clock import SimClock
    from bigalpha_tui.core.sources.replay import ReplaySource

    start = parse_moment_ms(args.start, "--from") if args.start else None
    end = parse_moment_ms(args.end, "--to") if args.end else None
    source = ReplaySource(
        args.files,
        SimClock(0.0),
        skip_bad_rows=args.skip_bad_rows,
        allow_no_flow=args.allow_no_flow,
        symbol=args.symbol,
    )
    if start is None:
        start = source.first_open_ms
    if end is None:
        # the columns a batch replay reads (no Bar per row: a month in a fifth of a second)
        columns = source.batch_input().columns
        end = max((int(c.open_ms[-1]) + c.interval_ms for c in columns if len(c)), default=start)
    if not start < end:
        raise ConfigError("--from must come before --to and before the data ends")
    return start, end


def walk_forward(
    runner: Runner, args: argparse.Namespace, grid: list[Variant], folds: list[Fold]
) -> dict[str, Any]:
    """Choose on each training window, then replay only the chosen variant on its test window."""
    train_tasks = [Task(v, fold.train_ms) for fold in folds for v in grid]
    trained = run_all(runner, args, train_tasks, "walk-forward training")
    chosen: list[tuple[Variant, dict[str, Any]]] = []
    for i in range(len(folds)):
        fold_outcomes = list(zip(grid, trained[i * len(grid) : (i + 1) * len(grid)], strict=True))
        variant, outcome = ranked(fold_outcomes, args.sort, lambda pair: pair[1].row)[0]
        chosen.append((variant, outcome.row))
    test_tasks = [Task(v, fold.test_ms) for fold, (v, _) in zip(folds, chosen, strict=True)]
    tested = run_all(runner, args, test_tasks, "walk-forward testing")
    windows = []
    for fold, (_, train_row), outcome in zip(folds, chosen, tested, strict=True):
        windows.append(
            {
                "train_start": _iso(fold.train_ms[0] / 1000),
                "train_end": _iso(fold.train_ms[1] / 1000),
                "test_start": _iso(fold.test_ms[0] / 1000),
                "test_end": _iso(fold.test_ms[1] / 1000),
                "train_" + args.sort: train_row[args.sort],
                **outcome.row,
            }
        )
    all_trades = [t for outcome in tested for t in outcome.live_trades]
    return {
        "walk_forward": args.walk_forward,
        "sort": args.sort,
        "combinations": len(grid),
        "windows": windows,
        "out_of_sample": ledger_figures(all_trades),
    }


# -- output -----------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), indent=2, allow_nan=False)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"


def _figures(row: dict[str, Any]) -> str:
    return (
        f"{row['trades']:>6} {_pct(row['win_rate_pct']):>9} {_money(row['net_pnl_usd']):>11}"
        f" {format_pf(row['profit_factor']):>6} {row['max_drawdown_usd']:>9.2f}"
    )


FIGURES_HEAD = f"{'trades':>6} {'win rate':>9} {'net P&L':>11} {'PF':>6} {'max DD':>9}"


def render_sweep(args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    order = "highest" if METRICS[args.sort] else "lowest"
    lines = [
        f"sweep: {len(rows)} combinations over {len(args.files)} files,"
        f" sorted by {args.sort} ({order} first), live ledger",
        "",
        f"{'#':>3} {FIGURES_HEAD}  params",
    ]
    for i, row in enumerate(rows, start=1):
        lines.append(f"{i:>3} {_figures(row)}  {_params(row['params'])}")
    return "\n".join(lines)


def render_walk_forward(args: argparse.Namespace, result: dict[str, Any]) -> str:
    metric = args.sort
    lines = [
        f"walk-forward {result['walk_forward']}: {result['combinations']} combinations, chosen"
        f" by {metric} on each training window; out-of-sample test windows only (UTC)",
        "",
        f"{'test window':<34} {'train ' + _short(metric):>9} {FIGURES_HEAD}  chosen params",
    ]
    for w in result["windows"]:
        trained = w["train_" + metric]
        shown = format_pf(trained) if metric == "profit_factor" else _number(trained)
        lines.append(
            f"{w['test_start']} .. {w['test_end'][5:]:<14} {shown:>9} {_figures(w)}"
            f"  {_params(w['params'])}"
        )
    total = result["out_of_sample"]
    lines += ["", f"{'out of sample, all test windows':<44} {_figures(total)}"]
    return "\n".join(lines)


def _short(metric: str) -> str:
    return {"profit_factor": "PF", "net_pnl_usd": "P&L", "win_rate_pct": "win %"}.get(
        metric, metric.split("_")[0]
    )


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}" if math.isfinite(value) else str(value)
