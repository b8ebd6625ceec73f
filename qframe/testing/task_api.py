"""End-to-end tests of the task API (countdown, eta, retries) on a real cluster of any broker.

A plugin's tests subclass :class:`TaskApiContract` and provide a ``task_lab`` fixture: an
object with ``configure(**options)`` (``QFRAME_*`` settings for clusters started later and
for the client), ``env`` (those settings, for ``qframe`` commands run as subprocesses),
``client`` (a :class:`~qframe.client.Client` with those settings),
``cluster()`` (start a ``qframe cluster`` subprocess and wait until it runs; the fixture
kills it at the end) and ``runs(kind)`` (the lines the tasks of :mod:`qframe.testing.tasks`
wrote to ``$QFRAME_TEST_LOG``, split into fields)::

    class TestRedisTaskApi(TaskApiContract):
        @pytest.fixture
        def task_lab(self, make_lab):
            return make_lab()
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from qframe.asynctask import AsyncTask
from qframe.chain import Chain, async_chain
from qframe.client import Client
from qframe.iterate import Iter, async_iter
from qframe.task import TaskResult
from qframe.testing.cluster import ClusterProcess
from qframe.testing.contracts import wait_until

TASKS = "qframe.testing.tasks"


class TaskLab(Protocol):
    """What :class:`TaskApiContract` needs of a plugin's test queue."""

    @property
    def client(self) -> Client:
        """A producer with the clusters' settings."""

    @property
    def env(self) -> dict[str, str]:
        """The ``QFRAME_*`` settings of the queue, for ``qframe`` commands run as subprocesses."""

    def configure(self, **options: object) -> None:
        """Set ``QFRAME_*`` options for clusters started later and for the client."""

    def cluster(self) -> ClusterProcess:
        """Start a cluster and wait until it runs."""

    def runs(self, kind: str) -> list[list[str]]:
        """The task log's lines of ``kind``, split into fields."""


