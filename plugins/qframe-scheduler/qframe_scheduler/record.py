"""The :class:`Schedule` record: what to run, when next, and what its last run left."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from qframe.errors import InvalidArgument
from qframe_scheduler.timing import next_slot, wall_of
from qframe_scheduler.types import ScheduleType


def zone_of(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` called ``name``, or a one-line :class:`InvalidArgument`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown timezone '{name}'") from None


def check_cron(expression: str | None) -> str:
    """``expression`` if croniter accepts it, else a one-line :class:`InvalidArgument`."""
    if not expression or not croniter.is_valid(expression):
        raise InvalidArgument(f"invalid cron expression '{expression or ''}'")
    return expression


def kind_of(value: str | ScheduleType) -> ScheduleType:
    """The :class:`ScheduleType` for a code (``"D"``) or name (``"DAILY"``, any case)."""
    if isinstance(value, ScheduleType):
        return value
    text = str(value)
    for kind in ScheduleType:
        if text == kind.value or text.upper() == kind.name:
            return kind
    names = ", ".join(kind.name for kind in ScheduleType)
    raise InvalidArgument(f"unknown schedule type '{text}'; types: {names}")


@dataclasses.dataclass
class Schedule:
    """One schedule, as kept in the store (JSON) and returned by the API.

    ``next_run`` and ``last_run`` are aware datetimes in the schedule's ``timezone``;
    ``task`` is the id of the last task it enqueued and ``success`` that task's outcome
    (None while unknown). ``repeats``: -1 forever, N counts down, 0 runs no more.
    """

    ONCE: ClassVar[ScheduleType] = ScheduleType.ONCE
    MINUTES: ClassVar[ScheduleType] = ScheduleType.MINUTES
    HOURLY: ClassVar[ScheduleType] = ScheduleType.HOURLY
    DAILY: ClassVar[ScheduleType] = ScheduleType.DAILY
    WEEKLY: ClassVar[ScheduleType] = ScheduleType.WEEKLY
    BIWEEKLY: ClassVar[ScheduleType] = ScheduleType.BIWEEKLY
    MONTHLY: ClassVar[ScheduleType] = ScheduleType.MONTHLY
    BIMONTHLY: ClassVar[ScheduleType] = ScheduleType.BIMONTHLY
    QUARTERLY: ClassVar[ScheduleType] = ScheduleType.QUARTERLY
    YEARLY: ClassVar[ScheduleType] = ScheduleType.YEARLY
    CRON: ClassVar[ScheduleType] = ScheduleType.CRON
    INTERVAL: ClassVar[ScheduleType] = ScheduleType.INTERVAL

    name: str
    func: str
    next_run: datetime
    schedule_type: ScheduleType = ScheduleType.ONCE
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    hook: str | None = None
    minutes: int | None = None
    interval: float | None = None
    cron: str | None = None
    repeats: int = -1
    cluster: str = "default"
    timezone: str = "UTC"
    catch_up: bool = True
    intended_date_kwarg: str | None = None
    no_overlap: bool = False
    enabled: bool = True
    last_run: datetime | None = None
    task: str | None = None
    success: bool | None = None
    #: The intended local time of ``next_run`` (differs from it only inside a DST gap).
    wall: datetime | None = dataclasses.field(default=None, repr=False)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return zone_of(self.timezone)

    @property
    def slot(self) -> int:
        """The claim slot of ``next_run``: its Unix time in whole seconds."""
        return int(self.next_run.timestamp())

    def runs_at(self, now: float, cluster: str) -> bool:
        """Whether a scheduler of ``cluster`` should run this schedule's next slot at ``now``."""
        return self.enabled and self.repeats != 0 and self.cluster == cluster and self.slot <= now

    def after_slot(self, now: float, task: str | None) -> Schedule | None:
        """The record once the slot at ``next_run`` is done (``task`` None: skipped); None: delete it."""
        ran = task is not None
        done = dataclasses.replace(self)
        if ran:
            done.last_run, done.task, done.success = self.next_run, task, None
            if done.repeats > 0:
                done.repeats -= 1
        following = self._following(self.next_run, self.wall or wall_of(self.next_run, self.zone))
        if not self.catch_up:
            while following is not None and following[0].timestamp() <= now:
                following = self._following(*following)
        if following is None:
            if self.repeats < 0 and ran:
                return None
            done.repeats = 0
            return done
        done.next_run, done.wall = following
        return done

    def _following(self, instant: datetime, wall: datetime) -> tuple[datetime, datetime] | None:
        return next_slot(
            self.schedule_type,
            instant,
            wall,
            self.zone,
            minutes=self.minutes,
            interval=self.interval,
            cron=self.cron,
        )

    def dumps(self) -> bytes:
        """The record as the JSON the store keeps."""
        values = dataclasses.asdict(self)
        for key in ("next_run", "last_run", "wall"):
            values[key] = values[key].isoformat() if values[key] is not None else None
        values["schedule_type"] = self.schedule_type.value
        values["args"] = list(self.args)
        return json.dumps(values, sort_keys=True).encode()

    @classmethod
    def loads(cls, data: bytes) -> Schedule:
        """The record kept as ``data`` by :meth:`dumps`."""
        values = json.loads(data)
        for key in ("next_run", "last_run", "wall"):
            if values.get(key) is not None:
                values[key] = datetime.fromisoformat(values[key])
        values["schedule_type"] = ScheduleType(values["schedule_type"])
        values["args"] = tuple(values["args"])
        return cls(**values)


def utc_now() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)
