"""The command-line arguments `replay` and `sweep` share: the data, how its rows are read,
the config file and JSON output. One place, so the two commands accept the same input the
same way."""

from __future__ import annotations

import argparse

from bigalpha_tui.cli import SYMBOL_HELP

DATA_HELP = "kline files (CSV, .gz, .zip, folders) or cached months: BTCUSDT:2025-01..2025-06"


def add_data(p: argparse.ArgumentParser, *, metavar: str, help: str = DATA_HELP) -> None:
    """The data to replay: one or more files, folders or cached months."""
    p.add_argument("files", nargs="+", metavar=metavar, help=help)


def add_row_options(p: argparse.ArgumentParser) -> None:
    """How the kline rows are read: bad rows, the symbol, files without taker-buy volume."""
    p.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows (counted)")
    p.add_argument("--symbol", help=SYMBOL_HELP)
    p.add_argument(
        "--allow-no-flow",
        action="store_true",
        help="accept files without taker-buy volume (flow features off: no signals)",
    )


def add_config(p: argparse.ArgumentParser, *, what: str = "config file") -> None:
    """The config file the run starts from."""
    p.add_argument("--config", help=f"{what} (default: the user config folder)")


def add_json(p: argparse.ArgumentParser, *, what: str) -> None:
    """Machine-readable output instead of the text table."""
    p.add_argument("--json", action="store_true", help=f"print {what} as JSON")
