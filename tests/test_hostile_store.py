"""Hypothesis plants hostile files all over a store that a real run wrote, then starts the bot.

Any mix of the store's files may be a symlink to a file outside the store, a folder, a
document nested past the JSON parser's limit, the wrong JSON type, a number the size of
1e308 or a "nan" string in a record: the bot must start (no exception), never touch a
link's target, set each hostile file aside, keep the open positions of an untouched book
exactly, and fire the emergency stop of every position it kept at the first bar back.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigalpha_tui import runtime
from bigalpha_tui.core import store as store_mod
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.sources.sim import DEFAULT_START_MS, SimParams, simulate_minutes
from bigalpha_tui.core.store import JSON_FILES, JSONL_FILES, POSITIONS
from bigalpha_tui.core.types import ExitReason

PRECIOUS = b"root:x:0:0:root:/root:/bin/bash\n"
FORMS = ("symlink", "folder", "deep", "wrong-type", "huge", "nan-string")
MINUTES = 200  # the golden hour opens at 09:00: positions are open by 10:00


@pytest.fixture(autouse=True)
def release_locks() -> Iterator[None]:
    yield
    for lock in list(store_mod._HELD_LOCKS.values()):
        lock.release()


def build(data: Path) -> runtime.Runtime:
    return runtime.build(argparse.Namespace(data_dir=str(data), config=os.devnull))


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Bar]]:
    """A store after 200 simulated minutes with open positions, and the bars after them."""
    data = tmp_path_factory.mktemp("ran") / "store"
    rt = build(data)
    stream = simulate_minutes(rt.config.source.symbols, 7, DEFAULT_START_MS, SimParams())
    minutes = [m for _, m in zip(range(MINUTES + 1), stream, strict=False)]
    for minute in minutes[:MINUTES]:
        for bar in minute:
            rt.core.process_bar(bar)
    rt.core.checkpoint()
    for lock in list(store_mod._HELD_LOCKS.values()):
        lock.release()
    assert rt.core.trading is not None and rt.core.trading.live, "positions must be open"
    return data, minutes[MINUTES]


def spoil(path: Path, form: str, outside: Path) -> Path | None:
    """Make `path` hostile; the victim file a symlink points at, if any."""
    if path.exists() or path.is_symlink():
        path.unlink()
    if form == "symlink":
        victim = outside / f"victim-{path.name}"
        victim.write_bytes(PRECIOUS)
        path.symlink_to(victim)
        return victim
    if form == "folder":
        path.mkdir()
    elif form == "deep":
        path.write_text("[" * 5000 + "]" * 5000)
    elif form == "wrong-type":
        path.write_text('["schema_version", 1]' if path.suffix == ".json" else "42\n")
    elif form == "huge":
        path.write_text(
            '{"schema_version": 1, "open": [{"original_qty": 1e308}], "symbols": 1e308}'
        )
    else:
        path.write_text('{"schema_version": 1, "open": "nan", "symbols": {"X": "nan"}}')
    return None


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    planted=st.dictionaries(
        st.sampled_from([*JSON_FILES, *JSONL_FILES]), st.sampled_from(FORMS), max_size=5
    )
)
def test_the_bot_starts_on_any_mix_of_hostile_files(
    tmp_path_factory: pytest.TempPathFactory,
    ran: tuple[Path, list[Bar]],
    planted: dict[str, str],
) -> None:
    source, next_minute = ran
    root = tmp_path_factory.mktemp("hostile")
    data = root / "store"
    shutil.copytree(source, data, symlinks=True)
    outside = root / "outside"
    outside.mkdir()
    before: dict[str, Any] = json.loads((data / POSITIONS).read_text())
    victims = [v for name, form in planted.items() if (v := spoil(data / name, form, outside))]

    rt = build(data)
    trading = rt.core.trading
    assert trading is not None
    for bar in next_minute:  # the first bar back swings 50 % both ways: every stop is crossed
        rt.core.process_bar(dataclasses.replace(bar, low=bar.low * 0.5, high=bar.high * 1.5))
    rt.core.checkpoint()

    assert all(v.read_bytes() == PRECIOUS for v in victims), "a link's target was touched"
    assert not [p for p in data.rglob("*") if p.is_symlink() and ".corrupt-" not in p.name]
    for name, form in planted.items():
        if name in JSON_FILES or form in ("symlink", "folder"):
            assert list(data.glob(f"{name}.corrupt-*")), f"{name} ({form}) was not set aside"
    if POSITIONS not in planted:
        stopped = {t.id for t in trading.closed_live if t.exit_reasons[-1] is ExitReason.STOP}
        for position in before["open"]:
            assert position["id"] in stopped, f"{position['id']}: its stop did not fire"
