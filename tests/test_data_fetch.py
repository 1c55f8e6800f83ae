"""`bigalpha-tui data fetch` against a fake archive on 127.0.0.1, and replay of cached months."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from archive_server import ArchiveServer, serve_archive

from bigalpha_tui import cli, data_cmd
from bigalpha_tui.core.errors import DataError
from bigalpha_tui.core.sources.replay import parse_kline_file

TEST_DATA = Path(__file__).parent / "data"
KLINES = "/data/futures/um/monthly/klines"


def month_zip(symbol: str, month: str, source: str = "AVAXUSDT-1m-2026-02-head.csv.gz") -> bytes:
    """A Binance-like monthly zip: one CSV member built from rows of a tests/data file."""
    path = TEST_DATA / source
    rows = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{symbol}-1m-{month}.csv", rows)
    return buffer.getvalue()


def publish(server: ArchiveServer, symbol: str, month: str, body: bytes) -> None:
    name = f"{symbol}-1m-{month}.zip"
    server.files[f"{KLINES}/{symbol}/1m/{name}"] = body
    digest = hashlib.sha256(body).hexdigest()
    server.files[f"{KLINES}/{symbol}/1m/{name}.CHECKSUM"] = f"{digest}  {name}\n".encode()


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ArchiveServer]:
    with serve_archive(ArchiveServer()) as server:
        monkeypatch.setenv("BIGALPHA_ARCHIVE_URL", server.url)
        monkeypatch.setenv("BIGALPHA_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setattr(data_cmd, "REQUEST_GAP_S", 0.0)
        yield server


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Result(int(exited.value.code or 0), captured.out, captured.err)


def cached(cache: Path, symbol: str, month: str) -> Path:
    return cache / "futures-um-1m" / symbol / f"{symbol}-1m-{month}.zip"


def zip_requests(server: ArchiveServer) -> list[tuple[str, str | None]]:
    return [(path, rng) for path, rng in server.requests if path.endswith(".zip")]


def test_fetch_downloads_verifies_and_caches_owner_only(
    archive: ArchiveServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bodies = {m: month_zip("AVAXUSDT", m) + m.encode() for m in ("2026-01", "2026-02")}
    for month, body in bodies.items():
        publish(archive, "AVAXUSDT", month, body)
    result = run(capsys, "data", "fetch", "avaxusdt", "--from", "2026-01", "--to", "2026-02")
    assert result.code == 0, result.err
    for month, body in bodies.items():
        path = cached(cache, "AVAXUSDT", month)
        assert path.read_bytes() == body
        checksum = path.with_name(path.name + ".CHECKSUM").read_text()
        assert checksum.split() == [hashlib.sha256(body).hexdigest(), path.name]
        assert f"AVAXUSDT {month}: fetched" in result.out
    for entry in [cache, *cache.rglob("*")]:
        mode = stat.S_IMODE(entry.lstat().st_mode)
        assert mode == (0o700 if entry.is_dir() else 0o600), entry
    assert not list(cache.rglob("*.part"))
    assert "replay with: bigalpha-tui replay AVAXUSDT:2026-01..2026-02" in result.out


def test_second_fetch_makes_no_request_for_cached_months(
    archive: ArchiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(archive, "AVAXUSDT", "2026-02", month_zip("AVAXUSDT", "2026-02"))
    assert run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02").code == 0
    archive.requests.clear()
    again = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02")
    assert again.code == 0
    assert archive.requests == []
    assert "AVAXUSDT 2026-02: cached" in again.out


def test_partial_download_resumes_from_the_part_with_a_range(
    archive: ArchiveServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = month_zip("AVAXUSDT", "2026-02")
    publish(archive, "AVAXUSDT", "2026-02", body)
    target = cached(cache, "AVAXUSDT", "2026-02")
    target.parent.mkdir(parents=True)
    part = target.with_name(target.name + ".part")
    part.write_bytes(body[:1000])
    result = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02")
    assert result.code == 0, result.err
    assert [rng for _, rng in zip_requests(archive)] == ["bytes=1000-"]
    assert target.read_bytes() == body
    assert not part.exists()


def test_a_server_ignoring_the_range_makes_the_part_start_over(
    archive: ArchiveServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = month_zip("AVAXUSDT", "2026-02")
    publish(archive, "AVAXUSDT", "2026-02", body)
    archive.ignore_range = True
    target = cached(cache, "AVAXUSDT", "2026-02")
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(b"stale bytes of another file")
    result = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02")
    assert result.code == 0, result.err
    assert target.read_bytes() == body


def test_a_missing_month_is_listed_and_the_others_fetched(
    archive: ArchiveServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for month in ("2026-01", "2026-03"):
        publish(archive, "AVAXUSDT", month, month_zip("AVAXUSDT", month))
    result = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-01", "--to", "2026-03")
    assert result.code == 0, result.err
    assert "AVAXUSDT 2026-02: not in the archive (404)" in result.out
    assert "not in the archive: AVAXUSDT 2026-02" in result.out
    assert cached(cache, "AVAXUSDT", "2026-01").is_file()
    assert cached(cache, "AVAXUSDT", "2026-03").is_file()
    assert not cached(cache, "AVAXUSDT", "2026-02").exists()
    assert "AVAXUSDT:2026-01 AVAXUSDT:2026-03" in result.out


def test_a_bad_checksum_names_the_file_and_leaves_nothing_replay_reads(
    archive: ArchiveServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(archive, "AVAXUSDT", "2026-02", month_zip("AVAXUSDT", "2026-02"))
    archive.files[f"{KLINES}/AVAXUSDT/1m/AVAXUSDT-1m-2026-02.zip"] += b"tampered"
    result = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02")
    assert result.code == 1
    assert "AVAXUSDT-1m-2026-02.zip: its SHA-256 does not match" in result.err
    folder = cached(cache, "AVAXUSDT", "2026-02").parent
    assert sorted(p.name for p in folder.iterdir()) == ["AVAXUSDT-1m-2026-02.zip.bad"]
    replay = run(capsys, "replay", "--json", "AVAXUSDT:2026-02")
    assert replay.code == 2
    assert "bigalpha-tui data fetch AVAXUSDT --from 2026-02 --to 2026-02" in replay.err


def test_a_cached_zip_changed_afterwards_is_not_replayed_and_is_fetched_again(
    archive: ArchiveServer, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = month_zip("AVAXUSDT", "2026-02")
    publish(archive, "AVAXUSDT", "2026-02", body)
    assert run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02").code == 0
    target = cached(cache, "AVAXUSDT", "2026-02")
    target.write_bytes(body[:100] + bytes([body[100] ^ 0xFF]) + body[101:])
    assert run(capsys, "replay", "AVAXUSDT:2026-02").code == 2
    assert run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02").code == 0
    assert target.read_bytes() == body


def test_replay_json_of_a_cached_month_runs_end_to_end(
    archive: ArchiveServer, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(archive, "AVAXUSDT", "2026-02", month_zip("AVAXUSDT", "2026-02"))
    assert run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02").code == 0
    env = {
        **os.environ,
        "BIGALPHA_CACHE_DIR": str(cache),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "BIGALPHA_DATA_DIR": str(tmp_path / "operator-store"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "bigalpha_tui.cli", "replay", "--json", "AVAXUSDT:2026-02"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bars"] == 299
    assert list(report["symbols"]) == ["AVAXUSDT"]


def test_replay_of_a_month_not_cached_says_to_fetch_it(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIGALPHA_CACHE_DIR", str(cache))
    for argv in (
        ("replay", "BTCUSDT:2025-01..2025-03"),
        ("--no-ui", "--speed", "max", "BTCUSDT:2025-01..2025-03"),
    ):
        result = run(capsys, *argv)
        assert result.code == 2
        assert result.err.count("\n") == 1
        assert "run `bigalpha-tui data fetch BTCUSDT --from 2025-01 --to 2025-03`" in result.err


@pytest.mark.parametrize(
    "argv",
    [
        ("data", "fetch", "BTC/USDT", "--from", "2025-01"),
        ("data", "fetch", "BTCUSDT", "--from", "2025-13"),
        ("data", "fetch", "BTCUSDT", "--from", "25-01"),
        ("data", "fetch", "BTCUSDT", "--from", "2025-06", "--to", "2025-01"),
        ("replay", "BTC-USDT:2025-01"),
        ("replay", "BTCUSDT:2025-1"),
        ("replay", "BTCUSDT:2025-06..2025-01"),
        ("--no-ui", "BTCUSDT:january"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: tuple[str, ...],
    cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BIGALPHA_CACHE_DIR", str(cache))
    result = run(capsys, *argv)
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("bigalpha-tui: ")
    assert not cache.exists()


def test_a_bad_archive_url_is_one_line_and_exit_2(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIGALPHA_CACHE_DIR", str(cache))
    monkeypatch.setenv("BIGALPHA_ARCHIVE_URL", "ftp://example.com")
    result = run(capsys, "data", "fetch", "BTCUSDT", "--from", "2025-01")
    assert result.code == 2
    assert "BIGALPHA_ARCHIVE_URL" in result.err and result.err.count("\n") == 1


def test_a_symlinked_cache_folder_is_refused_in_one_line(
    archive: ArchiveServer, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(archive, "AVAXUSDT", "2026-02", month_zip("AVAXUSDT", "2026-02"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache.mkdir()
    (cache / "futures-um-1m").symlink_to(elsewhere)
    result = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02")
    assert result.code == 2
    assert "is not a folder" in result.err
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_planted_at_the_part_is_never_followed(
    archive: ArchiveServer, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish(archive, "AVAXUSDT", "2026-02", month_zip("AVAXUSDT", "2026-02"))
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    target = cached(cache, "AVAXUSDT", "2026-02")
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").symlink_to(victim)
    result = run(capsys, "data", "fetch", "AVAXUSDT", "--from", "2026-02")
    assert result.code == 1
    assert "is a symbolic link" in result.err
    assert victim.read_bytes() == b"keep me"
    assert not target.exists()


def test_config_path_shows_the_cache_folder(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BIGALPHA_CACHE_DIR", str(cache))
    result = run(capsys, "config", "--path")
    assert f"cache folder: {cache} (data fetch)" in result.out


def test_replay_reads_the_one_csv_in_a_zip_with_or_without_a_header(tmp_path: Path) -> None:
    with_header = tmp_path / "AVAXUSDT-1m-2026-02.zip"
    with_header.write_bytes(month_zip("AVAXUSDT", "2026-02"))
    no_header = tmp_path / "LINKUSDT-1m-2026-02.zip"
    no_header.write_bytes(month_zip("LINKUSDT", "2026-02", "LINKUSDT-1m-2026-02-noheader.csv"))
    assert len(list(parse_kline_file(with_header))) == 299
    bars = list(parse_kline_file(no_header))
    assert bars and all(b.symbol == "LINKUSDT" for b in bars)


def test_a_zip_holding_two_files_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "AVAXUSDT-1m-2026-02.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x")
        archive.writestr("b.csv", "y")
    with pytest.raises(DataError, match="holds 2 files"):
        list(parse_kline_file(path))
