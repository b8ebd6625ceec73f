"""The retry options of ``async_task`` checked and turned into :class:`~qframe.task.Task` fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qframe.countdown import seconds
from qframe.errors import InvalidArgument
from qframe.task import func_path


def retry_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    """``retry_on``, ``backoff``, ``retry_delay``, ``max_backoff`` and ``jitter`` as task fields."""
    fields: dict[str, Any] = {}
    retry_on = options.get("retry_on")
    if retry_on is not None:
        kinds = retry_on if isinstance(retry_on, tuple | list) else (retry_on,)
        for kind in kinds:
            if not isinstance(kind, str) and not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise InvalidArgument(f"retry_on must name exception types, got {kind!r}")
        fields["retry_on"] = tuple(func_path(kind) for kind in kinds)
    kind = options.get("backoff")
    if kind is not None:
        if kind not in ("fixed", "exponential"):
            raise InvalidArgument(f"backoff must be 'fixed' or 'exponential', got {kind!r}")
        fields["backoff"] = kind
    for name in ("retry_delay", "max_backoff"):
        value = options.get(name)
        if value is not None:
            fields[name] = seconds(name, value)
    if options.get("jitter") is not None:
        fields["jitter"] = bool(options["jitter"])
    return fields
