"""The tables of the ORM broker and stores, and Django Q2's model names over them.

Times are Unix seconds (floats), as everywhere in qframe; the models add datetime
properties for display. Blobs (payloads, results, heartbeats) are signed by the core:
they are decoded through :mod:`qframe_django.conf`, never trusted raw.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import models


def _when(seconds: float) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


class QueuedMessage(models.Model):
    """One message of the ORM broker (Django Q2's ``OrmQ``), leased by a claim token."""

    queue: models.CharField[str, str] = models.CharField(max_length=200)
    #: The signed payload; NULL or empty only when something other than the broker wrote the row.
    payload: models.BinaryField[Any, Any] = models.BinaryField(null=True)
    #: When the message may be claimed next (now + lease while it is claimed).
    visible: models.FloatField[float, float] = models.FloatField()
    attempts: models.IntegerField[int, int] = models.IntegerField(default=0)
    #: The claim holding the message; acks, nacks and touches match on it.
    token: models.CharField[str | None, str | None] = models.CharField(max_length=32, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["queue", "visible", "id"], name="qframe_queue_ready")]
        verbose_name = "queued task"

    def __str__(self) -> str:
        return f"{self.queue}#{self.pk}"

    @property
    def visible_at(self) -> dt.datetime | None:
        """:attr:`visible` as an aware datetime."""
        return _when(self.visible)


class DeadLetter(models.Model):
    """A message moved aside (bad signature, past max_attempts), kept to inspect or requeue."""

    queue: models.CharField[str, str] = models.CharField(max_length=200)
    message_id: models.CharField[str, str] = models.CharField(max_length=200)
    reason: models.TextField[str, str] = models.TextField()
    payload: models.BinaryField[Any, Any] = models.BinaryField()
    attempts: models.IntegerField[int, int] = models.IntegerField(default=0)
    last_error: models.TextField[str, str] = models.TextField(default="", blank=True)
    dead_at: models.FloatField[float, float] = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "message_id"], name="qframe_dead_unique")]
        verbose_name = "dead letter"

    def __str__(self) -> str:
        return f"{self.queue}/{self.message_id}"

    @property
    def dead_at_time(self) -> dt.datetime | None:
        """:attr:`dead_at` as an aware datetime."""
        return _when(self.dead_at)


class Task(models.Model):
    """A task's result (Django Q2's ``Task``): indexed fields beside the signed result blob."""

    id: models.CharField[str, str] = models.CharField(max_length=64, primary_key=True)
    name: models.CharField[str, str] = models.CharField(max_length=300)
    func: models.CharField[str, str] = models.CharField(max_length=300)
    group: models.CharField[str | None, str | None] = models.CharField(max_length=200, null=True, blank=True)
    success: models.BooleanField[bool, bool] = models.BooleanField()
    started: models.FloatField[float, float] = models.FloatField()
    stopped: models.FloatField[float, float] = models.FloatField()
    attempt_count: models.IntegerField[int, int] = models.IntegerField(default=1)
    cluster: models.CharField[str, str] = models.CharField(max_length=200)
    blob: models.BinaryField[Any, Any] = models.BinaryField()
    #: Unix seconds after which the result is gone; 0 keeps it.
    expires: models.FloatField[float, float] = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-stopped"]
        indexes = [
            models.Index(fields=["group", "stopped"], name="qframe_task_group"),
            models.Index(fields=["success", "stopped"], name="qframe_task_success"),
            models.Index(fields=["stopped"], name="qframe_task_stopped"),
            models.Index(fields=["name", "stopped"], name="qframe_task_name"),
            models.Index(fields=["func", "stopped"], name="qframe_task_func"),
        ]

    def __str__(self) -> str:
        return str(self.name or self.id)

    def record(self) -> Any:
        """The decoded :class:`qframe.TaskResult` (signature checked with the project's keys)."""
        from qframe_django.conf import decode_result

        return decode_result(bytes(self.blob))

    @property
    def result(self) -> Any:
        """The return value, or the error text of a failure."""
        return self.record().result

    @property
    def args(self) -> tuple[Any, ...]:
        """The task's positional arguments."""
        return tuple(self.record().args)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The task's keyword arguments."""
        return dict(self.record().kwargs)

    @property
    def started_at(self) -> dt.datetime | None:
        """:attr:`started` as an aware datetime."""
        return _when(self.started)

    @property
    def stopped_at(self) -> dt.datetime | None:
        """:attr:`stopped` as an aware datetime."""
        return _when(self.stopped)

    def time_taken(self) -> float:
        """Seconds the run took."""
        return float(self.stopped - self.started)

    # -- Django Q2's helpers on the model ----------------------------------------------
    @classmethod
    def get_task(cls, task_id: str) -> Task | None:
        """The result with this id, else the latest one with this name (as Django Q2 looks up)."""
        return cls.objects.filter(id=task_id).first() or cls.objects.filter(name=task_id).first()

    @classmethod
    def get_result(cls, task_id: str) -> Any:
        """The return value of :meth:`get_task`'s result, or None."""
        task = cls.get_task(task_id)
        return None if task is None else task.result

    @classmethod
    def get_task_group(cls, group_id: str, failures: bool = True) -> models.QuerySet[Task]:
        """The group's results, oldest first; without failures if ``failures=False``."""
        rows = cls.objects.filter(group=group_id)
        return (rows if failures else rows.filter(success=True)).order_by("stopped")

    @classmethod
    def get_result_group(cls, group_id: str, failures: bool = False) -> list[Any]:
        """The group's return values, oldest first."""
        return [task.result for task in cls.get_task_group(group_id, failures)]

    @classmethod
    def get_group_count(cls, group_id: str, failures: bool = False) -> int:
        """The group's results (all of them; only failures with ``failures=True``), as in Django Q2."""
        rows = cls.objects.filter(group=group_id)
        return (rows.filter(success=False) if failures else rows).count()

    @classmethod
    def delete_group(cls, group_id: str, objects: bool = False) -> int:
        """Take the results out of the group, or delete them with ``objects=True``; return how many."""
        rows = cls.objects.filter(group=group_id)
        return rows.delete()[0] if objects else rows.update(group=None)


