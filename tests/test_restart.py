"""Restart: a resumed core continues the same positions; no trade is lost or duplicated.

In process: the same simulated bars through one uninterrupted core and through cores stopped
(cleanly, or "crashed" with older files on disk) and resumed on the same store. Then a real
headless process killed with SIGKILL mid-run and restarted.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fast_disk import no_fsync
from trading_helpers import ListSource

from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.commands import Command, CommandKind
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import GUARD_BLOCKS, POSITIONS, SHADOW_OUTCOMES, Store
from bigalpha_tui.core.types import SymbolState

MINUTES = 11 * 60  # 08:30-19:30 UTC: the golden hour and some evening


def sim_bars(minutes: int = MINUTES) -> list[Bar]:
    symbols = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT")
    stream = simulate_minutes(symbols, 7, DEFAULT_START_MS, SimParams())
    return [bar for minute in itertools.islice(stream, minutes) for bar in minute]


BARS = sim_bars()


def new_core(data: Path) -> Core:
    return Core(Config(), ListSource(BARS), SimClock(DEFAULT_START_MS / 1000), Store(data))


def feed(core: Core, start: int, stop: int) -> None:
    """Feed bars as the loop does; every save and append is written as always, only the
    flush is skipped (no test here cuts the power; tests/test_crash.py kills real processes)."""
    resume = core.resume_after_ms()
    assert isinstance(core.clock, SimClock)
    with no_fsync():
        for bar in BARS[start:stop]:
            if resume is not None and bar.open_ms <= resume:
                continue
            core.clock.advance_to(bar.close_s)
            core.process_bar(bar)


def ledger_state(data: Path) -> dict[str, Any]:
    """What the store says happened: every id, each closed trade's figures, open positions."""
    store = Store(data)
    book = store.read_json(POSITIONS) or {}
    outcomes = list(store.iter_jsonl(SHADOW_OUTCOMES))
    blocks = list(store.iter_jsonl(GUARD_BLOCKS))
    return {
        "closed": [(t["id"], round(t["pnl_usd"], 9), t["exit_reasons"]) for t in book["closed"]],
        "open": sorted(
            (p["id"], tuple(e["reason"] for e in p["exits"]), p["force_hold_until_s"])
            for p in book["open"]
        ),
        "pending": sorted(o["id"] for o in book["pending"]),
        "twins": sorted(t["id"] for t in book["twins"]),
        "outcomes": sorted((o["id"], round(o["pnl_usd"], 9)) for o in outcomes),
        "blocks": sorted(b["id"] for b in blocks),
        "guard": book["guard"],
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("uninterrupted")
    core = new_core(data)
    feed(core, 0, len(BARS))
    core.checkpoint()
    state = ledger_state(data)
    assert state["closed"] and state["outcomes"] and state["blocks"], "the run must trade"
    return state


def test_a_clean_stop_and_resume_continues_the_same_positions(
    tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    half = len(BARS) // 2
    first = new_core(tmp_path)
    feed(first, 0, half)
    first.checkpoint()  # what Core.run does on its way out
    assert first.trading is not None
    open_before = {p.id: p for p in first.trading.live.values()}
    second = new_core(tmp_path)
    assert second.trading is not None
    assert {p.id: p for p in second.trading.live.values()} == open_before
    feed(second, half, len(BARS))
    second.checkpoint()
    assert ledger_state(tmp_path) == uninterrupted


def test_a_crash_with_older_files_on_disk_loses_and_duplicates_nothing(
    tmp_path: Path, uninterrupted: dict[str, Any]
) -> None:
    """The engines were checkpointed at bar K, the book saved at N1; the run went on to N2
    (appending outcomes and blocks) and died before its later saves reached the disk."""
    k, n1, n2 = len(BARS) // 4, len(BARS) // 2, 3 * len(BARS) // 4
    core = new_core(tmp_path)
    feed(core, 0, k)
    core.checkpoint()
    feed(core, k, n1)
    book_at_n1 = (tmp_path / POSITIONS).read_bytes()
    feed(core, n1, n2)
    appended = len(list(Store(tmp_path).iter_jsonl(SHADOW_OUTCOMES)))
    (tmp_path / POSITIONS).write_bytes(book_at_n1)  # the saves after N1 never happened
    resumed = new_core(tmp_path)
    feed(resumed, 0, len(BARS))
    resumed.checkpoint()
    state = ledger_state(tmp_path)
    assert appended < len(state["outcomes"])  # the resumed run went on trading
    assert state == uninterrupted


def test_a_crash_after_a_learning_cycle_or_a_release_never_re_trades_the_bars_before_it(
    tmp_path: Path,
) -> None:
    """A learning cycle or an operator release changes the terms the next bars trade on. A
    kill soon after either must not re-feed bars from before it: they would meet the new
    terms where the run that never stopped met the old ones."""
    cycle = next(i for i, b in enumerate(BARS) if b.open_ms >= DEFAULT_START_MS + 210 * 60_000)
    release_at = cycle + 12 * 6 * 5  # an hour later (six symbols a minute)

    def run(data: Path, *, crash: bool) -> None:
        core = new_core(data)
        feed(core, 0, cycle + 6)
        assert core.learning is not None
        assert core.learning.status("ETHUSDT").state is SymbolState.PROBATION  # the premise
        feed(core, cycle + 6, release_at)
        core.apply_command(Command(CommandKind.RELEASE, "ETHUSDT"))
        if crash:  # no checkpoint, no later save: the files as a kill leaves them
            resumed = new_core(data)
            assert resumed.trading is not None
            assert all(resumed.trading.applied(bar) for bar in BARS[:release_at])
            core = resumed
            feed(core, 0, len(BARS))
        else:
            feed(core, release_at, len(BARS))
        core.checkpoint()

    run(tmp_path / "a", crash=False)
    run(tmp_path / "b", crash=True)
    assert ledger_state(tmp_path / "b") == ledger_state(tmp_path / "a")


def test_re_fed_bars_are_skipped_not_applied_twice(tmp_path: Path) -> None:
    core = new_core(tmp_path)
    feed(core, 0, len(BARS) // 2)
    assert core.trading is not None
    before = core.trading.to_doc()
    for bar in BARS[: len(BARS) // 2]:
        assert not core.process_bar(bar)
    assert core.trading.to_doc() == before


# -- a real process, killed ---------------------------------------------------------------


CLI = (sys.executable, "-m", "bigalpha_tui.cli")


def headless(data: Path, duration: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(data.parent / "xdg")}
    env.pop("BIGALPHA_DATA_DIR", None)
    return subprocess.Popen(
        [*CLI, "--no-ui", "--speed", "max", "--duration", duration, "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the store")
        time.sleep(0.02)


def open_in_saved_book(data: Path) -> int:
    book = Store(data).read_json(POSITIONS) if (data / POSITIONS).exists() else None
    return len(book["open"]) if isinstance(book, dict) else 0


def in_book(record_time_s: float, symbol: str, book: dict[str, Any]) -> bool:
    """Was this record's bar applied by the saved book? (A kill can land after a bar's
    appends and before its save: that bar is re-applied after the restart, appends skipped.)"""
    bar_open_ms = round(record_time_s * 1000) - 60_000
    return bar_open_ms <= book["last_open_ms"].get(symbol, -1)


def check_consistent(data: Path) -> dict[str, Any]:
    store = Store(data)
    book = store.read_json(POSITIONS)
    assert book is not None
    outcomes = list(store.iter_jsonl(SHADOW_OUTCOMES))
    blocks = list(store.iter_jsonl(GUARD_BLOCKS))
    outcome_ids = [o["id"] for o in outcomes]
    block_ids = [b["id"] for b in blocks]
    assert len(set(outcome_ids)) == len(outcome_ids), "an outcome was appended twice"
    assert len(set(block_ids)) == len(block_ids), "a block was appended twice"
    outcomes = [o for o in outcomes if in_book(o["exit_s"], o["symbol"], book)]
    blocks = [b for b in blocks if in_book(b["time_s"], b["symbol"], book)]
    outcome_ids = [o["id"] for o in outcomes]
    open_twins = {t["id"] for t in book["twins"]}
    twinned = {t.get("twin_of") for t in [*outcomes, *book["twins"]]}
    for trade in book["closed"]:  # every live trade has its shadow twin, closed or open
        assert trade["id"] in twinned
    for block in blocks:  # every block has its blocked twin, closed or open
        assert block["twin_id"] in outcome_ids or block["twin_id"] in open_twins
    per_reason = Counter(b["reason"] for b in blocks)
    closed_twins = Counter(o["block_reason"] for o in outcomes if o["ledger"] == "blocked")
    for reason, tally in book["guard"].items():
        assert tally["blocked"] == per_reason.get(reason, 0), reason
        assert tally["twins_closed"] == closed_twins.get(reason, 0), reason
    assert book["totals"]["closed_count"] == len(book["closed"])
    symbols = [p["symbol"] for p in book["open"]]
    assert len(symbols) == len(set(symbols)), "two live positions on one symbol"
    return book


def test_sigkill_mid_run_then_restart_keeps_the_ledgers_consistent(tmp_path: Path) -> None:
    data = tmp_path / "store"
    first = headless(data, "3d")
    try:
        wait_for(lambda: len(list(Store(data).iter_jsonl(GUARD_BLOCKS))) >= 3, timeout_s=60)
        # killed while it holds positions, or the resume check below would check nothing
        wait_for(lambda: open_in_saved_book(data) > 0, timeout_s=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = check_consistent(data)
    assert at_kill["open"], "the kill landed while no position was open"
    # from the engines' checkpoint, which may be hours older, through the golden hour (every
    # live trade of the day) into the evening's blocks: a whole day adds only more blocks
    second = headless(data, "10h")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    after = check_consistent(data)
    # the restart resumed the positions that were open at the kill (or closed them since)
    closed_since = {t["id"] for t in after["closed"]}
    still_open = {p["id"] for p in after["open"]}
    for position in at_kill["open"]:
        assert position["id"] in closed_since | still_open
    for symbol, last_ms in at_kill["last_open_ms"].items():
        assert after["last_open_ms"][symbol] > last_ms  # it went on from where it was killed


def test_the_event_log_survives_a_restart(tmp_path: Path) -> None:
    """A restart (or a cockpit attaching to the restarted bot) opens on the recent events,
    not on an empty log."""
    first = new_core(tmp_path)
    feed(first, 0, len(BARS) // 4)
    first.checkpoint()
    before = list(first.events)
    assert len(before) > 20
    second = new_core(tmp_path)
    seen = [(e.time_s, e.kind, e.symbol, e.message, dict(e.data)) for e in second.events]
    assert seen == [(e.time_s, e.kind, e.symbol, e.message, dict(e.data)) for e in before]
