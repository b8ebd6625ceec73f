"""A hook plugin for the cluster tests: records outcome hooks in $QFRAME_TEST_LOG."""

from __future__ import annotations

from qframe import hookimpl
from qframe.task import TaskResult
from qframe.testing.tasks import record


@hookimpl
def qframe_task_timed_out(result: TaskResult, timeout: float) -> None:
    record("hook-timed-out", result.id, timeout)


@hookimpl
def qframe_task_failed(result: TaskResult) -> None:
    record("hook-failed", result.id)


@hookimpl
def qframe_task_succeeded(result: TaskResult) -> None:
    record("hook-succeeded", result.id)
