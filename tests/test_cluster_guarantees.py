"""End-to-end: each guarantee the pusher, workers and process manager give, with real clusters."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
from conftest import APP, Lab

from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess

pytestmark = pytest.mark.timeout(120)
TASKS = "qframe.testing.tasks"


def test_lease_renewal_runs_a_task_three_times_its_lease_once(lab: Lab) -> None:
    lab.configure(lease=1)
    lab.cluster()
    task_id = lab.client.async_task(f"{TASKS}.sleepy", "long", 3.0)
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and record.success and record.attempts == 1
    assert len(lab.runs("sleepy")) == 1


def test_per_task_timeout_option_stops_the_task(lab: Lab) -> None:
    lab.configure(lease=30)
    lab.cluster()
    task_id = lab.client.async_task(f"{TASKS}.sleepy", "slow", 60, timeout=1)
    record = lab.client.fetch(task_id, wait=20)
    assert record is not None and not record.success
    assert record.result == "timed out after 1 s"


def test_delivery_past_max_attempts_is_given_up_not_run(lab: Lab) -> None:
    lab.configure(max_attempts=1, lease=1, grace=1)
    first = lab.cluster()
    task_id = lab.client.async_task(f"{TASKS}.sleepy", "once", 30)
    wait_until(lambda: lab.runs("sleepy"), timeout=20)
    first.kill_all()  # the whole cluster dies mid-task: only the lease brings it back
    lab.cluster()
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and not record.success
    assert record.result.startswith("gave up after 1 attempts")
    assert len(lab.runs("sleepy")) == 1


def test_max_rss_replaces_a_worker_that_grew_past_it(lab: Lab) -> None:
    lab.configure(max_rss=200, workers=1)
    cluster = lab.cluster()
    small = lab.client.result(lab.client.async_task(f"{TASKS}.grow", 1), wait=20)
    big = lab.client.result(lab.client.async_task(f"{TASKS}.grow", 300), wait=20)
    after = lab.client.result(lab.client.async_task(f"{TASKS}.grow", 1), wait=20)
    assert small == big != after
    cluster.wait_for(r"recycled worker Process-\w+")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs at least 2 CPUs")
def test_cpu_affinity_pins_each_worker(lab: Lab) -> None:
    lab.configure(cpu_affinity=1, workers=2)
    lab.cluster()
    cpus = [lab.client.result(lab.client.async_task(f"{TASKS}.affinity"), wait=20) for _ in range(4)]
    assert all(len(pinned) == 1 for pinned in cpus)


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_whole_cluster_under_start_method(lab: Lab, start_method: str) -> None:
    lab.configure(start_method=start_method)
    cluster = lab.cluster()
    ids = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(200)])
    assert [lab.client.result(task_id, wait=60) for task_id in ids] == list(range(1, 201))
    victim = lab.client.async_task(f"{TASKS}.sleepy", "victim", 1.5)
    [row] = wait_until(lambda: lab.runs("sleepy"), timeout=20)
    os.kill(int(row[-1]), signal.SIGKILL)
    record = lab.client.fetch(victim, wait=60)
    assert record is not None and record.success and record.attempts == 2
    cluster.wait_for(r"reincarnated worker Process-\w+ after death")
    assert cluster.stop() == 0


def test_no_connection_is_copied_into_a_fork(lab: Lab) -> None:
    lab.configure(workers=1)
    cluster = lab.cluster()
    assert lab.client.result(lab.client.async_task(f"{TASKS}.inc", 1), wait=20) == 2
    time.sleep(0.5)  # a few guard cycles: the sentinel has used its broker and store by now
    [first] = cluster.worker_pids()
    os.kill(first, signal.SIGKILL)
    replacement = wait_until(lambda: cluster.worker_pids()[1:], timeout=20)[0]
    database = str(lab.tmp / "qframe.db")
    opened = [f.path for f in psutil.Process(replacement).open_files()]
    assert not [path for path in opened if path.startswith(database)]


def test_a_lease_finer_than_the_brokers_lease_resolution_is_refused(lab: Lab) -> None:
    lab.configure(broker="qframe_test_brokers:Limited", store="sqlite", lease=0.5)
    cluster = ClusterProcess(APP, lab.env)
    assert cluster.process.wait(30) == 2
    assert cluster.log.strip().splitlines()[-1] == (
        "qframe: error: lease (0.5 s) is shorter than broker 'qframe_test_brokers:Limited' can keep "
        "(its lease_resolution is 0.8 s)"
    )
