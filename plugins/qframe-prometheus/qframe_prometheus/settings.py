"""The plugin's options, declared through ``qframe_add_options`` and read from a ``Config``."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from qframe import PluginOption
from qframe.config import Config
from qframe.errors import PluginError

NAMESPACE = "prometheus"

OPTIONS = [
    PluginOption(
        NAMESPACE, "port", int | None, None, "Port the sentinel serves /metrics on (unset: not served)."
    ),
    PluginOption(NAMESPACE, "address", str, "0.0.0.0", "Address the sentinel's /metrics endpoint binds to."),
    PluginOption(
        NAMESPACE,
        "textfile",
        str,
        "",
        "A .prom file the sentinel rewrites every guard cycle, for node_exporter's textfile collector.",
    ),
    PluginOption(
        NAMESPACE,
        "dir",
        str,
        "",
        "Where each cluster keeps its multi-process metric files (empty: <temp dir>/qframe-prometheus).",
    ),
]


@dataclass(frozen=True)
class Settings:
    """The plugin's settings for one process."""

    port: int | None = None
    address: str = "0.0.0.0"
    textfile: str = ""
    dir: str = ""

    @classmethod
    def of(cls, config: Config) -> Settings:
        """The settings in ``config`` (the defaults when it was built without this plugin's options)."""
        return config.plugin_settings(NAMESPACE, cls)

    @property
    def base(self) -> Path:
        """The directory that holds one sub-directory per running cluster."""
        return Path(self.dir) if self.dir else Path(tempfile.gettempdir()) / "qframe-prometheus"

    def cluster_dir(self, cluster_id: str) -> Path:
        """The multi-process directory of the cluster ``cluster_id``."""
        return self.base / cluster_id

    def check(self) -> None:
        """Raise a one-line :class:`PluginError` for a setting that cannot work."""
        if self.port is not None and not 0 < self.port < 65536:
            raise PluginError(f"prometheus_port must be between 1 and 65535, not {self.port}")
        if self.textfile:
            path = Path(self.textfile)
            if path.suffix != ".prom":
                raise PluginError(
                    f"prometheus_textfile '{self.textfile}' must end in .prom (node_exporter reads no other)"
                )
            if not os.access(path.parent, os.W_OK):
                raise PluginError(
                    f"prometheus_textfile '{self.textfile}': directory {path.parent} is not writable"
                )
