"""bench/soak.py against the in-process fake Binance with scripted faults (a short day with
two symbols; the 30-day figures are a measurement, run by hand:
`python bench/soak.py --source fake-binance --faults`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parent.parent / "bench" / "soak.py"


def test_a_short_live_soak_with_faults_gets_every_bar_once_and_keeps_spacing(
    tmp_path: Path,
) -> None:
    options = ["--source", "fake-binance", "--faults", "--days", "1", "--warmup-days", "0.25"]
    options += ["--symbols", "BTCUSDT,ETHUSDT", "--max-growth-pct", "50", "--rotate-mb", "0.05"]
    run = subprocess.run(
        [sys.executable, str(SOAK), *options, "--data-dir", str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-4000:]
    assert "verdict: FLAT and BOUNDED" in out and "verdict: EVERY BAR ONCE, SPACING KEPT" in out
    ingested, expected = map(int, re.search(r"bars ingested (\d+) / expected (\d+)", out).groups())
    assert ingested == expected == 2 * (150 + 1440)
    assert "emitted twice 0, minutes skipped 0, open klines emitted 0" in out
    spacing = float(re.search(r"min request spacing ([\d.]+) s", out).group(1))
    assert spacing >= 2.5
    faults = dict(re.findall(r"(\w+) (\d+)", out.split("faults injected ")[1].splitlines()[0]))
    for kind in ("429", "418", "500", "timeout", "malformed", "empty", "twice", "missing"):
        assert int(faults[kind]) > 0, f"no {kind} fault injected: {faults}"
    assert int(re.search(r"duplicates dropped (\d+)", out).group(1)) > 0
    assert "store write failures 0" in out
