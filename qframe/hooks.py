"""The typed facade over the plugin manager: one method per hook, called through pluggy.

Call sites use ``Hooks(pm).task_succeeded(result)`` instead of hook names in strings, so a
typo is a type error and every hook has one place where it is called (as tox 4 does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from qframe.plugins import CORE_EXECUTION, CORE_PLUGINS

if TYPE_CHECKING:
    from qframe.cluster.cluster import Cluster
    from qframe.cluster.stat import Stat
    from qframe.config import Config
    from qframe.stores.base import DeadLetter
    from qframe.task import Task, TaskResult


class Hooks:
    """Calls each qframe hook of one plugin manager with typed arguments."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self._hook = pm.hook

    def implemented(self, *names: str) -> bool:
        """Whether a plugin (other than the core) implements any of these hook names."""
        return any(
            impl.plugin_name not in CORE_PLUGINS
            for name in names
            for impl in getattr(self._hook, f"qframe_{name}").get_hookimpls()
        )

    # -- configuration and lifecycle ---------------------------------------------------
    def add_options(self) -> list[Any]:
        """``qframe_add_options``: every declaration (``qframe.options`` collects them per plugin)."""
        return [option for declared in self._hook.qframe_add_options() if declared for option in declared]

    def configure(self, config: Config) -> None:
        """``qframe_configure``: before the process opens its first driver."""
        self._hook.qframe_configure(config=config)

    def cluster_starting(self, config: Config) -> None:
        """``qframe_cluster_starting``."""
        self._hook.qframe_cluster_starting(config=config)

    def cluster_started(self, cluster: Cluster) -> None:
        """``qframe_cluster_started``."""
        self._hook.qframe_cluster_started(cluster=cluster)

    def cluster_stopping(self, cluster: Cluster) -> None:
        """``qframe_cluster_stopping``."""
        self._hook.qframe_cluster_stopping(cluster=cluster)

    def cluster_stopped(self, cluster: Cluster) -> None:
        """``qframe_cluster_stopped``."""
        self._hook.qframe_cluster_stopped(cluster=cluster)

    def process_spawned(self, role: str, name: str, pid: int) -> None:
        """``qframe_process_spawned``."""
        self._hook.qframe_process_spawned(role=role, name=name, pid=pid)

    def process_boot(self, role: str, name: str, config: Config, cluster_id: str = "") -> None:
        """``qframe_process_boot``."""
        self._hook.qframe_process_boot(role=role, name=name, config=config, cluster_id=cluster_id)

    def sentinel_tick(self, stat: Stat, config: Config) -> None:
        """``qframe_sentinel_tick``."""
        self._hook.qframe_sentinel_tick(stat=stat, config=config)

    def collect_status(self, stat: Stat) -> list[dict[str, Any]]:
        """``qframe_collect_status``: the non-empty mappings the plugins returned."""
        values = self._hook.qframe_collect_status(stat=stat)
        return [value for value in values if isinstance(value, dict) and value]

    # -- producing -----------------------------------------------------------------------
    def pre_enqueue(self, task: Task) -> None:
        """``qframe_pre_enqueue``."""
        self._hook.qframe_pre_enqueue(task=task)

    def post_enqueue(self, task: Task, message_id: str) -> None:
        """``qframe_post_enqueue``."""
        self._hook.qframe_post_enqueue(task=task, message_id=message_id)

    # -- executing -----------------------------------------------------------------------
    # These three run for every task: with nothing but the core behind a hook, the call
    # skips pluggy's call frame (about 5 µs a task, measured in docs/performance.md).
    def pre_execute(self, task: Task, attempt: int) -> None:
        """``qframe_pre_execute`` (not called at all while no plugin implements it)."""
        hook = self._hook.qframe_pre_execute
        if hook.get_hookimpls():
            hook(task=task, attempt=attempt)

    def execute_task(self, task: Task, func: Callable[..., Any]) -> Any:
        """``qframe_execute_task``: run the task through every wrapper; return its value.

        With only the core's implementation registered, the function is called directly.
        """
        hook = self._hook.qframe_execute_task
        impls = hook.get_hookimpls()
        if len(impls) == 1 and impls[0].plugin_name == CORE_EXECUTION:
            return func(*task.args, **task.kwargs)
        return hook(task=task, func=func)

    def post_execute(self, task: Task, result: TaskResult) -> None:
        """``qframe_post_execute`` (not called at all while no plugin implements it)."""
        hook = self._hook.qframe_post_execute
        if hook.get_hookimpls():
            hook(task=task, result=result)

    # -- outcomes ------------------------------------------------------------------------
    def task_succeeded(self, result: TaskResult) -> None:
        """``qframe_task_succeeded``."""
        self._hook.qframe_task_succeeded(result=result)

    def task_failed(self, result: TaskResult) -> None:
        """``qframe_task_failed``."""
        self._hook.qframe_task_failed(result=result)

    def task_timed_out(self, result: TaskResult, timeout: float) -> None:
        """``qframe_task_timed_out``."""
        self._hook.qframe_task_timed_out(result=result, timeout=timeout)

    def task_retrying(self, result: TaskResult) -> None:
        """``qframe_task_retrying``."""
        self._hook.qframe_task_retrying(result=result)

    def task_dead_lettered(self, queue: str, letter: DeadLetter) -> None:
        """``qframe_task_dead_lettered``."""
        self._hook.qframe_task_dead_lettered(queue=queue, letter=letter)

    # -- command line --------------------------------------------------------------------
    def register_commands(self, cli: Any) -> None:
        """``qframe_register_commands``."""
        self._hook.qframe_register_commands(cli=cli)
