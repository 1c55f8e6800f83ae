"""Behaviour of the market-data sources: the embedded simulator and kline-file replay."""

from __future__ import annotations

import gzip
import itertools
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bigalpha_tui.core.bar import MINUTE_MS, Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.errors import DataError
from bigalpha_tui.core.sources.base import BarSource
from bigalpha_tui.core.sources.replay import (
    ReplaySource,
    ReplayStats,
    parse_epoch_ms,
    parse_kline_file,
    parse_kline_row,
    symbol_from_filename,
)
from bigalpha_tui.core.sources.sim import (
    DEFAULT_START_MS,
    DEFAULT_SYMBOLS,
    SimParams,
    SimSource,
    simulate_minutes,
)
from bigalpha_tui.core.types import SourceState

DAY_MIN = 24 * 60
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore"
)
T0_MS = int(datetime(2025, 2, 1, tzinfo=UTC).timestamp() * 1000)
FEB_2026_MS = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp() * 1000)


# ------------------------------------------------------------------------------ helpers


class RecordingClock:
    """A manual clock that records every `sleep_until` (to check pacing without sleeping)."""

    def __init__(self, start_s: float) -> None:
        self.t = start_s
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep_until(self, t: float) -> None:
        self.sleeps.append(t)
        self.t = max(self.t, t)


def collect(
    source: BarSource, limit: int | None = None, resume_after_ms: int | None = None
) -> list[Bar]:
    """Run the source's iterator under anyio and return up to `limit` bars."""

    async def run() -> list[Bar]:
        out: list[Bar] = []
        iterator = source.bars(resume_after_ms)
        async for bar in iterator:
            out.append(bar)
            if limit is not None and len(out) >= limit:
                break
        await source.aclose()
        return out

    return anyio.run(run)


#: the base process of every market: no personality dealt (the personalities, which bend
#: it on purpose, have their own tests in test_sim_personalities.py)
PLAIN_MARKETS = SimParams(misleading_markets=0, thin_markets=0)


def sim_day(seed: int = 7) -> dict[str, list[Bar]]:
    """One simulated day of every default symbol as a plain market, straight from the pure
    generator."""
    minutes = simulate_minutes(DEFAULT_SYMBOLS, seed, DEFAULT_START_MS, PLAIN_MARKETS)
    by_symbol: dict[str, list[Bar]] = {s: [] for s in DEFAULT_SYMBOLS}
    for _, minute in zip(range(DAY_MIN), minutes, strict=False):
        for bar in minute:
            by_symbol[bar.symbol].append(bar)
    return by_symbol


def whale_flags(volumes: np.ndarray, window: int = 60, multiple: float = 3.0) -> np.ndarray:
    """DESIGN.md: a whale bar has volume > 3 x the mean volume of the previous 60 bars."""
    flags = np.zeros(len(volumes), dtype=bool)
    for i in range(window, len(volumes)):
        flags[i] = volumes[i] > multiple * volumes[i - window : i].mean()
    return flags


def whale_intensity(volumes: np.ndarray, flags: np.ndarray, window: int = 60) -> np.ndarray:
    """100 x whale-bar volume / window volume, for each full window."""
    return np.array(
        [
            100.0
            * volumes[i - window : i][flags[i - window : i]].sum()
            / volumes[i - window : i].sum()
            for i in range(2 * window, len(volumes) + 1)
        ]
    )


def crude_hurst(log_returns: np.ndarray) -> float:
    """H of fGn with the window's lag-1 autocorrelation (rho = 2^(2H-1) - 1)."""
    centred = log_returns - log_returns.mean()
    rho = float((centred[1:] * centred[:-1]).sum() / (centred * centred).sum())
    return 0.5 + 0.5 * math.log2(max(1.0 + rho, 1e-6))


def kline_row(
    minute: int, *, close: float = 10.05, volume: float = 100.0, taker: float = 50.0
) -> str:
    open_ms = T0_MS + minute * MINUTE_MS
    return (
        f"{open_ms},10.0,10.1,9.9,{close},{volume},{open_ms + MINUTE_MS - 1},1000.0,12,"
        f"{taker},500.0,0"
    )


