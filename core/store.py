"""The feature store: JSON state files written atomically, JSONL logs appended.

Crash-only: a write is a temp file in the same folder, fsync, `os.replace`, fsync of the
folder, so after `kill -9` every file is either the old or the new version. A file that
cannot be read is moved aside to `NAME.corrupt-<time>` and reported; it is never overwritten.

JSONL logs: opening the store repairs a torn last line (a kill mid-append) by copying the
partial bytes to `NAME.corrupt-<time>` and then cutting them off, so every log holds whole
lines only and no byte is dropped unseen. A log past `jsonl_rotate_bytes` is rotated to
`NAME.1` (older ones shift to `NAME.2` ... `NAME.<ROTATED_KEEP>`, the oldest dropped);
readers that need history pass `with_rotated=True`.

Schema versions: a state file written before `schema_version` existed (missing or 0) is
migrated by the function registered for it in `MIGRATIONS`; the original is kept as
`NAME.schema0-<time>`. A file with no migration, or from a future version, is set aside.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import StoreError
from .logrepeats import RepeatedLog

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

WHALE_FLOW = "intelligence/whale_flow.json"
HURST_CACHE = "hurst_cache.json"
SYMBOL_STATES = "symbol_states.json"
POSITIONS = "positions_futures.json"
SHADOW_OUTCOMES = "shadow_trade_outcomes.jsonl"
GUARD_BLOCKS = "guard_blocks.jsonl"
LEARNING_HISTORY = "learning_history.jsonl"
ENGINE_STATE = "engine_state.json"

JSON_FILES = (WHALE_FLOW, HURST_CACHE, SYMBOL_STATES, POSITIONS, ENGINE_STATE)
JSONL_FILES = (SHADOW_OUTCOMES, GUARD_BLOCKS, LEARNING_HISTORY)

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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _finite(obj: Any) -> Any:
    """JSON has no inf/nan: store them as strings the reader turns back."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else "-inf" if obj < 0 else "nan"
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


