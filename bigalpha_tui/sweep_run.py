"""Where a sweep's replays run: local worker processes (default) or Ray (`--ray`).

Both run the same task (one replay of one variant over one window) and move each data file
to a worker once, not once per task: a local worker parses each file the first time a task
needs it and keeps it; on Ray the driver parses each file once, puts it in the object store
(`ray.put`) and the tasks carry the references, each worker process fetching a file once.
One runner serves a whole sweep (walk-forward's training and test phases share its workers).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from bigalpha_tui.core.errors import BigAlphaError, ConfigError, DataError, sole_error
from bigalpha_tui.core.sources.replay import ParseOptions, set_file_reader
from bigalpha_tui.core.trades import ClosedTrade, Ledger
from bigalpha_tui.replay_cmd import run_loop
from bigalpha_tui.scratch import scratch_dir
from bigalpha_tui.sweep_data import FileKey, ParsedFile, WorkerFiles, manifest
from bigalpha_tui.sweep_plan import Variant

#: `--ray` without an address: start Ray on this machine (Ray's own name for that).
RAY_LOCAL = "local"
RAY_MISSING = "--ray needs Ray: pip install 'bigalpha-tui[cluster]'"
#: how long `--ray=ADDRESS` waits for the address to answer before giving up: `ray.init`
#: itself retries an unreachable cluster for minutes
RAY_CONNECT_TIMEOUT_S = 5.0
#: the port Ray listens on when ADDRESS names none: GCS, or the Ray Client server (ray://)
RAY_GCS_PORT = 6379
RAY_CLIENT_PORT = 10001


@dataclass(frozen=True)
class Task:
    variant: Variant
    window_ms: tuple[int, int] | None


@dataclass(frozen=True)
class Outcome:
    """A task's report row (the live ledger's figures and the guard report), its trades, and
    the worker process that ran it with the files that process had fetched by then."""

    row: dict[str, Any]
    live_trades: list[ClosedTrade]
    worker_pid: int
    fetches: dict[str, int]


#: The files of this worker process (installed by the pool initializer or the first Ray task).
_worker: WorkerFiles | None = None


def _install(files: WorkerFiles) -> None:
    global _worker
    _worker = files
    set_file_reader(files)


def run_task(args: argparse.Namespace, task: Task) -> Outcome:
    """In a worker process: one replay in a temporary folder, removed afterwards."""
    data_dir = Path(scratch_dir("sweep"))
    try:
        run = run_loop(
            args, data_dir, durable=False, config=task.variant.config, window_ms=task.window_ms
        )
    except BaseExceptionGroup as group:
        error = sole_error(group)
        if isinstance(error, BigAlphaError):
            raise DataError(str(error)) from None  # one plain error crosses the process line
        raise
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    report = run.report()
    row = {
        "params": task.variant.params,
        **report["live"],
        "guard_report": report["guard_report"],
        "open_positions": report["open_positions"],
        "unrealised_pnl_usd": report["unrealised_pnl_usd"],
        "bars": report["bars"],
    }
    fetches = dict(_worker.fetches) if _worker is not None else {}
    return Outcome(row, run.log.of(Ledger.LIVE), os.getpid(), fetches)


class Runner(Protocol):
    def run(self, args: argparse.Namespace, tasks: list[Task]) -> Iterator[tuple[int, Outcome]]:
        """(task index, outcome) as each task finishes."""
        ...

    def close(self) -> None: ...


def data_files(args: argparse.Namespace) -> WorkerFiles:
    """The sweep's files by absolute path (content-hashed), as the driver sees them;
    `args.files` becomes that list, so a worker on another machine looks them up by the same
    names. On Ray the driver reads through them too: each file is parsed once, for the data's
    span and for the object store."""
    options = ParseOptions(allow_no_flow=args.allow_no_flow, skip_bad_rows=args.skip_bad_rows)
    files = WorkerFiles(manifest(args.files, args.symbol, options))
    args.files = list(files.files)
    if args.ray is not None:
        set_file_reader(files)
    return files


def runner_for(args: argparse.Namespace, files: WorkerFiles, most_tasks: int) -> Runner:
    if args.ray is not None:
        return RayRunner(args, files)
    return LocalRunner(files.files, min(args.jobs, most_tasks))


def run_all(
    runner: Runner, args: argparse.Namespace, tasks: list[Task], what: str
) -> list[Outcome]:
    """Every task, in task order; a progress line on a terminal."""
    show = sys.stderr.isatty()
    outcomes: dict[int, Outcome] = {}
    for index, outcome in runner.run(args, tasks):
        outcomes[index] = outcome
        if show:
            sys.stderr.write(f"\r{what}: {len(outcomes)}/{len(tasks)} replays done ")
            sys.stderr.flush()
    if show:
        sys.stderr.write("\n")
    return [outcomes[i] for i in range(len(tasks))]


# -- local processes ----------------------------------------------------------------------


def _start_local_worker(files: dict[str, FileKey]) -> None:
    _install(WorkerFiles(files))


class LocalRunner:
    """`jobs` processes on this machine, each parsing a file the first time it needs it."""

    def __init__(self, files: dict[str, FileKey], jobs: int) -> None:
        self.pool = ProcessPoolExecutor(
            max_workers=jobs, initializer=_start_local_worker, initargs=(files,)
        )

    def run(self, args: argparse.Namespace, tasks: list[Task]) -> Iterator[tuple[int, Outcome]]:
        futures = {self.pool.submit(run_task, args, task): i for i, task in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


# -- Ray ------------------------------------------------------------------------------------


def import_ray() -> ModuleType:
    """Ray, or the one line saying how to get it (an optional extra, never needed otherwise)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) that `--ray=ADDRESS` will connect to; None for Ray's own words ("local",
    "auto": a cluster found on this machine, nothing to check). ConfigError when malformed."""
    if address in (RAY_LOCAL, "auto"):
        return None
    client = address.startswith("ray://")
    rest = address.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        host, port_text = rest, ""
    host = host.strip("[]")  # [::1]:6379
    if not host or (not port_text and sep):
        raise ConfigError(f"--ray {address}: expected HOST:PORT or ray://HOST:PORT")
    try:
        port = int(port_text) if port_text else RAY_CLIENT_PORT if client else RAY_GCS_PORT
    except ValueError:
        raise ConfigError(f"--ray {address}: the port is not a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"--ray {address}: the port is out of range")
    return host, port


def check_ray_address(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail fast on a cluster address that does not answer (one TCP connect, `timeout_s`):
    `ray.init` would retry it for minutes. ConfigError (one line, exit 2) when it does not."""
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    host, port = endpoint
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ConfigError(
            f"--ray {address}: cannot reach {host}:{port} within {timeout_s:g} s ({reason})"
        ) from None


