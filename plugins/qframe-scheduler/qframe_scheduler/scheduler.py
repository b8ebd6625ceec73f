"""The ``default`` scheduler driver: runs every due slot of every schedule exactly once across clusters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qframe.client import Client
from qframe.config import Config
from qframe.schedulers import Scheduler, ScheduleStore, schedule_store
from qframe_scheduler.record import Schedule


def enqueue(client: Client, record: Schedule, slot: datetime) -> str:
    """Enqueue ``record``'s task for the slot at ``slot``; return the task id."""
    kwargs: dict[str, Any] = dict(record.kwargs)
    if record.intended_date_kwarg:
        kwargs[record.intended_date_kwarg] = slot.isoformat()
    options: dict[str, Any] = {"cluster": record.cluster, "task_name": record.name, "group": record.name}
    if record.hook:
        options["hook"] = record.hook
    return client.async_task(record.func, *record.args, q_options=options, **kwargs)


class DefaultScheduler(Scheduler):
    """Ticks the schedules of this cluster's queue kept in the schedule store.

    For each due slot it claims ``(schedule name, slot)`` in the store; only the winner
    enqueues and saves the advanced record. A loser saves the same advanced record if the
    store still shows the claimed slot, so a winner killed between its claim and its save
    never stalls the schedule. State lives in the store only: the instance may be rebuilt.
    """

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.max_per_tick = int(config.plugin_values.get("scheduler_max_per_tick", self.max_per_tick))
        self._store: ScheduleStore | None = None

    @property
    def store(self) -> ScheduleStore:
        """The schedule store, opened on first use."""
        if self._store is None:
            self._store = schedule_store(self.config)
        return self._store

    def tick(self, now: float, client: Client) -> int:
        """Run up to :attr:`max_per_tick` due slots, oldest first; return how many tasks were enqueued."""
        due = [Schedule.loads(blob) for blob in self.store.schedules().values()]
        due = sorted((s for s in due if s.runs_at(now, self.config.name)), key=lambda s: s.next_run)
        budget, enqueued = self.max_per_tick, 0
        for record in due:
            current: Schedule | None = record
            while budget > 0 and current is not None and current.runs_at(now, self.config.name):
                budget -= 1
                current, ran = self._run_slot(current, now, client)
                enqueued += ran
            if budget == 0:
                break
        return enqueued

    def _run_slot(self, record: Schedule, now: float, client: Client) -> tuple[Schedule | None, int]:
        """Claim and run the slot at ``record.next_run``; return the advanced record and 1 if it enqueued."""
        won = self.store.claim_slot(record.name, record.slot, self.owner)
        task = None
        if won and not (record.no_overlap and self._still_running(record, client)):
            task = enqueue(client, record, record.next_run)
        ran = int(task is not None)
        advanced = record.after_slot(now, task)
        fresh = self._fresh(record.name)
        if fresh is None:  # deleted meanwhile: nothing to save
            return None, ran
        if not won and fresh.slot != record.slot:  # the winner saved already
            return advanced, ran
        if advanced is None:
            self.store.delete_schedule(record.name)
        else:
            advanced.enabled = fresh.enabled  # a pause made meanwhile stays
            self.store.save_schedule(record.name, advanced.dumps())
        return advanced, ran

    def _fresh(self, name: str) -> Schedule | None:
        """The schedule as the store holds it now."""
        blob = self.store.schedules().get(name)
        return None if blob is None else Schedule.loads(blob)

    @staticmethod
    def _still_running(record: Schedule, client: Client) -> bool:
        """Whether the schedule's previous task is still queued or running (it has no result yet)."""
        return record.task is not None and client.store.get(record.task) is None

    def close(self) -> None:
        """Close the schedule store."""
        if self._store is not None:
            self._store.close()
            self._store = None
