"""Creating, reading and changing schedules; ``schedule(...)`` mirrors Django Q2's ``schedule``."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from qframe.client import Client
from qframe.config import Config
from qframe.config import load as load_config
from qframe.errors import InvalidArgument, TaskImportError
from qframe.schedulers import schedule_store
from qframe.task import func_path, resolve
from qframe_scheduler.record import Schedule, check_cron, kind_of, utc_now, zone_of
from qframe_scheduler.timing import first_cron_wall, wall_of
from qframe_scheduler.timing import resolve as resolve_wall
from qframe_scheduler.types import ScheduleType


def schedule(
    func: str | Callable[..., Any],
    *args: Any,
    name: str | None = None,
    hook: str | Callable[..., Any] | None = None,
    schedule_type: str | ScheduleType = ScheduleType.ONCE,
    minutes: int | None = None,
    interval: timedelta | float | None = None,
    cron: str | None = None,
    repeats: int = -1,
    next_run: datetime | None = None,
    cluster: str | None = None,
    timezone: str = "UTC",
    catch_up: bool = True,
    intended_date_kwarg: str | None = None,
    no_overlap: bool = False,
    enabled: bool = True,
    q_config: Config | None = None,
    **kwargs: Any,
) -> Schedule:
    """Create the schedule ``name`` (unique) running ``func(*args, **kwargs)``; return its record.

    ``minutes=`` implies ``MINUTES`` and ``interval=`` (a timedelta or seconds, at least 1)
    implies ``INTERVAL``. ``next_run`` (default now; naive means in ``timezone``) is the
    first slot; for ``CRON`` without ``next_run`` the first matching time from now.
    ``cluster`` defaults to the configured queue. Bad input raises one-line
    :class:`~qframe.errors.InvalidArgument`; ``func`` must import.
    """
    config = q_config or load_config()
    record = build(
        func, args, kwargs, name=name, hook=hook, schedule_type=schedule_type, minutes=minutes,
        interval=interval, cron=cron, repeats=repeats, next_run=next_run,
        cluster=cluster or config.name, timezone=timezone, catch_up=catch_up,
        intended_date_kwarg=intended_date_kwarg, no_overlap=no_overlap, enabled=enabled,
    )  # fmt: skip
    store = schedule_store(config)
    try:
        if record.name in store.schedules():
            raise InvalidArgument(f"a schedule named '{record.name}' exists; delete it first")
        store.save_schedule(record.name, record.dumps())
    finally:
        store.close()
    return record


def build(
    func: str | Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], **fields: Any
) -> Schedule:
    """A checked :class:`Schedule` from :func:`schedule`'s arguments (nothing is saved)."""
    try:
        path = func_path(func)
        resolve(path)
    except TaskImportError as exc:
        raise InvalidArgument(str(exc).splitlines()[0]) from None
    hook = fields.pop("hook")
    interval = fields.pop("interval")
    seconds = interval.total_seconds() if isinstance(interval, timedelta) else interval
    kind = kind_of(fields.pop("schedule_type"))
    if fields["minutes"] is not None:
        kind = ScheduleType.MINUTES if kind is ScheduleType.ONCE else kind
        if fields["minutes"] < 1:
            raise InvalidArgument(f"minutes must be at least 1, not {fields['minutes']}")
    if seconds is not None:
        kind = ScheduleType.INTERVAL if kind is ScheduleType.ONCE else kind
        if seconds < 1:
            raise InvalidArgument(f"interval must be at least 1 second, not {seconds:g}")
    elif kind is ScheduleType.INTERVAL:
        raise InvalidArgument("schedule type INTERVAL needs interval=")
    zone = zone_of(fields["timezone"])
    if kind is ScheduleType.CRON:
        check_cron(fields["cron"])
    first: datetime | None = fields.pop("next_run")
    if first is None and kind is ScheduleType.CRON:
        wall = first_cron_wall(fields["cron"], wall_of(utc_now(), zone).replace(microsecond=0))
    elif first is None:
        wall = wall_of(utc_now(), zone)
    else:
        wall = first.replace(tzinfo=None) if first.tzinfo is None else wall_of(first, zone)
    return Schedule(
        name=fields.pop("name") or f"{path}-{uuid.uuid4().hex[:8]}",
        func=path,
        args=tuple(args),
        kwargs=dict(kwargs),
        hook=hook if hook is None or isinstance(hook, str) else func_path(hook),
        schedule_type=kind,
        interval=seconds,
        next_run=resolve_wall(wall, zone),
        wall=wall,
        **fields,
    )


def get_schedule(name: str, config: Config | None = None) -> Schedule:
    """The schedule ``name`` with ``success`` of its last task filled in; InvalidArgument if none."""
    config = config or load_config()
    record = _read(config, name)
    if record.task is not None and record.success is None:
        client = Client(config)
        try:
            result = client.fetch(record.task)
        finally:
            client.close()
        record.success = None if result is None else result.success
    return record


def list_schedules(config: Config | None = None) -> list[Schedule]:
    """Every schedule, ordered by ``next_run``."""
    store = schedule_store(config or load_config())
    try:
        records = [Schedule.loads(blob) for blob in store.schedules().values()]
    finally:
        store.close()
    return sorted(records, key=lambda record: (record.next_run, record.name))


def set_enabled(name: str, enabled: bool, config: Config | None = None) -> Schedule:
    """Pause (``enabled=False``) or resume a schedule; return the saved record."""
    config = config or load_config()
    record = dataclasses.replace(_read(config, name), enabled=enabled)
    _write(config, record)
    return record


def delete_schedule(name: str, config: Config | None = None) -> None:
    """Delete the schedule ``name``; InvalidArgument if there is none."""
    store = schedule_store(config or load_config())
    try:
        if not store.delete_schedule(name):
            raise InvalidArgument(f"no schedule named '{name}'")
    finally:
        store.close()


def run_now(name: str, config: Config | None = None) -> str:
    """Enqueue the schedule's task now, outside its slots (its ``next_run`` is unchanged); return the id."""
    from qframe_scheduler.scheduler import enqueue

    config = config or load_config()
    record = _read(config, name)
    client = Client(config)
    try:
        task = enqueue(client, record, record.next_run)
    finally:
        client.close()
    _write(config, dataclasses.replace(record, task=task, success=None))
    return task


def _read(config: Config, name: str) -> Schedule:
    store = schedule_store(config)
    try:
        blob = store.schedules().get(name)
    finally:
        store.close()
    if blob is None:
        raise InvalidArgument(f"no schedule named '{name}'")
    return Schedule.loads(blob)


def _write(config: Config, record: Schedule) -> None:
    store = schedule_store(config)
    try:
        store.save_schedule(record.name, record.dumps())
    finally:
        store.close()
