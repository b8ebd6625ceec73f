"""The in-process memory broker and store pass the conformance suites, and share by URL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from qframe.builtin.memory import MemoryBroker, MemoryStore, _Queued, reset, space
from qframe.drivers import load
from qframe.errors import ConfigError
from qframe.testing import (
    BrokerContract,
    DeadLetterStoreContract,
    DelayStoreContract,
    StatusStoreContract,
    StoreContract,
    make_meta,
)
from qframe.testing.contracts import BrokerFactory, StoreFactory
from qframe.testing.malformed import MalformedWriter


@pytest.fixture
def url() -> Iterator[str]:
    """A memory space no other test uses."""
    name = f"memory://{uuid.uuid4().hex[:10]}"
    yield name
    reset(name)


class TestMemoryBroker(BrokerContract):
    @pytest.fixture
    def broker_factory(self, url: str) -> BrokerFactory:
        return lambda queue, lease: MemoryBroker(url, queue, lease=lease)

    @pytest.fixture
    def write_malformed(self, url: str) -> MalformedWriter:
        def write(queue: str) -> list[str]:
            """Entries whose payload is a str, or missing, where enqueue always stores bytes."""
            shared = space(url)
            with shared.changed:
                for payload in ("a payload as text", None):
                    entry = _Queued(next(shared.ids), payload, time.monotonic())  # type: ignore[arg-type]
                    shared.queues[queue][entry.id] = entry
            return ["payload is a str", "no payload"]

        return write

    @pytest.fixture
    def dead_broker(self) -> MemoryBroker:
        pytest.skip("the memory broker has no server that could be down")


class TestMemoryStore(StoreContract, StatusStoreContract, DeadLetterStoreContract, DelayStoreContract):
    @pytest.fixture
    def store_factory(self, url: str) -> StoreFactory:
        return lambda save_limit=0, **options: MemoryStore(url, save_limit=save_limit, **options)


def test_memory_is_registered_as_broker_and_store() -> None:
    assert load("broker", "memory") is MemoryBroker
    assert load("store", "memory") is MemoryStore


def test_instances_with_one_url_share_a_queue_and_others_do_not(url: str) -> None:
    producer, consumer = MemoryBroker(url, "q"), MemoryBroker(url, "q")
    stranger = MemoryBroker(url + "-other", "q")
    producer.enqueue(b"shared")
    assert stranger.dequeue(1) == []
    assert [m.payload for m in consumer.dequeue(1)] == [b"shared"]
    reset(url + "-other")


def test_default_url_is_one_space() -> None:
    try:
        MemoryBroker(None, "q").enqueue(b"x")
        assert [m.payload for m in MemoryBroker("memory://", "q").dequeue(1)] == [b"x"]
    finally:
        reset(None)


def test_a_waiting_consumer_wakes_when_a_thread_enqueues(url: str) -> None:
    consumer = MemoryBroker(url, "q")
    timer = threading.Timer(0.1, lambda: MemoryBroker(url, "q").enqueue(b"late"))
    timer.start()
    assert [m.payload for m in consumer.dequeue(1, wait=10.0)] == [b"late"]
    timer.join()


def test_results_saved_by_one_store_are_read_by_another(url: str) -> None:
    meta = make_meta()
    MemoryStore(url).save(meta, b"blob")
    assert MemoryStore(url).get(meta.id) == b"blob"


def test_other_urls_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^the memory driver cannot use 'redis://x': expected memory://"):
        MemoryBroker("redis://x", "q")