class Store:
    """One feature-store folder. Not thread-safe: the core owns it."""

    def __init__(
        self,
        root: Path,
        *,
        now: Callable[[], float] | None = None,
        read_only: bool = False,
        jsonl_rotate_bytes: int = 64 * MIB,
    ) -> None:
        self.root = Path(root)
        self.read_only = read_only
        self.jsonl_rotate_bytes = jsonl_rotate_bytes
        self.warnings: list[StoreWarning] = []
        self.write_failures = 0
        self.last_write_error: str | None = None
        self._failure_log = RepeatedLog(log, logging.ERROR)  # a full disk: once, then counted
        self._now = now or (lambda: datetime.now(UTC).timestamp())
        if read_only:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "intelligence").mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the data folder {self.root}: {exc}") from None
        self.sweep_temp_files()
        for name in JSONL_FILES:
            self.repair_torn_tail(name)

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

    def write_json(self, name: str, payload: dict[str, Any]) -> bool:
        """Write a state file atomically. False (and a warning) when the disk refused."""
        if self.read_only:
            return True
        doc = {"schema_version": SCHEMA_VERSION, **_finite(payload)}
        data = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
        try:
            atomic_write_bytes(self.path(name), data)
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
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(name, f"cannot read: {exc}")
            return None
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self.quarantine(name, f"not valid JSON ({exc.__class__.__name__})")
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
        path = self.path(name)
        stamp = datetime.fromtimestamp(self._now(), UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.{tag}-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.{tag}-{stamp}-{n}")
        return target

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

    def append_jsonl(self, name: str, record: dict[str, Any]) -> bool:
        """Append one whole line; the fsync makes it durable before we go on."""
        if self.read_only:
            return True
        path = self.path(name)
        line = json.dumps(_finite(record), separators=(",", ":"), allow_nan=False) + "\n"
        size_before: int | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._rotate_or_carry_on(path)
            with open(path, "ab") as fh:
                size_before = fh.tell()
                if size_before > 0 and not _ends_with_newline(path):
                    fh.write(b"\n")  # a torn last line must not swallow this record
                fh.write(line.encode())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            self._write_failed(name, exc)
            if size_before is not None:
                _cut_back(path, size_before)  # a refused record must not half-exist
            return False
        return True

    def _rotate_or_carry_on(self, path: Path) -> None:
        """A failed rotation must not lose the record: it goes to the unrotated log."""
        try:
            self._rotate_if_full(path)
        except OSError as exc:
            log.warning("store %s: rotation failed, appending anyway: %s", path.name, exc)

    def _rotate_if_full(self, path: Path) -> None:
        """Past the size limit: NAME.3 -> NAME.4 ... NAME -> NAME.1 (each rename atomic)."""
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        if size < self.jsonl_rotate_bytes:
            return
        for n in range(ROTATED_KEEP - 1, 0, -1):
            older = path.with_name(f"{path.name}.{n}")
            if older.exists():
                os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
        os.replace(path, path.with_name(f"{path.name}.1"))
        _fsync_dir(path.parent)
        log.info("store %s: rotated at %d bytes", path.name, size)

    def rotated_paths(self, name: str) -> list[Path]:
        """The rotated generations of a log that exist, oldest first."""
        path = self.path(name)
        older = (path.with_name(f"{path.name}.{n}") for n in range(ROTATED_KEEP, 0, -1))
        return [p for p in older if p.exists()]

    def repair_torn_tail(self, name: str) -> Path | None:
        """Cut a partial last line off a log, after copying it to `NAME.corrupt-<time>`."""
        path = self.path(name)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn(name, f"cannot read: {exc}")
            return None
        if not data or data.endswith(b"\n"):
            return None
        keep = data.rfind(b"\n") + 1
        target = self._free_name(name, "corrupt")
        try:
            atomic_write_bytes(target, data[keep:])
            with open(path, "r+b") as fh:
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

    def read_jsonl(self, name: str, *, with_rotated: bool = False) -> list[dict[str, Any]]:
        """Every whole record; a torn or garbled line is skipped with one warning."""
        return list(self.iter_jsonl(name, with_rotated=with_rotated))

    def iter_jsonl(self, name: str, *, with_rotated: bool = False) -> Iterator[dict[str, Any]]:
        """The records of a log, oldest first; `with_rotated` reads NAME.4 ... NAME.1 first."""
        if with_rotated:
            for path in self.rotated_paths(name):
                yield from self._iter_jsonl_file(name, path)
        yield from self._iter_jsonl_file(name, self.path(name))

    def _iter_jsonl_file(self, name: str, path: Path) -> Iterator[dict[str, Any]]:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed by the with below; errors differ
        except FileNotFoundError:
            return
        except OSError as exc:
            self._warn(name, f"cannot read: {exc}")
            return
        bad = 0
        with fh:
            for raw in fh:
                try:
                    rec = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    bad += 1
                    continue
                if isinstance(rec, dict):
                    yield rec
                else:
                    bad += 1
        if bad:
            where = "" if path == self.path(name) else f"rotated {path.name}: "
            self._warn(name, f"{where}skipped {bad} unreadable line(s) (torn write or hand edit)")

    # -- faults -----------------------------------------------------------------------

    def quarantine(self, name: str, reason: str) -> Path | None:
        """Move an unreadable file aside, never overwrite it, and tell the operator."""
        if self.read_only:
            self._warn(name, f"{reason} (left in place: read-only)")
            return None
        path = self.path(name)
        target = self._free_name(name, "corrupt")
        try:
            os.replace(path, target)
        except OSError as exc:
            self._warn(name, f"{reason}; could not set it aside: {exc}")
            return None
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

        key = self.path.resolve()
        if key in _HELD_LOCKS:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"another bigalpha-tui (pid {holder}) is using {self.path.parent}; stop it, "
                "or use --data-dir for a second instance ('status' still reads it)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
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
        os.truncate(path, size)
    except OSError as exc:
        log.warning("store %s: cannot undo a failed append: %s", path.name, exc)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def from_finite(value: Any) -> float:
    """Inverse of the inf/nan encoding for one number."""
    if isinstance(value, str):
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"expected a number, got {value!r}")
