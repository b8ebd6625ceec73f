"""Where the project is: its config file, found upward from the working directory.

The file's directory anchors what a project means by a relative place, whatever directory
a process starts in: a relative ``sqlite:///`` URL in the file, and the SQLite default
``qframe.db``, are files beside it; and it goes on ``sys.path``, so that ``plugin_modules``
and task modules beside it import for every command and producer alike.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qframe.drivers import load
from qframe.errors import ConfigError
from qframe.typos import warn_once

if TYPE_CHECKING:
    from qframe.config import Config

#: The options whose relative ``sqlite:///`` URLs are files beside the config file.
URL_OPTIONS = ("broker_url", "store_url")
_RELATIVE_SQLITE = "sqlite:///"
#: The embedded default's file, in the project directory (kept here, not in the SQLite
#: driver, so that loading a configuration does not import ``sqlite3`` for other brokers).
DEFAULT_PATH = "qframe.db"


@dataclass(frozen=True)
class ConfigFile:
    """A config file and its parsed table of settings."""

    path: Path
    #: The file's settings: the top level of a ``qframe.toml``, ``[tool.qframe]`` of a ``pyproject.toml``.
    table: Mapping[str, Any]
    #: How error messages name the file, e.g. ``pyproject.toml [tool.qframe]``.
    label: str

    @property
    def directory(self) -> Path:
        """The absolute directory that holds the file."""
        return self.path.resolve().parent


def read(path: Path, label: str | None = None) -> ConfigFile:
    """Parse ``path``, a ``qframe.toml`` or (by its name) a ``pyproject.toml``."""
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("qframe", {})
    return ConfigFile(path, data, label or str(path))


def find(cwd: Path) -> ConfigFile | None:
    """The nearest ``qframe.toml``, or ``pyproject.toml`` with ``[tool.qframe]``, in ``cwd`` or above.

    In one directory ``qframe.toml`` wins; a ``pyproject.toml`` without the table is passed
    over, as ruff passes over one without ``[tool.ruff]``.
    """
    cwd = cwd.absolute()
    for directory in (cwd, *cwd.parents):
        where = "" if directory == cwd else f"{directory}/"
        if (directory / "qframe.toml").is_file():
            return read(directory / "qframe.toml", f"{where}qframe.toml")
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _has_qframe_table(pyproject):
            return read(pyproject, f"{where}pyproject.toml [tool.qframe]")
    return None


def _has_qframe_table(pyproject: Path) -> bool:
    try:
        data = tomllib.loads(pyproject.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return True  # read() reports it: a broken project file must not be passed over silently
    tool = data.get("tool")
    return isinstance(tool, dict) and "qframe" in tool


def anchor_urls(values: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """``values`` with relative ``sqlite:///`` URLs (cluster tables too) made files in ``directory``."""
    anchored = {
        key: _anchor(value, directory) if key in URL_OPTIONS else value for key, value in values.items()
    }
    clusters = values.get("clusters")
    if isinstance(clusters, Mapping):
        anchored["clusters"] = {
            name: anchor_urls(table, directory) if isinstance(table, Mapping) else table
            for name, table in clusters.items()
        }
    return anchored


def _anchor(value: Any, directory: Path) -> Any:
    if (
        not isinstance(value, str)
        or not value.startswith(_RELATIVE_SQLITE)
        or value.startswith("sqlite:////")
    ):
        return value
    return _RELATIVE_SQLITE + str(directory / (value[len(_RELATIVE_SQLITE) :] or DEFAULT_PATH))


def anchor_default_database(values: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """``values`` with the SQLite default, where it is in use, made ``qframe.db`` in ``directory``.

    That is ``broker_url`` of the ``sqlite`` broker, or ``store_url`` of a ``sqlite`` store
    that does not share a ``sqlite:`` broker URL; a URL set anywhere is left as it is.
    """
    url = _RELATIVE_SQLITE + str(directory / DEFAULT_PATH)
    anchored = dict(values)
    if values.get("broker", "sqlite") == "sqlite" and _unset(values.get("broker_url")):
        anchored["broker_url"] = url
    elif (
        values.get("store") == "sqlite"
        and _unset(values.get("store_url"))
        and not str(values.get("broker_url") or "").startswith("sqlite:")
    ):
        anchored["store_url"] = url
    return anchored


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.lower() in ("", "none"))


def add_to_sys_path(directory: Path) -> None:
    """Put ``directory`` first on ``sys.path`` unless it is there already."""
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def warn_if_new_database(config: Config) -> None:
    """Log one WARNING, once per process, when ``config``'s embedded broker file does not exist yet.

    A producer calls it before it connects: a database it creates cannot hold the results
    of a cluster that uses another file, so a wrong directory or URL shows at once.
    """
    path = load("broker", config.broker).local_file(config.broker_url)
    if path is not None and not path.exists():
        warn_once(
            f"creating a new SQLite database {path}: no cluster has used it yet, so tasks sent to it "
            "wait until a cluster uses the same file (see broker_url)"
        )
