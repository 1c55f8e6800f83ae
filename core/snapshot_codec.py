"""Snapshots as JSON: the bot encodes, an attached cockpit decodes (stdlib only).

One generic codec for the frozen dataclasses of `snapshot.py` (and the ones they hold:
`FlowState`, `HurstReading`, `SourceHealth`), driven by their type hints: a dataclass is an
object of its fields, an enum its value, a tuple a list, a mapping an object (enum keys by
value), `X | None` either. `decode(encode(s)) == s` for every snapshot the core builds.

Snapshots travel as top-level diffs: `encode_fields` gives each top-level field's JSON value,
`changed_fields` the ones that differ from what a client last got, and the client merges them
into its copy and decodes the whole (`decode_snapshot`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import types
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from .snapshot import Snapshot

T = TypeVar("T")


class CodecError(ValueError):
    """A JSON document that does not decode to the expected type."""


def to_json(value: Any) -> Any:
    """A snapshot value (dataclass, enum, tuple, mapping, scalar) as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    return value


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(tp: Any, doc: Any) -> Any:
    """`doc` (plain JSON data) as a value of type `tp`; CodecError when it does not fit."""
    if tp is Any:
        return doc
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        args = typing.get_args(tp)
        if doc is None and type(None) in args:
            return None
        last: Exception | None = None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_json(arg, doc)
            except CodecError as exc:
                last = exc
        raise CodecError(str(last))
    if origin is tuple:
        if not isinstance(doc, list):
            raise CodecError(f"expected a list for {tp}, got {type(doc).__name__}")
        (item, *_) = typing.get_args(tp)
        return tuple(from_json(item, v) for v in doc)
    if origin in (Mapping, dict, typing.Mapping) or tp in (Mapping, dict):
        if not isinstance(doc, dict):
            raise CodecError(f"expected an object for {tp}, got {type(doc).__name__}")
        key_tp, value_tp = typing.get_args(tp) or (str, Any)
        return MappingProxyType(
            {from_json(key_tp, k): from_json(value_tp, v) for k, v in doc.items()}
        )
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(doc, dict):
            raise CodecError(f"expected an object for {tp.__name__}, got {type(doc).__name__}")
        hints = _hints(tp)
        kwargs = {
            f.name: from_json(hints[f.name], doc[f.name])
            for f in dataclasses.fields(tp)
            if f.name in doc
        }
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise CodecError(f"{tp.__name__}: {exc}") from None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(doc)
        except ValueError:
            raise CodecError(f"{doc!r} is not a {tp.__name__}") from None
    if tp is float:
        if isinstance(doc, int | float) and not isinstance(doc, bool):
            return float(doc)
        raise CodecError(f"expected a number, got {doc!r}")
    if tp is bool or tp is int or tp is str:
        if type(doc) is not tp:
            raise CodecError(f"expected {tp.__name__}, got {doc!r}")
        return doc
    raise CodecError(f"no decoder for {tp!r}")


def decode(tp: type[T], doc: Any) -> T:
    """Typed `from_json` for a dataclass."""
    value: T = from_json(tp, doc)
    return value


def encode_fields(snapshot: Snapshot) -> dict[str, Any]:
    """Each top-level field of `snapshot` as JSON data."""
    doc: dict[str, Any] = to_json(snapshot)
    return doc


#: newest-first logs: a delta carries only the entries added in front, and the length kept
NEWEST_FIRST = ("events", "guard_log")
#: how far into the new log the old newest entry is looked for
MAX_PREPEND = 64


def delta(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any] | None:
    """What turns a client's copy `old` into `new`, None when nothing changed.

    `{"set": {field: value}, "prepend": {log: [newer entries]}, "keep": {log: length}}`;
    with no `old`, every field is in `set`.
    """
    if old is None:
        return {"set": dict(new)}
    changed: dict[str, Any] = {}
    prepend: dict[str, Any] = {}
    keep: dict[str, int] = {}
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if before == value:
            continue
        added = _added_in_front(before, value) if key in NEWEST_FIRST else None
        if added is None:
            changed[key] = value
        else:
            prepend[key] = added
            keep[key] = len(value)
    if not (changed or prepend):
        return None
    out: dict[str, Any] = {"set": changed}
    if prepend:
        out["prepend"] = prepend
        out["keep"] = keep
    return out


def _added_in_front(old: Any, new: Any) -> list[Any] | None:
    """The entries of `new` in front of `old`'s, when `new` is `old` with entries added in
    front (and the oldest ones dropped); None otherwise."""
    if not (isinstance(old, list) and isinstance(new, list) and old and new):
        return None
    for k in range(min(len(new), MAX_PREPEND + 1)):
        if new[k] == old[0]:
            if new[k:] == old[: len(new) - k]:
                return new[:k]
            return None
    return None


def apply_delta(fields: dict[str, Any], change: Mapping[str, Any]) -> None:
    """Merge a `delta` into a client's copy of the top-level fields (in place)."""
    fields.update(change.get("set", {}))
    keep = change.get("keep", {})
    for key, added in change.get("prepend", {}).items():
        merged = list(added) + list(fields.get(key, []))
        fields[key] = merged[: int(keep.get(key, len(merged)))]


_MISSING = object()


def decode_snapshot(fields: Mapping[str, Any]) -> Snapshot:
    """A snapshot from its merged top-level fields; CodecError when they do not fit."""
    return decode(Snapshot, dict(fields))


def dumps(doc: Any) -> bytes:
    """One compact JSON line."""
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()
