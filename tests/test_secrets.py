"""Secrets: a config file holding a key is for its owner only (as ssh insists for keys), and
a key made of blanks is one clear line, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "bigalpha_tui.cli"]


def write_config(path: Path, text: str, mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_config_holding_a_key_readable_by_others_stops_start_up(
    tmp_path: Path, mode: int
) -> None:
    from bigalpha_tui.core import config as config_mod
    from bigalpha_tui.core.errors import ConfigError

    path = write_config(
        tmp_path / "config.toml", '[source]\ncoinglass_api_key = "sekrit-1234"\n', mode
    )
    with pytest.raises(ConfigError) as err:
        config_mod.load(path)
    message = str(err.value)
    assert f"chmod 600 {path}" in message and "\n" not in message
    assert "sekrit" not in message


def test_a_private_config_with_a_key_or_a_public_one_without_loads(tmp_path: Path) -> None:
    from bigalpha_tui.core import config as config_mod

    keyed = write_config(tmp_path / "a.toml", '[source]\ncoinglass_api_key = "k-1234"\n', 0o600)
    assert config_mod.load(keyed).source.coinglass_api_key == "k-1234"
    plain = write_config(tmp_path / "b.toml", "[source]\nseed = 3\n", 0o644)
    assert config_mod.load(plain).source.seed == 3


def test_the_cli_refuses_a_readable_config_with_a_key_in_one_line(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "config.toml", '[source]\ncoinglass_api_key = "sekrit-1234"\n', 0o644
    )
    done = subprocess.run(
        [
            *CLI,
            "--no-ui",
            "--duration",
            "1m",
            "--config",
            str(path),
            "--data-dir",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert f"chmod 600 {path}" in done.stderr and "sekrit" not in done.stderr


def test_a_blank_coinglass_key_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "COINGLASS_API_KEY": "   "}
    done = subprocess.run(
        [
            *CLI,
            "--no-ui",
            "--source",
            "coinglass",
            "--duration",
            "1m",
            "--config",
            os.devnull,
            "--data-dir",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "COINGLASS_API_KEY" in done.stderr
