"""A sweep's data: each file parsed once per worker process, not once per replay.

The driver names every file by path and content hash (`manifest`). Each worker process
installs a `WorkerFiles` reader (core/sources/replay.py `set_file_reader`): the first replay
that needs a file gets it parsed (from disk on a local pool, from Ray's object store on Ray),
and every later replay in that process is served the same bars. Served bars behave as a
streaming parse does: the same bars in the same order, skipped rows counted as they are
passed, and a bad row raises its error where the parse would have. A batch replay asks for
a file's columns instead (`read_columns`: no `Bar` per row), served when the file parsed
clean; a clean file is parsed straight into columns too (`clean_kline_columns`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.columns import BarColumns
from bigalpha_tui.core.errors import DataError
from bigalpha_tui.core.sources.replay import (
    DiskReader,
    ParseOptions,
    ReplayStats,
    expand_paths,
    parse_kline_file,
    symbol_from_filename,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileKey:
    """One file as the driver saw it: where, what it held, and how it is read."""

    path: str  # absolute
    sha256: str
    symbol: str | None  # as given by --symbol (None: from the file name)
    options: ParseOptions


@dataclass(frozen=True)
class ParsedFile:
    """A file's bars in file order, as columns (a month of bars: about 2 MB, not 12 MB of
    `Bar` objects; Ray's object store hands numpy arrays to workers without copying), the
    rows skipped before each bar, and the error (a bad row, or no rows at all) that ended
    the parse after the last bar, if one did."""

    symbol: str
    open_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]  # one row a bar: open, high, low, close, volume, taker buy
    has_flow: npt.NDArray[np.bool_]
    skips: tuple[tuple[int, str], ...]  # (bars parsed before the skipped row, reason)
    error: str | None

    @classmethod
    def of(
        cls, symbol: str, bars: list[Bar], skips: list[tuple[int, str]], error: str | None
    ) -> ParsedFile:
        # the parser makes 1-minute bars without a cross-exchange ratio: nothing else to keep
        assert all(b.interval_ms == MINUTE_MS and b.cross_buy_ratio is None for b in bars)
        return cls(
            symbol,
            np.array([b.open_ms for b in bars], dtype=np.int64),
            np.array(
                [(b.open, b.high, b.low, b.close, b.volume, b.taker_buy_volume) for b in bars],
                dtype=np.float64,
            ).reshape(len(bars), 6),
            np.array([b.has_flow for b in bars], dtype=np.bool_),
            tuple(skips),
            error,
        )

    @classmethod
    def of_columns(cls, columns: BarColumns) -> ParsedFile:
        """A clean file's columns (no row skipped, no error)."""
        assert columns.cross_buy_ratio is None and columns.interval_ms == MINUTE_MS
        values = (columns.open, columns.high, columns.low, columns.close, columns.volume)
        return cls(
            columns.symbol,
            columns.open_ms,
            np.stack([*values, columns.taker_buy_volume], axis=1),
            columns.has_flow,
            (),
            None,
        )

    def bars(self) -> Iterator[Bar]:
        symbol = self.symbol
        columns = self.values.T.tolist()
        for open_ms, o, h, low, c, volume, taker_buy, flow in zip(
            self.open_ms.tolist(), *columns, self.has_flow.tolist(), strict=True
        ):
            yield Bar(symbol, open_ms, o, h, low, c, volume, taker_buy, has_flow=flow)

    def columns(self) -> BarColumns | None:
        """The bars as columns of their own (a replay may keep them), when the parse read
        the whole file without skipping a row; else None (serve the bars: `serve`)."""
        if self.skips or self.error is not None:
            return None
        o, h, low, c, volume, taker_buy = (self.values[:, k].copy() for k in range(6))
        return BarColumns(
            self.symbol, self.open_ms.copy(), o, h, low, c, volume, taker_buy, self.has_flow.copy()
        )


def content_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def manifest(
    files: Iterable[str | os.PathLike[str]], symbol: str | None, options: ParseOptions
) -> dict[str, FileKey]:
    """Every data file (folders expanded) by absolute path, with its content hash."""
    keys = {}
    for path in expand_paths(files):
        where = os.path.abspath(path)
        try:
            digest = content_hash(Path(where))
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        keys[where] = FileKey(where, digest, symbol, options)
    return keys


