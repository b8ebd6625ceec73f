"""Settings: one frozen, picklable :class:`Config`, loaded in layers.

Precedence, lowest first: defaults < ``[tool.qframe]`` in ``pyproject.toml`` or a
``qframe.toml`` < ``QFRAME_*`` environment variables < explicit overrides (CLI flags).
A ``[tool.qframe.clusters.<name>]`` table overrides the file's settings for the cluster
(queue) called ``<name>``; environment and flags still win over it.

Plugins declare options of their own (``qframe_add_options``); :func:`load` reads the
plugin selection first, builds the plugin manager, collects the declarations, and then
validates core and plugin options together. The values end up in the ``Config``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qframe import project
from qframe.convert import convert
from qframe.errors import ConfigError
from qframe.options import PluginOption, collect_options, unloaded_plugin
from qframe.plugins import make_plugin_manager
from qframe.typos import closest, warn_once

T = TypeVar("T")

ENV_PREFIX = "QFRAME_"
#: ``QFRAME_*`` variables left to test suites (``qframe.testing`` reads ``QFRAME_TEST_LOG``),
#: never reported as misspelt options.
RESERVED_ENV_PREFIX = "QFRAME_TEST_"


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
    #: Dotted paths of exception types that retry a task (with backoff) when it raises them.
    retry_on: tuple[str, ...] = ()
    #: Backoff between retries: ``fixed`` or ``exponential``.
    backoff: str = "exponential"
    #: Seconds of the first retry's backoff (every retry's with ``fixed``).
    retry_delay: float = 1.0
    #: Longest backoff in seconds.
    max_backoff: float = 600.0
    #: Exponential backoff waits a random time up to its value ("full jitter").
    jitter: bool = True
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
    #: Apply ``save_limit`` to each ``group``, ``name`` or ``func`` separately; ``None``: to all successes.
    save_limit_per: str | None = None
    #: Seconds a result of a task enqueued with ``cached=True`` is kept (Django's cache default, 300).
    cache_ttl: float = 300.0
    #: Seconds a running task gets to finish at stop before its worker is killed.
    grace: float = 30.0
    #: Seconds a starting cluster keeps trying to reach its broker and store before it gives up.
    startup_wait: float = 10.0
    #: Seconds a running cluster may go without reaching its broker before it stops (exit
    #: code 3, for its process manager to restart it); ``None`` means it waits forever.
    max_outage: float | None = None
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
    #: How the ``prefork`` manager starts processes: ``fork``, ``forkserver`` or ``spawn``.
    start_method: str = "fork"
    #: Scheduler driver the sentinel ticks (entry point in ``qframe.schedulers`` or
    #: ``module:Class``); empty means no scheduler, and the default ``default`` means none
    #: unless a distribution (qframe-scheduler) installs a driver of that name.
    scheduler: str = "default"
    #: Level of the ``qframe`` logger.
    log_level: str = "INFO"
    #: Allow-list of entry-point hook plugins to load; ``None`` loads all, ``()`` none.
    plugins: tuple[str, ...] | None = None
    #: Deny-list of entry-point hook plugins.
    disable_plugins: tuple[str, ...] = ()
    #: Importable modules registered as hook plugins in every cluster process.
    plugin_modules: tuple[str, ...] = ()
    #: An entry-point plugin that does not load stops start-up instead of being left out.
    strict_plugins: bool = False
    #: Notify the service manager named by ``NOTIFY_SOCKET`` (systemd's ``Type=notify``) of
    #: readiness, status, watchdog and stop; false never notifies, even when it is set.
    sd_notify: bool = True
    #: Per-cluster overrides, ``{name: {option: value}}``.
    clusters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The options the loaded plugins declared (not an option itself: :func:`load` fills it).
    declared_options: tuple[PluginOption, ...] = field(default=(), metadata={"internal": True})
    #: Every declared plugin option's value by flat name, defaults included.
    plugin_values: Mapping[str, Any] = field(default_factory=dict, metadata={"internal": True})

    def plugin(self, namespace: str) -> types.SimpleNamespace:
        """The options of plugin ``namespace`` as attributes: ``config.plugin("prometheus").port``.

        An option with an empty name (its flat name is the namespace) is the attribute ``value``.
        """
        options = [o for o in self.declared_options if o.namespace == namespace]
        if not options:
            raise ConfigError(f"no loaded plugin declares options under '{namespace}'")
        return types.SimpleNamespace(**{o.name or "value": self.plugin_values[o.key] for o in options})

    def plugin_settings(self, namespace: str, kind: Callable[..., T]) -> T:
        """Plugin ``namespace``'s options as ``kind(**options)`` (a dataclass named like them).

        A config built without the plugin's options (the plugin was not loaded when it was
        read) gives ``kind()``, the plugin's defaults.
        """
        try:
            return kind(**vars(self.plugin(namespace)))
        except ConfigError:
            return kind()

    def for_cluster(self, name: str) -> Config:
        """This config for the cluster (queue) ``name``, with its overrides applied."""
        if name == self.name:
            return self
        values = {**_values(self), **self.clusters.get(name, {}), "name": name}
        return build(values, "overrides", self.declared_options)

    def replace(self, **changes: Any) -> Config:
        """A validated copy with ``changes`` applied (core or plugin options, by flat name)."""
        return build({**_values(self), **changes}, "arguments", self.declared_options)


def _values(config: Config) -> dict[str, Any]:
    return {**{name: getattr(config, name) for name in FIELDS}, **config.plugin_values}


#: The core options: every field of :class:`Config` but the plugin bookkeeping.
FIELDS: dict[str, dataclasses.Field[Any]] = {
    f.name: f for f in dataclasses.fields(Config) if not f.metadata.get("internal")
}
_HINTS = typing.get_type_hints(Config)
_ALIASES = {"cluster_name": "name"}


#: The options that choose the plugins, read before the plugin manager exists.
SELECTION = ("plugins", "disable_plugins", "plugin_modules", "strict_plugins")


def load(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
) -> Config:
    """Read the file, the environment and ``overrides`` into a validated :class:`Config`.

    The plugin selection is converted first, to build the plugin manager and collect the
    options its plugins declare; then core and plugin options are validated together.
    The config file's directory goes on ``sys.path`` and anchors relative SQLite files
    (see :mod:`qframe.project`).
    """
    environ = os.environ if environ is None else environ
    found = _find_file(config_file, Path(cwd or os.getcwd()))
    file_values, source = _read_file(found)
    if found is not None:
        project.add_to_sys_path(found.directory)
    env_values = _read_env(environ)
    flag_values = {k: v for k, v in (overrides or {}).items() if v is not None}
    values, origins = _layer(file_values, source, env_values, flag_values, FIELDS)
    selection = build({key: values[key] for key in SELECTION if key in values}, origins)
    declared = collect_options(make_plugin_manager(selection), reserved=FIELDS)
    names = {*FIELDS, *(option.key for option in declared)}
    _warn_unknown_variables(environ, names, declared)
    values, origins = _layer(file_values, source, env_values, flag_values, names)
    if found is not None:
        values = project.anchor_default_database(values, found.directory)
    return build(values, origins, declared)


def _layer(
    file_values: Mapping[str, Any],
    source: str,
    env_values: Mapping[str, str],
    flag_values: Mapping[str, Any],
    names: Collection[str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """The layers merged (file < cluster table < environment < flags), and each value's origin.

    The cluster table comes from ``clusters`` as the layers set it (``QFRAME_CLUSTERS``
    replaces the file's tables).
    """
    env_values = {key: value for key, value in env_values.items() if key in names}
    name = flag_values.get("name") or env_values.get("name") or file_values.get("name")
    tables, tables_source = _cluster_tables(file_values, source, env_values, flag_values)
    table = tables.get(name) if name else None
    cluster_values = dict(table) if isinstance(table, Mapping) else {}
    merged = {**file_values, **cluster_values, **env_values, **flag_values}
    origins = {
        **dict.fromkeys(file_values, source),
        **dict.fromkeys(cluster_values, f"{tables_source} [clusters.{name}]"),
        **{key: env_name(key) for key in env_values},
        **dict.fromkeys(flag_values, "arguments"),
    }
    return merged, origins


def _cluster_tables(
    file_values: Mapping[str, Any], source: str, env_values: Mapping[str, Any], flag_values: Mapping[str, Any]
) -> tuple[Mapping[str, Any], str]:
    """The ``clusters`` tables of the highest layer that sets them, and that layer's name."""
    layers = ((flag_values, "arguments"), (env_values, env_name("clusters")), (file_values, source))
    for layer, where in layers:
        if "clusters" in layer:
            try:
                return _convert("clusters", layer["clusters"]), where
            except (TypeError, ValueError):
                return {}, where  # build() reports the bad value
    return {}, source


def build(
    values: Mapping[str, Any], origins: Mapping[str, str] | str, declared: Sequence[PluginOption] = ()
) -> Config:
    """Convert and validate ``values`` into a :class:`Config`, listing every problem.

    ``origins`` names where each value came from (one name for all, or one per option);
    ``declared`` are the plugin options that may appear besides the core's. Unknown
    options and wrong types are reported together, one line each, those inside every
    ``[clusters.<name>]`` table too; range checks follow.
    """

    def origin(key: str) -> str:
        return origins if isinstance(origins, str) else origins.get(key, "defaults")

    plugin_options = {option.key: option for option in declared}
    plugin_values = {option.key: option.default for option in declared}
    converted: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        try:
            if key in FIELDS:
                converted[key] = _convert(key, value)
            elif key in plugin_options:
                plugin_values[key] = convert(plugin_options[key].type, value)
            else:
                problems.append(_unknown(key, origin(key), declared))
        except (TypeError, ValueError) as exc:
            problems.append(f"option '{key}' {exc} (from {origin(key)})")
    if "clusters" in converted:
        problems.extend(_table_problems(converted["clusters"], origin("clusters"), declared))
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))  # a starting cluster's table is checked twice
    config = Config(**converted, declared_options=tuple(declared), plugin_values=plugin_values)
    problems = _check(config)
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def _table_problems(clusters: Mapping[str, Any], source: str, declared: Sequence[PluginOption]) -> list[str]:
    """Unknown options and wrong types in every cluster table, not only the starting cluster's."""
    plugin_options = {option.key: option for option in declared}
    problems = []
    for name, table in clusters.items():
        where = f"{source} [clusters.{name}]"
        if not isinstance(table, Mapping):
            problems.append(f"option 'clusters' must hold tables, got {name} = {table!r} (from {source})")
            continue
        for key, value in table.items():
            try:
                if key in FIELDS:
                    _convert(key, value)
                elif key in plugin_options:
                    convert(plugin_options[key].type, value)
                else:
                    problems.append(_unknown(key, where, declared))
            except (TypeError, ValueError) as exc:
                problems.append(f"option '{key}' {exc} (from {where})")
    return problems