def write_csv(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- sim


def test_sim_same_seed_gives_identical_bars() -> None:
    first = collect(SimSource(SimClock(0.0), seed=11), limit=600)
    second = collect(SimSource(SimClock(0.0), seed=11), limit=600)
    assert first == second


def test_sim_different_seed_gives_different_bars() -> None:
    first = collect(SimSource(SimClock(0.0), seed=11), limit=60)
    second = collect(SimSource(SimClock(0.0), seed=12), limit=60)
    assert [b.close for b in first] != [b.close for b in second]


def test_sim_symbol_stream_does_not_depend_on_the_other_symbols() -> None:
    alone = collect(SimSource(SimClock(0.0), symbols=("SOLUSDT",)), limit=100)
    together = [b for b in collect(SimSource(SimClock(0.0)), limit=600) if b.symbol == "SOLUSDT"]
    assert alone == together


def test_sim_starts_at_0830_utc_with_default_symbols() -> None:
    bars = collect(SimSource(SimClock(0.0)), limit=len(DEFAULT_SYMBOLS))
    assert {"BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT"} <= set(DEFAULT_SYMBOLS)
    assert len(DEFAULT_SYMBOLS) == 6
    assert [b.symbol for b in bars] == list(DEFAULT_SYMBOLS)
    assert all(b.open_time == datetime(2026, 1, 5, 8, 30, tzinfo=UTC) for b in bars)
    assert bars[0].close == pytest.approx(94_250.0, rel=0.01)


def test_sim_start_ms_moves_the_series_start() -> None:
    start_ms = int(datetime(2026, 3, 2, 8, 30, tzinfo=UTC).timestamp() * 1000)
    bars = collect(SimSource(SimClock(0.0), start_ms=start_ms), limit=12)
    assert [b.open_ms for b in bars] == [start_ms] * 6 + [start_ms + MINUTE_MS] * 6


def test_sim_bars_are_sane_for_a_whole_day() -> None:
    for bars in sim_day().values():
        assert all(b.problem() is None for b in bars)
        assert all(b.volume > 0.0 and 0.0 <= b.taker_buy_volume <= b.volume for b in bars)
        assert all(b.open == prev.close for prev, b in itertools.pairwise(bars))
        assert all(b.open_ms - prev.open_ms == MINUTE_MS for prev, b in itertools.pairwise(bars))


def test_sim_prices_stay_realistic_over_a_day() -> None:
    for bars in sim_day().values():
        day_move = abs(math.log(bars[-1].close / bars[0].open))
        assert day_move < 0.25


def test_sim_whale_bursts_are_heavy_one_sided_runs() -> None:
    bursts = 0
    for bars in sim_day().values():
        volumes = np.array([b.volume for b in bars])
        flags = whale_flags(volumes)
        shares = np.array([b.taker_buy_volume / b.volume for b in bars])
        one_sided = (shares[flags] >= 0.74) | (shares[flags] <= 0.26)
        assert one_sided.mean() > 0.9
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, flags.astype(int), 0])).reshape(-1, 2))
        bursts += int((runs >= 3).sum())
        median_volume = float(np.median(volumes))
        assert volumes.max() < 15 * median_volume
    assert bursts >= 6


def fade_flags(flags: np.ndarray, minutes: int = SimParams().retail_fade_min) -> np.ndarray:
    """The non-whale bars within `minutes` after a whale bar: retail fades the burst there."""
    faded = np.zeros(len(flags), dtype=bool)
    for i in np.flatnonzero(flags):
        faded[i + 1 : i + 1 + minutes] = True
    return faded & ~flags


def test_sim_normal_bars_have_balanced_taker_flow_that_leans_with_return() -> None:
    for bars in sim_day().values():
        volumes = np.array([b.volume for b in bars])
        flags = whale_flags(volumes)
        normal = ~flags & ~fade_flags(flags)
        normal[:60] = False
        shares = np.array([b.taker_buy_volume / b.volume for b in bars])[normal]
        returns = np.array([math.log(b.close / b.open) for b in bars])[normal]
        assert abs(float(np.median(shares)) - 0.5) < 0.02
        assert float(np.corrcoef(shares, returns)[0, 1]) > 0.0


