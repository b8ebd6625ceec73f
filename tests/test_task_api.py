"""The task API end to end on the SQLite default (the shared :class:`TaskApiContract`), and its options."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from conftest import Lab

import qframe
from qframe.asynctask import AsyncTask
from qframe.client import Client
from qframe.cluster.collate import collate
from qframe.cluster.retries import backoff
from qframe.config import load as load_config
from qframe.countdown import delay_of
from qframe.errors import ConfigError, InvalidArgument
from qframe.iterate import Iter, async_iter, element_id, element_index
from qframe.retry_options import retry_fields
from qframe.task import Task, TaskResult
from qframe.testing.task_api import TaskApiContract


class TestSqliteTaskApi(TaskApiContract):
    """The contract on a SQLite file broker and store."""

    @pytest.fixture
    def task_lab(self, lab: Lab) -> Lab:
        """The core tests' lab."""
        return lab


def test_countdown_is_seconds_from_now() -> None:
    assert delay_of({"countdown": 5}) == 5.0
    assert delay_of({"delay": 1.5}) == 1.5
    assert delay_of({}) == 0.0


def test_eta_is_the_seconds_until_that_moment_and_a_past_eta_is_due_at_once() -> None:
    now = 1_000_000.0
    eta = datetime.datetime.fromtimestamp(now + 30, datetime.UTC)
    assert delay_of({"eta": eta}, now=now) == pytest.approx(30.0)
    assert delay_of({"eta": eta}, now=now + 60) == 0.0


def test_a_naive_eta_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidArgument, match=r"^eta 2030-01-01T00:00:00 is a naive datetime: give it"):
        delay_of({"eta": datetime.datetime(2030, 1, 1)})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"countdown": 1, "eta": datetime.datetime.now(datetime.UTC)}, "give one of delay, countdown and"),
        ({"countdown": -1}, "countdown must be a number of seconds, 0 or more, got -1"),
        ({"countdown": "5"}, "countdown must be a number of seconds, 0 or more, got '5'"),
        ({"eta": 5}, "eta must be a datetime, got int 5"),
    ],
)
def test_bad_delay_options_are_refused_in_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        delay_of(options)


def test_a_naive_eta_enqueues_nothing(lab: Lab) -> None:
    client: Client = lab.client
    with pytest.raises(InvalidArgument, match="naive datetime"):
        client.async_task("qframe.testing.tasks.inc", 1, eta=datetime.datetime(2030, 1, 1))
    with pytest.raises(InvalidArgument, match="naive datetime"):
        client.async_tasks("qframe.testing.tasks.inc", [(1,)], eta=datetime.datetime(2030, 1, 1))
    assert client.queue_size() == 0


def test_countdown_and_eta_are_options_not_arguments_of_the_task(lab: Lab) -> None:
    lab.client.async_task("qframe.testing.tasks.echo_kwargs", countdown=0, eta=None)
    assert lab.client.queue_size() == 1


def test_exponential_backoff_doubles_up_to_its_cap_and_fixed_stays() -> None:
    assert [backoff(n, "exponential", 1.0, 5.0, jitter=False) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    assert [backoff(n, "fixed", 3.0, 600.0, jitter=False) for n in (1, 5)] == [3.0, 3.0]


def test_full_jitter_waits_between_zero_and_the_backoff() -> None:
    waits = [backoff(3, "exponential", 1.0, 600.0, jitter=True) for _ in range(200)]
    assert all(0.0 <= wait <= 4.0 for wait in waits) and len(set(waits)) > 1


def test_retry_options_become_task_fields_with_exception_paths() -> None:
    fields = retry_fields({"retry_on": (ValueError, "http.client.HTTPException"), "backoff": "fixed"})
    assert fields == {"retry_on": ("builtins.ValueError", "http.client.HTTPException"), "backoff": "fixed"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_on": 3}, "retry_on must name exception types, got 3"),
        ({"retry_on": (int,)}, "retry_on must name exception types, got <class 'int'>"),
        ({"backoff": "linear"}, "backoff must be 'fixed' or 'exponential', got 'linear'"),
        ({"max_backoff": -2}, "max_backoff must be a number of seconds, 0 or more, got -2"),
    ],
)
def test_bad_retry_options_are_refused_in_one_line(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        retry_fields(options)


def test_a_cluster_backoff_other_than_fixed_or_exponential_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="option 'backoff' must be 'fixed' or 'exponential', got 'linear'"):
        load_config(environ={"QFRAME_BACKOFF": "linear"}, cwd=tmp_path)