def _unknown(key: str, source: str, declared: Sequence[PluginOption]) -> str:
    plugin = unloaded_plugin(key, {option.namespace for option in declared})
    close = closest(key, [*FIELDS, *(option.key for option in declared)])
    if plugin is not None:
        hint = f" (plugin '{plugin}' is installed but not loaded; see 'plugins' and 'disable_plugins')"
    else:
        hint = f" (did you mean '{close}'?)" if close else ""
    return f"unknown option '{key}' in {source}{hint}"


def _warn_unknown_variables(
    environ: Mapping[str, str], names: Collection[str], declared: Sequence[PluginOption]
) -> None:
    """One WARNING per process for each ``QFRAME_*`` variable that sets nothing, with the closest name."""
    namespaces = {option.namespace for option in declared}
    for variable in environ:
        if not variable.startswith(ENV_PREFIX) or variable.startswith(RESERVED_ENV_PREFIX):
            continue
        option = variable[len(ENV_PREFIX) :].lower()
        if _ALIASES.get(option, option) in names:
            continue
        plugin = unloaded_plugin(option, namespaces)
        close = closest(option, [*names, *_ALIASES])
        if plugin is not None:
            hint = f" (plugin '{plugin}' is installed but not loaded)"
        else:
            hint = f" (did you mean {env_name(close)}?)" if close else ""
        warn_once(f"environment variable {variable} sets no qframe option and is ignored{hint}")


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
    if config.start_method not in ("fork", "forkserver", "spawn"):
        problems.append(
            f"option 'start_method' must be 'fork', 'forkserver' or 'spawn', got {config.start_method!r}"
        )
    if config.serializer not in ("pickle", "json"):
        problems.append(f"option 'serializer' must be 'pickle' or 'json', got {config.serializer!r}")
    if config.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append(
            f"option 'log_level' must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {config.log_level!r}"
        )
    if config.startup_wait < 0:
        problems.append(f"option 'startup_wait' must be 0 or more, got {config.startup_wait}")
    if config.max_outage is not None and config.max_outage <= 0:
        problems.append(f"option 'max_outage' must be greater than 0, got {config.max_outage}")
    if config.backoff not in ("fixed", "exponential"):
        problems.append(f"option 'backoff' must be 'fixed' or 'exponential', got {config.backoff!r}")
    if config.retry_delay < 0 or config.max_backoff < 0:
        problems.append(
            f"options 'retry_delay' and 'max_backoff' must be 0 or more, got "
            f"{config.retry_delay} and {config.max_backoff}"
        )
    if config.save_limit_per not in (None, "group", "name", "func"):
        problems.append(
            "option 'save_limit_per' must be 'group', 'name' or 'func' (or unset), "
            f"got {config.save_limit_per!r}"
        )
    if config.cache_ttl <= 0:
        problems.append(f"option 'cache_ttl' must be greater than 0, got {config.cache_ttl}")
    if config.max_attempts < 0:
        problems.append(f"option 'max_attempts' must be 0 (no limit) or more, got {config.max_attempts}")
    return problems


