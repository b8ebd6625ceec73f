"""Results as a Django Q2 user expects them: the first success is final, group calls, waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Lab

from qframe.client import Client
from qframe.config import load as load_config
from qframe.errors import InvalidArgument
from qframe.testing import wait_until

pytestmark = pytest.mark.timeout(60)
RESULTS = "qframe_test_results"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    client = Client(load_config({"broker_url": f"sqlite:///{tmp_path}/q.db", "plugins": ()}, environ={}))
    yield client
    client.close()


def run_later(client: Client, seconds: float, func: str, *args: object, group: str) -> threading.Timer:
    """Run ``func(*args)`` with ``sync=True`` in group ``group``, in another thread, after ``seconds``."""

    def run() -> None:
        try:
            client.async_task(func, *args, sync=True, group=group)
        except ValueError:  # a failing task re-raises once its failure is saved
            pass
        finally:
            client.close()

    timer = threading.Timer(seconds, run)
    timer.start()
    return timer


def test_count_group_with_failures_counts_only_the_failures(client: Client) -> None:
    client.async_task("math.floor", 1.5, sync=True, group="g")
    for _ in range(2):
        with pytest.raises(ValueError):
            client.async_task("math.sqrt", -1, sync=True, group="g")
    assert client.count_group("g") == 1
    assert client.count_group("g", failures=True) == 2


def test_delete_group_without_tasks_keeps_the_results_but_not_the_group(client: Client) -> None:
    kept = client.async_task("math.floor", 1.5, sync=True, group="g")
    assert client.delete_group("g") == 1
    assert client.result(kept) == 1
    assert client.fetch_group("g") == [] and client.count_group("g") == 0
    gone = client.async_task("math.floor", 2.5, sync=True, group="h")
    assert client.delete_group("h", tasks=True) == 1
    assert client.fetch(gone) is None


def test_save_false_keeps_no_success_but_every_failure(client: Client) -> None:
    ok = client.async_task("math.floor", 1.5, sync=True, save=False, group="g")
    with pytest.raises(ValueError):
        client.async_task("math.sqrt", -1, sync=True, save=False, group="g")
    assert client.fetch(ok) is None
    [failure] = client.fetch_group("g")
    assert not failure.success and "ValueError" in failure.result


def test_a_record_carries_when_its_task_was_enqueued(client: Client) -> None:
    record = client.fetch(client.async_task("math.floor", 1.5, sync=True))
    assert record is not None and record.enqueued is not None
    assert record.enqueued <= record.started <= record.stopped
    assert record.time_taken == record.stopped - record.started


def test_result_group_with_count_waits_for_that_many_results(client: Client) -> None:
    timers = [run_later(client, 0.1 * n, "math.floor", n + 0.5, group="g") for n in range(3)]
    assert sorted(client.result_group("g", count=3, wait=30)) == [0, 1, 2]
    for timer in timers:
        timer.join()


def test_count_without_wait_blocks_until_reached_as_in_django_q2(client: Client) -> None:
    timers = [run_later(client, 0.1 * n, "math.floor", n + 0.5, group="g") for n in range(2)]
    assert len(client.fetch_group("g", count=2)) == 2
    for timer in timers:
        timer.join()


def test_fetch_group_count_includes_failures_and_result_group_count_does_not(client: Client) -> None:
    timers = [
        run_later(client, 0.1, "math.sqrt", -1, group="g"),
        run_later(client, 0.2, "math.floor", 1.5, group="g"),
    ]
    records = client.fetch_group("g", count=2, wait=30)
    assert sorted(r.success for r in records) == [False, True]
    assert client.result_group("g", count=1, wait=30) == [1]
    for timer in timers:
        timer.join()


def test_a_group_wait_gives_up_and_returns_what_there_is(client: Client) -> None:
    client.async_task("math.floor", 1.5, sync=True, group="g")
    assert client.result_group("g", count=3, wait=0.2) == [1]
    assert client.result_group("empty", wait=0.2) == []


def test_wait_without_count_returns_at_the_first_result(client: Client) -> None:
    timer = run_later(client, 0.2, "math.floor", 4.5, group="g")
    assert client.result_group("g", wait=30) == [4]
    timer.join()


@pytest.mark.parametrize("wait", [-2, -0.5, float("nan")])
def test_a_negative_wait_other_than_minus_one_is_refused(client: Client, wait: float) -> None:
    with pytest.raises(InvalidArgument, match=r"^wait must be 0 or more seconds, or -1 to wait without"):
        client.result("0" * 32, wait=wait)
    with pytest.raises(InvalidArgument, match="wait must be"):
        client.fetch_group("g", wait=wait)


def test_a_count_below_one_is_refused(client: Client) -> None:
    with pytest.raises(InvalidArgument, match=r"^count must be 1 or more results, got 0$"):
        client.result_group("g", count=0)


def test_waits_without_limit_return_once_a_cluster_saves_the_results(lab: Lab) -> None:
    ids = lab.client.async_tasks("qframe.testing.tasks.sleepy", [(f"t{n}", 0.2) for n in range(3)], group="g")
    lab.cluster()
    assert lab.client.result(ids[0], wait=-1) == "t0"
    assert len(lab.client.fetch_group("g", wait=-1)) >= 1
    assert sorted(lab.client.result_group("g", count=3, wait=-1)) == ["t0", "t1", "t2"]


def test_a_cluster_saves_failures_of_save_false_tasks_and_the_enqueue_time(lab: Lab) -> None:
    lab.cluster()
    ok = lab.client.async_task("qframe.testing.tasks.inc", 1, save=False, hook=f"{RESULTS}.note")
    bad = lab.client.async_task("qframe.testing.tasks.boom", "x", save=False)
    failure = lab.client.fetch(bad, wait=30)
    assert failure is not None and not failure.success and "boom x" in failure.result
    assert failure.enqueued is not None and failure.enqueued <= failure.started
    wait_until(lambda: lab.runs("note"), timeout=30)  # the hook runs after the monitor's save
    assert lab.client.fetch(ok) is None


def test_a_late_failure_of_a_task_that_ran_twice_leaves_the_first_success(lab: Lab) -> None:
    # Leases are never renewed: the first run outlives its lease, the task is delivered
    # again and that second run succeeds first; the first run then fails ("a later run
    # finished first") and its failure must not replace the saved success.
    lab.configure(broker=f"{RESULTS}:NoRenewal", store="sqlite", lease=0.5)
    lab.cluster()
    runs = lab.tmp / "runs"
    runs.mkdir()
    task_id = lab.client.async_task(f"{RESULTS}.slow_first_run_loses", str(runs), 3.0, hook=f"{RESULTS}.note")
    notes = wait_until(lambda: len(lab.runs("note")) == 2 and lab.runs("note"), timeout=30)
    assert [(row[1], row[2]) for row in notes] == [("2", "True"), ("1", "False")]
    record = lab.client.fetch(task_id)
    assert record is not None and record.success and record.attempts == 2
    second_run = [row for row in lab.runs("run") if row[1] == "2"]
    assert record.result == int(second_run[0][-1])
