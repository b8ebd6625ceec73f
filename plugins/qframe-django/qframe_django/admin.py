"""Django's own admin for qframe: results, failures (resubmit), schedules, queue, dead letters, clusters.

Signed blobs are decoded with the project's keys for display; a row that does not verify
shows "(does not verify)" instead of failing the page.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from qframe.errors import QFrameError
from qframe_django import models
from qframe_django.conf import project_config

UNVERIFIED = "(does not verify)"


def _short(text: Any, limit: int = 120) -> str:
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Rows are written by clusters, never by hand: no add, no change."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        """No adding."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Viewable, not editable."""
        return False


class TaskAdmin(ReadOnlyAdmin):
    """Shared by successes and failures."""

    list_display: tuple[str, ...] = (
        "name",
        "func",
        "group",
        "cluster",
        "started_at",
        "stopped_at",
        "seconds",
        "attempt_count",
    )
    list_filter = ("group", "cluster")
    search_fields = ("name", "func", "group", "id")
    exclude = ("blob",)
    readonly_fields = ("arguments", "outcome")

    @admin.display(description="seconds")
    def seconds(self, obj: models.Task) -> str:
        """How long the run took."""
        return f"{obj.time_taken():.3f}"

    @admin.display(description="arguments")
    def arguments(self, obj: models.Task) -> str:
        """The decoded positional and keyword arguments."""
        try:
            return _short(f"args={obj.args!r} kwargs={obj.kwargs!r}", 2000)
        except QFrameError:
            return UNVERIFIED

    @admin.display(description="result")
    def outcome(self, obj: models.Task) -> str:
        """The decoded return value or error text."""
        try:
            return _short(obj.result, 4000)
        except QFrameError:
            return UNVERIFIED


@admin.register(models.Success)
class SuccessAdmin(TaskAdmin):
    """Successful tasks."""


@admin.action(description="Resubmit selected tasks to queue")
def resubmit(modeladmin: Any, request: HttpRequest, queryset: QuerySet[models.Failure]) -> None:
    """Enqueue each failure again (same function, arguments, group, name, cluster), then delete it."""
    from qframe_django.compat import client

    done = 0
    for failure in queryset:
        try:
            record = failure.record()
            options = {"group": record.group, "task_name": record.name, "cluster": record.cluster}
            client().async_task(record.func, *record.args, q_options=options, **record.kwargs)
        except QFrameError as exc:
            modeladmin.message_user(request, f"{failure.name}: not resubmitted: {exc}", messages.ERROR)
            continue
        failure.delete()
        done += 1
    modeladmin.message_user(request, f"{done} task(s) resubmitted.", messages.SUCCESS)


@admin.register(models.Failure)
class FailureAdmin(TaskAdmin):
    """Failed tasks, with "Resubmit selected tasks to queue"."""

    list_display = (*TaskAdmin.list_display, "error")
    actions = [resubmit]

    @admin.display(description="error")
    def error(self, obj: models.Task) -> str:
        """The error's last line."""
        try:
            lines = str(obj.result).strip().splitlines()
        except QFrameError:
            return UNVERIFIED
        return _short(lines[-1] if lines else "")


