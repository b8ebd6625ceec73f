"""Next-run arithmetic of every schedule type: month ends, leap years, DST switches, cron, intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qframe_scheduler import Schedule
from qframe_scheduler.api import build
from qframe_scheduler.types import ScheduleType


def record(kind: ScheduleType, first: datetime, zone: str = "UTC", **fields: object) -> Schedule:
    """An unsaved schedule of ``kind`` whose first slot is the naive local time ``first``."""
    values: dict[str, object] = {
        "name": "s", "hook": None, "schedule_type": kind, "minutes": None, "interval": None,
        "cron": None, "repeats": -1, "next_run": first, "cluster": "default", "timezone": zone,
        "catch_up": True, "intended_date_kwarg": None, "no_overlap": False, "enabled": True,
    }  # fmt: skip
    values.update(fields)
    return build("qframe.testing.tasks.inc", (1,), {}, **values)


def local_runs(schedule: Schedule, count: int) -> list[str]:
    """The first ``count`` slots as local ISO times (with their UTC offset)."""
    runs = []
    current: Schedule | None = schedule
    for _ in range(count):
        assert current is not None
        runs.append(current.next_run.astimezone(current.zone).isoformat())
        current = current.after_slot(0.0, "task")
    return runs


def test_monthly_from_january_31_lands_on_the_last_day_of_february() -> None:
    runs = local_runs(record(ScheduleType.MONTHLY, datetime(2025, 1, 31, 9)), 3)
    assert runs == ["2025-01-31T09:00:00+00:00", "2025-02-28T09:00:00+00:00", "2025-03-28T09:00:00+00:00"]


def test_monthly_in_a_leap_year_lands_on_february_29() -> None:
    runs = local_runs(record(ScheduleType.MONTHLY, datetime(2024, 1, 31, 9)), 2)
    assert runs[1] == "2024-02-29T09:00:00+00:00"


def test_yearly_from_february_29_lands_on_february_28() -> None:
    runs = local_runs(record(ScheduleType.YEARLY, datetime(2024, 2, 29, 12)), 2)
    assert runs[1] == "2025-02-28T12:00:00+00:00"


@pytest.mark.parametrize(
    ("kind", "second"),
    [
        (ScheduleType.HOURLY, "2025-05-10T11:00:00+00:00"),
        (ScheduleType.DAILY, "2025-05-11T10:00:00+00:00"),
        (ScheduleType.WEEKLY, "2025-05-17T10:00:00+00:00"),
        (ScheduleType.BIWEEKLY, "2025-05-24T10:00:00+00:00"),
        (ScheduleType.BIMONTHLY, "2025-07-10T10:00:00+00:00"),
        (ScheduleType.QUARTERLY, "2025-08-10T10:00:00+00:00"),
        (ScheduleType.YEARLY, "2026-05-10T10:00:00+00:00"),
    ],
)
def test_each_calendar_type_steps_by_its_period(kind: ScheduleType, second: str) -> None:
    assert local_runs(record(kind, datetime(2025, 5, 10, 10)), 2)[1] == second


def test_minutes_and_interval_step_in_seconds() -> None:
    assert local_runs(record(ScheduleType.ONCE, datetime(2025, 5, 10, 10), minutes=15), 2)[1].endswith(
        "10:15:00+00:00"
    )
    every = record(ScheduleType.ONCE, datetime(2025, 5, 10, 10), interval=timedelta(seconds=1))
    assert every.schedule_type is ScheduleType.INTERVAL
    assert local_runs(every, 3)[2] == "2025-05-10T10:00:02+00:00"


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [("Europe/Amsterdam", datetime(2025, 3, 29, 1), datetime(2025, 10, 25, 1)),
     ("America/New_York", datetime(2025, 3, 8, 1), datetime(2025, 11, 1, 1))],
)  # fmt: skip
def test_daily_keeps_its_local_hour_across_both_dst_switches(
    zone: str, spring: datetime, autumn: datetime
) -> None:
    for first in (spring, autumn):
        runs = local_runs(record(ScheduleType.DAILY, first, zone), 3)
        assert [run[11:19] for run in runs] == ["01:00:00"] * 3
        assert len({run[19:] for run in runs}) == 2  # the offset changed in between


@pytest.mark.parametrize(
    ("zone", "day_before", "gap_day"),
    [("Europe/Amsterdam", datetime(2025, 3, 29, 2, 30), "2025-03-30T03:00:00+02:00"),
     ("America/New_York", datetime(2025, 3, 8, 2, 30), "2025-03-09T03:00:00-04:00")],
)  # fmt: skip
def test_a_slot_inside_the_spring_gap_runs_once_at_the_end_of_the_gap(
    zone: str, day_before: datetime, gap_day: str
) -> None:
    runs = local_runs(record(ScheduleType.DAILY, day_before, zone), 3)
    assert runs[1] == gap_day
    assert runs[2][11:16] == "02:30"  # back to the wall time the day after


def test_a_slot_in_the_repeated_autumn_hour_runs_once_at_its_first_occurrence() -> None:
    runs = local_runs(record(ScheduleType.DAILY, datetime(2025, 10, 25, 2, 30), "Europe/Amsterdam"), 3)
    assert runs[1] == "2025-10-26T02:30:00+02:00"
    assert runs[2] == "2025-10-27T02:30:00+01:00"


def test_cron_is_computed_from_its_last_slot_not_from_now() -> None:
    first = datetime(2020, 1, 1, 0, 0)
    runs = local_runs(record(ScheduleType.CRON, first, cron="*/20 9-10 * * 1-5"), 4)
    assert runs == [
        "2020-01-01T00:00:00+00:00",
        "2020-01-01T09:00:00+00:00",
        "2020-01-01T09:20:00+00:00",
        "2020-01-01T09:40:00+00:00",
    ]


def test_cron_without_next_run_starts_at_its_first_matching_time() -> None:
    hourly = record(ScheduleType.CRON, None, cron="0 * * * *")  # type: ignore[arg-type]
    now = datetime.now(UTC)
    assert hourly.next_run.minute == 0 and hourly.next_run.second == 0
    assert now - timedelta(seconds=1) <= hourly.next_run <= now + timedelta(hours=1)


def test_cron_in_a_zone_keeps_local_time_across_dst() -> None:
    eight = record(ScheduleType.CRON, datetime(2025, 3, 29, 8), "Europe/Amsterdam", cron="0 8 * * *")
    runs = local_runs(eight, 3)
    assert runs == ["2025-03-29T08:00:00+01:00", "2025-03-30T08:00:00+02:00", "2025-03-31T08:00:00+02:00"]


def test_repeats_count_down_and_stop_at_zero() -> None:
    current: Schedule | None = record(ScheduleType.HOURLY, datetime(2025, 5, 10, 10), repeats=2)
    seen = []
    while current is not None and current.repeats != 0:
        current = current.after_slot(0.0, "task")
        seen.append(None if current is None else current.repeats)
    assert seen == [1, 0]
    assert current is not None and not current.runs_at(float("inf"), "default")


def test_a_once_schedule_with_negative_repeats_deletes_itself_after_it_ran() -> None:
    assert record(ScheduleType.ONCE, datetime(2025, 5, 10, 10)).after_slot(0.0, "task") is None
    kept = record(ScheduleType.ONCE, datetime(2025, 5, 10, 10), repeats=1).after_slot(0.0, "task")
    assert kept is not None and kept.repeats == 0


def test_catch_up_false_jumps_to_the_next_future_slot() -> None:
    hourly = record(ScheduleType.HOURLY, datetime(2025, 5, 10, 10), catch_up=False)
    now = datetime(2025, 5, 10, 13, 30, tzinfo=UTC).timestamp()
    after = hourly.after_slot(now, "task")
    assert after is not None and after.next_run == datetime(2025, 5, 10, 14, tzinfo=UTC)


def test_a_record_survives_its_json_round_trip() -> None:
    daily = record(ScheduleType.DAILY, datetime(2025, 3, 29, 2, 30), "Europe/Amsterdam")
    advanced = daily.after_slot(0.0, "t1")
    assert advanced is not None
    assert Schedule.loads(advanced.dumps()) == advanced
