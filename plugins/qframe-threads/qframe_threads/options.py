"""The plugin's option: how many threads each worker process runs."""

from __future__ import annotations

from qframe import PluginOption, hookimpl

#: Threads per worker process when the option is not set (or the plugin's hooks are not loaded).
DEFAULT_THREADS = 8


@hookimpl
def qframe_add_options() -> list[PluginOption]:
    """``threads`` (``QFRAME_THREADS``)."""
    return [
        PluginOption(
            "threads",
            "",
            int,
            DEFAULT_THREADS,
            "Tasks each worker process runs at once, one per thread (process_manager=threads).",
        )
    ]
