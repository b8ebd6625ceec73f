"""The threads manager passes the process-manager cluster scenarios, plus what is its own."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from qframe.testing.faults import TASKS, recorded, settle
from qframe.testing.lab import FaultLab
from qframe.testing.manager_scenarios import GRACE, ProcessManagerScenarios

THREADS = {
    "QFRAME_PROCESS_MANAGER": "threads",
    "QFRAME_PLUGINS": "threads",
    "QFRAME_THREADS": "4",
}


class TestThreadsScenarios(ProcessManagerScenarios):
    @pytest.fixture
    def manager_env(self) -> Mapping[str, str]:
        return THREADS

    def test_threads_of_one_process_run_tasks_at_once(self, lab: FaultLab) -> None:
        lab.configure(workers=1)
        lab.cluster()
        ids = lab.enqueue_many(f"{TASKS}.ledger", [(f"t{i}", 1.0) for i in range(4)])
        settle(lab)
        records = [lab.client.fetch(i) for i in ids]
        assert all(r is not None and r.success for r in records)
        assert max(r.started for r in records) < min(r.stopped for r in records)  # type: ignore[union-attr]
        assert len({row[-1] for row in lab.ledger().kind("began")}) == 1  # one process, four threads

    def test_timed_out_thread_that_returns_within_grace_keeps_its_process(self, lab: FaultLab) -> None:
        lab.configure(workers=1, lease=lab.lease(15.0))
        cluster = lab.cluster()
        late = lab.enqueue(f"{TASKS}.ledger", "late", 1.0 + GRACE / 2, timeout=1)
        settle(lab)
        record = lab.client.fetch(late)
        assert record is not None and (record.success, record.result) == (False, "timed out after 1 s")
        recorded(lab, "ended")  # the abandoned thread returned ...
        after = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(8)])
        settle(lab)
        assert [lab.client.result(i) for i in after] == list(range(1, 9))
        assert len(cluster.worker_pids()) == 1  # ... so its process was kept
        assert "reincarnated" not in cluster.log
        assert lab.announced([late]).finals[late] == 1  # its late return changed nothing
        lab.assert_invariant(after)  # the late one returned after its failure was saved: discarded

    def test_timed_out_thread_past_grace_replaces_its_process_and_hands_back_the_others(
        self, lab: FaultLab
    ) -> None:
        lab.configure(workers=1, lease=lab.lease(15.0))
        cluster = lab.cluster()
        stuck = lab.enqueue(f"{TASKS}.sleepy", "stuck", 60.0, timeout=1)
        recorded(lab, "sleepy")
        busy = lab.enqueue(f"{TASKS}.ledger", "busy", 1.0 + GRACE + 2)
        recorded(lab, "began")
        settle(lab)
        cluster.wait_for(r"did not return within 2 s of grace; replacing the worker process")
        cluster.wait_for(r"reincarnated worker Process-\w+ after death \(exit code 70\)")
        stuck_record, busy_record = lab.client.fetch(stuck), lab.client.fetch(busy)
        assert stuck_record is not None and stuck_record.result == "timed out after 1 s"
        assert busy_record is not None and busy_record.success and busy_record.attempts == 2
        lab.assert_invariant()

    def test_timed_out_async_def_task_is_cancelled_and_its_process_kept(self, lab: FaultLab) -> None:
        lab.configure(workers=1, lease=lab.lease(15.0))
        cluster = lab.cluster()
        late = lab.enqueue(f"{TASKS}.nap", "late", 60.0, timeout=1)
        settle(lab)
        record = lab.client.fetch(late)
        assert record is not None and (record.success, record.result) == (False, "timed out after 1 s")
        recorded(lab, "nap-cancelled")
        after = lab.enqueue(f"{TASKS}.nap", "after", 0.01)
        settle(lab)
        assert lab.client.result(after) == "after"
        assert len(cluster.worker_pids()) == 1 and "reincarnated" not in cluster.log
        lab.assert_invariant()

    def test_recycled_process_retires_its_idle_threads_too(self, lab: FaultLab) -> None:
        lab.configure(workers=1, recycle=3)
        cluster = lab.cluster()
        ids = lab.enqueue_many(f"{TASKS}.inc", [(i,) for i in range(3)])
        settle(lab)
        assert [lab.client.result(i) for i in ids] == [1, 2, 3]
        cluster.wait_for(r"recycled worker Process-\w+")  # the three idle threads left as well
        after = lab.enqueue(f"{TASKS}.inc", 10)
        settle(lab)
        assert lab.client.result(after) == 11
        assert len(cluster.worker_pids()) == 2
        lab.assert_invariant()

    def test_start_logs_how_per_worker_options_apply(self, lab: FaultLab) -> None:
        cluster = lab.cluster()
        cluster.wait_for(
            r"process manager threads: 2 worker processes x 4 threads; recycle, max_rss and "
            r"cpu_affinity apply per worker process"
        )
