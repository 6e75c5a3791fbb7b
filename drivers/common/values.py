"""JSON round-trip for the frozen dataclasses that drivers return.

Values hold only JSON-friendly data (str, int, float, bool, None, enums,
datetimes, tuples, dicts and nested values), so one generic pair of functions
serializes all of them; no value needs its own code.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_dict(value: Any) -> Any:
    """Return ``value`` as plain JSON data (dicts, lists, strings, numbers)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (tuple, list, frozenset, set)):
        return [to_dict(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_dict(item) for key, item in value.items()}
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a ``cls`` value from what :func:`to_dict` returned.

    Unknown keys are ignored so that newer producers stay readable.
    """
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = {name: _convert(hints[name], item) for name, item in data.items() if name in known}
    return cls(**kwargs)


def _convert(hint: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(options[0], data) if len(options) == 1 else data
    if origin is tuple:
        (item_hint, *_rest) = typing.get_args(hint)
        return tuple(_convert(item_hint, item) for item in data)
    if origin is frozenset:
        (item_hint,) = typing.get_args(hint)
        return frozenset(_convert(item_hint, item) for item in data)
    if isinstance(hint, type):
        if issubclass(hint, enum.Enum):
            return hint(data)
        if issubclass(hint, datetime.datetime):
            return datetime.datetime.fromisoformat(data)
        if dataclasses.is_dataclass(hint):
            return from_dict(hint, data)
    return data
