"""Config: defaults from DESIGN.md, one clear line for every bad key or value."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bigalpha_tui.core import config as cfg
from bigalpha_tui.core.errors import ConfigError


def test_defaults_are_the_design_numbers() -> None:
    c = cfg.Config()
    assert c.flow.window_bars == 60 and c.flow.whale_volume_multiple == 3.0
    assert c.hurst.window == 100 and c.hurst.confirm_bars == 5
    assert (c.gates.golden_hour_start, c.gates.golden_hour_end) == ("09:00", "16:00")
    assert c.gates.max_positions == 5 and c.gates.fee_bps == 5.0
    assert c.sizing.ultra == 2.5 and c.sizing.probation_cap == 0.2
    assert c.exits.tiers_pct == (0.5, 1.0, 1.5, 2.0) and c.exits.force_hold_min == 45.0
    assert c.learning.shadow_edge_ratio == 1.15 and c.learning.buffer_cap_bps == 30.0
    assert c.source.min_request_interval_s == 2.5


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"flow": {"windw": 3}}, "unknown key flow.windw"),
        ({"flwo": {}}, "unknown section [flwo]"),
        ({"flow": {"window_bars": "60"}}, "flow.window_bars = '60'"),
        ({"flow": {"window_bars": 1}}, "an integer from 2 to 10080"),
        ({"flow": {"window_bars": True}}, "an integer"),
        ({"hurst": {"method": "dfa"}}, "one of 'whittle', 'rs_al'"),
        ({"gates": {"golden_hour_start": "9am"}}, "gates.golden_hour_start accepts a time"),
        ({"exits": {"tiers_pct": [2.0, 1.0, 1.5, 0.5]}}, "exits.tiers_pct"),
        ({"source": {"speed": "fast"}}, "source.speed"),
        ({"source": {"min_request_interval_s": 1.0}}, "a number from 2.5 to 3600"),
        ({"hurst": {"noise_below": 0.6, "trend_above": 0.5}}, "hurst.noise_below"),
        # in range, but the Hurst tracker refuses them (a sweep died with a traceback)
        ({"hurst": {"noise_below": 0.0}}, "hurst.noise_below accepts a number above 0"),
        ({"hurst": {"trend_above": 1.0}}, "hurst.trend_above accepts a number from 0 to below"),
        ({"source": {"binance_base_url": "ftp://fapi.binance.com"}}, "binance_base_url = 'ftp:"),
        ({"source": {"binance_base_url": "https://"}}, "an http:// or https:// URL"),
        ({"source": {"binance_base_url": "fapi.binance.com"}}, "binance_base_url = 'fapi"),
        ({"source": {"binance_base_url": "http://127.0.0.1:99999"}}, "binance_base_url = 'http:"),
        ({"source": {"binance_base_url": "https://fapi.binance.com /x"}}, "no spaces"),
        ({"source": {"binance_base_url": "https://a\nb"}}, "binance_base_url = 'https://a\\nb'"),
        ({"source": {"binance_base_url": 8080}}, "binance_base_url = 8080"),
        ({"source": {"coinglass_base_url": "https://u:pw@proxy.example"}}, "user:password"),
        (
            {"source": {"coinglass_base_url": "https://h.example/?a=1"}},
            "coinglass_base_url = 'https:",
        ),
    ],
)
def test_bad_config_names_the_key_and_what_it_accepts(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        cfg.from_dict(doc)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_a_password_in_a_bad_url_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as err:
        cfg.from_dict({"source": {"binance_base_url": "https://me:hunter2@proxy.example"}})
    assert "hunter2" not in str(err.value) and "user:password" in str(err.value)


def test_live_hosts_default_to_the_exchanges_and_accept_a_proxy_or_testnet() -> None:
    assert cfg.Config().source.binance_base_url == "https://fapi.binance.com"
    assert cfg.Config().source.coinglass_base_url == "https://open-api-v4.coinglass.com"
    c = cfg.from_dict(
        {
            "source": {
                "binance_base_url": "http://127.0.0.1:8080/binance/",
                "coinglass_base_url": "https://proxy.example:8443",
            }
        }
    )
    assert c.source.binance_base_url == "http://127.0.0.1:8080/binance/"
    assert c.source.coinglass_base_url == "https://proxy.example:8443"


def test_a_valid_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[gates]\nmax_positions = 3\n[source]\nsymbols = ["BTCUSDT"]\n')
    c = cfg.load(path)
    assert c.gates.max_positions == 3
    assert c.source.symbols == ("BTCUSDT",)
    assert c.gates.fee_bps == 5.0


def test_init_file_parses_back_to_the_defaults() -> None:
    text = cfg.commented_toml()
    parsed = tomllib.loads(text)  # every key is commented: only empty tables remain
    assert cfg.from_dict(parsed) == cfg.Config()
    assert "# whale" in text.lower() or "whale" in text


def test_secrets_are_masked_in_show() -> None:
    c = cfg.replace(cfg.Config(), "source", coinglass_api_key="abcdef1234567890")
    shown = cfg.to_dict(c)["source"]["coinglass_api_key"]
    assert shown == "****7890"
    assert "abcdef" not in str(cfg.to_dict(c))


def run_cli(*args: str, env_home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(env_home),
        "PATH": "/usr/bin:/bin",
        "XDG_CONFIG_HOME": str(env_home / "c"),
        "XDG_DATA_HOME": str(env_home / "d"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bigalpha_tui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gates]\nmax_positions = -1\n")
    result = run_cli(
        "--no-ui", "--config", str(bad), "--data-dir", str(tmp_path / "d"), env_home=tmp_path
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "gates.max_positions" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_config_init_writes_a_private_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "config.toml"
    first = run_cli("config", "--init", "--config", str(target), env_home=tmp_path)
    assert first.returncode == 0 and target.exists()
    assert target.stat().st_mode & 0o077 == 0
    second = run_cli("config", "--init", "--config", str(target), env_home=tmp_path)
    assert second.returncode == 2 and "not overwritten" in second.stderr


def test_cli_config_init_never_writes_through_a_dangling_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"  # absent: a link to it looks like no file at all
    target = tmp_path / "config.toml"
    target.symlink_to(victim)
    done = run_cli("config", "--init", "--config", str(target), env_home=tmp_path)
    assert done.returncode == 2 and "not overwritten" in done.stderr
    assert not victim.exists()


def test_cli_config_path_lists_every_store_file(tmp_path: Path) -> None:
    result = run_cli("config", "--path", "--data-dir", str(tmp_path / "store"), env_home=tmp_path)
    assert result.returncode == 0
    for name in ("positions_futures.json", "intelligence/whale_flow.json", "hurst_cache.json"):
        assert name in result.stdout
