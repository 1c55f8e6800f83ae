"""The replay's text report says its units and the paper account it measures P&L against."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_replay_cmd import replay, write_klines


def test_the_text_report_gives_units_and_the_starting_and_ending_equity(tmp_path: Path) -> None:
    klines = [str(p) for p in write_klines(tmp_path)]
    config = tmp_path / "config.toml"
    config.write_text("[sizing]\nbase_stake_usd = 200.0\nultra = 2.0\n[gates]\nmax_positions = 3\n")
    as_json = replay(*klines, "--config", str(config), "--json", home=tmp_path)
    as_text = replay(*klines, "--config", str(config), home=tmp_path)
    assert as_json.returncode == 0 and as_text.returncode == 0, as_json.stderr + as_text.stderr
    report = json.loads(as_json.stdout)
    live_net = report["live"]["net_pnl_usd"]
    assert report["live"]["trades"] > 0
    # three positions at the largest multiple (ULTRA, set to 2.0x) of a $200 stake
    assert report["starting_equity_usd"] == pytest.approx(3 * 200.0 * 2.0)
    assert report["ending_equity_usd"] == pytest.approx(1200.0 + live_net)
    assert report["return_pct"] == pytest.approx(100.0 * live_net / 1200.0)

    text = as_text.stdout
    assert (
        "starting equity $1,200.00: 3 positions × $200.00 stake × 2x (the largest multiple)" in text
    )
    ending = re.search(
        r"ending equity +\$([\d,]+\.\d\d) \(live, realised: ([+-])\$([\d,.]+), ", text
    )
    assert ending is not None, text
    assert float(ending[1].replace(",", "")) == pytest.approx(1200.0 + live_net, abs=0.005)
    assert float(ending[2] + ending[3].replace(",", "")) == pytest.approx(live_net, abs=0.005)
    header = next(line for line in text.splitlines() if line.startswith("ledger"))
    assert header.split()[1:] == ["trades", "win", "rate", "net", "P&L", "$", "fees", "$", "PF",
                                  "max", "DD", "$"]  # fmt: skip
    assert "opportunity cost $" in text
    assert re.search(r"force-held +\d+ trades +net [+-]\$\d", text)
