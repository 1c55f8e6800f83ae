"""The wheel installs only `bigalpha_tui`: nothing called core or widgets at the top."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_has_only_bigalpha_tui_at_the_top(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    wheels = list(tmp_path.glob("bigalpha_tui-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"bigalpha_tui", next(t for t in tops if t.endswith(".dist-info"))}
    for module in (
        "bigalpha_tui/core/engine.py",
        "bigalpha_tui/core/sources/sim.py",
        "bigalpha_tui/widgets/__init__.py",
        "bigalpha_tui/cli.py",
    ):
        assert module in names
    assert any(
        n.startswith("bigalpha_tui/assets/") and n.endswith(".tcss") for n in names
    ) or not list((ROOT / "assets").glob("*.tcss"))
