"""End-to-end tests: real ``qframe cluster`` processes on an SQS queue, results in SQLite.

SQS keeps no results, so every cluster here sets ``store = "sqlite"`` (one host). The
tasks in ``qframe.testing.tasks`` append a line per run to ``$QFRAME_TEST_LOG``, so the
tests count executions, not only results.
"""

from __future__ import annotations

import collections
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from qframe.client import Client
from qframe.config import load as load_config
from qframe.errors import PayloadTooLarge
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess
from qframe.testing.operations import OperationsContract
from qframe.testing.task_api import TaskApiContract
from qframe_sqs import SqsBroker, SqsFifoBroker
from tests.conftest import MotoServer

APP = Path(__file__).parent
TASKS = "qframe.testing.tasks"


class SqsLab:
    """One test's queue on the shared endpoint: environment, client, clusters and the tasks' log."""

    def __init__(self, tmp_path: Path, endpoint: str) -> None:
        self.name = f"e2e-{uuid.uuid4().hex[:8]}"
        self.endpoint = endpoint
        self.log_file = tmp_path / f"{self.name}.log"
        self.env = {
            "QFRAME_BROKER": "sqs",
            "QFRAME_BROKER_URL": f"sqs://?region=us-east-1&endpoint_url={endpoint}",
            "QFRAME_STORE": "sqlite",
            "QFRAME_STORE_URL": f"sqlite:///{tmp_path}/results.db",
            "QFRAME_SECRET_KEY": f"secret-{uuid.uuid4().hex}",
            "QFRAME_PLUGINS": "",
            "QFRAME_WORKERS": "2",
            "QFRAME_GUARD_CYCLE": "0.2",
            "QFRAME_NAME": self.name,
            "QFRAME_TEST_LOG": str(self.log_file),
        }
        self.clusters: list[ClusterProcess] = []
        self._client: Client | None = None
        self.broker = SqsBroker(self.env["QFRAME_BROKER_URL"], self.name)

    def configure(self, **options: object) -> None:
        """Set options for clusters started later and for the client."""
        self.env.update({f"QFRAME_{k.upper()}": str(v) for k, v in options.items()})
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> Client:
        """A producer with the clusters' settings."""
        if self._client is None:
            self._client = Client(load_config(environ=dict(self.env), cwd=APP))
        return self._client

    def cluster(self) -> ClusterProcess:
        """Start a cluster (lifetime bounded) and wait until it runs."""
        cluster = ClusterProcess(APP, self.env, lifetime=120)
        self.clusters.append(cluster)
        return cluster.wait_running(60)

    def runs(self, kind: str) -> list[list[str]]:
        """The task log's lines of ``kind``, split into fields (the last one is the pid)."""
        if not self.log_file.exists():
            return []
        rows = [line.split("\t") for line in self.log_file.read_text().splitlines()]
        return [row for row in rows if row[0] == kind]

    def idle(self) -> bool:
        """Nothing waits in the queue and nothing is in flight (SQS's approximate counts)."""
        return (self.broker.queue_size(), self.broker.lock_size()) == (0, 0)

    def close(self) -> None:
        """Kill the clusters and close the connections."""
        for cluster in self.clusters:
            cluster.kill_all()
        if self._client is not None:
            self._client.close()
        self.broker.close()


@pytest.fixture
def lab(tmp_path: Path, sqs_endpoint: str) -> Iterator[SqsLab]:
    """A fresh queue on the suite's endpoint; its clusters die with the test."""
    lab = SqsLab(tmp_path, sqs_endpoint)
    yield lab
    lab.close()


@pytest.mark.timeout(120)
def test_a_thousand_tasks_through_two_workers_give_one_result_each(lab: SqsLab) -> None:
    cluster = lab.cluster()
    ids = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(1000)], group="thousand")
    wait_until(lambda: lab.client.count_group("thousand") == 1000, timeout=90)
    assert sorted(lab.client.result_group("thousand")) == list(range(1, 1001))
    assert lab.client.result(ids[617]) == 618
    assert cluster.stop() == 0
    executions = collections.Counter(int(row[1]) for row in lab.runs("inc"))
    assert sorted(executions) == list(range(1000))
    assert [x for x, n in executions.items() if n > 1] == []
    assert lab.client.count_group("thousand", failures=True) == 0
    wait_until(lab.idle, timeout=10)


@pytest.mark.timeout(60)
def test_a_task_running_three_visibility_timeouts_runs_once(lab: SqsLab) -> None:
    lab.configure(lease=2)  # the pusher renews the visibility timeout every lease / 3
    cluster = lab.cluster()
    task_id = lab.client.async_task(f"{TASKS}.ledger", "long", 6.0)
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and record.success and record.result == "long"
    assert record.attempts == 1
    assert [row[1] for row in lab.runs("began")] == ["long"]
    assert cluster.stop() == 0
    wait_until(lab.idle, timeout=10)


