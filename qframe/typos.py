"""Misspelt names caught where they can be: the closest valid name, warnings once, task keywords."""

from __future__ import annotations

import difflib
import inspect
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from qframe.task import OPTION_NAMES

log = logging.getLogger("qframe")

_warned: set[str] = set()
_warned_lock = threading.Lock()


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word``, if one is close enough to be what was meant."""
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return matches[0] if matches else None


def warn_once(message: str) -> None:
    """Log ``message`` as a WARNING of the ``qframe`` logger unless this process did already."""
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning("%s", message)


def unknown_options(names: Iterable[str]) -> str:
    """The message of the TypeError for task options that do not exist."""
    unknown = sorted(names)
    hints = [f"{name} -> {guess}" for name in unknown if (guess := closest(name, OPTION_NAMES))]
    return f"unknown task options: {unknown}" + (f" (did you mean {', '.join(hints)}?)" if hints else "")


def check_task_keywords(func: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Refuse a keyword ``func`` cannot take when it looks like a misspelt task option.

    ``async_task(send, timout=5)`` would pass ``timout`` to ``send``, which fails on a
    worker later; a function that does take the keyword gets it, as always.
    """
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins): the worker will tell
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    takes = {p.name for p in parameters if p.kind in keywords}
    for name in kwargs:
        option = closest(name, OPTION_NAMES) if name not in takes else None
        if option is not None:
            label = getattr(func, "__qualname__", repr(func))
            raise TypeError(
                f"{label}() got an unexpected keyword argument '{name}' from async_task: "
                f"did you mean {option}? ({option} is a task option)"
            )
