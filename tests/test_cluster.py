"""End-to-end tests: real multi-process clusters on the embedded SQLite broker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import APP, Lab

from qframe.builtin.sqlite import SQLiteBroker
from qframe.serialize import Codec
from qframe.task import Task
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess

pytestmark = pytest.mark.timeout(120)

NAME = r"[a-z]+-[a-z]+-[a-z]+-[a-z]+"  # the cluster's humanhash, as in the seed
START = [
    rf"Q Cluster {NAME} starting\.",
    r"Process-[0-9a-f]{32} ready for work at \d+",
    r"Process-[0-9a-f]{32} ready for work at \d+",
    r"Process-[0-9a-f]{32} monitoring at \d+",
    r"Process-[0-9a-f]{32} guarding cluster at \d+",
    r"Process-[0-9a-f]{32} pushing tasks at \d+",
    rf"Q Cluster {NAME} running\.",
]
STOP = [
    rf"Q Cluster {NAME} stopping\.",
    r"Process-[0-9a-f]{32} stopping cluster processes",
    r"Process-[0-9a-f]{32} stopped pushing tasks",
    r"Process-[0-9a-f]{32} stopped doing work",
    r"Process-[0-9a-f]{32} stopped doing work",
    r"Process-[0-9a-f]{32} stopped monitoring results",
    rf"Q Cluster {NAME} has stopped\.",
]
LINE = r"^\d\d:\d\d:\d\d \[Q\] INFO "


def assert_in_order(lines: list[str], patterns: list[str]) -> None:
    """Each pattern matches a later line than the one before it."""
    position = 0
    for pattern in patterns:
        while not re.search(LINE + pattern, lines[position]):
            position += 1
            assert position < len(lines), f"{pattern!r} missing or out of order in:\n" + "\n".join(lines)
        position += 1


def test_start_and_stop_print_the_seed_lines_in_order(lab: Lab) -> None:
    cluster = lab.cluster()
    assert cluster.stop() == 0
    assert_in_order(cluster.lines, START + STOP)
    [name] = re.findall(rf"Q Cluster ({NAME}) starting\.$", cluster.lines[0])
    assert cluster.lines[-1].endswith(f"Q Cluster {name} has stopped.")
    assert sum(f"Q Cluster {name} " in line for line in cluster.lines) == 5  # the seed's four, and ...
    cluster.wait_for(rf"Q Cluster {name} serves queue 'default' \(broker: sqlite ")  # ... the queue, once
    assert "generated a secret key in" in cluster.log  # first run on the embedded default


def test_sigint_stops_like_sigterm(lab: Lab) -> None:
    cluster = lab.cluster()
    cluster.process.send_signal(signal.SIGINT)
    assert cluster.process.wait(60) == 0
    assert_in_order(cluster.lines, STOP)


def test_500_tasks_give_500_results(lab: Lab) -> None:
    ids = lab.client.async_tasks("qframe.testing.tasks.inc", [(i,) for i in range(500)], group="five-hundred")
    cluster = lab.cluster()
    wait_until(lambda: lab.client.count_group("five-hundred") == 500, timeout=60)
    assert sorted(lab.client.result_group("five-hundred")) == list(range(1, 501))
    assert lab.client.result(ids[41]) == 42
    assert len(lab.runs("inc")) == 500
    assert cluster.stop() == 0


def test_options_never_reach_the_task_function(lab: Lab) -> None:
    lab.cluster()
    plain = lab.client.async_task("qframe.testing.tasks.echo_kwargs", a=1, group="g", timeout=30)
    wrapped = lab.client.async_task(
        "qframe.testing.tasks.echo_kwargs", group="as-argument", q_options={"group": "g2"}
    )
    assert lab.client.result(plain, wait=20) == {"a": 1}
    assert lab.client.result(wrapped, wait=20) == {"group": "as-argument"}
    assert lab.client.fetch(wrapped).group == "g2"


def test_sigkilled_worker_task_is_redelivered_with_one_result(lab: Lab) -> None:
    cluster = lab.cluster()
    task_id = lab.client.async_task("qframe.testing.tasks.sleepy", "victim", 1.5, group="victims")
    [row] = wait_until(lambda: lab.runs("sleepy"), timeout=20)
    os.kill(int(row[-1]), signal.SIGKILL)
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and record.success and record.result == "victim"
    assert record.attempts == 2
    assert len(lab.runs("sleepy")) == 2
    assert (lab.client.count_group("victims"), lab.client.count_group("victims", failures=True)) == (1, 0)
    cluster.wait_for(r"reincarnated worker Process-\w+ after death \(killed by SIGKILL")
    assert len(cluster.worker_pids()) == 3


def test_task_past_timeout_fails_once_and_its_worker_is_replaced(lab: Lab) -> None:
    lab.configure(plugin_modules="qframe_test_plugins", timeout=1, lease=10)
    cluster = lab.cluster()
    task_id = lab.client.async_task("qframe.testing.tasks.sleepy", "slow", 30)
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and not record.success
    assert record.result == "timed out after 1 s"
    wait_until(lambda: lab.runs("hook-failed"), timeout=30)  # hooks run in the monitor's hook thread
    assert [r[1] for r in lab.runs("hook-timed-out")] == [task_id]
    assert [r[1] for r in lab.runs("hook-failed")] == [task_id]
    wait_until(lambda: len(cluster.worker_pids()) == 3, timeout=10)
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
    time.sleep(1.5)
    assert len(lab.runs("sleepy")) == 1
    assert len(lab.runs("hook-timed-out")) == 1


def test_task_that_kills_its_worker_stops_at_max_attempts(lab: Lab) -> None:
    lab.configure(max_attempts=3)
    cluster = lab.cluster()
    task_id = lab.client.async_task("qframe.testing.tasks.suicide", "poison")
    record = lab.client.fetch(task_id, wait=60)
    assert record is not None and not record.success
    assert "died on each of 3 attempts" in record.result
    assert record.attempts == 3
    assert len(lab.runs("suicide")) == 3
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 5), wait=20) == 6
    assert cluster.stop() == 0
    assert len(lab.runs("suicide")) == 3


def test_tampered_payloads_are_rejected_and_the_queue_keeps_flowing(lab: Lab) -> None:
    broker = SQLiteBroker(lab.env["QFRAME_BROKER_URL"], "default")
    good_key = lab.client._queue(None)[2]  # the queue's real codec, to tamper with a valid envelope
    envelope = bytearray(good_key.encode(Task("qframe.testing.tasks.inc", (1000,)).to_dict()))
    envelope[-3] ^= 0xFF
    tampered = broker.enqueue(bytes(envelope))
    forged = broker.enqueue(
        Codec(["another key"], "default").encode(Task("qframe.testing.tasks.inc", (2000,)).to_dict())
    )
    garbage = broker.enqueue(b"not even a payload")
    ids = [lab.client.async_task("qframe.testing.tasks.inc", i) for i in range(5)]
    cluster = lab.cluster()
    assert [lab.client.result(i, wait=20) for i in ids] == [1, 2, 3, 4, 5]
    for message_id in (tampered, forged, garbage):
        cluster.wait_for(rf"rejected message {message_id} from queue 'default': ")
    assert sorted(d.message_id for d in broker.dead_letters()) == sorted([tampered, forged, garbage])
    listing = subprocess.run(
        [sys.executable, "-m", "qframe", "dead-letters"],
        cwd=APP,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()
    assert sorted(line.split("\t")[0] for line in listing) == sorted([tampered, forged, garbage])
    assert all(
        line.endswith("bad signature (tampered payload, or another secret key or cluster name)")
        or "too short" in line
        for line in listing
    )
    assert sorted(int(r[1]) for r in lab.runs("inc")) == [0, 1, 2, 3, 4]


def test_sigterm_hands_prefetched_tasks_back_and_a_restart_runs_them(lab: Lab) -> None:
    lab.configure(workers=1, prefetch=4)
    ids = [
        lab.client.async_task("qframe.testing.tasks.sleepy", f"t{i}", 0.5, group="deploy") for i in range(6)
    ]
    cluster = lab.cluster()
    wait_until(lambda: lab.runs("sleepy"), timeout=20)
    assert cluster.stop() == 0
    broker = SQLiteBroker(lab.env["QFRAME_BROKER_URL"], "default")
    assert broker.lock_size() == 0
    finished = lab.client.count_group("deploy")
    assert finished >= 1
    assert broker.queue_size() == 6 - finished
    lab.cluster()
    wait_until(lambda: lab.client.count_group("deploy") == 6, timeout=30)
    assert sorted(r[1] for r in lab.runs("sleepy")) == sorted(f"t{i}" for i in range(6))
    assert all(lab.client.fetch(i).success for i in ids)


def test_broken_event_plugin_is_logged_and_the_cluster_keeps_working(lab: Lab) -> None:
    lab.configure(plugin_modules="qframe_broken_plugin")
    cluster = lab.cluster()
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
    cluster.wait_for(r"plugin qframe_broken_plugin failed in qframe_task_succeeded; carrying on")
    cluster.wait_for(r"plugin qframe_broken_plugin failed in qframe_process_boot; carrying on")
    assert cluster.stop() == 0


def test_unknown_broker_is_one_line_listing_installed_brokers(lab: Lab) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qframe", "cluster", "--broker", "nosuch"],
        cwd=APP,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "qframe: error: unknown broker 'nosuch'; installed brokers: " + ", ".join(installed_brokers())
    ]


def installed_brokers() -> list[str]:
    from qframe.drivers import available

    return available("broker")


def test_sentinel_stops_the_cluster_when_the_main_process_dies(lab: Lab) -> None:
    cluster = lab.cluster()
    children = psutil.Process(cluster.process.pid).children(recursive=True)
    assert len(children) == 5  # sentinel, pusher, monitor, two workers
    os.kill(cluster.process.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(children, timeout=30)
    assert alive == []


def test_worker_is_recycled_after_its_quota(lab: Lab) -> None:
    lab.configure(recycle=5, workers=1)
    cluster = lab.cluster()
    ids = lab.client.async_tasks("qframe.testing.tasks.inc", [(i,) for i in range(12)])
    assert [lab.client.result(i, wait=30) for i in ids] == list(range(1, 13))
    assert {lab.client.fetch(i).attempts for i in ids} == {1}  # tasks queued in a retiring worker move on
    cluster.wait_for(r"recycled worker Process-\w+", count=2)
    assert len({r[-1] for r in lab.runs("inc")}) == 3


def test_constant_recycling_never_runs_a_task_twice(lab: Lab) -> None:
    lab.configure(recycle=3, workers=2)
    lab.cluster()
    ids = lab.client.async_tasks("qframe.testing.tasks.inc", [(i,) for i in range(600)], group="churn")
    wait_until(lambda: lab.client.count_group("churn") == 600, timeout=90)
    executions = sorted(int(r[1]) for r in lab.runs("inc"))
    assert executions == list(range(600))
    assert {lab.client.fetch(i).attempts for i in ids} == {1}


def test_delayed_task_waits_in_the_broker(lab: Lab) -> None:
    lab.cluster()
    start = time.time()
    task_id = lab.client.async_task("qframe.testing.tasks.inc", 1, delay=1.0)
    record = lab.client.fetch(task_id, wait=20)
    assert record is not None and record.result == 2
    assert record.started - start >= 0.9


def test_a_failing_broker_check_is_a_warning_not_a_crash(lab: Lab) -> None:
    lab.configure(store="sqlite")  # a module:Class broker keeps no results of its own
    cluster = lab.cluster("--broker", "qframe_test_brokers:WarningsFail")
    cluster.wait_for(r"WARNING could not check the broker's configuration: CONFIG is not allowed here")
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
    assert cluster.stop() == 0


def test_a_cluster_that_cannot_start_exits_and_leaves_no_process(lab: Lab) -> None:
    lab.configure(store="sqlite")  # a module:Class broker keeps no results of its own
    cluster = ClusterProcess(APP, lab.env, "--broker", "qframe_test_brokers:ChildrenFail")
    lab.clusters.append(cluster)
    assert cluster.process.wait(60) != 0
    cluster.wait_for(rf"Q Cluster {NAME} failed to start\. Sentinel exited with exit code 1\.")
    time.sleep(0.5)
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if "ChildrenFail" in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


def test_a_task_path_that_does_not_import_is_recorded_as_a_failure(lab: Lab) -> None:
    lab.cluster()
    task_id = lab.client.async_task("no_such_module.func", 1)
    record = lab.client.fetch(task_id, wait=20)
    assert record is not None and not record.success
    assert "TaskImportError: task path 'no_such_module.func' does not import" in record.result
    assert record.attempts == 1  # failed once, not redelivered
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
