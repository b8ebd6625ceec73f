"""Three real clusters ticking one schedule on one store: every slot gives exactly one task."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from qframe.client import Client
from qframe.config import load as load_config
from qframe.testing import wait_until
from qframe.testing.cluster import ClusterProcess
from qframe_scheduler import get_schedule, schedule, set_enabled

HERE = Path(__file__).parent
NAME = "every-second"


def slots_of(client: Client) -> Counter[str]:
    """How many results each slot time has."""
    return Counter(str(result.kwargs["slot"]) for result in client.fetch_group(NAME))


def three_clusters_one_slot_each(env: dict[str, str], slots: int = 12) -> None:
    """Run three clusters, SIGKILL one midway, then check the slots from first to last once each."""
    env = {**env, "QFRAME_PLUGINS": "", "QFRAME_GUARD_CYCLE": "0.2", "QFRAME_WORKERS": "1",
           "QFRAME_LEASE": "3", "QFRAME_PREFETCH": "2", "QFRAME_SCHEDULER": "default"}  # fmt: skip
    config = load_config(environ=env, cwd=HERE)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    schedule("sched_tasks.mark", name=NAME, interval=1, next_run=first, intended_date_kwarg="slot",
             q_config=config)  # fmt: skip
    clusters = [ClusterProcess(HERE, env, lifetime=120) for _ in range(3)]
    client = Client(config)
    try:
        for cluster in clusters:
            cluster.wait_running(60)
        wait_until(lambda: len(slots_of(client)) >= slots // 2, timeout=60)
        clusters[0].kill_all()
        wait_until(lambda: len(slots_of(client)) >= slots, timeout=60)
        set_enabled(NAME, False, config)
        last = get_schedule(NAME, config).last_run
        assert last is not None
        seconds = int((last - first).total_seconds())
        expected = {(first + timedelta(seconds=i)).isoformat() for i in range(seconds + 1)}
        wait_until(lambda: set(slots_of(client)) >= expected, timeout=60)
        for cluster in clusters[1:]:
            assert cluster.stop() == 0  # each finishes what it holds first
        assert client.queue_size() == 0  # a doubled slot left queued would count as unfinished
        counts = slots_of(client)
        assert set(counts) == expected
        assert set(counts.values()) == {1}, counts
        assert len(expected) >= slots
    finally:
        client.close()
        for cluster in clusters:
            cluster.kill_all()