def _ray_task(
    args: argparse.Namespace, task: Task, files: dict[str, FileKey], refs: dict[str, Any]
) -> Outcome:
    """On a Ray worker: the first task of this process installs its files (fetched from the
    object store when first needed; `refs` sits inside a dict, so Ray hands it over as
    references, not values), then the replay runs as on a local worker."""
    if _worker is None or _worker.files != files:
        import ray

        def fetch(key: FileKey) -> ParsedFile:
            parsed: ParsedFile = ray.get(refs[key.path])
            return parsed

        _install(WorkerFiles(files, fetch))
    return run_task(args, task)


class RayRunner:
    """The tasks on Ray: a local Ray (`--ray`) or a cluster (`--ray=ADDRESS`). The driver
    parses each file once and puts it in the object store once."""

    def __init__(self, args: argparse.Namespace, files: WorkerFiles) -> None:
        ray = import_ray()
        self.ray = ray
        local = args.ray == RAY_LOCAL
        try:
            ray.init(
                address=args.ray,
                num_cpus=args.jobs if local else None,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--ray {args.ray}: cannot start or reach Ray ({exc})") from None
        self.files = files.files
        self.refs = {path: ray.put(files.get(key)) for path, key in files.files.items()}
        self.remote = ray.remote(_ray_task)

    def run(self, args: argparse.Namespace, tasks: list[Task]) -> Iterator[tuple[int, Outcome]]:
        ray = self.ray
        pending = {
            self.remote.remote(args, task, self.files, self.refs): i for i, task in enumerate(tasks)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    outcome: Outcome = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BigAlphaError):
                        raise DataError(str(cause)) from None
                    raise
                yield index, outcome

    def close(self) -> None:
        self.ray.shutdown()