class SuccessManager(models.Manager["Success"]):
    """Only successful results."""

    def get_queryset(self) -> models.QuerySet[Success]:
        """Results with ``success=True``."""
        return super().get_queryset().filter(success=True)


class FailureManager(models.Manager["Failure"]):
    """Only failed results."""

    def get_queryset(self) -> models.QuerySet[Failure]:
        """Results with ``success=False``."""
        return super().get_queryset().filter(success=False)


class Success(Task):
    """Successful results (a proxy of :class:`Task`)."""

    objects = SuccessManager()

    class Meta:
        proxy = True
        verbose_name = "successful task"


class Failure(Task):
    """Failed results (a proxy of :class:`Task`)."""

    objects = FailureManager()

    class Meta:
        proxy = True
        verbose_name = "failed task"


class Schedule(models.Model):
    """A schedule of the qframe scheduler, kept as its own JSON document by id."""

    id: models.CharField[str, str] = models.CharField(max_length=200, primary_key=True)
    data: models.BinaryField[Any, Any] = models.BinaryField(editable=True)

    class Meta:
        verbose_name = "scheduled task"

    def __str__(self) -> str:
        return str(self.id)


class ScheduleSlot(models.Model):
    """The marker of one claimed run of a schedule: unique per (schedule, slot), so one winner."""

    schedule: models.CharField[str, str] = models.CharField(max_length=200)
    slot: models.BigIntegerField[int, int] = models.BigIntegerField()
    owner: models.CharField[str, str] = models.CharField(max_length=200)
    expires: models.FloatField[float, float] = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["schedule", "slot"], name="qframe_slot_unique")]


class ClusterStatus(models.Model):
    """A cluster's heartbeat (a signed ``Stat``), live until :attr:`expires`."""

    key: models.CharField[str, str] = models.CharField(max_length=300, primary_key=True)
    value: models.BinaryField[Any, Any] = models.BinaryField()
    expires: models.FloatField[float, float] = models.FloatField()

    class Meta:
        verbose_name = "live cluster"
        verbose_name_plural = "live clusters"

    def __str__(self) -> str:
        return str(self.key)


class HeldTask(models.Model):
    """A task delayed longer than its broker can hold, kept until it is due (the held-delays role)."""

    queue: models.CharField[str, str] = models.CharField(max_length=200)
    payload: models.BinaryField[Any, Any] = models.BinaryField()
    due: models.FloatField[float, float] = models.FloatField()
    #: Until when a cluster's claim holds it (0: unclaimed).
    claimed_until: models.FloatField[float, float] = models.FloatField(default=0.0)
    token: models.CharField[str | None, str | None] = models.CharField(max_length=32, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["queue", "due"], name="qframe_held_due")]
        verbose_name = "held task"

    def __str__(self) -> str:
        return f"{self.queue}#{self.pk}"
