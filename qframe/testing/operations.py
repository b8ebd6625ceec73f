"""End-to-end tests of ``qframe info``, ``monitor`` and ``memory`` on a real cluster of any broker.

The commands read the clusters' heartbeats from the status store, so they must show the
same fields whatever the broker. A plugin's tests subclass :class:`OperationsContract`
and provide an ``ops_lab`` fixture: an object with ``env`` (the ``QFRAME_*`` settings of
the queue, as a dict, for the commands run as subprocesses), ``configure(**options)``,
``client`` and ``cluster()``, as for :class:`~qframe.testing.task_api.TaskApiContract`
(two workers and a short ``guard_cycle`` are expected)::

    class TestRedisOperations(OperationsContract):
        @pytest.fixture
        def ops_lab(self, make_lab):
            return make_lab()
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import psutil
import pytest

from qframe.client import Client
from qframe.cluster.stat import Stat, read_statuses
from qframe.testing.cluster import ClusterProcess
from qframe.testing.contracts import wait_until

TASKS = "qframe.testing.tasks"
MIB = 2**20


class OpsLab(Protocol):
    """What :class:`OperationsContract` needs of a plugin's test queue."""

    env: dict[str, str]

    @property
    def client(self) -> Client:
        """A producer with the clusters' settings."""

    def configure(self, **options: object) -> None:
        """Set ``QFRAME_*`` options for clusters started later and for the client."""

    def cluster(self) -> ClusterProcess:
        """Start a cluster and wait until it runs."""


def run_qframe(lab: OpsLab, cwd: Path, *args: str) -> str:
    """Run ``python -m qframe ARGS`` with the lab's settings; return its stdout (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-m", "qframe", *args],
        cwd=cwd,
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"qframe {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def table_row(output: str, first_cells: tuple[str, ...]) -> list[str]:
    """The cells of the table row of ``output`` that starts with ``first_cells``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if tuple(cells[: len(first_cells)]) == first_cells:
            return cells
    raise AssertionError(f"no row starting with {first_cells} in:\n{output}")


class OperationsContract:
    """``info --json``, ``monitor --run-once`` and ``memory --run-once`` against a running cluster."""

    @pytest.fixture
    def ops_lab(self) -> Any:
        """The queue under test; see the module docstring."""
        raise NotImplementedError("provide an ops_lab fixture")

    def busy_cluster(self, lab: OpsLab) -> Stat:
        """Start a cluster, run three tasks that succeed and one that fails; return a heartbeat after all
        four finished and were acknowledged."""
        lab.cluster()
        ids = [lab.client.async_task(f"{TASKS}.inc", n) for n in range(3)]
        ids.append(lab.client.async_task(f"{TASKS}.boom", "ops"))
        for task_id in ids:
            assert lab.client.fetch(task_id, wait=60) is not None
        config = lab.client.config

        def counted() -> Stat | None:
            stats = [s for s in read_statuses(config) if s.name == config.name]
            settled = len(stats) == 1 and (stats[0].queued, stats[0].leased) == (0, 0)
            return stats[0] if settled and stats[0].processed >= 4 else None

        stat: Stat = wait_until(counted, timeout=30)
        return stat

    @pytest.mark.timeout(120)
    def test_info_json_carries_the_heartbeats_pool_throughput_and_memory(
        self, ops_lab: OpsLab, tmp_path: Path
    ) -> None:
        self.busy_cluster(ops_lab)
        report = json.loads(run_qframe(ops_lab, tmp_path, "info", "--json"))
        queue = ops_lab.client.config.name
        assert (report["queue"], report["successes"], report["failures"]) == (queue, 3, 1)
        assert (report["queued"], report["leased"], report["dead_letters"]) == (0, 0, 0)
        [stat] = [c for c in report["clusters"] if c["name"] == queue]
        assert stat["host"] == socket.gethostname() and stat["status"] in ("Idle", "Working")
        assert (stat["configured_workers"], len(stat["workers"]), stat["reincarnations"]) == (2, 2, 0)
        assert stat["processed"] == 4 and stat["tasks_per_second"] > 0
        assert (stat["prefetched"], stat["results_pending"]) == (0, 0)
        processes = {stat["sentinel"], stat["pusher"], stat["monitor"], *stat["workers"]}
        assert {int(pid) for pid in stat["rss"]} == processes
        assert all(size > MIB for size in stat["rss"].values())
        assert stat["memory_total"] == psutil.virtual_memory().total
        assert 0 < stat["memory_lowest_available"] <= stat["memory_available"] <= stat["memory_total"]

    @pytest.mark.timeout(120)
    def test_monitor_run_once_shows_the_clusters_row_and_the_queues_counts(
        self, ops_lab: OpsLab, tmp_path: Path
    ) -> None:
        stat = self.busy_cluster(ops_lab)
        output = run_qframe(ops_lab, tmp_path, "monitor", "--run-once")
        row = table_row(output, (stat.host, stat.label))
        queue, state, pool, prefetched, pending, reincarnations, uptime, rate = row[2:]
        assert (queue, pool, prefetched, pending, reincarnations) == (stat.name, "2/2", "0", "0", "0")
        assert state in ("Idle", "Working")
        assert re.fullmatch(r"\d+:\d\d:\d\d", uptime) and float(rate) >= 0
        assert f"queue {stat.name} on " in output
        assert "queued 0 (leased 0)   successes 3   failures 1   dead letters 0" in output

    @pytest.mark.timeout(120)
    def test_memory_run_once_shows_each_processs_rss_measured_by_the_cluster(
        self, ops_lab: OpsLab, tmp_path: Path
    ) -> None:
        stat = self.busy_cluster(ops_lab)
        output = run_qframe(ops_lab, tmp_path, "memory", "--run-once", "--workers")
        cells = table_row(output, (stat.host, stat.label, stat.name))
        share, available, total, sentinel, pusher, monitor, workers, lowest = map(float, cells[3:])
        assert total == round(psutil.virtual_memory().total / MIB, 1)
        assert 0 < share <= 100 and 0 < lowest <= available <= total
        for size in (sentinel, pusher, monitor):
            assert size > 1
        assert workers > 2
        rows = {int(table_row(output, (stat.host, stat.label, str(pid)))[2]) for pid in stat.workers}
        assert rows == set(stat.workers)

    @pytest.mark.timeout(120)
    def test_prefetched_counts_the_tasks_held_behind_the_running_one(self, ops_lab: OpsLab) -> None:
        ops_lab.configure(workers=1)
        ops_lab.cluster()
        for n in range(4):
            ops_lab.client.async_task(f"{TASKS}.sleepy", f"held{n}", 5)
        config = ops_lab.client.config

        def holding() -> Stat | None:
            stats = [s for s in read_statuses(config) if s.name == config.name]
            return stats[0] if stats and stats[0].prefetched >= 1 else None

        stat: Stat = wait_until(holding, timeout=30)
        assert stat.status == "Working" and stat.prefetched <= 3
