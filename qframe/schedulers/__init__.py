"""The scheduler interface: the Scheduler driver the sentinel ticks and the ScheduleStore role."""

from qframe.schedulers.base import Scheduler, ScheduleStore, schedule_store

__all__ = ["ScheduleStore", "Scheduler", "schedule_store"]
