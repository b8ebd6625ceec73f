"""The ``orm`` store: results, heartbeats, dead letters and schedules in a Django database.

Results (:class:`~qframe_django.models.Task`) keep one row per task id and the first
success is final: a batch is merged in memory against the rows it touches, then new
rows are inserted in one statement and saved failures are replaced by conditional
updates (``WHERE success = false``), so a success is never overwritten. ``save_limit``
is applied every ``save_limit // 10`` saves by deleting the oldest successes beyond the
limit in bounded batches by primary key: nothing is locked but the rows deleted (Django
Q2 locked every success with ``select_for_update``). ``store_url`` is the database alias.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from qframe.errors import StoreError
from qframe.schedulers.base import DEFAULT_KEEP, ScheduleStore
from qframe.stores.base import DeadLetter, DeadLetterStore, ResultMeta, StatusStore, Store, Tally
from qframe.stores.delays import DelayStore, HeldTask
from qframe_django.db import Database
from qframe_django.deadletters import from_row

#: Rows one pruning statement deletes at most (expired results, successes past save_limit).
PRUNE_BATCH = 500
#: Pruning statements one save runs at most; the rest waits for the next prune.
PRUNE_ROUNDS = 4
#: Fields ``save_limit_per`` may name.
PER_FIELDS = {"group": "group", "name": "name", "func": "func"}


class OrmStore(Store, StatusStore, DeadLetterStore, ScheduleStore, DelayStore):
    """Every store role qframe has, in the tables of :mod:`qframe_django.models`."""

    def __init__(
        self, url: str | None, *, save_limit: int = 0, save_limit_per: str | None = None, **options: Any
    ) -> None:
        super().__init__(url, save_limit=save_limit, save_limit_per=save_limit_per, **options)
        self.db = Database(url, StoreError)
        from qframe_django import models

        self.models = models
        alias = self.db.alias
        self.tasks = models.Task.objects.using(alias)
        self.stats = models.ClusterStatus.objects.using(alias)
        self.letters = models.DeadLetter.objects.using(alias)
        self.plans = models.Schedule.objects.using(alias)
        self.slots = models.ScheduleSlot.objects.using(alias)
        self.held = models.HeldTask.objects.using(alias)
        self._saved_since_prune = 0
        self._touched: set[str | None] = set()
        self._last_purge_of_stats = 0.0
        self._last_purge_of_slots = 0.0

    # -- results -----------------------------------------------------------------------
    def _live(self) -> Any:
        from django.db.models import Q

        return self.tasks.filter(Q(expires=0) | Q(expires__gt=time.time()))

    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Insert new results and replace saved failures (never a success); then prune."""
        kept = [(m, b) for m, b in results if self.keeps(m)]
        if kept:
            self.db.run("save", lambda: self._merge(kept))
        if self.save_limit > 0:
            self._saved_since_prune += sum(1 for m, _ in kept if m.success)
            per = PER_FIELDS.get(self.save_limit_per or "")
            if per:
                self._touched.update(getattr(m, per) for m, _ in kept if m.success)
            if self._saved_since_prune >= max(1, self.save_limit // 10):
                self._saved_since_prune = 0
                self.db.run("save_limit", self._prune)
        self.db.run("expiry", self._drop_expired)

    def _merge(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        from django.db import IntegrityError, transaction

        saved = dict(self.tasks.filter(id__in={m.id for m, _ in results}).values_list("id", "success"))
        new: dict[str, Any] = {}
        replace: dict[str, Any] = {}
        for meta, blob in results:
            if saved.get(meta.id):
                continue  # the first success is final
            row = self._row(meta, blob)
            if meta.id in saved and meta.id not in new:
                replace[meta.id] = row  # a saved failure
            else:
                new[meta.id] = row  # not saved yet, or a failure earlier in this batch
            saved[meta.id] = meta.success
        try:
            with transaction.atomic(using=self.db.alias):
                self.tasks.bulk_create(list(new.values()))
        except IntegrityError:  # another monitor saved one of them meanwhile
            replace.update(new)
            for row in new.values():
                try:
                    with transaction.atomic(using=self.db.alias):
                        self.tasks.bulk_create([row])
                    replace.pop(row.id)
                except IntegrityError:
                    pass
        for task_id, row in replace.items():
            fields = {f: getattr(row, f) for f in _RESULT_FIELDS}
            self.tasks.filter(id=task_id, success=False).update(**fields)

    def _row(self, meta: ResultMeta, blob: bytes) -> Any:
        return self.models.Task(
            id=meta.id, name=meta.name, func=meta.func, group=meta.group, success=meta.success,
            started=meta.started, stopped=meta.stopped, attempt_count=meta.attempts,
            cluster=meta.cluster, blob=blob, expires=meta.expires,
        )  # fmt: skip

    def _prune(self) -> None:
        """Delete successes beyond ``save_limit`` (per value of ``save_limit_per``), a batch at a time."""
        per = PER_FIELDS.get(self.save_limit_per or "")
        scopes: list[dict[str, Any]] = [{per: value} for value in self._touched] if per else [{}]
        self._touched.clear()
        for scope in scopes:
            successes = self.tasks.filter(success=True, **scope).order_by("-stopped", "-id")
            for _ in range(PRUNE_ROUNDS):
                surplus = list(
                    successes.values_list("id", flat=True)[self.save_limit : self.save_limit + PRUNE_BATCH]
                )
                if not surplus:
                    break
                self.tasks.filter(id__in=surplus).delete()

    def _drop_expired(self) -> None:
        now = time.time()
        expired = list(
            self.tasks.filter(expires__gt=0, expires__lte=now).values_list("id", flat=True)[:PRUNE_BATCH]
        )
        if expired:
            self.tasks.filter(id__in=expired).delete()

    def get(self, task_id: str) -> bytes | None:
        """The blob of a live result."""
        found = self._live().filter(id=task_id).values_list("blob", flat=True)
        blob = self.db.run("get", found.first)
        return None if blob is None else bytes(blob)

    def get_by_name(self, name: str) -> bytes | None:
        """The blob of the most recently stopped live result called ``name``."""
        named = self._live().filter(name=name).order_by("-stopped", "-id")
        blob = self.db.run("get_by_name", lambda: named.values_list("blob", flat=True).first())
        return None if blob is None else bytes(blob)

    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        """Blobs of a group, oldest first."""
        rows = self._live().filter(group=group)
        if not failures:
            rows = rows.filter(success=True)
        ordered = rows.order_by("stopped", "id").values_list("blob", flat=True)
        blobs = self.db.run("get_group", lambda: list(ordered))
        return [bytes(blob) for blob in blobs]

    def count_group(self, group: str, failures: bool = False) -> int:
        """Successes of a group, or its failures."""
        return int(self.db.run("count_group", self._live().filter(group=group, success=not failures).count))

    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Ungroup a group's results, or delete them; return how many it had."""
        rows = self.tasks.filter(group=group)
        if tasks:
            return int(self.db.run("delete_group", rows.delete)[0])
        return int(self.db.run("delete_group", lambda: rows.update(group=None)))

    def delete(self, task_id: str) -> bool:
        """Delete one result."""
        return bool(self.db.run("delete", self.tasks.filter(id=task_id).delete)[0])

    def tally(self, since: float | None = None) -> Tally:
        """Counts and busy seconds of live results stopped since ``since``."""
        from django.db.models import Count, F, Q, Sum

        rows = self._live() if since is None else self._live().filter(stopped__gte=since)
        totals = self.db.run(
            "tally",
            lambda: rows.aggregate(
                successes=Count("id", filter=Q(success=True)),
                failures=Count("id", filter=Q(success=False)),
                busy=Sum(F("stopped") - F("started")),
            ),
        )
        return Tally(int(totals["successes"]), int(totals["failures"]), float(totals["busy"] or 0.0))

    def purge(self) -> None:
        """Delete every result."""
        self.db.run("purge", self.tasks.all().delete)

    def ping(self) -> bool:
        """Check that the database answers."""
        self.db.run("ping", lambda: self.tasks.filter(id="qframe-ping").exists())
        return True

    # -- heartbeats --------------------------------------------------------------------
    def set_status(self, key: str, value: bytes, ttl: float) -> None:
        """Save a heartbeat; expired ones are cleared once a minute."""
        now = time.time()
        self.db.run(
            "set_status", lambda: self._upsert(self.stats, {"key": key}, value=value, expires=now + ttl)
        )
        if now - self._last_purge_of_stats > 60:
            self._last_purge_of_stats = now
            self.db.run("set_status", self.stats.filter(expires__lte=now).delete)

    def statuses(self) -> list[bytes]:
        """Live heartbeats of every queue."""
        live = self.stats.filter(expires__gt=time.time()).order_by("key")
        return [bytes(v) for v in self.db.run("statuses", lambda: list(live.values_list("value", flat=True)))]

    def _upsert(self, rows: Any, keys: dict[str, Any], **values: Any) -> None:
        """Update the row with ``keys`` or insert it; a concurrent insert turns into an update."""
        from django.db import IntegrityError, transaction

        if rows.filter(**keys).update(**values):
            return
        try:
            with transaction.atomic(using=self.db.alias):
                rows.create(**keys, **values)
        except IntegrityError:
            rows.filter(**keys).update(**values)

    # -- dead letters ------------------------------------------------------------------
    def quarantine(
        self,
        queue: str,
        message_id: str,
        reason: str,
        payload: bytes,
        attempts: int = 0,
        last_error: str = "",
    ) -> None:
        """Keep a message aside; the same id again replaces it."""
        keys = {"queue": queue, "message_id": message_id}
        values = {"reason": reason, "payload": payload, "attempts": attempts, "last_error": last_error}
        self.db.run("quarantine", lambda: self._upsert(self.letters, keys, **values, dead_at=time.time()))

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The messages kept aside for ``queue`` with every field, oldest first."""
        rows = self.letters.filter(queue=queue).order_by("dead_at", "id")
        return self.db.run("dead_letters", lambda: [from_row(row) for row in rows])

    def remove_dead_letters(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete these dead letters of ``queue``; return how many existed."""
        rows = self.letters.filter(queue=queue, message_id__in=list(message_ids))
        return int(self.db.run("remove_dead_letters", rows.delete)[0])

    # -- schedules -----------------------------------------------------------------------
    def claim_slot(self, schedule_id: str, slot: int, owner: str, keep: float = DEFAULT_KEEP) -> bool:
        """Insert the slot's marker (unique per schedule and slot), or take over an expired one."""
        from django.db import IntegrityError, transaction

        now = time.time()

        def claim() -> bool:
            try:
                with transaction.atomic(using=self.db.alias):
                    self.slots.create(schedule=schedule_id, slot=slot, owner=owner, expires=now + keep)
                return True
            except IntegrityError:
                taken = self.slots.filter(schedule=schedule_id, slot=slot, expires__lte=now)
                return bool(taken.update(owner=owner, expires=now + keep))

        won = self.db.run("claim_slot", claim)
        if now - self._last_purge_of_slots > 60:
            self._last_purge_of_slots = now
            self.db.run("claim_slot", self.slots.filter(expires__lte=now).delete)
        return won

    def slot_owner(self, schedule_id: str, slot: int) -> str | None:
        """The winner of a kept claim."""
        kept = self.slots.filter(schedule=schedule_id, slot=slot, expires__gt=time.time())
        owner = self.db.run("slot_owner", lambda: kept.values_list("owner", flat=True).first())
        return None if owner is None else str(owner)

    def save_schedule(self, schedule_id: str, data: bytes) -> None:
        """Insert or replace a schedule."""
        self.db.run("save_schedule", lambda: self._upsert(self.plans, {"id": schedule_id}, data=data))

    def schedules(self) -> dict[str, bytes]:
        """Every schedule, by id."""
        rows = self.db.run("schedules", lambda: list(self.plans.values_list("id", "data")))
        return {schedule_id: bytes(data) for schedule_id, data in rows}

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule."""
        return bool(self.db.run("delete_schedule", self.plans.filter(id=schedule_id).delete)[0])

    # -- held delays --------------------------------------------------------------------
    def hold(self, queue: str, payload: bytes, due: float) -> str:
        """Keep one delayed task until it is due."""
        row = self.db.run("hold", lambda: self.held.create(queue=queue, payload=payload, due=due))
        return str(row.pk)

    def claim_held(self, queue: str, until: float, lease: float, limit: int) -> list[HeldTask]:
        """Lease due held tasks: the same claim as the broker's (SKIP LOCKED, else compare-and-set)."""
        from django.db import transaction

        now, token = time.time(), secrets.token_hex(8)
        due = self.held.filter(queue=queue, due__lte=until, claimed_until__lte=now).order_by("due", "id")

        def claim() -> list[tuple[int, Any, float]]:
            if self.db.skip_locked:
                with transaction.atomic(using=self.db.alias):
                    ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
                    self.held.filter(id__in=ids).update(claimed_until=now + lease, token=token)
            else:
                ids = list(due.values_list("id", flat=True)[:limit])
                self.held.filter(id__in=ids, claimed_until__lte=now).update(
                    claimed_until=now + lease, token=token
                )
            return list(self.held.filter(token=token, queue=queue).values_list("id", "payload", "due"))

        rows = self.db.run("claim_held", claim)
        return sorted((HeldTask(str(row), token, bytes(payload), due) for row, payload, due in rows),
                      key=lambda task: (task.due, int(task.id)))  # fmt: skip

    def drop_held(self, queue: str, tasks: Sequence[HeldTask]) -> None:
        """Delete held tasks whose claim still holds them."""
        from django.db.models import Q

        condition = Q(pk__in=[])
        for task in tasks:
            condition |= Q(pk=int(task.id), token=task.claim)
        self.db.run("drop_held", lambda: self.held.filter(condition, queue=queue).delete())

    def count_held(self, queue: str) -> int:
        """Held tasks of a queue, claimed or not."""
        return int(self.db.run("count_held", self.held.filter(queue=queue).count))

    def close(self) -> None:
        """Close this thread's connection."""
        self.db.close()


_RESULT_FIELDS = (
    "name", "func", "group", "success", "started", "stopped", "attempt_count", "cluster", "blob", "expires",
)  # fmt: skip
