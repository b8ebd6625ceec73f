"""The one delay of a task, from its ``delay``, ``countdown`` or ``eta`` option."""

from __future__ import annotations

import datetime
import math
import time
from collections.abc import Mapping
from typing import Any

from qframe.errors import InvalidArgument

#: The options that each set when a task becomes visible; at most one may be given.
DELAY_OPTIONS = ("delay", "countdown", "eta")


def delay_of(options: Mapping[str, Any], now: float | None = None) -> float:
    """Seconds from ``now`` until the task is due (0: at once), from at most one delay option.

    ``delay`` and ``countdown`` are seconds; ``eta`` is a timezone-aware
    :class:`~datetime.datetime`. An ``eta`` in the past is due at once, as in Celery.
    """
    given = [name for name in DELAY_OPTIONS if options.get(name) is not None]
    if len(given) > 1:
        raise InvalidArgument(f"give one of delay, countdown and eta, not {' and '.join(given)}")
    if not given:
        return 0.0
    name, value = given[0], options[given[0]]
    if name == "eta":
        if not isinstance(value, datetime.datetime):
            raise InvalidArgument(f"eta must be a datetime, got {type(value).__name__} {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgument(
                f"eta {value.isoformat()} is a naive datetime: give it a timezone (tzinfo=datetime.UTC)"
            )
        return max(0.0, value.timestamp() - (time.time() if now is None else now))
    return seconds(name, value)


def seconds(name: str, value: Any) -> float:
    """``value`` of option ``name`` as a number of seconds, 0 or more; anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidArgument(f"{name} must be a number of seconds, 0 or more, got {value!r}")
    return float(value)
