"""A sweep moves each data file to a worker once, and the bars it serves are the file's."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.errors import DataError
from bigalpha_tui.core.sources.replay import (
    ParseOptions,
    ReplayStats,
    parse_kline_file,
    set_file_reader,
)
from bigalpha_tui.sweep_cmd import base_config, parser
from bigalpha_tui.sweep_data import WorkerFiles, manifest
from bigalpha_tui.sweep_plan import build_grid, parse_moment_ms
from bigalpha_tui.sweep_run import LocalRunner, Outcome, Task, data_files, run_all, run_task

AVAX = "AVAXUSDT-1m-2026-02-head.csv.gz"
LINK = "LINKUSDT-1m-2026-02-noheader.csv"
ROW = "{t},10.0,10.2,9.9,10.1,100,{c},1000,10,60,600,0\n"
MINUTE_MS = 60_000
T0 = 1_769_904_000_000


@pytest.fixture(autouse=True)
def disk_reader_afterwards() -> Iterator[None]:
    yield
    set_file_reader(None)


def sweep_args(*argv: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    args = parser().parse_args(list(argv))
    args.speed = "max"
    return args


def test_each_file_is_parsed_once_per_worker_whatever_the_number_of_combinations(
    test_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [str(test_data / AVAX), str(test_data / LINK)]
    args = sweep_args(
        *files, "--set", "exits.stop_pct=1,1.5,2", "--set", "hurst.trend_above=0.55,0.6",
        home=tmp_path, monkeypatch=monkeypatch,
    )  # fmt: skip
    grid = build_grid(base_config(args), args.sets)
    driver = data_files(args)
    runner = LocalRunner(driver.files, jobs=2)
    try:
        outcomes = run_all(runner, args, [Task(v, None) for v in grid], "test")
    finally:
        runner.close()
    assert len(outcomes) == 6
    assert all(o.row["bars"] == 299 + 300 for o in outcomes)
    workers = {o.worker_pid for o in outcomes}
    assert len(workers) <= 2 < len(outcomes)  # some worker ran several replays
    everything = {os.path.abspath(f): 1 for f in files}
    # what each worker had parsed when each of its replays ended: every file, once
    assert all(o.fetches == everything for o in outcomes)
    assert os.getpid() not in workers


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(rows))
    return path


def good_row(minute: int) -> str:
    t = T0 + minute * MINUTE_MS
    return ROW.format(t=t, c=t + MINUTE_MS - 1)


def streamed(bars: Iterator[Bar], stats: ReplayStats) -> list[tuple[Bar, int]]:
    """Each bar with the rows counted as skipped by the time it arrived."""
    return [(bar, stats.skipped_rows) for bar in bars]


def test_served_bars_count_skipped_rows_where_the_parse_counts_them(tmp_path: Path) -> None:
    rows = [good_row(0), "garbage\n", good_row(1), good_row(2), "1,2\n", "x,y\n", good_row(3)]
    path = write_csv(tmp_path / "AVAXUSDT-1m-2026-02.csv", [*rows, "also,bad\n"])
    options = ParseOptions(skip_bad_rows=True)
    reader = WorkerFiles(manifest([path], None, options))
    direct, served = ReplayStats(), ReplayStats()
    expected = streamed(parse_kline_file(path, skip_bad_rows=True, stats=direct), direct)
    got = streamed(reader.read(path, None, options, served), served)
    assert got == expected
    assert [skipped for _, skipped in got] == [0, 1, 1, 3]
    assert served.skipped_by_reason == direct.skipped_by_reason  # the trailing row too


def test_a_bad_row_stops_served_bars_where_the_parse_stops(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "AVAXUSDT-1m-2026-02.csv", [good_row(0), good_row(1), "bad,row\n", good_row(2)]
    )
    options = ParseOptions()
    reader = WorkerFiles(manifest([path], None, options))
    served = reader.read(path, None, options, ReplayStats())
    assert [bar.open_ms for bar in (next(served), next(served))] == [T0, T0 + MINUTE_MS]
    with pytest.raises(DataError, match=r"line 3") as error:
        next(served)
    with pytest.raises(DataError) as direct:
        list(parse_kline_file(path))
    assert str(error.value) == str(direct.value)


def test_a_file_changed_during_the_sweep_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "AVAXUSDT-1m-2026-02.csv", [good_row(0)])
    options = ParseOptions()
    reader = WorkerFiles(manifest([path], None, options))
    write_csv(path, [good_row(0), good_row(1)])
    with pytest.raises(DataError, match="changed while the sweep ran"):
        reader.read(path, None, options, ReplayStats())


def test_a_replay_from_served_bars_reports_what_a_replay_from_disk_does(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = shared_data / "binance_um_klines_1m" / "AVAXUSDT-1m-2026-02.csv.gz"
    args = sweep_args(str(data), home=tmp_path, monkeypatch=monkeypatch)
    variant = build_grid(base_config(args), ["strategy.ofi_threshold=0.15"])[0]
    # two days inside the month: the served stream is left before the file's end
    window = (parse_moment_ms("2026-02-03", "--from"), parse_moment_ms("2026-02-05", "--to"))
    task = Task(variant, window)
    from_disk: Outcome = run_task(args, task)
    files = data_files(args)
    set_file_reader(files)
    served: Outcome = run_task(args, task)
    assert files.fetches == {str(data): 1}
    assert from_disk.row["trades"] > 0
    assert served.row == from_disk.row
    assert served.live_trades == from_disk.live_trades
