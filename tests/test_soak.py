"""bench/soak.py runs, rotates its logs and gives a verdict (half a day; the 30-day figures
are a measurement, run by hand: `python bench/soak.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parent.parent / "bench" / "soak.py"


def test_a_short_soak_reports_rss_store_events_and_bounded_logs(tmp_path: Path) -> None:
    data = tmp_path / "store"
    # half a day holds four learning cycles: with 5 KiB logs every ledger rotates
    options = ["--days", "0.5", "--warmup-days", "0.25", "--max-growth-pct", "50"]
    run = subprocess.run(
        [sys.executable, str(SOAK), *options, "--rotate-mb", "0.005", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RSS start" in run.stdout and "verdict: FLAT and BOUNDED" in run.stdout
    assert "events: " in run.stdout and "store write failures 0" in run.stdout
    assert (data / "learning_history.jsonl.1").exists(), "the soak must exercise rotation"
