"""Binance's public monthly USD-M futures 1-minute kline archive, and our cache of it.

The archive holds one `SYMBOL-1m-YYYY-MM.zip` a month under
`/data/futures/um/monthly/klines/SYMBOL/1m/`, each beside a `.zip.CHECKSUM` whose text is
`<sha256>  <file name>`. The cache mirrors that: `<cache>/futures-um-1m/SYMBOL/` holds the zip
and its checksum file. A cached month is one whose zip hashes to its checksum, checked on every
use: nothing unverified is ever replayed.

`SYMBOL:2025-01..2025-06` (or `SYMBOL:2025-01`) names cached months where a kline file is
expected; `resolve_data_args` turns such names into the verified zips.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError
from .store import private_opener

CACHE_DIR_ENV = "BIGALPHA_CACHE_DIR"
ARCHIVE_URL_ENV = "BIGALPHA_ARCHIVE_URL"
DEFAULT_ARCHIVE_URL = "https://data.binance.vision"
ARCHIVE_PATH = "data/futures/um/monthly/klines"
CACHE_FOLDER = "futures-um-1m"
CHECKSUM_SUFFIX = ".CHECKSUM"

_SYMBOL = re.compile(r"[A-Z0-9]{2,20}")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """One calendar month, `2025-01`."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


def parse_month(text: str) -> Month:
    """`2025-01` as a `Month`; anything else is a `DataError` saying what is accepted."""
    match = _MONTH.fullmatch(text.strip())
    month = Month(int(match.group(1)), int(match.group(2))) if match else None
    if month is None or not 1 <= month.month <= 12 or month.year < 2000:
        raise DataError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2025-01")
    return month


def months_between(first: Month, last: Month) -> list[Month]:
    """Every month from `first` to `last`, both included; refused when `first` is later."""
    if first > last:
        raise DataError(f"the first month {first} is after the last {last}")
    months = [first]
    while months[-1] < last:
        months.append(months[-1].next())
    return months


def parse_symbol(text: str) -> str:
    """A futures symbol such as BTCUSDT (upper-cased); it becomes a path and a URL part, so
    nothing but letters and digits is accepted."""
    symbol = text.strip().upper()
    if not _SYMBOL.fullmatch(symbol):
        raise DataError(f"{text!r} is not a symbol; write it like BTCUSDT (letters and digits)")
    return symbol


# -- names and places ------------------------------------------------------------------


def archive_name(symbol: str, month: Month) -> str:
    return f"{symbol}-1m-{month}.zip"


def archive_url(root_url: str, symbol: str, month: Month) -> str:
    """Where the archive keeps one month's zip (its checksum is this + `.CHECKSUM`)."""
    return f"{root_url.rstrip('/')}/{ARCHIVE_PATH}/{symbol}/1m/{archive_name(symbol, month)}"


def cached_zip(cache_root: Path, symbol: str, month: Month) -> Path:
    return cache_root / CACHE_FOLDER / symbol / archive_name(symbol, month)


def checksum_path(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + CHECKSUM_SUFFIX)


# -- checksums -------------------------------------------------------------------------


def parse_checksum(text: str, expected_name: str) -> str:
    """The SHA-256 in a `.CHECKSUM` file (`<sha256>  <file name>`), for `expected_name`."""
    fields = text.split()
    digest = fields[0].lower() if fields else ""
    named = fields[1].lstrip("*") if len(fields) > 1 else expected_name
    if len(fields) > 2 or not _SHA256_HEX.fullmatch(digest) or named != expected_name:
        raise DataError(
            f"{expected_name}{CHECKSUM_SUFFIX}: not a SHA-256 checksum of {expected_name}"
            f" ({text.strip()[:80]!r})"
        )
    return digest


def sha256_of(path: Path) -> str:
    """The file's SHA-256, read through `private_opener` (never a symlink or a FIFO)."""
    digest = hashlib.sha256()
    with open(path, "rb", opener=private_opener) as fh:
        while chunk := fh.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def read_checksum(zip_path: Path) -> str | None:
    """The expected SHA-256 of a cached zip, or None when its checksum file is absent."""
    try:
        with open(checksum_path(zip_path), "rb", opener=private_opener) as fh:
            text = fh.read(4096).decode("ascii", errors="replace")
    except FileNotFoundError:
        return None
    return parse_checksum(text, zip_path.name)


def is_verified(zip_path: Path) -> bool:
    """The zip and its checksum file are both cached and the zip hashes to the checksum."""
    try:
        expected = read_checksum(zip_path)
        return expected is not None and sha256_of(zip_path) == expected
    except (OSError, DataError):  # absent, a symlink or unreadable: not a verified month
        return False


# -- SYMBOL:YYYY-MM..YYYY-MM names -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthSpan:
    """`BTCUSDT:2025-01..2025-06`: a symbol's months, both ends included."""

    symbol: str
    first: Month
    last: Month

    def months(self) -> list[Month]:
        return months_between(self.first, self.last)

    def fetch_command(self, months: Iterable[Month] | None = None) -> str:
        chosen = sorted(months) if months is not None else [self.first, self.last]
        return f"bigalpha-tui data fetch {self.symbol} --from {chosen[0]} --to {chosen[-1]}"


def looks_like_month_span(text: str) -> bool:
    """`X:Y` that is not an existing path: meant as cached months, not as a file."""
    return ":" in text and not os.path.lexists(text)


def parse_month_span(text: str) -> MonthSpan:
    symbol_text, _, months_text = text.partition(":")
    first_text, dots, last_text = months_text.partition("..")
    try:
        symbol = parse_symbol(symbol_text)
        first = parse_month(first_text)
        last = parse_month(last_text) if dots else first
        months_between(first, last)
    except DataError as exc:
        raise DataError(
            f"{text!r}: {exc}; cached months are named like BTCUSDT:2025-01..2025-06"
        ) from None
    return MonthSpan(symbol, first, last)


def span_zips(span: MonthSpan, cache_root: Path) -> list[Path]:
    """The span's verified zips; a `DataError` naming what is missing and how to fetch it."""
    zips = [cached_zip(cache_root, span.symbol, m) for m in span.months()]
    missing = [m for m, path in zip(span.months(), zips, strict=True) if not is_verified(path)]
    if missing:
        listed = ", ".join(str(m) for m in missing[:6]) + (" ..." if len(missing) > 6 else "")
        raise DataError(
            f"{span.symbol} {listed}: not in the cache ({cache_root}) or not verified;"
            f" run `{span.fetch_command(missing)}` first"
        )
    return zips


def resolve_data_args(items: Iterable[str], cache_root: Path) -> list[str]:
    """Kline file arguments with each `SYMBOL:YYYY-MM[..YYYY-MM]` replaced by its zips."""
    return list(_resolved(items, cache_root))


def _resolved(items: Iterable[str], cache_root: Path) -> Iterator[str]:
    for item in items:
        if looks_like_month_span(item):
            yield from map(str, span_zips(parse_month_span(item), cache_root))
        else:
            yield item
