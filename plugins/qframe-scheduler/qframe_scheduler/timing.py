"""Next-run arithmetic: each slot is computed from the schedule's previous slot, never from "now".

Fixed-length periods (``MINUTES``, ``HOURLY``, ``interval``) step in absolute time. Calendar
periods (``DAILY`` and longer, ``CRON``) step on the schedule's *wall clock* in its time
zone, so a DAILY 01:00 schedule stays at 01:00 local across daylight-saving switches. A wall
time that does not exist (inside a spring-forward gap) runs at the end of the gap; one that
exists twice (fall-back) runs at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from dateutil.relativedelta import relativedelta

from qframe_scheduler.types import CALENDAR_STEPS, ScheduleType

#: Seconds of one step of each fixed-length type (``interval`` carries its own).
FIXED_STEPS = {ScheduleType.HOURLY: 3600.0}


def resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The aware instant of the naive local time ``wall`` in ``zone`` (see the module doc for DST)."""
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap: fold=0 lands after the transition, fold=1 before it; find the transition.
    late = int(first.timestamp())
    early = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    after = datetime.fromtimestamp(late, zone).utcoffset()
    while late - early > 1:
        middle = (early + late) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            late = middle
        else:
            early = middle
    return datetime.fromtimestamp(late, zone)


def wall_of(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time of ``instant`` in ``zone``."""
    return instant.astimezone(zone).replace(tzinfo=None)


def next_wall(kind: ScheduleType, wall: datetime, cron: str | None) -> datetime:
    """The wall time of the calendar slot after ``wall`` (``DAILY`` and longer, ``CRON``)."""
    if kind is ScheduleType.CRON:
        following: datetime = croniter(cron or "", wall).get_next(datetime)
        return following
    step = CALENDAR_STEPS[kind]
    return wall + relativedelta(
        years=step.get("years", 0), months=step.get("months", 0), days=step.get("days", 0)
    )


def next_slot(
    kind: ScheduleType,
    instant: datetime,
    wall: datetime,
    zone: ZoneInfo,
    *,
    minutes: int | None = None,
    interval: float | None = None,
    cron: str | None = None,
) -> tuple[datetime, datetime] | None:
    """``(instant, wall)`` of the slot after the one at ``instant`` / ``wall``; None for ``ONCE``."""
    if kind is ScheduleType.ONCE:
        return None
    step = {ScheduleType.MINUTES: 60.0 * (minutes or 1), ScheduleType.INTERVAL: interval}.get(
        kind, FIXED_STEPS.get(kind)
    )
    if step is not None:
        later = instant + timedelta(seconds=step)
        return later, wall_of(later, zone)
    following = next_wall(kind, wall, cron)
    return resolve(following, zone), following


def first_cron_wall(cron: str, after: datetime) -> datetime:
    """The first wall time at or after ``after`` (naive) that matches ``cron``."""
    start: datetime = croniter(cron, after - timedelta(seconds=1)).get_next(datetime)
    return start
