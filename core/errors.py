"""The project's exception family: every message says what is wrong and what to do."""

from __future__ import annotations


class BigAlphaError(Exception):
    """Base of every error the project raises on purpose."""


class ConfigError(BigAlphaError):
    """A config key or value is wrong; the message names the key and what it accepts."""


class DataError(BigAlphaError):
    """Market data could not be read (names the file and line where there is one)."""


class StoreError(BigAlphaError):
    """The feature store could not be read or written."""


class SourceError(BigAlphaError):
    """A market-data source failed in a way the operator must see."""


class CommandError(BigAlphaError):
    """An operator command was malformed or cannot be applied now."""


def sole_error(error: BaseException) -> BaseException:
    """The one exception inside nested single-member groups (a task group wraps what a task
    raised), or `error` itself."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