def _find_file(config_file: str | Path | None, cwd: Path) -> project.ConfigFile | None:
    if config_file is None:
        return project.find(cwd)
    path = Path(config_file)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    return project.read(path)


def _read_file(found: project.ConfigFile | None) -> tuple[dict[str, Any], str]:
    """The file's settings, relative SQLite URLs made files beside it, and its name for messages."""
    if found is None:
        return {}, "defaults"
    values = {_ALIASES.get(k, k): v for k, v in found.table.items()}
    return project.anchor_urls(values, found.directory), found.label


def _read_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Every ``QFRAME_*`` variable by the option it would set (``load`` keeps the known ones)."""
    values: dict[str, str] = {}
    for key, raw in environ.items():
        if key.startswith(ENV_PREFIX):
            option = key[len(ENV_PREFIX) :].lower()
            values[_ALIASES.get(option, option)] = raw
    return values


def env_name(option: str) -> str:
    """The environment variable that sets ``option``."""
    return ENV_PREFIX + option.upper()


def _convert(key: str, value: Any) -> Any:
    """Coerce ``value`` (often a string from the environment) to the type of the core option ``key``."""
    if key == "plugins" and value == "":
        return ()  # the empty allow-list, while "none" means "load all"
    return convert(_HINTS[key], value)