def test_current_task_is_none_outside_a_task() -> None:
    assert qframe.current_task() is None


def element_record(iter_id: str, index: int, value: object, success: bool = True) -> TaskResult:
    """A saved element's record, as a worker would leave it."""
    task = Task(
        "qframe.testing.tasks.inc", (index,), id=element_id(iter_id, index), group=iter_id, iter_count=3
    )
    return TaskResult.of(task, value, success, started=0.0, attempts=1)


def save(client: Client, *records: TaskResult) -> None:
    client.store.save_many([(r.meta, client._results().encode(r.to_dict())) for r in records])


def test_collation_is_in_input_order_whatever_order_the_elements_finished(lab: Lab) -> None:
    client: Client = lab.client
    iter_id = "ab" * 16
    save(client, element_record(iter_id, 2, "c"), element_record(iter_id, 0, "a"))
    assert not collate(client.store, client._results(), iter_id, 3)
    assert client.fetch(iter_id) is None  # two of three: nothing collated yet
    save(client, element_record(iter_id, 1, "boom", success=False))
    assert collate(client.store, client._results(), iter_id, 3)
    record = client.fetch(iter_id)
    assert record is not None and record.result == ["a", "boom", "c"] and not record.success


def test_collating_twice_leaves_one_success_and_a_later_success_replaces_a_failure(lab: Lab) -> None:
    client: Client = lab.client
    iter_id = "cd" * 16
    save(client, *(element_record(iter_id, i, i, success=i != 1) for i in range(3)))
    collate(client.store, client._results(), iter_id, 3)
    save(client, element_record(iter_id, 1, "retried"))  # the failed element's retry succeeded
    collate(client.store, client._results(), iter_id, 3)
    collate(client.store, client._results(), iter_id, 3)  # another monitor completing the same count
    assert client.result(iter_id) == [0, "retried", 2]
    assert client.count_group(iter_id) == 3  # the collated record is in no group


@pytest.mark.parametrize(
    ("iterable", "options", "message"),
    [
        ([], {}, "^an iterator needs at least one element$"),
        ([1], {"group": "g"}, "^an iterator sets its elements' 'group' itself; leave it out$"),
        ([1], {"save": False}, "^an iterator sets its elements' 'save' itself; leave it out$"),
    ],
)
def test_bad_iterators_are_refused_in_one_line_and_enqueue_nothing(
    lab: Lab, iterable: list[int], options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        async_iter("qframe.testing.tasks.inc", iterable, client=lab.client, **options)
    assert lab.client.queue_size() == 0


def test_an_iterator_element_is_its_argument_or_its_tuple_of_arguments(lab: Lab) -> None:
    iterator = Iter("qframe.testing.tasks.echo_kwargs", client=lab.client).append(1).append(2, 3)
    assert iterator.arguments == [1, (2, 3)]
    assert element_index(iterator.id, element_id(iterator.id, 300)) == 300


def test_an_async_task_run_in_sync_mode_saves_its_result_and_passes_its_keywords(lab: Lab) -> None:
    task = AsyncTask("qframe.testing.tasks.echo_kwargs", client=lab.client, colour="red", sync=True)
    assert task.sync is True and task.group is None and not task.started
    task.run()
    assert task.started and task.result() == {"colour": "red"}
    assert task.result_group() == [] and task.fetch_group() == []  # no group