def test_sim_retail_fades_the_whales_after_a_burst() -> None:
    leans = []
    for bars in sim_day().values():
        volumes = np.array([b.volume for b in bars])
        flags = whale_flags(volumes)
        shares = np.array([b.taker_buy_volume / b.volume for b in bars])
        for end in np.flatnonzero(flags[:-1] & ~flags[1:]):
            direction = 1.0 if bars[end].delta > 0 else -1.0
            after = slice(end + 1, end + 1 + SimParams().retail_fade_min)
            retail = shares[after][~flags[after]]
            leans.extend(direction * (retail - 0.5))
    assert len(leans) >= 300
    assert float(np.mean(leans)) < -0.5 * SimParams().retail_fade_share


def test_sim_whale_flow_leads_price() -> None:
    signed_moves = []
    for bars in sim_day(seed=3).values():
        volumes = np.array([b.volume for b in bars])
        flags = whale_flags(volumes)
        closes = np.array([b.close for b in bars])
        for i in np.flatnonzero(flags[:-1] & ~flags[1:])[:-1]:
            if i + 30 >= len(bars):
                continue
            direction = 1.0 if bars[i].delta > 0 else -1.0
            signed_moves.append(direction * math.log(closes[i + 30] / closes[i]))
    assert len(signed_moves) >= 10
    assert float(np.mean(signed_moves)) > 0.0


def test_sim_day_shows_every_regime_and_high_whale_intensity() -> None:
    labels: set[str] = set()
    max_intensity = 0.0
    for bars in sim_day().values():
        returns = np.diff(np.log([b.close for b in bars]))
        for end in range(100, len(returns) + 1, 10):
            h = crude_hurst(returns[end - 100 : end])
            labels.add("trend" if h > 0.55 else "noise" if h < 0.45 else "random")
        volumes = np.array([b.volume for b in bars])
        max_intensity = max(
            max_intensity, float(whale_intensity(volumes, whale_flags(volumes)).max())
        )
    assert labels == {"trend", "noise", "random"}
    assert max_intensity > 60.0


def test_sim_resume_continues_the_identical_series_without_sleeping_for_seen_bars() -> None:
    full = collect(SimSource(SimClock(0.0)), limit=6 * 120)
    seen = full[6 * 50 - 1]
    clock = RecordingClock(seen.close_s)
    resumed = collect(SimSource(clock), limit=6 * 70, resume_after_ms=seen.open_ms)
    assert resumed == full[6 * 50 :]
    assert clock.sleeps[0] == resumed[0].close_s


def test_sim_sleeps_until_each_minute_closes() -> None:
    clock = RecordingClock(DEFAULT_START_MS / 1000)
    bars = collect(SimSource(clock), limit=6 * 5)
    assert clock.sleeps == [DEFAULT_START_MS / 1000 + 60.0 * (m + 1) for m in range(5)]
    assert bars[-1].close_s == clock.now()


def test_sim_at_max_speed_generates_a_day_in_well_under_seconds() -> None:
    clock = SimClock(DEFAULT_START_MS / 1000, speed=None)
    began = time.perf_counter()
    bars = collect(SimSource(clock), limit=6 * DAY_MIN)
    assert time.perf_counter() - began < 3.0
    assert clock.now() == bars[-1].close_s == DEFAULT_START_MS / 1000 + DAY_MIN * 60


def test_sim_health_is_warming_until_the_first_bar_then_ok() -> None:
    source = SimSource(SimClock(0.0))
    assert source.health().state is SourceState.WARMING
    collect(source, limit=1)
    assert source.health().state is SourceState.OK


def test_sim_without_whale_bursts_has_no_whale_bars() -> None:
    calm = SimParams(whale_bursts_per_h=0.0)
    bars = collect(SimSource(SimClock(0.0), symbols=("BTCUSDT",), params=calm), limit=DAY_MIN)
    volumes = np.array([b.volume for b in bars])
    assert not whale_flags(volumes).any()


# --------------------------------------------------------------------- replay: a row


