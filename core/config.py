"""Typed configuration. Every number in DESIGN.md is a default here, named once.

The TOML file mirrors the sections below; every key is optional. Unknown keys and bad values
raise `ConfigError` with one line naming the key and what it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast, get_type_hints
from urllib.parse import urlsplit

from .errors import ConfigError

T = TypeVar("T")


def _opt(
    default: Any,
    help: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_len: int | None = None,
    max_len: int | None = None,
    choices: tuple[str, ...] | None = None,
    secret: bool = False,
    url: bool = False,
) -> Any:
    """One key: its default, what it means, and what it accepts.

    Every number (and every number in a list) has both bounds and every list a length range:
    a value that parses but is absurd (1e308) stops start-up like a misspelt key.
    """
    is_list = isinstance(default, list | tuple)
    numeric = isinstance(default, int | float) and not isinstance(default, bool)
    if is_list and default and isinstance(default[0], int | float):
        numeric = True
    if numeric and (min is None or max is None):
        raise TypeError(f"a numeric key needs min and max ({help!r})")
    if is_list and (min_len is None or max_len is None):
        raise TypeError(f"a list key needs min_len and max_len ({help!r})")
    meta: dict[str, Any] = {
        "help": help,
        "min": min,
        "max": max,
        "min_len": min_len,
        "max_len": max_len,
        "choices": choices,
        "secret": secret,
        "url": url,
    }
    if is_list:
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SourceConfig:
    name: str = _opt("sim", "market data source", choices=("sim", "replay", "binance", "coinglass"))
    symbols: tuple[str, ...] = _opt(
        ("BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "LINKUSDT", "DOTUSDT"),
        "symbols to trade (sim and live sources)",
        min_len=1,
        max_len=100,
    )
    speed: str = _opt("1", "market seconds per wall second for sim/replay, or 'max'")
    seed: int = _opt(7, "simulator seed (same seed, same market)", min=0, max=2**32 - 1)
    min_request_interval_s: float = _opt(
        2.5, "least spacing between requests to one host", min=2.5, max=3600.0
    )
    backoff_cap_s: float = _opt(
        60.0, "longest backoff after errors or HTTP 429", min=1.0, max=3600.0
    )
    backfill_bars: int = _opt(
        150, "bars fetched at start so Hurst and CVD are warm", min=101, max=10_080
    )
    coinglass_api_key: str = _opt("", "CoinGlass API key (or env COINGLASS_API_KEY)", secret=True)
    binance_base_url: str = _opt(
        "https://fapi.binance.com",
        "Binance USD-M futures REST base URL (a proxy or testnet; klines come from here)",
        url=True,
    )
    coinglass_base_url: str = _opt(
        "https://open-api-v4.coinglass.com", "CoinGlass v4 REST base URL (a proxy)", url=True
    )


@dataclass(frozen=True)
class FlowConfig:
    window_bars: int = _opt(60, "rolling window W of the whale CVD engine", min=2, max=10_080)
    whale_volume_multiple: float = _opt(
        3.0,
        "a whale bar has volume above this multiple of the previous W bars' mean",
        min=1.0,
        max=1000.0,
    )
    neutral_share: float = _opt(
        0.05,
        "whale direction is NEUTRAL when |whale CVD| is below this share of whale volume",
        min=0.0,
        max=1.0,
    )
    intensity_high: float = _opt(
        60.0, "gauge green at or above this whale intensity", min=0.0, max=100.0
    )
    intensity_low: float = _opt(30.0, "gauge red below this whale intensity", min=0.0, max=100.0)


@dataclass(frozen=True)
class HurstConfig:
    window: int = _opt(100, "log returns in the strict Hurst window", min=20, max=10_080)
    trend_above: float = _opt(0.55, "H above this is TRUE_TREND", min=0.0, max=1.0)
    noise_below: float = _opt(0.45, "H below this is NOISE", min=0.0, max=1.0)
    confirm_bars: int = _opt(
        5, "bars a raw regime must hold before it is published", min=1, max=1440
    )
    method: str = _opt("whittle", "Hurst estimator", choices=("whittle", "rs_al"))
    history_len: int = _opt(120, "H values kept for the sparkline", min=2, max=10_080)


@dataclass(frozen=True)
class StrategyConfig:
    name: str = _opt("Alpha-OFI", "strategy name recorded on every trade")
    ofi_bars: int = _opt(5, "bars in the trade-flow imbalance OFI5", min=1, max=1440)
    ofi_threshold: float = _opt(
        0.15, "long above +threshold, short below -threshold", min=0.0, max=1.0
    )
    atr_bars: int = _opt(14, "bars in the ATR used for the expected edge", min=1, max=1440)
    horizon_bars: int = _opt(
        30, "holding horizon of the expected edge (edge scales by sqrt)", min=1, max=10_080
    )
    max_signal_age_s: float = _opt(
        180.0,
        "a signal on a bar that closed longer ago than this (catch-up after a restart) opens"
        " no entry; exits still run on it",
        min=0.0,
        max=604_800.0,
    )


@dataclass(frozen=True)
class GateConfig:
    golden_hour_start: str = _opt("09:00", "first UTC minute new entries are allowed (HH:MM)")
    golden_hour_end: str = _opt("16:00", "UTC time new entries stop (HH:MM, half-open)")
    max_positions: int = _opt(5, "most open positions at once", min=1, max=1000)
    fee_bps: float = _opt(5.0, "taker fee per side, bps", min=0.0, max=1000.0)
    initial_slippage_buffer_bps: float = _opt(
        2.0, "slippage buffer every symbol starts with", min=0.0, max=1000.0
    )
    operator_cooldown_min: float = _opt(
        30.0,
        "minutes a symbol takes no new entry after the operator closed it",
        min=0.0,
        max=1440.0,
    )


@dataclass(frozen=True)
class SizingConfig:
    base_stake_usd: float = _opt(
        100.0, "notional of a 1.0x entry, quote currency", min=0.0, max=1e9
    )
    ultra: float = _opt(2.5, "size multiple when whales and retail OFI agree", min=0.0, max=100.0)
    high: float = _opt(1.5, "size multiple when only whales agree", min=0.0, max=100.0)
    normal: float = _opt(1.0, "size multiple otherwise", min=0.0, max=100.0)
    random_regime: float = _opt(0.5, "size multiple in the RANDOM regime", min=0.0, max=100.0)
    probation_cap: float = _opt(
        0.2, "largest size multiple for a symbol on PROBATION", min=0.0, max=100.0
    )


@dataclass(frozen=True)
class ExitConfig:
    tiers_pct: tuple[float, ...] = _opt(
        (0.5, 1.0, 1.5, 2.0),
        "ladder take-profit tiers T1..T4, % from entry",
        min=0.0,
        max=100.0,
        min_len=4,
        max_len=4,
    )
    tier_fraction: float = _opt(
        0.25, "share of the original size closed at each tier", min=0.0, max=1.0
    )
    stop_pct: float = _opt(
        1.0, "emergency stop, % against entry; closes everything", min=0.0, max=100.0
    )
    force_hold_min: float = _opt(
        45.0, "minutes a TRUE_TREND entry holds for T4/stop only", min=0.0, max=10_080.0
    )


@dataclass(frozen=True)
class BrokerConfig:
    half_spread_bps: float = _opt(1.0, "paper fills cross half this spread", min=0.0, max=1000.0)
    impact_bps_per_pct_volume: float = _opt(
        2.0,
        "extra slippage per 1 % of the bar's quote volume the order takes",
        min=0.0,
        max=1000.0,
    )


@dataclass(frozen=True)
class LearningConfig:
    interval_h: float = _opt(
        4.0, "hours of market time between learning cycles", min=0.1, max=720.0
    )
    lookback_h: float = _opt(24.0, "hours of closed trades a cycle reads", min=1.0, max=8760.0)
    min_trades: int = _opt(
        5, "closed live trades needed before a symbol is judged", min=1, max=100_000
    )
    shadow_edge_ratio: float = _opt(
        1.15,
        "raise the buffer when PF shadow is above this multiple of PF live",
        min=1.0,
        max=100.0,
    )
    buffer_step_bps: float = _opt(2.0, "slippage buffer raise per cycle, bps", min=0.0, max=1000.0)
    buffer_cap_bps: float = _opt(30.0, "highest slippage buffer, bps", min=0.0, max=1000.0)
    probation_enter_pf: float = _opt(
        0.8, "golden-hour live PF below this: PROBATION", min=0.0, max=100.0
    )
    probation_exit_pf: float = _opt(
        1.0, "golden-hour live PF at or above this: ACTIVE", min=0.0, max=100.0
    )


@dataclass(frozen=True)
class UIConfig:
    refresh_hz: float = _opt(1.0, "cockpit redraws per second", min=0.1, max=4.0)
    chart_bars: int = _opt(
        240, "closes kept per symbol for the price chart (c)", min=10, max=10_080
    )
    summary_every_min: float = _opt(
        60.0, "headless per-symbol summary, market minutes", min=1.0, max=10_080.0
    )


@dataclass(frozen=True)
class StoreConfig:
    checkpoint_every_min: float = _opt(
        5.0,
        "market minutes between checkpoints of engine state (trades save at once)",
        min=1.0,
        max=1440.0,
    )
    checkpoint_min_wall_s: float = _opt(
        1.0,
        "at least this many wall seconds between checkpoints, so a fast replay is not slowed"
        " by its own saves (a restart re-applies the bars since; the trading book is exact)",
        min=0.0,
        max=3600.0,
    )
    jsonl_rotate_mb: float = _opt(
        64.0, "rotate a JSONL log past this size, MiB", min=1.0, max=4096.0
    )
    live_history_h: float = _opt(
        72.0,
        "hours of closed live trades kept in positions_futures.json (at least learning.lookback_h"
        " are always kept)",
        min=1.0,
        max=8760.0,
    )


EXECUTION_MODES = ("paper", "testnet", "live")
PAPER = EXECUTION_MODES[0]
#: Sources whose bars are Binance USD-M futures' own (the market orders are sent to).
EXCHANGE_SOURCES = ("binance", "coinglass")


@dataclass(frozen=True)
class ExecutionConfig:
    """Where orders go (docs/execution.md). Paper never sends a request; testnet and live
    send signed orders to Binance USD-M futures and need keys (live also `--confirm-live`)."""

    mode: str = _opt(
        "paper",
        "where orders go: paper (simulated fills), testnet or live (signed Binance orders)",
        choices=EXECUTION_MODES,
    )
    testnet_base_url: str = _opt(
        "https://testnet.binancefuture.com",
        "Binance USD-M futures testnet REST base URL (signed orders in testnet mode)",
        url=True,
    )
    live_base_url: str = _opt(
        "https://fapi.binance.com",
        "Binance USD-M futures REST base URL for signed orders in live mode",
        url=True,
    )
    key_file: str = _opt(
        "",
        "file holding api_key and api_secret (TOML, mode 0600); else env BINANCE_API_KEY and"
        " BINANCE_API_SECRET",
    )
    max_notional_usd: float = _opt(
        1000.0,
        "largest entry notional on one symbol the exchange broker sends, USDT (a bigger one is"
        " refused before it is sent)",
        min=1.0,
        max=1e7,
    )
    recv_window_ms: int = _opt(
        5000,
        "ms a signed request stays valid after its timestamp (Binance recvWindow)",
        min=1,
        max=60_000,
    )
    min_request_interval_s: float = _opt(
        0.25, "least spacing between signed requests, s", min=0.05, max=60.0
    )
    request_timeout_s: float = _opt(
        10.0,
        "s a signed request may take; past it an order's outcome is unknown and it is looked"
        " up by its client order id before any resend",
        min=1.0,
        max=120.0,
    )
    fill_polls: int = _opt(
        10, "status queries of a market order not yet filled before giving up", min=1, max=1000
    )
    fill_poll_s: float = _opt(
        0.5, "s between status queries of a market order not yet filled", min=0.05, max=60.0
    )
    max_wait_s: float = _opt(
        60.0,
        "longest the exchange may hold us off (429/418 Retry-After, back-off) before an order"
        " gives up instead of waiting, s",
        min=1.0,
        max=86_400.0,
    )
    send_attempts: int = _opt(
        5,
        "tries to send one order (rate limits and unknown outcomes count) before giving up",
        min=1,
        max=100,
    )
    retry_after_s: float = _opt(
        30.0,
        "s before the exchange is tried again after it could not be prepared (clock, position"
        " mode, symbol rules), an order's outcome stayed unknown, or a position's stop (then its"
        " reduce-only close) could not be placed; also how often a dropped entry is looked up"
        " again; bars go on meanwhile",
        min=1.0,
        max=3600.0,
    )
    reconcile_every_min: float = _opt(
        5.0,
        "minutes between reconciliations of the book with the exchange (positions, orders,"
        " stops, fills); one also runs at start",
        min=0.5,
        max=1440.0,
    )
    daily_loss_limit_usd: float = _opt(
        100.0,
        "USDT lost on live trades since 00:00 UTC (closed and open, marked at the last bar)"
        " at which new entries halt until the next UTC day",
        min=1.0,
        max=1e7,
    )


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    hurst: HurstConfig = field(default_factory=HurstConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    gates: GateConfig = field(default_factory=GateConfig)
    sizing: SizingConfig = field(default_factory=SizingConfig)
    exits: ExitConfig = field(default_factory=ExitConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)


SECTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Config))


def parse_hhmm(text: str) -> int:
    """'09:00' -> seconds after midnight; ConfigError-ready ValueError otherwise."""
    hh, sep, mm = text.partition(":")
    if not sep or not (hh.isdigit() and mm.isdigit()) or len(mm) != 2:
        raise ValueError(text)
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(text)
    return h * 3600 + m * 60


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _range(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f" from {_num(lo)} to {_num(hi)}"
    if lo is not None:
        return f" >= {_num(lo)}"
    if hi is not None:
        return f" <= {_num(hi)}"
    return ""


def _accepts(f: dataclasses.Field[Any], kind: Any) -> str:
    meta = f.metadata
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    if meta.get("url"):
        return URL_ACCEPTS
    if kind in (tuple[str, ...], tuple[float, ...]):
        lo, hi = meta["min_len"], meta["max_len"]
        count = str(lo) if lo == hi else f"{lo} to {hi}"
        if kind == tuple[str, ...]:
            return f"a list of {count} names made of letters and digits"
        return f"a list of {count} numbers{_range(meta)}"
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return words.get(kind, str(kind)) + _range(meta)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _in_range(meta: Mapping[str, Any], value: float) -> bool:
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _name_ok(value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and value.isalnum() and len(value) <= 40


URL_ACCEPTS = (
    "an http:// or https:// URL with a host, e.g. 'https://fapi.binance.com'"
    " (no spaces, no user:password, no ?query or #fragment)"
)


def _url_ok(value: str) -> bool:
    """A base URL requests can be built on; credentials are refused because the host part
    names the rate limiter, which is logged and saved to disk."""
    if any(c.isspace() or not c.isprintable() for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and "@" not in parts.netloc
        and not parts.query
        and not parts.fragment
        and "?" not in value
        and "#" not in value
    )


def _coerce(key: str, f: dataclasses.Field[Any], kind: Any, value: Any) -> Any:
    meta = f.metadata
    shown = value
    if meta.get("url") and isinstance(value, str):
        shown = re.sub(r"//[^/]*@", "//***@", value)  # a password never reaches the terminal
    bad = ConfigError(f"config: {key} = {shown!r} is not valid; it accepts {_accepts(f, kind)}")
    if kind in (tuple[str, ...], tuple[float, ...]):
        if not isinstance(value, list) or not meta["min_len"] <= len(value) <= meta["max_len"]:
            raise bad
        if kind == tuple[str, ...]:
            if not all(_name_ok(v) for v in value):
                raise bad
            return tuple(value)
        if not all(_is_number(v) and _in_range(meta, float(v)) for v in value):
            raise bad
        return tuple(float(v) for v in value)
    if kind is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if kind is int:
        if not _is_number(value) or not isinstance(value, int) or not _in_range(meta, value):
            raise bad
        return value
    if kind is float:
        if not _is_number(value) or not _in_range(meta, float(value)):
            raise bad
        return float(value)
    if kind is str:
        if not isinstance(value, str) or (meta.get("choices") and value not in meta["choices"]):
            raise bad
        if meta.get("url") and not _url_ok(value):
            raise bad
        return value
    raise bad  # pragma: no cover - a new field type needs a rule here


def _build_section(name: str, cls: type[T], raw: Any) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"config: [{name}] must be a table of keys")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls))}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"config: unknown key {name}.{key}; [{name}] accepts: {known}")
        values[key] = _coerce(f"{name}.{key}", fields[key], hints[key], value)
    return cls(**values)


def from_dict(raw: dict[str, Any]) -> Config:
    """Build a validated Config from a parsed TOML document."""
    hints = get_type_hints(Config)
    sections: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in hints:
            raise ConfigError(f"config: unknown section [{name}]; accepted: {', '.join(SECTIONS)}")
        sections[name] = _build_section(name, hints[name], value)
    config = Config(**sections)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Rules that tie several keys together."""
    try:
        start = parse_hhmm(config.gates.golden_hour_start)
    except ValueError:
        raise ConfigError(
            "config: gates.golden_hour_start accepts a time HH:MM, e.g. '09:00'"
        ) from None
    try:
        end = parse_hhmm(config.gates.golden_hour_end)
    except ValueError:
        raise ConfigError(
            "config: gates.golden_hour_end accepts a time HH:MM, e.g. '16:00'"
        ) from None
    if start == end:
        raise ConfigError("config: gates.golden_hour_end must differ from golden_hour_start")
    h = config.hurst
    if not h.noise_below > 0.0:  # `HurstTracker` needs 0 < noise_below <= trend_above < 1
        raise ConfigError("config: hurst.noise_below accepts a number above 0, up to 1")
    if not h.trend_above < 1.0:
        raise ConfigError("config: hurst.trend_above accepts a number from 0 to below 1")
    if h.noise_below > h.trend_above:
        raise ConfigError(
            f"config: hurst.noise_below ({h.noise_below:g}) must not exceed hurst.trend_above"
            f" ({h.trend_above:g}); it accepts a number <= trend_above"
        )
    tiers = config.exits.tiers_pct
    if len(tiers) != 4 or any(t <= 0 for t in tiers) or list(tiers) != sorted(set(tiers)):
        raise ConfigError("config: exits.tiers_pct accepts 4 increasing positive numbers")
    if config.flow.intensity_low > config.flow.intensity_high:
        f = config.flow
        raise ConfigError(
            f"config: flow.intensity_low ({f.intensity_low:g}) must not exceed"
            f" flow.intensity_high ({f.intensity_high:g}); it accepts a number <= intensity_high"
        )
    if config.learning.probation_exit_pf < config.learning.probation_enter_pf:
        raise ConfigError(
            "config: learning.probation_exit_pf must be at least learning.probation_enter_pf"
        )
    from .clock import SPEED_ACCEPTS, parse_speed

    try:
        parse_speed(config.source.speed)
    except ValueError:
        raise ConfigError(
            f"config: source.speed = {config.source.speed!r} is not valid;"
            f" it accepts {SPEED_ACCEPTS}"
        ) from None


