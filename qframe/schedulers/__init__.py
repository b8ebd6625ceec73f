"""The scheduler interface: the Scheduler driver the sentinel ticks and the ScheduleStore role."""

from qframe.schedulers.base import Scheduler, ScheduleStore, schedule_store, scheduler_choice
from qframe.schedulers.facade import schedule

__all__ = ["ScheduleStore", "Scheduler", "schedule", "schedule_store", "scheduler_choice"]
