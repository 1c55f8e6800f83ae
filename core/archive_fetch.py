"""Download of monthly kline archives into the cache: verified, resumable, polite.

One month at a time: a month whose cached zip matches its cached checksum costs no request.
Otherwise the `.CHECKSUM` is fetched first (a 404 means the archive has no such month), then
the zip into `NAME.zip.part` (owner-only, never through a symlink), resumed with an HTTP
Range from the bytes already there; a server that ignores the Range sends the whole file and
the part starts over. Only a part whose SHA-256 matches becomes `NAME.zip` (one rename, after
its checksum file was written atomically); a mismatch is set aside as `NAME.zip.bad`, so
nothing unverified is left where replay looks.
"""

from __future__ import annotations

import enum
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit

import httpx

from .archive import (
    ARCHIVE_URL_ENV,
    CACHE_DIR_ENV,
    CACHE_FOLDER,
    CHECKSUM_SUFFIX,
    DEFAULT_ARCHIVE_URL,
    Month,
    archive_url,
    cached_zip,
    checksum_path,
    is_verified,
    parse_checksum,
    sha256_of,
)
from .errors import ConfigError, DataError
from .store import atomic_write_bytes, private_opener

#: A monthly 1-minute zip is a few MB; a server sending more than this is not the archive.
MAX_ARCHIVE_BYTES = 1 << 30
_CHUNK_BYTES = 1 << 16
_MAX_CHECKSUM_BYTES = 4096


class Outcome(enum.Enum):
    FETCHED = "fetched"
    CACHED = "cached"
    MISSING = "missing"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MonthResult:
    """What became of one month: its zip when there is one, and a line a user can read."""

    symbol: str
    month: Month
    outcome: Outcome
    path: Path | None = None
    detail: str = ""


class DownloadProgress(Protocol):
    """Told how one file's download advances (a progress bar, or nothing)."""

    def started(self, name: str, done_bytes: int, total_bytes: int | None) -> None: ...

    def advanced(self, done_bytes: int) -> None: ...

    def finished(self) -> None: ...


class _NoProgress:
    def started(self, name: str, done_bytes: int, total_bytes: int | None) -> None:
        pass

    def advanced(self, done_bytes: int) -> None:
        pass

    def finished(self) -> None:
        pass


class _Missing(Exception):
    """The archive answered 404: it has no such month."""


class _Failed(Exception):
    """This month could not be fetched now; the message says why."""


