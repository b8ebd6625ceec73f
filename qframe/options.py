"""Options that plugins declare through ``qframe_add_options``, collected and checked.

A plugin option's flat name is ``<namespace>_<name>`` (``prometheus_port``), or the
namespace alone when the name is empty (a plugin's one main option: ``threads``): that is
its key in a config file and in ``Config.replace``, and ``QFRAME_PROMETHEUS_PORT`` is
its environment variable. :func:`qframe.config.load` converts and layers the values like
the core's and keeps them in the :class:`~qframe.config.Config`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pluggy

from qframe.convert import SUPPORTED, convert, kind
from qframe.errors import ConfigError
from qframe.plugins import ENTRY_POINT_GROUP

_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class PluginOption:
    """One option of a plugin: ``PluginOption("prometheus", "port", int | None, None, "Port of /metrics.")``.

    ``namespace`` is the plugin's prefix, by convention its entry point name; ``type`` is
    one of the option types of :mod:`qframe.convert`. Values and defaults must pickle:
    they travel to every cluster process inside the ``Config``.
    """

    #: The plugin's prefix of the flat name, e.g. ``prometheus``.
    namespace: str
    #: The option's name within the namespace, e.g. ``port``; empty: the flat name is the namespace.
    name: str
    #: ``int``, ``float``, ``bool``, ``str``, ``tuple[str, ...]``, ``Mapping[str, Any]``, or one ``| None``.
    type: Any
    #: The value when no layer sets it.
    default: Any
    #: One sentence for ``qframe plugins`` and the option table.
    help: str

    @property
    def key(self) -> str:
        """The flat name: ``<namespace>_<name>``, or ``<namespace>`` when the name is empty."""
        return f"{self.namespace}_{self.name}" if self.name else self.namespace


def collect_options(pm: pluggy.PluginManager, reserved: Collection[str]) -> tuple[PluginOption, ...]:
    """Every option the plugins of ``pm`` declare, with defaults converted to their types.

    A malformed declaration, or a flat name that is in ``reserved`` (the core options) or
    declared by two plugins, is a :class:`ConfigError` with one line per problem.
    """
    owners: dict[str, str] = {}
    declared: list[PluginOption] = []
    problems: list[str] = []
    for impl in pm.hook.qframe_add_options.get_hookimpls():
        plugin = impl.plugin_name
        others = [p for p in pm.get_plugins() if p is not impl.plugin]
        try:  # one plugin at a time, still through pluggy, so that each option has a known owner
            results = pm.subset_hook_caller("qframe_add_options", remove_plugins=others)()
            options = [option for result in results for option in result]
        except Exception as exc:
            raise ConfigError(
                f"plugin '{plugin}' failed to declare its options: {type(exc).__name__}: {exc}"
            ) from exc
        for option in options:
            problem = _problem(option, plugin)
            if problem is None and option.key in reserved:
                problem = f"plugin '{plugin}' declares option '{option.key}', which is a core option"
            if problem is None and option.key in owners:
                first = owners[option.key]
                problem = f"option '{option.key}' is declared by both plugin '{first}' and plugin '{plugin}'"
            if problem is not None:
                problems.append(problem)
                continue
            owners[option.key] = plugin
            declared.append(dataclasses.replace(option, default=convert(option.type, option.default)))
    if problems:
        raise ConfigError("\n".join(problems))
    return tuple(declared)


def _problem(option: Any, plugin: str) -> str | None:
    if not isinstance(option, PluginOption):
        return f"plugin '{plugin}' declared {option!r} as an option; expected a qframe.PluginOption"
    if not (
        _IDENTIFIER.fullmatch(option.namespace) and (not option.name or _IDENTIFIER.fullmatch(option.name))
    ):
        return (
            f"plugin '{plugin}' declares an option with namespace {option.namespace!r} and name "
            f"{option.name!r}; both must be lower-case identifiers (the name may be empty)"
        )
    if kind(option.type) is None:
        return f"plugin option '{option.key}' of '{plugin}' has type {option.type!r}; use {SUPPORTED}"
    try:
        convert(option.type, option.default)
    except (TypeError, ValueError) as exc:
        return f"plugin option '{option.key}' of '{plugin}' has a default that {exc}"
    return None


def unloaded_plugin(key: str, namespaces: Collection[str]) -> str | None:
    """The installed entry-point plugin whose name prefixes ``key`` but which declared nothing."""
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if key.startswith(f"{entry_point.name}_") and entry_point.name not in namespaces:
            return entry_point.name
    return None
