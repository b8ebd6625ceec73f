"""Cluster scenarios every process manager must pass, on real clusters over the embedded SQLite broker.

A process manager's tests subclass :class:`ProcessManagerScenarios` and provide
``manager_env``, the ``QFRAME_*`` settings that choose the manager (and load its plugin,
for its options)::

    class TestThreadsScenarios(ProcessManagerScenarios):
        @pytest.fixture
        def manager_env(self):
            return {"QFRAME_PROCESS_MANAGER": "threads", "QFRAME_PLUGINS": "threads"}

The core runs them for ``prefork``; each manager plugin runs them for its own manager.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from qframe.testing.contracts import assert_size
from qframe.testing.faults import TASKS, recorded, settle, sigkill_a_busy_worker
from qframe.testing.lab import FaultLab, FaultTarget

#: Seconds a timed-out task that ignores its cancellation is given before its process is replaced.
GRACE = 2.0


@pytest.mark.timeout(180)
class ProcessManagerScenarios:
    """SIGKILL of a worker, timeouts, recycling and ``max_rss``, SIGTERM with tasks prefetched,
    ``async def`` tasks, ``cpu_affinity``."""

    @pytest.fixture
    def manager_env(self) -> Mapping[str, str]:
        """Return the ``QFRAME_*`` settings that choose the process manager under test."""
        raise NotImplementedError("a ProcessManagerScenarios subclass provides manager_env")

    @pytest.fixture
    def lab(self, manager_env: Mapping[str, str], tmp_path: Path) -> Iterator[FaultLab]:
        """A queue on a SQLite file, run by clusters of the manager under test."""
        env = {"QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/qframe.db", "QFRAME_GRACE": str(GRACE)}
        lab = FaultLab(FaultTarget({**env, **manager_env}), tmp_path / "lab")
        yield lab
        lab.close()

    def test_m1_sigkilled_worker_process_tasks_run_again_once(self, lab: FaultLab) -> None:
        sigkill_a_busy_worker(lab)

    def test_m2_timeout_is_recorded_once_and_the_stuck_worker_is_replaced(self, lab: FaultLab) -> None:
        lab.configure(lease=lab.lease(15.0))
        cluster = lab.cluster()
        stuck = lab.enqueue(f"{TASKS}.sleepy", "stuck", 60.0, timeout=1)
        settle(lab)
        record = lab.client.fetch(stuck)
        assert record is not None and (record.success, record.result, record.attempts) == (
            False,
            "timed out after 1 s",
            1,
        )
        cluster.wait_for(r"reincarnated worker Process-\w+ after death", timeout=60)
        after = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(10)])
        settle(lab)
        assert [lab.client.result(i) for i in after] == list(range(1, 11))
        ledger = lab.announced([stuck])
        assert (ledger.begun[stuck], ledger.finals[stuck]) == (1, 1)  # not retried, failed once
        lab.assert_invariant()

    def test_m3_recycled_worker_processes_lose_and_repeat_no_task(self, lab: FaultLab) -> None:
        lab.configure(recycle=5, workers=1)
        cluster = lab.cluster()
        ids = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(40)])
        settle(lab)
        assert [lab.client.result(i) for i in ids] == list(range(1, 41))
        assert {lab.client.fetch(i).attempts for i in ids} == {1}  # type: ignore[union-attr]
        cluster.wait_for(r"recycled worker Process-\w+", count=2)
        assert len({row[-1] for row in lab.ledger().kind("inc")}) >= 3  # ran in three processes or more
        lab.assert_invariant()

    def test_m4_sigterm_hands_back_prefetched_tasks_and_a_restart_runs_them_once(self, lab: FaultLab) -> None:
        lab.configure(workers=1, prefetch=4)
        ids = lab.enqueue_many(f"{TASKS}.sleepy", [(f"t{i}", 0.5) for i in range(40)])
        cluster = lab.cluster()
        recorded(lab, "sleepy")
        assert cluster.stop() == 0
        broker = lab.broker
        assert_size(broker.lock_size, 0, broker)  # nothing left leased
        finished = lab.finished()
        assert 1 <= finished < 40
        assert_size(broker.queue_size, 40 - finished, broker)
        lab.cluster()
        settle(lab)
        ledger = lab.ledger()
        assert [ledger.begun[i] for i in ids] == [1] * 40
        assert {lab.client.fetch(i).attempts for i in ids} == {1}  # type: ignore[union-attr]
        lab.assert_invariant()

    def test_m5_async_def_and_plain_tasks_run_side_by_side(self, lab: FaultLab) -> None:
        lab.cluster()
        naps = lab.enqueue_many(f"{TASKS}.nap", [(f"n{i}", 0.05) for i in range(20)])
        incs = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(20)])
        settle(lab)
        assert [lab.client.result(i) for i in naps] == [f"n{i}" for i in range(20)]
        assert [lab.client.result(i) for i in incs] == list(range(1, 21))
        lab.assert_invariant()

    def test_m6_async_def_task_past_timeout_is_recorded_as_timed_out(self, lab: FaultLab) -> None:
        lab.configure(lease=lab.lease(15.0))
        lab.cluster()
        late = lab.enqueue(f"{TASKS}.nap", "late", 60.0, timeout=1)
        settle(lab)
        record = lab.client.fetch(late)
        assert record is not None and (record.success, record.result) == (False, "timed out after 1 s")
        after = lab.enqueue(f"{TASKS}.nap", "after", 0.01)
        settle(lab)
        assert lab.client.result(after) == "after"
        lab.assert_invariant()

    def test_m8_worker_process_past_max_rss_is_recycled_without_losing_a_task(self, lab: FaultLab) -> None:
        lab.configure(max_rss=100, workers=1)
        cluster = lab.cluster()
        # Two waves: lanes that run at once (threads, asyncio) all start in one process.
        first = lab.enqueue_many(f"{TASKS}.grow", [(30,)] * 4)
        settle(lab)
        second = lab.enqueue_many(f"{TASKS}.grow", [(30,)] * 4)
        settle(lab)
        leaks = first + second
        assert all(lab.client.fetch(i).success for i in leaks)  # type: ignore[union-attr]
        assert [lab.ledger().begun[i] for i in leaks] == [1] * 8
        leaking_pid = lab.client.result(first[0])
        assert leaking_pid not in {lab.client.result(i) for i in second}  # that process was replaced
        cluster.wait_for(r"recycled worker Process-\w+")
        lab.assert_invariant()

    def test_m7_cpu_affinity_pins_each_worker_process(self, lab: FaultLab) -> None:
        if len(os.sched_getaffinity(0)) < 2:
            pytest.skip("one CPU: nothing to pin")
        lab.configure(cpu_affinity=1)
        lab.cluster()
        ids = lab.enqueue_many(f"{TASKS}.affinity", [()] * 10)
        settle(lab)
        assert {len(lab.client.result(i)) for i in ids} == {1}
        lab.assert_invariant()
