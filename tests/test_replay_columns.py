"""The batch replay's input as columns (`ReplaySource.batch_input`) is what the bar path
gives (`BatchInput.from_bars(batch_bars(...))`), bit for bit: the same symbols in the same
order, the same columns, the same steps, the same stats and source health after it, the
same error for a bad file. The whole-file reader reads every price and volume exactly as
`float` does."""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigalpha_tui.core.bar import MINUTE_MS
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.columns import BarColumns, BatchInput
from bigalpha_tui.core.errors import DataError
from bigalpha_tui.core.sources.replay import (
    DiskReader,
    ParseOptions,
    ReplaySource,
    ReplayStats,
    _decimals,
    clean_kline_columns,
    set_file_reader,
)
from bigalpha_tui.sweep_data import WorkerFiles, manifest

SHARED_MONTH = "binance_um_klines_1m"
DAY_MS = 86_400_000
DAYS_PER_FILE = 3  # the default suite; `--long` reads the whole month
T0 = 1_769_904_000_000  # 2026-02-01 00:00 UTC
ROW = "{t},{o},{h},{lo},{c},{v},{ct},1000.5,10,{tb},600.25,0\n"
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
COLUMN_NAMES = ("open_ms", "open", "high", "low", "close", "volume", "taker_buy_volume")


@pytest.fixture(autouse=True)
def disk_reader_afterwards() -> Iterator[None]:
    yield
    set_file_reader(None)


