"""`bigalpha-tui status` says what the operator steers: paused entries, guards switched off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bigalpha_tui.cli import cmd_status
from bigalpha_tui.core.store import ENGINE_STATE, Store
from bigalpha_tui.status import read_status, render_status


def save_engine_state(data: Path, *, paused: bool, guards: dict[str, bool]) -> None:
    state = {"last_bar_ms": 1_767_601_860_000, "source": "sim", "paused": paused}
    Store(data).write_json(ENGINE_STATE, {**state, "guards_enabled": guards})


def test_status_json_says_paused_and_which_guards_are_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guards = {"MAX_POSITIONS": True, "FEE_EDGE": False, "WHALE_CONFLICT": False}
    save_engine_state(tmp_path, paused=True, guards=guards)
    assert cmd_status(["--json", "--data-dir", str(tmp_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["paused"] is True
    assert doc["guards_off"] == ["FEE_EDGE", "WHALE_CONFLICT"]


def test_status_json_of_a_running_bot_with_every_guard_on(tmp_path: Path) -> None:
    save_engine_state(tmp_path, paused=False, guards={"FEE_EDGE": True})
    status = read_status(tmp_path)
    assert status["paused"] is False and status["guards_off"] == []


def test_status_json_of_an_empty_folder_is_not_paused(tmp_path: Path) -> None:
    status = read_status(tmp_path / "nothing-here")
    assert status["paused"] is False and status["guards_off"] == []


def test_status_text_says_paused_and_guards_off_on_its_first_lines(tmp_path: Path) -> None:
    save_engine_state(tmp_path, paused=True, guards={"FEE_EDGE": False, "MAX_POSITIONS": True})
    first = render_status(read_status(tmp_path)).splitlines()[:3]
    assert any("entries: PAUSED" in line for line in first), first
    assert any("guards off: FEE_EDGE" in line for line in first), first


def test_status_text_of_a_running_bot_says_entries_are_on(tmp_path: Path) -> None:
    save_engine_state(tmp_path, paused=False, guards={"FEE_EDGE": True})
    first = render_status(read_status(tmp_path)).splitlines()[:3]
    assert any("entries: on" in line for line in first), first
    assert any("guards: all on" in line for line in first), first
