"""Two default market days on the simulator, as the demo runs them (see tests/conftest.py's
`two_default_days` fixture, which runs them once per session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TwoDays:
    """`bigalpha-tui --no-ui --speed max --duration 2d --log-format json` on the defaults
    (no user config), then `status --json` on its data folder."""

    run: subprocess.CompletedProcess[str]
    events: list[dict[str, Any]]
    status: subprocess.CompletedProcess[str]


def run_two_default_days(tmp: Path) -> TwoDays:
    """Run the two days in a fresh folder under `tmp`; the caller asserts on the outcome."""
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp / "xdg-config"),  # no user config is read
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
    }
    env.pop("BIGALPHA_DATA_DIR", None)
    data = str(tmp / "d")
    cli = [sys.executable, "-m", "bigalpha_tui.cli"]
    run = subprocess.run(
        [*cli, "--no-ui", "--speed", "max", "--duration", "2d", "--log-format", "json",
         "--data-dir", data],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    status = subprocess.run(
        [*cli, "status", "--json", "--data-dir", data],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return TwoDays(run, events, status)
