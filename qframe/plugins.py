"""The plugin manager: hook plugins from entry points, the allow/deny lists, isolation.

Hooks are called through pluggy itself (see :class:`qframe.hooks.Hooks`), so wrappers,
``tryfirst``/``trylast`` and pluggy's tracing work as pluggy documents. What qframe adds is
isolation: a plain implementation that raises is logged and skipped, so one broken plugin
never takes a cluster down, unless it raises :class:`~qframe.errors.PluginError` on purpose.
A plugin that cannot be registered at all (its entry point does not import, or a function
does not match a hook) is left out with one WARNING line, or stops start-up under
``strict_plugins``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pluggy

from qframe import hookspecs
from qframe.builtin import execution, sdnotify
from qframe.errors import ConfigError, PluginError
from qframe.typos import closest, warn_once

if TYPE_CHECKING:  # qframe.config builds a plugin manager while it loads, so it imports this module
    from qframe.config import Config

log = logging.getLogger("qframe")

ENTRY_POINT_GROUP = "qframe"

#: The core's own hook plugins, registered in every plugin manager and left out of listings.
#: The core's plugin that calls the task function (the innermost ``qframe_execute_task``).
CORE_EXECUTION = "qframe.execution"
CORE_PLUGINS = frozenset({CORE_EXECUTION, "qframe.sdnotify"})

#: Hooks whose plain implementations' errors must reach the caller: the task's own error,
#: and a bad option declaration (which stops loading the settings).
PROPAGATING_HOOKS = frozenset({"qframe_execute_task", "qframe_add_options"})


class PluginManager(pluggy.PluginManager):
    """pluggy's plugin manager, isolating each implementation as it is registered."""

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        #: Plugins left out because they could not be registered: name -> the problem, one line.
        self.broken: dict[str, str] = {}

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
    pm.register(execution, name=CORE_EXECUTION)
    for name in config.disable_plugins:
        pm.set_blocked(name)
    pm.register(sdnotify.ServiceNotifier(), name="qframe.sdnotify")  # idle unless NOTIFY_SOCKET is set
    origins = _load_entry_points(pm, config.plugins, config.strict_plugins)
    for module_name in config.plugin_modules:
        if pm.is_blocked(module_name) or pm.has_plugin(module_name):
            continue
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(f"plugin module '{module_name}' does not import: {exc}") from exc
        origins[module_name] = f"plugin module '{module_name}'"
        _register(pm, module, module_name, origins[module_name], config.strict_plugins)
    for name, problem in _unknown_hooks(pm).items():
        pm.unregister(name=name)
        _leave_out(pm, name, f"{origins.get(name, name)}: {problem}", config.strict_plugins)
    pm.check_pending()
    return pm


def _load_entry_points(pm: PluginManager, allowed: tuple[str, ...] | None, strict: bool) -> dict[str, str]:
    """Register the ``qframe`` entry points ``allowed`` (None: all), each on its own.

    pluggy's ``load_setuptools_entrypoints`` stops at the first that fails to import; here
    that one is left out and the others load. Returns each registered plugin's origin.
    """
    origins: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        for entry_point in dist.entry_points:
            name = entry_point.name
            if (
                entry_point.group != ENTRY_POINT_GROUP
                or (allowed is not None and name not in allowed)
                or pm.has_plugin(name)
                or pm.is_blocked(name)
                or name in pm.broken
            ):
                continue
            origin = (
                f"plugin '{name}' (entry point '{name} = {entry_point.value}' of distribution "
                f"{dist.metadata['Name']} {dist.version})"
            )
            try:
                plugin = entry_point.load()
            except Exception as exc:
                _leave_out(pm, name, f"{origin} does not import: {type(exc).__name__}: {exc}", strict)
                continue
            if _register(pm, plugin, name, origin, strict):
                origins[name] = origin
    return origins


def _register(pm: PluginManager, plugin: object, name: str, origin: str, strict: bool) -> bool:
    """Register ``plugin``, or leave it out when pluggy refuses one of its functions."""
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)  # pluggy keeps the functions it registered before the bad one
        lines = str(exc).splitlines()
        _leave_out(pm, name, f"{origin}: {'; '.join(lines[1:]) or lines[0]}", strict)
        return False
    return True


def _unknown_hooks(pm: PluginManager) -> dict[str, str]:
    """Plugins with a function named like a hook that does not exist: name -> the problem."""
    callers = {name: caller for name, caller in vars(pm.hook).items() if not name.startswith("_")}
    known = [name for name, caller in callers.items() if caller.has_spec()]
    problems: dict[str, str] = {}
    for hook, caller in callers.items():
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook or impl.plugin_name in problems:
                continue
            function = f"{impl.function.__module__}.{impl.function.__qualname__}"
            what = "is not" if hook == impl.function.__name__ else f"implements '{hook}', which is not"
            guess = closest(hook, known)
            hint = f" (did you mean {guess}?)" if guess else ""
            problems[impl.plugin_name] = f"function {function} {what} a qframe hook{hint}"
    return problems


def _leave_out(pm: PluginManager, name: str, problem: str, strict: bool) -> None:
    """Record a plugin that is not registered; WARN once per process, or stop under ``strict``."""
    if strict:
        raise PluginError(f"{problem} (strict_plugins is on)")
    pm.broken[name] = problem
    warn_once(f"{problem}; carrying on without it")


def list_plugins(pm: pluggy.PluginManager) -> list[tuple[str, list[str]]]:
    """Registered plugins with the hooks each implements (the core's own left out)."""
    listing = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None or name in CORE_PLUGINS:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        listing.append((name, hooks))
    return listing
