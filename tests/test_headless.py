"""Headless mode: runs the core on the simulator without textual, deterministic, stoppable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def cli(*args: str, tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp / "xdg-config"),
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
    }
    env.pop("BIGALPHA_DATA_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "bigalpha_tui.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_headless_path_never_imports_textual_or_rich(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from bigalpha_tui.cli import dispatch\n"
        "dispatch(['--no-ui', '--speed', 'max', '--duration', '2h',"
        f" '--data-dir', {str(tmp_path)!r}])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print('LOADED', bad, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stderr


def test_same_seed_gives_the_same_output_twice(tmp_path: Path) -> None:
    runs = [
        cli(
            "--no-ui",
            "--speed",
            "max",
            "--duration",
            "4h",
            "--seed",
            "11",
            "--data-dir",
            str(tmp_path / f"run{i}"),
            tmp=tmp_path,
        )
        for i in range(2)
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert "summary" in runs[0].stdout
    other = cli(
        "--no-ui",
        "--speed",
        "max",
        "--duration",
        "4h",
        "--seed",
        "12",
        "--data-dir",
        str(tmp_path / "run-other"),
        tmp=tmp_path,
    )
    assert other.stdout != runs[0].stdout


@pytest.mark.slow
def test_a_simulated_day_shows_every_regime_and_strong_whales(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[ui]\nsummary_every_min = 1.0\n")
    result = cli(
        "--no-ui",
        "--speed",
        "max",
        "--duration",
        "1d",
        "--log-format",
        "json",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "store"),
        tmp=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    summaries = [
        json.loads(line) for line in result.stdout.splitlines() if '"kind": "summary"' in line
    ]
    assert len(summaries) >= 6 * 1400
    regimes = {s["regime"] for s in summaries}
    assert {"TRUE_TREND", "NOISE", "RANDOM"} <= regimes
    assert max(s["whale_intensity"] for s in summaries) > 60.0
    assert {s["whale_direction"] for s in summaries} == {"BUY", "SELL", "NEUTRAL"}


def test_restart_continues_where_the_last_run_stopped(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    first = cli("--no-ui", "--speed", "max", "--duration", "2h", "--data-dir", store, tmp=tmp_path)
    second = cli("--no-ui", "--speed", "max", "--duration", "1h", "--data-dir", store, tmp=tmp_path)
    assert first.returncode == 0 and second.returncode == 0
    last_first = first.stdout.strip().splitlines()[-1][:19]
    last_second = second.stdout.strip().splitlines()[-1][:19]
    assert last_first == "2026-01-05 10:30:00"
    assert last_second == "2026-01-05 11:30:00"
    status = cli("status", "--json", "--data-dir", store, tmp=tmp_path)
    doc = json.loads(status.stdout)
    assert doc["last_bar"] == "2026-01-05 11:29:00"
    assert all(info["regime"] != "WARMING" for info in doc["symbols"].values())


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)],
    ids=["sigterm", "double-ctrl-c"],
)
def test_a_stop_signal_saves_state_and_exits_zero(
    tmp_path: Path, signals: tuple[signal.Signals, ...]
) -> None:
    """Also when the signal comes twice (a second Ctrl-C, or `timeout`, which signals the
    child and then its process group): the save is never cut short by a traceback."""
    store = tmp_path / "store"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bigalpha_tui.cli",
            "--no-ui",
            "--speed",
            "600",
            "--data-dir",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the first summary arrives after 30 market minutes
        line = proc.stdout.readline()
        if "summary" in line:
            break
    for signum in signals:
        proc.send_signal(signum)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"received {signals[0].name}" in out
    assert "Traceback" not in err, err
    state = json.loads((store / "engine_state.json").read_text())
    assert state["last_bar_ms"] > 0


@pytest.mark.parametrize("value", ["soon", "-1h", "0"])
def test_bad_duration_is_one_clear_line(tmp_path: Path, value: str) -> None:
    result = cli("--no-ui", "--duration", value, "--data-dir", str(tmp_path), tmp=tmp_path)
    assert result.returncode == 2
    assert "--duration" in result.stderr and "Traceback" not in result.stderr


def test_bad_speed_is_one_clear_line(tmp_path: Path) -> None:
    result = cli("--no-ui", "--speed", "warp", "--data-dir", str(tmp_path), tmp=tmp_path)
    assert result.returncode == 2
    assert "source.speed" in result.stderr and "Traceback" not in result.stderr


def test_a_mistyped_command_is_named_not_taken_for_a_file(tmp_path: Path) -> None:
    result = cli("stauts", "--data-dir", str(tmp_path), tmp=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no command or file named 'stauts'" in result.stderr
    assert "status, config, replay, sweep, data, ctl, attach" in result.stderr


def test_version_is_printed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bigalpha_tui.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("bigalpha-tui 0.")


def test_event_lines_come_in_market_time_order_through_the_back_fill(tmp_path: Path) -> None:
    """Regime changes and learning cycles found while the back-fill catches up carry their
    bar's time, not the clock's: the log reads in order."""
    store = str(tmp_path / "store")
    result = cli("--no-ui", "--speed", "max", "--duration", "2h", "--log-format", "json",
                 "--data-dir", store, tmp=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    times = [json.loads(line)["time"] for line in result.stdout.splitlines()]
    kinds = {json.loads(line)["kind"] for line in result.stdout.splitlines()}
    assert {"summary", "regime", "learning"} <= kinds
    assert times == sorted(times)


def test_the_summary_line_prints_cvd_as_the_cockpit_draws_it() -> None:
    """`CVD +97.7k`, as the whale gauge shows it, not `+9.766e+04`."""
    from bigalpha_tui.core.flow import FlowState
    from bigalpha_tui.core.hurst import HurstReading
    from bigalpha_tui.core.snapshot import SymbolView
    from bigalpha_tui.core.types import Regime
    from bigalpha_tui.headless import summary_fields, summary_text
    from bigalpha_tui.widgets import fmt

    hurst = HurstReading(None, 0.0, Regime.WARMING, Regime.WARMING, 0, 0)
    view = SymbolView("BTCUSDT", 94_871.3, FlowState("BTCUSDT", cvd=97_660.0), hurst)
    assert "CVD +97.7k " in summary_text(view)
    assert fmt.compact(view.flow.cvd, signed=True) == "+97.7k"  # the gauge's formatter
    assert summary_fields(view)["cvd"] == 97_660.0  # JSON keeps the number itself
    small = SymbolView("ETHUSDT", 3_198.4, FlowState("ETHUSDT", cvd=-12.345), hurst)
    assert "CVD -12.3 " in summary_text(small)
