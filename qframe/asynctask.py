"""``AsyncTask``: a task built as an object, its options set as attributes, then run (Django Q2's API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qframe.client import Client, default_client
from qframe.task import TaskResult


class _Option:
    """An attribute of :class:`AsyncTask` that reads and sets one ``async_task`` option."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, task: AsyncTask | None, owner: type) -> Any:
        return self if task is None else task.kwargs.get(self.name)

    def __set__(self, task: AsyncTask, value: Any) -> None:
        task.kwargs[self.name] = value


class AsyncTask:
    """``func(*args, **kwargs)`` as an object: ``t = AsyncTask(f, 1, group="g"); t.timeout = 30; t.run()``.

    ``kwargs`` holds the task's keywords and its ``async_task`` options alike; the option
    attributes (``group``, ``hook``, ``timeout``, ...) read and set them. ``client`` (a
    :class:`~qframe.client.Client`; the default client when None) is where it runs.
    """

    group = _Option()
    hook = _Option()
    timeout = _Option()
    task_name = _Option()
    cluster = _Option()
    save = _Option()
    sync = _Option()
    ack_failure = _Option()
    max_attempts = _Option()
    countdown = _Option()
    eta = _Option()
    retry_on = _Option()
    cached = _Option()

    def __init__(
        self, func: str | Callable[..., Any], *args: Any, client: Client | None = None, **kwargs: Any
    ):
        self.func = func
        self.args = args
        self.kwargs: dict[str, Any] = kwargs
        self.client = client
        #: The task's id once :meth:`run` enqueued it (None before).
        self.id: str | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`run` has enqueued (or, with ``sync``, run) the task."""
        return self.id is not None

    def _client(self) -> Client:
        return self.client or default_client()

    def run(self) -> str:
        """Enqueue the task (run it here with ``sync=True``) and return its id."""
        self.id = self._client().async_task(self.func, *self.args, **self.kwargs)
        return self.id

    def result(self, wait: float = 0.0) -> Any:
        """The task's return value (its error text if it failed), waiting up to ``wait`` s, or None."""
        return None if self.id is None else self._client().result(self.id, wait=wait)

    def fetch(self, wait: float = 0.0) -> TaskResult | None:
        """The task's result record, waiting up to ``wait`` s; None if not there."""
        return None if self.id is None else self._client().fetch(self.id, wait=wait)

    def result_group(self, failures: bool = False, wait: float = 0.0, count: int | None = None) -> list[Any]:
        """The return values of the task's group (see :meth:`Client.result_group`); [] without a group."""
        group = self.group
        return [] if group is None else self._client().result_group(group, failures, wait, count)

    def fetch_group(
        self, failures: bool = True, wait: float = 0.0, count: int | None = None
    ) -> list[TaskResult]:
        """The result records of the task's group (see :meth:`Client.fetch_group`); [] without a group."""
        group = self.group
        return [] if group is None else self._client().fetch_group(group, failures, wait, count)