def test_row_with_epoch_ms_parses_into_a_bar() -> None:
    bar = parse_kline_row(kline_row(0), symbol="AVAXUSDT")
    assert bar == Bar("AVAXUSDT", T0_MS, 10.0, 10.1, 9.9, 10.05, 100.0, 50.0)


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("1738368000000", T0_MS),
        ("1738368000", T0_MS),
        ("1738368000000000", T0_MS),
        ("2025-02-01 00:00:00", T0_MS),
        ("2025-01-31 20:00:00-04:00", T0_MS),
        ("2025-02-01T00:00:00Z", T0_MS),
        ("1738368000000.0", T0_MS),
    ],
)
def test_open_time_formats_convert_to_utc_epoch_ms(text: str, expected_ms: int) -> None:
    assert parse_epoch_ms(text) == expected_ms


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1738368000000,10,10.1,9.9,10", "columns"),
        ("yesterday,10,10.1,9.9,10.05,100,1738368059999,1,1,50,1,0", "not a date"),
        (
            "1738368000000,ten,10.1,9.9,10.05,100,1738368059999,1,1,50,1,0",
            "open 'ten' is not a number",
        ),
        ("1738368000000,10,9.8,9.9,10.05,100,1738368059999,1,1,50,1,0", "high/low"),
        ("1738368000000,10,10.1,9.9,10.05,-1,1738368059999,1,1,0,1,0", "negative volume"),
        ("1738368000000,10,10.1,9.9,10.05,100,1738368059999,1,1,150,1,0", "taker-buy volume above"),
        ("1738368030000,10,10.1,9.9,10.05,100,1738368089999,1,1,50,1,0", "minute"),
        ("1738368000000,10,10.1,9.9,10.05,100,1738368299999,1,1,50,1,0", "1-minute"),
        ("1738368000000,10,10.1,9.9,10.05,nan,1738368059999,1,1,50,1,0", "non-finite"),
    ],
)
def test_malformed_row_raises_data_error_with_reason(line: str, reason: str) -> None:
    with pytest.raises(DataError, match=reason):
        parse_kline_row(line, symbol="AVAXUSDT")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_row_parser_raises_only_data_error_on_arbitrary_text(line: str) -> None:
    try:
        bar = parse_kline_row(line, symbol="X")
    except DataError:
        return
    assert bar.problem() is None


_FIELD = st.one_of(
    st.sampled_from(
        ["", " ", "0", "-1", "1e309", "nan", "inf", "1738368000000", "2026-02-01 00:00:00"]
    ),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_FIELD, min_size=11, max_size=13), st.booleans())
def test_row_parser_raises_only_data_error_on_near_miss_rows(
    fields: list[str], no_flow: bool
) -> None:
    try:
        bar = parse_kline_row(",".join(fields), symbol="X", allow_no_flow=no_flow)
    except DataError:
        return
    assert bar.problem() is None


# -------------------------------------------------------------------- replay: a file


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("AVAXUSDT-1m-2026-02.csv.gz", "AVAXUSDT"),
        ("battle_hymn_BTCUSDT_1m.csv.gz", "BTCUSDT"),
        ("BTCUSDT_1m_2025-01-01_2025-01-28.csv.gz", "BTCUSDT"),
        ("klines.csv", None),
        ("BTCUSDT-ETHUSDT.csv", None),
    ],
)
def test_symbol_comes_from_the_file_name(name: str, symbol: str | None) -> None:
    assert symbol_from_filename(name) == symbol


