"""A hook plugin (listed in ``plugin_modules``) that records every hook call, from any process.

Each call appends ``{"hook", "pid", ...}`` as a JSON line to $QFRAME_TEST_HOOKS_LOG.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from qframe import hookimpl


def write(hook: str, **fields: Any) -> None:
    """Append one JSON line for ``hook`` to $QFRAME_TEST_HOOKS_LOG."""
    line = json.dumps({"hook": hook, "pid": os.getpid(), **fields}, default=str) + "\n"
    fd = os.open(os.environ["QFRAME_TEST_HOOKS_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)


@hookimpl
def qframe_cluster_starting(config: Any) -> None:
    write("qframe_cluster_starting", name=config.name)


@hookimpl
def qframe_cluster_started(cluster: Any) -> None:
    write("qframe_cluster_started", cluster_id=cluster.cluster_id)


@hookimpl
def qframe_cluster_stopping(cluster: Any) -> None:
    write("qframe_cluster_stopping")


@hookimpl
def qframe_cluster_stopped(cluster: Any) -> None:
    write("qframe_cluster_stopped", has_stopped=cluster.has_stopped)


@hookimpl
def qframe_process_spawned(role: str, name: str, pid: int) -> None:
    write("qframe_process_spawned", role=role, child=pid)


@hookimpl
def qframe_process_boot(role: str, name: str, cluster_id: str) -> None:
    write("qframe_process_boot", role=role, cluster_id=cluster_id)


@hookimpl
def qframe_sentinel_tick(stat: Any) -> None:
    write("qframe_sentinel_tick", status=stat.status)


@hookimpl
def qframe_collect_status(stat: Any) -> dict[str, Any]:
    write("qframe_collect_status")
    return {"recorder": "on"}


@hookimpl
def qframe_pre_enqueue(task: Any) -> None:
    task.group = task.group or "tagged-by-plugin"
    task.headers["recorder-origin"] = f"pid {os.getpid()}"
    write("qframe_pre_enqueue", task=task.id)


@hookimpl
def qframe_post_enqueue(task: Any, message_id: str) -> None:
    write("qframe_post_enqueue", task=task.id, message_id=message_id)


@hookimpl
def qframe_pre_execute(task: Any, attempt: int) -> None:
    write("qframe_pre_execute", task=task.id, attempt=attempt, headers=task.headers)


@hookimpl
def qframe_post_execute(task: Any, result: Any) -> None:
    write("qframe_post_execute", task=task.id, success=result.success)


@hookimpl
def qframe_task_succeeded(result: Any) -> None:
    write("qframe_task_succeeded", task=result.id)


@hookimpl
def qframe_task_failed(result: Any) -> None:
    write("qframe_task_failed", task=result.id, reason=result.result)


@hookimpl
def qframe_task_timed_out(result: Any, timeout: float) -> None:
    write("qframe_task_timed_out", task=result.id, timeout=timeout)


@hookimpl
def qframe_task_retrying(result: Any) -> None:
    write("qframe_task_retrying", task=result.id, attempts=result.attempts)


@hookimpl
def qframe_register_commands(cli: click.Group) -> None:
    @cli.command("hello-plugin")
    def hello() -> None:
        click.echo("hello from a plugin")


@hookimpl
def qframe_configure(config: Any) -> None:
    write("qframe_configure", name=config.name)


@hookimpl(wrapper=True)
def qframe_execute_task(task: Any) -> Any:
    write("qframe_execute_task", task=task.id)
    return (yield)


@hookimpl(wrapper=True, specname="qframe_collect_status")
def wrap_collect_status(stat: Any) -> Any:
    values = yield
    return [*values, {"wrapped": True}]


@hookimpl
def qframe_task_dead_lettered(queue: str, letter: Any) -> None:
    write(
        "qframe_task_dead_lettered",
        queue=queue,
        message_id=letter.message_id,
        reason=letter.reason,
        attempts=letter.attempts,
        last_error=letter.last_error,
    )
