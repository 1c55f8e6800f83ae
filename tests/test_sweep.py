"""`bigalpha-tui sweep`: every combination replayed in parallel, ranked; walk-forward."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bigalpha_tui.core.config import Config
from bigalpha_tui.core.errors import ConfigError
from bigalpha_tui.sweep_plan import build_grid, walk_forward_folds

FIELDS = ("params", "trades", "profit_factor", "net_pnl_usd", "max_drawdown_usd", "win_rate_pct")
#: Two days of one shared month keep each replay to 2,880 bars.
WINDOW = ("--from", "2026-02-03", "--to", "2026-02-05")
GRID = ("--set", "exits.stop_pct=1,1.5", "--set", "hurst.trend_above=0.55,0.6")
DAY_MS = 86_400_000


def sweep(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "BIGALPHA_DATA_DIR": str(home / "operator-store"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bigalpha_tui.cli", "sweep", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def avax(shared_data: Path) -> str:
    return str(shared_data / "binance_um_klines_1m" / "AVAXUSDT-1m-2026-02.csv.gz")


def test_sweep_json_has_one_object_per_combination(shared_data: Path, tmp_path: Path) -> None:
    result = sweep(avax(shared_data), *WINDOW, *GRID, "--jobs", "2", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    assert len(rows) == 4
    assert all(field in row for row in rows for field in (*FIELDS, "guard_report"))
    combos = {(r["params"]["exits.stop_pct"], r["params"]["hurst.trend_above"]) for r in rows}
    assert combos == {(1, 0.55), (1, 0.6), (1.5, 0.55), (1.5, 0.6)}
    assert all(row["bars"] == 2 * 1440 for row in rows)
    assert "GOLDEN_HOUR" in rows[0]["guard_report"]


def test_sweep_table_is_sorted_by_the_chosen_metric(shared_data: Path, tmp_path: Path) -> None:
    result = sweep(
        avax(shared_data), *WINDOW, *GRID, "--jobs", "2", "--sort", "net_pnl_usd", home=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "sorted by net_pnl_usd" in lines[0]
    body = [line.split() for line in lines[3:]]
    assert len(body) == 4
    net = [float(cells[4].replace(",", "")) for cells in body]
    assert net == sorted(net, reverse=True)


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("hurst.no_such_key=1", "unknown key hurst.no_such_key"),
        ("nosection.key=1", "unknown section [nosection]"),
        ("exits.stop_pct=1,abc", "exits.stop_pct = 'abc' is not valid"),
        ("hurst.trend_above=2", "hurst.trend_above = 2 is not valid"),
        ("stop_pct", "--set 'stop_pct'"),
    ],
)
def test_a_bad_set_key_or_value_exits_2_with_one_line_naming_it(
    setting: str, named: str, tmp_path: Path
) -> None:
    result = sweep("AVAXUSDT-1m-2026-02.csv", "--set", setting, home=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert named in result.stderr


def test_too_many_combinations_are_refused() -> None:
    values = ",".join(str(v) for v in range(1, 33))
    sets = [f"flow.window_bars={values}", f"hurst.confirm_bars={values}"]
    with pytest.raises(ConfigError, match="1,024 combinations"):
        build_grid(Config(), sets)


def test_set_values_reach_the_config_of_each_combination() -> None:
    grid = build_grid(Config(), ["exits.tiers_pct=[1,2,3,4],[0.5,1,1.5,2]", "source.speed=max"])
    assert [v.config.exits.tiers_pct for v in grid] == [(1, 2, 3, 4), (0.5, 1, 1.5, 2)]
    assert all(v.config.source.speed == "max" for v in grid)


def test_walk_forward_folds_step_by_the_test_window() -> None:
    folds = walk_forward_folds((0, 5 * DAY_MS), 2 * DAY_MS, DAY_MS)
    assert [f.test_ms for f in folds] == [
        (2 * DAY_MS, 3 * DAY_MS),
        (3 * DAY_MS, 4 * DAY_MS),
        (4 * DAY_MS, 5 * DAY_MS),
    ]
    assert all(f.train_ms[1] == f.test_ms[0] for f in folds)
    with pytest.raises(ConfigError, match="at least 3 days"):
        walk_forward_folds((0, 2 * DAY_MS), 2 * DAY_MS, DAY_MS)


def test_walk_forward_reports_test_windows_with_params_chosen_on_training(
    shared_data: Path, tmp_path: Path
) -> None:
    # an OFI threshold of 1.0 can never be crossed: no trades, no profit factor, never chosen
    # (listed first, so grid order cannot explain the choice)
    result = sweep(
        avax(shared_data),
        "--from", "2026-02-03", "--to", "2026-02-07",
        "--set", "strategy.ofi_threshold=1.0,0.15",
        "--walk-forward", "2d:1d", "--jobs", "2", "--json",
        home=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    windows = report["windows"]
    assert [(w["train_start"], w["test_start"], w["test_end"]) for w in windows] == [
        ("2026-02-03 00:00", "2026-02-05 00:00", "2026-02-06 00:00"),
        ("2026-02-04 00:00", "2026-02-06 00:00", "2026-02-07 00:00"),
    ]
    assert all(w["params"] == {"strategy.ofi_threshold": 0.15} for w in windows)
    assert all(w["bars"] == 1440 for w in windows)  # the test window's bars only
    assert all(w["train_profit_factor"] is not None for w in windows)
    total = report["out_of_sample"]
    assert total["trades"] == sum(w["trades"] for w in windows)
    assert total["net_pnl_usd"] == pytest.approx(sum(w["net_pnl_usd"] for w in windows))


def test_ray_without_ray_installed_is_one_line_and_exit_2(test_data: Path, tmp_path: Path) -> None:
    # Ray hidden from the import system even where it is installed
    hide_ray = (
        "import sys; sys.modules['ray'] = None\n"
        "from bigalpha_tui.cli import main; main(sys.argv[1:])"
    )
    data = str(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz")
    for ray_arg in ("--ray", "--ray=ray://head:10001"):
        result = subprocess.run(
            [sys.executable, "-c", hide_ray, "sweep", data, "--set", "exits.stop_pct=1,2", ray_arg],
            capture_output=True,
            text=True,
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")},
            timeout=120,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            "bigalpha-tui: --ray needs Ray: pip install 'bigalpha-tui[cluster]'"
        ]


def test_ray_at_an_address_that_does_not_answer_is_one_line_and_exit_2_at_once(
    test_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # `ray.init` retries an unreachable cluster for minutes; the sweep checks the address
    # first. Ray itself is stood in for (it is an optional extra): its init must not be reached.
    import socket
    import time
    import types

    from bigalpha_tui import sweep_cmd
    from bigalpha_tui.cli import main

    inits: list[object] = []
    fake_ray = types.SimpleNamespace(init=lambda **kw: inits.append(kw))
    monkeypatch.setattr(sweep_cmd, "import_ray", lambda: fake_ray)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = str(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz")
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        started = time.monotonic()
        with pytest.raises(SystemExit) as exited:
            main(["sweep", data, "--set", "exits.stop_pct=1,2", f"--ray={address}"])
        assert exited.value.code == 2
        assert time.monotonic() - started < 5
        out, err = capsys.readouterr()
        assert out == ""
        assert err.splitlines() == [
            f"bigalpha-tui: --ray {address}: cannot reach 127.0.0.1:{port} within 5 s"
            " (Connection refused)"
        ]
    assert inits == []


def test_ray_addresses_name_the_endpoint_that_is_checked() -> None:
    from bigalpha_tui.sweep_run import ray_endpoint

    assert ray_endpoint("local") is None and ray_endpoint("auto") is None
    assert ray_endpoint("10.0.0.5:6380") == ("10.0.0.5", 6380)
    assert ray_endpoint("ray://head") == ("head", 10001)
    assert ray_endpoint("head") == ("head", 6379)
    assert ray_endpoint("[::1]:6379") == ("::1", 6379)
    for bad in ("head:", "head:port", "head:70000", ":6379"):
        with pytest.raises(ConfigError, match="--ray"):
            ray_endpoint(bad)


def test_the_data_span_is_the_first_open_to_the_last_close_of_the_bars(
    test_data: Path, tmp_path: Path
) -> None:
    """Without --to, the sweep's span ends at the last bar's close, read from the columns a
    batch replay reads (not from a Bar per row): the same as the bars give, for clean
    files, files merged with overlaps, and a file read with --skip-bad-rows."""
    from bigalpha_tui.core.clock import SimClock
    from bigalpha_tui.core.sources.replay import ReplaySource
    from bigalpha_tui.sweep_cmd import data_span_ms, parser

    bad = tmp_path / "BTCUSDT-1m-2026-02.csv"
    good = (test_data / "LINKUSDT-1m-2026-02-noheader.csv").read_text().splitlines()
    bad.write_text("\n".join([*good[:50], "not,a,row", *good[50:120]]) + "\n")
    cases = [
        [str(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz")],
        [
            str(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"),
            str(test_data / "LINKUSDT-1m-2026-02-noheader.csv"),
        ],
        [str(bad), "--skip-bad-rows"],
    ]
    for files in cases:
        args = parser().parse_args([*files, "--set", "exits.stop_pct=1"])
        source = ReplaySource(
            args.files, SimClock(0.0), skip_bad_rows=args.skip_bad_rows, symbol=args.symbol
        )
        bars = list(source.merged_bars())
        assert data_span_ms(args) == (bars[0].open_ms, max(b.close_ms for b in bars))
