"""The whole-file kline reader (batch replay) against the streaming parser on odd files.

Every crafted file is read both ways, as plain CSV, gzip and zip, with and without
--skip-bad-rows / --allow-no-flow: the same bars (repr: -0.0 and 0.0 differ), the same
counts, or the same one-line error. Where the whole-file reader takes a file itself, its
bars equal the stream's too. Microsecond open times (Binance's spot archives since 2025)
convert exactly; a time that is not a whole millisecond, or a number of thousands of
digits, is refused on one line with exit 2 on both paths.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bigalpha_tui.core.errors import DataError
from bigalpha_tui.core.sources.replay import (
    DiskReader,
    ParseOptions,
    ReplayStats,
    clean_kline_bars,
    parse_epoch_ms,
)

HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
T0 = 1_769_904_000_000  # 2026-02-01 00:00 UTC
ROWS = 40


def rows() -> list[list[str]]:
    out = []
    for i in range(ROWS):
        open_ms = T0 + 60_000 * i
        price = 10.0 + 0.01 * (i % 7)
        out.append(
            [
                str(open_ms),
                f"{price:.4f}",
                f"{price + 0.02:.4f}",
                f"{price - 0.02:.4f}",
                f"{price + 0.01:.4f}",
                str(1000 + i),
                str(open_ms + 59_999),
                "1.0",
                "7",
                str(400 + i),
                "1.0",
                "0",
            ]
        )
    return out


Edit = Callable[[int, list[str]], list[str] | None]


def at(row: int, column: int, text: str) -> Edit:
    def edit(i: int, fields: list[str]) -> list[str]:
        if i == row:
            fields[column] = text
        return fields

    return edit


def every(column: int, change: Callable[[str], str], start: int = 0) -> Edit:
    def edit(i: int, fields: list[str]) -> list[str]:
        if i >= start:
            fields[column] = change(fields[column])
        return fields

    return edit


def both(*edits: Edit) -> Edit:
    def edit(i: int, fields: list[str]) -> list[str] | None:
        for one in edits:
            result = one(i, fields)
            if result is None:
                return None
            fields = result
        return fields

    return edit


def us(text: str) -> str:
    return text + "000"


ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

CASES: dict[str, tuple[Edit, dict[str, object]]] = {
    "plain": (lambda i, f: f, {}),
    "crlf": (lambda i, f: f, {"eol": "\r\n"}),
    "cr": (lambda i, f: f, {"eol": "\r"}),
    "no header": (lambda i, f: f, {"header": False}),
    "no final newline": (lambda i, f: f, {"end": ""}),
    "blank lines at the end": (lambda i, f: f, {"end": "\n\n \n"}),
    "utf-8 bom": (lambda i, f: f, {"bom": True}),
    "microseconds": (both(every(0, us), every(6, lambda t: t + "999")), {}),
    "microseconds open only": (every(0, us), {}),
    "seconds": (both(every(0, lambda t: t[:-3]), every(6, lambda t: t[:-3])), {}),
    "width changes mid-file": (both(every(0, us, 20), every(6, lambda t: t + "999", 20)), {}),
    "leading zero": (both(every(0, lambda t: "0" + t), every(6, lambda t: "0" + t)), {}),
    "zero-padded seconds": (every(0, lambda t: "000" + t[:-3]), {}),
    "scientific prices": (every(1, lambda t: f"{float(t):e}"), {}),
    "scientific open time": (every(0, lambda t: f"{int(t):.12e}"), {}),
    "negative zero taker": (at(5, 9, "-0.0"), {}),
    "zero volume": (both(at(5, 5, "0"), at(5, 9, "0")), {}),
    "negative price": (at(7, 3, "-1"), {}),
    "zero price": (at(7, 1, "0"), {}),
    "nan": (at(7, 2, "nan"), {}),
    "inf": (both(at(7, 5, "inf"), at(7, 9, "inf")), {}),
    "underscores": (every(5, lambda t: t[0] + "_" + t[1:]), {}),
    "spaces around a price": (every(1, lambda t: f" {t} "), {}),
    "space before the time": (every(0, lambda t: " " + t), {}),
    "plus sign": (every(0, lambda t: "+" + t), {}),
    "extra column": (lambda i, f: [*f, "x"], {}),
    "eleven columns": (lambda i, f: f[:11], {}),
    "six columns under a 12-column header": (lambda i, f: f[:6], {}),
    "arabic-indic digits in a time": (at(3, 0, str(T0 + 180_000).translate(ARABIC)), {}),
    "arabic-indic digits in a price": (at(3, 1, "١٠"), {}),
    "duplicate row": (lambda i, f: f, {"duplicate": 10}),
    "rows swapped": (lambda i, f: f, {"swap": 30}),
    "gap": (lambda i, f: None if 20 <= i < 25 else f, {}),
    "empty taker column": (at(4, 9, ""), {}),
    "empty close time": (every(6, lambda t: ""), {}),
    "taker above volume": (at(4, 9, "99999"), {}),
    "off the minute": (at(4, 0, str(T0 + 4 * 60_000 + 1000)), {}),
    "five-minute close time": (every(6, lambda t: str(int(t) + 240_000)), {}),
    "nul in the ignored column": (at(4, 11, "0\x00"), {}),
    "nul in a price": (at(4, 1, "10.0\x00"), {}),
    "hex float": (at(4, 1, "0x1.4p+3"), {}),
    "overflowing close time": (at(4, 6, "1e400"), {}),
    "thousands of digits in the open time": (at(4, 0, "9" * 5000), {}),
    "thousands of digits in the close time": (at(4, 6, "9" * 5000), {}),
    "microseconds not a whole millisecond": (at(4, 0, str(T0 + 240_000) + "999"), {}),
    "fraction of a second": (at(4, 0, str((T0 + 240_000) // 1000) + ".5"), {}),
    "huge exponent": (at(4, 0, "1e999999999"), {}),
    "header again mid-file": (lambda i, f: f, {"header_at": 20}),
}


def build(edit: Edit, options: dict[str, object]) -> str:
    lines = []
    for i, fields in enumerate(rows()):
        edited = edit(i, fields)
        if edited is not None:
            lines.append(",".join(edited))
    if "duplicate" in options:
        n = int(options["duplicate"])  # type: ignore[call-overload]
        lines.insert(n, lines[n])
    if "swap" in options:
        n = int(options["swap"])  # type: ignore[call-overload]
        lines[n], lines[n + 1] = lines[n + 1], lines[n]
    if "header_at" in options:
        lines.insert(int(options["header_at"]), HEADER)  # type: ignore[call-overload]
    if options.get("header", True):
        lines.insert(0, HEADER)
    eol = str(options.get("eol", "\n"))
    text = eol.join(lines) + str(options.get("end", "\n")).replace("\n", eol)
    return ("\ufeff" if options.get("bom") else "") + text


def write(folder: Path, name: str, text: str, kind: str) -> Path:
    stem = "AVAXUSDT-1m-" + name.replace(" ", "_")
    data = text.encode()
    if kind == "csv":
        path = folder / f"{stem}.csv"
        path.write_bytes(data)
    elif kind == "gz":
        path = folder / f"{stem}.csv.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = folder / f"{stem}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{stem}.csv", data)
    return path


def read(path: Path, options: ParseOptions, whole: bool) -> tuple[object, str]:
    stats = ReplayStats()
    reader = DiskReader()
    try:
        bars = reader.read_all if whole else reader.read
        return [repr(bar) for bar in bars(path, None, options, stats)], stats.summary()
    except DataError as exc:
        return str(exc), stats.summary()


OPTIONS = [
    ParseOptions(),
    ParseOptions(skip_bad_rows=True),
    ParseOptions(allow_no_flow=True, skip_bad_rows=True),
]


@pytest.mark.parametrize("name", list(CASES))
def test_whole_file_and_streaming_read_every_odd_file_alike(tmp_path: Path, name: str) -> None:
    edit, layout = CASES[name]
    text = build(edit, layout)
    for kind in ("csv", "gz", "zip"):
        path = write(tmp_path, name, text, kind)
        for options in OPTIONS:
            streamed = read(path, options, whole=False)
            assert read(path, options, whole=True) == streamed, (kind, options)
            fast = clean_kline_bars(path, "AVAXUSDT", options)
            if fast is not None:
                assert [repr(bar) for bar in fast] == streamed[0], (kind, options)


def test_microsecond_files_give_the_millisecond_files_bars(tmp_path: Path) -> None:
    ms = read(write(tmp_path, "ms", build(*CASES["plain"]), "csv"), ParseOptions(), True)
    for name in ("microseconds", "microseconds open only", "width changes mid-file"):
        path = write(tmp_path, name, build(*CASES[name]), "csv")
        assert read(path, ParseOptions(), whole=True) == ms, name


@pytest.mark.parametrize("whole", [True, False])
def test_the_whole_file_reader_scales_times_as_the_streaming_parser(whole: bool) -> None:
    """s, ms, us and ns by magnitude (leading zeros included), one width or mixed."""
    from bigalpha_tui.core.sources.replay import _epoch_ms, _scale_to_ms

    for texts in (
        ["1769904000000000", "1769904060000000"],  # us
        ["1769904059999999", "1769904119999999"],  # us close times
        ["001769904000", "001769904060"],  # seconds, zero-padded to 12
        ["0001769904000000", "1769904060000"],  # ms padded to 16, mixed widths
        ["176990400000000000", "176990400006000000"],  # 18 digits: ns range
    ):
        got = _epoch_ms(texts, whole=whole)
        rests = any(
            int(t) >= 10**14 and int(t) % (10**6 if int(t) >= 10**17 else 10**3) for t in texts
        )
        if whole and rests:
            assert got is None  # the streaming parser refuses such an open time
        else:
            assert got is not None and got.tolist() == [_scale_to_ms(int(t)) for t in texts]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1769904000000999", "not on a minute boundary"),  # us, 999 us past the minute
        ("1769904000000000001", "not on a minute boundary"),  # ns
        ("1769904000.5", "not on a minute boundary"),
        ("1769904000000.5", "not on a minute boundary"),
        ("2026-02-01T00:00:00.0004", "not on a minute boundary"),
        pytest.param("9" * 5000, "bad timestamp", id="5000 digits"),  # int(): ValueError
        ("1e999999999", "bad timestamp"),
    ],
)
def test_open_times_not_a_whole_millisecond_are_refused_not_rounded(text: str, reason: str) -> None:
    """Before, 1769904000000999 us read as the minute 1769904000000 ms (the rest dropped),
    1769904000.5 s as its whole second, and 5,000 digits raised a ValueError."""
    with pytest.raises(DataError) as caught:
        parse_epoch_ms(text)
    assert caught.value.reason == reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1769904000000000", 1_769_904_000_000),
        ("1769904000000000000", 1_769_904_000_000),
        ("1.769904e12", 1_769_904_000_000),
        ("1769904000.000", 1_769_904_000_000),
        ("0000000001769904000000", 1_769_904_000_000),
        ("2026-02-01T00:00:00.000", 1_769_904_000_000),
    ],
)
def test_exact_times_in_any_unit_still_convert(text: str, ms: int) -> None:
    assert parse_epoch_ms(text) == ms


@pytest.mark.parametrize(
    "name", ["thousands of digits in the open time", "microseconds not a whole millisecond"]
)
def test_the_replay_command_says_so_on_one_line_on_both_paths(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, build(*CASES[name]), "csv")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_DATA_HOME": str(tmp_path / "d")}
    results = []
    for extra in ([], ["--streaming"]):
        result = subprocess.run(
            [sys.executable, "-m", "bigalpha_tui.cli", "replay", str(path), "--json", *extra],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.splitlines()) == 1 and "line 6" in result.stderr
        results.append(result.stderr)
    assert results[0] == results[1]
