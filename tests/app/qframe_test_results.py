"""Tasks, a hook and a broker for the tests of result semantics (a task that runs twice)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from qframe.builtin.sqlite import SQLiteBroker
from qframe.task import TaskResult
from qframe.testing.tasks import record


class NoRenewal(SQLiteBroker):
    """SQLite whose leases are never renewed, as for a pusher frozen past its lease.

    A task that runs longer than ``lease`` is delivered again while its first run goes on.
    """

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Renew nothing."""


def slow_first_run_loses(folder: str, seconds: float) -> int:
    """The first run sleeps ``seconds``, then fails if a later run finished meanwhile.

    Every later run finishes at once and succeeds. Returns this worker's pid.
    """
    runs = Path(folder)
    number = 1
    while True:  # O_EXCL: concurrent runs each get their own number
        try:
            os.close(os.open(runs / f"run-{number}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            break
        except FileExistsError:
            number += 1
    record("run", number)
    if number == 1:
        time.sleep(seconds)
        if (runs / "done").exists():
            raise RuntimeError("a later run of this task finished first")
    (runs / "done").touch()
    return os.getpid()


def note(result: TaskResult) -> None:
    """A task hook (it runs in the monitor, after the save): record each outcome."""
    record("note", result.attempts, result.success)
