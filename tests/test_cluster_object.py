"""The Python ``Cluster`` object behaves as the seed's class reference says.

Each test runs a real cluster from this process (the sentinel and its children fork
from it) on a SQLite file of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qframe.client import Client
from qframe.cluster.cluster import Cluster
from qframe.config import Config
from qframe.config import load as load_config
from qframe.names import humanize
from qframe.testing import wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def make_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``make_cluster(**options)``: a Cluster (not started) and a client on one queue; stopped at the end."""
    monkeypatch.setenv("QFRAME_TEST_LOG", str(tmp_path / "runs.log"))  # where the test tasks record runs
    clusters: list[Cluster] = []

    def make(**options: Any) -> tuple[Cluster, Client]:
        values = {"broker_url": f"sqlite:///{tmp_path}/q.db", "workers": 1, "guard_cycle": 0.1, "plugins": ()}
        config: Config = load_config({**values, **options}, environ={}, cwd=tmp_path)
        cluster = Cluster(config)
        clusters.append(cluster)
        return cluster, Client(config)

    yield make
    for cluster in clusters:
        cluster.stop()


def test_before_start_stat_is_stopped_and_stop_returns_false(make_cluster: Any) -> None:
    cluster, _ = make_cluster()
    stat = cluster.stat
    assert (stat.status, stat.cluster_id, stat.pid) == ("Stopped", cluster.cluster_id, os.getpid())
    assert cluster.stop() is False
    assert not cluster.has_stopped


def test_start_returns_the_pid_and_stop_returns_true_once(make_cluster: Any) -> None:
    cluster, client = make_cluster()
    assert cluster.start() == os.getpid() == cluster.pid
    assert cluster.is_running and cluster.start_event.is_set()
    assert cluster.name == humanize(cluster.cluster_id)
    assert client.result(client.async_task("qframe.testing.tasks.inc", 1), wait=20) == 2
    assert wait_until(lambda: cluster.stat.status in ("Idle", "Working"), timeout=10)
    assert cluster.stop() is True
    assert cluster.has_stopped and not cluster.is_running
    assert cluster.stat.status == "Stopped"
    assert cluster.stop() is False


@pytest.mark.parametrize(
    ("options", "task"),
    [
        ({"recycle": 1}, ("qframe.testing.tasks.inc", 1)),
        ({"max_rss": 1}, ("qframe.testing.tasks.inc", 1)),  # every task leaves the worker above 1 MiB
        ({"timeout": 0.5, "lease": 5, "max_attempts": 1}, ("qframe.testing.tasks.sleepy", "slow", 30)),
        ({"max_attempts": 1}, ("qframe.testing.tasks.suicide", "poison")),
    ],
    ids=["recycle", "max_rss", "timeout", "death"],
)
def test_reincarnations_count_every_replaced_worker(
    make_cluster: Any, options: dict[str, Any], task: tuple[Any, ...]
) -> None:
    cluster, client = make_cluster(**options)
    cluster.start()
    ids = [client.async_task(*task) for _ in range(2)]
    for task_id in ids:
        assert client.fetch(task_id, wait=30) is not None
    assert wait_until(lambda: cluster.stat.reincarnations >= 2, timeout=20)
