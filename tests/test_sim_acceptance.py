"""Acceptance on the embedded simulator: two market days with the defaults (seed 7, six
symbols, default config) exercise every conviction, every guard and the force-hold.
(The two days run once per session, in tests/conftest.py; tests/test_sim_personalities.py
reads the same run.)

`bigalpha-tui --no-ui --speed max --duration 2d` must show entries of every conviction
(ULTRA, HIGH, NORMAL), blocks of every reason GOLDEN_HOUR, MAX_POSITIONS, FEE_EDGE and
WHALE_CONFLICT, and force-held trades (entered while the regime was TRUE_TREND).
"""

from __future__ import annotations

from collections import Counter

import pytest
from two_days import TwoDays


@pytest.mark.slow
def test_two_simulated_days_show_every_conviction_guard_and_force_hold(
    two_default_days: TwoDays,
) -> None:
    result, events = two_default_days.run, two_default_days.events
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