def test_header_and_headerless_files_both_load(test_data: Path) -> None:
    with_header = list(parse_kline_file(test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"))
    without_header = list(parse_kline_file(test_data / "LINKUSDT-1m-2026-02-noheader.csv"))
    assert len(with_header) == 299 and len(without_header) == 300
    assert with_header[0].open_ms == without_header[0].open_ms == FEB_2026_MS
    assert {b.symbol for b in with_header} == {"AVAXUSDT"}
    assert {b.symbol for b in without_header} == {"LINKUSDT"}


def test_zero_volume_minutes_are_valid_bars(test_data: Path) -> None:
    bars = list(parse_kline_file(test_data / "AVAXUSDT-1m-2023-09-zero-volume.csv.gz"))
    flat = [b for b in bars if b.volume == 0.0]
    assert len(bars) == 121 and len(flat) == 19
    assert all(b.taker_buy_volume == 0.0 and b.high == b.low == b.close for b in flat)


def test_battle_hymn_without_flags_fails_naming_file_line_and_missing_flow(test_data: Path) -> None:
    path = test_data / "battle_hymn_BTCUSDT_1m-seam.csv.gz"
    with pytest.raises(DataError) as caught:
        list(parse_kline_file(path))
    message = str(caught.value)
    assert path.name in message and "line 2" in message
    assert "no taker-buy volume" in message and "CVD" in message and "--allow-no-flow" in message


def test_battle_hymn_with_skip_bad_rows_keeps_only_rows_with_flow(test_data: Path) -> None:
    stats = ReplayStats()
    bars = list(
        parse_kline_file(
            test_data / "battle_hymn_BTCUSDT_1m-seam.csv.gz", skip_bad_rows=True, stats=stats
        )
    )
    assert len(bars) == 60 and all(b.has_flow for b in bars)
    assert dict(stats.skipped_by_reason) == {"no taker-buy volume": 60}


def test_battle_hymn_with_allow_no_flow_marks_spot_rows_and_converts_offset(
    test_data: Path,
) -> None:
    bars = list(
        parse_kline_file(test_data / "battle_hymn_BTCUSDT_1m-seam.csv.gz", allow_no_flow=True)
    )
    assert len(bars) == 120
    assert not any(b.has_flow or b.taker_buy_volume for b in bars[:60])
    assert all(b.has_flow for b in bars[60:])
    seam = bars[60]  # 2025-05-27 19:58:00-04:00
    assert seam.open_time == datetime(2025, 5, 27, 23, 58, tzinfo=UTC)
    assert seam.open == 108937.7


def test_ohlcv_file_fails_clearly_and_loads_with_allow_no_flow(test_data: Path) -> None:
    path = test_data / "SOLUSDT_1m_2025-01-01-head.csv.gz"
    with pytest.raises(
        DataError, match=r"line 2: the data has no taker-buy volume.*--allow-no-flow"
    ):
        list(parse_kline_file(path))
    with pytest.raises(DataError, match="no usable rows"):
        list(parse_kline_file(path, skip_bad_rows=True))
    bars = list(parse_kline_file(path, allow_no_flow=True))
    assert len(bars) == 120 and not any(b.has_flow for b in bars)
    assert bars[0].open_time == datetime(2025, 1, 1, tzinfo=UTC)  # naive stamps are UTC


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ("1738368060000,10,10.1,9.9", "4 columns"),
        (
            "1738368060000,10,10.1,9.9,10.05,abc,1738368119999,1,1,50,1,0",
            "volume 'abc' is not a number",
        ),
        ("1738368060000,10,9.0,9.9,10.05,100,1738368119999,1,1,50,1,0", "high/low"),
        ("1738368060000,10,10.1,9.9,10.05,-5,1738368119999,1,1,0,1,0", "negative volume"),
        (
            "1738368060000,10,10.1,9.9,10.05,100,1738368119999,1,1,101,1,0",
            "taker-buy volume above volume",
        ),
    ],
)
def test_malformed_row_message_names_file_and_line(
    tmp_path: Path, bad_line: str, reason: str
) -> None:
    path = write_csv(tmp_path / "AVAXUSDT-1m-bad.csv", [KLINE_HEADER, kline_row(0), bad_line])
    with pytest.raises(DataError) as caught:
        list(parse_kline_file(path))
    message = str(caught.value)
    assert str(path) in message and "line 3" in message and reason in message


def test_skip_bad_rows_counts_each_reason(tmp_path: Path) -> None:
    lines = [
        kline_row(0),
        "1738368060000,10,10.1",
        kline_row(2, taker=500.0),
        kline_row(3, volume=-1.0, taker=0.0),
        kline_row(4),
        "1738368300000,x,10.1,9.9,10.05,100,1738368359999,1,1,50,1,0",
    ]
    path = write_csv(tmp_path / "AVAXUSDT-1m.csv", lines)
    source = ReplaySource([path], SimClock(0.0), skip_bad_rows=True)
    bars = collect(source)
    assert [b.open_ms for b in bars] == [T0_MS, T0_MS + 4 * MINUTE_MS]
    assert source.health().skipped_rows == 4
    assert source.skipped_by_reason == {
        "wrong column count": 1,
        "taker-buy volume above volume": 1,
        "negative volume": 1,
        "non-numeric value": 1,
    }


