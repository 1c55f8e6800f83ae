"""Every path the app uses, in one place (`bigalpha-tui config --path` prints them)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from bigalpha_tui.core.archive import ARCHIVE_URL_ENV, CACHE_DIR_ENV, DEFAULT_ARCHIVE_URL
from bigalpha_tui.core.errors import ConfigError

APP_NAME = "bigalpha-tui"
DATA_DIR_ENV = "BIGALPHA_DATA_DIR"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "feature_store"


def data_dir(cli_value: str | None = None) -> Path:
    """--data-dir, else $BIGALPHA_DATA_DIR, else the platform's user data folder."""
    if cli_value:
        return Path(cli_value).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def checked_data_dir(cli_value: str | None = None) -> Path:
    """`data_dir`, refused with one line when something other than a folder is there."""
    path = data_dir(cli_value)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"the data folder {path} is not a folder; give another --data-dir (or {DATA_DIR_ENV})"
        )
    return path


def config_path(cli_value: str | None = None) -> Path:
    if cli_value:
        return Path(cli_value).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def cache_dir() -> Path:
    """Downloaded market data: $BIGALPHA_CACHE_DIR, else the platform's user cache folder."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME))


def archive_url() -> str:
    """Root of the kline archive: $BIGALPHA_ARCHIVE_URL, else Binance's public one."""
    return os.environ.get(ARCHIVE_URL_ENV) or DEFAULT_ARCHIVE_URL
