"""systemd's watchdog ping stops while Redis is down under a running cluster, and comes back with it.

A real ``qframe cluster`` on a real ``redis-server`` on a free loopback port, with
``NOTIFY_SOCKET`` pointing at a real datagram socket standing in for systemd's
(:class:`qframe.testing.notify.NotifyListener`). The server is killed and restarted on
the same port under the running cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qframe.testing.cluster import ClusterProcess
from qframe.testing.notify import NotifyListener

pytestmark = pytest.mark.timeout(120)

APP = Path(__file__).parent


def settings(url: str) -> dict[str, str]:
    """The environment of a one-worker cluster on the Redis at ``url``, logging at DEBUG."""
    return {
        "QFRAME_BROKER": "redis",
        "QFRAME_BROKER_URL": url,
        "QFRAME_SECRET_KEY": f"secret-{uuid.uuid4().hex}",
        "QFRAME_PLUGINS": "",
        "QFRAME_WORKERS": "1",
        "QFRAME_GUARD_CYCLE": "0.2",
        "QFRAME_NAME": f"watchdog-{uuid.uuid4().hex[:8]}",
        "QFRAME_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[NotifyListener]:
    """The stand-in for systemd's notification socket."""
    listener = NotifyListener(str(tmp_path / "notify.sock"))
    try:
        yield listener
    finally:
        listener.close()


def test_watchdog_stops_while_redis_is_down_and_resumes_when_it_is_back(
    own_redis_server: Callable[..., Any], systemd: NotifyListener
) -> None:
    server = own_redis_server()
    env = {**settings(server.url), "NOTIFY_SOCKET": systemd.address}
    with ClusterProcess(APP, env, lifetime=100) as cluster:
        cluster.wait_running(30)
        systemd.wait_for("READY", "1")
        systemd.wait_for("WATCHDOG", "1")
        server.kill_hard()
        down = systemd.wait_for("STATUS", "broker unreachable")
        failed_before = len(cluster.lines)
        # five more guard cycles without Redis: each logs that it could not publish its status
        cluster.wait_for(r"DEBUG could not publish status", count=5 + cluster.log.count("could not publish"))
        systemd.flush()
        assert systemd.values("WATCHDOG", since=down) == [], cluster.lines[failed_before:]
        server.start()
        back = systemd.wait_for("WATCHDOG", "1", since=down)
        assert "broker unreachable" not in systemd.values("STATUS", since=down)[-1]
        assert back > down
        assert cluster.stop() == 0
        systemd.wait_for("STOPPING", "1", since=back)
