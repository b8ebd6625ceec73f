"""The plugin manager: hook plugins from entry points, the allow/deny lists, isolation.

Hooks are called through pluggy itself (see :class:`qframe.hooks.Hooks`), so wrappers,
``tryfirst``/``trylast`` and pluggy's tracing work as pluggy documents. What qframe adds is
isolation: a plain implementation that raises is logged and skipped, so one broken plugin
never takes a cluster down, unless it raises :class:`~qframe.errors.PluginError` on purpose.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pluggy

from qframe import hookspecs
from qframe.builtin import execution
from qframe.errors import ConfigError, PluginError

if TYPE_CHECKING:  # qframe.config builds a plugin manager while it loads, so it imports this module
    from qframe.config import Config

log = logging.getLogger("qframe")

ENTRY_POINT_GROUP = "qframe"

#: Hooks whose plain implementations' errors must reach the caller: the task's own error,
#: and a bad option declaration (which stops loading the settings).
PROPAGATING_HOOKS = frozenset({"qframe_execute_task", "qframe_add_options"})


class PluginManager(pluggy.PluginManager):
    """pluggy's plugin manager, isolating each implementation as it is registered."""

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` as pluggy does, then isolate each of its implementations."""
        registered = super().register(plugin, name)
        if registered is not None:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin:
                        isolate(impl, caller.name)
        return registered


def isolate(impl: pluggy.HookImpl, hook: str) -> None:
    """Make ``impl`` log and skip its own failures instead of raising them."""
    if impl.hookwrapper:  # old-style wrappers get a Result object; pluggy runs them as written
        return
    # HookImpl.function is typed Final, but pluggy reads it at each call: replacing it keeps
    # pluggy's own call loop (wrappers, ordering, tracing) and adds isolation.
    if impl.wrapper:
        impl.function = _isolated_wrapper(impl.function, impl.plugin_name, hook)  # type: ignore[misc,arg-type]
    elif hook not in PROPAGATING_HOOKS:
        impl.function = _isolated_call(impl.function, impl.plugin_name, hook)  # type: ignore[misc]


def _failed(plugin: str, hook: str) -> None:
    log.exception("plugin %s failed in %s; carrying on without it", plugin, hook)


def _isolated_call(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except PluginError:
            raise
        except Exception:
            _failed(plugin, hook)
            return None

    return call


def _isolated_wrapper(
    function: Callable[..., Generator[None, Any, Any]], plugin: str, hook: str
) -> Callable[..., Generator[None, Any, Any]]:
    """A wrapper whose own errors, before or after its ``yield``, are logged and skipped.

    What the wrapped call raises still reaches the wrapper, and what the wrapper raises or
    returns in answer is its decision: that is how a transaction wrapper rolls back.
    """

    @functools.wraps(function)
    def wrapper(*args: Any) -> Generator[None, Any, Any]:
        inner = function(*args)
        try:
            next(inner)
        except PluginError:
            raise
        except Exception:  # StopIteration too: a wrapper that never yields
            _failed(plugin, hook)
            return (yield)
        try:
            result = yield
        except BaseException as exc:
            try:
                inner.throw(exc)
            except StopIteration as stop:
                return stop.value
            raise RuntimeError(f"plugin {plugin} yielded twice in {hook}") from exc
        try:
            inner.send(result)
        except StopIteration as stop:
            return stop.value
        except PluginError:
            raise
        except Exception:
            _failed(plugin, hook)
            return result
        inner.close()
        log.error("plugin %s yielded twice in %s; its second part is skipped", plugin, hook)
        return result

    return wrapper


def make_plugin_manager(config: Config) -> PluginManager:
    """A plugin manager for one cluster process or producer, loaded as ``config`` says.

    ``config.plugins`` is an allow-list of entry-point names (``None`` loads all, an empty
    tuple none), ``config.disable_plugins`` a deny-list, and ``config.plugin_modules``
    importable modules registered in addition. Every process builds its own from the
    config alone, so plugins reach each cluster process under every start method.
    """
    pm = PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    pm.register(execution, name="qframe.execution")
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


def list_plugins(pm: pluggy.PluginManager) -> list[tuple[str, list[str]]]:
    """Registered plugins with the hooks each implements (the core's own left out)."""
    listing = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None or name == "qframe.execution":
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        listing.append((name, hooks))
    return listing
