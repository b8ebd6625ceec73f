"""The asyncio manager passes the process-manager cluster scenarios, plus what is its own."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

from qframe.testing.faults import TASKS, recorded, settle
from qframe.testing.lab import FaultLab
from qframe.testing.manager_scenarios import ProcessManagerScenarios

ASYNCIO = {
    "QFRAME_PROCESS_MANAGER": "asyncio",
    "QFRAME_PLUGINS": "asyncio",
    "QFRAME_CONCURRENCY": "10",
}


class TestAsyncioScenarios(ProcessManagerScenarios):
    @pytest.fixture
    def manager_env(self) -> Mapping[str, str]:
        return ASYNCIO

    def test_timed_out_coroutine_is_cancelled_and_its_process_kept(self, lab: FaultLab) -> None:
        lab.configure(workers=1, lease=lab.lease(15.0))
        cluster = lab.cluster()
        late = lab.enqueue(f"{TASKS}.nap", "late", 60.0, timeout=1)
        settle(lab)
        record = lab.client.fetch(late)
        assert record is not None and (record.success, record.result) == (False, "timed out after 1 s")
        recorded(lab, "nap-cancelled")
        after = lab.enqueue_many(f"{TASKS}.nap", [(f"a{i}", 0.01) for i in range(5)])
        settle(lab)
        assert [lab.client.result(i) for i in after] == [f"a{i}" for i in range(5)]
        assert len(cluster.worker_pids()) == 1 and "reincarnated" not in cluster.log
        lab.assert_invariant()

    def test_task_blocking_the_loop_past_its_timeout_replaces_the_process(self, lab: FaultLab) -> None:
        lab.configure(workers=1, lease=lab.lease(15.0))
        cluster = lab.cluster()
        hog = lab.enqueue(f"{TASKS}.hog_loop", "hog", 60.0, timeout=1)
        settle(lab)
        record = lab.client.fetch(hog)
        assert record is not None and record.result == "timed out after 1 s"
        cluster.wait_for(r"reincarnated worker Process-\w+ after death \(exit code 70\)", timeout=30)
        after = lab.enqueue(f"{TASKS}.nap", "after", 0.01)
        settle(lab)
        assert lab.client.result(after) == "after"
        lab.assert_invariant()

    def test_start_logs_how_per_worker_options_apply(self, lab: FaultLab) -> None:
        cluster = lab.cluster()
        cluster.wait_for(r"process manager asyncio: 2 worker processes x 10 tasks on one event loop each")


def test_two_processes_of_100_finish_1000_half_second_naps_under_10_s(tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    env = {
        "QFRAME_BROKER_URL": f"sqlite:///{tmp_path}/qframe.db",
        **ASYNCIO,
        "QFRAME_CONCURRENCY": "100",
        "QFRAME_WORKERS": "2",
        "QFRAME_PREFETCH": "200",
    }
    from qframe.testing.lab import FaultTarget

    lab = FaultLab(FaultTarget(env), tmp_path / "lab")
    try:
        lab.cluster()
        ids = lab.enqueue_many(f"{TASKS}.nap", [(f"n{i}", 0.5) for i in range(1000)])
        began = time.monotonic()
        settle(lab, timeout=120)
        elapsed = time.monotonic() - began
        records = [lab.client.fetch(i) for i in ids]
        assert all(r is not None and r.success for r in records)
        span = max(r.stopped for r in records) - min(r.started for r in records)  # type: ignore[union-attr]
        print(
            f"\n1000 x asyncio.sleep(0.5), 2 processes x 100: {span:.2f} s running, {elapsed:.2f} s to settle"
        )
        assert span < 10.0
        lab.assert_invariant()
    finally:
        lab.close()
