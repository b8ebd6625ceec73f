"""A hook plugin that raises in every event it implements."""

from __future__ import annotations

from qframe import hookimpl
from qframe.task import TaskResult


@hookimpl
def qframe_process_boot(role: str) -> None:
    raise RuntimeError(f"broken plugin cannot boot {role}")


@hookimpl
def qframe_task_succeeded(result: TaskResult) -> None:
    raise RuntimeError("broken plugin cannot count successes")