class TaskApiContract:
    """Delayed delivery, retries with backoff and chains through a real cluster."""

    @pytest.fixture
    def task_lab(self) -> Any:
        """The queue under test; see the module docstring."""
        raise NotImplementedError("provide a task_lab fixture")

    @pytest.mark.timeout(120)
    def test_countdown_longer_than_the_lease_runs_once_and_not_before_it(self, task_lab: TaskLab) -> None:
        task_lab.configure(lease=2)
        cluster = task_lab.cluster()
        enqueued = time.time()
        task_id = task_lab.client.async_task(f"{TASKS}.inc", 1, countdown=5)
        record = task_lab.client.fetch(task_id, wait=60)
        assert record is not None and record.result == 2
        assert record.started >= enqueued + 5
        time.sleep(3)  # past one more lease: a duplicate delivery would have run by now
        assert cluster.stop() == 0
        assert len(task_lab.runs("inc")) == 1

    @pytest.mark.timeout(120)
    def test_eta_runs_the_task_once_at_that_time(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        eta = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
        task_id = task_lab.client.async_task(f"{TASKS}.inc", 10, eta=eta)
        record = task_lab.client.fetch(task_id, wait=60)
        assert record is not None and record.result == 11
        assert record.started >= eta.timestamp()
        assert cluster.stop() == 0
        assert len(task_lab.runs("inc")) == 1

    @pytest.mark.timeout(120)
    def test_a_task_failing_twice_succeeds_at_attempt_3_with_growing_gaps(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        task_id = task_lab.client.async_task(
            f"{TASKS}.flaky", "twice", 2, retry_on=ValueError, max_attempts=3, retry_delay=1, jitter=False
        )
        record = final(task_lab.client, task_id, lambda r: r.success)
        assert (record.result, record.attempts) == (3, 3)
        assert cluster.stop() == 0
        runs = task_lab.runs("flaky")
        assert [int(row[2]) for row in runs] == [1, 2, 3]
        started = [float(row[3]) for row in runs]
        first_gap, second_gap = started[1] - started[0], started[2] - started[1]
        assert first_gap >= 1 and second_gap >= 2  # backoff 1 s, then 2 s: never sooner

    @pytest.mark.timeout(120)
    def test_a_task_asking_for_a_retry_runs_again_after_its_countdown(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        task_id = task_lab.client.async_task(f"{TASKS}.asks_retry", "later", 2)
        record = final(task_lab.client, task_id, lambda r: r.success)
        assert (record.result, record.attempts) == (2, 2)
        assert cluster.stop() == 0
        started = [float(row[3]) for row in task_lab.runs("asks_retry")]
        assert len(started) == 2 and started[1] - started[0] >= 2

    @pytest.mark.timeout(120)
    def test_a_task_out_of_attempts_keeps_its_last_error(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        task_id = task_lab.client.async_task(
            f"{TASKS}.flaky", "always", 9, retry_on=(KeyError, ValueError), max_attempts=2, retry_delay=0
        )
        record = final(task_lab.client, task_id, lambda r: r.attempts == 2)
        assert not record.success and "ValueError: flaky always attempt 2" in record.result
        time.sleep(1)  # a third run, if the retry rule were wrong, would start by now
        assert cluster.stop() == 0
        assert len(task_lab.runs("flaky")) == 2

    @pytest.mark.timeout(120)
    def test_an_error_not_in_retry_on_is_not_retried(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        task_id = task_lab.client.async_task(f"{TASKS}.boom", "once", retry_on=KeyError, retry_delay=0)
        record = task_lab.client.fetch(task_id, wait=60)
        assert record is not None and not record.success and record.attempts == 1
        time.sleep(1)
        assert cluster.stop() == 0
        assert len(task_lab.runs("boom")) == 1

    @pytest.mark.timeout(120)
    def test_a_three_link_chain_runs_in_order(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        links: list[tuple[Any, ...]] = [(f"{TASKS}.inc", (1,)), (f"{TASKS}.inc", (2,))]
        links.append((f"{TASKS}.inc", (3,), {}))
        chain = Chain(links, client=task_lab.client)
        chain.run()
        assert chain.result(wait=60) == [2, 3, 4]
        assert chain.current() == 3
        assert cluster.stop() == 0
        assert [row[1] for row in task_lab.runs("inc")] == ["1", "2", "3"]

    @pytest.mark.timeout(120)
    def test_a_failing_link_stops_the_chain(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        links = [(f"{TASKS}.inc", (1,)), (f"{TASKS}.boom", ("middle",)), (f"{TASKS}.inc", (3,))]
        group = async_chain(links, client=task_lab.client)
        records = task_lab.client.fetch_group(group, wait=60, count=2)
        assert [r.success for r in records] == [True, False]
        time.sleep(1)  # the third link, if it were enqueued, would have run by now
        assert cluster.stop() == 0
        assert [row[1] for row in task_lab.runs("inc")] == ["1"]

    @pytest.mark.timeout(120)
    def test_continue_on_failure_runs_the_links_after_a_failed_one(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        links = [(f"{TASKS}.boom", ("first",)), (f"{TASKS}.inc", (7,))]
        group = async_chain(links, continue_on_failure=True, client=task_lab.client)
        records = task_lab.client.fetch_group(group, wait=60, count=2)
        assert [r.success for r in records] == [False, True] and records[1].result == 8
        assert cluster.stop() == 0

    @pytest.mark.timeout(120)
    def test_a_chain_without_saved_results_still_completes(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        links = [(f"{TASKS}.inc", (x,)) for x in (1, 2, 3)]
        async_chain(links, save=False, client=task_lab.client)
        wait_until(lambda: len(task_lab.runs("inc")) == 3, timeout=60)
        assert cluster.stop() == 0
        assert [row[1] for row in task_lab.runs("inc")] == ["1", "2", "3"]

    @pytest.mark.timeout(120)
    def test_async_iter_over_50_inputs_returns_50_results_in_input_order(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        iter_id = async_iter(f"{TASKS}.inc", range(50), client=task_lab.client)
        assert task_lab.client.result(iter_id, wait=60) == [x + 1 for x in range(50)]
        record = task_lab.client.fetch(iter_id)
        assert record is not None and record.success
        assert cluster.stop() == 0
        assert len(task_lab.runs("inc")) == 50

    @pytest.mark.timeout(120)
    def test_an_iterator_on_two_clusters_collates_once_in_input_order(self, task_lab: TaskLab) -> None:
        clusters = [task_lab.cluster(), task_lab.cluster()]
        iter_id = async_iter(f"{TASKS}.inc", range(30), client=task_lab.client)
        assert task_lab.client.result(iter_id, wait=60) == [x + 1 for x in range(30)]
        assert [cluster.stop() for cluster in clusters] == [0, 0]
        assert sorted(int(row[1]) for row in task_lab.runs("inc")) == list(range(30))

    @pytest.mark.timeout(120)
    def test_a_failing_element_is_a_failure_in_the_iterators_result(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        iterator = Iter(f"{TASKS}.inc", [1, "two", 3], client=task_lab.client)
        iterator.run()
        collated = iterator.result(wait=60)
        assert collated is not None and (collated[0], collated[2]) == (2, 4)
        assert "TypeError" in collated[1]
        record = task_lab.client.fetch(iterator.id)
        assert record is not None and not record.success
        assert cluster.stop() == 0

    @pytest.mark.timeout(120)
    def test_an_element_retried_to_success_makes_the_iterator_a_success(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        iter_id = async_iter(
            f"{TASKS}.flaky",
            [("a", 0), ("b", 1)],
            retry_on=ValueError,
            max_attempts=2,
            retry_delay=1,
            client=task_lab.client,
        )
        record = final(task_lab.client, iter_id, lambda r: r.success)
        assert record.result == [1, 2]
        assert cluster.stop() == 0

    @pytest.mark.timeout(180)
    def test_a_task_past_max_attempts_is_a_dead_letter_and_dlq_requeue_runs_it_again(
        self, task_lab: TaskLab, tmp_path: Path
    ) -> None:
        marker = tmp_path / "fixed"
        cluster = task_lab.cluster()
        task_id = task_lab.client.async_task(
            f"{TASKS}.until_marker", str(marker), retry_on=ValueError, max_attempts=2, retry_delay=0
        )
        [letter] = wait_until(lambda: task_lab.client.dead_letters(), timeout=60)
        assert (letter.reason, letter.attempts) == ("past max_attempts (2)", 2)
        assert letter.last_error == f"ValueError: marker {marker} is not there yet"
        failed = task_lab.client.fetch(task_id)
        assert failed is not None and not failed.success and failed.attempts == 2  # result() answers too
        marker.write_text("fixed")
        requeue = subprocess.run(
            [sys.executable, "-m", "qframe", "dlq", "requeue", "--all"],
            cwd=tmp_path,
            env={**os.environ, **task_lab.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert requeue.returncode == 0, requeue.stderr
        assert "requeued 1 dead letters" in requeue.stdout
        record = final(task_lab.client, task_id, lambda r: r.success)
        assert (record.result, record.attempts) == ("fixed", 1)  # fresh attempts
        assert task_lab.client.dead_letters() == []
        assert cluster.stop() == 0
        assert [row[2] for row in task_lab.runs("until_marker")] == ["1", "2", "1"]

    @pytest.mark.timeout(120)
    def test_an_async_task_object_runs_with_the_options_set_on_it(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        task = AsyncTask(f"{TASKS}.inc", 41, client=task_lab.client)
        task.group, task.task_name = "answers", "the-answer"
        assert task.result() is None and task.fetch() is None  # not run yet
        task.run()
        assert task.result(wait=60) == 42
        record = task.fetch()
        assert record is not None and record.success and record.name == "the-answer"
        assert task.result_group(count=1, wait=60) == [42]
        assert [r.id for r in task.fetch_group()] == [task.id]
        assert cluster.stop() == 0

    @pytest.mark.timeout(120)
    def test_a_cached_result_disappears_after_its_time(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        client = task_lab.client
        cached = client.async_task(f"{TASKS}.inc", 1, cached=2)
        unsaved = client.async_task(f"{TASKS}.inc", 2, cached=2, save=False)
        kept = client.async_task(f"{TASKS}.inc", 3)
        records = [client.fetch(task_id, wait=60) for task_id in (cached, unsaved)]
        assert [r.result for r in records if r is not None] == [2, 3]  # there first, save=False too
        wait_until(lambda: client.fetch(cached) is None and client.fetch(unsaved) is None, timeout=60)
        assert time.time() >= max(r.stopped for r in records if r is not None) + 2
        assert client.result(kept, wait=60) == 4  # a result without cached= stays
        assert cluster.stop() == 0

    @pytest.mark.timeout(120)
    def test_a_slow_hook_does_not_delay_other_tasks_results(self, task_lab: TaskLab, tmp_path: Path) -> None:
        cluster = task_lab.cluster()
        client = task_lab.client
        release = tmp_path / "release-the-hook"
        slow = client.async_task(
            f"{TASKS}.echo_kwargs", release=str(release), task_name="slow-hooked", hook=f"{TASKS}.held_hook"
        )
        wait_until(lambda: task_lab.runs("hook_began"), timeout=60)
        quick = client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(20)])
        values = [client.result(task_id, wait=60) for task_id in quick]
        arrived = time.time()
        assert values == [i + 1 for i in range(20)]
        assert task_lab.runs("hook_ended") == []  # all 20 saved while the hook still runs
        assert client.fetch(slow) is not None
        release.touch()
        [ended] = wait_until(lambda: task_lab.runs("hook_ended"), timeout=60)
        assert float(ended[2]) > arrived
        assert cluster.stop() == 0

    @pytest.mark.timeout(120)
    def test_a_hook_runs_on_failure_on_timeout_and_without_a_saved_result(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        client, hook = task_lab.client, f"{TASKS}.note_hook"
        client.async_task(f"{TASKS}.inc", 1, save=False, task_name="unsaved", hook=hook)
        client.async_task(f"{TASKS}.boom", "x", task_name="failed", hook=hook)
        client.async_task(f"{TASKS}.sleepy", "t", 30, timeout=1, task_name="timed-out", hook=hook)
        rows = wait_until(lambda: len(task_lab.runs("hook")) >= 3 and task_lab.runs("hook"), timeout=60)
        seen = {row[1]: (row[2], row[3]) for row in rows}
        assert seen["unsaved"] == ("True", "2")
        assert seen["failed"][0] == "False" and "ValueError: boom x" in seen["failed"][1]
        assert seen["timed-out"][0] == "False" and "timed out" in seen["timed-out"][1]
        assert client.fetch("unsaved") is None  # the hook ran, and save=False kept no record
        assert cluster.stop() == 0

    @pytest.mark.timeout(120)
    def test_a_raising_hook_is_logged_in_one_line_and_the_result_is_kept(self, task_lab: TaskLab) -> None:
        cluster = task_lab.cluster()
        task_id = task_lab.client.async_task(
            f"{TASKS}.inc", 1, task_name="refused", hook=f"{TASKS}.raising_hook"
        )
        assert task_lab.client.result(task_id, wait=60) == 2
        [line] = cluster.wait_for(r"hook qframe\.testing\.tasks\.raising_hook failed on \[refused\]")
        assert "RuntimeError: hook refused refused" in line
        after = task_lab.client.async_task(f"{TASKS}.inc", 5)
        assert task_lab.client.result(after, wait=60) == 6  # the monitor carries on
        assert cluster.stop() == 0


def final(client: Client, task_id: str, done: Callable[[TaskResult], bool]) -> TaskResult:
    """The task's result record once ``done(record)`` holds (earlier attempts save failures first)."""
    record: TaskResult = wait_until(
        lambda: (found := client.fetch(task_id)) is not None and done(found) and found, timeout=60
    )
    return record
