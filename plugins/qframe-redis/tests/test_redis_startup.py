"""A cluster on Redis starts only when Redis answers, and ``max_outage`` ends a lasting outage.

Real ``qframe cluster`` processes and real ``redis-server`` processes on free loopback
ports: a port with nothing listening, a server started while the cluster waits for it,
and a server killed under a running cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qframe.testing import free_port
from qframe.testing.cluster import ClusterProcess

APP = Path(__file__).parent
NAME = r"[a-z]+-[a-z]+-[a-z]+-[a-z]+"
STOP = [
    rf"Q Cluster {NAME} stopping\.",
    r"Process-\w+ stopping cluster processes",
    r"Process-\w+ stopped pushing tasks",
    r"Process-\w+ stopped doing work",
    r"Process-\w+ stopped monitoring results",
    rf"Q Cluster {NAME} has stopped\.",
]

pytestmark = pytest.mark.timeout(90)


def settings(url: str, **options: object) -> dict[str, str]:
    """The environment of a cluster on the Redis at ``url``, with ``options`` on top."""
    env = {
        "QFRAME_BROKER": "redis",
        "QFRAME_BROKER_URL": url,
        "QFRAME_SECRET_KEY": f"secret-{uuid.uuid4().hex}",
        "QFRAME_PLUGINS": "",
        "QFRAME_WORKERS": "1",
        "QFRAME_GUARD_CYCLE": "0.2",
        "QFRAME_NAME": f"startup-{uuid.uuid4().hex[:8]}",
    }
    return {**env, **{f"QFRAME_{k.upper()}": str(v) for k, v in options.items()}}


def start_cluster(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``qframe cluster`` to its end (it is expected to give up)."""
    return subprocess.run(
        [sys.executable, "-m", "qframe", "cluster"],
        cwd=APP,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_redis_on_a_closed_port_fails_the_start_in_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = start_cluster(settings(url, startup_wait=1))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"qframe: error: cannot reach the broker {url} after 1 s: Connection refused"
    ]


def test_redis_store_on_a_closed_port_fails_the_start_without_showing_its_password(tmp_path: Path) -> None:
    port = free_port()
    env = settings(f"sqlite:///{tmp_path}/q.db", broker="sqlite", startup_wait=0)
    env.update(QFRAME_STORE="redis", QFRAME_STORE_URL=f"redis://:hunter2@127.0.0.1:{port}/0")
    done = start_cluster(env)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"qframe: error: cannot reach the store redis://:***@127.0.0.1:{port}/0 after 0 s: Connection refused"
    ]


def test_redis_that_comes_up_within_startup_wait_gets_a_running_cluster(
    own_redis_server: Callable[..., Any],
) -> None:
    server = own_redis_server()
    server.kill_hard()  # down when the cluster starts; it comes back on the same port
    env = settings(server.url, startup_wait=60, log_level="DEBUG")
    with ClusterProcess(APP, env, lifetime=80) as cluster:
        cluster.wait_for(rf"DEBUG cannot reach the broker {re.escape(server.url)} yet: ")
        assert not re.search(r"starting\.|Process-", cluster.log)  # nothing started while it waits
        server.start()
        cluster.wait_running(30)
        assert cluster.stop() == 0


def test_outage_longer_than_max_outage_stops_the_cluster_in_order_with_exit_code_3(
    own_redis_server: Callable[..., Any],
) -> None:
    server = own_redis_server()
    with ClusterProcess(APP, settings(server.url, max_outage=1), lifetime=80) as cluster:
        cluster.wait_running(30)
        server.kill_hard()
        assert cluster.process.wait(60) == 3
        cluster.wait_for(rf"Q Cluster {NAME} has stopped\.")
        [line] = cluster.wait_for(r"longer than max_outage")
        assert re.search(
            r"ERROR Process-\w+: the broker has been unreachable for [\d.]+ s, "
            r"longer than max_outage \(1 s\); stopping the cluster \(exit code 3\)$",
            line,
        )
        after = cluster.lines[cluster.lines.index(line) :]
        position = 0
        for pattern in STOP:  # the seed's stop lines, in the seed's order, after the error
            while not re.search(pattern, after[position]):
                position += 1
            position += 1
