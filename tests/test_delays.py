"""Broker capabilities the core honours: payload limits, long delays held in the store, batch ids."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from conftest import Lab
from qframe_test_brokers import ShortMemory, Unreachable

from qframe.builtin.memory import MemoryStore, reset
from qframe.client import Client
from qframe.cluster.delays import release_due
from qframe.config import load as load_config
from qframe.errors import BrokerError, ConfigError, PayloadTooLarge
from qframe.stores.delays import DelayStore
from qframe.task import Task
from qframe.testing import wait_until


@pytest.fixture
def url() -> Iterator[str]:
    """A memory space no other test uses."""
    name = f"memory://{uuid.uuid4().hex[:10]}"
    yield name
    reset(name)


def make_client(url: str, broker: str = "qframe_test_brokers:ShortMemory", store: str = "memory") -> Client:
    settings = {"broker": broker, "broker_url": url, "store": store, "store_url": url}
    return Client(load_config({**settings, "secret_key": "k", "plugins": ()}, environ={}))


@pytest.fixture
def client(url: str) -> Client:
    return make_client(url)


def queued(client: Client) -> list[Task]:
    """The tasks visible in the client's queue now (leased, so taken)."""
    _, broker, codec = client._queue(None)
    return [Task.from_dict(codec.decode(m.payload)) for m in broker.dequeue(100)]


def test_a_payload_over_max_payload_is_refused_in_one_line_before_it_is_stored(client: Client) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        client.async_task("m.f", "x" * 5000)
    message = str(caught.value)
    assert "\n" not in message
    assert "bytes encoded, more than the 2048 bytes broker 'qframe_test_brokers:ShortMemory'" in message
    assert int(message.split(" is ")[1].split()[0]) > 5000
    assert client.queue_size() == 0


def test_a_batch_with_one_payload_too_large_stores_none_of_it(client: Client) -> None:
    with pytest.raises(PayloadTooLarge, match="max_payload"):
        client.async_tasks("m.f", [("small",), ("x" * 5000,), ("small too",)])
    with pytest.raises(PayloadTooLarge):
        client.async_tasks("m.f", [("small",), ("x" * 5000,)], delay=60)
    assert client.queue_size() == 0
    assert MemoryStore(client.config.broker_url).count_held("default") == 0


def test_a_payload_of_exactly_max_payload_is_accepted(client: Client) -> None:
    _, broker, codec = client._queue(None)
    base = len(client._encode(codec, Task("m.f", args=("y" * 1000,))))
    client.async_task("m.f", "y" * (1000 + 2048 - base))  # one more character, one more byte
    assert [len(m.payload) for m in broker.dequeue(1)] == [2048]


def test_a_delay_within_max_delay_goes_to_the_broker(client: Client) -> None:
    client.async_task("m.f", delay=0.5)
    assert MemoryStore(client.config.broker_url).count_held("default") == 0
    assert client.queue_size() == 1
    assert queued(client) == []  # delayed in the broker itself


def test_a_delay_past_max_delay_is_held_in_the_store_not_the_broker(client: Client) -> None:
    task_id = client.async_task("m.f", delay=120)
    ids = client.async_tasks("m.f", [(1,), (2,)], delay=120)
    assert client.queue_size() == 0
    store = MemoryStore(client.config.broker_url)
    assert store.count_held("default") == 3
    [first, *_] = store.claim_held("default", float("inf"), lease=30, limit=10)
    assert first.due == pytest.approx(time.time() + 120, abs=5)
    _, _, codec = client._queue(None)
    assert Task.from_dict(codec.decode(first.payload)).id in [task_id, *ids]


def test_a_long_delay_with_a_store_that_cannot_hold_it_is_refused_in_one_line(url: str) -> None:
    client = make_client(url, store="qframe_test_brokers:ResultsOnly")
    expected = r"^a delay of 120 s is longer than broker .* \(max_delay 1 s\) and store .* cannot hold"
    with pytest.raises(ConfigError, match=expected):
        client.async_task("m.f", delay=120)
    assert client.queue_size() == 0
    assert release_due(client.store, ShortMemory(url, "default"), time.time()) == 0


