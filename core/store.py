"""The feature store: JSON state files written atomically, JSONL logs appended.

Crash-only: a write is a temp file in the same folder, fsync, `os.replace`, fsync of the
folder, so after `kill -9` every file is either the old or the new version. A file that
cannot be read is moved aside to `NAME.corrupt-<time>` and reported; it is never overwritten.

JSONL logs: opening the store repairs a torn last line (a kill mid-append) by copying the
partial bytes to `NAME.corrupt-<time>` and then cutting them off, so every log holds whole
lines only and no byte is dropped unseen. A log past `jsonl_rotate_bytes` is rotated to
`NAME.1` (older ones shift to `NAME.2` ... `NAME.<ROTATED_KEEP>`, the oldest dropped);
readers that need history pass `with_rotated=True`.

Hostile files: no symlink is followed. Every store file, log and the lock is opened with
`O_NOFOLLOW` and checked to be a plain file; a symlink, folder or FIFO where a store file
should be is set aside like a corrupt file (the link itself is renamed, its target never
touched); a symlinked data folder, sub-folder or lock stops start-up. Folders are 0700 and
files 0600: owner-only, made so at start for what an older version left wider.

Schema versions: a state file written before `schema_version` existed (missing or 0) is
migrated by the function registered for it in `MIGRATIONS`; the original is kept as
`NAME.schema0-<time>`. A file with no migration, or from a future version, is set aside.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .errors import StoreError
from .logrepeats import RepeatedLog

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

WHALE_FLOW = "intelligence/whale_flow.json"
HURST_CACHE = "hurst_cache.json"
SYMBOL_STATES = "symbol_states.json"
POSITIONS = "positions_futures.json"
SHADOW_OUTCOMES = "shadow_trade_outcomes.jsonl"
LIVE_OUTCOMES = "live_trade_outcomes.jsonl"  # every closed live trade: the journal's history
GUARD_BLOCKS = "guard_blocks.jsonl"
LEARNING_HISTORY = "learning_history.jsonl"
ENGINE_STATE = "engine_state.json"
RECENT_EVENTS = "recent_events.json"

JSON_FILES = (WHALE_FLOW, HURST_CACHE, SYMBOL_STATES, POSITIONS, ENGINE_STATE, RECENT_EVENTS)
JSONL_FILES = (SHADOW_OUTCOMES, LIVE_OUTCOMES, GUARD_BLOCKS, LEARNING_HISTORY)

#: Sub-folders of the data folder (the cockpit's log lives in `logs/`).
SUB_FOLDERS = ("intelligence", "logs")
FILE_MODE = 0o600
DIR_MODE = 0o700

#: Rotated generations kept per JSONL log (`NAME.1` newest ... `NAME.4` oldest).
ROTATED_KEEP = 4
MIB = 1 << 20

Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _migrate_engine_state_v0(doc: dict[str, Any]) -> dict[str, Any]:
    """v0 listed the switched-off guards (`guards_off`); v1 maps every guard to on/off."""
    doc = dict(doc)
    off = doc.pop("guards_off", [])
    if not isinstance(off, list):
        raise ValueError("guards_off must be a list of guard names")
    guards = doc.get("guards_enabled", {})
    if not isinstance(guards, dict):
        raise ValueError("guards_enabled must be a table")
    doc["guards_enabled"] = {**guards, **{str(name): False for name in off}}
    return doc


#: Legacy (schema 0 or no `schema_version`) -> current, per state file.
MIGRATIONS: dict[str, Migration] = {ENGINE_STATE: _migrate_engine_state_v0}


@dataclass(frozen=True, slots=True)
class StoreWarning:
    """Something the operator must be told about the store."""

    file: str
    message: str


class NotAPlainFile(OSError):
    """A symlink, folder, FIFO or device where the store expects a plain file."""

    def __init__(self, path: Path | str, kind: str) -> None:
        self.reason = f"{Path(path).name} is {kind}, not a plain file"
        super().__init__(errno.EINVAL, self.reason)
        self.kind = kind


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a file"
    return "a device or special file"


def not_a_plain_file(path: Path) -> NotAPlainFile | None:
    """What stands at `path` when it is there and is not a plain file (lstat: no following)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(mode) else NotAPlainFile(path, _kind_of(mode))