@pytest.mark.parametrize("content", [b"", KLINE_HEADER.encode() + b"\n", b"\n\n"])
def test_empty_file_is_a_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "AVAXUSDT-1m.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="no kline rows"):
        ReplaySource([path], SimClock(0.0))


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        ReplaySource([tmp_path / "AVAXUSDT-1m-2030-01.csv.gz"], SimClock(0.0))
    with pytest.raises(DataError, match="no such file"):
        parse_kline_file(tmp_path / "AVAXUSDT-1m-2030-01.csv.gz")


def test_unreadable_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "AVAXUSDT-1m.csv.gz"
    path.write_bytes(
        gzip.compress("\n".join([KLINE_HEADER, *(kline_row(m) for m in range(50))]).encode())[:-30]
    )
    with pytest.raises(DataError, match=r"AVAXUSDT-1m\.csv\.gz"):
        collect(ReplaySource([path], SimClock(0.0)))


def test_file_name_without_symbol_needs_a_symbol(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "klines.csv", [kline_row(0)])
    with pytest.raises(DataError, match="cannot tell the symbol"):
        ReplaySource([path], SimClock(0.0))
    bars = collect(ReplaySource([path], SimClock(0.0), symbol="dogeusdt"))
    assert [b.symbol for b in bars] == ["DOGEUSDT"]


# ------------------------------------------------------------------ replay: a source


def test_symbols_merge_by_open_time(test_data: Path) -> None:
    paths = [
        test_data / "LINKUSDT-1m-2026-02-noheader.csv",
        test_data / "AVAXUSDT-1m-2026-02-head.csv.gz",
    ]
    source = ReplaySource(paths, SimClock(0.0))
    bars = collect(source)
    assert source.symbols == ("AVAXUSDT", "LINKUSDT")
    assert len(bars) == 599
    assert [b.open_ms for b in bars] == sorted(b.open_ms for b in bars)
    assert [b.symbol for b in bars[:4]] == ["AVAXUSDT", "LINKUSDT", "AVAXUSDT", "LINKUSDT"]


def test_one_symbols_files_chain_in_time_order_and_drop_duplicates(tmp_path: Path) -> None:
    later = write_csv(tmp_path / "AVAXUSDT-1m-b.csv", [kline_row(m) for m in range(5, 15)])
    earlier = write_csv(
        tmp_path / "AVAXUSDT-1m-a.csv", [kline_row(m) for m in (0, 1, 1, 2, 3, 4, 5, 6)]
    )
    source = ReplaySource([later, earlier], SimClock(0.0))
    bars = collect(source)
    assert [b.open_ms for b in bars] == [T0_MS + m * MINUTE_MS for m in range(15)]
    assert source.stats.duplicates_dropped == 3


def test_replay_follows_market_time_and_finishes(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "AVAXUSDT-1m.csv", [kline_row(m) for m in range(3)])
    clock = RecordingClock(0.0)
    source = ReplaySource([path], clock)
    assert source.first_open_ms == T0_MS
    bars = collect(source)
    assert clock.sleeps == [b.close_s for b in bars]
    assert source.health().state is SourceState.FINISHED


def test_replay_resume_skips_bars_already_seen(test_data: Path) -> None:
    path = test_data / "AVAXUSDT-1m-2026-02-head.csv.gz"
    everything = collect(ReplaySource([path], SimClock(0.0)))
    resumed = collect(ReplaySource([path], SimClock(0.0)), resume_after_ms=everything[99].open_ms)
    assert resumed == everything[100:]


def test_replay_window_keeps_only_bars_opening_inside_it(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "AVAXUSDT-1m.csv", [kline_row(m) for m in range(10)])
    start_ms, end_ms = T0_MS + 3 * MINUTE_MS, T0_MS + 7 * MINUTE_MS
    source = ReplaySource([path], SimClock(0.0), start_ms=start_ms, end_ms=end_ms)
    bars = collect(source)
    assert [b.open_ms for b in bars] == [T0_MS + m * MINUTE_MS for m in range(3, 7)]
    assert source.health().state is SourceState.FINISHED


