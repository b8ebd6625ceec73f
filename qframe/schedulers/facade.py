"""``qframe.schedule``: Django Q2's ``schedule()``, served by the qframe-scheduler distribution."""

from __future__ import annotations

import importlib
from typing import Any

from qframe.errors import ConfigError


def schedule(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Create a schedule with ``qframe_scheduler.schedule`` (see its doc); the plugin must be installed."""
    try:
        plugin = importlib.import_module("qframe_scheduler")
    except ModuleNotFoundError as exc:
        if exc.name != "qframe_scheduler":
            raise
        raise ConfigError(
            "schedule() needs the qframe-scheduler distribution: pip install qframe-scheduler"
        ) from None
    return plugin.schedule(func, *args, **kwargs)
