"""Replay of Binance-format 1-minute kline CSV files (plain, .gz or .zip) as a `BarSource`.

Reads the 12-column kline layout (`open_time, open, high, low, close, volume, close_time,
quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore`), with or without a
header row; a `.zip` (Binance's monthly archive) holds one such CSV. The open time may be
epoch milliseconds (or seconds/microseconds, told apart by magnitude) or an ISO date-time;
one with an offset is converted, a naive one is read as UTC.

Taker-buy volume is what the flow engines need. Rows without it (an empty taker column, or a
6-column OHLCV file) stop the replay with a message saying so, unless `allow_no_flow` is set:
then those bars carry `has_flow=False` and the flow features stay off for them. Nothing is
guessed. Every problem with the input is a `DataError` naming the file and 1-based line;
with `skip_bad_rows` malformed rows are skipped and counted per reason instead.

Files are streamed: each symbol's files are chained in time order (rows at or before the
symbol's last open time are dropped as duplicates and counted), and the symbols are merged
by open time with `heapq.merge`. A batch replay (`batch_input`) reads each clean file at
once, straight into numpy columns (`clean_kline_columns`: the same values, no `Bar` per row),
chains, windows and merges them in numpy, and hands the columns over; any other file is
streamed as above (`batch_bars`: the same, as a list of bars).
"""

from __future__ import annotations

import gc
import gzip
import heapq
import io
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Protocol, cast

import anyio
import numpy as np
import numpy.typing as npt

from ..bar import MINUTE_MS, Bar
from ..clock import Clock
from ..columns import REJECTED, BarColumns, BatchInput, BoolArray, IntArray
from ..errors import DataError
from ..types import SourceState
from .base import SourceHealth

KLINE_COLUMNS = 12
OHLCV_COLUMNS = 6
_PRICE_VOLUME_COLUMNS = ("open", "high", "low", "close", "volume")
_CLOSE_TIME_COLUMN = 6
_TAKER_BUY_COLUMN = 9

#: Accepted open times: 2009-01-01 (before any crypto exchange) up to 2100-01-01 UTC.
_EARLIEST_MS = 1_230_768_000_000
_LATEST_MS = 4_102_444_800_000
#: Digits of the longest accepted epoch time (2100 in nanoseconds has 19): longer is refused
#: before it is made into an int
_MAX_TIME_DIGITS = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

NO_FLOW = "no taker-buy volume"
NO_FLOW_ADVICE = (
    "so CVD and the whale/OFI flow features cannot be computed; "
    "--allow-no-flow replays it with flow features off"
)
SKIP_ADVICE = "--skip-bad-rows skips such rows and counts them"

_QUOTE_ASSETS = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR")
_SYMBOL_TOKEN = re.compile(r"[A-Z0-9]{2,20}")
_INTERVAL_TOKEN = re.compile(r"\d+[smhdwM]")
_NAME_SPLIT = re.compile(r"[-_.\s]+")
_DATA_SUFFIXES = (".csv", ".csv.gz", ".zip")
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"


class RowError(DataError):
    """One data line is not a usable bar. `reason` is the short key the skip counts use."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass(slots=True)
class ReplayStats:
    """What a replay read so far: bars read, rows skipped per reason, duplicates, gaps."""

    bars: int = 0
    duplicates_dropped: int = 0
    gaps: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_rows(self) -> int:
        return sum(self.skipped_by_reason.values())

    def summary(self) -> str:
        parts = [f"{self.bars} bars read", f"{self.duplicates_dropped} duplicates dropped"]
        parts.append(f"{self.gaps} gaps")
        parts += [f"skipped {n} ({reason})" for reason, n in sorted(self.skipped_by_reason.items())]
        return ", ".join(parts)


# ------------------------------------------------------------------------- one data row


def parse_epoch_ms(text: str) -> int:
    """Open time of a row as UTC epoch ms: epoch s/ms/us/ns by magnitude, or ISO text. A
    time given finer than the millisecond (us, ns, a fraction) that is not a whole one
    opens no minute: refused, never rounded onto one."""
    if text.isascii() and text.isdigit():  # the common case, kept fast
        if len(text.lstrip("0")) > _MAX_TIME_DIGITS:  # int() refuses 4,300 digits and more
            raise _outside_years(text)
        epoch_ms = _scale_to_ms(int(text), whole=text)
    else:
        epoch_ms = _text_to_ms(text.strip())
    if not _EARLIEST_MS <= epoch_ms < _LATEST_MS:
        raise _outside_years(text)
    return epoch_ms


def _outside_years(text: str) -> RowError:
    return RowError("bad timestamp", f"open time {text.strip()[:40]!r} is outside 2009-2100")


def _not_on_a_minute(text: str) -> RowError:
    return RowError("not on a minute boundary", f"open time {text.strip()} is not on a minute")


def _scale_to_ms(number: int, whole: str | None = None) -> int:
    """Epoch seconds, ms, us or ns by magnitude (Binance uses ms, and us for spot since 2025).
    `whole`: the open time's text, refused when a rest below the millisecond is dropped."""
    for at_least, per_ms in ((10**17, 1_000_000), (10**14, 1_000)):
        if number >= at_least:
            ms, rest = divmod(number, per_ms)
            if rest and whole is not None:
                raise _not_on_a_minute(whole)
            return ms
    if number >= 10**11:
        return number
    return number * 1_000


