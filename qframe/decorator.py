"""The ``@task`` decorator: ``fn.enqueue(...)`` as a shorthand for ``async_task(fn, ...)``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from qframe.client import default_client

P = ParamSpec("P")
R = TypeVar("R")


class TaskFunction(Generic[P, R]):
    """A function that still runs when called, and enqueues itself with :meth:`enqueue`."""

    def __init__(self, func: Callable[P, R], options: dict[str, Any]) -> None:
        functools.update_wrapper(self, func)
        self.func = func
        self.options = options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now."""
        return self.func(*args, **kwargs)

    def enqueue(self, *args: Any, **kwargs: Any) -> str:
        """Enqueue a run with the default client; keyword options as in ``async_task``."""
        return default_client().async_task(self.func, *args, **{**self.options, **kwargs})


def task(**options: Any) -> Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """Decorate a module-level function so it gains ``.enqueue()``; ``options`` are defaults."""

    def decorate(func: Callable[P, R]) -> TaskFunction[P, R]:
        return TaskFunction(func, options)

    return decorate
