"""Redis servers the tests start themselves (never the one on port 6379).

:class:`~qframe.testing.servers.RedisServer` runs one ``redis-server`` on a free loopback
port with an append-only file fsynced on every write, so ``kill_hard()`` followed by
``restart()`` shows what survives a crash. The session shares one server (every test
uses its own key prefix or queue); a test that kills or reconfigures its server starts a
private one (``own_redis_server``). :class:`RedisClusterServers` runs three
cluster-enabled servers joined with ``redis-cli --cluster create``.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from qframe.testing import RedisServer, free_port, require_binary
from qframe_redis import RedisBroker

#: Seconds a server shared by the whole session may live (a private one gets 300).
SESSION_LIFETIME = 3600.0


class RedisSentinel(RedisServer):
    """A Sentinel (``redis-server --sentinel``) watching ``master`` as service ``mymaster``."""

    service = "mymaster"

    def __init__(self, binary: str, directory: Path, master: RedisServer) -> None:
        super().__init__(binary, directory, lifetime=300)
        self.master = master

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<port>/mymaster/0``."""
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def command(self) -> list[str]:
        """Write ``sentinel.conf`` (Sentinel rewrites it) and return the command line."""
        config = self.directory / "sentinel.conf"
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.directory}\nlogfile {self.log}\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 5000\n"
        )
        return [self.binary, str(config), "--sentinel"]


class RedisClusterServers:
    """Three cluster-enabled servers (no replicas) joined into one Redis Cluster."""

    def __init__(self, binary: str, cli: str, directory: Path) -> None:
        self.cli = cli
        self.nodes = []
        for i in range(3):
            bus = free_port()
            args = (
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "5000",
                "--cluster-port", str(bus),
                "--appendfsync", "everysec",
            )  # fmt: skip
            node = RedisServer(binary, directory / f"node{i}", args=args, lifetime=SESSION_LIFETIME)
            self.nodes.append(node)

    @property
    def url(self) -> str:
        """``redis+cluster://`` with every node as a startup node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> RedisClusterServers:
        """Start the nodes, create the cluster and wait for ``cluster_state:ok`` everywhere."""
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=30,
        )
        deadline = time.monotonic() + 20
        for node in self.nodes:
            client = admin(node, socket_timeout=1)
            try:
                while _cluster_state(client) != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the test Redis Cluster did not reach cluster_state:ok")
                    time.sleep(0.05)
            finally:
                client.close()
        return self

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def admin(server: RedisServer, **options: Any) -> redis.Redis:
    """A plain redis-py client of ``server``."""
    return redis.Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=2, **options)


def _cluster_state(client: redis.Redis) -> str:
    """The ``cluster_state`` field of CLUSTER INFO (redis-py parses the reply into a dict)."""
    info = client.execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        value = info.get("cluster_state", b"")
        return value.decode() if isinstance(value, bytes) else str(value)
    return "ok" if b"cluster_state:ok" in info else ""


def _start_or_stop(server: Any, request: pytest.FixtureRequest) -> None:
    request.addfinalizer(server.stop)
    server.start()


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """Path of ``redis-server`` (skips locally, fails under CI=true when missing)."""
    return require_binary("redis-server")


@pytest.fixture(scope="session")
def redis_server(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RedisServer:
    """One Redis server shared by the whole session."""
    server = RedisServer(redis_binary, tmp_path_factory.mktemp("redis"), lifetime=SESSION_LIFETIME)
    _start_or_stop(server, request)
    return server


@pytest.fixture
def own_redis_server(
    redis_binary: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., RedisServer]:
    """Start a private Redis server for one test (for fault tests and odd configs)."""

    def start(*args: str) -> RedisServer:
        directory = tmp_path / f"redis-{uuid.uuid4().hex[:6]}"
        server = RedisServer(redis_binary, directory, args=args, lifetime=300)
        _start_or_stop(server, request)
        return server

    return start


@pytest.fixture
def redis_sentinel(
    redis_binary: str, redis_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> RedisSentinel:
    """A Sentinel that reports the session's server as master ``mymaster``."""
    sentinel = RedisSentinel(redis_binary, tmp_path / "sentinel", redis_server)
    _start_or_stop(sentinel, request)
    return sentinel


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's Redis server."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(
    redis_binary: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> RedisClusterServers:
    """A three-node Redis Cluster shared by the session's cluster tests."""
    cli = require_binary("redis-cli")
    cluster = RedisClusterServers(redis_binary, cli, tmp_path_factory.mktemp("redis-cluster"))
    _start_or_stop(cluster, request)
    return cluster


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"



def write_malformed_entries(broker: RedisBroker) -> list[str]:
    """Push entries ``enqueue`` never writes onto the broker's ready list.

    Returns, for each entry, a fragment its dead letter's reason must contain: an entry
    too short to hold an id, non-UTF-8 bytes where the id belongs, and a bare id whose
    payload is nowhere.
    """
    entries = [b"short", b"\xff\xfe" * 20, os.urandom(16).hex().encode()]
    broker.client.lpush(broker.keys["ready"], *entries)
    return ["too short", "does not begin with a message id", "no payload"]


@pytest.fixture
def malformed_writer(cleanup: list[Any]) -> Callable[[str, str, str], list[str]]:
    """``write(url, prefix, queue)``: :func:`write_malformed_entries` on that queue."""

    def write(url: str, prefix: str, queue: str) -> list[str]:
        broker = RedisBroker(url, queue, prefix=prefix)
        cleanup.append(broker)
        return write_malformed_entries(broker)

    return write
