"""Bad input everywhere: Hypothesis over every parser the outside world can feed.

The config loader (`config.from_dict` over arbitrary TOML-like tables), the Binance and
CoinGlass response parsers and the `ctl` command parser raise nothing but the project's own
errors (`BigAlphaError` and children), whatever they are given. (The kline row parser of the
replay source has its properties in test_sources.py.) The core given NaN, non-positive
prices, negative volumes or out-of-order bars rejects each with a counted, logged reason and
keeps every engine's state finite; a zero-volume bar (a quiet minute) is accepted and leaves
the state finite too.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trading_helpers import ListSource

from bigalpha_tui.core import config as config_mod
from bigalpha_tui.core.bar import Bar
from bigalpha_tui.core.clock import SimClock
from bigalpha_tui.core.commands import Command, parse_command
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.engine import Core
from bigalpha_tui.core.errors import BigAlphaError, CommandError
from bigalpha_tui.core.sources.binance import parse_klines
from bigalpha_tui.core.sources.coinglass import parse_aggregated_history, parse_exchange_list
from bigalpha_tui.core.store import Store

EXAMPLES = 300

# -- JSON-like values (what a TOML file or an HTTP body can hold) ---------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["0", "1.5", "-3", "nan", "inf", "1e999", "09:00", "25:61", "BTCUSDT"]),
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)


def only_own_errors(call: Any, *args: Any) -> Any:
    """Run `call`; any exception but a BigAlphaError fails the property."""
    try:
        return call(*args)
    except BigAlphaError as exc:
        assert str(exc), "a project error must say what is wrong"
        return None


# -- the config loader ---------------------------------------------------------------------


def _known_keys() -> st.SearchStrategy[dict[str, Any]]:
    """Tables keyed by the real sections and keys, with arbitrary values: the near misses."""
    full = config_mod.to_dict(Config())
    sections = {
        name: st.dictionaries(st.sampled_from([*sorted(keys), "bogus"]), JSON_LIKE, max_size=4)
        for name, keys in full.items()
        if isinstance(keys, dict)
    }
    return st.fixed_dictionaries({}, optional=sections)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(_known_keys(), st.dictionaries(st.text(max_size=10), JSON_LIKE, max_size=4)))
def test_config_from_dict_raises_only_config_errors(raw: dict[str, Any]) -> None:
    config = only_own_errors(config_mod.from_dict, raw)
    if config is not None:
        assert isinstance(config, Config)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from(sorted(config_mod.to_dict(Config()))), st.data())
def test_config_accepts_or_names_the_bad_key(section: str, data: st.DataObject) -> None:
    full = config_mod.to_dict(Config())
    keys = sorted(full[section])
    key = data.draw(st.sampled_from(keys))
    value = data.draw(JSON_LIKE)
    try:
        config_mod.from_dict({section: {key: value}})
    except BigAlphaError as exc:
        assert section in str(exc) or key in str(exc) or "config" in str(exc)


# -- the API response parsers --------------------------------------------------------------

KLINE_FIELD = st.one_of(
    SCALARS, st.integers(min_value=0, max_value=2**63).map(str), st.floats().map(repr)
)
KLINE_ROW = st.one_of(st.lists(KLINE_FIELD, min_size=0, max_size=13), JSON_LIKE)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.lists(KLINE_ROW, max_size=4), JSON_LIKE))
def test_binance_kline_parser_raises_only_source_errors(body: Any) -> None:
    klines = only_own_errors(parse_klines, "BTCUSDT", body)
    for kline in klines or []:
        assert isinstance(kline.bar, Bar)  # the core's Bar.problem() judges its values


EXCHANGE_DATA = st.fixed_dictionaries(
    {},
    optional={
        "symbol": st.one_of(st.just("BTC"), SCALARS),
        "buy_ratio": SCALARS,
        "sell_ratio": SCALARS,
        "buy_vol_usd": SCALARS,
        "sell_vol_usd": SCALARS,
    },
)
ENVELOPE = st.fixed_dictionaries(
    {"code": st.one_of(st.just("0"), SCALARS)},
    optional={"msg": SCALARS, "data": st.one_of(EXCHANGE_DATA, JSON_LIKE)},
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(ENVELOPE, JSON_LIKE))
def test_coinglass_exchange_list_parser_raises_only_source_errors(body: Any) -> None:
    flow = only_own_errors(parse_exchange_list, body, "BTC", 0.0)
    if flow is not None:
        assert 0.0 <= flow.buy_ratio <= 1.0


HISTORY_ROW = st.fixed_dictionaries(
    {},
    optional={
        "time": SCALARS,
        "aggregated_buy_volume_usd": SCALARS,
        "aggregated_sell_volume_usd": SCALARS,
        "taker_buy_volume_usd": SCALARS,
        "taker_sell_volume_usd": SCALARS,
    },
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    st.one_of(
        st.fixed_dictionaries({"code": st.just("0"), "data": st.lists(HISTORY_ROW, max_size=4)}),
        JSON_LIKE,
    )
)
def test_coinglass_history_parser_raises_only_source_errors(body: Any) -> None:
    for point in only_own_errors(parse_aggregated_history, body) or []:
        assert point.buy_volume_usd >= 0 and point.sell_volume_usd >= 0


# -- the ctl command parser ----------------------------------------------------------------

COMMAND_WORDS = ["pause", "resume", "learn", "guard", "release", "close", "on", "off"]
NEAR_MISSES = ["FEE_EDGE", "fee_edge", "PAUSED", "BTCUSDT", "btc-usdt", "", "x" * 40, "\x00"]
WORDS = st.sampled_from([*COMMAND_WORDS, *NEAR_MISSES, "ON", "\u00e9t\u00e9"])


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=4).map(" ".join)))
def test_ctl_parser_raises_only_command_errors(text: str) -> None:
    try:
        command = parse_command(text)
    except CommandError as exc:
        assert str(exc), "the operator must read what is wrong"
        return
    assert isinstance(command, Command)
    assert parse_command(command.describe()) == command  # what the log says parses back


# -- the engines given bad bars ------------------------------------------------------------

T0_MS = 1_767_600_000_000


def good_bar(i: int, price: float = 100.0) -> Bar:
    return Bar("BTCUSDT", T0_MS + i * 60_000, price, price * 1.001, price * 0.999, price, 10, 5)


BAD_VALUE = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, -1e9])


@st.composite
def bad_bar(draw: st.DrawFn, i: int) -> Bar:
    base = good_bar(i)
    field = draw(st.sampled_from(["open", "high", "low", "close", "volume", "taker_buy_volume"]))
    return Bar(**{**_fields(base), field: draw(BAD_VALUE)})


def _fields(bar: Bar) -> dict[str, Any]:
    names = ("symbol", "open_ms", "open", "high", "low", "close", "volume", "taker_buy_volume")
    return {n: getattr(bar, n) for n in names}


def new_core(tmp: Any) -> Core:
    return Core(Config(), ListSource([]), SimClock(T0_MS / 1000), Store(tmp), trading=True)


def assert_sane(core: Core) -> None:
    for engines in core.symbols.values():
        flow = engines.flow.state()
        assert all(math.isfinite(v) for v in (flow.cvd, flow.intensity)), flow
        h = engines.hurst.reading.h
        assert h is None or math.isfinite(h)
    snap = core.snapshot()
    assert math.isfinite(snap.realised_pnl_usd) and math.isfinite(snap.unrealised_pnl_usd)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_bad_bars_are_rejected_counted_and_logged_and_state_stays_sane(
    tmp_path_factory: Any, data: st.DataObject
) -> None:
    core = new_core(tmp_path_factory.mktemp("bad"))
    plan = data.draw(st.lists(st.sampled_from(["good", "bad", "old", "zero"]), max_size=40))
    accepted = rejected = 0
    last = 0
    newest_applied_ms = -1
    for step in plan:
        if step == "old":
            bar = good_bar(data.draw(st.integers(min_value=0, max_value=last)))
        else:
            last += 1
            bar = {
                "good": good_bar(last, 100.0 + last * 0.01),
                "zero": Bar(**{**_fields(good_bar(last)), "volume": 0.0, "taker_buy_volume": 0.0}),
                "bad": data.draw(bad_bar(last)),
            }[step]
        expected = bar.problem() is None and bar.open_ms > newest_applied_ms
        assert core.process_bar(bar) is expected, (step, bar)
        if expected:
            newest_applied_ms = bar.open_ms
        accepted += expected
        rejected += not expected
    assert sum(core.rejected_bars.values()) == rejected
    logged = {e.data["reason"] for e in core.events if e.kind == "bar_rejected"}
    assert logged == set(core.rejected_bars)
    assert core.heartbeat.bars_processed == accepted
    assert_sane(core)


def test_each_kind_of_bad_bar_has_its_reason(tmp_path: Any) -> None:
    core = new_core(tmp_path)
    assert core.process_bar(good_bar(1))
    bad = {
        "non-finite value": Bar(**{**_fields(good_bar(2)), "close": math.nan}),
        "non-positive price": Bar(**{**_fields(good_bar(3)), "low": -1.0}),
        "negative volume": Bar(**{**_fields(good_bar(4)), "volume": -5.0}),
        "out-of-order or duplicate bar": good_bar(1),
    }
    for reason, bar in bad.items():
        assert not core.process_bar(bar)
        assert core.rejected_bars[reason] == 1
    messages = [e.message for e in core.events if e.kind == "bar_rejected"]
    assert len(messages) == 4 and all("bar rejected" in m for m in messages)
    assert core.process_bar(good_bar(5))  # and it goes on
    assert_sane(core)
