"""`bigalpha-tui sweep --ray`: the same replays on a local Ray, each file put in the object
store once. Ray is an optional extra ([cluster]): without it this test is skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bigalpha_tui.core.sources.replay import set_file_reader
from bigalpha_tui.sweep_cmd import base_config, parser
from bigalpha_tui.sweep_plan import build_grid
from bigalpha_tui.sweep_run import LocalRunner, RayRunner, Runner, Task, data_files, run_all

ray = pytest.importorskip("ray")

AVAX = "AVAXUSDT-1m-2026-02-head.csv.gz"
LINK = "LINKUSDT-1m-2026-02-noheader.csv"


@pytest.fixture(autouse=True)
def disk_reader_afterwards() -> Iterator[None]:
    yield
    set_file_reader(None)


def test_a_ray_sweep_gives_the_local_results_and_moves_each_file_once(
    test_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    files = [str(test_data / AVAX), str(test_data / LINK)]
    grid_args = ["--set", "exits.stop_pct=1,1.5", "--set", "strategy.ofi_threshold=0.1,0.15"]

    def sweep(*extra: str) -> tuple[list[dict[str, object]], list[dict[str, int]], int]:
        args = parser().parse_args([*files, *grid_args, "--jobs", "2", *extra])
        args.speed = "max"
        grid = build_grid(base_config(args), args.sets)
        driver = data_files(args)
        runner: Runner = RayRunner(args, driver) if args.ray else LocalRunner(driver.files, 2)
        try:
            outcomes = run_all(runner, args, [Task(v, None) for v in grid], "test")
        finally:
            runner.close()
        assert os.getpid() not in {o.worker_pid for o in outcomes}
        return (
            [o.row for o in outcomes],
            [o.fetches for o in outcomes],
            sum(driver.fetches.values()),
        )

    local_rows, _, local_driver_parses = sweep()
    ray_rows, ray_fetches, ray_driver_parses = sweep("--ray")
    assert ray_rows == local_rows
    assert len(ray_rows) == 4
    assert all(row["bars"] == 599 for row in ray_rows)
    # the driver parsed each file once for the object store; each worker fetched it once
    assert (local_driver_parses, ray_driver_parses) == (0, 2)
    everything = {os.path.abspath(f): 1 for f in files}
    assert all(fetched == everything for fetched in ray_fetches)