def private_opener(path: str | Path, flags: int) -> int:
    """`open(..., opener=private_opener)`: never follows a symlink, never blocks on a FIFO,
    creates 0600, and raises NotAPlainFile unless a plain file was opened."""
    extra = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | extra, FILE_MODE)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EOPNOTSUPP):
            odd = not_a_plain_file(Path(path))
            if odd is not None:
                raise odd from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotAPlainFile(path, _kind_of(mode))
    return fd


def _read_plain(path: Path) -> bytes:
    with open(path, "rb", opener=private_opener) as fh:
        return fh.read()


def ensure_private_dir(path: Path, what: str) -> None:
    """Make `path` an owner-only folder; StoreError when a symlink or a file stands there."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(
            f"{what} {path} is a symbolic link, which the store never follows;"
            " give --data-dir a real folder"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(
            f"{what} {path} is {_kind_of(st.st_mode)}, not a folder; give --data-dir a folder"
        )
    if stat.S_IMODE(st.st_mode) == DIR_MODE or st.st_uid != os.geteuid():
        return
    if not _holds_only_store_files(path):
        # `--data-dir ~` or `/tmp`: narrowing a folder the store does not own would harm
        log.warning(
            "store: %s %s is open to other users (mode %o) and holds other files;"
            " give the store a folder of its own",
            what,
            path,
            stat.S_IMODE(st.st_mode),
        )
        return
    try:
        os.chmod(path, DIR_MODE)
    except OSError as exc:
        log.warning("store: cannot make %s owner-only: %s", path, exc)


#: What the store, the cockpit and the control channel put in the data folder: state files
#: and logs with their rotated, set-aside and temp copies, `.lock`, `control.sock`, folders.
_STORE_ENTRY = re.compile(
    r"\.?([a-z_]+\.jsonl?|cockpit\.log|lock|control\.sock|intelligence|logs)([.-].*)?"
)


def _is_store_entry(name: str) -> bool:
    return _STORE_ENTRY.fullmatch(name) is not None


def _holds_only_store_files(folder: Path) -> bool:
    try:
        return all(_is_store_entry(name) for name in os.listdir(folder))
    except OSError:
        return False


def ensure_data_dir(root: Path) -> None:
    """The data folder and its parents; the folder itself owner-only and not a symlink."""
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the data folder {root}: {exc.strerror or exc}") from None
    ensure_private_dir(root, "the data folder")


def _make_private(path: Path) -> None:
    """0600 for a plain file, 0700 for a folder, through the entry itself (never a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return  # a symlink or a socket: nothing of ours to narrow
    try:
        st = os.fstat(fd)
        want = FILE_MODE if stat.S_ISREG(st.st_mode) else DIR_MODE
        if (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and (
            stat.S_IMODE(st.st_mode) != want and st.st_uid == os.geteuid()
        ):
            os.fchmod(fd, want)
    except OSError as exc:
        log.warning("store: cannot make %s owner-only: %s", path, exc)
    finally:
        os.close(fd)


def _free_name(path: Path, tag: str, now_s: float) -> Path:
    stamp = datetime.fromtimestamp(now_s, UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.{tag}-{stamp}")
    n = 1
    while os.path.lexists(target):
        n += 1
        target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
    return target


def make_room_for_private_file(path: Path) -> str | None:
    """Before a file outside the Store (the cockpit's log) is opened: its folder owner-only,
    and a symlink or folder standing in its place renamed to `NAME.corrupt-<time>`. Returns
    the warning to give, if any."""
    ensure_private_dir(path.parent, "the log folder")
    odd = not_a_plain_file(path)
    if odd is None:
        return None
    target = _free_name(path, "corrupt", datetime.now(UTC).timestamp())
    try:
        os.replace(path, target)
    except OSError as exc:
        raise StoreError(f"{odd.reason} and cannot be set aside: {exc.strerror}") from None
    return f"{odd.reason}; set aside as {target.name}"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` so a crash leaves the old or the new file, never a mix
    (`durable=False` skips the fsyncs: for throwaway folders such as a replay's)."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    # mkstemp: O_EXCL and 0600, in the same folder so the replace is one rename
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _fsync_dir(path.parent)


def to_json(obj: Any) -> str:
    """Compact JSON; inf/nan (which JSON has not) as strings the reader turns back. The
    walk that replaces them runs only when a first attempt finds one (it costs more than
    the encoding itself on a big book)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False)


def _finite(obj: Any) -> Any:
    """JSON has no inf/nan: store them as strings the reader turns back."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else "-inf" if obj < 0 else "nan"
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


@dataclass(slots=True)
class _Journal:
    """The records appended to one followed log since a reader's last read."""

    base: int = -1  # the log's size (disk and waiting lines) at that read; -1: none yet
    size: int = -1  # `base` and the bytes appended since
    records: list[dict[str, Any]] = field(default_factory=list)

    def note(self, record: dict[str, Any] | None, length: int) -> None:
        """One line of `length` bytes appended; None: not a record the store encoded."""
        if self.base < 0:
            return
        if record is None:  # the caller's own text: no record to hand over for it
            self.base = self.size = -1
            self.records = []
            return
        self.records.append(record)
        self.size += length


class Store:
    """One feature-store folder. Not thread-safe: the core owns it."""

    def __init__(
        self,
        root: Path,
        *,
        now: Callable[[], float] | None = None,
        read_only: bool = False,
        jsonl_rotate_bytes: int = 64 * MIB,
        durable: bool = True,
    ) -> None:
        self.root = Path(root)
        self.read_only = read_only
        self.durable = durable  # False: no fsync (a throwaway folder: replay, tests)
        self._buffer_logs = False  # `buffer_logs`: a throwaway store's only
        self._pending_lines: dict[str, list[bytes]] = {}
        self._pending_size: dict[str, int] = {}  # their bytes, per log
        # a state file's last version: its bytes, or (`write_json(owned=True)`) the
        # document itself, encoded when it is flushed or read
        self._pending_docs: dict[str, bytes | dict[str, Any]] = {}
        self._journals: dict[str, _Journal] = {}  # `follow_log`
        self.jsonl_rotate_bytes = jsonl_rotate_bytes
        self.warnings: list[StoreWarning] = []
        self.write_failures = 0
        self.last_write_error: str | None = None
        self._failure_log = RepeatedLog(log, logging.ERROR)  # a full disk: once, then counted
        self._now = now or (lambda: datetime.now(UTC).timestamp())
        if read_only:
            self._refuse_linked_folders()
            return
        ensure_data_dir(self.root)
        ensure_private_dir(self.root / "intelligence", "the data folder's")
        self._refuse_linked_folders()
        self.sweep_temp_files()
        self.make_owner_only()
        for name in JSONL_FILES:
            self.repair_torn_tail(name)

    @property
    def buffer_logs(self) -> bool:
        """True (a throwaway replay's store): log lines wait in memory until the log is
        read, `flush_logs` or the end of the run, then go to disk in one write per log; a
        state file's last version waits until `flush_logs` (reads see it). A durable store
        (live, sim, a replay into a kept folder) refuses it: what it saves must be on disk
        when the call returns, not lost with the process."""
        return self._buffer_logs

    @buffer_logs.setter
    def buffer_logs(self, on: bool) -> None:
        if on and self.durable:
            raise ValueError("a durable store never buffers its writes (durable=False first)")
        if not on:
            self.flush_logs()
            for journal in self._journals.values():  # a store writing at once hands nothing
                journal.base = journal.size = -1  # over: nothing is kept for it either
                journal.records = []
        self._buffer_logs = on

    def _refuse_linked_folders(self) -> None:
        for folder in (self.root, *(self.root / sub for sub in SUB_FOLDERS)):
            if folder.is_symlink():
                raise StoreError(
                    f"{folder} is a symbolic link, which the store never follows; use the real"
                    f" folder ({os.path.realpath(folder)}) or another --data-dir"
                )

    def make_owner_only(self) -> None:
        """What an older version (or a umask) left readable by others becomes 0600/0700."""
        for folder in (self.root, *(self.root / sub for sub in SUB_FOLDERS)):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue  # absent (logs/ before the first cockpit run)
            for entry in entries:
                if _is_store_entry(entry.name):  # never a file of the operator's own
                    _make_private(Path(entry.path))

    def sweep_temp_files(self) -> int:
        """Remove temp files a killed write left behind (they never hold the live copy)."""
        removed = 0
        for folder in (self.root, self.root / "intelligence"):
            for tmp in folder.glob(".*.tmp"):
                try:
                    tmp.unlink()
                    removed += 1
                except OSError as exc:
                    log.warning("store: cannot remove leftover %s: %s", tmp, exc)
        return removed

    def path(self, name: str) -> Path:
        return self.root / name

    # -- JSON state files -------------------------------------------------------------

    def write_json(self, name: str, payload: dict[str, Any], *, owned: bool = False) -> bool:
        """Write a state file atomically. False (and a warning) when the disk refused.

        `owned`: the caller hands `payload` over, nothing in it (at any depth) changes after
        the call; a throwaway store (`buffer_logs`) then keeps the document and encodes it
        only when it is flushed or read (a replay saves the book before each of hundreds of
        learning cycles, and only the last version reaches the disk). The same bytes."""
        if self.read_only:
            return True
        doc = {"schema_version": SCHEMA_VERSION, **payload}
        if self._buffer_logs:  # a throwaway store: the last version is written at the flush
            # moved to the end: the flush writes in the order of the last writes, as a direct
            # store's files were last written (the book saved after the engines stays so)
            self._pending_docs.pop(name, None)
            self._pending_docs[name] = doc if owned else to_json(doc).encode()
            return True
        return self._write_doc(name, to_json(doc).encode())

    def pending_doc(self, name: str) -> dict[str, Any] | None:
        """The document an `owned` write left waiting in memory (a throwaway store's), as
        it was handed over (`schema_version` included), not encoded: what `read_json` would
        give back through JSON (its enums as their values, no tuples). For a reader that
        only looks: it must change nothing in it. None when no such document waits."""
        doc = self._pending_docs.get(name)
        return doc if isinstance(doc, dict) else None

    def _pending_bytes(self, name: str) -> bytes | None:
        """A waiting state file's bytes, encoded now (and kept so) when it waits unencoded."""
        pending = self._pending_docs.get(name)
        if isinstance(pending, dict):
            pending = to_json(pending).encode()
            self._pending_docs[name] = pending  # same key: its place in the order is kept
        return pending

    def _write_doc(self, name: str, data: bytes) -> bool:
        odd = not_a_plain_file(self.path(name))
        if odd is not None and self.quarantine(name, odd.reason) is None:
            self._write_failed(name, odd)
            return False
        try:
            atomic_write_bytes(self.path(name), data, durable=self.durable)
        except OSError as exc:
            self._write_failed(name, exc)
            return False
        self.last_write_error = None
        self._failure_log.end()
        return True

    def read_json(self, name: str) -> dict[str, Any] | None:
        """The payload of a state file, None when absent or set aside as unreadable."""
        path = self.path(name)
        try:
            pending = self._pending_bytes(name)
            raw = _read_plain(path) if pending is None else pending
        except FileNotFoundError:
            return None
        except NotAPlainFile as exc:
            self.quarantine(name, exc.reason)
            return None
        except OSError as exc:
            self._warn(name, f"cannot read: {exc}")
            return None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.quarantine(name, f"not valid JSON ({exc.__class__.__name__})")
            return None
        except RecursionError:
            self.quarantine(name, "not valid JSON (nested too deep)")
            return None
        if not isinstance(doc, dict):
            self.quarantine(name, "not a JSON object")
            return None
        version = doc.pop("schema_version", None)
        if version in (None, 0) and name in MIGRATIONS:
            return self._migrate(name, doc, raw)
        if version != SCHEMA_VERSION:
            self.quarantine(name, f"schema_version {version!r}, expected {SCHEMA_VERSION}")
            return None
        return doc

    def _migrate(self, name: str, doc: dict[str, Any], raw: bytes) -> dict[str, Any] | None:
        """Bring a legacy file to the current schema; the original bytes are kept aside."""
        try:
            migrated = MIGRATIONS[name](doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.quarantine(name, f"legacy file could not be migrated ({exc})")
            return None
        if self.read_only:
            self._warn(name, f"legacy schema 0 read as {SCHEMA_VERSION} (read-only: not saved)")
            return migrated
        kept = self._free_name(name, "schema0")
        try:
            atomic_write_bytes(kept, raw)
        except OSError as exc:
            self._warn(name, f"legacy schema 0 not migrated: cannot keep the original: {exc}")
            return None
        if not self.write_json(name, migrated):
            return None
        self._warn(
            name, f"migrated from schema 0 to {SCHEMA_VERSION}; original kept as {kept.name}"
        )
        return migrated

    def _free_name(self, name: str, tag: str) -> Path:
        """`NAME.<tag>-<time>`, with a counter when that exists already (never overwrite)."""
        return _free_name(self.path(name), tag, self._now())

    def load_or_quarantine(self, name: str, parse: Callable[[dict[str, Any]], Any]) -> Any:
        """Read and parse a state file; a payload `parse` rejects is set aside."""
        doc = self.read_json(name)
        if doc is None:
            return None
        try:
            return parse(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.quarantine(name, f"unexpected content ({exc.__class__.__name__}: {exc})")
            return None

    # -- JSONL logs -------------------------------------------------------------------

    def append_jsonl(self, name: str, record: dict[str, Any], text: str | None = None) -> bool:
        """Append one whole line; the fsync makes it durable before we go on. `text`: the
        record's `to_json`, when the caller already made it."""
        if self.read_only:
            return True
        line = ((to_json(record) if text is None else text) + "\n").encode()
        journal = self._journals.get(name)
        if journal is not None:
            journal.note(record if text is None else None, len(line))
        if self._buffer_logs:
            self._pending_lines.setdefault(name, []).append(line)
            self._pending_size[name] = self._pending_size.get(name, 0) + len(line)
            return True
        return self._append_lines(name, [line])

    def follow_log(self, name: str) -> None:
        """Keep the records appended to log `name` from now on, for `appended_records`
        (the caller then takes them at each read, or they pile up). The record handed to
        `append_jsonl` is kept as it is: its caller changes nothing in it afterwards."""
        self._journals.setdefault(name, _Journal())

    def follows_log(self, name: str) -> bool:
        """Does `appended_records` answer for log `name` (followed, a throwaway store)?"""
        return self._buffer_logs and name in self._journals

    def log_read_to(self, name: str, size: int) -> None:
        """A reader has just read log `name` whole from the disk, `size` bytes of whole
        lines, nothing waiting (`read_log_bytes`): the records followed start there."""
        journal = self._journals.get(name)
        if journal is not None:
            journal.base = journal.size = size
            journal.records = []

    def appended_records(self, name: str, since: int) -> tuple[list[dict[str, Any]], int] | None:
        """The records appended to a followed log since it held `since` bytes (the size of
        the last `log_read_to` or the last answer), oldest first, as handed to `append_jsonl`,
        and the log's size now; without reading the log: each is the line the store wrote,
        decoded. Only for a throwaway store (`buffer_logs`), whose folder no one else
        writes; and only while the log's size is what those appends made it (a log cut,
        grown or replaced on disk gives None: `read_log_bytes` then), it has no rotated
        generation and is short of the rotation size (the flush a read makes would not
        rotate it). None otherwise, or when a line was appended as the caller's own text."""
        journal = self._journals.get(name)
        if journal is None or not self._buffer_logs or journal.base < 0 or journal.base != since:
            return None
        if journal.size >= self.jsonl_rotate_bytes or self.rotated_paths(name):
            return None
        try:
            st = os.lstat(self.path(name))
        except FileNotFoundError:
            on_disk = 0
        except OSError:
            return None
        else:
            if not stat.S_ISREG(st.st_mode):
                return None
            on_disk = st.st_size
        waiting = self._pending_size.get(name, 0)
        if on_disk + waiting != journal.size:
            return None
        records, journal.records = journal.records, []
        journal.base = journal.size
        return records, journal.size

    def flush_logs(self, name: str | None = None) -> bool:
        """Write the log lines waiting in memory (`buffer_logs`), and with no `name` the
        state files too; False when the disk refused (what it refused is dropped: only a
        throwaway store buffers)."""
        names = list(self._pending_lines) if name is None else [name]
        ok = True
        for log_name in names:
            lines = self._pending_lines.pop(log_name, None)
            self._pending_size.pop(log_name, None)
            if lines:
                ok = self._append_lines(log_name, lines) and ok
        if name is None:  # and every state file waiting (a throwaway store's)
            while self._pending_docs:
                doc_name = next(iter(self._pending_docs))
                data = self._pending_bytes(doc_name)
                del self._pending_docs[doc_name]
                if data is not None:
                    ok = self._write_doc(doc_name, data) and ok
        return ok

    def _append_lines(self, name: str, lines: list[bytes]) -> bool:
        """Append whole lines, rotating before a line exactly where one append at a time
        would (when the log has reached the size limit)."""
        path = self.path(name)
        start = 0
        while start < len(lines):
            size_before: int | None = None
            try:
                self._rotate_or_carry_on(path)
                with self._open_log(name, path) as fh:
                    size_before = fh.tell()
                    if size_before > 0 and not _ends_with_newline(fh.fileno(), size_before):
                        fh.write(b"\n")  # a torn last line must not swallow this record
                    size = fh.tell()
                    end = start
                    while end < len(lines) and (end == start or size < self.jsonl_rotate_bytes):
                        size += len(lines[end])
                        end += 1
                    fh.write(b"".join(lines[start:end]))
                    fh.flush()
                    if self.durable:
                        os.fsync(fh.fileno())
            except OSError as exc:
                self._write_failed(name, exc)
                if size_before is not None:
                    _cut_back(path, size_before)  # a refused record must not half-exist
                return False
            start = end
        return True

    def _open_log(self, name: str, path: Path) -> BinaryIO:
        """The log opened for appending; a symlink or folder in its place is set aside first."""
        try:
            return open(path, "a+b", opener=private_opener)
        except NotAPlainFile as exc:
            if self.quarantine(name, exc.reason) is None:
                raise
        return open(path, "a+b", opener=private_opener)

    def _rotate_or_carry_on(self, path: Path) -> None:
        """A failed rotation must not lose the record: it goes to the unrotated log."""
        try:
            self._rotate_if_full(path)
        except OSError as exc:
            log.warning("store %s: rotation failed, appending anyway: %s", path.name, exc)

    def _rotate_if_full(self, path: Path) -> None:
        """Past the size limit: NAME.3 -> NAME.4 ... NAME -> NAME.1 (each rename atomic)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        size = st.st_size
        if size < self.jsonl_rotate_bytes or not stat.S_ISREG(st.st_mode):
            return
        for n in range(ROTATED_KEEP - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if os.path.lexists(older):
                os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
        _fsync_dir(path.parent)
        log.info("store %s: rotated at %d bytes", path.name, size)

    def rotated_paths(self, name: str) -> list[Path]:
        """The rotated generations of a log that exist, oldest first. Anything there that is
        not a plain file (a symlink) is set aside, never read."""
        path = self.path(name)
        found: list[Path] = []
        for n in range(ROTATED_KEEP, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            odd = not_a_plain_file(older)
            if odd is not None:
                self._set_aside(name, older, f"rotated {older.name}: {odd.reason}")
            elif older.exists():
                found.append(older)
        return found

    def repair_torn_tail(self, name: str) -> Path | None:
        """Cut a partial last line off a log, after copying it to `NAME.corrupt-<time>`."""
        path = self.path(name)
        try:
            data = _read_plain(path)
        except FileNotFoundError:
            return None
        except NotAPlainFile as exc:
            return self.quarantine(name, exc.reason)
        except OSError as exc:
            self._warn(name, f"cannot read: {exc}")
            return None
        if not data or data.endswith(b"\n"):
            return None
        keep = data.rfind(b"\n") + 1
        target = self._free_name(name, "corrupt")
        try:
            atomic_write_bytes(target, data[keep:])
            with open(path, "r+b", opener=private_opener) as fh:
                fh.truncate(keep)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            self._warn(name, f"torn last line left in place (cannot set it aside: {exc})")
            return None
        self._warn(
            name,
            f"torn last line ({len(data) - keep} bytes, a write cut off by a crash) set aside"
            f" as {target.name}",
        )
        return target

    def read_log_bytes(self, name: str) -> bytes | None:
        """A log's file as it stands, its lines waiting in memory written first (b"" when
        absent); None when it has rotated generations or cannot be read as a plain file
        (`iter_jsonl_lines` then reads them and says what is wrong)."""
        self.flush_logs(name)
        if self.rotated_paths(name):
            return None
        try:
            return _read_plain(self.path(name))
        except FileNotFoundError:
            return b""
        except OSError:
            return None

    def iter_jsonl(self, name: str, *, with_rotated: bool = False) -> Iterator[dict[str, Any]]:
        """The records of a log, oldest first; `with_rotated` reads NAME.4 ... NAME.1 first."""
        for _, record in self.iter_jsonl_lines(name, with_rotated=with_rotated):
            if record is not None:
                yield record

    def iter_jsonl_lines(
        self, name: str, *, with_rotated: bool = False, known: Container[object] = ()
    ) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
        """Each readable line of a log with its record, oldest first; a line in `known` (one
        the caller has already read and kept) comes with None instead, not decoded again."""
        self.flush_logs(name)
        if with_rotated:
            for path in self.rotated_paths(name):
                yield from self._iter_jsonl_file(name, path, known)
        yield from self._iter_jsonl_file(name, self.path(name), known)

    def _iter_jsonl_file(
        self, name: str, path: Path, known: Container[object]
    ) -> Iterator[tuple[bytes, dict[str, Any] | None]]:
        try:
            fh = open(path, "rb", opener=private_opener)  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        except NotAPlainFile as exc:
            self._set_aside(name, path, exc.reason)
            return
        except OSError as exc:
            self._warn(name, f"cannot read: {exc}")
            return
        bad = 0
        with fh:
            for raw in fh:
                if raw in known:
                    yield raw, None
                    continue
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                    bad += 1
                    continue
                if isinstance(rec, dict):
                    yield raw, rec
                else:
                    bad += 1
        if bad:
            where = "" if path == self.path(name) else f"rotated {path.name}: "
            self._warn(name, f"{where}skipped {bad} unreadable line(s) (torn write or hand edit)")

    # -- faults -----------------------------------------------------------------------

    def quarantine(self, name: str, reason: str) -> Path | None:
        """Move an unreadable file aside, never overwrite it, and tell the operator."""
        self._write_pending_doc(name)  # what the reader read is what is set aside
        return self._set_aside(name, self.path(name), reason)

    def _write_pending_doc(self, name: str) -> None:
        """A state file waiting in memory (`buffer_logs`) goes to disk now: a read of it
        found it wanting, and what is set aside must be it, not an older version on disk
        (nor may it go on answering reads after being set aside)."""
        pending = self._pending_bytes(name)
        if pending is not None:
            del self._pending_docs[name]
            self._write_doc(name, pending)

    def set_aside_records(self, name: str, reasons: list[str]) -> Path | None:
        """Some records of a state file did not read and were left out, the rest are in use:
        keep a copy of the whole original (the caller then saves what it kept) and say
        which records and why."""
        shown = "; ".join(reasons[:3]) + (
            f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        )
        if self.read_only:
            self._warn(name, f"{len(reasons)} record(s) left out: {shown} (read-only)")
            return None
        self._write_pending_doc(name)
        target = self._free_name(name, "corrupt")
        try:
            atomic_write_bytes(target, _read_plain(self.path(name)), durable=self.durable)
        except OSError as exc:
            self._warn(name, f"{len(reasons)} record(s) left out: {shown}; no copy kept: {exc}")
            return None
        self._warn(
            name,
            f"{len(reasons)} record(s) set aside, the rest kept: {shown};"
            f" the original file is kept as {target.name}",
        )
        return target

    def _set_aside(self, name: str, path: Path, reason: str) -> Path | None:
        """Rename `path` (the entry itself: a symlink is moved, its target never touched)."""
        if self.read_only:
            self._warn(name, f"{reason} (left in place: read-only)")
            return None
        target = self._free_name(str(path.relative_to(self.root)), "corrupt")
        try:
            os.replace(path, target)
        except OSError as exc:
            self._warn(name, f"{reason}; could not set it aside: {exc}")
            return None
        _make_private(target)
        self._warn(name, f"{reason}; set aside as {target.name}, starting from defaults")
        return target

    def _warn(self, name: str, message: str) -> None:
        warning = StoreWarning(name, message)
        self.warnings.append(warning)
        log.warning("store %s: %s", name, message)

    def _write_failed(self, name: str, exc: OSError) -> None:
        self.write_failures += 1
        import errno

        what = "disk full" if exc.errno == errno.ENOSPC else "store write failed"
        self.last_write_error = f"{what}: {name}: {exc.strerror or exc}"
        kind = f"store: {what} ({exc.strerror or exc.__class__.__name__})"
        self._failure_log.log(kind, f"store {name}: {self.last_write_error}")

    @property
    def healthy(self) -> bool:
        return self.last_write_error is None


LOCK_FILE = ".lock"


class StoreLock:
    """One running instance per store: an exclusive `flock` the kernel drops on any exit.

    `kill -9` needs no cleanup: the lock dies with the process; the pid in the file is only
    there to tell the operator who holds it.
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StoreError naming the holder. Re-entrant per process."""
        import fcntl

        ensure_data_dir(self.path.parent)
        key = self.path.resolve()
        if key in _HELD_LOCKS:
            return
        try:
            fd = private_opener(self.path, os.O_RDWR | os.O_CREAT)
        except NotAPlainFile as exc:
            raise StoreError(
                f"the lock file {self.path} is {exc.kind}, not a plain file; remove it"
                " and start again"
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"another bigalpha-tui (pid {holder}) is using {self.path.parent}; stop it, "
                "or use --data-dir for a second instance ('status' still reads it)"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot write the lock file {self.path}: {exc.strerror}") from None
        self._fd = fd
        _HELD_LOCKS[key] = self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            _HELD_LOCKS.pop(self.path.resolve(), None)


_HELD_LOCKS: dict[Path, StoreLock] = {}


def _cut_back(path: Path, size: int) -> None:
    """Undo a failed append, so the caller's retry cannot write the record twice."""
    try:
        with open(path, "r+b", opener=private_opener) as fh:
            fh.truncate(size)
    except OSError as exc:
        log.warning("store %s: cannot undo a failed append: %s", path.name, exc)


def _ends_with_newline(fd: int, size: int) -> bool:
    return os.pread(fd, 1, size - 1) == b"\n"


def from_finite(value: Any) -> float:
    """Inverse of the inf/nan encoding for one number."""
    if isinstance(value, str):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"expected a number, got {value!r}")
