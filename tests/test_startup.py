"""A cluster starts only when its broker answers, names itself as the seed does, and stops in order.

Real ``qframe cluster`` processes on the embedded SQLite broker; the brokers that do not
answer are ``module:Class`` drivers from ``tests/app/qframe_test_brokers.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import psutil
import pytest
from conftest import APP, Lab
from test_cluster import NAME, START, STOP, assert_in_order

from qframe.cluster.stat import read_statuses
from qframe.config import load as load_config
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess

pytestmark = pytest.mark.timeout(120)


def qframe(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m qframe ARGS`` in the test app with the lab's settings."""
    return subprocess.run(
        [sys.executable, "-m", "qframe", *args],
        cwd=APP,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_unreachable_broker_is_one_error_line_and_exit_code_2_without_running(lab: Lab) -> None:
    lab.configure(store="sqlite", startup_wait=0.5)  # a module:Class broker keeps no results of its own
    done = qframe(lab, "cluster", "--broker", "qframe_test_brokers:PingFails")
    url = lab.env["QFRAME_BROKER_URL"]
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"qframe: error: cannot reach the broker {url} after 0.5 s: server went away"
    ]


def test_broker_that_answers_within_startup_wait_gets_a_running_cluster(lab: Lab) -> None:
    lab.configure(store="sqlite")
    cluster = lab.cluster("--broker", "qframe_test_brokers:AnswersThirdPing")  # two pings fail first
    assert lab.client.result(lab.client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
    assert cluster.stop() == 0


def test_sigterm_while_waiting_for_the_broker_exits_0_having_started_nothing(lab: Lab) -> None:
    lab.configure(store="sqlite", startup_wait=60, log_level="DEBUG")
    cluster = ClusterProcess(APP, lab.env, "--broker", "qframe_test_brokers:PingFails")
    lab.clusters.append(cluster)
    cluster.wait_for(r"DEBUG cannot reach the broker .* yet: server went away")
    children = psutil.Process(cluster.process.pid).children(recursive=True)
    assert cluster.stop(timeout=50) == 0  # before startup_wait ends: it would exit 2 after it
    assert children == []
    assert not re.search(r"error|starting\.|running\.", cluster.log)


def test_sigterm_during_start_up_ends_in_the_orderly_stop_with_a_stopped_status(lab: Lab) -> None:
    # The SIGTERM arrives while the sentinel starts the workers. A long guard_cycle keeps
    # the last published status (its TTL is 3 guard cycles) for the check below.
    lab.configure(plugin_modules="qframe_sigterm_plugin", guard_cycle=5)
    cluster = ClusterProcess(APP, lab.env)
    lab.clusters.append(cluster)
    assert cluster.process.wait(90) == 0
    [stat] = read_statuses(load_config(environ=lab.env, cwd=lab.tmp))
    assert stat.status == "Stopped"
    cluster.wait_for(rf"Q Cluster {NAME} has stopped\.")
    assert_in_order(cluster.lines, START + STOP)
    assert "failed to start" not in cluster.log


def test_qframe_info_shows_the_clusters_four_word_name_and_its_queue(lab: Lab) -> None:
    lab.configure(name="reports")
    cluster = lab.cluster()
    [name] = re.findall(rf"Q Cluster ({NAME}) starting\.", cluster.log)
    [shown] = wait_until(lambda: json.loads(qframe(lab, "info", "--json").stdout)["clusters"], timeout=20)
    assert (shown["label"], shown["name"]) == (name, "reports")
    table = qframe(lab, "info").stdout
    assert name in table and "reports" in table
    assert cluster.stop() == 0
