"""A hook plugin with options of its own; every cluster process records the values it sees."""

from __future__ import annotations

from qframe import PluginOption, hookimpl
from qframe.config import Config
from qframe.testing.tasks import record


@hookimpl
def qframe_add_options() -> list[PluginOption]:
    return [
        PluginOption("testopt", "greeting", str, "hello", "What each cluster process records at boot."),
        PluginOption("testopt", "level", int, 1, "A number each cluster process records at boot."),
    ]


@hookimpl
def qframe_process_boot(role: str, config: Config) -> None:
    settings = config.plugin("testopt")
    record("option-seen", role, settings.greeting, settings.level)