def load(path: Path | None, *, must_exist: bool = False) -> Config:
    """Load the config file; a missing default file means all defaults, a missing file the
    user named (`must_exist`) is an error."""
    if path is None:
        return Config()
    if not path.exists():
        if must_exist:
            raise ConfigError(f"config: {path} does not exist (`config --init` writes one)")
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config: cannot read {path}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None
    config = from_dict(raw)
    refuse_shared_secrets(path, config)
    return config


def refuse_shared_secrets(path: Path, config: Config) -> None:
    """As ssh does for keys: a config file holding a secret must be for its owner's eyes only."""
    held = [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(config)
        for f in dataclasses.fields(getattr(config, section.name))
        if f.metadata.get("secret") and getattr(getattr(config, section.name), f.name)
    ]
    if not held:
        return
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise ConfigError(f"config: cannot check who can read {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(
            f"config: {path} holds {held[0]} and other users can read or change it"
            f" (mode {mode:o}); run: chmod 600 {path}"
        )


def replace(config: Config, section: str, **values: Any) -> Config:
    """A copy with some keys of one section changed (CLI flags), validated like the file."""
    hints = get_type_hints(Config)
    cls = hints[section]
    current = dataclasses.asdict(getattr(config, section))
    current.update(values)
    current = {k: list(v) if isinstance(v, tuple) else v for k, v in current.items()}
    new_section = _build_section(section, cls, current)
    out = dataclasses.replace(config, **{section: new_section})
    validate(out)
    return out


def to_dict(config: Config, *, mask_secrets: bool = True) -> dict[str, dict[str, Any]]:
    """The effective values, secrets masked to their last 4 characters."""
    out: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(config):
        obj = getattr(config, section.name)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("secret") and mask_secrets:
                value = mask(str(value))
            values[f.name] = list(value) if isinstance(value, tuple) else value
        out[section.name] = values
    return out


def mask(secret: str) -> str:
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) > 8 else "****"


def commented_toml(config: Config | None = None) -> str:
    """A config file with every key commented out at its default, and what it means."""
    import tomli_w

    config = config or Config()
    lines = ["# bigalpha-tui configuration. Every key is optional; uncomment to change.", ""]
    for section in dataclasses.fields(config):
        obj = getattr(config, section.name)
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.metadata.get("secret"):
                value = ""
            if isinstance(value, tuple):
                value = list(value)
            rendered = tomli_w.dumps({f.name: value}).strip()
            lines.append(f"# {f.metadata.get('help', '')}")
            lines.extend(f"# {line}" for line in rendered.splitlines())
        lines.append("")
    return "\n".join(lines)