def test_replay_at_a_speed_paces_in_real_time(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "AVAXUSDT-1m.csv", [kline_row(m) for m in range(3)])
    began = time.monotonic()
    collect(ReplaySource([path], SimClock(0.0), speed=3_000.0))
    assert time.monotonic() - began >= 2 * 60 / 3_000.0 * 0.9


def test_replay_data_error_mid_stream_marks_health_degraded(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "AVAXUSDT-1m.csv", [kline_row(0), kline_row(1), "oops"])
    source = ReplaySource([path], SimClock(0.0))
    with pytest.raises(DataError, match="line 3"):
        collect(source)
    health = source.health()
    assert health.state is SourceState.DEGRADED and health.errors == 1
    assert health.last_error is not None and "line 3" in health.last_error


# ------------------------------------------------------------ replay: the shared data


@pytest.mark.slow
def test_every_um_kline_file_loads_whole(shared_data: Path) -> None:
    for path in sorted((shared_data / "binance_um_klines_1m").glob("*.csv.gz")):
        with gzip.open(path, "rt") as raw:
            rows = sum(1 for _ in raw) - 1
        stats = ReplayStats()
        bars = list(parse_kline_file(path, stats=stats))
        assert len(bars) == rows and stats.skipped_rows == 0, path.name
        assert all(b.open_ms - a.open_ms == MINUTE_MS for a, b in itertools.pairwise(bars))
        if path.name == "AVAXUSDT-1m-2023-09.csv.gz":
            assert sum(1 for b in bars if b.volume == 0.0) == 22


@pytest.mark.slow
def test_five_symbols_of_february_2026_merge(shared_data: Path) -> None:
    paths = sorted((shared_data / "binance_um_klines_1m").glob("*-2026-02.csv.gz"))
    source = ReplaySource(paths, SimClock(0.0))
    count, last_ms = 0, 0
    for bar in source.merged_bars():
        assert bar.open_ms >= last_ms
        count, last_ms = count + 1, bar.open_ms
    assert source.symbols == ("AVAXUSDT", "DOTUSDT", "LINKUSDT", "LTCUSDT", "NEARUSDT")
    assert count == 5 * 40_320


@pytest.mark.slow
def test_avax_june_and_july_2026_join_without_gap(shared_data: Path) -> None:
    folder = shared_data / "binance_um_klines_1m"
    paths = [folder / "AVAXUSDT-1m-2026-07.csv.gz", folder / "AVAXUSDT-1m-2026-06.csv.gz"]
    source = ReplaySource(paths, SimClock(0.0))
    assert sum(1 for _ in source.merged_bars()) == 87_840
    assert source.stats.gaps == 0 and source.stats.duplicates_dropped == 0


@pytest.mark.slow
def test_battle_hymn_files_need_a_flag(shared_data: Path) -> None:
    folder = shared_data / "binance_klines_1m_secondary"
    btc, eth = folder / "battle_hymn_BTCUSDT_1m.csv.gz", folder / "battle_hymn_ETHUSDT_1m.csv.gz"
    with pytest.raises(DataError, match="line 2: the data has no taker-buy volume"):
        ReplaySource([btc], SimClock(0.0))
    assert len(list(parse_kline_file(btc, skip_bad_rows=True))) == 2_450
    assert len(list(parse_kline_file(btc, allow_no_flow=True))) == 16_610
    source = ReplaySource([btc, eth], SimClock(0.0), allow_no_flow=True)
    assert sum(1 for _ in source.merged_bars()) == 16_610 + 2_364
    assert source.stats.gaps == 1  # ETH's 16.8-hour hole


@pytest.mark.slow
def test_ohlcv_fallback_files_need_allow_no_flow(shared_data: Path) -> None:
    paths = sorted((shared_data / "ohlcv_1m_fallback").glob("*.csv.gz"))
    with pytest.raises(DataError, match="--allow-no-flow"):
        ReplaySource(paths, SimClock(0.0))
    source = ReplaySource(paths, SimClock(0.0), allow_no_flow=True)
    assert source.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    bars = list(source.merged_bars())
    assert len(bars) == 3 * 40_000 and not any(b.has_flow for b in bars)
    assert bars[0].open == 93576.0