class ScheduleForm(forms.ModelForm):  # type: ignore[type-arg]
    """A schedule's fields; cron and timezone are checked by the scheduler's own rules."""

    id = forms.CharField(label="name", max_length=200)
    func = forms.CharField(max_length=300, help_text="Dotted path, e.g. myapp.tasks.report")
    schedule_type = forms.ChoiceField(choices=[])
    cron = forms.CharField(required=False, help_text="For type Cron, e.g. 0 22 * * 1-5")
    minutes = forms.IntegerField(required=False, min_value=1)
    interval = forms.FloatField(required=False, min_value=1, help_text="Seconds, for type Interval")
    timezone = forms.CharField(initial="UTC")
    next_run = forms.DateTimeField(required=False, help_text="Empty: now (or the next cron time)")
    repeats = forms.IntegerField(initial=-1, help_text="-1 forever")
    cluster = forms.CharField(required=False)
    args = forms.CharField(required=False, initial="[]", help_text="JSON list")
    kwargs = forms.CharField(required=False, initial="{}", help_text="JSON object")
    catch_up = forms.BooleanField(required=False, initial=True)
    enabled = forms.BooleanField(required=False, initial=True)

    class Meta:
        model = models.Schedule
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from qframe_scheduler.types import ScheduleType

        kinds = self.fields["schedule_type"]
        assert isinstance(kinds, forms.ChoiceField)
        kinds.choices = [(kind.value, kind.name.title()) for kind in ScheduleType]
        if self.instance.pk and self.instance.data:
            from qframe_scheduler.record import Schedule

            record = Schedule.loads(bytes(self.instance.data))
            self.fields["id"].disabled = True
            self.initial.update(
                id=record.name, func=record.func, schedule_type=record.schedule_type.value, cron=record.cron,
                minutes=record.minutes, interval=record.interval, timezone=record.timezone,
                next_run=record.next_run, repeats=record.repeats, cluster=record.cluster,
                args=json.dumps(list(record.args)), kwargs=json.dumps(record.kwargs),
                catch_up=record.catch_up, enabled=record.enabled,
            )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        """Build the scheduler's record from the fields: bad cron, timezone or function is a form error."""
        from qframe_scheduler.api import build

        data = super().clean() or {}
        try:
            args = json.loads(data.get("args") or "[]")
            kwargs = json.loads(data.get("kwargs") or "{}")
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"args and kwargs must be JSON: {exc}") from None
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise forms.ValidationError("args must be a JSON list and kwargs a JSON object")
        next_run: dt.datetime | None = data.get("next_run")
        try:
            self.record = build(
                data.get("func", ""), tuple(args), kwargs, name=data.get("id"), hook=None,
                schedule_type=data.get("schedule_type", "O"), minutes=data.get("minutes"),
                interval=data.get("interval"), cron=data.get("cron") or None, repeats=data.get("repeats", -1),
                next_run=next_run, cluster=data.get("cluster") or project_config().name,
                timezone=data.get("timezone") or "UTC", catch_up=bool(data.get("catch_up")),
                intended_date_kwarg=None, no_overlap=False, enabled=bool(data.get("enabled")),
            )  # fmt: skip
        except QFrameError as exc:
            field = "cron" if "cron" in str(exc) else "timezone" if "timezone" in str(exc) else None
            if field:
                self.add_error(field, str(exc))
                return data
            raise forms.ValidationError(str(exc)) from None
        return data

    def save(self, commit: bool = True) -> models.Schedule:
        """Keep the record as the scheduler's JSON under its name."""
        self.instance.id = self.record.name
        self.instance.data = self.record.dumps()
        return super().save(commit)  # type: ignore[no-any-return]


