"""The plugin's options, declared through ``qframe_add_options`` and read from a ``Config``."""

from __future__ import annotations

from dataclasses import dataclass

from qframe import PluginOption
from qframe.config import Config
from qframe.errors import PluginError

NAMESPACE = "otel"

#: ``otel_exporter`` values: "" keeps the tracer provider the application set up.
EXPORTERS = ("", "console", "file", "otlp")

OPTIONS = [
    PluginOption(
        NAMESPACE,
        "exporter",
        str,
        "",
        "Where spans go: '' (the process's own tracer provider), 'console', 'file' or 'otlp'.",
    ),
    PluginOption(
        NAMESPACE, "file", str, "", "With otel_exporter = 'file': the JSON-lines file spans are appended to."
    ),
    PluginOption(
        NAMESPACE, "service_name", str, "qframe", "The service.name of the spans this plugin exports."
    ),
]


@dataclass(frozen=True)
class Settings:
    """The plugin's settings for one process."""

    exporter: str = ""
    file: str = ""
    service_name: str = "qframe"

    @classmethod
    def of(cls, config: Config) -> Settings:
        """The settings in ``config`` (the defaults when it was built without this plugin's options)."""
        return config.plugin_settings(NAMESPACE, cls)

    def check(self) -> None:
        """Raise a one-line :class:`PluginError` for a setting that cannot work."""
        if self.exporter not in EXPORTERS:
            choices = ", ".join(repr(name) for name in EXPORTERS)
            raise PluginError(f"otel_exporter {self.exporter!r} is not one of {choices}")
        if self.exporter == "file" and not self.file:
            raise PluginError("otel_exporter = 'file' needs otel_file, the path to append spans to")
