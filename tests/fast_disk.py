"""Setting the scene without flushing the disk: the store writes every file as it always does
(temp file, rename, appends), only `os.fsync` is skipped while a fixture feeds its bars.

Nothing in a test cuts the power, so the flush cannot change what a later read sees; it only
costs time (hundreds of fsyncs per fed core). The durable path itself is tested where it is
the subject: tests/test_crash.py, tests/test_store.py, tests/test_disk_faults.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_fsync() -> Iterator[None]:
    """Within the block `os.fsync` does nothing (synchronous set-up code only: no other
    thread or task of the test runs meanwhile)."""
    real = os.fsync
    os.fsync = _skip
    try:
        yield
    finally:
        os.fsync = real


def _skip(fd: int) -> None:
    del fd
