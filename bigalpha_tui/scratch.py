"""Throwaway folders for replays and sweep tasks, and the clean-up of those a kill left.

A replay without --data-dir, and every sweep task, runs in a temporary folder removed at the
end, on SIGTERM and SIGHUP too. A SIGKILL (or a power cut) leaves it behind: a month's run
can leave tens of megabytes in the temp folder, once per kill. Each folder is named with the
pid of the process that made it (`bigalpha-replay-<pid>-<random>`), so the next run removes
the folders whose process no longer runs. Only folders of this user are touched, a symlink
is never followed, and a folder whose pid is alive (or was taken by another process since)
is left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

KINDS = ("replay", "sweep")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:  # no such pid can exist
        return False
    return True


def remove_stale(kind: str, root: Path | None = None) -> list[Path]:
    """Remove this user's `bigalpha-<kind>-<pid>-*` folders whose process is gone; the
    folders removed."""
    base = Path(tempfile.gettempdir()) if root is None else root
    pattern = re.compile(rf"bigalpha-{re.escape(kind)}-(\d{{1,10}})-[A-Za-z0-9_]+")
    me, uid = os.getpid(), os.getuid()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue  # a symlink, a file, or someone else's: never ours to remove
        pid = int(match[1])
        if pid == me or _alive(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)  # fd-based on Linux: follows no link
        removed.append(Path(entry.path))
    return removed


def scratch_dir(kind: str) -> Path:
    """A fresh owner-only temporary folder for one throwaway run, after removing the ones
    killed runs left."""
    remove_stale(kind)
    return Path(tempfile.mkdtemp(prefix=f"bigalpha-{kind}-{os.getpid()}-"))