def same_columns(got: BarColumns, want: BarColumns) -> None:
    assert (got.symbol, got.interval_ms, got.cross_buy_ratio) == (
        want.symbol,
        want.interval_ms,
        want.cross_buy_ratio,
    )
    for name in (*COLUMN_NAMES, "has_flow"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.shape == b.shape, (got.symbol, name)
        assert a.tobytes() == b.tobytes(), (got.symbol, name)  # floats bit for bit


def outcome(
    paths: list[Path], options: dict[str, Any], read: Callable[[ReplaySource], BatchInput]
) -> tuple[ReplaySource | None, BatchInput | tuple[str, str]]:
    """A fresh source and what `read` gets from it, or the error (the source's own
    survey of the files may raise it)."""
    try:
        source = ReplaySource(paths, SimClock(0.0), **options)
    except DataError as exc:
        return None, ("DataError", str(exc))
    try:
        return source, read(source)
    except DataError as exc:
        return source, ("DataError", str(exc))


def assert_same_input(
    paths: list[Path], resume_after_ms: int | None = None, **options: Any
) -> BatchInput | None:
    """`batch_input` of a fresh source against `from_bars(batch_bars)` of another: the
    columns, the steps, the stats and the health (state, last bar, error) after it."""
    by_bars, want = outcome(
        paths,
        options,
        lambda s: BatchInput.from_bars(s.batch_bars(resume_after_ms), checked=True),
    )
    by_columns, got = outcome(paths, options, lambda s: s.batch_input(resume_after_ms))
    if by_bars is None or by_columns is None:
        assert got == want
        return None
    assert by_columns.stats == by_bars.stats
    assert by_columns.health() == by_bars.health()
    if not isinstance(want, BatchInput):
        assert got == want  # the same error, word for word
        return None
    assert isinstance(got, BatchInput), got
    assert got.symbols == want.symbols
    assert got.order == want.order
    assert got.rejected == want.rejected == {}
    for a, b in zip(got.columns, want.columns, strict=True):
        same_columns(a, b)
    return got


# -- real data -----------------------------------------------------------------------------


def shared_files(shared: Path) -> list[Path]:
    files = sorted((shared / SHARED_MONTH).glob("*-1m-2026-02.csv.gz"))
    if not files:
        pytest.skip(f"no 2026-02 kline files in {shared / SHARED_MONTH}")
    return files


def test_every_shared_2026_02_file_gives_the_same_columns(
    shared_data: Path, long_run: bool
) -> None:
    for path in shared_files(shared_data):
        end_ms = None if long_run else T0 + DAYS_PER_FILE * DAY_MS
        got = assert_same_input([path], end_ms=end_ms)
        assert got is not None and len(got) >= DAYS_PER_FILE * 1440 - 1, path.name


def test_the_shared_files_together_with_a_window_and_a_resume(
    shared_data: Path, long_run: bool
) -> None:
    """Five symbols merged minute by minute; a window inside the month (the merge stops on
    the first bar past it, with a bar read ahead on every other file) and a resume."""
    files = shared_files(shared_data)
    end_ms = None if long_run else T0 + 2 * DAY_MS + 7 * MINUTE_MS
    got = assert_same_input(files, start_ms=T0 + DAY_MS // 2, end_ms=end_ms)
    assert got is not None and len(got.symbols) == len(files)
    assert_same_input(files, T0 + DAY_MS + 30 * MINUTE_MS, end_ms=T0 + 2 * DAY_MS)


def test_the_whole_file_reader_reads_every_shared_price_as_float_does(
    shared_data: Path, long_run: bool
) -> None:
    """Every price and volume of the shared kline files (the 2026-02 ones; every month
    with --long) against `float` on the field's text."""
    folder = shared_data / SHARED_MONTH
    files = sorted(folder.glob("*-1m-*.csv.gz")) if long_run else shared_files(shared_data)
    for path in files:
        columns = clean_kline_columns(path, "X", ParseOptions())
        assert columns is not None, f"{path.name} is clean"
        rows = [
            line.split(",")
            for line in gzip.decompress(path.read_bytes()).decode().splitlines()
            if line and not line.startswith("open")
        ]
        assert columns.open_ms.tolist() == [int(r[0]) for r in rows]
        for column, name in zip((1, 2, 3, 4, 5, 9), COLUMN_NAMES[1:], strict=True):
            want = np.array([float(r[column]) for r in rows])
            assert getattr(columns, name).tobytes() == want.tobytes(), (path.name, name)


# -- the in-repo excerpts ------------------------------------------------------------------


def test_in_repo_excerpts_give_the_same_columns(test_data: Path) -> None:
    clean = [
        test_data / "AVAXUSDT-1m-2026-02-head.csv.gz",
        test_data / "LINKUSDT-1m-2026-02-noheader.csv",
        test_data / "AVAXUSDT-1m-2023-09-zero-volume.csv.gz",  # zero-volume minutes
    ]
    for path in clean:
        assert_same_input([path])
    together = assert_same_input(clean)
    assert together is not None and together.symbols == ("AVAXUSDT", "LINKUSDT")
    no_flow = [
        test_data / "SOLUSDT_1m_2025-01-01-head.csv.gz",  # OHLCV only
        test_data / "battle_hymn_BTCUSDT_1m-seam.csv.gz",  # empty taker columns, then full
    ]
    for path in no_flow:
        assert_same_input([path])  # refused alike: the data has no taker-buy volume
        got = assert_same_input([path], allow_no_flow=True)
        assert got is not None and not got.columns[0].has_flow.all()
    assert_same_input(clean + no_flow, allow_no_flow=True)


# -- crafted files: duplicates, overlaps, gaps, bad rows -------------------------------------


def row(minute: int, price: float = 10.0, volume: str = "100") -> str:
    t = T0 + minute * MINUTE_MS
    low, high = price - 0.1, price + 0.2
    return ROW.format(
        t=t, o=price, h=f"{high:.4f}", lo=f"{low:.4f}", c=price, v=volume,
        ct=t + MINUTE_MS - 1, tb="60",
    )  # fmt: skip


def write(path: Path, minutes: list[int], extra: dict[int, str] | None = None) -> Path:
    """A kline file of `minutes` (in that order), with `extra[i]` as line i instead."""
    lines = [row(m, 10.0 + (m % 17) / 100) for m in minutes]
    for i, text in (extra or {}).items():
        lines[i] = text
    path.write_text(HEADER + "".join(lines))
    return path


def overlapping_files(folder: Path) -> list[Path]:
    """Two symbols; AVAX in three files that overlap, repeat rows, go back in time and
    skip minutes; LINK starts later and ends earlier."""
    first = [*range(0, 50), 49, 49, 30, *range(50, 80), *range(90, 120)]  # dups, gap
    second = [*range(100, 160), 150, *range(165, 200)]  # overlaps the first, gap
    third = list(range(120, 130))  # inside the second: all duplicates
    link = [*range(20, 70), *range(75, 150)]
    return [
        write(folder / "AVAXUSDT-1m-a.csv", first),
        write(folder / "AVAXUSDT-1m-b.csv", second),
        write(folder / "AVAXUSDT-1m-c.csv", third),
        write(folder / "LINKUSDT-1m-a.csv", link),
    ]


def test_overlapping_files_duplicates_and_gaps_count_alike(tmp_path: Path) -> None:
    files = overlapping_files(tmp_path)
    got = assert_same_input(files)
    assert got is not None
    source = ReplaySource(files, SimClock(0.0))
    source.batch_input()
    assert source.stats.duplicates_dropped >= 3 + 11 + 10 and source.stats.gaps >= 3


@settings(max_examples=60, deadline=None)
@given(
    start=st.none() | st.integers(-5, 210),
    length=st.none() | st.integers(1, 220),
    resume=st.none() | st.integers(-5, 210),
)
def test_any_window_and_resume_counts_what_the_bar_path_counts(
    tmp_path_factory: pytest.TempPathFactory,
    start: int | None,
    length: int | None,
    resume: int | None,
) -> None:
    """The bar path counts a bar (its duplicates, its gap) when the merge pulls it: a
    window that ends early leaves the rest of every file uncounted but one bar ahead."""
    files = overlapping_files(tmp_path_factory.mktemp("overlap"))
    start_ms = None if start is None else T0 + start * MINUTE_MS
    base = T0 if start_ms is None else start_ms
    end_ms = None if length is None else base + length * MINUTE_MS
    resume_ms = None if resume is None else T0 + resume * MINUTE_MS
    assert_same_input(files, resume_ms, start_ms=start_ms, end_ms=end_ms)


def test_a_bad_row_fails_or_is_skipped_alike(tmp_path: Path) -> None:
    minutes = list(range(100))
    bad = row(40).replace(",100,", ",abc,", 1)  # a non-numeric volume
    path = write(tmp_path / "AVAXUSDT-1m-bad.csv", minutes, {40: bad})
    other = write(tmp_path / "LINKUSDT-1m-a.csv", minutes)
    assert_same_input([path, other])  # the same error, and the source DEGRADED alike
    failed = ReplaySource([path], SimClock(0.0))
    with pytest.raises(DataError, match="line 42"):
        failed.batch_input()
    got = assert_same_input([path, other], skip_bad_rows=True)
    assert got is not None and len(got.columns[0]) == 99
    # a window that ends before the bad row: the bar path never reads it
    assert_same_input([path, other], end_ms=T0 + 20 * MINUTE_MS)
    assert_same_input([path, other], skip_bad_rows=True, end_ms=T0 + 20 * MINUTE_MS)


def test_odd_but_valid_fields_are_read_as_float_reads_them(tmp_path: Path) -> None:
    """A file the whole-file reader takes although some fields are not plain decimals."""
    minutes = list(range(30))
    odd = {
        3: row(3, volume="1e2"),
        4: row(4, volume=" 1_00 "),
        5: row(5, volume="0100.000000000000000001"),  # wider than the numpy path reads
        6: row(6, volume="99999999999999.9"),  # 16 characters: by float
        7: row(7, volume="123456789012345"),  # 15: the widest the numpy path reads
        8: row(8, volume=".5e3"),
    }
    path = write(tmp_path / "AVAXUSDT-1m-odd.csv", minutes, odd)
    assert clean_kline_columns(path, "AVAXUSDT", ParseOptions()) is not None
    assert_same_input([path])


# -- the sweep's file cache ----------------------------------------------------------------


def test_a_sweep_worker_serves_columns_as_the_disk_reads_them(tmp_path: Path) -> None:
    files = overlapping_files(tmp_path)
    bad = write(
        tmp_path / "DOTUSDT-1m-bad.csv", list(range(50)), {10: row(10).replace(",100,", ",x,")}
    )
    options = ParseOptions(skip_bad_rows=True)
    workers = WorkerFiles(manifest([*files, bad], None, options))
    for path in files:
        served = workers.read_columns(path, None, options, ReplayStats())
        on_disk = DiskReader().read_columns(path, None, options, ReplayStats())
        assert served is not None and on_disk is not None
        same_columns(served, on_disk)
    # a file with a skipped row is served bar by bar (its skip counted where it lies)
    assert workers.read_columns(bad, None, options, ReplayStats()) is None
    assert workers.fetches == {os.path.abspath(p): 1 for p in [*files, bad]}
    from_disk = assert_same_input([*files, bad], skip_bad_rows=True)
    set_file_reader(workers)
    served_input = assert_same_input([*files, bad], skip_bad_rows=True)
    assert from_disk is not None and served_input is not None
    for a, b in zip(served_input.columns, from_disk.columns, strict=True):
        same_columns(a, b)
    assert served_input.order == from_disk.order
    assert workers.fetches == {os.path.abspath(p): 1 for p in [*files, bad]}  # still once


# -- the float reading ---------------------------------------------------------------------

decimal_text = st.builds(
    lambda whole, point, fraction: whole + point + fraction,
    st.text("0123456789", min_size=0, max_size=18),
    st.sampled_from(["", "."]),
    st.text("0123456789", min_size=0, max_size=18),
)
odd_text = st.sampled_from(
    ["1e5", "-0", "+1.5", " 1_0.5 ", "inf", "nan", "1.5E-3", "0x10", "", ".", "1..2", "1.2.3"]
)


def float_or_error(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return "ValueError"


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        decimal_text
        | odd_text
        | st.text("0123456789.", max_size=17)  # points anywhere, several, none
        | st.floats(0, 1e12).map(repr),
        min_size=1,
        max_size=40,
    )
)
def test_decimals_are_read_as_float_reads_them_bit_for_bit(texts: list[str]) -> None:
    want = [float_or_error(t) for t in texts]
    if "ValueError" in want:
        with pytest.raises(ValueError):
            _decimals(texts)
        return
    got = _decimals(texts)
    assert got.dtype == np.float64
    for text, a, b in zip(texts, got.tolist(), want, strict=True):
        assert isinstance(b, float)
        assert a == b or (math.isnan(a) and math.isnan(b)), text
        assert math.copysign(1.0, a) == math.copysign(1.0, b), text
        assert np.float64(a).tobytes() == np.float64(b).tobytes() or math.isnan(b), text
