"""Crash safety: the headless core SIGKILLed at random moments, dozens of times (thousands
with `pytest --long`).

Each lane is one data folder: start `bigalpha-tui --no-ui --speed max`, wait until the store
shows progress (or, now and then, not at all: a kill during start-up), wait a random moment
(seeded), SIGKILL, check the store, start again. After every kill:

- opening the store repairs what the kill tore (a JSONL line cut mid-append is copied to
  `NAME.corrupt-<time>` and cut off) and nothing else is set aside: no JSON file quarantined;
- every JSON file parses and carries `schema_version`; every JSONL line is a whole record;
- a core restored from the store holds every open position (id, force-hold deadline, tiers
  taken), pending order, guard switch, probation state, buffer and the learning schedule the
  files hold, without a single store warning;
- the ledgers agree with each other and with the previous kill: no trade id opened twice,
  none vanished (an open position is still open with the same terms or closed in the book),
  the closed count grows by exactly the new closed ids, shadow outcome and block ids unique.

One lane switches FEE_EDGE off before its first start (engine_state.json), the other through
the control channel (`ctl guard FEE_EDGE off`) while running; the switch must survive every
kill. The default 100 kills (16 of them during start-up) take about 35 s; `pytest --long`
runs 2,000, and $BIGALPHA_CRASH_KILLS sets any other count for the default run. (Fewer
default kills are not enough: the lane that checkpoints every bar moves slowly on a busy
machine, 60 kills took it barely past its first closed trade in a full suite run.)
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from trading_helpers import ListSource

from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.learning import LearningLoop
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS
from bigalpha_tui.core.store import (
    ENGINE_STATE,
    GUARD_BLOCKS,
    JSON_FILES,
    JSONL_FILES,
    LEARNING_HISTORY,
    POSITIONS,
    SCHEMA_VERSION,
    SHADOW_OUTCOMES,
    SYMBOL_STATES,
    Store,
    _finite,
)
from bigalpha_tui.core.types import BlockReason

CI_KILLS = int(os.environ.get("BIGALPHA_CRASH_KILLS", "100"))
LONG_KILLS = 2000
LANES = 2
SEED = 20260107
PROGRESS_TIMEOUT_S = 30.0
STARTUP_KILL_EVERY = 6  # one kill in six lands during start-up, before any progress
CLI = (sys.executable, "-m", "bigalpha_tui.cli")


# -- the child process ---------------------------------------------------------------------


def write_config(xdg: Path, checkpoint_min_wall_s: float) -> None:
    folder = xdg / "bigalpha-tui"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(
        f"[store]\ncheckpoint_min_wall_s = {checkpoint_min_wall_s}\n", encoding="utf-8"
    )


def start(data: Path, xdg: Path, *more: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(xdg)}
    env.pop("BIGALPHA_DATA_DIR", None)
    return subprocess.Popen(
        [*CLI, "--no-ui", "--speed", "max", "--data-dir", str(data), *more],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def fingerprint(data: Path) -> tuple[tuple[str, int, int], ...]:
    """What the store looks like from outside: each file's size and modification time."""
    out = []
    for name in (*JSON_FILES, *JSONL_FILES):
        try:
            st = (data / name).stat()
        except FileNotFoundError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def switch_guard_off_through_ctl(data: Path) -> None:
    from bigalpha_tui.ctl import NotRunning, send

    def sent() -> bool:
        try:
            return send(data, "guard FEE_EDGE off", 10.0).ok
        except NotRunning:
            return False

    wait_until(sent, PROGRESS_TIMEOUT_S, "the control channel")
    wait_until(lambda: not guards_on(data), 10.0, "the guard switch in engine_state.json")


def guards_on(data: Path) -> bool:
    try:
        doc = json.loads((data / ENGINE_STATE).read_bytes())
    except FileNotFoundError:
        return True
    return bool(doc.get("guards_enabled", {}).get("FEE_EDGE", True))


# -- what every kill must leave behind -------------------------------------------------------


@dataclass
class Lane:
    """One data folder's history across its kills."""

    data: Path
    xdg: Path
    rng: random.Random
    guard_switched: bool = False
    fee_edge_blocks_at_switch: int | None = None
    kills: int = 0
    torn_tails: int = 0
    book: dict[str, Any] | None = None
    states: dict[str, Any] | None = None
    ever_closed: set[str] = field(default_factory=set)
    first_bar_ms: int | None = None