@pytest.mark.timeout(60)
def test_sigkilled_worker_task_is_redelivered_with_one_result(lab: SqsLab) -> None:
    lab.configure(lease=2)
    cluster = lab.cluster()
    task_id = lab.client.async_task(f"{TASKS}.sleepy", "victim", 1.5, group="victims")
    [row] = wait_until(lambda: lab.runs("sleepy"), timeout=20)
    os.kill(int(row[-1]), signal.SIGKILL)
    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and record.success and record.result == "victim"
    assert record.attempts == 2
    assert [r[1] for r in lab.runs("sleepy")] == ["victim", "victim"]
    assert (lab.client.count_group("victims"), lab.client.count_group("victims", failures=True)) == (1, 0)
    assert cluster.stop() == 0
    wait_until(lab.idle, timeout=10)


def test_a_300_kib_payload_is_refused_at_enqueue_and_nothing_is_sent(lab: SqsLab) -> None:
    with pytest.raises(PayloadTooLarge, match=r"more than the 196608 bytes broker 'sqs' accepts"):
        lab.client.async_task(f"{TASKS}.inc", "x" * (300 * 1024))
    assert lab.broker.dequeue(1, wait=1.0) == []
    assert lab.broker.queue_size() == 0


@pytest.mark.timeout(90)
def test_cluster_logs_an_endpoint_restart_and_recovers_once_the_queue_exists_again(
    tmp_path: Path, own_moto: MotoServer
) -> None:
    lab = SqsLab(tmp_path, own_moto.endpoint)
    try:
        cluster = lab.cluster()
        assert lab.client.result(lab.client.async_task(f"{TASKS}.inc", 1), wait=20) == 2
        own_moto.stop()  # moto keeps nothing: the queue is gone with it
        cluster.wait_for(r"Process-\w+ cannot reach the broker, retrying: sqs queue", timeout=30)
        own_moto.start()  # empty, same port: the broker creates the queue again (create_queue)
        cluster.wait_for(r"Process-\w+ reached the broker again", timeout=30)
        lab.configure()  # a new producer: the old one's queue URL names the lost queue
        assert lab.client.result(lab.client.async_task(f"{TASKS}.inc", 41), wait=30) == 42
        assert cluster.process.poll() is None
        assert "reincarnated" not in cluster.log
        assert cluster.stop() == 0
    finally:
        lab.close()


@pytest.mark.timeout(60)
def test_a_cluster_without_a_store_is_refused_with_one_line_naming_the_stores(lab: SqsLab) -> None:
    del lab.env["QFRAME_STORE"], lab.env["QFRAME_STORE_URL"]
    cluster = ClusterProcess(APP, lab.env, lifetime=60)
    lab.clusters.append(cluster)
    assert cluster.process.wait(30) == 2
    [line] = cluster.wait_for(r"broker 'sqs' keeps no results of its own: set store \(QFRAME_STORE\)")
    assert "sqlite" in line and "memory" in line


@pytest.mark.timeout(60)
def test_a_fifo_queue_runs_the_tasks_of_its_message_group_in_order(lab: SqsLab) -> None:
    lab.configure(broker="sqs-fifo", workers=1)
    lab.broker = SqsFifoBroker(lab.env["QFRAME_BROKER_URL"], lab.name)
    lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(30)], group="ordered")
    cluster = lab.cluster()
    wait_until(lambda: lab.client.count_group("ordered") == 30, timeout=40)
    assert [int(row[1]) for row in lab.runs("inc")] == list(range(30))
    assert cluster.stop() == 0
    wait_until(lab.idle, timeout=10)


@pytest.mark.timeout(60)
def test_a_missing_queue_with_create_queue_false_stops_the_start_with_one_line_and_exit_2(
    lab: SqsLab,
) -> None:
    lab.configure(broker_options='{"create_queue": false}')
    cluster = ClusterProcess(APP, lab.env, lifetime=60)
    lab.clusters.append(cluster)
    assert cluster.process.wait(30) == 2
    cluster.wait_for(rf"sqs queue {lab.name} at .*: the queue does not exist")
    assert "cannot reach the broker" not in cluster.log  # refused at once, not retried
    assert "Traceback" not in cluster.log


class TestSqsDeadLetters:
    """SQS keeps no dead letters of qframe's kind: a task past max_attempts goes to the store's,
    and ``qframe dlq requeue`` runs it again (the shared test of :class:`TaskApiContract`)."""

    @pytest.fixture
    def task_lab(self, lab: SqsLab) -> SqsLab:
        """A fresh SQS queue with its results and dead letters in SQLite."""
        return lab

    test_a_task_past_max_attempts_is_a_dead_letter_and_dlq_requeue_runs_it_again = (
        TaskApiContract.test_a_task_past_max_attempts_is_a_dead_letter_and_dlq_requeue_runs_it_again
    )


class TestSqsOperations(OperationsContract):
    """``qframe info``, ``monitor`` and ``memory`` read the heartbeats from the store an SQS queue uses."""

    @pytest.fixture
    def ops_lab(self, lab: SqsLab) -> SqsLab:
        """A fresh SQS queue, its results and heartbeats in SQLite."""
        return lab
