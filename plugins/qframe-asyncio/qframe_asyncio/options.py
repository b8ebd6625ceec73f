"""The plugin's option: how many tasks each worker process's event loop runs at once."""

from __future__ import annotations

from qframe import PluginOption, hookimpl

#: Tasks at once per worker process when the option is not set (or the plugin's hooks are not loaded).
DEFAULT_CONCURRENCY = 100


@hookimpl
def qframe_add_options() -> list[PluginOption]:
    """``concurrency`` (``QFRAME_CONCURRENCY``)."""
    return [
        PluginOption(
            "concurrency",
            "",
            int,
            DEFAULT_CONCURRENCY,
            "Tasks each worker process runs at once on its event loop (process_manager=asyncio).",
        )
    ]
