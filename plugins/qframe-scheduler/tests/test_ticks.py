"""The default scheduler's ticks against a real SQLite queue: counts, routing, catch-up, overlap."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qframe.client import Client
from qframe.config import Config
from qframe.errors import InvalidArgument
from qframe.schedulers import schedule_store
from qframe.task import Task
from qframe.testing.contracts import make_meta
from qframe_scheduler import DefaultScheduler, Schedule, get_schedule, list_schedules, schedule

START = datetime(2025, 5, 10, 10, tzinfo=UTC)


def at(hours: float) -> float:
    """Unix time ``hours`` after START."""
    return (START + timedelta(hours=hours)).timestamp()


@pytest.fixture
def scheduler(config: Config) -> Iterator[DefaultScheduler]:
    """The ``default`` scheduler of the ``default`` queue."""
    ticker = DefaultScheduler(config)
    yield ticker
    ticker.close()


def hourly(config: Config, **fields: Any) -> Schedule:
    """An HOURLY ``inc(1)`` schedule named ``h`` starting at START."""
    return schedule("qframe.testing.tasks.inc", 1, name="h", schedule_type="HOURLY", next_run=START,
                    q_config=config, **fields)  # fmt: skip


def stored(config: Config, name: str = "h") -> Schedule | None:
    """The record as the store holds it."""
    store = schedule_store(config)
    try:
        blob = store.schedules().get(name)
    finally:
        store.close()
    return None if blob is None else Schedule.loads(blob)


def test_a_due_slot_enqueues_one_task_and_advances_the_record(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config)
    assert scheduler.tick(at(0.5), client) == 1
    assert scheduler.tick(at(0.5), client) == 0
    record = stored(config)
    assert record is not None and record.next_run == START + timedelta(hours=1)
    assert record.last_run == START and record.task is not None
    assert client.queue_size() == 1


def test_nothing_runs_before_its_slot(config: Config, client: Client, scheduler: DefaultScheduler) -> None:
    hourly(config)
    assert scheduler.tick(at(-0.1), client) == 0
    assert client.queue_size() == 0


def test_catch_up_runs_every_missed_slot(config: Config, client: Client, scheduler: DefaultScheduler) -> None:
    hourly(config)
    assert scheduler.tick(at(2.5), client) == 3
    assert client.queue_size() == 3
    record = stored(config)
    assert record is not None and record.next_run == START + timedelta(hours=3)


def test_without_catch_up_missed_slots_run_once(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config, catch_up=False)
    assert scheduler.tick(at(2.5), client) == 1
    assert scheduler.tick(at(2.6), client) == 0
    assert client.queue_size() == 1
    record = stored(config)
    assert record is not None and record.next_run == START + timedelta(hours=3)


def test_repeats_count_down_to_zero_then_nothing_runs(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config, repeats=2)
    assert scheduler.tick(at(5), client) == 2
    record = stored(config)
    assert record is not None and record.repeats == 0
    assert client.queue_size() == 2


def test_a_once_schedule_deletes_itself_after_it_ran(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    schedule("qframe.testing.tasks.inc", 1, name="once", next_run=START, q_config=config)
    assert scheduler.tick(at(1), client) == 1
    assert stored(config, "once") is None


def test_no_overlap_skips_slots_while_the_last_task_has_no_result(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config, no_overlap=True)
    assert scheduler.tick(at(0), client) == 1
    assert scheduler.tick(at(1), client) == 0  # the first task is still queued: skipped
    record = stored(config)
    assert record is not None and record.task is not None
    assert record.next_run == START + timedelta(hours=2)
    client.store.save(make_meta(record.task), b"a result")
    assert scheduler.tick(at(2), client) == 1
    assert client.queue_size() == 2


def test_a_schedule_runs_only_on_its_own_cluster(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config, cluster="reports")
    assert scheduler.tick(at(1), client) == 0
    other = DefaultScheduler(config.for_cluster("reports"))
    try:
        assert other.tick(at(0), client) == 1
    finally:
        other.close()
    assert client.queue_size("reports") == 1 and client.queue_size() == 0


def test_a_paused_schedule_does_not_run(config: Config, client: Client, scheduler: DefaultScheduler) -> None:
    hourly(config, enabled=False)
    assert scheduler.tick(at(3), client) == 0


def test_a_tick_runs_at_most_max_per_tick_slots(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config)
    scheduler.max_per_tick = 2
    assert [scheduler.tick(at(4.5), client) for _ in range(3)] == [2, 2, 1]


def test_two_schedulers_on_one_store_enqueue_each_slot_once(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config)
    rival = DefaultScheduler(config)
    try:
        counts = [ticker.tick(at(h), client) for h in (0, 0.5, 1, 1.5, 2) for ticker in (scheduler, rival)]
    finally:
        rival.close()
    assert sum(counts) == 3 and client.queue_size() == 3


def test_a_claimer_killed_before_saving_does_not_stall_the_schedule(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    record = hourly(config)
    store = schedule_store(config)
    try:
        assert store.claim_slot("h", record.slot, "a-cluster-that-died")
    finally:
        store.close()
    assert scheduler.tick(at(1.5), client) == 1  # slot 0 was claimed elsewhere; slot 1 runs here
    after = stored(config)
    assert after is not None and after.next_run == START + timedelta(hours=2)


def test_intended_date_kwarg_passes_the_slot_time(config: Config, scheduler: DefaultScheduler) -> None:
    schedule("qframe.testing.tasks.echo_kwargs", name="e", schedule_type="DAILY", next_run=START,
             intended_date_kwarg="slot", q_config=config)  # fmt: skip
    client = Client(config)
    try:
        scheduler.tick(at(1), client)
        record = stored(config, "e")
        assert record is not None and record.task is not None
        assert queued_kwargs(client) == [{"slot": START.isoformat()}]
    finally:
        client.close()


def queued_kwargs(client: Client) -> list[dict[str, object]]:
    """The kwargs of every queued task (taken off the queue)."""
    _, broker, codec = client._queue(None)
    return [Task.from_dict(codec.decode(m.payload)).kwargs for m in broker.dequeue(10)]


def test_get_schedule_reports_the_last_tasks_success(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    hourly(config)
    scheduler.tick(at(0), client)
    assert get_schedule("h", config).success is None
    assert [r.name for r in list_schedules(config)] == ["h"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"schedule_type": "FORTNIGHTLY"}, "unknown schedule type 'FORTNIGHTLY'; types: ONCE, MINUTES"),
        ({"schedule_type": "CRON", "cron": "61 * * * *"}, "invalid cron expression '61 * * * *'"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone 'Mars/Olympus'"),
        ({"interval": 0.5}, "interval must be at least 1 second, not 0.5"),
        ({"func": "nowhere.at_all"}, "task path 'nowhere.at_all' does not import"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_saves_nothing(
    config: Config, fields: dict[str, object], message: str
) -> None:
    func = fields.pop("func", "qframe.testing.tasks.inc")
    with pytest.raises(InvalidArgument) as error:
        schedule(func, name="bad", q_config=config, **fields)  # type: ignore[arg-type]
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert list_schedules(config) == []


def test_a_second_schedule_with_the_same_name_is_refused(config: Config) -> None:
    hourly(config)
    with pytest.raises(InvalidArgument, match=r"^a schedule named 'h' exists; delete it first$"):
        hourly(config)


def test_qframe_schedule_is_the_plugins(config: Config) -> None:
    import qframe

    assert isinstance(qframe.schedule("qframe.testing.tasks.inc", 1, name="q", q_config=config), Schedule)
    assert [r.name for r in list_schedules(config)] == ["q"]


def test_a_scheduler_that_read_the_schedule_before_the_winner_saved_does_not_run_the_slot_again(
    config: Config, client: Client, scheduler: DefaultScheduler
) -> None:
    before = hourly(config)
    assert scheduler.tick(at(0.5), client) == 1
    store = schedule_store(config)
    try:
        store.save_schedule("h", before.dumps())  # the view a rival read before the winner saved
    finally:
        store.close()
    rival = DefaultScheduler(config)
    try:
        assert rival.tick(at(0.5), client) == 0
    finally:
        rival.close()
    assert client.queue_size() == 1
    after = stored(config)
    assert after is not None and after.next_run == START + timedelta(hours=1)
