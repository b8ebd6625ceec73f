"""Real ``qframe cluster`` processes on the Mongo broker and store, Mongo-wire-compatible (SecantusDB).

The scenarios of issue 13: two clusters on one queue, a frozen cluster that resumes after
its task was finished elsewhere, and a server SIGKILLed and restarted on the same data
directory. Each ends with the runs ledger's invariant (:mod:`qframe.testing.ledger`): every
task has exactly one final record, none is lost, no success is overwritten.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qframe.testing import FaultLab, FaultTarget, wait_until
from qframe.testing.faults import recorded, settle

pytestmark = [pytest.mark.timeout(150), pytest.mark.secantusdb]

TASKS = "qframe.testing.tasks"
OUTAGE = r"Process-\w+ cannot reach the broker, retrying: mongo broker at {url} is unreachable"
RECOVERY = r"Process-\w+ reached the broker again"


@pytest.fixture
def make_lab(
    mongo_url: str, own_mongo_server: Any, prefix: str, tmp_path: Path
) -> Iterator[Callable[..., FaultLab]]:
    """``make(own_server=False)``: a lab on the session's server, or on a private one it may kill."""
    labs: list[FaultLab] = []

    def make(own_server: bool = False) -> FaultLab:
        server = own_mongo_server() if own_server else None
        options = json.dumps({"prefix": prefix})
        env = {
            "QFRAME_BROKER": "mongo",
            "QFRAME_BROKER_URL": server.url if server else mongo_url,
            "QFRAME_BROKER_OPTIONS": options,
            "QFRAME_STORE_OPTIONS": options,
        }
        lab = FaultLab(FaultTarget(env, server), tmp_path / f"lab{len(labs)}")
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()


def assert_queue_empty(lab: FaultLab) -> None:
    wait_until(lambda: (lab.broker.queue_size(), lab.broker.lock_size()) == (0, 0), timeout=30)


class TestMongoWireCompatibleSecantusDBClusters:
    """Issue 13's cluster scenarios, Mongo-wire-compatible (SecantusDB)."""

    def test_two_clusters_on_one_queue_run_300_tasks_exactly_once(
        self, make_lab: Callable[..., FaultLab]
    ) -> None:
        lab = make_lab()
        first, second = lab.cluster(), lab.cluster()
        task_ids = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(300)])
        settle(lab, timeout=120)
        verdict = lab.assert_invariant()
        runs = lab.ledger().kind("inc")
        assert sorted(int(row[1]) for row in runs) == list(range(300))  # each executed once
        pids = {int(row[-1]) for row in runs}
        assert pids & set(first.worker_pids()) and pids & set(second.worker_pids())  # both took part
        assert [lab.client.result(i) for i in task_ids[:5]] == [1, 2, 3, 4, 5]
        assert verdict.tasks == 300
        assert_queue_empty(lab)

    def test_sigkilled_worker_task_is_redelivered_once(self, make_lab: Callable[..., FaultLab]) -> None:
        lab = make_lab()
        cluster = lab.cluster()
        victim = lab.enqueue(f"{TASKS}.sleepy", "victim", 1.5)
        [row] = recorded(lab, "sleepy")
        os.kill(int(row[-1]), signal.SIGKILL)
        settle(lab)
        record = lab.client.fetch(victim)
        assert record is not None and record.success and record.attempts == 2
        assert len(lab.ledger().kind("sleepy")) == 2  # the killed run and the one redelivery
        cluster.wait_for(r"reincarnated worker Process-\w+ after death")
        lab.assert_invariant()
        assert_queue_empty(lab)

    def test_a_cluster_frozen_past_its_lease_resumes_after_another_finished_the_task(
        self,
        make_lab: Callable[..., FaultLab],
    ) -> None:
        lab = make_lab()
        lab.configure(lease=lab.lease(2.0))
        frozen = lab.cluster()
        task_id = lab.enqueue(f"{TASKS}.ledger", "frozen", 1.0)
        recorded(lab, "began")
        os.killpg(frozen.process.pid, signal.SIGSTOP)  # the whole cluster: nothing touches the lease
        try:
            lab.cluster()
            assert lab.client.fetch(task_id, wait=30.0) is not None  # redelivered after the lease ran out
            assert len(lab.ledger().kind("began")) == 2
        finally:
            os.killpg(frozen.process.pid, signal.SIGCONT)
        # The frozen worker finishes too; its monitor's save is dropped (a success is final), and
        # its ack, made with the stale owner token, matches nothing. Its "final" ledger line comes
        # after that save.
        wait_until(lambda: len([r for r in lab.ledger().kind("final") if r[1] == task_id]) == 2, timeout=30)
        record = lab.client.fetch(task_id)
        assert record is not None and record.success and record.attempts == 2
        lab.assert_invariant()
        assert_queue_empty(lab)

    def test_a_server_sigkilled_and_restarted_on_its_data_the_cluster_reconnects_by_itself(
        self,
        make_lab: Callable[..., FaultLab],
    ) -> None:
        lab = make_lab(own_server=True)
        server = lab.target.server
        assert server is not None
        lab.configure(lease=lab.lease(3.0))
        cluster = lab.cluster()
        lab.enqueue_many(f"{TASKS}.sleepy", [(f"t{i:02d}", 0.2) for i in range(24)])
        recorded(lab, "sleepy", count=4)
        server.kill_hard()
        outage = OUTAGE.format(url=re.escape(lab.env["QFRAME_BROKER_URL"]))
        cluster.wait_for(outage, timeout=30)
        server.start()  # same port, same data directory
        cluster.wait_for(RECOVERY, timeout=30)
        settle(lab, timeout=240)  # SecantusDB replays its log slowly after a SIGKILL
        assert cluster.process.poll() is None and "reincarnated" not in cluster.log
        assert len(re.findall(outage, cluster.log)) == 1  # one line for the outage
        assert len(re.findall(RECOVERY, cluster.log)) == 1  # one for the recovery
        lab.assert_invariant()
        assert_queue_empty(lab)
