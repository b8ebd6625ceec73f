"""The task a worker runs now, for code inside it: ``qframe.current_task()`` and ``Retry``."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import NoReturn


class Retry(Exception):
    """Raised by a task to run again after ``countdown`` seconds (its backoff when None).

    The retry counts against ``max_attempts``; past it the task fails with this error.
    """

    def __init__(self, countdown: float | None = None) -> None:
        super().__init__(f"retry requested (countdown {countdown!r})")
        self.countdown = countdown


@dataclass(frozen=True)
class CurrentTask:
    """What a running task may know about itself."""

    id: str
    name: str
    func: str
    #: This run's number: 1 for the first, counting retries and redeliveries.
    attempt: int
    #: The cluster (queue) running it.
    queue: str

    def retry(self, countdown: float | None = None) -> NoReturn:
        """Stop this run and run the task again after ``countdown`` seconds (its backoff when None)."""
        raise Retry(countdown)


_CURRENT: contextvars.ContextVar[CurrentTask | None] = contextvars.ContextVar("qframe_task", default=None)


def current_task() -> CurrentTask | None:
    """The task running in this worker now, or None outside a task."""
    return _CURRENT.get()


def set_current(task: CurrentTask | None) -> contextvars.Token[CurrentTask | None]:
    """Make ``task`` the current one; pass the token to :func:`reset_current` after the run."""
    return _CURRENT.set(task)


def reset_current(token: contextvars.Token[CurrentTask | None]) -> None:
    """Restore the current task from before :func:`set_current`."""
    _CURRENT.reset(token)
