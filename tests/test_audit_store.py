"""The store's in-memory buffering (a throwaway replay's) against hostile use."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigalpha_tui.core.store import GUARD_BLOCKS, POSITIONS, Store


def test_a_durable_store_refuses_to_buffer(tmp_path: Path) -> None:
    """Live, sim and a replay into a kept folder write through at once: asking a durable
    store to buffer is a programming error, refused before anything waits in memory."""
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="durable"):
        store.buffer_logs = True
    assert store.buffer_logs is False
    assert store.write_json(POSITIONS, {"n": 1})
    assert store.append_jsonl(GUARD_BLOCKS, {"id": "G-1"})
    other = Store(tmp_path, read_only=True)  # another reader sees both at once
    assert other.read_json(POSITIONS) == {"n": 1}
    assert [r["id"] for r in other.iter_jsonl(GUARD_BLOCKS)] == ["G-1"]


def test_buffering_switched_off_writes_what_waits_and_reads_the_disk_again(
    tmp_path: Path,
) -> None:
    """Before, a state file written while buffering kept answering reads after buffering
    was switched off: a newer version written straight to disk was never seen (stale)."""
    store = Store(tmp_path, durable=False)
    store.buffer_logs = True
    store.write_json(POSITIONS, {"n": 1})
    store.append_jsonl(GUARD_BLOCKS, {"id": "G-1"})
    assert not store.path(POSITIONS).exists()
    store.buffer_logs = False
    assert Store(tmp_path, read_only=True).read_json(POSITIONS) == {"n": 1}
    assert [r["id"] for r in Store(tmp_path, read_only=True).iter_jsonl(GUARD_BLOCKS)] == ["G-1"]
    store.write_json(POSITIONS, {"n": 2})
    assert store.read_json(POSITIONS) == {"n": 2}


def test_a_pending_state_file_is_read_even_where_a_symlink_now_stands(tmp_path: Path) -> None:
    """A buffered state file answers reads from memory; at the flush, a symlink put in its
    place meanwhile is set aside, never written through."""
    store = Store(tmp_path, durable=False)
    store.buffer_logs = True
    store.write_json(POSITIONS, {"n": 1})
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    store.path(POSITIONS).symlink_to(target)
    assert store.read_json(POSITIONS) == {"n": 1}
    assert store.flush_logs()
    assert target.read_text() == "{}"
    assert not store.path(POSITIONS).is_symlink()
    assert Store(tmp_path, read_only=True).read_json(POSITIONS) == {"n": 1}


def _refuse(doc: dict[str, object]) -> object:
    raise ValueError("unexpected")


@pytest.mark.parametrize("buffered", [False, True])
def test_a_state_file_set_aside_is_gone_from_a_buffered_store_too(
    tmp_path: Path, buffered: bool
) -> None:
    """A state file its reader refuses is set aside and reads as absent afterwards. Before,
    a buffered store's version in memory was not: the rename found nothing on disk ('could
    not set it aside'), reads kept returning it and the flush wrote it back."""
    store = Store(tmp_path, durable=False, now=lambda: 1_767_600_000.0)
    store.buffer_logs = buffered
    store.write_json(POSITIONS, {"n": 1})
    assert store.load_or_quarantine(POSITIONS, _refuse) is None
    assert store.read_json(POSITIONS) is None
    store.flush_logs()
    assert not store.path(POSITIONS).exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(f"{POSITIONS}.corrupt")]
    assert len(kept) == 1 and b'"n":1' in kept[0].read_bytes()
    assert not any("could not set it aside" in w.message for w in store.warnings)


@pytest.mark.parametrize("buffered", [False, True])
def test_records_set_aside_keep_a_copy_of_the_version_that_was_read(
    tmp_path: Path, buffered: bool
) -> None:
    store = Store(tmp_path, durable=False, now=lambda: 1_767_600_000.0)
    store.buffer_logs = buffered
    store.write_json(POSITIONS, {"n": 1})
    store.write_json(POSITIONS, {"n": 2})
    copy = store.set_aside_records(POSITIONS, ["record 3: bad"])
    assert copy is not None and b'"n":2' in copy.read_bytes()


def test_the_flush_writes_state_files_in_the_order_of_their_last_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill during the flush leaves what a kill at that moment of a direct run would: the
    files last written first are on disk first (before, the order of their first writes)."""
    from bigalpha_tui.core.store import ENGINE_STATE

    store = Store(tmp_path, durable=False)
    store.buffer_logs = True
    written: list[str] = []
    real = store._write_doc
    monkeypatch.setattr(
        store, "_write_doc", lambda name, data: written.append(name) or real(name, data)
    )
    store.write_json(ENGINE_STATE, {"n": 1})
    store.write_json(POSITIONS, {"n": 1})
    store.write_json(ENGINE_STATE, {"n": 2})
    store.flush_logs()
    assert written == [POSITIONS, ENGINE_STATE]
