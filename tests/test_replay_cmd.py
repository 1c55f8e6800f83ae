"""`bigalpha-tui replay`: the whole loop over kline files, a report, and a store of its own."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import GUARD_BLOCKS, POSITIONS, SHADOW_OUTCOMES, Store
from bigalpha_tui.core.trades import ClosedTrade, Ledger
from bigalpha_tui.core.types import Conviction, ExitReason, Regime, Side
from bigalpha_tui.replay_cmd import max_drawdown_usd

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)


def write_klines(folder: Path, minutes: int = 1440) -> list[Path]:
    """A simulated day written as Binance futures kline files, one per symbol."""
    symbols = ("BTCUSDT", "ETHUSDT")
    rows: dict[str, list[str]] = {s: [HEADER] for s in symbols}
    stream = simulate_minutes(symbols, 7, DEFAULT_START_MS, SimParams())
    for bar in itertools.chain.from_iterable(itertools.islice(stream, minutes)):
        quote = bar.volume * bar.close
        rows[bar.symbol].append(
            f"{bar.open_ms},{bar.open},{bar.high},{bar.low},{bar.close},{bar.volume},"
            f"{bar.close_ms - 1},{quote},100,{bar.taker_buy_volume},"
            f"{bar.taker_buy_volume * bar.close},0"
        )
    paths = []
    for symbol, lines in rows.items():
        path = folder / f"{symbol}-1m-2026-01.csv.gz"
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def klines(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_klines(tmp_path_factory.mktemp("klines"))


def replay(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "BIGALPHA_DATA_DIR": str(home / "operator-store"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bigalpha_tui.cli", "replay", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture(scope="module")
def json_run(klines: list[Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("home")
    data = home / "replay-store"
    result = replay(*map(str, klines), "--json", "--data-dir", str(data), home=home)
    assert result.returncode == 0, result.stderr
    return {"report": json.loads(result.stdout), "stderr": result.stderr, "data": data}


def test_replay_reports_trades_pf_drawdown_tiers_force_hold_and_guards(
    json_run: dict[str, Any],
) -> None:
    report = json_run["report"]
    assert report["bars"] == 2 * 1440
    live = report["live"]
    assert live["trades"] > 0 and live["profit_factor"] is not None
    assert set(live) >= {"win_rate_pct", "net_pnl_usd", "max_drawdown_usd"}
    assert report["shadow"]["trades"] == live["trades"]
    assert set(report["exits_by_tier"]) == {r.value for r in ExitReason}
    assert set(report["force_hold"]) == {"force_held", "the_rest"}
    held, rest = report["force_hold"]["force_held"], report["force_hold"]["the_rest"]
    assert held["trades"] + rest["trades"] == live["trades"]
    assert report["guard_report"]["GOLDEN_HOUR"]["blocked"] > 0


def test_report_agrees_with_the_store_it_wrote(json_run: dict[str, Any]) -> None:
    store = Store(json_run["data"])
    book = store.read_json(POSITIONS)
    assert book is not None
    outcomes = list(store.iter_jsonl(SHADOW_OUTCOMES))
    report = json_run["report"]
    assert len(book["closed"]) == report["live"]["trades"]
    assert sum(o["ledger"] == "shadow" for o in outcomes) == report["shadow"]["trades"]
    net = sum(t["pnl_usd"] for t in book["closed"])
    assert net == pytest.approx(report["live"]["net_pnl_usd"])


def test_no_progress_bar_when_stderr_is_not_a_terminal(json_run: dict[str, Any]) -> None:
    assert json_run["stderr"] == ""


def test_replay_never_touches_the_operators_store(klines: list[Path], tmp_path: Path) -> None:
    result = replay(str(klines[0]), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "live" in result.stdout and "GOLDEN_HOUR" in result.stdout
    assert "(temporary, removed)" in result.stdout
    assert not (tmp_path / "operator-store").exists()
    assert not (tmp_path / "data").exists()


def test_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = replay(str(tmp_path / "nope.csv"), home=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "nope.csv" in result.stderr


def _trade(pnl: float, exit_s: float) -> ClosedTrade:
    return ClosedTrade(
        id=f"t{exit_s}",
        ledger=Ledger.LIVE,
        strategy="Alpha-OFI",
        symbol="BTCUSDT",
        side=Side.LONG,
        entry_s=0.0,
        exit_s=exit_s,
        entry_price=100.0,
        exit_price=100.0,
        qty=1.0,
        fees_usd=0.0,
        pnl_usd=pnl,
        conviction=Conviction.NORMAL,
        entry_regime=Regime.RANDOM,
        exit_reasons=(ExitReason.STOP,),
        golden_hour_entry=True,
    )


def test_max_drawdown_is_the_largest_fall_from_a_peak_in_exit_order() -> None:
    trades = [_trade(p, t) for t, p in enumerate([2.0, -1.0, -2.5, 1.0, 3.0, -0.5])]
    assert max_drawdown_usd(list(reversed(trades))) == pytest.approx(3.5)
    assert max_drawdown_usd([]) == 0.0


def test_the_live_loop_over_a_file_with_a_bad_row_deep_inside_stops_with_one_line(
    tmp_path: Path,
) -> None:
    """`--no-ui FILE` reads rows as it goes: a bad row 300 lines in is found while the core's
    task group runs, and must still end as one clear line (exit 2), not a traceback."""
    lines = gzip.decompress(write_klines(tmp_path, minutes=400)[0].read_bytes()).decode()
    rows = lines.splitlines()
    fields = rows[300].split(",")
    fields[2] = "12.3x4"
    rows[300] = ",".join(fields)
    bad = tmp_path / "bad" / "BTCUSDT-1m-2026-01.csv"
    bad.parent.mkdir()
    bad.write_text("\n".join(rows) + "\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    command = [sys.executable, "-m", "bigalpha_tui.cli", "--no-ui", "--speed", "max"]
    run = subprocess.run(
        [*command, "--data-dir", str(tmp_path / "store"), str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert f"{bad}, line 301: high '12.3x4' is not a number" in run.stderr
    assert "--skip-bad-rows" in run.stderr


def test_a_file_whose_name_tells_no_symbol_replays_with_symbol(
    klines: list[Path], tmp_path: Path
) -> None:
    plain = tmp_path / "mydata.csv.gz"
    plain.write_bytes(klines[0].read_bytes())
    refused = replay(str(plain), home=tmp_path)
    assert refused.returncode == 2 and "--symbol" in refused.stderr
    run = replay("--json", "--symbol", "btcusdt", str(plain), home=tmp_path)
    assert run.returncode == 0, run.stderr
    assert list(json.loads(run.stdout)["symbols"]) == ["BTCUSDT"]


def test_streaming_flag_gives_the_same_report_as_the_default_batch(
    klines: list[Path], tmp_path: Path
) -> None:
    """`replay` runs in batch by default; `--streaming` runs the engines bar by bar: the
    report is the same but for the timing."""
    reports = []
    for flags in ([], ["--streaming"]):
        result = replay(*map(str, klines), "--json", *flags, home=tmp_path)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        for timing in ("elapsed_s", "bars_per_s"):
            assert report.pop(timing) > 0
        reports.append(report)
    assert reports[0]["live"]["trades"] > 0
    assert reports[0] == reports[1]


def test_a_throwaway_replay_reports_what_a_kept_one_reports(
    klines: list[Path], json_run: dict[str, Any], tmp_path: Path
) -> None:
    """Without --data-dir the folder is thrown away: no block record is written there
    (most of a replay's time went into them), and the report is the same as the kept
    run's, guard report and blocked twins' "would have made" included."""
    result = replay(*map(str, klines), "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    throwaway = json.loads(result.stdout)
    kept = dict(json_run["report"])
    for report in (throwaway, kept):
        for varying in ("elapsed_s", "bars_per_s", "data_dir"):
            report.pop(varying)
    assert throwaway == kept
    blocked = sum(g["blocked"] for g in kept["guard_report"].values())
    lines = list(Store(json_run["data"]).iter_jsonl(GUARD_BLOCKS))
    assert blocked > 0 and len(lines) == blocked  # the kept run recorded every block


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_replay_stopped_by_a_signal_removes_its_temporary_folder(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """A process manager's SIGTERM (or a closed session's SIGHUP) mid-replay left
    /tmp/bigalpha-replay-* behind with the run's store in it."""
    files = write_klines(tmp_path, minutes=4 * 1440)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bigalpha_tui.cli", "replay", "--streaming", *map(str, files)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while not any(scratch.glob("bigalpha-replay-*/*")):  # the run has begun writing
        assert proc.poll() is None and time.monotonic() < deadline, "the replay never started"
        time.sleep(0.01)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + stop, err
    assert err.strip().splitlines() == [f"replay: stopped by {stop.name}"]
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("streaming", [False, True])
def test_the_progress_bar_counts_up_to_every_bar_on_both_paths(
    klines: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streaming: bool
) -> None:
    """On a terminal the replay draws a progress bar: it counts up to 100 % of the bars on
    both paths, and on the batch path it is drawn between steps without making the run take
    a step per bar (a step observer would): the same steps as a run without it."""
    import io

    from bigalpha_tui import replay_cmd
    from bigalpha_tui.core import batch

    monkeypatch.setattr(replay_cmd, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(batch, "_POLL_STEPS", 500)  # a bar drawn every 500 steps
    steps = [0]
    entries_only = batch._Run.entries_only

    def counted(self: Any, *args: Any) -> None:
        steps[0] += 1
        entries_only(self, *args)

    monkeypatch.setattr(batch._Run, "entries_only", counted)
    args = replay_cmd.parser().parse_args([str(p) for p in klines])
    runs = {}
    for shown in (False, True):
        err = io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        steps[0] = 0
        run = replay_cmd.run_loop(
            args, tmp_path / str(shown), durable=False, show_progress=shown, streaming=streaming
        )
        runs[shown] = (run, steps[0], err.getvalue())
    (plain, plain_steps, quiet), (shown_run, shown_steps, drawn) = runs[False], runs[True]
    assert quiet == ""
    assert [t.to_record() for t in shown_run.log.trades] == [
        t.to_record() for t in plain.log.trades
    ]
    frames = [f for f in drawn.rstrip("\n").split("\r") if f]
    shares = [float(f.split("]")[1].split("%")[0]) for f in frames]
    assert shares[-1] == 100.0 and shares == sorted(shares) and len(set(shares)) >= 5, shares
    assert all("bars/s" in f for f in frames)
    # each frame's share is the market time's: the bars before it, not a stale count
    start = datetime.fromtimestamp(DEFAULT_START_MS / 1000, UTC)
    for frame, share in zip(frames, shares, strict=True):
        shown = datetime.strptime(frame.split()[-4] + frame.split()[-3], "%Y-%m-%d%H:%M")
        minutes = (shown.replace(tzinfo=UTC) - start).total_seconds() / 60
        assert abs(share - 100 * minutes / 1440) < 1.0, frame
    if not streaming:
        assert shown_steps == plain_steps > 0  # no step more for the bar


def test_a_replay_loads_no_http_client_and_no_screen(klines: list[Path], tmp_path: Path) -> None:
    """A replay is offline and on paper: it loads neither the exchange's HTTP client nor
    the cockpit's libraries (each costs every replay's start; a sweep starts hundreds)."""
    code = (
        "import sys\n"
        "from bigalpha_tui.cli import dispatch\n"
        f"code = dispatch(['replay', '--json', {str(klines[0])!r}])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'textual', 'rich'))\n"
        "print('EXIT', code, 'LOADED', bad, file=sys.stderr)\n"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert "EXIT 0 LOADED []" in result.stderr, result.stderr[-2000:]
