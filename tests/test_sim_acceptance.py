"""Acceptance on the embedded simulator: two market days with the defaults (seed 7, six
symbols, default config) exercise every conviction, every guard and the force-hold.

`bigalpha-tui --no-ui --speed max --duration 2d` must show entries of every conviction
(ULTRA, HIGH, NORMAL), blocks of every reason GOLDEN_HOUR, MAX_POSITIONS, FEE_EDGE and
WHALE_CONFLICT, and force-held trades (entered while the regime was TRUE_TREND).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest


def run_two_days(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),  # no user config is read
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
    }
    env.pop("BIGALPHA_DATA_DIR", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bigalpha_tui.cli",
            "--no-ui",
            "--speed",
            "max",
            "--duration",
            "2d",
            "--log-format",
            "json",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result, events


@pytest.mark.slow
def test_two_simulated_days_show_every_conviction_guard_and_force_hold(tmp_path: Path) -> None:
    result, events = run_two_days(tmp_path)
    assert result.returncode == 0, result.stderr
    entries = [e for e in events if e["kind"] == "entry"]
    blocks = [e for e in events if e["kind"] == "block"]
    convictions = Counter(e["conviction"] for e in entries)
    reasons = Counter(e["reason"] for e in blocks)
    summary = f"entries {dict(convictions)}, blocks {dict(reasons)}"

    assert {"ULTRA", "HIGH", "NORMAL"} <= set(convictions), summary
    for reason in ("GOLDEN_HOUR", "MAX_POSITIONS", "FEE_EDGE", "WHALE_CONFLICT"):
        assert reasons[reason] >= 1, f"no {reason} block: {summary}"
    force_held = [e for e in entries if e["regime"] == "TRUE_TREND"]
    assert force_held, summary
    assert all(e["force_hold_until_s"] is not None for e in force_held)
