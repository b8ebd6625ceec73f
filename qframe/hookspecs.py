"""Every pluggy hook of qframe: the extension contract for plugins.

A plugin is a module (or object) with functions decorated by ``qframe.hookimpl`` whose
names are hook names below; it may accept only the arguments it needs. Plugins are found
through the ``qframe`` entry point group, or listed in the ``plugin_modules`` option.

Event hooks are called through :func:`qframe.plugins.notify`: a plugin that raises is
logged and skipped, and the cluster carries on. Each docstring says which process the
hook runs in ("Runs in").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from qframe.cluster.cluster import Cluster
    from qframe.cluster.stat import Stat
    from qframe.config import Config
    from qframe.task import Task, TaskResult

#: Marks hook specifications (used by this module only).
hookspec = pluggy.HookspecMarker("qframe")
#: Marks hook implementations; plugins import it as ``from qframe import hookimpl``.
hookimpl = pluggy.HookimplMarker("qframe")


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
def qframe_process_boot(role: str, name: str, config: Config) -> None:
    """A cluster process starts, before it takes any task (set up connections here).

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


# -- command line ---------------------------------------------------------------------


@hookspec
def qframe_register_commands(cli: click.Group) -> None:
    """Add sub-commands to the ``qframe`` command line with ``cli.command()``.

    **Runs in:** the ``qframe`` command-line process, before it parses arguments.
    """