def check_archive_url(url: str) -> str:
    """The archive root URL: http(s) with a host and nothing after the path."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in url)
    ):
        raise ConfigError(
            f"the archive URL {url!r} ({ARCHIVE_URL_ENV}) is not an http:// or https:// URL"
            f" with a host, e.g. {DEFAULT_ARCHIVE_URL}"
        )
    return url.rstrip("/")


class ArchiveFetcher:
    """Fetches months of one archive (`root_url`) into `cache_root`, `gap_s` between requests."""

    def __init__(
        self,
        client: httpx.Client,
        root_url: str,
        cache_root: Path,
        *,
        gap_s: float,
        progress: DownloadProgress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.root_url = check_archive_url(root_url)
        self.cache_root = cache_root
        self.gap_s = gap_s
        self.progress: DownloadProgress = progress or _NoProgress()
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_request_s: float | None = None

    def fetch_month(self, symbol: str, month: Month) -> MonthResult:
        zip_path = cached_zip(self.cache_root, symbol, month)
        if is_verified(zip_path):
            return MonthResult(symbol, month, Outcome.CACHED, zip_path)
        self._prepare_folders(zip_path.parent)
        url = archive_url(self.root_url, symbol, month)
        try:
            digest = self._checksum(url + CHECKSUM_SUFFIX, zip_path.name)
            self._download_verified(url, zip_path, digest)
            atomic_write_bytes(checksum_path(zip_path), f"{digest}  {zip_path.name}\n".encode())
            os.replace(_part_path(zip_path), zip_path)
        except _Missing:
            return MonthResult(symbol, month, Outcome.MISSING, detail="not in the archive (404)")
        except _Failed as exc:
            return MonthResult(symbol, month, Outcome.FAILED, detail=str(exc))
        except OSError as exc:  # a full disk, or a symlink planted at a cache file
            where = f" ({exc.filename})" if exc.filename else ""
            detail = f"cannot write the cache: {exc.strerror or exc}{where}"
            return MonthResult(symbol, month, Outcome.FAILED, detail=detail)
        return MonthResult(symbol, month, Outcome.FETCHED, zip_path)

    def _prepare_folders(self, folder: Path) -> None:
        self.cache_root.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.cache_root, self.cache_root / CACHE_FOLDER, folder):
            _private_folder(path)

    # -- requests -------------------------------------------------------------------

    def _wait_turn(self) -> None:
        now = self._monotonic()
        if self._last_request_s is not None:
            wait_s = self._last_request_s + self.gap_s - now
            if wait_s > 0:
                self._sleep(wait_s)
        self._last_request_s = self._monotonic()

    def _checksum(self, url: str, zip_name: str) -> str:
        self._wait_turn()
        try:
            response = self.client.get(url)
        except httpx.HTTPError as exc:
            raise _Failed(f"{zip_name}{CHECKSUM_SUFFIX}: {_network_problem(exc)}") from None
        _raise_for_answer(response, zip_name + CHECKSUM_SUFFIX)
        try:
            return parse_checksum(response.content[:_MAX_CHECKSUM_BYTES].decode(), zip_name)
        except (UnicodeDecodeError, DataError) as exc:
            raise _Failed(f"{zip_name}{CHECKSUM_SUFFIX}: not a checksum file ({exc})") from None

    def _download_verified(self, url: str, zip_path: Path, digest: str) -> None:
        """The zip into its `.part`, resumed when one is there; a resumed part that fails
        the checksum is fetched once more from the start (its first bytes may be stale)."""
        part = _part_path(zip_path)
        resumed = self._download(url, part)
        if sha256_of(part) == digest:
            return
        if resumed:
            part.unlink()
            self._download(url, part)
            if sha256_of(part) == digest:
                return
        bad = zip_path.with_name(zip_path.name + ".bad")
        os.replace(part, bad)
        raise _Failed(
            f"{zip_path.name}: its SHA-256 does not match {zip_path.name}{CHECKSUM_SUFFIX}"
            f" (expected {digest}); set aside as {bad}, nothing of it will be replayed"
        )

    def _download(self, url: str, part: Path) -> bool:
        """Fills `part` with the zip; True when it went on from bytes already there."""
        name = part.name.removesuffix(".part")
        with open(part, "ab", opener=private_opener) as fh:
            have = fh.seek(0, os.SEEK_END)
            headers = {"Range": f"bytes={have}-"} if have else {}
            self._wait_turn()
            try:
                with self.client.stream("GET", url, headers=headers) as response:
                    if response.status_code == 416 and have:
                        return True  # the part is already whole, or stale: the hash decides
                    _raise_for_answer(response, name)
                    resumed = _continues_at(response, have)
                    if not resumed:
                        fh.truncate(0)
                    self._write_body(response, fh, name)
                    return resumed
            except httpx.HTTPError as exc:
                raise _Failed(
                    f"{name}: {_network_problem(exc)} after {fh.tell():,} bytes;"
                    " run the same command again to resume"
                ) from None
            finally:
                self.progress.finished()

    def _write_body(self, response: httpx.Response, fh: BinaryIO, name: str) -> None:
        done = fh.tell()
        length = response.headers.get("Content-Length")
        total = done + int(length) if length and length.isdigit() else None
        self.progress.started(name, done, total)
        for chunk in response.iter_bytes(_CHUNK_BYTES):
            done += len(chunk)
            if done > MAX_ARCHIVE_BYTES:
                raise _Failed(f"{name}: larger than {MAX_ARCHIVE_BYTES:,} bytes, not an archive")
            fh.write(chunk)
            self.progress.advanced(done)
        fh.flush()
        os.fsync(fh.fileno())


def _private_folder(path: Path) -> None:
    """An owner-only folder at `path`, never a symlink or a file standing there."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DataError(f"cannot create the cache folder {path}: {exc.strerror or exc}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):  # lstat: a symlink to a folder is refused too
        raise DataError(
            f"the cache folder {path} is not a folder (a symlink or a file);"
            f" move it away or set {CACHE_DIR_ENV} to another folder"
        )
    if stat.S_IMODE(st.st_mode) != 0o700 and st.st_uid == os.geteuid():
        os.chmod(path, 0o700)


def _part_path(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".part")


def _continues_at(response: httpx.Response, have: int) -> bool:
    """A 206 that starts where the part ends; anything else is the whole file again."""
    if response.status_code != 206:
        return False
    content_range = response.headers.get("Content-Range", "")
    if not content_range.startswith(f"bytes {have}-"):
        raise _Failed(f"the archive answered a resume with {content_range!r}")
    return True


def _raise_for_answer(response: httpx.Response, name: str) -> None:
    if response.status_code == 404:
        raise _Missing
    if response.status_code not in (200, 206):
        raise _Failed(f"{name}: the archive answered HTTP {response.status_code}")


def _network_problem(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "the archive did not answer in time"
    return f"cannot reach the archive ({type(exc).__name__}: {exc})"
