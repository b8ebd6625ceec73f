"""The ``cached`` option: how long a task's result is kept, as Django Q2's ``cached=True|seconds``."""

from __future__ import annotations

from typing import Any

from qframe.errors import InvalidArgument


def cache_seconds(cached: Any, cache_ttl: float) -> float:
    """Seconds a result is kept for ``cached`` (0.0: not cached); ``True`` means ``cache_ttl``.

    ``False`` and ``None`` mean not cached; a number of seconds must be greater than 0.
    """
    if cached is None or cached is False:
        return 0.0
    if cached is True:
        return float(cache_ttl)
    if isinstance(cached, int | float) and cached > 0:
        return float(cached)
    raise InvalidArgument(f"cached must be True, False or a number of seconds greater than 0, got {cached!r}")
