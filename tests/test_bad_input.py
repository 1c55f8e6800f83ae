"""Bad input: one clear line on stderr, exit status 2, never a traceback.

Each case runs the real CLI in a subprocess, as a careless user (or a hostile file) would.
"""

from __future__ import annotations

import dataclasses
import errno
import gzip
import itertools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import get_type_hints

import pytest

from bigalpha_tui.core import config as cfg
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import ENGINE_STATE, Store

CLI = (sys.executable, "-m", "bigalpha_tui.cli")
RUN = ("--no-ui", "--speed", "max", "--duration", "2h")


def env_for(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp / "xdg-config"),
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
    }
    env.pop("BIGALPHA_DATA_DIR", None)
    return env


def cli(*args: str, tmp: Path, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(tmp),
        timeout=120,
    )


def config_file(tmp: Path, text: str) -> str:
    path = tmp / "config.toml"
    path.write_text(text)
    return str(path)


def a_file(tmp: Path) -> str:
    path = tmp / "a-file"
    path.write_text("not a folder\n")
    return str(path)


#: (id, command line with {tmp}, {config:TOML}, {file} placeholders, words the line must hold)
BAD_INPUTS: list[tuple[str, tuple[str, ...], str]] = [
    (
        "stake-1e308",
        (*RUN, "--config", "{config:[sizing]\nbase_stake_usd = 1e308\n}"),
        "sizing.base_stake_usd = 1e+308 is not valid; it accepts a number from 0 to 1e+09",
    ),
    (
        "interval-1e308",
        (*RUN, "--config", "{config:[learning]\ninterval_h = 1e308\n}"),
        "learning.interval_h = 1e+308",
    ),
    (
        "checkpoint-1e308",
        (*RUN, "--config", "{config:[store]\ncheckpoint_every_min = 1e308\n}"),
        "store.checkpoint_every_min = 1e+308",
    ),
    (
        "no-symbols",
        (*RUN, "--config", "{config:[source]\nsymbols = []\n}"),
        "source.symbols = [] is not valid",
    ),
    ("speed-huge", ("--no-ui", "--speed", "1e300"), "from 0.01 to 1e+06"),
    ("speed-tiny", ("--no-ui", "--speed", "1e-300"), "source.speed = '1e-300'"),
    ("speed-nan", ("--no-ui", "--speed", "nan"), "source.speed = 'nan'"),
    ("data-dir-a-file", (*RUN, "--data-dir", "{file}"), "is not a folder"),
    ("data-dir-proc", (*RUN, "--data-dir", "/proc/self"), "/proc/self is a symbolic link"),
    ("status-data-dir-a-file", ("status", "--data-dir", "{file}"), "is not a folder"),
    (
        "config-init-nowhere",
        ("config", "--init", "--config", "/proc/nope/x.toml"),
        "cannot write /proc/nope/x.toml",
    ),
    (
        "config-init-under-a-file",
        ("config", "--init", "--config", "{file}/x.toml"),
        "cannot write",
    ),
    ("ctl-timeout-negative", ("ctl", "--timeout", "-1", "pause"), "--timeout accepts"),
    ("ctl-timeout-nan", ("ctl", "--timeout", "nan", "pause"), "--timeout accepts"),
    ("ctl-timeout-zero", ("ctl", "--timeout", "0", "pause"), "--timeout accepts"),
    ("config-missing", (*RUN, "--config", "{tmp}/no-such.toml"), "no-such.toml does not exist"),
    ("show-config-missing", ("config", "--show", "--config", "{tmp}/nope.toml"), "not exist"),
    (
        "sim-unknown-symbol",
        (*RUN, "--symbols", "BTCUSD"),
        "the simulator has no market BTCUSD; it knows BTCUSDT, ETHUSDT",
    ),
]


def expand(arg: str, tmp: Path) -> str:
    if arg.startswith("{config:"):
        return config_file(tmp, arg[len("{config:") : -1])
    return arg.replace("{tmp}", str(tmp)).replace("{file}", a_file(tmp))


