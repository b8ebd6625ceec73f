"""The contracts again on a three-node Redis Cluster started by the tests."""

from __future__ import annotations

import functools
import time
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

from qframe.brokers.base import Broker
from qframe.errors import BrokerError
from qframe.testing import (
    BrokerContract,
    DelayStoreContract,
    ScheduleStoreContract,
    StoreContract,
    free_port,
    make_meta,
)
from qframe.testing.schedule_contract import ScheduleStoreFactory
from qframe_redis import RedisBroker, RedisStore

pytestmark = pytest.mark.timeout(60)


class TestClusterBroker(BrokerContract):
    """BrokerContract on Redis Cluster (``redis+cluster://`` URL)."""

    @pytest.fixture
    def broker_factory(self, redis_cluster: Any, key_prefix: str) -> Any:
        return lambda queue, lease: RedisBroker(redis_cluster.url, queue, lease=lease, prefix=key_prefix)

    @pytest.fixture
    def write_malformed(self, redis_cluster: Any, key_prefix: str, malformed_writer: Any) -> Any:
        return lambda queue: malformed_writer(redis_cluster.url, key_prefix, queue)

    @pytest.fixture
    def dead_broker(self) -> Broker:
        return RedisBroker(f"redis+cluster://127.0.0.1:{free_port()}", "q", lease=5)


class TestClusterStore(StoreContract, DelayStoreContract):
    """StoreContract and the held-delays role on Redis Cluster (``redis://`` URL plus ``cluster=True``)."""

    @pytest.fixture
    def store_factory(self, redis_cluster: Any, key_prefix: str) -> Any:
        url = redis_cluster.nodes[1].url
        return lambda save_limit=0, **options: RedisStore(
            url, save_limit=save_limit, prefix=key_prefix, cluster=True, **options
        )


class TestClusterScheduleStore(ScheduleStoreContract):
    """ScheduleStoreContract on Redis Cluster (``redis+cluster://`` URL)."""

    @pytest.fixture
    def schedule_store_factory(self, redis_cluster: Any, key_prefix: str) -> ScheduleStoreFactory:
        return functools.partial(RedisStore, redis_cluster.url, prefix=key_prefix)


def _all_keys(client: Any, pattern: str) -> list[bytes]:
    keys: list[bytes] = []
    for node in client.get_primaries():
        keys += client.get_redis_connection(node).keys(pattern)
    return keys


def test_cluster_spreads_queues_but_keeps_each_in_one_slot(
    redis_cluster: Any, key_prefix: str, cleanup: list[Any]
) -> None:
    brokers = [RedisBroker(redis_cluster.url, f"q{i}", lease=30, prefix=key_prefix) for i in range(12)]
    cleanup.extend(brokers)
    for broker in brokers:
        broker.enqueue(b"now")
        broker.enqueue(b"later", delay=60)
        [message] = broker.dequeue(1)
        broker.quarantine(message.ack_id, "test")
    client = brokers[0].client
    assert isinstance(client, RedisCluster)
    owners = set()
    for broker in brokers:
        keys = _all_keys(client, f"{key_prefix}:{{{broker.queue}}}:*")
        assert len(keys) >= 4  # msg, delayed, dead, dead:payload
        assert len({key_slot(k) for k in keys}) == 1
        owners.add(client.get_node_from_key(keys[0]).name)
    assert len(owners) > 1  # twelve queues land on more than one node
    for broker in brokers:
        broker.purge()


def test_cluster_store_keeps_every_role_in_one_slot(
    redis_cluster: Any, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_cluster.url, prefix=key_prefix, save_limit=2)
    cleanup.append(store)
    base = time.time()
    metas = [make_meta(group="g", stopped=base + i) for i in range(4)]
    store.save_many([(m, str(i).encode()) for i, m in enumerate(metas)])
    assert store.get_group("g") == [b"2", b"3"]
    keys = _all_keys(store.client, f"{key_prefix}:*")
    assert len({key_slot(k) for k in keys}) == 1
    for i in range(6):
        store.set_status(f"node{i}", f"beat{i}".encode(), ttl=5)
    assert sorted(store.statuses()) == [f"beat{i}".encode() for i in range(6)]
    store.quarantine("q", "m1", "bad signature", b"payload")
    assert [letter[:3] for letter in store.dead_letters("q")] == [("m1", "bad signature", b"payload")]
    keys = _all_keys(store.client, f"{key_prefix}:*")
    assert len({key_slot(k) for k in keys}) == 1
    store.purge()
    left = _all_keys(store.client, f"{key_prefix}:{{results}}:*")
    assert all(b":stat" in k or b":dead" in k for k in left)  # purge deletes results only


def test_cluster_warnings_check_every_primary(redis_cluster: Any, cleanup: list[Any]) -> None:
    broker = RedisBroker(redis_cluster.url, "warn")
    cleanup.append(broker)
    assert broker.warnings() == []
    node = redis.Redis(host="127.0.0.1", port=redis_cluster.nodes[2].port)
    try:
        node.config_set("maxmemory-policy", "allkeys-lru")
        [line] = broker.warnings()
        assert f"127.0.0.1:{redis_cluster.nodes[2].port}" in line and "allkeys-lru" in line
    finally:
        node.config_set("maxmemory-policy", "noeviction")
        node.close()


def test_unreachable_cluster_fails_fast() -> None:
    broker = RedisBroker(f"redis+cluster://127.0.0.1:{free_port()}", "q")
    start = time.monotonic()
    with pytest.raises(BrokerError, match="unreachable"):
        broker.enqueue(b"x")
    assert time.monotonic() - start < 10