def _text_to_ms(value: str) -> int:
    """A number in another notation (1.7699e12, 1769904000.5, +1769904000000), read exactly,
    else an ISO date-time."""
    if not value:
        raise RowError("bad timestamp", "empty open time")
    try:
        number = Decimal(value)
    except InvalidOperation:
        return _iso_to_ms(value)
    if not number.is_finite():
        return _iso_to_ms(value)  # 'nan', 'inf': not a date either
    if number.adjusted() >= _MAX_TIME_DIGITS:  # 1e999999999: never made into an int
        raise _outside_years(value)
    if number != number.to_integral_value():
        raise _not_on_a_minute(value)  # a fraction of a second or millisecond
    return _scale_to_ms(int(number), whole=value)


def _iso_to_ms(value: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms, rest = divmod((moment - _EPOCH) // _MICROSECOND, 1_000)
    except (ValueError, OverflowError, OSError):
        raise RowError("bad timestamp", f"open time {value[:40]!r} is not a date") from None
    if rest:
        raise _not_on_a_minute(value)
    return ms


def _number(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise RowError(
            "non-numeric value", f"{column} {text.strip()[:40]!r} is not a number"
        ) from None


def _prices_and_volume(fields: list[str]) -> tuple[float, float, float, float, float]:
    try:
        o, h, low, c, volume = map(float, fields[1:6])
    except ValueError:
        for name, text in zip(_PRICE_VOLUME_COLUMNS, fields[1:6], strict=True):
            _number(text, name)
        raise RowError("non-numeric value") from None
    return o, h, low, c, volume


def _taker_buy(fields: list[str], allow_no_flow: bool) -> tuple[float, bool]:
    """Taker-buy volume and whether the row has it at all."""
    if len(fields) == OHLCV_COLUMNS or not fields[_TAKER_BUY_COLUMN].strip():
        if not allow_no_flow:
            where = "OHLCV-only row" if len(fields) == OHLCV_COLUMNS else "empty taker-buy column"
            raise RowError(NO_FLOW, f"the data has no taker-buy volume ({where})")
        return 0.0, False
    return _number(fields[_TAKER_BUY_COLUMN], "taker-buy volume"), True


def _check_close_time(text: str, open_ms: int) -> None:
    """A filled close time must end the same minute: catches 5m files and shifted columns."""
    value = text.strip()
    if not value:
        return
    try:
        close_ms = _scale_to_ms(int(value) if value.isdigit() else int(float(value)))
    except (ValueError, OverflowError):
        raise RowError("non-numeric value", f"close time {value[:40]!r} is not a number") from None
    if not open_ms + MINUTE_MS - 1_000 <= close_ms <= open_ms + MINUTE_MS:
        raise RowError(
            "not a 1-minute bar",
            f"close time {value} does not end the minute that opens at {open_ms}; "
            "replay reads 1-minute klines",
        )


def _check_column_count(count: int, expected_columns: int | None) -> None:
    if count in (KLINE_COLUMNS, OHLCV_COLUMNS) and expected_columns in (None, count):
        return
    expected = expected_columns or f"{KLINE_COLUMNS} (Binance kline) or {OHLCV_COLUMNS} (OHLCV)"
    raise RowError("wrong column count", f"{count} columns, expected {expected}")


def parse_kline_row(
    line: str, *, symbol: str, allow_no_flow: bool = False, expected_columns: int | None = None
) -> Bar:
    """One CSV data line as a checked `Bar`; any problem is a `RowError` (a `DataError`)."""
    fields = line.rstrip("\r\n").split(",")
    _check_column_count(len(fields), expected_columns)
    open_ms = parse_epoch_ms(fields[0])
    if open_ms % MINUTE_MS:
        raise RowError(
            "not on a minute boundary", f"open time {fields[0].strip()} is not on a minute"
        )
    o, h, low, c, volume = _prices_and_volume(fields)
    taker_buy, has_flow = _taker_buy(fields, allow_no_flow)
    if len(fields) == KLINE_COLUMNS:
        _check_close_time(fields[_CLOSE_TIME_COLUMN], open_ms)
    bar = Bar(symbol, open_ms, o, h, low, c, volume, taker_buy, has_flow=has_flow)
    problem = bar.problem()
    if problem is not None:
        raise RowError(problem)
    return bar


# ------------------------------------------------------------------------------ one file


def symbol_from_filename(path: str | os.PathLike[str]) -> str | None:
    """`AVAXUSDT-1m-2026-02.csv.gz`, `battle_hymn_BTCUSDT_1m.csv.gz` -> the symbol, else None."""
    tokens = {t.upper() for t in _NAME_SPLIT.split(Path(path).name)}
    found = {
        t
        for t in tokens
        if _SYMBOL_TOKEN.fullmatch(t)
        and any(t.endswith(q) and len(t) > len(q) for q in _QUOTE_ASSETS)
        and any(ch.isalpha() for ch in t)
    }
    return found.pop() if len(found) == 1 else None


def _check_interval_in_name(path: Path) -> None:
    for token in _NAME_SPLIT.split(path.name):
        if _INTERVAL_TOKEN.fullmatch(token) and token != "1m":
            raise DataError(f"{path}: the name says {token} klines; replay reads 1-minute klines")


def open_kline_text(path: Path, errors: str = "strict") -> IO[str]:
    """The file as text: gunzipped or unzipped when its first bytes say gzip or zip."""
    return io.TextIOWrapper(_open_kline_bytes(path), encoding="utf-8-sig", errors=errors)


def _open_kline_bytes(path: Path) -> IO[bytes]:
    """The file's bytes: gunzipped or unzipped when its first bytes say gzip or zip."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(4)
        if magic[:2] == _GZIP_MAGIC:
            return cast(IO[bytes], gzip.GzipFile(path, "rb"))
        if magic == _ZIP_MAGIC:
            return _sole_zip_member(path)
        return path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc.strerror or exc})") from None


def _sole_zip_member(path: Path) -> IO[bytes]:
    """The one file a zip holds (Binance's archive: one CSV), opened for streaming."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise DataError(f"{path}: the zip holds {len(members)} files, replay reads one")
            # the member stays readable after the archive object is closed (shared file)
            return archive.open(members[0])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable zip ({exc})") from None


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    line_no = 0
    try:
        with open_kline_text(path) as stream:
            for line_no, line in enumerate(stream, start=1):
                yield line_no, line
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise DataError(f"{path}, near line {line_no + 1}: cannot read ({exc})") from None


def _is_header(line: str) -> bool:
    return "open" in line.lower()


def _header_columns(path: Path, line: str) -> int:
    count = len(line.split(","))
    if count not in (KLINE_COLUMNS, OHLCV_COLUMNS):
        raise DataError(
            f"{path}, line 1: the header has {count} columns; replay reads "
            f"{KLINE_COLUMNS}-column Binance klines or {OHLCV_COLUMNS}-column OHLCV"
        )
    return count


def _row_error_message(path: Path, line_no: int, exc: RowError) -> str:
    if exc.reason == NO_FLOW:
        return f"{path}, line {line_no}: {exc.detail}, {NO_FLOW_ADVICE}"
    return f"{path}, line {line_no}: {exc.detail} ({SKIP_ADVICE})"


def _no_rows_message(path: Path, skipped: Counter[str]) -> str:
    if not skipped:
        return f"{path}: no kline rows (the file is empty or holds only a header)"
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
    advice = f"; the data has no taker-buy volume, {NO_FLOW_ADVICE}" if NO_FLOW in skipped else ""
    return f"{path}: no usable rows, every row was skipped ({reasons}){advice}"


@dataclass(frozen=True, slots=True)
class ParseOptions:
    allow_no_flow: bool = False
    skip_bad_rows: bool = False


def _bars_of_file(
    path: Path, symbol: str, options: ParseOptions, stats: ReplayStats
) -> Generator[Bar, None, None]:
    expected_columns: int | None = None
    first_content = True
    skipped: Counter[str] = Counter()
    bars_out = 0
    for line_no, line in _numbered_lines(path):
        if not line.strip():
            continue
        if first_content and _is_header(line):
            first_content = False
            expected_columns = _header_columns(path, line)
            continue
        first_content = False
        try:
            bar = parse_kline_row(
                line,
                symbol=symbol,
                allow_no_flow=options.allow_no_flow,
                expected_columns=expected_columns,
            )
        except RowError as exc:
            if not options.skip_bad_rows:
                raise DataError(_row_error_message(path, line_no, exc)) from None
            skipped[exc.reason] += 1
            stats.skipped_by_reason[exc.reason] += 1
            continue
        bars_out += 1
        yield bar
    if bars_out == 0:
        raise DataError(_no_rows_message(path, skipped))


def parse_kline_file(
    path: str | os.PathLike[str],
    *,
    symbol: str | None = None,
    allow_no_flow: bool = False,
    skip_bad_rows: bool = False,
    stats: ReplayStats | None = None,
) -> Generator[Bar, None, None]:
    """The bars of one kline file, streamed in file order. Checks the file up front; row
    problems surface as `DataError` while iterating (or are counted in `stats`)."""
    file_path = Path(path)
    if not file_path.is_file():
        raise DataError(f"{file_path}: no such file")
    _check_interval_in_name(file_path)
    file_symbol = symbol.upper() if symbol else symbol_from_filename(file_path)
    if not file_symbol:
        raise DataError(
            f"{file_path}: cannot tell the symbol from the file name; "
            "name the file like BTCUSDT-1m-2026-02.csv.gz or give the symbol (--symbol)"
        )
    options = ParseOptions(allow_no_flow=allow_no_flow, skip_bad_rows=skip_bad_rows)
    return _bars_of_file(file_path, file_symbol, options, stats or ReplayStats())


@contextmanager
def no_gc() -> Iterator[None]:
    """No cyclic garbage collection while a block builds many lasting objects (a batch
    replay's bars and features: not garbage, so the collector's passes only cost time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------- a whole clean file

#: Widths of the open and close times the whole-file reader reads (epoch ms has 13 digits,
#: us, Binance's spot archives since 2025, 16; 18 still fit an int64), scaled by magnitude
#: as the streaming parser scales them; a file with other times is streamed instead.
_TIME_DIGITS = range(12, 19)
#: The widest price or volume field (digits and a point) the whole-file reader reads in
#: numpy: up to 15 digits make an integer below 2**53 (exact in a float, so the digit sums
#: are exact whatever their order). A wider or odder field (a sign, an exponent, spaces,
#: `1_0.5`, 'nan') is read by `float` itself.
_WIDEST_DECIMAL = 15
#: Bytes before the data, so that a field's fixed-width window never starts before it
_PAD = max(_TIME_DIGITS[-1], _WIDEST_DECIMAL)
_BOM = b"\xef\xbb\xbf"
#: The columns the whole-file reader reads, in `BarColumns` order after the open time
_VALUE_COLUMNS = (1, 2, 3, 4, 5, _TAKER_BUY_COLUMN)
#: 10**k, exact as floats up to 10**22 (a quotient of two exact floats is correctly rounded)
_POW10_FLOAT = np.array([float(10**k) for k in range(23)])
_POW10_INT = 10 ** np.arange(19, dtype=np.int64)


def clean_kline_bars(path: Path, symbol: str, options: ParseOptions) -> list[Bar] | None:
    """`clean_kline_columns` as bars: the streaming parser's, float for float."""
    columns = clean_kline_columns(path, symbol, options)
    return None if columns is None else _bars_of(columns)


def _bars_of(columns: BarColumns) -> list[Bar]:
    """The bars of a clean file's columns (1-minute bars with taker flow)."""
    values = (columns.open, columns.high, columns.low, columns.close, columns.volume)
    return [
        Bar(columns.symbol, open_ms, o, h, low, c, volume, taker)
        for open_ms, o, h, low, c, volume, taker in zip(
            columns.open_ms.tolist(),
            *(v.tolist() for v in values),
            columns.taker_buy_volume.tolist(),
            strict=True,
        )
    ]


def clean_kline_columns(path: Path, symbol: str, options: ParseOptions) -> BarColumns | None:
    """Every row of a file as columns in one pass, when the file is clean: a 12-column
    Binance kline file (header or not) whose every row `parse_kline_row` accepts as it
    stands, with epoch times in digits (ms, or us) and taker-buy volume. The values equal
    the streaming parser's bit for bit (plain decimals are read in numpy, exactly as `float`
    rounds them; any other field by `float` itself; the checks are `Bar.problem`'s, per
    column). No `Bar` is made. `options` change nothing for a clean file.
    None for anything else (a bad or skipped row, another layout or time format, a file that
    cannot be read): the streaming parser then reads it and says what is wrong, where."""
    del options  # a clean file reads the same under every option
    try:
        data = path.read_bytes()
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)  # at once: a fifth faster than a stream's reads
        elif data[:4] == _ZIP_MAGIC:
            with _sole_zip_member(path) as member:
                data = member.read()
    except (DataError, OSError, EOFError, zlib.error, zipfile.BadZipFile):
        return None
    return _clean_columns(data, symbol)


def _clean_columns(data: bytes, symbol: str) -> BarColumns | None:
    found = _field_bounds(data)
    if found is None:
        return None
    data, commas, line_starts, line_ends = found
    padded = np.frombuffer(b"0" * _PAD + data, dtype=np.uint8)
    ends = [commas[:, c] for c in range(KLINE_COLUMNS - 1)] + [line_ends]
    starts = [line_starts] + [commas[:, c] + 1 for c in range(KLINE_COLUMNS - 1)]
    try:
        opens = _scaled_ms(_digits_at(padded, starts[0], ends[0]), whole=True)
        closes = _scaled_ms(
            _digits_at(padded, starts[_CLOSE_TIME_COLUMN], ends[_CLOSE_TIME_COLUMN]), whole=False
        )
        if opens is None or closes is None:
            return None
        values = np.stack([_decimals_at(data, padded, starts[c], ends[c]) for c in _VALUE_COLUMNS])
    except ValueError:
        return None
    if not _clean(opens, closes, values):
        return None
    o, h, low, c, volume, taker = values
    return BarColumns(symbol, opens, o, h, low, c, volume, taker, np.ones(opens.size, np.bool_))


def _field_bounds(
    data: bytes,
) -> tuple[bytes, IntArray, IntArray, IntArray] | None:
    """The text as the streaming parser sees it (no BOM, universal newlines), and for each
    data row the positions of its 11 commas (one row a row), of its start and of its end.
    None unless every non-blank line after an optional 12-column header has the 12 fields
    (or when the text is not ASCII: the streaming parser reads it)."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.isascii():
        return None
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.append(np.flatnonzero(buf == ord("\n")), len(data))
    commas = np.flatnonzero(buf == ord(","))
    per_line = np.diff(np.searchsorted(commas, ends), prepend=0)
    for end in np.flatnonzero(per_line == 0).tolist():  # blank, or not a kline row
        start = int(ends[end - 1]) + 1 if end else 0
        if data[start : int(ends[end])].decode().strip():
            return None
    filled = np.flatnonzero(per_line)
    if filled.size == 0:
        return None
    first = int(filled[0])
    first_start = int(ends[first - 1]) + 1 if first else 0
    if _is_header(data[first_start : int(ends[first])].decode()):
        if per_line[first] != KLINE_COLUMNS - 1:
            return None
        commas = commas[KLINE_COLUMNS - 1 :]
        filled = filled[1:]
    if filled.size == 0 or (per_line[filled] != KLINE_COLUMNS - 1).any():
        return None
    starts = np.where(filled > 0, ends[np.maximum(filled - 1, 0)] + 1, 0)
    return data, commas.reshape(-1, KLINE_COLUMNS - 1), starts, ends[filled]


def _windows(
    padded: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Each field right-aligned in a window as wide as the widest (`padded`: the data after
    `_PAD` filler bytes): the bytes, which of them lie before the field, the lengths."""
    lengths = ends - starts
    width = max(int(lengths.max()), 1)
    index: type[np.signedinteger[Any]] = np.int32 if padded.size < 2**31 else np.int64
    first = (ends + (_PAD - width)).astype(index)  # int32: half the bytes to gather with
    window = padded[first[:, None] + np.arange(width, dtype=index)]
    before = np.arange(width) < (width - lengths)[:, None]
    return window, before, lengths


def _digits_at(
    padded: npt.NDArray[np.uint8], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64] | None:
    """The values of plain digit fields of 12-18 characters (no sign, space or empty
    field), else None: exact integer arithmetic on a digit matrix."""
    lengths = ends - starts
    if not lengths.size or lengths.min() < _TIME_DIGITS[0] or lengths.max() > _TIME_DIGITS[-1]:
        return None
    window, before, _ = _windows(padded, starts, ends)
    digits = window - np.uint8(ord("0"))
    if (digits[~before] > 9).any():  # below "0" wraps around to above 9 (unsigned)
        return None
    digits[before] = 0
    width = window.shape[1]
    if width <= _WIDEST_DECIMAL:  # below 10**15: exact as floats, and BLAS sums them
        exact: npt.NDArray[np.int64] = (digits @ _POW10_FLOAT[width - 1 :: -1]).astype(np.int64)
        return exact
    values: npt.NDArray[np.int64] = digits.astype(np.int64) @ _POW10_INT[width - 1 :: -1]
    return values


def _digits(texts: Sequence[str]) -> npt.NDArray[np.int64] | None:
    """`_digits_at` of a list of texts."""
    if not texts or not all(t.isascii() for t in texts):
        return None
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    ends = np.cumsum(lengths + 1) - 1
    padded = np.frombuffer(b"0" * _PAD + ",".join(texts).encode(), dtype=np.uint8)
    return _digits_at(padded, ends - lengths, ends)


def _decimals_at(
    data: bytes,
    padded: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """The fields' values as `float` reads them, bit for bit; ValueError where `float`
    refuses one. A plain decimal (digits and at most one point, up to 15 characters) is
    its digits as an exact integer m over 10**k (k digits after the point): both exact as
    floats, so their quotient is the correctly rounded value, as `float`'s. Other fields
    are read by `float` itself."""
    if not starts.size:
        return np.empty(0, dtype=np.float64)
    narrow = ends - starts <= _WIDEST_DECIMAL
    window, before, lengths = _windows(padded, np.where(narrow, starts, ends), ends)
    width = window.shape[1]
    point = window == ord(".")
    digits = window - np.uint8(ord("0"))
    plain_bytes = (digits <= 9) | point | before
    point &= ~before
    np.putmask(digits, before | point, 0)
    # the digits as one number, the point read as a digit 0: m * 10 ** (k + 1) + the k
    # digits after the point, below 10**15: exact as a float, whatever the order of the sums
    places = np.arange(width - 1, -1, -1)
    raw = digits @ _POW10_FLOAT[places]
    # the point's place (k) and the points in the field (small integers: exact)
    marks = point.view(np.uint8) @ np.stack([places, np.ones(width)], axis=1)
    points = marks[:, 1]
    after = np.where(points == 1, marks[:, 0], 0.0).astype(np.int64)
    # the digits before the point: the floor of raw / 10 ** (k + 1) (the fraction it drops
    # is below 0.1, far more than the rounding of a quotient below 10**14), so m is raw less
    # 9 times those digits * 10 ** k: integers below 10**15 all along, exact
    before_point = np.floor(raw / _POW10_FLOAT[after + 1])
    mantissa = raw - (points == 1) * 9.0 * before_point * _POW10_FLOAT[after]
    values: npt.NDArray[np.float64] = mantissa / _POW10_FLOAT[after]
    plain = narrow & (points <= 1) & (lengths > points)
    if not plain_bytes.all():
        plain &= plain_bytes.all(axis=1)
    for i in np.flatnonzero(~plain).tolist():
        values[i] = float(data[starts[i] : ends[i]].decode())
    return values


def _decimals(texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """`_decimals_at` of a list of ASCII texts without commas or newlines."""
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    ends = np.cumsum(lengths + 1) - 1
    data = ",".join(texts).encode("ascii")
    padded = np.frombuffer(b"0" * _PAD + data, dtype=np.uint8)
    return _decimals_at(data, padded, ends - lengths, ends)


def _epoch_ms(texts: Sequence[str], *, whole: bool) -> npt.NDArray[np.int64] | None:
    """`_scaled_ms` of a list of texts."""
    return _scaled_ms(_digits(texts), whole=whole)


def _scaled_ms(
    values: npt.NDArray[np.int64] | None, *, whole: bool
) -> npt.NDArray[np.int64] | None:
    """Epoch ms of plain digit fields as `_scale_to_ms` makes them (s, ms, us or ns by
    magnitude), else None. `whole` (open times): None when one is not a whole millisecond
    (the streaming parser then refuses that row)."""
    if values is None:
        return None
    per_ms = np.where(values >= 10**17, 1_000_000, np.where(values >= 10**14, 1_000, 1))
    if whole and (values % per_ms).any():
        return None
    scaled: npt.NDArray[np.int64] = np.where(values < 10**11, values * 1_000, values // per_ms)
    return scaled


def _clean(
    opens: npt.NDArray[np.int64], closes: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> bool:
    """Every row passes what `parse_kline_row` checks (times, then `Bar.problem`)."""
    o, h, low, c, volume, taker = values
    with np.errstate(invalid="ignore", over="ignore"):
        ok = (
            (opens >= _EARLIEST_MS)
            & (opens < _LATEST_MS)
            & (opens % MINUTE_MS == 0)
            & (closes >= opens + (MINUTE_MS - 1_000))
            & (closes <= opens + MINUTE_MS)
            & np.isfinite(values).all(axis=0)
            & (np.minimum(np.minimum(o, h), np.minimum(low, c)) > 0.0)
            & (volume >= 0.0)
            & (taker >= 0.0)
            & ~(taker > volume * (1.0 + 1e-9) + 1e-12)
            & ~(h < np.maximum(np.maximum(o, c), low))
            & ~(low > np.minimum(o, c))
        )
    return bool(ok.all())


# ------------------------------------------------------------------------ where files come from


class FileReader(Protocol):
    """Where every `ReplaySource` of this process gets a file's bars. The default reads the
    disk each time; a sweep's worker process installs one that parses each file once and
    serves the same bars to every replay it runs (`set_file_reader`)."""

    def provides(self, path: Path) -> bool:
        """True when `path` can be read (a file on disk, or one the reader holds)."""
        ...

    def read(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> Generator[Bar, None, None]:
        """The file's bars, as `parse_kline_file` gives them (same checks, same errors)."""
        ...


class ColumnsReader(FileReader, Protocol):
    """A reader that can also hand a clean file over as columns (no `Bar` per row): the
    batch replay (`ReplaySource.batch_input`) asks it first."""

    def read_columns(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> BarColumns | None:
        """The bars `read` would yield, as columns, when it would yield them all without
        skipping a row or failing; else None (the caller then reads the file through
        `read`)."""
        ...


class DiskReader:
    """Parses the file from disk on every read."""

    def provides(self, path: Path) -> bool:
        return path.is_file()

    def read(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> Generator[Bar, None, None]:
        return parse_kline_file(
            path,
            symbol=symbol,
            allow_no_flow=options.allow_no_flow,
            skip_bad_rows=options.skip_bad_rows,
            stats=stats,
        )

    def read_columns(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> BarColumns | None:
        """The file's rows as columns at once (`clean_kline_columns`) when it is clean:
        what `read` streams, no row skipped, no error. Else None: `read` then streams it
        (and fails where and as the stream does). A file `read` refuses up front (its
        name, no such file) fails here alike."""
        self.read(path, symbol, options, stats).close()  # the up-front checks
        file_symbol = symbol.upper() if symbol else symbol_from_filename(path)
        return clean_kline_columns(path, file_symbol, options) if file_symbol else None

    def read_all(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> Iterable[Bar]:
        """The file's bars at once (`read_columns`) when it is clean, else `read`'s
        stream: the same bars, and a bad file fails where and as the stream does."""
        columns = self.read_columns(path, symbol, options, stats)
        return self.read(path, symbol, options, stats) if columns is None else _bars_of(columns)


_file_reader: FileReader = DiskReader()


def set_file_reader(reader: FileReader | None) -> None:
    """Make the `ReplaySource`s built from now on in this process read through `reader`
    (None: the disk again)."""
    global _file_reader
    _file_reader = reader if reader is not None else DiskReader()


# ----------------------------------------------------------------------------- the source


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; a folder stands for its *.csv, *.csv.gz and *.zip files."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.name.endswith(_DATA_SUFFIXES))
            if not found:
                raise DataError(f"{path}: the folder holds no .csv, .csv.gz or .zip files")
            files += found
        elif _file_reader.provides(path):
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    if not files:
        raise DataError("replay needs at least one kline file")
    return files


@dataclass(frozen=True, slots=True)
class _KlineFile:
    path: Path
    symbol: str
    first_open_ms: int


@dataclass(frozen=True, slots=True)
class _Chain:
    """One symbol's files chained (rows not later than the last kept one dropped), as
    columns, with what `_symbol_bars` counts on the way to each kept bar."""

    columns: BarColumns
    gaps: BoolArray  # per kept bar: it opens more than a bar after the one before
    duplicates_before: IntArray  # per kept bar: rows dropped before it
    duplicates: int  # rows dropped in all

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def open_ms(self) -> IntArray:
        return self.columns.open_ms

    @classmethod
    def of(cls, symbol: str, pieces: list[BarColumns]) -> _Chain:
        open_ms = np.concatenate([p.open_ms for p in pieces])
        latest = np.maximum.accumulate(open_ms)
        before = np.concatenate([[np.iinfo(np.int64).min], latest[:-1]])
        kept = np.flatnonzero(open_ms > before)  # the first row is always kept

        def joined(name: str) -> npt.NDArray[Any]:
            return np.concatenate([getattr(p, name) for p in pieces])[kept]

        columns = BarColumns(
            symbol,
            open_ms[kept],
            joined("open"),
            joined("high"),
            joined("low"),
            joined("close"),
            joined("volume"),
            joined("taker_buy_volume"),
            joined("has_flow"),
        )
        starts = columns.open_ms
        gaps = np.concatenate([[False], starts[1:] > starts[:-1] + MINUTE_MS])
        dropped = kept - np.arange(kept.size)
        return cls(columns, gaps, dropped, open_ms.size - kept.size)


def _tail(columns: BarColumns, first: int) -> BarColumns:
    """Rows `first`.. of `columns`."""
    return BarColumns(
        columns.symbol,
        columns.open_ms[first:],
        columns.open[first:],
        columns.high[first:],
        columns.low[first:],
        columns.close[first:],
        columns.volume[first:],
        columns.taker_buy_volume[first:],
        columns.has_flow[first:],
    )


class ReplaySource:
    """`BarSource` over kline files: several symbols merged by open time, then FINISHED.

    `speed` None replays as fast as possible (the clock still follows each bar's close);
    a number S replays S x real time, paced on the event loop's clock. `symbol` names the
    symbol of every file (else each file name must tell it). `start_ms` and `end_ms` keep
    only the bars that open in [start_ms, end_ms): the run starts cold on the first of them.
    """

    name = "replay"
    #: Every bar it yields passed `Bar.problem` (the parser checks each row it keeps).
    bars_checked = True

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        clock: Clock,
        speed: float | None = None,
        skip_bad_rows: bool = False,
        allow_no_flow: bool = False,
        symbol: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> None:
        if speed is not None and not speed > 0:
            raise DataError(f"replay speed must be positive (or None for max), not {speed}")
        if start_ms is not None and end_ms is not None and not start_ms < end_ms:
            raise DataError(f"replay window start {start_ms} must be before its end {end_ms}")
        as_list = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        self.clock = clock
        self.speed = speed
        self.symbol = symbol
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.options = ParseOptions(allow_no_flow=allow_no_flow, skip_bad_rows=skip_bad_rows)
        self.stats = ReplayStats()
        self._reader = _file_reader
        self._files = self._survey(expand_paths(as_list))
        self.symbols: tuple[str, ...] = tuple(dict.fromkeys(f.symbol for f in self._files))
        self._state = SourceState.WARMING
        self._last_ok_s: float | None = None
        self._last_error: str | None = None
        self._errors = 0
        self._closed = False

    @property
    def first_open_ms(self) -> int:
        """Open time of the earliest bar (to start a simulated clock there)."""
        return min(f.first_open_ms for f in self._files)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(self.stats.skipped_by_reason)

    def _survey(self, paths: list[Path]) -> list[_KlineFile]:
        """Each file's symbol and first open time; fails early on empty or unreadable files."""
        surveyed = []
        for path in paths:
            bars = self._reader.read(path, self.symbol, self.options, ReplayStats())
            first = next(bars, None)
            bars.close()
            if first is None:  # the parser raises first; this keeps the promise explicit
                raise DataError(f"{path}: no kline rows")
            surveyed.append(_KlineFile(path, first.symbol, first.open_ms))
        return sorted(surveyed, key=lambda f: (f.symbol, f.first_open_ms))

    def _symbol_bars(self, symbol: str, whole: bool = False) -> Iterator[Bar]:
        """One symbol's files chained in time order, without duplicate or earlier open times.
        `whole`: a clean file may be read at once (the reader's `read_all`), not streamed."""
        last_open_ms: int | None = None
        read_all = getattr(self._reader, "read_all", None) if whole else None
        for file in (f for f in self._files if f.symbol == symbol):
            read = self._reader.read if read_all is None else read_all
            for bar in read(file.path, symbol, self.options, self.stats):
                if last_open_ms is not None and bar.open_ms <= last_open_ms:
                    self.stats.duplicates_dropped += 1
                    continue
                if last_open_ms is not None and bar.open_ms > last_open_ms + bar.interval_ms:
                    self.stats.gaps += 1
                last_open_ms = bar.open_ms
                self.stats.bars += 1
                yield bar

    def merged_bars(self, whole: bool = False) -> Iterator[Bar]:
        """Every symbol's bars merged by open time (symbols of one minute in a fixed order)."""
        rank = {symbol: i for i, symbol in enumerate(self.symbols)}
        streams = [self._symbol_bars(symbol, whole) for symbol in self.symbols]
        return heapq.merge(*streams, key=lambda bar: (bar.open_ms, rank[bar.symbol]))

    async def bars(self, resume_after_ms: int | None = None) -> AsyncIterator[Bar]:
        """Bars in time order until the files or the window end (then FINISHED); re-streams
        from the start on every call, skipping bars at or before `resume_after_ms` and before
        the window without waiting."""
        self.stats = ReplayStats()
        pacer = _Pacer(self.clock, self.speed)
        self._state = SourceState.OK
        try:
            for bar in self.merged_bars():
                if self._closed:
                    return
                if self.end_ms is not None and bar.open_ms >= self.end_ms:
                    break  # bars come in time order: the rest are later still
                if resume_after_ms is not None and bar.open_ms <= resume_after_ms:
                    continue
                if self.start_ms is not None and bar.open_ms < self.start_ms:
                    continue
                await pacer.wait_for_close(bar.close_s)
                self._last_ok_s = self.clock.now()
                yield bar
        except DataError as exc:
            self._fail(str(exc))
            raise
        self._state = SourceState.FINISHED

    def batch_bars(self, resume_after_ms: int | None = None) -> list[Bar]:
        """Every bar `bars()` would yield, at once (a batch replay at full speed: no pacing;
        the caller moves the clock). The source then reads FINISHED."""
        self.stats = ReplayStats()
        self._state = SourceState.OK
        start, end = self.start_ms, self.end_ms
        out: list[Bar] = []
        try:
            with no_gc():
                for bar in self.merged_bars(whole=True):
                    if end is not None and bar.open_ms >= end:
                        break
                    if resume_after_ms is not None and bar.open_ms <= resume_after_ms:
                        continue
                    if start is not None and bar.open_ms < start:
                        continue
                    out.append(bar)
        except DataError as exc:
            self._fail(str(exc))
            raise
        if out:
            self._last_ok_s = out[-1].close_s
        self._state = SourceState.FINISHED
        return out

    def batch_input(self, resume_after_ms: int | None = None) -> BatchInput:
        """What `BatchInput.from_bars(self.batch_bars(resume_after_ms), checked=True)`
        gives, with the same stats and state after it, but without a `Bar` per row: each
        clean file comes as columns (the reader's `read_columns`), a symbol's files are
        chained and the window cut in numpy, and the steps are the symbols merged by
        (open time, symbol) as `merged_bars` merges them. A file that is not clean is read
        as bars. A file that fails, or one that is not clean under a window that ends
        early (the stream would read only part of it), goes through `batch_bars`: its
        counts and its first error are the stream's own."""
        self.stats = ReplayStats()
        self._state = SourceState.OK
        try:
            with no_gc():
                chains = [self._symbol_chain(symbol) for symbol in self.symbols]
        except DataError:
            chains = [None]
        if any(chain is None for chain in chains):
            return BatchInput.from_bars(self.batch_bars(resume_after_ms), checked=True)
        found = [chain for chain in chains if chain is not None]  # all of them
        self._count_pulled(found)
        out = self._merge_window(found, resume_after_ms)
        if out.order:
            last_open_ms = max(int(c.open_ms[-1]) for c in out.columns)
            self._last_ok_s = (last_open_ms + MINUTE_MS) / 1000.0
        self._state = SourceState.FINISHED
        return out

    def _symbol_chain(self, symbol: str) -> _Chain | None:
        """One symbol's files chained as `_symbol_bars` chains them, as columns; None when
        a file is not clean and the window ends early (see `batch_input`)."""
        # a `ColumnsReader` hands clean files over as columns
        read_columns = getattr(self._reader, "read_columns", None)
        pieces: list[BarColumns] = []
        for file in (f for f in self._files if f.symbol == symbol):
            columns = None
            if read_columns is not None:
                columns = read_columns(file.path, symbol, self.options, self.stats)
            if columns is None:
                if self.end_ms is not None:
                    return None
                bars = list(self._reader.read(file.path, symbol, self.options, self.stats))
                columns = BarColumns.from_bars(symbol, bars)
            pieces.append(columns)
        return _Chain.of(symbol, pieces)

    def _count_pulled(self, chains: list[_Chain]) -> None:
        """The stats `batch_bars` leaves: it counts each bar (and the duplicates and gaps
        before it) as `heapq.merge` pulls it from its symbol's stream, and when the window
        ends the merge stops with one bar pulled ahead on every other stream."""
        pulled = [len(chain) for chain in chains]
        exhausted = [True] * len(chains)
        end = self.end_ms
        late = (
            []
            if end is None
            else [
                (int(chain.open_ms[i]), rank)
                for rank, chain in enumerate(chains)
                if (i := int(np.searchsorted(chain.open_ms, end))) < len(chain)
            ]
        )
        if late:
            stop_ms, stop_rank = min(late)  # the bar that ends the window
            for rank, chain in enumerate(chains):
                # bars merged before the one that ends the window
                taken = int(
                    np.searchsorted(
                        chain.open_ms, stop_ms, "right" if rank <= stop_rank else "left"
                    )
                )
                ahead = 0 if rank == stop_rank else 1
                pulled[rank] = min(taken + ahead, len(chain))
                exhausted[rank] = rank != stop_rank and taken == len(chain)
        for chain, count, done in zip(chains, pulled, exhausted, strict=True):
            self.stats.bars += count
            self.stats.gaps += int(chain.gaps[:count].sum())
            self.stats.duplicates_dropped += (
                chain.duplicates if done else int(chain.duplicates_before[count - 1])
            )

    def _merge_window(self, chains: list[_Chain], resume_after_ms: int | None) -> BatchInput:
        """The bars `batch_bars` keeps, as columns, and their merged order."""
        cuts = []
        for chain in chains:
            open_ms = chain.open_ms
            first = 0
            if resume_after_ms is not None:
                first = int(np.searchsorted(open_ms, resume_after_ms, "right"))
            if self.start_ms is not None:
                first = max(first, int(np.searchsorted(open_ms, self.start_ms)))
            stop = len(chain) if self.end_ms is None else int(np.searchsorted(open_ms, self.end_ms))
            cuts.append((first, stop))
        # codes in order of first appearance in the merged steps, as `from_bars` gives them
        present = sorted(
            (int(chain.open_ms[first]), rank)
            for rank, (chain, (first, stop)) in enumerate(zip(chains, cuts, strict=True))
            if first < stop
        )
        ranks = len(chains)
        code_of_rank = np.full(ranks, REJECTED, dtype=np.int64)
        keys = []
        columns = []
        for code, (_, rank) in enumerate(present):
            code_of_rank[rank] = code
            first, stop = cuts[rank]
            part = chains[rank].columns.head(stop)
            columns.append(_tail(part, first))
            keys.append(part.open_ms[first:] * ranks + rank)
        if not keys:
            return BatchInput((), [], [])
        merged = np.sort(np.concatenate(keys), kind="stable")  # merges sorted runs: fast
        order: list[int] = code_of_rank[merged % ranks].tolist()
        return BatchInput(tuple(c.symbol for c in columns), columns, order)

    def _fail(self, message: str) -> None:
        self._state = SourceState.DEGRADED
        self._last_error = message
        self._errors += 1

    def health(self) -> SourceHealth:
        return SourceHealth(
            name=self.name,
            state=self._state,
            last_ok_s=self._last_ok_s,
            last_error=self._last_error,
            errors=self._errors,
            skipped_rows=self.stats.skipped_rows,
            detail=f"{len(self._files)} files, {len(self.symbols)} symbols: {self.stats.summary()}",
        )

    async def aclose(self) -> None:
        self._closed = True


class _Pacer:
    """Waits for each new bar close: on the clock, and at `speed` x real time when set."""

    def __init__(self, clock: Clock, speed: float | None) -> None:
        self._clock = clock
        self._speed = speed
        self._last_close_s: float | None = None
        self._anchor: tuple[float, float] | None = None  # (event-loop time, market close)

    async def wait_for_close(self, close_s: float) -> None:
        if close_s == self._last_close_s:
            return
        self._last_close_s = close_s
        if self._speed is not None:
            await self._wait_real_time(close_s, self._speed)
        await self._clock.sleep_until(close_s)

    async def _wait_real_time(self, close_s: float, speed: float) -> None:
        if self._anchor is None:
            self._anchor = (anyio.current_time(), close_s)
            return
        loop_start, market_start = self._anchor
        delay_s = loop_start + (close_s - market_start) / speed - anyio.current_time()
        if delay_s > 0:
            await anyio.sleep(delay_s)
