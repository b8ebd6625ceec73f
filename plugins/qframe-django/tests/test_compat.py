"""Django Q2's API from qframe_django.compat: milliseconds, sync, on_commit, models, Stat."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.db import transaction
from django.test import override_settings

from qframe_django import compat
from qframe_django.conf import reset
from qframe_django.models import Failure, QueuedMessage, Success, Task

pytestmark = [pytest.mark.timeout(60), pytest.mark.django_db(transaction=True)]

Q2_SYNC = {"name": "compat", "orm": "default", "retry": 30, "timeout": 20, "workers": 1, "sync": True}
Q2 = {**Q2_SYNC, "sync": False}


@pytest.fixture
def sync() -> Iterator[None]:
    with override_settings(Q_CLUSTER=Q2_SYNC):
        reset()
        yield
    reset()


@pytest.fixture
def queued() -> Iterator[None]:
    with override_settings(Q_CLUSTER=Q2):
        reset()
        yield
    reset()


def test_sync_setting_runs_tasks_in_the_calling_process(sync: None) -> None:
    task_id = compat.async_task("djtest_app.tasks.add", 2, 3, group="g")
    assert task_id is not None
    assert compat.result(task_id) == 5
    row = compat.fetch(task_id)
    assert isinstance(row, Task) and row.success and row.result == 5 and row.args == (2, 3)
    assert Success.objects.filter(id=task_id).exists()
    assert compat.result_group("g") == [5] and compat.count_group("g") == 1
    assert [r.id for r in compat.fetch_group("g")] == [task_id]
    assert compat.delete_group("g") == 1 and compat.count_group("g") == 0
    assert QueuedMessage.objects.count() == 0


def test_a_sync_failure_raises_and_is_saved_as_a_failure(sync: None) -> None:
    with pytest.raises(ValueError, match="boom"):
        compat.async_task("djtest_app.tasks.fail", "boom")
    [failure] = Failure.objects.all()
    assert "ValueError: boom" in failure.result


def test_waits_are_milliseconds(queued: None) -> None:
    start = time.monotonic()
    assert compat.result("no-such-task", wait=300) is None
    assert 0.25 <= time.monotonic() - start < 5
    assert compat.seconds(-1) == -1 and compat.seconds(1500) == 1.5


def test_on_commit_enqueues_when_the_transaction_commits(queued: None) -> None:
    with transaction.atomic():
        assert compat.async_task("djtest_app.tasks.add", 1, 1, on_commit=True) is None
        assert compat.queue_size() == 0
    assert compat.queue_size() == 1


def test_on_commit_enqueues_nothing_when_the_transaction_rolls_back(queued: None) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        compat.async_task("djtest_app.tasks.add", 1, 1, on_commit=True)
        raise RuntimeError("rolled back")
    assert compat.queue_size() == 0


def test_on_commit_outside_a_transaction_enqueues_at_once_and_returns_the_id(queued: None) -> None:
    task_id = compat.async_task("djtest_app.tasks.add", 1, 1, on_commit=True)
    assert isinstance(task_id, str) and compat.queue_size() == 1


def test_chain_iter_and_async_task_enqueue_on_the_projects_queue(queued: None) -> None:
    group = compat.async_chain([("djtest_app.tasks.add", (1, 2)), ("djtest_app.tasks.add", (3, 4))])
    assert isinstance(group, str) and compat.queue_size() == 1
    compat.Iter("djtest_app.tasks.add", [(1, 2), (3, 4)]).run()
    assert compat.queue_size() == 3
    task = compat.AsyncTask("djtest_app.tasks.add", 5, 6)
    task.run()
    assert compat.queue_size() == 4 and task.result(wait=50) is None


def test_async_task_in_sync_mode_via_async_task_class(sync: None) -> None:
    task = compat.AsyncTask("djtest_app.tasks.add", 5, 6)
    task.run()
    assert task.result() == 11


def test_cached_is_accepted(sync: None) -> None:
    task_id = compat.async_task("djtest_app.tasks.add", 1, 2, cached=60)
    assert compat.result(task_id, cached=True) == 3


def test_schedule_uses_the_project_timezone_and_q_cluster_catch_up(queued: None) -> None:
    with override_settings(Q_CLUSTER={**Q2, "catch_up": False}, TIME_ZONE="Europe/Amsterdam"):
        reset()
        record = compat.schedule(
            "djtest_app.tasks.add", 1, 2, name="nightly", schedule_type=compat.Schedule.DAILY
        )
    assert (record.timezone, record.catch_up) == ("Europe/Amsterdam", False)
    from qframe_django.models import Schedule

    assert Schedule.objects.filter(id="nightly").exists()


def test_stat_get_all_lists_no_cluster_when_none_runs(queued: None) -> None:
    assert compat.Stat.get_all() == []


def test_a_broker_argument_is_a_clear_error(queued: None) -> None:
    with pytest.raises(TypeError, match="broker="):
        compat.async_task("djtest_app.tasks.add", 1, 2, broker=object())


def test_the_task_models_have_django_q2s_helpers(sync: None) -> None:
    first = compat.async_task("djtest_app.tasks.add", 1, 1, group="h", task_name="one")
    compat.async_task("djtest_app.tasks.add", 2, 2, group="h", task_name="two")
    with pytest.raises(ValueError):
        compat.async_task("djtest_app.tasks.fail", "x", group="h", task_name="bad")
    assert Task.get_task(first).name == "one" and Task.get_task("two").result == 4
    assert Task.get_result(first) == 2 and Task.get_result("missing") is None
    assert Task.get_result_group("h") == [2, 4]
    assert [t.name for t in Task.get_task_group("h")] == ["one", "two", "bad"]
    assert (Task.get_group_count("h"), Task.get_group_count("h", failures=True)) == (3, 1)
    assert Task.delete_group("h") == 3 and Task.objects.count() == 3


def test_django_q2_code_creates_schedules_with_schedule_objects_create(queued: None) -> None:
    made = compat.Schedule.objects.create(
        func="djtest_app.tasks.add",
        name="q2-style",
        args="2, 3",
        kwargs="",
        schedule_type=compat.Schedule.HOURLY,
    )
    assert (made.name, made.args, made.schedule_type) == ("q2-style", (2, 3), compat.Schedule.HOURLY)
    assert compat.Schedule.objects.get("q2-style").args == (2, 3)
    assert [s.name for s in compat.Schedule.objects.all()] == ["q2-style"]
    assert compat._literal_kwargs("a=1, b='x'") == {"a": 1, "b": "x"}
    assert compat._literal_kwargs("{'a': 1}") == {"a": 1}


def test_a_sync_chain_runs_its_links_here_in_order(sync: None) -> None:
    chain = compat.Chain([("djtest_app.tasks.add", (1, 2)), ("djtest_app.tasks.add", (3, 4))])
    group = chain.run()
    assert compat.result_group(group) == [3, 7] and chain.result() == [3, 7]
    assert QueuedMessage.objects.count() == 0
