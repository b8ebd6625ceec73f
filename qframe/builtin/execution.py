"""The core's own implementation of ``qframe_execute_task``: call the task function."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qframe.hookspecs import hookimpl

if TYPE_CHECKING:
    from qframe.task import Task


@hookimpl(trylast=True)
def qframe_execute_task(task: Task, func: Callable[..., Any]) -> Any:
    """Call ``func`` with the task's arguments (the innermost implementation)."""
    return func(*task.args, **task.kwargs)
