"""End-to-end tests of the task API (countdown, eta, retries) on a real cluster of any broker.

A plugin's tests subclass :class:`TaskApiContract` and provide a ``task_lab`` fixture: an
object with ``configure(**options)`` (``QFRAME_*`` settings for clusters started later and
for the client), ``client`` (a :class:`~qframe.client.Client` with those settings),
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
import time
from typing import Any, Protocol

import pytest

from qframe.client import Client
from qframe.testing.cluster import ClusterProcess

TASKS = "qframe.testing.tasks"


class TaskLab(Protocol):
    """What :class:`TaskApiContract` needs of a plugin's test queue."""

    @property
    def client(self) -> Client:
        """A producer with the clusters' settings."""

    def configure(self, **options: object) -> None:
        """Set ``QFRAME_*`` options for clusters started later and for the client."""

    def cluster(self) -> ClusterProcess:
        """Start a cluster and wait until it runs."""

    def runs(self, kind: str) -> list[list[str]]:
        """The task log's lines of ``kind``, split into fields."""


class TaskApiContract:
    """Delayed delivery (and, where the broker can, retries) through a real cluster."""

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
