"""URLs, Sentinel, unix sockets, the maxmemory warning, hash tags and crash recovery."""

from __future__ import annotations

import time
from importlib.metadata import entry_points
from typing import Any

import pytest
import redis
from redis.cluster import key_slot

from qframe.errors import BrokerError, ConfigError, StoreError
from qframe.testing import free_port, make_meta, wait_until
from qframe_redis import RedisBroker, RedisStore
from qframe_redis.broker import queue_keys
from qframe_redis.connection import parse_url, redacted

pytestmark = pytest.mark.timeout(30)


def test_entry_points_name_the_drivers() -> None:
    brokers = {e.name: e.value for e in entry_points(group="qframe.brokers")}
    stores = {e.name: e.value for e in entry_points(group="qframe.stores")}
    assert brokers["redis"] == "qframe_redis.broker:RedisBroker"
    assert stores["redis"] == "qframe_redis.store:RedisStore"


@pytest.mark.timeout(5)
def test_parse_url() -> None:
    sentinel = parse_url("redis+sentinel://:pw@h1:26380,h2/mymaster/3?socket_timeout=1.5")
    assert (sentinel.kind, sentinel.hosts, sentinel.service) == (
        "sentinel",
        (("h1", 26380), ("h2", 26379)),
        "mymaster",
    )
    assert sentinel.options == {"password": "pw", "db": 3, "socket_timeout": 1.5}
    cluster = parse_url("rediss+cluster://u:p@[::1]:7000,10.0.0.2:7001")
    assert cluster.kind == "cluster" and cluster.hosts == (("::1", 7000), ("10.0.0.2", 7001))
    assert cluster.options == {"username": "u", "password": "p", "ssl": True}
    assert parse_url("redis://h:6380/0", cluster=True).hosts == (("h", 6380),)
    assert parse_url("unix:///tmp/redis.sock?db=1").kind == "single"
    assert parse_url("rediss://h/0").kind == "single"
    for bad in ("http://h", "h:6379", "redis+sentinel://h:26379", "redis+cluster://h:port"):
        with pytest.raises(ConfigError):
            parse_url(bad)
    with pytest.raises(ConfigError):
        parse_url("unix:///tmp/s.sock", cluster=True)
    assert redacted("redis://user:secret@h:6379/0") == "redis://user:***@h:6379/0"
    assert "secret" not in RedisBroker("redis://:secret@h:6379/0", "q").info()


