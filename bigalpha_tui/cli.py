"""The `bigalpha-tui` command.

    bigalpha-tui [run options]          the cockpit (or --no-ui for headless); attaches to
                                        the bot already running on the data folder
    bigalpha-tui attach [--read-only]   the cockpit on the bot running on the data folder
    bigalpha-tui status [--json]        what the feature store holds
    bigalpha-tui config --init|--show|--path
    bigalpha-tui replay FILE...         the whole loop over kline files, then a report
    bigalpha-tui sweep DATA... --set K=V1,V2   every combination replayed in parallel, ranked
    bigalpha-tui data fetch SYMBOL...   monthly klines from Binance's archive into the cache
    bigalpha-tui exchange check|roundtrip|flatten   signed Binance USD-M requests by hand

Errors a user can act on print one line and exit with status 2, never a traceback.
Exit status: 0 done (also when the reader of the output went away: `| head`), 1 a run whose
last save failed (the store holds an earlier state; the reason is on stderr), 2 bad input or
cannot start, 130 interrupted before the run began. `ctl` and `data` document their own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from bigalpha_tui import locations
from bigalpha_tui.core.errors import BigAlphaError, ConfigError, sole_error

EXIT_USAGE = 2
SUBCOMMANDS = ("status", "config", "replay", "sweep", "data", "ctl", "attach", "exchange")
SYMBOL_HELP = "the symbol of every file, when the file names do not tell it (mydata.csv)"


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help="sim (default), replay, binance or coinglass")
    p.add_argument(
        "--speed",
        help="sim/replay speed: market seconds per second (60 = a minute a second), or 'max';"
        " default: live pace (1)",
    )
    p.add_argument("--symbols", help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--seed", type=int, help="simulator seed")
    _add_store_options(p)
    p.add_argument("--duration", help="stop after this much market time (e.g. 6h, 1d)")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="headless event lines as text (default) or JSON",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="watch without steering: no commands, nothing written",
    )
    p.add_argument(
        "--confirm-live",
        action="store_true",
        help="headless: confirm execution.mode = 'live' (real orders, real money)",
    )
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="kline files (CSV, .gz or .zip) or cached months (BTCUSDT:2025-01..2025-06)"
        " to replay; implies --source replay",
    )
    p.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="replay: skip malformed rows (counted) instead of stopping",
    )
    p.add_argument("--symbol", help="replay: " + SYMBOL_HELP)
    p.add_argument(
        "--allow-no-flow",
        action="store_true",
        help="replay: accept data without taker-buy volume, flow features off",
    )


def _add_store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help=f"feature store folder (env {locations.DATA_DIR_ENV})")
    p.add_argument("--config", help="config file (default: the user config folder)")


def run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui",
        description="Terminal cockpit for an institutional trend-following futures paper bot.",
        epilog="Other commands: status, config, replay, sweep, data, ctl, attach, exchange"
        " (each with --help).",
    )
    p.add_argument("--no-ui", action="store_true", help="run headless, one line per event")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    _add_run_options(p)
    return p


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bigalpha-tui")
    except PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> None:
    args_list = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = dispatch(args_list)
        sys.stdout.flush()
    except BrokenPipeError:
        code = stdout_went_away()
    except BigAlphaError as exc:
        print(f"bigalpha-tui: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    except BaseExceptionGroup as group:
        # a clear error raised inside the core's task group (a bad row deep in a file)
        error = sole_error(group)
        if not isinstance(error, BigAlphaError):
            raise
        print(f"bigalpha-tui: {error}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)


def stdout_went_away() -> int:
    """`bigalpha-tui status | head -1`: the reader has what it wanted, which is no error.

    Later writes (and Python's flush at exit) go to /dev/null instead of raising again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        command, rest = argv[0], argv[1:]
        if command == "status":
            return cmd_status(rest)
        if command == "config":
            return cmd_config(rest)
        if command == "attach":
            from bigalpha_tui.attach import cmd_attach

            return cmd_attach(rest)
        if command == "replay":
            from bigalpha_tui.replay_cmd import cmd_replay

            return cmd_replay(rest)
        if command == "sweep":
            from bigalpha_tui.sweep_cmd import cmd_sweep

            return cmd_sweep(rest)
        if command == "data":
            from bigalpha_tui.data_cmd import cmd_data

            return cmd_data(rest)
        if command == "exchange":
            from bigalpha_tui.exchange_cmd import cmd_exchange

            return cmd_exchange(rest)
        from bigalpha_tui.ctl import cmd_ctl

        return cmd_ctl(rest)
    args = run_parser().parse_args(argv)
    args.files = resolve_data_args(args.files)
    for name in args.files:
        if not os.path.exists(name) and os.sep not in name and "." not in name:
            # `bigalpha-tui stauts`: a mistyped command, not a kline file
            raise ConfigError(
                f"no command or file named {name!r}; commands: {', '.join(SUBCOMMANDS)}"
                " (each with --help), or give kline files to replay"
            )
    if args.no_ui:
        check_execution(args, headless=True)
        return cmd_headless(args)
    if not args.files:
        from bigalpha_tui.attach import bot_answers, run_attach

        data_dir = locations.data_dir(args.data_dir)
        if bot_answers(data_dir):
            # the folder's bot runs already (its lock would refuse a second one): show it
            notice = f"a bot already runs on {data_dir}: attaching to it; run options unused"
            return run_attach(args, notice)
    check_execution(args, headless=False)
    from bigalpha_tui.app import run_app

    return run_app(args)


def check_execution(args: argparse.Namespace, *, headless: bool) -> None:
    """Testnet/live need keys, live also --confirm-live (docs/execution.md); paper, and a
    read-only watch that sends nothing, start as before."""
    if args.read_only and not args.confirm_live:
        return
    from bigalpha_tui import runtime
    from bigalpha_tui.core.execution import check_start, refuse_unrouted

    config = runtime.effective_config(args)
    check_start(config.execution, confirm_live=args.confirm_live, headless=headless)
    refuse_unrouted(config)


def resolve_data_args(items: list[str]) -> list[str]:
    """Kline file arguments with cached months (`BTCUSDT:2025-01..2025-06`) as their zips."""
    from bigalpha_tui.core.archive import resolve_data_args as resolve

    return resolve(items, locations.cache_dir())


def cmd_headless(args: argparse.Namespace) -> int:
    import anyio

    from bigalpha_tui import runtime
    from bigalpha_tui.headless import run_headless

    duration = runtime.parse_duration(args.duration) if args.duration else None
    rt = runtime.build(args, read_only=args.read_only)
    code = anyio.run(run_headless, rt.core, duration, sys.stdout, args.log_format, False)
    # state is saved: a late second signal must not kill the exit itself (at interpreter
    # shutdown Python puts its own handlers back to the default, but leaves "ignore" alone)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


def cmd_status(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui status", description="Print what the feature store holds."
    )
    # the store only: status reads files, so it takes no config (a bad one would go unread)
    p.add_argument("--data-dir", help=f"feature store folder (env {locations.DATA_DIR_ENV})")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    from bigalpha_tui.status import read_status, render_status

    status = read_status(locations.checked_data_dir(args.data_dir))
    if args.json:
        print(json.dumps(status, indent=2, allow_nan=False, default=str))
    else:
        print(render_status(status))
    return 0


def cmd_config(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="bigalpha-tui config", description="Write, show or locate the configuration."
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--init",
        action="store_true",
        help="write a commented default config file (never overwrites)",
    )
    group.add_argument("--show", action="store_true", help="print the effective values")
    group.add_argument("--path", action="store_true", help="print every path in use")
    _add_store_options(p)
    args = p.parse_args(argv)
    from bigalpha_tui.core import config as config_mod

    path = locations.config_path(args.config)
    if args.init:
        if path.exists() or path.is_symlink():
            print(f"bigalpha-tui: {path} already exists; not overwritten", file=sys.stderr)
            return EXIT_USAGE
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # owner-only from the first byte (it may come to hold a key); never through a link
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with os.fdopen(os.open(path, flags, 0o600), "w", encoding="utf-8") as fh:
                fh.write(config_mod.commented_toml())
        except OSError as exc:
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"wrote {path}")
        return 0
    if args.show:
        import tomli_w

        from bigalpha_tui import runtime

        config = runtime.effective_config(args)
        print(tomli_w.dumps(config_mod.to_dict(config, mask_secrets=True)), end="")
        return 0
    data = locations.data_dir(args.data_dir)
    absent = " (absent: a run with it stops)" if args.config else " (absent: defaults)"
    print(f"config file : {path}{'' if path.exists() else absent}")
    print(f"data folder : {data}")
    print(f"cache folder: {locations.cache_dir()} (data fetch)")
    from bigalpha_tui.core import store as store_mod

    for name in store_mod.JSON_FILES + store_mod.JSONL_FILES:
        print(f"  {name:<28} {data / name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
