"""Settings: one frozen, picklable :class:`Config`, loaded in layers.

Precedence, lowest first: defaults < ``[tool.qframe]`` in ``pyproject.toml`` or a
``qframe.toml`` < ``QFRAME_*`` environment variables < explicit overrides (CLI flags).
A ``[tool.qframe.clusters.<name>]`` table overrides the file's settings for the cluster
(queue) called ``<name>``; environment and flags still win over it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qframe.errors import ConfigError

ENV_PREFIX = "QFRAME_"


@dataclass(frozen=True)
class Config:
    """Every setting of a cluster and of the code that enqueues to it."""

    #: The cluster's name, which is also its queue's name.
    name: str = "default"
    #: Worker processes per cluster.
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: Seconds a task may run before its worker is killed; ``None`` means no limit.
    timeout: float | None = None
    #: Seconds a delivered message stays invisible to other consumers (Django Q2's ``retry``).
    lease: float = 60.0
    #: Deliveries allowed per task before it is recorded as failed; 0 means no limit.
    max_attempts: int = 3
    #: Most tasks the pusher holds ready beyond the running ones. It holds fewer while tasks
    #: are slow: about a quarter second of work, and at least one per worker.
    prefetch: int = 100
    #: Most messages taken from the broker in one round trip.
    bulk: int = 100
    #: Longest pause, in seconds, between two polls of a broker that cannot block.
    poll: float = 0.05
    #: A worker is replaced after this many tasks; 0 means never.
    recycle: int = 500
    #: A worker is replaced after a task that leaves it above this many MiB of RSS.
    max_rss: int | None = None
    #: CPUs each worker is pinned to; 0 means no pinning.
    cpu_affinity: int = 0
    #: Seconds between two rounds of the sentinel's guard loop.
    guard_cycle: float = 0.5
    #: Successful results kept in the store; 0 keeps all, -1 keeps none. Failures are kept.
    save_limit: int = 0
    #: Seconds a running task gets to finish at stop before its worker is killed.
    grace: float = 30.0
    #: zlib-compress payloads.
    compress: bool = False
    #: Payload codec: ``pickle`` (any Python object) or ``json``.
    serializer: str = "pickle"
    #: Key of the payloads' HMAC-SHA256 signature.
    secret_key: str | None = None
    #: Older keys still accepted when checking signatures, for key rotation.
    secret_key_fallbacks: tuple[str, ...] = ()
    #: Broker driver name (entry point in ``qframe.brokers``) or ``module:Class``.
    broker: str = "sqlite"
    #: Where the broker lives, e.g. ``sqlite:///qframe.db`` or ``redis://localhost:6379/0``.
    broker_url: str | None = None
    #: Extra keyword options for the broker driver.
    broker_options: Mapping[str, Any] = field(default_factory=dict)
    #: Store driver (results, statuses, dead letters); ``None`` means the broker's own store.
    store: str | None = None
    #: Where the store lives; ``None`` means ``broker_url`` for the broker's own store.
    store_url: str | None = None
    #: Extra keyword options for the store driver.
    store_options: Mapping[str, Any] = field(default_factory=dict)
    #: Process manager driver.
    process_manager: str = "prefork"
    #: Level of the ``qframe`` logger.
    log_level: str = "INFO"
    #: Allow-list of entry-point hook plugins to load; ``None`` loads all, ``()`` none.
    plugins: tuple[str, ...] | None = None
    #: Deny-list of entry-point hook plugins.
    disable_plugins: tuple[str, ...] = ()
    #: Importable modules registered as hook plugins in every cluster process.
    plugin_modules: tuple[str, ...] = ()
    #: Per-cluster overrides, ``{name: {option: value}}``.
    clusters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_cluster(self, name: str) -> Config:
        """This config for the cluster (queue) ``name``, with its overrides applied."""
        if name == self.name:
            return self
        return build({**_values(self), **self.clusters.get(name, {}), "name": name}, "overrides")

    def replace(self, **changes: Any) -> Config:
        """A validated copy with ``changes`` applied."""
        return build({**_values(self), **changes}, "arguments")


def _values(config: Config) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(Config)}
_HINTS = typing.get_type_hints(Config)
_ALIASES = {"cluster_name": "name"}


def load(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Config:
    """Read the file, the environment and ``overrides`` into a validated :class:`Config`."""
    environ = os.environ if environ is None else environ
    file_values, source = _read_file(config_file, Path(cwd or os.getcwd()))
    env_values = _read_env(environ)
    flag_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    problems = _unknown(file_values, source) + _unknown(flag_values, "arguments")
    name = flag_values.get("name") or env_values.get("name") or file_values.get("name")
    cluster_values = dict(file_values.get("clusters", {}).get(name, {})) if name else {}
    problems += _unknown(cluster_values, f"{source} [clusters.{name}]")
    merged = {**file_values, **cluster_values, **env_values, **flag_values}
    if problems:
        raise ConfigError("\n".join(problems))
    origins = {
        **dict.fromkeys(file_values, source),
        **dict.fromkeys(cluster_values, f"{source} [clusters.{name}]"),
        **{key: env_name(key) for key in env_values},
        **dict.fromkeys(flag_values, "arguments"),
    }
    return build(merged, origins)


def build(values: Mapping[str, Any], origins: Mapping[str, str] | str) -> Config:
    """Convert and validate ``values`` into a :class:`Config`, listing every problem.

    ``origins`` names where each value came from (one name for all, or one per option).
    """

    def origin(key: str) -> str:
        return origins if isinstance(origins, str) else origins.get(key, "defaults")

    problems: list[str] = []
    for key in values:
        problems += _unknown({key: None}, origin(key))
    converted: dict[str, Any] = {}
    for key, value in values.items():
        if key in FIELDS:
            try:
                converted[key] = _convert(key, value)
            except (TypeError, ValueError) as exc:
                problems.append(f"option '{key}' {exc} (from {origin(key)})")
    if problems:
        raise ConfigError("\n".join(problems))
    config = Config(**converted)
    problems = _check(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _unknown(values: Mapping[str, Any], source: str) -> list[str]:
    problems = []
    for key in values:
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"unknown option '{key}' in {source}{hint}")
    return problems


def _check(config: Config) -> list[str]:
    problems = []
    for key in ("workers", "bulk", "prefetch"):
        if getattr(config, key) < 1:
            problems.append(f"option '{key}' must be at least 1, got {getattr(config, key)}")
    for key in ("lease", "poll", "guard_cycle", "grace"):
        if getattr(config, key) <= 0:
            problems.append(f"option '{key}' must be greater than 0, got {getattr(config, key)}")
    if config.timeout is not None and config.timeout <= 0:
        problems.append(f"option 'timeout' must be greater than 0, got {config.timeout}")
    elif config.timeout is not None and config.lease <= config.timeout:
        problems.append(
            f"lease ({config.lease:g} s) must be longer than timeout ({config.timeout:g} s): "
            "a task still running when its lease runs out is handed to another worker "
            "and runs twice"
        )
    if config.serializer not in ("pickle", "json"):
        problems.append(f"option 'serializer' must be 'pickle' or 'json', got {config.serializer!r}")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append(
            f"option 'log_level' must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {config.log_level!r}"
        )
    if config.max_attempts < 0:
        problems.append(f"option 'max_attempts' must be 0 (no limit) or more, got {config.max_attempts}")
    return problems


def _read_file(config_file: str | Path | None, cwd: Path) -> tuple[dict[str, Any], str]:
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return _parse_toml(path, path.name == "pyproject.toml"), str(path)
    if (cwd / "qframe.toml").is_file():
        return _parse_toml(cwd / "qframe.toml", False), "qframe.toml"
    if (cwd / "pyproject.toml").is_file():
        return _parse_toml(cwd / "pyproject.toml", True), "pyproject.toml [tool.qframe]"
    return {}, "defaults"


def _parse_toml(path: Path, pyproject: bool) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if pyproject:
        data = data.get("tool", {}).get("qframe", {})
    return {_ALIASES.get(k, k): v for k, v in data.items()}


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        option = _ALIASES.get(key[len(ENV_PREFIX) :].lower(), key[len(ENV_PREFIX) :].lower())
        if option in FIELDS:
            values[option] = raw
    return values


def env_name(option: str) -> str:
    """The environment variable that sets ``option``."""
    return ENV_PREFIX + option.upper()


def _convert(key: str, value: Any) -> Any:
    """Coerce ``value`` (often a string from the environment) to the type of ``key``."""
    hint = _HINTS[key]
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else ()
    optional = type(None) in args
    if optional and (value is None or (isinstance(value, str) and value.lower() in ("", "none"))):
        if key == "plugins" and value == "":
            return ()
        return None
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    origin = typing.get_origin(base) or base
    if isinstance(origin, type) and issubclass(origin, tuple):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise TypeError(f"must be a list of strings, got {value!r}")
    if origin is Mapping or origin is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(f"must be a JSON object, got {value!r}") from None
        if not isinstance(value, Mapping):
            raise TypeError(f"must be a table of options, got {value!r}")
        return dict(value)
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise TypeError(f"must be true or false, got {value!r}")
    if origin is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"must be an integer, got {value!r}") from None
    if origin is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"must be a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"must be a number, got {value!r}") from None
    if origin is str:
        if not isinstance(value, str):
            raise TypeError(f"must be a string, got {value!r}")
        return value
    return value
