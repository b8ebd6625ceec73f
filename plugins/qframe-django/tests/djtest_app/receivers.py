"""Django Q2 style receivers that write one line per signal to ``$QFRAME_TEST_SIGNAL_LOG``."""

from __future__ import annotations

import os
from typing import Any

from qframe_django import signals


def _write(line: str) -> None:
    path = os.environ.get("QFRAME_TEST_SIGNAL_LOG")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


def on_pre_enqueue(sender: str, task: dict[str, Any], **kwargs: Any) -> None:
    """Log the task's name."""
    _write(f"pre_enqueue {sender} {task['name']}")


def on_pre_execute(sender: str, func: Any, task: dict[str, Any], **kwargs: Any) -> None:
    """Log the callable's name and the task's."""
    _write(f"pre_execute {sender} {getattr(func, '__name__', func)} {task['name']}")


def on_post_execute(sender: str, task: dict[str, Any], **kwargs: Any) -> None:
    """Log the task's name and result."""
    _write(f"post_execute {sender} {task['name']} {task['result']}")


def on_post_spawn(sender: str, proc_name: str, **kwargs: Any) -> None:
    """Log the new process's role."""
    _write(f"post_spawn {sender} {kwargs.get('role')}")


def connect() -> None:
    """Connect every receiver."""
    signals.pre_enqueue.connect(on_pre_enqueue)
    signals.pre_execute.connect(on_pre_execute)
    signals.post_execute.connect(on_post_execute)
    signals.post_spawn.connect(on_post_spawn)
