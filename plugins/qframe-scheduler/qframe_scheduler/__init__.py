"""qframe-scheduler: Django Q2's schedule types plus cron and intervals, run once per slot across clusters.

``from qframe_scheduler import schedule, Schedule`` (also ``qframe.schedule``). Installing
the distribution registers the scheduler driver ``default`` (group ``qframe.schedulers``),
which every cluster's sentinel runs unless ``scheduler = ""``.
"""

from qframe_scheduler.api import (
    delete_schedule,
    get_schedule,
    list_schedules,
    run_now,
    schedule,
    set_enabled,
)
from qframe_scheduler.record import Schedule
from qframe_scheduler.scheduler import DefaultScheduler
from qframe_scheduler.types import ScheduleType

__all__ = [
    "DefaultScheduler",
    "Schedule",
    "ScheduleType",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "run_now",
    "schedule",
    "set_enabled",
]
