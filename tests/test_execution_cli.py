"""Execution modes through the real CLI: nothing signed starts unless asked for twice, every
refusal is one line with exit status 2, keys are never printed; `exchange check|roundtrip|
flatten` against the fake USD-M exchange on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fake_usdm_exchange import API_KEY, API_SECRET, FakeUsdmExchange, usdm_exchange

CLI = (sys.executable, "-m", "bigalpha_tui.cli")
RUN = ("--no-ui", "--speed", "max", "--duration", "2h")


def env_for(tmp: Path, keys: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp / "xdg-config"),
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
    }
    for name in ("BIGALPHA_DATA_DIR", "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        env.pop(name, None)
    if keys:
        env["BINANCE_API_KEY"] = API_KEY
        env["BINANCE_API_SECRET"] = API_SECRET
    return env


def config(tmp: Path, mode: str, url: str = "", extra: str = "") -> str:
    path = tmp / "config.toml"
    lines = ["[execution]", f'mode = "{mode}"']
    if url:
        lines += [f'testnet_base_url = "{url}"', f'live_base_url = "{url}"']
    path.write_text("\n".join(lines) + "\n" + extra)
    path.chmod(0o600)
    return str(path)


def cli(tmp: Path, *args: str, keys: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=env_for(tmp, keys),
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0]
    assert API_KEY not in done.stderr + done.stdout and API_SECRET not in done.stderr + done.stdout
    return lines[0]


@pytest.mark.parametrize("mode", ["testnet", "live"])
def test_testnet_or_live_without_keys_stops_in_one_line(tmp_path: Path, mode: str) -> None:
    done = cli(
        tmp_path,
        *RUN,
        "--config",
        config(tmp_path, mode),
        "--data-dir",
        str(tmp_path / "s"),
        keys=False,
    )
    one_line(done, f"execution.mode '{mode}' needs API keys", "BINANCE_API_KEY")
    assert not (tmp_path / "s" / "positions_futures.json").exists()  # nothing started


def test_live_without_confirm_live_stops_in_one_line(tmp_path: Path) -> None:
    done = cli(tmp_path, *RUN, "--config", config(tmp_path, "live"), "--data-dir", str(tmp_path))
    one_line(done, "--confirm-live", "real money")


def test_confirm_live_on_a_paper_config_is_refused(tmp_path: Path) -> None:
    done = cli(
        tmp_path, *RUN, "--config", config(tmp_path, "paper"), "--data-dir", str(tmp_path / "s"),
        "--confirm-live",
    )  # fmt: skip
    one_line(done, "--confirm-live", "'paper'")


def test_a_keyed_confirmed_live_run_is_refused_and_says_why(tmp_path: Path) -> None:
    done = cli(
        tmp_path, *RUN, "--config", config(tmp_path, "live"), "--data-dir", str(tmp_path / "s"),
        "--confirm-live",
    )  # fmt: skip
    line = one_line(done, "stays refused", "fake exchange", "without its stop")
    assert "docs/execution.md" in line and "nothing was sent" in line
    assert not (tmp_path / "s" / "positions_futures.json").exists()


def test_a_live_cockpit_is_refused_before_it_asks_for_the_word(tmp_path: Path) -> None:
    """No typed word can start live in this build: the cockpit says why before it opens."""
    args = ("--config", config(tmp_path, "live"), "--data-dir", str(tmp_path / "s"))
    line = one_line(cli(tmp_path, *args), "stays refused", "fake exchange")
    assert "typed confirmation" not in line
    assert not (tmp_path / "s" / "positions_futures.json").exists()
    # without keys it stops at the keys first, as testnet does
    one_line(cli(tmp_path, *args, keys=False), "needs API keys")


@pytest.mark.parametrize("source", ["sim", "replay"])
def test_testnet_on_the_simulator_or_a_replay_is_refused(tmp_path: Path, source: str) -> None:
    """Orders on the exchange's market from bars that are not the exchange's: never."""
    done = cli(
        tmp_path, *RUN, "--config", config(tmp_path, "testnet"), "--data-dir", str(tmp_path / "s"),
        "--source", source,
    )  # fmt: skip
    one_line(done, "source.name to binance or coinglass", f"source {source!r} never sends")


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(f'api_key = "{API_KEY}"\napi_secret = "{API_SECRET}"\n')
    keys.chmod(0o644)
    extra = f'key_file = "{keys}"\n'
    path = tmp_path / "config.toml"
    path.write_text(f'[execution]\nmode = "testnet"\n{extra}')
    done = cli(tmp_path, *RUN, "--config", str(path), "--data-dir", str(tmp_path / "s"), keys=False)
    one_line(done, f"chmod 600 {keys}")
    keys.chmod(0o600)
    done = cli(tmp_path, *RUN, "--config", str(path), "--data-dir", str(tmp_path / "s"), keys=False)
    one_line(done, "set source.name to binance")  # the keys were read


def test_a_blank_key_is_one_clear_line(tmp_path: Path) -> None:
    env = {**env_for(tmp_path, True), "BINANCE_API_SECRET": "   "}
    done = subprocess.run(
        [*CLI, *RUN, "--config", config(tmp_path, "testnet"), "--data-dir", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    one_line(done, "only blanks")


# -- `bigalpha-tui exchange` against the fake exchange ------------------------------------


@pytest.fixture
def exchange() -> Iterator[FakeUsdmExchange]:
    with usdm_exchange(FakeUsdmExchange(now=time.time)) as ex:
        yield ex


def test_exchange_check_shows_the_account_and_never_the_keys(
    tmp_path: Path, exchange: FakeUsdmExchange
) -> None:
    exchange.positions["BTCUSDT"] = Decimal("0.004")
    exchange.entry_prices["BTCUSDT"] = Decimal("50000")
    done = cli(tmp_path, "exchange", "check", "--config", config(tmp_path, "testnet", exchange.url))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "position: BTCUSDT +0.004 @ 50000" in out and "stops: none" in out
    assert "API keys from env" in out
    assert API_KEY not in out + done.stderr and API_SECRET not in out + done.stderr


def test_exchange_roundtrip_opens_guards_and_closes_on_the_testnet(
    tmp_path: Path, exchange: FakeUsdmExchange
) -> None:
    path = config(tmp_path, "testnet", exchange.url)
    done = cli(tmp_path, "exchange", "roundtrip", "btcusdt", "--usd", "200", "--config", path)
    assert done.returncode == 0, done.stderr
    assert "entry: LONG 0.004 @ 50000" in done.stdout
    assert "stop: resting on the exchange" in done.stdout and "stop: cancelled" in done.stdout
    assert exchange.position("BTCUSDT") == 0.0 and exchange.open_algos() == []
    assert exchange.orders_sent() == 2 and exchange.orders_sent("/fapi/v1/algoOrder") == 1


def test_exchange_roundtrip_is_for_the_testnet_only(
    tmp_path: Path, exchange: FakeUsdmExchange
) -> None:
    path = config(tmp_path, "live", exchange.url)
    one_line(cli(tmp_path, "exchange", "roundtrip", "BTCUSDT", "--config", path), "testnet only")
    assert exchange.log == []


def test_exchange_flatten_needs_yes_and_then_closes_everything(
    tmp_path: Path, exchange: FakeUsdmExchange
) -> None:
    path = config(tmp_path, "testnet", exchange.url)
    assert cli(tmp_path, "exchange", "roundtrip", "BTCUSDT", "--config", path).returncode == 0
    exchange.positions["BTCUSDT"] = Decimal("-0.006")  # something open, as if left behind
    exchange.entry_prices["BTCUSDT"] = Decimal("50000")
    one_line(cli(tmp_path, "exchange", "flatten", "--config", path), "--yes")
    assert exchange.position("BTCUSDT") == pytest.approx(-0.006)
    done = cli(tmp_path, "exchange", "flatten", "--yes", "--config", path)
    assert done.returncode == 0, done.stderr
    assert "BTCUSDT: closed SHORT 0.006 @ 50000" in done.stdout
    assert exchange.position("BTCUSDT") == 0.0


def test_exchange_flatten_says_what_is_left_exits_1_and_a_rerun_closes_the_rest(
    tmp_path: Path, exchange: FakeUsdmExchange
) -> None:
    path = config(tmp_path, "testnet", exchange.url, "send_attempts = 1\n")
    with exchange.lock:
        exchange.positions["BTCUSDT"] = Decimal("-0.006")
        exchange.entry_prices["BTCUSDT"] = Decimal("50000")
    exchange.inject("POST /fapi/v1/order", "partial-expired")  # its one close fills half
    done = cli(tmp_path, "exchange", "flatten", "--yes", "--config", path)
    assert done.returncode == 1, done.stderr
    assert "BTCUSDT: -0.003 STILL OPEN after 1 close(s); its stops stay" in done.stdout
    assert exchange.position("BTCUSDT") == pytest.approx(-0.003)
    again = cli(tmp_path, "exchange", "flatten", "--yes", "--config", path)  # the same minute
    assert again.returncode == 0, again.stderr
    assert "BTCUSDT: closed SHORT 0.003 @ 50000" in again.stdout
    assert exchange.position("BTCUSDT") == 0.0


def test_exchange_in_paper_mode_sends_nothing(tmp_path: Path, exchange: FakeUsdmExchange) -> None:
    path = config(tmp_path, "paper", exchange.url)
    one_line(cli(tmp_path, "exchange", "check", "--config", path), "'paper'")
    assert exchange.log == []


# -- a headless testnet run: Binance bars from a fake, orders to the fake exchange ---------


def test_a_headless_testnet_run_reconciles_halts_on_a_difference_and_takes_ctl(
    tmp_path: Path, exchange: FakeUsdmExchange
) -> None:
    from fapi_server import FapiServer, fapi_server

    exchange.positions["ETHUSDT"] = Decimal("0.5")  # the book of a new folder knows nothing
    exchange.prices["ETHUSDT"] = 3000.0
    data = tmp_path / "s"
    with fapi_server(FapiServer(time.time, listed=("BTCUSDT", "ETHUSDT"))) as bars:
        extra = f'[source]\nname = "binance"\nbinance_base_url = "{bars.url}"\n'
        path = config(tmp_path, "testnet", exchange.url, extra)
        proc = subprocess.Popen(
            [*CLI, "--no-ui", "--symbols", "BTCUSDT", "--config", path, "--data-dir", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(tmp_path, True),
        )
        try:
            assert proc.stdout is not None
            said = ""
            deadline = time.monotonic() + 60
            while "mismatch" not in said and time.monotonic() < deadline:
                said += proc.stdout.readline()
            assert f"orders go to {exchange.url}" in said
            assert "ETHUSDT: exchange holds +0.5, the book nothing" in said
            status = cli(tmp_path, "status", "--data-dir", str(data))
            assert "ENTRIES HALTED: ETHUSDT" in status.stdout
            ack = cli(tmp_path, "ctl", "--data-dir", str(data), "ack-mismatch")
            assert ack.returncode == 0 and "acknowledged: ETHUSDT" in ack.stdout
            flat = cli(tmp_path, "ctl", "--data-dir", str(data), "flatten", "--yes")
            assert flat.returncode == 0 and "flatten: entries paused" in flat.stdout
            deadline = time.monotonic() + 30
            while exchange.position("ETHUSDT") != 0.0 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert exchange.position("ETHUSDT") == 0.0  # flattened by the running bot
        finally:
            proc.send_signal(signal.SIGTERM)
            _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Traceback" not in rest and API_SECRET not in said + rest