@admin.register(models.Schedule)
class ScheduleAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Schedules of the qframe scheduler, editable."""

    form = ScheduleForm
    list_display = ("id", "func", "kind", "next_run", "repeats", "enabled")
    search_fields = ("id",)

    def _record(self, obj: models.Schedule) -> Any:
        from qframe_scheduler.record import Schedule

        return Schedule.loads(bytes(obj.data))

    @admin.display(description="function")
    def func(self, obj: models.Schedule) -> str:
        """The scheduled function."""
        return str(self._record(obj).func)

    @admin.display(description="type")
    def kind(self, obj: models.Schedule) -> str:
        """The schedule type."""
        return str(self._record(obj).schedule_type.name.title())

    @admin.display(description="next run")
    def next_run(self, obj: models.Schedule) -> Any:
        """When it runs next."""
        return self._record(obj).next_run

    @admin.display(description="repeats")
    def repeats(self, obj: models.Schedule) -> int:
        """Runs left (-1: forever)."""
        return int(self._record(obj).repeats)

    @admin.display(description="enabled", boolean=True)
    def enabled(self, obj: models.Schedule) -> bool:
        """Whether it runs."""
        return bool(self._record(obj).enabled)


@admin.register(models.QueuedMessage)
class QueuedMessageAdmin(ReadOnlyAdmin):
    """Tasks waiting in (or leased from) the orm broker."""

    list_display = ("id", "queue", "task", "visible_at", "attempts", "leased")
    list_filter = ("queue",)
    exclude = ("payload",)

    @admin.display(description="task")
    def task(self, obj: models.QueuedMessage) -> str:
        """The task's function and name, if the payload verifies."""
        from qframe.cluster.stat import config_keys
        from qframe.serialize import Codec

        try:
            data = Codec(config_keys(project_config()), obj.queue).decode(bytes(obj.payload or b""))
        except Exception:
            return UNVERIFIED
        return f"{data.get('func')} [{data.get('name') or data.get('id')}]"

    @admin.display(description="leased", boolean=True)
    def leased(self, obj: models.QueuedMessage) -> bool:
        """Whether a cluster holds it now."""
        return obj.token is not None and obj.visible > time.time()


@admin.action(description="Requeue selected dead letters")
def requeue(modeladmin: Any, request: HttpRequest, queryset: QuerySet[models.DeadLetter]) -> None:
    """Put each message back on its queue's broker as it was, then delete the dead letter."""
    from qframe.drivers import make_broker

    config, done = project_config(), 0
    for letter in queryset:
        broker = make_broker(config.for_cluster(letter.queue))
        try:
            broker.enqueue(bytes(letter.payload))
        except QFrameError as exc:
            modeladmin.message_user(request, f"{letter}: not requeued: {exc}", messages.ERROR)
            continue
        finally:
            broker.close()
        letter.delete()
        done += 1
    modeladmin.message_user(request, f"{done} message(s) requeued.", messages.SUCCESS)


@admin.register(models.DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    """Messages moved aside, with "Requeue selected dead letters"."""

    list_display = ("message_id", "queue", "reason", "attempts", "last_error", "dead_at_time")
    list_filter = ("queue",)
    search_fields = ("message_id", "reason", "last_error")
    exclude = ("payload",)
    actions = [requeue]


@admin.register(models.ClusterStatus)
class ClusterStatusAdmin(ReadOnlyAdmin):
    """Running clusters, from their heartbeats."""

    list_display = ("cluster", "queue", "host", "state", "workers")

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.ClusterStatus]:
        """Only live heartbeats."""
        return super().get_queryset(request).filter(expires__gt=time.time())

    def _stat(self, obj: models.ClusterStatus) -> Any:
        from qframe.cluster.stat import Stat, config_keys, status_codec

        try:
            return Stat.from_bytes(bytes(obj.value), status_codec(config_keys(project_config())))
        except Exception:
            return None

    @admin.display(description="cluster")
    def cluster(self, obj: models.ClusterStatus) -> str:
        """The cluster's four-word name."""
        stat = self._stat(obj)
        return UNVERIFIED if stat is None else str(stat.label)

    @admin.display(description="queue")
    def queue(self, obj: models.ClusterStatus) -> str:
        """The queue it serves."""
        stat = self._stat(obj)
        return "" if stat is None else str(stat.name)

    @admin.display(description="host")
    def host(self, obj: models.ClusterStatus) -> str:
        """Its host and pid."""
        stat = self._stat(obj)
        return "" if stat is None else f"{stat.host}:{stat.pid}"

    @admin.display(description="state")
    def state(self, obj: models.ClusterStatus) -> str:
        """Starting, Idle, Working, Stopping, ..."""
        stat = self._stat(obj)
        return "" if stat is None else str(stat.status)

    @admin.display(description="workers")
    def workers(self, obj: models.ClusterStatus) -> int:
        """Worker processes."""
        stat = self._stat(obj)
        return 0 if stat is None else len(stat.workers)