@pytest.mark.timeout(5)
def test_every_key_of_a_queue_hashes_to_one_slot(redis_url: str, key_prefix: str, cleanup: list[Any]) -> None:
    for queue in ("default", "emails", "a:b", "x}y", "{odd}"):
        keys = queue_keys(key_prefix, queue)
        assert len({key_slot(k.encode()) for k in keys.values()}) == 1, queue
    assert queue_keys("qframe", "default")["ready"] == "qframe:{default}:ready"
    broker = RedisBroker(redis_url, "slots", lease=0.2, prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue_many([b"1", b"2", b"3"])
    broker.enqueue(b"4", delay=30)
    first, _ = broker.dequeue(2)
    broker.quarantine(first.ack_id, "bad")
    created = list(broker.client.scan_iter(match=f"{key_prefix}:*"))
    assert {k.decode().rsplit(":", 1)[-1] for k in created} >= {
        "ready",
        "msg",
        "attempts",
        "leased",
        "delayed",
    }
    assert all(k.startswith(f"{key_prefix}:{{slots}}:".encode()) for k in created)
    assert len({key_slot(k) for k in created}) == 1
    broker.purge()
    with pytest.raises(ConfigError):
        RedisBroker(redis_url, "", prefix=key_prefix)


def test_maxmemory_policy_warning(redis_server: Any, cleanup: list[Any]) -> None:
    broker = RedisBroker(redis_server.url, "warn")
    admin = redis.Redis(host="127.0.0.1", port=redis_server.port)
    cleanup += [broker, admin]
    try:
        admin.config_set("maxmemory-policy", "allkeys-lru")
        [line] = broker.warnings()
        assert "allkeys-lru" in line and "noeviction" in line
        admin.config_set("maxmemory-policy", "volatile-ttl")
        assert "volatile-ttl" in broker.warnings()[0]
    finally:
        admin.config_set("maxmemory-policy", "noeviction")
    assert broker.warnings() == []


def test_warnings_tolerate_a_disabled_config_command(own_redis_server: Any, cleanup: list[Any]) -> None:
    server = own_redis_server("--rename-command", "CONFIG", "", "--maxmemory-policy", "allkeys-lru")
    broker = RedisBroker(server.url, "q")
    cleanup.append(broker)
    assert broker.ping() is True
    assert broker.warnings() == []


def test_sentinel_url(redis_sentinel: Any, key_prefix: str, cleanup: list[Any]) -> None:
    broker = RedisBroker(redis_sentinel.url, "via-sentinel", lease=30, prefix=key_prefix)
    store = RedisStore(redis_sentinel.url, prefix=key_prefix)
    cleanup += [broker, store]
    assert broker.ping() is True
    message_id = broker.enqueue(b"through sentinel")
    [message] = broker.dequeue(1, wait=2)
    assert (message.message_id, message.payload) == (message_id, b"through sentinel")
    broker.ack(message.ack_id)
    meta = make_meta()
    store.save(meta, b"result")
    direct = RedisStore(redis_sentinel.master.url, prefix=key_prefix)
    cleanup.append(direct)
    assert direct.get(meta.id) == b"result"  # the Sentinel led to the real master
    store.purge()


def test_unix_socket_url(own_redis_server: Any, tmp_path: Any, key_prefix: str, cleanup: list[Any]) -> None:
    socket = tmp_path / "r.sock"
    own_redis_server("--unixsocket", str(socket))
    broker = RedisBroker(f"unix://{socket}?db=2", "local", prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue(b"over a socket")
    assert [m.payload for m in broker.dequeue(1)] == [b"over a socket"]


@pytest.mark.timeout(10)
def test_dead_sentinel_fails_fast() -> None:
    broker = RedisBroker(f"redis+sentinel://127.0.0.1:{free_port()}/mymaster", "q")
    start = time.monotonic()
    with pytest.raises(BrokerError, match="unreachable: No master found for 'mymaster'"):
        broker.ping()
    assert time.monotonic() - start < 5


@pytest.mark.timeout(60)
def test_crash_and_restart_keep_messages_and_leases(own_redis_server: Any, cleanup: list[Any]) -> None:
    server = own_redis_server()
    broker = RedisBroker(server.url, "durable", lease=1.0)
    store = RedisStore(server.url)
    cleanup += [broker, store]
    broker.enqueue_many([b"leased", b"waiting"])
    broker.enqueue(b"delayed", delay=0.5)
    [leased] = broker.dequeue(1)
    meta = make_meta()
    store.save(meta, b"saved")
    server.kill_hard()

    start = time.monotonic()
    with pytest.raises(BrokerError, match="unreachable"):
        broker.ping()
    unreachable = r"redis broker at redis://127\.0\.0\.1:\d+/0 is unreachable"
    with pytest.raises(BrokerError, match=unreachable):
        broker.enqueue(b"lost")
    with pytest.raises(StoreError, match=r"redis store at redis://127\.0\.0\.1:\d+/0 is unreachable"):
        store.get(meta.id)
    assert time.monotonic() - start < 10  # three calls, each bounded by the retry policy

    server.restart()
    assert broker.ping() is True  # redis-py reconnects by itself
    assert store.get(meta.id) == b"saved"  # appendfsync always: acknowledged writes survive
    broker.ack(leased.ack_id)  # the lease survived too; its holder can still ack it
    got = wait_until(lambda: broker.dequeue(2), timeout=5)
    payloads = [m.payload for m in got]
    if len(payloads) < 2:
        payloads += [m.payload for m in wait_until(lambda: broker.dequeue(1), timeout=5)]
    assert sorted(payloads) == [b"delayed", b"waiting"]
    assert (broker.queue_size(), broker.lock_size()) == (0, 2)


@pytest.mark.timeout(30)
def test_dequeue_wait_survives_nothing_but_reports_an_outage(
    own_redis_server: Any, cleanup: list[Any]
) -> None:
    server = own_redis_server()
    broker = RedisBroker(server.url, "outage", lease=5)
    cleanup.append(broker)
    assert broker.dequeue(1) == []
    server.kill_hard()
    start = time.monotonic()
    with pytest.raises(BrokerError):
        broker.dequeue(1, wait=30)
    assert time.monotonic() - start < 10
