"""What a sweep runs: the grid of config variants (`--set`) and the walk-forward windows.

Every `--set` key and value goes through the config's own validation (`config.replace`),
so a value the config file would refuse is refused here, with the same one line.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bigalpha_tui.core import config as config_mod
from bigalpha_tui.core.config import Config
from bigalpha_tui.core.errors import ConfigError

#: More variants than this is a typo or a job for a cluster, not a local sweep.
MAX_COMBINATIONS = 1000
SET_ACCEPTS = "SECTION.KEY=VALUE[,VALUE...], e.g. hurst.trend_above=0.55,0.6"


@dataclass(frozen=True)
class Variant:
    """One combination of the grid: the values set (key -> value) and the config they make."""

    params: dict[str, Any]
    config: Config


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: choose on [train_start, train_end), test on [test_start, test_end)."""

    train_ms: tuple[int, int]
    test_ms: tuple[int, int]


def parse_set(text: str) -> tuple[str, list[Any]]:
    """`hurst.trend_above=0.55,0.6` -> ("hurst.trend_above", [0.55, 0.6]).

    Values are read as TOML (numbers, true/false, "strings", [lists]); bare words that are
    not TOML (`speed=max`) stay strings."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not values.strip() or key.count(".") != 1:
        raise ConfigError(f"--set {text!r}: expected {SET_ACCEPTS}")
    section = key.split(".")[0]
    if section not in config_mod.SECTIONS:
        raise ConfigError(
            f"config: unknown section [{section}]; accepted: {', '.join(config_mod.SECTIONS)}"
        )
    pieces = _top_level_split(values)
    if not all(pieces):
        raise ConfigError(f"--set {text!r}: expected {SET_ACCEPTS}")
    return key, [_value(piece) for piece in pieces]


def _top_level_split(values: str) -> list[str]:
    """Split on the commas outside [lists]."""
    pieces, depth, current = [], 0, ""
    for char in values:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    return [*pieces, current.strip()]


def _value(piece: str) -> Any:
    try:
        return tomllib.loads(f"v = {piece}")["v"]
    except tomllib.TOMLDecodeError:
        return piece


def build_grid(base: Config, sets: list[str]) -> list[Variant]:
    """Every combination of the `--set` values, each a validated config (in grid order)."""
    axes = [parse_set(text) for text in sets]
    keys = [key for key, _ in axes]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ConfigError(f"--set {repeated[0]} is given twice; list its values once")
    count = 1
    for _, values in axes:
        count *= len(values)
    if count > MAX_COMBINATIONS:
        raise ConfigError(
            f"--set makes {count:,} combinations; a sweep runs at most {MAX_COMBINATIONS:,}"
        )
    grid = []
    for combination in itertools.product(*(values for _, values in axes)):
        params = dict(zip(keys, combination, strict=True))
        grid.append(Variant(params, apply_params(base, params)))
    return grid


def apply_params(base: Config, params: dict[str, Any]) -> Config:
    """`base` with `params` set, one section at a time (keys tied together, like
    noise_below <= trend_above, are checked once the whole section is set)."""
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in params.items():
        section, name = key.split(".")
        by_section.setdefault(section, {})[name] = value
    config = base
    for section, values in by_section.items():
        config = config_mod.replace(config, section, **values)
    return config


def parse_walk_forward(text: str) -> tuple[int, int]:
    """`10d:3d` -> (train, test) lengths in ms of market time."""
    from bigalpha_tui.runtime import parse_duration

    train, sep, test = text.partition(":")
    try:
        if not sep:
            raise ConfigError(text)
        train_s, test_s = parse_duration(train), parse_duration(test)
    except ConfigError:
        raise ConfigError(
            f"--walk-forward accepts TRAIN:TEST market durations, e.g. 10d:3d, not {text!r}"
        ) from None
    if min(train_s, test_s) < 60:
        raise ConfigError(f"--walk-forward {text}: each window must be at least a minute")
    return round(train_s * 1000), round(test_s * 1000)


def walk_forward_folds(span_ms: tuple[int, int], train_ms: int, test_ms: int) -> list[Fold]:
    """Consecutive test windows, each after its own training window, stepping by the test
    length; only whole windows inside the span."""
    start, end = span_ms
    folds = []
    t = start
    while t + train_ms + test_ms <= end:
        folds.append(Fold((t, t + train_ms), (t + train_ms, t + train_ms + test_ms)))
        t += test_ms
    if not folds:
        days = (end - start) / 86_400_000
        need = (train_ms + test_ms) / 86_400_000
        raise ConfigError(
            f"--walk-forward needs at least {need:g} days of data; the data spans {days:.2f}"
        )
    return folds


def parse_moment_ms(text: str, option: str) -> int:
    """`2026-02-03` or `2026-02-03T12:00` (UTC unless it carries an offset) -> epoch ms."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} accepts a date or date-time such as 2026-02-03 or 2026-02-03T12:00,"
            f" not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)
