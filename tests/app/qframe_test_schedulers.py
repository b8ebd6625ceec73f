"""Schedulers (and a store without the schedule role) for the scheduler tests, loaded as ``module:Class``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from qframe.builtin.sqlite import SQLiteStore
from qframe.client import Client
from qframe.config import Config
from qframe.schedulers import Scheduler, schedule_store
from qframe.stores.base import ResultMeta, Store, Tally
from qframe.testing.tasks import record


class EverySecond(Scheduler):
    """Enqueues ``qframe.testing.tasks.inc(slot)`` once per whole second, claiming the slot first.

    Each tick tries a second it has not tried yet and records the claim's outcome as
    ``schedule-claim <slot> <owner> won|lost``.
    """

    schedule_id = "every-second"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.store = schedule_store(config)
        self.tried: int | None = None

    def tick(self, now: float, client: Client) -> int:
        """Claim the current second and enqueue its task if this scheduler won it."""
        slot = int(now)
        if slot == self.tried:
            return 0
        self.tried = slot
        won = self.store.claim_slot(self.schedule_id, slot, self.owner, keep=60)
        record("schedule-claim", slot, self.owner, "won" if won else "lost")
        if not won:
            return 0
        client.async_task("qframe.testing.tasks.inc", slot, group="every-second")
        return 1

    def close(self) -> None:
        """Close the schedule store."""
        self.store.close()


class Broken(Scheduler):
    """Records each tick, then raises (with a two-line message)."""

    def tick(self, now: float, client: Client) -> int:
        """Fail."""
        record("broken-tick", int(now))
        raise RuntimeError("clock\nbroken")


class FailsTwice(Scheduler):
    """Raises on its first two ticks, then enqueues nothing."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.ticks = 0

    def tick(self, now: float, client: Client) -> int:
        """Fail the first two times."""
        self.ticks += 1
        if self.ticks <= 2:
            raise RuntimeError("early ticks fail")
        return 0


class Slow(Scheduler):
    """Takes three guard cycles per tick."""

    def tick(self, now: float, client: Client) -> int:
        """Sleep."""
        time.sleep(3 * self.config.guard_cycle)
        return 0


class ResultsOnlyStore(Store):
    """A result store (SQLite underneath) that does not fill the ScheduleStore role."""

    def __init__(self, url: str | None, *, save_limit: int = 0, **options: Any) -> None:
        super().__init__(url, save_limit=save_limit, **options)
        self.inner = SQLiteStore(url, save_limit=save_limit)

    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Save through SQLite."""
        self.inner.save_many(results)

    def get(self, task_id: str) -> bytes | None:
        """Read through SQLite."""
        return self.inner.get(task_id)

    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        """Read through SQLite."""
        return self.inner.get_group(group, failures)

    def count_group(self, group: str, failures: bool = False) -> int:
        """Count through SQLite."""
        return self.inner.count_group(group, failures)

    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Delete through SQLite."""
        return self.inner.delete_group(group, tasks)

    def delete(self, task_id: str) -> bool:
        """Delete through SQLite."""
        return self.inner.delete(task_id)

    def tally(self, since: float | None = None) -> Tally:
        """Count through SQLite."""
        return self.inner.tally(since)

    def purge(self) -> None:
        """Purge through SQLite."""
        self.inner.purge()

    def close(self) -> None:
        """Close SQLite."""
        self.inner.close()
