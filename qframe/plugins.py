"""The plugin manager: hook plugins from entry points, the allow/deny lists, safe calls."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

import pluggy

from qframe import hookspecs
from qframe.errors import ConfigError

if TYPE_CHECKING:  # qframe.config builds a plugin manager while it loads, so it imports this module
    from qframe.config import Config

log = logging.getLogger("qframe")

ENTRY_POINT_GROUP = "qframe"


def make_plugin_manager(config: Config) -> pluggy.PluginManager:
    """A plugin manager for one cluster or producer, loaded as ``config`` says.

    ``config.plugins`` is an allow-list of entry-point names (``None`` loads all, an empty
    tuple none), ``config.disable_plugins`` a deny-list, and ``config.plugin_modules``
    importable modules registered in addition.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in config.disable_plugins:
        pm.set_blocked(name)
    if config.plugins is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for name in config.plugins:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
    for module_name in config.plugin_modules:
        if pm.is_blocked(module_name) or pm.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(f"plugin module '{module_name}' does not import: {exc}") from exc
        pm.register(module, name=module_name)
    pm.check_pending()
    return pm


def notify(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Call every implementation of an event hook; log and skip the ones that raise."""
    caller = getattr(pm.hook, hook)
    results = []
    for impl in reversed(caller.get_hookimpls()):
        try:
            value = impl.function(*(kwargs[name] for name in impl.argnames))
        except Exception:
            log.exception("plugin %s failed in %s; carrying on", impl.plugin_name, hook)
            continue
        if value is not None:
            results.append(value)
    return results


def has_impls(pm: pluggy.PluginManager, hook: str) -> bool:
    """Whether any plugin implements ``hook`` (to skip work nobody listens to)."""
    return bool(getattr(pm.hook, hook).get_hookimpls())


def list_plugins(pm: pluggy.PluginManager) -> list[tuple[str, list[str]]]:
    """Registered plugins with the hooks each implements."""
    listing = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        listing.append((name, hooks))
    return listing
