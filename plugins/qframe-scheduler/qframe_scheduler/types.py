"""The schedule types, spelled as Django Q2 spells them (``Schedule.DAILY == "D"``)."""

from __future__ import annotations

import enum


class ScheduleType(enum.StrEnum):
    """How often a schedule runs; the values are Django Q2's one- or two-letter codes."""

    ONCE = "O"
    MINUTES = "I"
    HOURLY = "H"
    DAILY = "D"
    WEEKLY = "W"
    BIWEEKLY = "BW"
    MONTHLY = "M"
    BIMONTHLY = "BM"
    QUARTERLY = "Q"
    YEARLY = "Y"
    CRON = "C"
    #: Every ``interval`` seconds (not in Django Q2; from Celery beat's ``schedule(run_every=...)``).
    INTERVAL = "S"


#: relativedelta steps of the calendar types (their wall clock advances by this much).
CALENDAR_STEPS: dict[ScheduleType, dict[str, int]] = {
    ScheduleType.DAILY: {"days": 1},
    ScheduleType.WEEKLY: {"days": 7},
    ScheduleType.BIWEEKLY: {"days": 14},
    ScheduleType.MONTHLY: {"months": 1},
    ScheduleType.BIMONTHLY: {"months": 2},
    ScheduleType.QUARTERLY: {"months": 3},
    ScheduleType.YEARLY: {"years": 1},
}
