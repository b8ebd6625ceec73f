"""Option values converted to an option's type, for core and plugin options alike.

The types an option may have are ``int``, ``float``, ``bool``, ``str``, ``tuple[str, ...]``
(a list of strings), ``Mapping[str, Any]`` (a table) and any of them ``| None``. Values
often arrive as strings from the environment and are parsed; values from TOML files and
from Python arrive typed and are checked.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any, cast

#: The option types, as named in error messages.
SUPPORTED = "int, float, bool, str, tuple[str, ...], Mapping[str, Any], or one of them | None"


def _split(hint: Any) -> tuple[Any, bool]:
    """The type under an optional hint, and whether ``None`` is allowed."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint, False
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return (args[0] if len(args) == 1 else hint), len(args) < len(typing.get_args(hint))


def kind(hint: Any) -> str | None:
    """How an option of type ``hint`` is described (``int``, ``list of str``...); None if unsupported."""
    base, _ = _split(hint)
    origin = typing.get_origin(base) or base
    if isinstance(origin, type) and issubclass(origin, tuple):
        return "list of str" if typing.get_args(base) in ((), (str, ...)) else None
    if origin is Mapping or origin is dict:
        return "table"
    return {bool: "bool", int: "int", float: "float", str: "str"}.get(origin)


def describe(hint: Any) -> str:
    """``hint`` in words, as in the option tables: ``int``, ``float or none``, ``list of str``."""
    return f"{kind(hint)} or none" if _split(hint)[1] else str(kind(hint))


def show(value: Any) -> str:
    """A value as it is written in a TOML file (``none`` for None)."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        value = list(value)
    return json.dumps(value, default=str)


def convert(hint: Any, value: Any) -> Any:
    """Coerce ``value`` to the type ``hint``; raise TypeError or ValueError naming what was expected."""
    base, optional = _split(hint)
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("", "none"))):
        return None
    origin = typing.get_origin(base) or base
    if isinstance(origin, type) and issubclass(origin, tuple):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise TypeError(f"must be a list of strings, got {value!r}")
    if origin is Mapping or origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"must be a JSON object, got {value!r}") from None
        if not isinstance(value, Mapping):
            raise TypeError(f"must be a table of options, got {value!r}")
        return dict(value)
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise TypeError(f"must be true or false, got {value!r}")
    if origin is int:
        return _number(value, int, (int, str), "an integer")
    if origin is float:
        return _number(value, float, (int, float, str), "a number")
    if origin is str:
        if not isinstance(value, str):
            raise TypeError(f"must be a string, got {value!r}")
        return value
    return value


def _number(value: Any, kind: type[int] | type[float], accepted: tuple[type, ...], word: str) -> Any:
    """``kind(value)`` for a number or its text (never a bool); one message for both failures."""
    if isinstance(value, bool) or not isinstance(value, accepted):
        raise TypeError(f"must be {word}, got {value!r}")
    try:
        return kind(cast("str | float", value))
    except ValueError:
        raise ValueError(f"must be {word}, got {value!r}") from None