@pytest.mark.parametrize(
    ("args", "needle"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    argv = [expand(a, tmp_path) for a in args]
    if "--data-dir" not in argv and argv[0] not in ("config",):
        argv += ["--data-dir", str(tmp_path / "store")]
    result = cli(*argv, tmp=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert needle in lines[0]


def test_every_number_in_the_config_has_a_range_named_in_the_message() -> None:
    for section in cfg.SECTIONS:
        hints = get_type_hints(type(getattr(cfg.Config(), section)))
        for field in dataclasses.fields(getattr(cfg.Config(), section)):
            kind = hints[field.name]
            if kind not in (int, float, tuple[float, ...]):
                continue
            huge: object = 10**300 if kind is int else 1e300
            value = [huge] * 4 if kind == tuple[float, ...] else huge
            with pytest.raises(ConfigError) as err:
                cfg.from_dict({section: {field.name: value}})
            message = str(err.value)
            assert f"{section}.{field.name} = " in message and " from " in message, message


def test_a_number_key_cannot_be_declared_without_both_bounds() -> None:
    with pytest.raises(TypeError, match="min and max"):
        cfg._opt(1.0, "an unbounded number", min=0.0)


def test_the_default_config_file_may_be_absent(tmp_path: Path) -> None:
    result = cli("config", "--show", tmp=tmp_path)
    assert result.returncode == 0, result.stderr


# -- full disk --------------------------------------------------------------------------

FULL_DISK_AT = """
import errno, os, sys
from bigalpha_tui.core import store
real_fsync = os.fsync
def full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
if sys.argv[1] == "lock":
    os.fsync = full
else:  # the lock is taken; every write after it meets a full disk
    real_acquire = store.StoreLock.acquire
    def acquire(self):
        real_acquire(self)
        os.fsync = full
    store.StoreLock.acquire = acquire
from bigalpha_tui.cli import main
main(sys.argv[2:])
"""


def full_disk_run(tmp: Path, when: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", FULL_DISK_AT, when, *args],
        capture_output=True,
        text=True,
        env=env_for(tmp),
        timeout=120,
    )


def test_a_full_disk_at_the_first_start_is_one_line(tmp_path: Path) -> None:
    result = full_disk_run(tmp_path, "lock", *RUN, "--data-dir", str(tmp_path / "store"))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr


def test_a_run_whose_last_save_failed_exits_non_zero_and_says_it_once(tmp_path: Path) -> None:
    result = full_disk_run(tmp_path, "run", *RUN, "--data-dir", str(tmp_path / "store"))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert 1 <= len(errors) <= 5, result.stderr  # once, then counted (10, 100 ...)
    assert "repeated" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("bigalpha-tui: the last save failed")


def test_repeated_write_failures_are_logged_once_then_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store(tmp_path)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with caplog.at_level(logging.ERROR):
        monkeypatch.setattr(os, "fsync", full)
        for _ in range(1900):
            assert not store.write_json(ENGINE_STATE, {"x": 1})
        monkeypatch.undo()
        assert store.write_json(ENGINE_STATE, {"x": 1})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 5, messages  # the first, at 10, 100 and 1000, the total
    assert "disk full" in messages[0]
    assert messages[-1].endswith("repeated 1899 times in all")


# -- broken pipes -----------------------------------------------------------------------


def run_into_a_closed_pipe(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """stdout is a pipe nobody reads any more (`| head -1` has exited)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return cli(*args, tmp=tmp, stdout=write_end)
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [("status",), ("status", "--json"), ("config", "--path"), ("config", "--show"), RUN],
    ids=["status", "status-json", "config-path", "config-show", "headless"],
)
def test_a_reader_that_went_away_ends_the_command_quietly(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    argv = [*args, "--data-dir", str(tmp_path / "store")] if args[0] != "config" else list(args)
    result = run_into_a_closed_pipe(tmp_path, *argv)
    assert result.stderr == ""
    assert result.returncode == 0


# -- replay with a duration -------------------------------------------------------------

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


def write_klines(path: Path, minutes: int) -> None:
    lines = [HEADER]
    stream = simulate_minutes(("BTCUSDT",), 7, DEFAULT_START_MS, SimParams())
    for bar in itertools.chain.from_iterable(itertools.islice(stream, minutes)):
        lines.append(
            f"{bar.open_ms},{bar.open},{bar.high},{bar.low},{bar.close},{bar.volume},"
            f"{bar.close_ms - 1},{bar.volume * bar.close},100,{bar.taker_buy_volume},"
            f"{bar.taker_buy_volume * bar.close},0"
        )
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_a_replay_duration_counts_from_the_files_first_bar(tmp_path: Path) -> None:
    klines = tmp_path / "BTCUSDT-1m-2026-01.csv.gz"
    write_klines(klines, minutes=300)
    store = tmp_path / "store"
    result = cli(
        "--no-ui",
        "--speed",
        "max",
        "--duration",
        "1h",
        "--data-dir",
        str(store),
        str(klines),
        tmp=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    state = json.loads((store / ENGINE_STATE).read_text())
    assert state["last_bar_ms"] == DEFAULT_START_MS + 59 * 60_000  # an hour: 60 bars