def parse_file(key: FileKey) -> ParsedFile:
    """The whole file parsed (its content checked against the manifest's hash)."""
    path = Path(key.path)
    try:
        digest = content_hash(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if digest != key.sha256:
        raise DataError(f"{path} changed while the sweep ran; run the sweep again")
    stats = ReplayStats()
    clean = DiskReader().read_columns(path, key.symbol, key.options, stats)
    if clean is not None:
        log.debug("process %d parsed %s: %d bars", os.getpid(), path, len(clean))
        return ParsedFile.of_columns(clean)
    bars: list[Bar] = []
    skips: list[tuple[int, str]] = []
    counted: Counter[str] = Counter()
    error = None
    stream = parse_kline_file(
        path,
        symbol=key.symbol,
        allow_no_flow=key.options.allow_no_flow,
        skip_bad_rows=key.options.skip_bad_rows,
        stats=stats,
    )
    try:
        for bar in stream:
            _note_skips(stats, counted, len(bars), skips)
            bars.append(bar)
    except DataError as exc:
        error = str(exc)
    _note_skips(stats, counted, len(bars), skips)
    log.debug("process %d parsed %s: %d bars", os.getpid(), path, len(bars))
    return ParsedFile.of(bars[0].symbol if bars else "", bars, skips, error)


def _note_skips(
    stats: ReplayStats, counted: Counter[str], position: int, skips: list[tuple[int, str]]
) -> None:
    """Rows skipped since the last look, placed before the bar at `position`."""
    if stats.skipped_by_reason == counted:
        return
    for reason, total in stats.skipped_by_reason.items():
        skips += [(position, reason)] * (total - counted[reason])
        counted[reason] = total


def serve(parsed: ParsedFile, stats: ReplayStats) -> Generator[Bar, None, None]:
    """The parsed file replayed as its parse streamed it."""
    pending = iter(parsed.skips)
    skip = next(pending, None)
    for i, bar in enumerate(parsed.bars()):
        while skip is not None and skip[0] <= i:
            stats.skipped_by_reason[skip[1]] += 1
            skip = next(pending, None)
        yield bar
    while skip is not None:
        stats.skipped_by_reason[skip[1]] += 1
        skip = next(pending, None)
    if parsed.error is not None:
        raise DataError(parsed.error)


class WorkerFiles:
    """The reader a worker process installs: each manifest file fetched once (`fetch`:
    parse from disk, or get from Ray's object store), kept, and served to every replay.
    Files outside the manifest, or read another way, come from disk as usual."""

    def __init__(
        self, files: dict[str, FileKey], fetch: Callable[[FileKey], ParsedFile] = parse_file
    ) -> None:
        self.files = files
        self._fetch = fetch
        self._parsed: dict[FileKey, ParsedFile] = {}
        self._disk = DiskReader()
        #: how many times this process fetched each file (a sweep's promise: once)
        self.fetches: Counter[str] = Counter()

    def provides(self, path: Path) -> bool:
        return os.path.abspath(path) in self.files or self._disk.provides(path)

    def read(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> Generator[Bar, None, None]:
        key = self.files.get(os.path.abspath(path))
        if key is None or key.options != options or not _same_symbol(key, symbol, path):
            return self._disk.read(path, symbol, options, stats)
        return serve(self.get(key), stats)

    def read_columns(
        self, path: Path, symbol: str | None, options: ParseOptions, stats: ReplayStats
    ) -> BarColumns | None:
        """The file's bars as columns when its parse read them all without skipping a row
        or failing (a clean file), else None (`read` then serves them one by one)."""
        key = self.files.get(os.path.abspath(path))
        if key is None or key.options != options or not _same_symbol(key, symbol, path):
            return self._disk.read_columns(path, symbol, options, stats)
        return self.get(key).columns()

    def get(self, key: FileKey) -> ParsedFile:
        """The file parsed, fetched on first use."""
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = self._parsed[key] = self._fetch(key)
            self.fetches[key.path] += 1
        return parsed


def _same_symbol(key: FileKey, symbol: str | None, path: Path) -> bool:
    """Whether a read asks for the bars the key's parse made (the survey passes --symbol,
    the stream the symbol the survey found)."""

    def resolved(given: str | None) -> str | None:
        return given.upper() if given else symbol_from_filename(path)

    return resolved(symbol) == resolved(key.symbol)
