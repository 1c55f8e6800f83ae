"""The learning loop's read of the outcome log from where it stopped (`LogTail`), attacked.

Two identical store folders go through the same changes to the outcome log: appended,
cut, regrown, edited in the middle at the same size, a torn last line, rotated, removed,
replaced by a symlink, a FIFO or a folder. After every change one folder is read with the
kept cache and tail (as a replay's cycles read it), the other afresh: the ledgers, the
warnings and the files left in the folder must be the same every time. A symlink is never
followed: its target's trades are never read, and it is set aside as every reader does.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from learning_helpers import shadow, trades

from bigalpha_tui.core.learning_store import LedgerRead, LogTail, TradeCache, read_ledgers
from bigalpha_tui.core.store import POSITIONS, SHADOW_OUTCOMES, Store
from bigalpha_tui.core.trades import ClosedTrade

LINES = [(json.dumps(t.to_record()) + "\n").encode() for t in shadow([float(i) for i in range(60)])]
Change = Callable[[Path, random.Random], None]


def _log(root: Path) -> Path:
    return root / SHADOW_OUTCOMES


def _append(root: Path, rng: random.Random) -> None:
    with _log(root).open("ab") as fh:
        fh.write(b"".join(rng.sample(LINES, rng.randint(1, 4))))


def _torn(root: Path, rng: random.Random) -> None:
    line = rng.choice(LINES)
    with _log(root).open("ab") as fh:
        fh.write(line[: rng.randint(1, len(line) - 1)])


def _whole_line_without_newline(root: Path, rng: random.Random) -> None:
    with _log(root).open("ab") as fh:
        fh.write(rng.choice(LINES).rstrip(b"\n"))


def _newline(root: Path, rng: random.Random) -> None:
    with _log(root).open("ab") as fh:
        fh.write(b"\n")


def _cut(root: Path, rng: random.Random) -> None:
    path = _log(root)
    if path.is_file() and not path.is_symlink():
        data = path.read_bytes()
        path.write_bytes(data[: rng.randint(0, len(data))])


def _edit_same_size(root: Path, rng: random.Random) -> None:
    path = _log(root)
    if path.is_file() and not path.is_symlink():
        data = bytearray(path.read_bytes())
        at = data.find(b'"pnl_usd": ', rng.randint(0, max(0, len(data) - 1)))
        if at >= 0:
            digit = at + len(b'"pnl_usd": ')
            data[digit : digit + 1] = str((int(chr(data[digit])) + 1) % 10).encode()
            path.write_bytes(bytes(data))


def _bad_line(root: Path, rng: random.Random) -> None:
    with _log(root).open("ab") as fh:
        fh.write(rng.choice([b'{"id": "broken"}\n', b"[1, 2]\n", b"\xff\xfe\n", b"\n"]))


def _rotate(root: Path, rng: random.Random) -> None:
    path = _log(root)
    if path.is_file() and not path.is_symlink():
        os.replace(path, path.with_name(f"{path.name}.1"))


def _remove(root: Path, rng: random.Random) -> None:
    path = _log(root)
    if path.is_symlink() or path.is_file() or path.is_fifo():
        path.unlink()


def _drop_rotated(root: Path, rng: random.Random) -> None:
    _log(root).with_name(f"{SHADOW_OUTCOMES}.1").unlink(missing_ok=True)


def _symlink(root: Path, rng: random.Random) -> None:
    """The log becomes a symlink to a file holding what it held and more trades."""
    path = _log(root)
    target = root.parent / f"{root.name}-target.jsonl"
    held = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
    target.write_bytes(held + b"".join(LINES[:5]))
    _remove(root, rng)
    path.symlink_to(target)


def _fifo(root: Path, rng: random.Random) -> None:
    _remove(root, rng)
    os.mkfifo(_log(root))


CHANGES: list[Change] = [
    *[_append] * 8,  # mostly growing, as a replay's log does
    _torn,
    _whole_line_without_newline,
    _newline,
    _newline,
    _cut,
    _cut,
    _edit_same_size,
    _bad_line,
    _rotate,
    _drop_rotated,
    _drop_rotated,
    _remove,
    _symlink,
    _fifo,
]


def _state(root: Path, read: LedgerRead, store: Store) -> tuple[object, ...]:
    def ids(found: list[ClosedTrade]) -> list[tuple[str, float]]:
        return [(t.id, t.pnl_usd) for t in found]

    files = sorted(p.name for p in root.iterdir())
    warnings = [(w.file, w.message.split("; set aside as")[0]) for w in store.warnings]
    return ids(read.live), ids(read.shadow), read.unreadable, files, warnings


@pytest.mark.parametrize("seed", range(12))
def test_every_cycle_reads_what_a_fresh_read_reads(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    roots = [tmp_path / "kept", tmp_path / "fresh"]
    stores = [Store(root, durable=False, now=lambda: 1_767_600_000.0) for root in roots]
    closed = [t.to_record() for t in trades([1.0, -2.0])]
    for store in stores:
        store.write_json(POSITIONS, {"closed": closed})
    cache: TradeCache = {}
    tail = LogTail()
    for step in range(60):
        change = rng.choice(CHANGES)
        state = rng.getstate()
        for root in roots:
            rng.setstate(state)  # the same change, to the byte, in both folders
            change(root, rng)
        kept = read_ledgers(stores[0], cache, tail)
        fresh = read_ledgers(stores[1])
        assert _state(roots[0], kept, stores[0]) == _state(roots[1], fresh, stores[1]), (
            step,
            change.__name__,
        )
        if change is _symlink:  # set aside, as every reader of the store does
            assert not _log(roots[0]).is_symlink() and not _log(roots[0]).exists()


def test_a_symlinked_log_is_never_followed_even_after_reads_through_the_tail(
    tmp_path: Path,
) -> None:
    """The tail read a plain log; the log is then swapped for a symlink to a file holding the
    same lines and more: none of the target's lines is read, the link is set aside."""
    root = tmp_path / "store"
    store = Store(root, durable=False)
    cache: TradeCache = {}
    tail = LogTail()
    _log(root).write_bytes(b"".join(LINES[:3]))
    assert len(read_ledgers(store, cache, tail).shadow) == 3
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(b"".join(LINES[:10]))
    _log(root).unlink()
    _log(root).symlink_to(target)
    read = read_ledgers(store, cache, tail)
    assert read.shadow == [] and not _log(root).exists()
    assert target.read_bytes() == b"".join(LINES[:10])
    assert any("symbolic link" in w.message for w in store.warnings)
    _log(root).write_bytes(b"".join(LINES[:2]))  # a plain log again: read as it is
    assert len(read_ledgers(store, cache, tail).shadow) == 2
