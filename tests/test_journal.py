"""The trade journal's store reader: every closed live trade once, newest first, each with
its shadow twin found through `twin_of`."""

from __future__ import annotations

from pathlib import Path

from snapshot_fixtures import journal_trades, seed_journal

from bigalpha_tui.core.journal import pair_twins, read_journal
from bigalpha_tui.core.store import LIVE_OUTCOMES, Store


def test_journal_lists_log_and_recent_trades_once_newest_first(tmp_path: Path) -> None:
    seed_journal(tmp_path)
    journal = read_journal(Store(tmp_path, read_only=True))
    assert [e.trade.id for e in journal.entries] == ["L-5", "L-4", "L-3", "L-2", "L-1"]
    exits = [e.trade.exit_s for e in journal.entries]
    assert exits == sorted(exits, reverse=True)
    assert journal.unreadable == 0


def test_journal_pairs_each_trade_with_its_twin_by_twin_of(tmp_path: Path) -> None:
    seed_journal(tmp_path)
    twins = {e.trade.id: e.twin for e in read_journal(Store(tmp_path, read_only=True)).entries}
    assert {k: (t.id if t else None) for k, t in twins.items()} == {
        "L-1": "S-1",
        "L-2": "S-2",
        "L-3": "S-3",
        "L-4": "S-4",
        "L-5": None,  # no twin closed: shown as such, and the blocked twin is not taken
    }


def test_pairing_ignores_order_and_twins_of_other_trades() -> None:
    old, both, pre_log, shadow = journal_trades()
    entries = pair_twins([*reversed(old), *both, *pre_log, *old], shadow)
    assert [e.trade.id for e in entries] == ["L-5", "L-4", "L-3", "L-2", "L-1"]
    assert entries[2].twin_pnl_usd == 2.9
    assert entries[0].hold_s == 25 * 60


def test_a_bad_record_is_counted_and_left_out(tmp_path: Path) -> None:
    seed_journal(tmp_path)
    Store(tmp_path).append_jsonl(LIVE_OUTCOMES, {"id": "L-9", "ledger": "live"})
    journal = read_journal(Store(tmp_path, read_only=True))
    assert journal.unreadable == 1
    assert len(journal.entries) == 5
    assert [e.trade.id for e in journal.for_symbol("btc")] == ["L-4", "L-1"]


def test_an_empty_store_has_an_empty_journal(tmp_path: Path) -> None:
    assert read_journal(Store(tmp_path, read_only=True)).entries == ()
