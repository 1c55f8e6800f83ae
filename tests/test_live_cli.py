"""The real CLI on a live source whose configured base URL is a fake Binance on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fapi_server import FapiServer, closed_port_url, fapi_server

CLI = (sys.executable, "-m", "bigalpha_tui.cli")


def private_config(tmp: Path, text: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def run_args(tmp: Path, config: Path, symbols: str) -> list[str]:
    source = ["--no-ui", "--source", "binance", "--symbols", symbols]
    return [*CLI, *source, "--data-dir", str(tmp / "data"), "--config", str(config)]


def env_for(tmp: Path) -> dict[str, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "xc"), "XDG_DATA_HOME": str(tmp / "xd")}
    env.pop("BIGALPHA_DATA_DIR", None)
    return env


def test_an_unknown_symbol_stops_start_up_in_one_line_naming_the_close_one(
    tmp_path: Path,
) -> None:
    with fapi_server(FapiServer(time.time, listed=("BTCUSDT", "ETHUSDT"))) as server:
        config = private_config(tmp_path, f'[source]\nbinance_base_url = "{server.url}"\n')
        result = subprocess.run(
            run_args(tmp_path, config, "BTCUSD"),
            capture_output=True,
            text=True,
            env=env_for(tmp_path),
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "BTCUSD" in lines[0] and "did you mean BTCUSDT?" in lines[0]
    assert server.paths == ["/fapi/v1/exchangeInfo"]


def test_a_bad_base_url_in_the_config_is_one_line_exit_2(tmp_path: Path) -> None:
    config = private_config(tmp_path, '[source]\nbinance_base_url = "fapi.binance.com"\n')
    result = subprocess.run(
        run_args(tmp_path, config, "BTCUSDT"),
        capture_output=True,
        text=True,
        env=env_for(tmp_path),
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "source.binance_base_url" in lines[0] and "http:// or https://" in lines[0]


def test_an_unreachable_exchange_is_said_once_and_the_run_goes_on(tmp_path: Path) -> None:
    config = private_config(tmp_path, f'[source]\nbinance_base_url = "{closed_port_url()}"\n')
    proc = subprocess.Popen(
        run_args(tmp_path, config, "BTCUSDT"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(tmp_path),
    )
    try:
        assert proc.stderr is not None
        said = ""
        deadline = time.monotonic() + 30
        while "symbol list" not in said and time.monotonic() < deadline:
            said += proc.stderr.readline()
        assert "going on without checking the symbols" in said
        assert proc.poll() is None  # still running: start-up was not blocked
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert (said + rest).count("symbol list") == 1
    assert "Traceback" not in said + rest