def test_release_due_moves_what_fits_the_broker_and_keeps_the_rest(url: str, client: Client) -> None:
    store, broker = MemoryStore(url), ShortMemory(url, "default")
    now = time.time()
    store.hold("default", b"due", now - 1)
    store.hold("default", b"nearly", now + 0.5)  # within max_delay: handed over, delayed natively
    store.hold("default", b"later", now + 60)
    assert release_due(store, broker, now) == 2
    assert store.count_held("default") == 1
    assert [m.payload for m in broker.dequeue(5)] == [b"due"]
    assert [m.payload for m in wait_until(lambda: broker.dequeue(5))] == [b"nearly"]
    assert release_due(store, broker, now + 59.5) == 1
    assert store.count_held("default") == 0


def test_a_long_delay_reaches_the_broker_once_it_fits(client: Client) -> None:
    task_id = client.async_task("m.f", delay=30)
    store, (_, broker, _) = MemoryStore(client.config.broker_url), client._queue(None)
    assert release_due(store, broker, time.time()) == 0  # 30 s away, the broker holds 1 s
    assert release_due(store, broker, time.time() + 29.5) == 1
    assert [t.id for t in wait_until(lambda: queued(client), timeout=5)] == [task_id]


def test_release_due_loses_nothing_when_the_broker_is_down(url: str) -> None:
    store = MemoryStore(url)
    store.hold("default", b"precious", time.time() - 1)
    assert release_due(store, Unreachable(url, "default"), time.time(), lease=0.2) == 0
    assert store.count_held("default") == 1
    working = ShortMemory(url, "default")
    wait_until(lambda: release_due(store, working, time.time(), lease=0.2) == 1)
    assert [m.payload for m in working.dequeue(1)] == [b"precious"]
    assert store.count_held("default") == 0


def test_release_due_moves_at_most_limit_per_call(url: str) -> None:
    store, broker = MemoryStore(url), ShortMemory(url, "default")
    for i in range(250):
        store.hold("default", str(i).encode(), time.time() - 1)
    assert release_due(store, broker, time.time(), limit=120) == 120
    assert store.count_held("default") == 130
    assert broker.queue_size() == 120


def test_two_clusters_releasing_at_once_enqueue_each_held_task_once(url: str) -> None:
    setup = MemoryStore(url)
    for i in range(300):
        setup.hold("default", str(i).encode(), time.time() - 1)
    moved: list[int] = []

    def sentinel() -> None:
        store, broker = MemoryStore(url), ShortMemory(url, "default")
        while count := release_due(store, broker, time.time(), limit=25):
            moved.append(count)

    threads = [threading.Thread(target=sentinel) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    payloads = [m.payload for m in ShortMemory(url, "default").dequeue(1000)]
    assert sum(moved) == 300
    assert sorted(payloads) == sorted(str(i).encode() for i in range(300))


def test_enqueue_many_returning_fewer_ids_is_a_broker_error(url: str) -> None:
    client = make_client(url, broker="qframe_test_brokers:FewerIds")
    with pytest.raises(BrokerError, match=r"returned 2 message ids for 3 tasks \(enqueue_many must return"):
        client.async_tasks("m.f", [(1,), (2,), (3,)])


@pytest.mark.timeout(120)
def test_a_delay_past_max_delay_runs_once_after_it_through_a_cluster(lab: Lab) -> None:
    lab.configure(broker="qframe_test_brokers:ShortDelays", store="sqlite")
    due = time.time() + 2.5
    task_id = lab.client.async_task("qframe.testing.tasks.inc", 41, delay=2.5)
    store = lab.client.store
    assert isinstance(store, DelayStore)
    assert lab.client.queue_size() == 0
    assert store.count_held("default") == 1
    cluster = lab.cluster()
    record = lab.client.fetch(task_id, wait=60)
    assert record is not None and record.result == 42
    assert record.started >= due
    assert store.count_held("default") == 0
    assert cluster.stop() == 0
    assert len(lab.runs("inc")) == 1