def load_raw_json(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    doc = json.loads(path.read_bytes().decode("utf-8"))
    assert isinstance(doc, dict), path.name
    assert doc.get("schema_version") == SCHEMA_VERSION, path.name
    return doc


def check_files(lane: Lane) -> None:
    store = Store(lane.data)  # what a restart does first: sweep temps, repair torn tails
    for warning in store.warnings:
        assert "torn last line" in warning.message, warning
        lane.torn_tails += 1
    for aside in lane.data.rglob("*.corrupt-*"):
        owner = aside.name.split(".corrupt-")[0]
        assert owner in JSONL_FILES, f"{aside.name}: a JSON file was set aside after a kill"
        assert b"\n" not in aside.read_bytes(), f"{aside.name} holds more than a torn tail"
    assert not list(lane.data.rglob(".*.tmp")), "a temp file survived the store's start"
    for name in JSON_FILES:
        load_raw_json(lane.data / name)
    for name in JSONL_FILES:
        raw = (lane.data / name).read_bytes() if (lane.data / name).exists() else b""
        assert not raw or raw.endswith(b"\n"), f"{name}: torn tail left after repair"
        for line in raw.splitlines():
            assert isinstance(json.loads(line), dict), name


def restored_core(data: Path) -> tuple[Core, LearningLoop]:
    """A core started on the store as a restart would (read-only: it changes nothing)."""
    store = Store(data, read_only=True)
    core = Core(Config(), ListSource([]), SimClock(0.0), store, read_only=True)
    learning = core.learning
    assert learning is not None
    assert store.warnings == [], store.warnings
    return core, learning


def check_restore(lane: Lane, book: dict[str, Any] | None, states: dict[str, Any] | None) -> None:
    core, learning = restored_core(lane.data)
    trading = core.trading
    assert trading is not None
    if book is not None:
        live = {p.id: p.to_record() for p in trading.live.values()}
        assert live == {p["id"]: p for p in book["open"]}
        assert sorted(o.id for o in trading.pending.values()) == sorted(
            o["id"] for o in book["pending"]
        )
        assert sorted(trading.twins) == sorted(t["id"] for t in book["twins"])
        assert trading.last_open_ms == book["last_open_ms"]
    if lane.guard_switched:
        assert core.guards_enabled[BlockReason.FEE_EDGE] is False, "the guard switch was lost"
    if states is not None:
        loop_states = {s: _finite(v.to_record()) for s, v in learning.statuses.items()}
        for symbol, record in states["symbols"].items():
            assert loop_states[symbol] == record, symbol
        assert _finite(learning.schedule.to_record()) == states["learning"]


def check_ledgers(lane: Lane, book: dict[str, Any] | None) -> None:
    store = Store(lane.data, read_only=True)
    outcome_ids = [o["id"] for o in list(store.iter_jsonl(SHADOW_OUTCOMES))]
    blocks = list(store.iter_jsonl(GUARD_BLOCKS))
    assert len(set(outcome_ids)) == len(outcome_ids), "a shadow outcome was recorded twice"
    block_ids = [b["id"] for b in blocks]
    assert len(set(block_ids)) == len(block_ids), "a block was recorded twice"
    fee_edge_blocks = sum(b["reason"] == BlockReason.FEE_EDGE.value for b in blocks)
    if lane.fee_edge_blocks_at_switch is not None:
        assert fee_edge_blocks == lane.fee_edge_blocks_at_switch, "a switched-off guard blocked"
    if book is None:
        return
    closed_ids = [t["id"] for t in book["closed"]]
    open_ids = [p["id"] for p in book["open"]]
    assert len(set(closed_ids)) == len(closed_ids), "a trade was closed twice"
    assert not set(open_ids) & lane.ever_closed, "a closed trade was opened again"
    assert not set(open_ids) & set(closed_ids)
    symbols = [p["symbol"] for p in book["open"]]
    assert len(symbols) == len(set(symbols)), "two live positions on one symbol"
    outcomes = list(store.iter_jsonl(SHADOW_OUTCOMES))
    twinned = {t.get("twin_of") for t in [*outcomes, *book["twins"]]}
    for trade_id in closed_ids:  # every closed live trade has its shadow twin somewhere
        assert trade_id in twinned, trade_id
    before = lane.book
    if before is not None:
        new_closed = set(closed_ids) - lane.ever_closed
        grown = book["totals"]["closed_count"] - before["totals"]["closed_count"]
        assert grown == len(new_closed), "the closed count and the closed trades disagree"
        now_open = {p["id"]: p for p in book["open"]}
        for position in before["open"]:
            if position["id"] in now_open:
                same = now_open[position["id"]]
                for key in ("entry_price", "entry_s", "force_hold_until_s", "original_qty"):
                    assert same[key] == position[key], (position["id"], key)
                assert same["exits"][: len(position["exits"])] == position["exits"]
            else:
                assert position["id"] in closed_ids, f"open position {position['id']} vanished"
        for symbol, last_ms in before["last_open_ms"].items():
            assert book["last_open_ms"].get(symbol, -1) >= last_ms, "the book went back"
    lane.ever_closed |= set(closed_ids)


def check_learning(lane: Lane, states: dict[str, Any] | None) -> None:
    before = lane.states
    if states is None:
        assert before is None, "symbol_states.json vanished"
        return
    if before is None:
        return
    was, now = before["learning"], states["learning"]
    assert now["cycles"] >= was["cycles"], "the learning schedule went back"
    if was.get("last_slot_s") is not None:
        assert now["last_slot_s"] >= was["last_slot_s"], "the learning schedule went back"
    for symbol, record in before["symbols"].items():
        after = states["symbols"][symbol]
        assert after["slippage_buffer_bps"] >= record["slippage_buffer_bps"], symbol
        if now["cycles"] == was["cycles"]:
            assert after == record, f"{symbol}: probation state changed without a cycle"


def check_after_kill(lane: Lane) -> None:
    check_files(lane)
    book = load_raw_json(lane.data / POSITIONS)
    states = load_raw_json(lane.data / SYMBOL_STATES)
    check_restore(lane, book, states)
    check_ledgers(lane, book)
    check_learning(lane, states)
    if book is not None:
        lane.book = book
        if lane.first_bar_ms is None and book["last_open_ms"]:
            lane.first_bar_ms = min(book["last_open_ms"].values())
    lane.states = states


# -- the kill loop ---------------------------------------------------------------------------


def kill_once(lane: Lane, guard_via_ctl: bool) -> None:
    before = fingerprint(lane.data)
    child = start(lane.data, lane.xdg)
    try:
        if guard_via_ctl and not lane.guard_switched:
            switch_guard_off_through_ctl(lane.data)
            mark_guard_switched(lane)
        if lane.kills % STARTUP_KILL_EVERY == STARTUP_KILL_EVERY - 1:
            time.sleep(lane.rng.uniform(0.0, 0.6))  # anywhere in start-up and restore
        else:
            wait_until(
                lambda: fingerprint(lane.data) != before or child.poll() is not None,
                PROGRESS_TIMEOUT_S,
                "the store to change",
            )
            time.sleep(lane.rng.uniform(0.0, 0.3))
        assert child.poll() is None, f"the core exited by itself (status {child.returncode})"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    lane.kills += 1
    check_after_kill(lane)


def mark_guard_switched(lane: Lane) -> None:
    lane.guard_switched = True
    blocks = list(Store(lane.data, read_only=True).iter_jsonl(GUARD_BLOCKS))
    lane.fee_edge_blocks_at_switch = sum(b["reason"] == "FEE_EDGE" for b in blocks)


def make_lane(root: Path, index: int) -> Lane:
    data = root / f"lane{index}"
    xdg = root / f"xdg{index}"
    write_config(xdg, checkpoint_min_wall_s=0.0 if index % 2 == 0 else 0.25)
    lane = Lane(data, xdg, random.Random(SEED + index))
    if index % 2 == 0:  # switched off before the first start
        data.mkdir(parents=True)
        Store(data).write_json(
            ENGINE_STATE,
            {"last_bar_ms": None, "paused": False, "guards_enabled": {"FEE_EDGE": False}},
        )
        mark_guard_switched(lane)
    return lane


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, long_run: bool, report_figure: Callable[[str], None]
) -> None:
    kills_per_lane = (LONG_KILLS if long_run else CI_KILLS) // LANES
    lanes = [make_lane(tmp_path, i) for i in range(LANES)]
    failures: list[BaseException] = []

    def run(lane: Lane, index: int) -> None:
        try:
            for _ in range(kills_per_lane):
                kill_once(lane, guard_via_ctl=index % 2 == 1)
        except BaseException as exc:  # handed to the main thread
            failures.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(lane, i)) for i, lane in enumerate(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if failures:
        raise failures[0]
    survived = sum(lane.kills for lane in lanes)
    torn = sum(lane.torn_tails for lane in lanes)
    closed = sum(len(lane.ever_closed) for lane in lanes)
    market_h = sum(
        (max(lane.book["last_open_ms"].values()) - (lane.first_bar_ms or 0)) / 3_600_000
        for lane in lanes
        if lane.book is not None
    )
    report_figure(
        f"crash safety: {survived} SIGKILLs survived in {elapsed:.0f} s over {LANES} stores"
        f" ({market_h:.0f} market hours, {closed} live trades closed, {torn} torn JSONL"
        " tails repaired), nothing lost or duplicated"
    )
    assert survived == kills_per_lane * LANES
    for lane in lanes:
        assert lane.book is not None and lane.ever_closed, "the lane never traded"
        assert lane.guard_switched
    same_as_never_killed(lanes[0], tmp_path / "never-killed", report_figure)


# -- killed = never killed -------------------------------------------------------------------


def run_to_the_end(data: Path, xdg: Path, duration: str) -> None:
    child = start(data, xdg, "--duration", duration)
    assert child.wait(timeout=300) == 0


def decisions(data: Path) -> dict[str, Any]:
    """Every record that a decision wrote: blocks, twins' outcomes, learning cycles, the book's
    closed trades, totals, guard report and open positions."""
    store = Store(data, read_only=True)
    book = load_raw_json(data / POSITIONS)
    assert book is not None
    return {
        "blocks": list(store.iter_jsonl(GUARD_BLOCKS)),
        "outcomes": list(store.iter_jsonl(SHADOW_OUTCOMES)),
        "learning": list(store.iter_jsonl(LEARNING_HISTORY)),
        **{key: book[key] for key in ("closed", "totals", "guard", "open", "pending")},
    }


def same_as_never_killed(lane: Lane, straight: Path, report_figure: Callable[[str], None]) -> None:
    """The lane killed dozens of times (a thousand with --long), run on cleanly for two more
    market hours, holds exactly the records of one run that was never stopped, to the same
    market time.
    (Lane 0 has no operator action mid-run: its guard was switched off before the start.)"""
    run_to_the_end(lane.data, lane.xdg, "2h")
    engine = load_raw_json(lane.data / ENGINE_STATE)
    assert engine is not None
    end_s = (engine["last_bar_ms"] + 60_000) / 1000
    straight.mkdir(parents=True)
    Store(straight).write_json(
        ENGINE_STATE, {"last_bar_ms": None, "paused": False, "guards_enabled": {"FEE_EDGE": False}}
    )
    run_to_the_end(straight, lane.xdg, f"{end_s - DEFAULT_START_MS / 1000:.0f}s")
    killed, never = decisions(lane.data), decisions(straight)
    for key in never:
        assert killed[key] == never[key], f"{key} differs from the run never killed"
    hours = (end_s - DEFAULT_START_MS / 1000) / 3600
    report_figure(
        f"restart = uninterrupted: {lane.kills} SIGKILLs, then {len(never['closed'])} live"
        f" trades, {len(never['blocks'])} blocks, {len(never['outcomes'])} twin outcomes and"
        f" {len(never['learning'])} learning cycles over {hours:.0f} market hours, identical"
        " to the run never killed"
    )


# -- the repair a restart does ---------------------------------------------------------------


def test_a_torn_jsonl_tail_is_set_aside_and_cut_off_when_the_store_opens(tmp_path: Path) -> None:
    Store(tmp_path).append_jsonl(SHADOW_OUTCOMES, {"id": "S-1"})
    with open(tmp_path / SHADOW_OUTCOMES, "ab") as fh:
        fh.write(b'{"id": "S-2", "pnl_u')  # the kill landed mid-append
    store = Store(tmp_path, now=lambda: 1_767_600_000.0)
    assert (tmp_path / SHADOW_OUTCOMES).read_bytes() == b'{"id":"S-1"}\n'
    aside = list(tmp_path.glob(f"{SHADOW_OUTCOMES}.corrupt-*"))
    assert [p.read_bytes() for p in aside] == [b'{"id": "S-2", "pnl_u']
    assert any("torn last line (20 bytes" in w.message for w in store.warnings)
    assert [r["id"] for r in list(store.iter_jsonl(SHADOW_OUTCOMES))] == ["S-1"]
    assert store.warnings[-1].message.endswith(aside[0].name)


def test_a_whole_log_is_left_alone_when_the_store_opens(tmp_path: Path) -> None:
    Store(tmp_path).append_jsonl(GUARD_BLOCKS, {"id": "G-1"})
    store = Store(tmp_path)
    assert store.warnings == []
    assert not list(tmp_path.glob("*.corrupt-*"))
