"""End-to-end tests: real ``qframe cluster`` processes on a Redis the tests start.

Tests share the session's ``redis-server`` under a key prefix of their own; a test that
kills or reconfigures Redis gets a private one (append-only file fsynced on every
write). They run clusters in subprocesses with ``tests/app`` as their working directory
and enqueue with a :class:`~qframe.client.Client` built from the same ``QFRAME_*`` settings. The tasks in
``qframe.testing.tasks`` append a line per run to ``$QFRAME_TEST_LOG``,
so the tests count real executions, not only results.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console

from qframe.client import Client
from qframe.commands.monitor import live_frame
from qframe.commands.snapshot import Snapshots
from qframe.config import load as load_config
from qframe.errors import BrokerError
from qframe.testing import free_port, wait_until
from qframe.testing.cluster import ClusterProcess
from qframe.testing.operations import OperationsContract
from qframe.testing.task_api import TaskApiContract
from qframe_redis import RedisBroker

APP = Path(__file__).parent  # the clusters run here; the tasks come from qframe.testing.tasks
TASKS = "qframe.testing.tasks"
OUTAGE = r"Process-\w+ cannot reach the broker, retrying: redis broker at redis://127\.0\.0\.1:{port}/0"
RECOVERY = r"Process-\w+ reached the broker again"


class RedisLab:
    """One test's queue on a Redis: environment, client, clusters and the tasks' log."""

    def __init__(self, tmp_path: Path, server: Any, prefix: str = "qframe") -> None:
        self.server = server
        self.prefix = prefix
        self.name = f"e2e-{uuid.uuid4().hex[:8]}"
        self.log_file = tmp_path / f"{self.name}.log"
        self.env = {
            "QFRAME_BROKER_OPTIONS": json.dumps({"prefix": prefix}),
            "QFRAME_STORE_OPTIONS": json.dumps({"prefix": prefix}),
            "QFRAME_BROKER": "redis",
            "QFRAME_BROKER_URL": server.url,
            "QFRAME_SECRET_KEY": f"secret-{uuid.uuid4().hex}",
            "QFRAME_PLUGINS": "",
            "QFRAME_WORKERS": "2",
            "QFRAME_GUARD_CYCLE": "0.2",
            "QFRAME_NAME": self.name,
            "QFRAME_TEST_LOG": str(self.log_file),
        }
        self.clusters: list[ClusterProcess] = []
        self._client: Client | None = None
        self._broker: RedisBroker | None = None

    def configure(self, **options: object) -> None:
        """Set options for clusters started later and for the client."""
        self.env.update({f"QFRAME_{k.upper()}": str(v) for k, v in options.items()})
        self.close()

    @property
    def client(self) -> Client:
        """A producer with the clusters' settings."""
        if self._client is None:
            self._client = Client(load_config(environ=dict(self.env), cwd=APP))
        return self._client

    @property
    def broker(self) -> RedisBroker:
        """A direct handle on the queue, for its sizes."""
        if self._broker is None:
            self._broker = RedisBroker(self.server.url, self.name, prefix=self.prefix)
        return self._broker

    def cluster(self, wait: bool = True) -> ClusterProcess:
        """Start a cluster (lifetime bounded) and, unless told not to, wait until it runs."""
        cluster = ClusterProcess(APP, self.env, lifetime=120)
        self.clusters.append(cluster)
        return cluster.wait_running(60) if wait else cluster

    def runs(self, kind: str) -> list[list[str]]:
        """The task log's lines of ``kind``, split into fields (the last one is the pid)."""
        if not self.log_file.exists():
            return []
        rows = [line.split("\t") for line in self.log_file.read_text().splitlines()]
        return [row for row in rows if row[0] == kind]

    def close(self) -> None:
        """Close the client's and the broker's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None


@pytest.fixture
def make_lab(
    redis_server: Any, own_redis_server: Callable[..., Any], tmp_path: Path, key_prefix: str
) -> Iterator[Callable[..., RedisLab]]:
    """``make_lab(*redis_args, own=False)``: a queue; its clusters die with the test.

    The queue lives on the session's server under a fresh key prefix, or, with ``own``
    or server arguments, on a Redis of its own (for tests that kill or reconfigure it).
    """
    labs: list[RedisLab] = []

    def make(*redis_args: str, own: bool = False) -> RedisLab:
        if own or redis_args:
            lab = RedisLab(tmp_path, own_redis_server(*redis_args))
        else:
            lab = RedisLab(tmp_path, redis_server, key_prefix)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        for cluster in lab.clusters:
            cluster.kill_all()
        lab.close()


def assert_idle(lab: RedisLab) -> None:
    """Nothing waits in the queue and no lease is held."""
    wait_until(lambda: (lab.broker.queue_size(), lab.broker.lock_size()) == (0, 0), timeout=10)


@pytest.mark.timeout(120)
def test_two_clusters_share_one_queue_and_run_2000_tasks_once_each(make_lab: Any) -> None:
    lab = make_lab()
    # Frequent recycling on purpose: workers retire in the middle of the run (a race there
    # once handed a finished task back for a second run).
    lab.configure(recycle=100)
    first, second = lab.cluster(), lab.cluster()
    ids = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(2000)], group="two-thousand")
    wait_until(lambda: lab.client.count_group("two-thousand") == 2000, timeout=60)
    assert sorted(lab.client.result_group("two-thousand")) == list(range(1, 2001))
    assert lab.client.result(ids[1233]) == 1234
    assert first.stop() == 0 and second.stop() == 0  # nothing can run after this point

    runs = lab.runs("inc")
    executions = collections.Counter(int(row[1]) for row in runs)
    assert sorted(executions) == list(range(2000))
    twice = sorted(x for x, n in executions.items() if n > 1)
    assert not twice, f"tasks run more than once: {twice[:20]}"
    pids = {int(row[-1]) for row in runs}
    first_pids, second_pids = set(first.worker_pids()), set(second.worker_pids())
    assert len(first_pids) > 2 and len(second_pids) > 2 and not first_pids & second_pids  # recycled
    assert pids <= first_pids | second_pids
    assert pids & first_pids, "the first cluster ran nothing"
    assert pids & second_pids, "the second cluster ran nothing"
    assert lab.client.count_group("two-thousand", failures=True) == 0  # no failure records
    assert_idle(lab)
    assert "maxmemory-policy" not in first.log + second.log  # noeviction: no warning


@pytest.mark.timeout(60)
def test_sigkilled_worker_task_is_redelivered_with_one_result(make_lab: Any) -> None:
    lab = make_lab()
    cluster = lab.cluster()
    task_id = lab.client.async_task(f"{TASKS}.sleepy", "victim", 1.5, group="victims")
    [row] = wait_until(lambda: lab.runs("sleepy"), timeout=20)
    os.kill(int(row[-1]), signal.SIGKILL)

    record = lab.client.fetch(task_id, wait=30)
    assert record is not None and record.success and record.result == "victim"
    assert record.attempts == 2
    runs = lab.runs("sleepy")
    assert [r[1] for r in runs] == ["victim", "victim"]
    assert runs[0][-1] != runs[1][-1]  # the second run was on another worker
    assert (lab.client.count_group("victims"), lab.client.count_group("victims", failures=True)) == (1, 0)
    cluster.wait_for(r"Process-\w+ died while running message [0-9a-f]{32}; handed back to the broker")
    cluster.wait_for(r"reincarnated worker Process-\w+ after death \(killed by SIGKILL")
    assert_idle(lab)
    assert cluster.stop() == 0
    assert len(lab.runs("sleepy")) == 2


@pytest.mark.timeout(90)
def test_cluster_rides_out_a_redis_crash_and_restart(make_lab: Any) -> None:
    lab = make_lab(own=True)
    # A short lease: results that could not be saved during the outage are not acked,
    # and their messages come back when the lease runs out.
    lab.configure(lease=3)
    cluster = lab.cluster()
    workers = cluster.worker_pids()
    tags = [f"t{i:02d}" for i in range(24)]
    ids = lab.client.async_tasks(f"{TASKS}.sleepy", [(tag, 0.2) for tag in tags], group="outage")
    wait_until(lambda: len(lab.runs("sleepy")) >= 4, timeout=20)

    lab.server.kill_hard()  # SIGKILL while tasks are queued, prefetched and running
    cluster.wait_for(OUTAGE.format(port=lab.server.port), timeout=20)
    time.sleep(0.5)
    lab.server.start()  # same port, same data directory: it reloads its AOF
    cluster.wait_for(RECOVERY, timeout=20)

    wait_until(lambda: lab.client.count_group("outage") == len(tags), timeout=45)
    records = [lab.client.fetch(task_id) for task_id in ids]
    assert [r.result for r in records if r is not None and r.success] == tags
    assert lab.client.count_group("outage", failures=True) == 0
    assert set(r[1] for r in lab.runs("sleepy")) == set(tags)  # some may have run twice
    assert_idle(lab)
    assert len(cluster.wait_for(OUTAGE.format(port=lab.server.port))) == 1  # one line per outage
    assert len(cluster.wait_for(RECOVERY)) == 1
    assert cluster.process.poll() is None  # nobody restarted the cluster ...
    assert cluster.worker_pids() == workers  # ... nor any of its workers
    assert "reincarnated" not in cluster.log
    assert cluster.stop() == 0


@pytest.mark.timeout(60)
def test_evicting_maxmemory_policy_is_warned_about_at_start(make_lab: Any) -> None:
    lab = make_lab("--maxmemory-policy", "allkeys-lru")
    cluster = lab.cluster()
    [line] = cluster.wait_for(r"\[Q\] WARNING .*maxmemory-policy")
    url = re.escape(lab.server.url)
    assert re.search(rf"redis at {url} has maxmemory-policy allkeys-lru: .*noeviction", line), line
    start = cluster.lines.index(line)
    assert any(re.search(r"Q Cluster \S+ running\.", later) for later in cluster.lines[start:])
    assert lab.client.result(lab.client.async_task(f"{TASKS}.inc", 41), wait=20) == 42
    assert cluster.stop() == 0


@pytest.mark.timeout(60)
def test_enqueue_while_redis_is_down_raises_and_stores_nothing(make_lab: Any) -> None:
    lab = make_lab(own=True)
    lab.client.async_task(f"{TASKS}.inc", 0)  # a pooled connection that the crash breaks
    assert lab.client.queue_size() == 1
    lab.server.kill_hard()

    for enqueue in (
        lambda: lab.client.async_task(f"{TASKS}.inc", 1),
        lambda: lab.client.async_tasks(f"{TASKS}.inc", [(2,), (3,)]),
    ):
        start = time.monotonic()
        with pytest.raises(BrokerError, match=r"redis broker at redis://127\.0\.0\.1:\d+/0 is unreachable"):
            enqueue()  # raising is the point: no id comes back for a task that was not stored
        assert time.monotonic() - start < 5

    lab.server.start()
    assert lab.client.queue_size() == 1  # only the task enqueued before the crash
    admin = redis.Redis(host="127.0.0.1", port=lab.server.port)
    try:
        assert admin.llen(lab.broker.keys["ready"]) == 1  # id and payload in one entry
        assert admin.keys("qframe:{results}:*") == []
    finally:
        admin.close()


@pytest.mark.timeout(90)
def test_qframe_info_lists_a_running_cluster_from_the_redis_store_to_its_key_holders(make_lab: Any) -> None:
    lab = make_lab()
    cluster = lab.cluster()

    def info(**env: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "qframe", "info", "--json"],
            cwd=APP,
            env={**os.environ, **lab.env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    [shown] = wait_until(lambda: info()["clusters"], timeout=20)
    assert (shown["name"], shown["pid"]) == (lab.name, cluster.process.pid)
    assert info(QFRAME_SECRET_KEY="another key")["clusters"] == []
    assert cluster.stop() == 0


@pytest.mark.timeout(90)
def test_malformed_entries_are_dead_letters_and_the_good_tasks_beside_them_run_at_once(
    make_lab: Any, malformed_writer: Any
) -> None:
    lab = make_lab()
    lab.configure(lease=30)
    first = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(3)], group="beside")
    fragments = malformed_writer(lab.server.url, lab.prefix, lab.name)
    rest = lab.client.async_tasks(f"{TASKS}.inc", [(i,) for i in range(3, 10)], group="beside")
    cluster = lab.cluster()

    # Within a third of the lease: a wedged batch would come back only when its lease ran out.
    wait_until(lambda: lab.client.count_group("beside") == 10, timeout=10)
    assert [lab.client.result(task_id) for task_id in first + rest] == list(range(1, 11))
    reasons = sorted(letter.reason for letter in lab.broker.dead_letters())
    assert len(reasons) == len(fragments), reasons
    assert all(any(fragment in reason for reason in reasons) for fragment in fragments), reasons
    assert all(reason.startswith("malformed entry: ") for reason in reasons), reasons
    assert_idle(lab)
    assert cluster.stop() == 0
    assert "cannot reach the broker" not in cluster.log
    assert len(lab.runs("inc")) == 10


@pytest.mark.timeout(120)
def test_results_the_store_refused_are_saved_when_it_answers_again_and_nothing_runs_twice(
    make_lab: Any, own_redis_server: Callable[..., Any]
) -> None:
    lab = make_lab()
    store = own_redis_server()  # the store on a server of its own: the broker stays up
    lab.configure(lease=3, store="redis", store_url=store.url)
    cluster = lab.cluster()
    tags = [f"t{i:02d}" for i in range(20)]
    ids = lab.client.async_tasks(f"{TASKS}.ledger", [(tag, 0.3) for tag in tags], group="kept")
    wait_until(lambda: len(lab.runs("ended")) >= 2, timeout=20)

    store.kill_hard()  # tasks keep completing while their results cannot be saved
    time.sleep(5)  # longer than the lease: only renewed leases keep those tasks from running again
    store.start()  # same port and data: what was saved before the crash is still there

    wait_until(lambda: lab.client.count_group("kept") == len(tags), timeout=45)
    records = [lab.client.fetch(task_id) for task_id in ids]
    assert [(r.result, r.success, r.attempts) for r in records if r is not None] == [
        (t, True, 1) for t in tags
    ]
    assert lab.client.count_group("kept") == len(tags)  # successes only: no failure record at all
    began = collections.Counter(row[1] for row in lab.runs("began"))
    ended = collections.Counter(row[1] for row in lab.runs("ended"))
    assert began == ended == collections.Counter(tags)  # each ran once, to the end
    assert "could not save" in cluster.log  # the outage did hit finished tasks
    assert_idle(lab)
    assert cluster.stop() == 0


class TestRedisTaskApi(TaskApiContract):
    """The shared task API suite (countdown, eta, retries) on a private Redis server."""

    @pytest.fixture
    def task_lab(self, make_lab: Callable[..., RedisLab]) -> RedisLab:
        """A queue on a fresh Redis."""
        return make_lab()


class TestRedisOperations(OperationsContract):
    """``qframe info``, ``monitor`` and ``memory`` read the clusters' heartbeats from the Redis store."""

    @pytest.fixture
    def ops_lab(self, make_lab: Callable[..., RedisLab]) -> RedisLab:
        """A queue of its own on the session's Redis server."""
        return make_lab()


@pytest.mark.parametrize("command", [["monitor", "--run-once"], ["memory", "--run-once"], ["info", "--json"]])
def test_an_operations_command_with_redis_down_fails_with_one_line_naming_it(
    command: list[str], tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "QFRAME_BROKER": "redis", "QFRAME_BROKER_URL": url, "QFRAME_SECRET_KEY": "k"}
    done = subprocess.run(
        [sys.executable, "-m", "qframe", *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"qframe: error: redis store at {url} is unreachable")


def test_the_live_monitor_shows_an_unreachable_redis_in_its_frame_and_keeps_going() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    config = load_config({"broker": "redis", "broker_url": url, "secret_key": "k"}, environ={})
    snapshots = Snapshots(config)
    console = Console(width=200, record=True)
    console.print(live_frame(snapshots))
    assert f"cannot read the queue: redis store at {url} is unreachable" in console.export_text()
    snapshots.close()
