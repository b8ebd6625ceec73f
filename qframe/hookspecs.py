"""Every pluggy hook of qframe: the extension contract for plugins.

A plugin is a module (or object) with functions decorated by ``qframe.hookimpl`` whose
names are hook names below; it may accept only the arguments it needs. Plugins are found
through the ``qframe`` entry point group, or listed in the ``plugin_modules`` option.

Hooks are called through pluggy (``wrapper=True`` implementations and pluggy's tracing
work as documented there), from the typed facade :class:`qframe.hooks.Hooks`. A plain
implementation that raises is logged and skipped, and the cluster carries on; one that
raises :class:`qframe.errors.PluginError` on purpose stops the process that called it with
that one line. Each docstring says which process the hook runs in ("Runs in").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from qframe.cluster.cluster import Cluster
    from qframe.cluster.stat import Stat
    from qframe.config import Config
    from qframe.options import PluginOption
    from qframe.stores.base import DeadLetter
    from qframe.task import Task, TaskResult

#: Marks hook specifications (used by this module only).
hookspec = pluggy.HookspecMarker("qframe")
#: Marks hook implementations; plugins import it as ``from qframe import hookimpl``.
hookimpl = pluggy.HookimplMarker("qframe")


# -- configuration --------------------------------------------------------------------


@hookspec
def qframe_add_options() -> list[PluginOption] | None:
    """Return the plugin's own options (:class:`qframe.options.PluginOption`).

    They are layered and validated like the core's; read them as
    ``config.plugin(namespace).name``. Declare only: no side effects. **Runs in:** every
    process that loads the settings (``qframe.load_config``: the ``qframe`` command,
    producers, the cluster's main process); cluster processes get the values in ``config``.
    """


@hookspec
def qframe_configure(config: Config) -> None:
    """A process is about to open its first broker or store (call ``django.setup()`` here).

    **Runs in:** every process that opens drivers, once, before any driver is opened: the
    cluster's main process, each cluster process (sentinel, pusher, monitor, workers, under
    every start method) and each producer's first :class:`~qframe.client.Client`.
    """


# -- cluster lifecycle ----------------------------------------------------------------


@hookspec
def qframe_cluster_starting(config: Config) -> None:
    """The cluster is about to start its sentinel.

    **Runs in:** the cluster's main process.
    """


@hookspec
def qframe_cluster_started(cluster: Cluster) -> None:
    """Every cluster process is up and the cluster is running.

    **Runs in:** the cluster's main process.
    """


@hookspec
def qframe_cluster_stopping(cluster: Cluster) -> None:
    """The stop procedure begins (SIGTERM, SIGINT or ``Cluster.stop()``).

    **Runs in:** the cluster's main process.
    """


@hookspec
def qframe_cluster_stopped(cluster: Cluster) -> None:
    """Every cluster process has exited.

    **Runs in:** the cluster's main process.
    """


@hookspec
def qframe_process_spawned(role: str, name: str, pid: int) -> None:
    """The sentinel started a child process (``role`` is worker, pusher or monitor).

    Also called for replacements of dead, timed-out or recycled processes
    (Django Q2's ``post_spawn``). **Runs in:** the sentinel.
    """


@hookspec
def qframe_process_boot(role: str, name: str, config: Config, cluster_id: str) -> None:
    """A cluster process starts, before it takes any task (set up connections here).

    ``cluster_id`` is the cluster's id (32 hex digits), the same in all its processes.
    **Runs in:** the new process itself (sentinel, pusher, monitor or worker).
    """


@hookspec
def qframe_sentinel_tick(stat: Stat, config: Config) -> None:
    """One round of the sentinel's guard loop, every ``guard_cycle`` seconds.

    The configured scheduler's tick runs right after it. **Runs in:** the sentinel.
    """


@hookspec
def qframe_collect_status(stat: Stat) -> dict[str, Any] | None:
    """Return extra fields for the cluster's published status (shown by ``qframe info``).

    **Runs in:** the sentinel, once per guard cycle.
    """


# -- producing ------------------------------------------------------------------------


@hookspec
def qframe_pre_enqueue(task: Task) -> None:
    """A task is about to be signed and sent to the broker; plugins may change it.

    **Runs in:** the producer (the process calling ``async_task``).
    """


@hookspec
def qframe_post_enqueue(task: Task, message_id: str) -> None:
    """The broker stored the task under ``message_id``.

    **Runs in:** the producer.
    """


# -- executing ------------------------------------------------------------------------


@hookspec
def qframe_pre_execute(task: Task, attempt: int) -> None:
    """A worker is about to run the task (``attempt`` counts deliveries, from 1).

    **Runs in:** the worker.
    """


@hookspec
def qframe_post_execute(task: Task, result: TaskResult) -> None:
    """A worker ran the task (successfully or not); the result is not saved yet.

    **Runs in:** the worker.
    """


@hookspec(firstresult=True)
def qframe_execute_task(task: Task, func: Callable[..., Any]) -> Any:
    """Call the task function and return its value; raise what it raises.

    Implement it with ``@hookimpl(wrapper=True)`` to run code around every task (a
    tracing span, a database transaction, an event loop for awaitables)::

        @hookimpl(wrapper=True)
        def qframe_execute_task(task):
            with tracer.start_as_current_span(task.func):
                return (yield)

    The core's own implementation (the innermost) calls ``func(*task.args,
    **task.kwargs)``. A plain implementation that returns a value other than None
    replaces the call. **Runs in:** the worker, once per run of a task.
    """


# -- outcomes (after the result is saved and the delivery settled) ----------------------


@hookspec
def qframe_task_succeeded(result: TaskResult) -> None:
    """A task's successful result was saved.

    **Runs in:** the monitor.
    """


@hookspec
def qframe_task_failed(result: TaskResult) -> None:
    """A task failed for good: it raised, timed out, or ran out of attempts.

    **Runs in:** the monitor.
    """


@hookspec
def qframe_task_timed_out(result: TaskResult, timeout: float) -> None:
    """A task ran past its timeout; its worker was killed and replaced.

    Called once per timed-out run, before ``qframe_task_failed``. **Runs in:** the monitor.
    """


@hookspec
def qframe_task_retrying(result: TaskResult) -> None:
    """A failed task goes back to the broker for another attempt (``ack_failure=False``).

    **Runs in:** the monitor.
    """


@hookspec
def qframe_task_dead_lettered(queue: str, letter: DeadLetter) -> None:
    """A message of ``queue`` was moved to the dead letters (past max_attempts, or a bad payload).

    Called after the letter was kept (on the broker, or in the store for brokers without
    dead letters of their own). A task past max_attempts also gets its failure result
    and ``qframe_task_failed``. **Runs in:** the monitor (tasks past max_attempts) and the
    pusher (payloads that fail their check).
    """


# -- command line ---------------------------------------------------------------------


@hookspec
def qframe_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``qframe`` command line with ``cli.command()``.

    **Runs in:** the ``qframe`` command-line process, before it parses arguments.
    """
