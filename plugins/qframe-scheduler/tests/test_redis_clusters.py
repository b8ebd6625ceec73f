"""The exactly-once promise with real cluster processes on one Redis server (qframe-redis)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from multicluster import three_clusters_one_slot_each

from qframe.testing import free_port, require_binary

redis = pytest.importorskip("redis")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private ``redis-server`` on a free loopback port (fails under CI=true when not installed)."""
    port = free_port()
    command = [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        for _ in range(200):
            try:
                if probe.ping():
                    break
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        probe.close()
        server.kill()
        server.wait(10)


@pytest.mark.timeout(180)
def test_three_clusters_on_one_redis_run_every_slot_once_even_when_one_is_killed(redis_url: str) -> None:
    three_clusters_one_slot_each(
        {"QFRAME_BROKER": "redis", "QFRAME_BROKER_URL": redis_url, "QFRAME_SECRET_KEY": "scheduler-test-key"}
    )
