"""Hook plugin registered in every cluster process of a Django project (``plugin_modules``).

It keeps database connections healthy across forks and database restarts, and sends the
Django signals of :mod:`qframe_django.signals`:

- before the cluster forks anything, every connection is closed (a forked child must not
  share its parent's socket);
- a new process forgets the connections it inherited without closing them (closing would
  end the parent's session), then opens its own on first use;
- before and after each task, stale connections are closed (``close_old_connections``), so
  a task after a database restart reconnects instead of failing with "connection already
  closed".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qframe import hookimpl
from qframe_django import signals

if TYPE_CHECKING:
    from qframe.config import Config
    from qframe.task import Task, TaskResult

#: Connections inherited through a fork, kept referenced so that they are never finalized
#: (finalizing one would close the parent's session).
_inherited: list[Any] = []


def _django_ready() -> bool:
    from django.apps import apps

    return apps.ready


def task_dict(task: Task) -> dict[str, Any]:
    """The task as Django Q2's receivers expect it: a dict with ``id``, ``name``, ``func``, ..."""
    return {**task.to_dict(), "name": task.label}


@hookimpl
def qframe_cluster_starting(config: Config) -> None:
    """Close every connection of the starting process before it forks the cluster."""
    if _django_ready():
        from django.db import connections

        connections.close_all()


@hookimpl
def qframe_process_boot(role: str, name: str, config: Config) -> None:
    """Forget inherited connections in a new process (fork), set Django up in a spawned one."""
    from qframe_django.db import ensure_django

    ensure_django()
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited.append(connection.connection)
            connection.connection = None


@hookimpl
def qframe_process_spawned(role: str, name: str, pid: int) -> None:
    """Django Q2's ``post_spawn`` for every new worker (and the other processes)."""
    signals.post_spawn.send(sender=signals.SENDER, proc_name=name, role=role, pid=pid)


@hookimpl
def qframe_pre_enqueue(task: Task) -> None:
    """Django Q2's ``pre_enqueue``."""
    if _django_ready():
        signals.pre_enqueue.send(sender=signals.SENDER, task=task_dict(task))


@hookimpl
def qframe_pre_execute(task: Task, attempt: int) -> None:
    """Close stale connections, then send ``pre_execute``."""
    from django.db import close_old_connections

    close_old_connections()
    from qframe.task import resolve

    try:
        func: Any = resolve(task.func)
    except Exception:
        func = task.func
    signals.pre_execute.send(sender=signals.SENDER, func=func, task=task_dict(task), attempt=attempt)


@hookimpl
def qframe_post_execute(task: Task, result: TaskResult) -> None:
    """Send ``post_execute`` with the result, then close stale connections."""
    from django.db import close_old_connections

    try:
        record = {**task_dict(task), "result": result.result, "success": result.success}
        signals.post_execute.send(sender=signals.SENDER, task=record)
    finally:
        close_old_connections()
