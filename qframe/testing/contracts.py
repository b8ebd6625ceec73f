"""Conformance suites for broker and store drivers.

A driver's tests subclass :class:`BrokerContract` / :class:`StoreContract` (and, for each
other role its store fills, :class:`StatusStoreContract` / :class:`DeadLetterStoreContract`,
which share the ``store_factory`` fixture) and provide fixtures that build instances
against a **real** server::

    class TestRedisBroker(BrokerContract):
        @pytest.fixture
        def broker_factory(self, redis_url):
            return lambda queue, lease: RedisBroker(redis_url, queue, lease=lease)

        @pytest.fixture
        def dead_broker(self):
            return RedisBroker("redis://127.0.0.1:1/0", "q", lease=5)

The broker suite reads the capability flags the broker class declares (``fifo``,
``max_payload``, ...): a test of a promise the broker does not make is skipped with the flag
in the reason, and leases and delays are never finer than its ``lease_resolution``. A store
that also fills the held-delays role subclasses :class:`DelayStoreContract` as well.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qframe.brokers.base import Broker, Message
from qframe.errors import BrokerError, ConfigError
from qframe.stores.base import DeadLetter, DeadLetterStore, ResultMeta, StatusStore, Store
from qframe.stores.delays import DelayStore
from qframe.testing.malformed import MalformedEntriesContract

BrokerFactory = Callable[[str, float], Broker]
StoreFactory = Callable[..., Store]

#: The largest payload the suite sends when checking ``max_payload``; larger limits are skipped.
MAX_TESTED_PAYLOAD = 16 * 1024 * 1024


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Return the first truthy value of ``predicate()``, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)


def short_time(broker: Broker | type[Broker], at_least: float = 0.5) -> float:
    """A lease or delay of ``at_least`` seconds, never finer than the broker's ``lease_resolution``."""
    return max(at_least, broker.lease_resolution)


def require_flag(broker: Broker, flag: str) -> None:
    """Skip the test unless the broker's class declares ``flag`` true."""
    value = getattr(type(broker), flag)
    if not value:
        pytest.skip(f"broker declares {flag}={value!r}")


def assert_size(measure: Callable[[], int], expected: int, broker: Broker) -> None:
    """``measure()`` is ``expected`` now; for a broker without ``exact_sizes``, within a minute."""
    if type(broker).exact_sizes:
        assert measure() == expected
    else:
        wait_until(lambda: measure() == expected, timeout=60)


def assert_sizes(broker: Broker, queued: int, leased: int) -> None:
    """``queue_size()`` and ``lock_size()`` are as given (eventually, without ``exact_sizes``)."""
    assert_size(broker.queue_size, queued, broker)
    assert_size(broker.lock_size, leased, broker)


def dequeue_all(broker: Broker, count: int, timeout: float = 10.0) -> list[Message]:
    """Dequeue until ``count`` messages arrived (a broker may hand out fewer per call)."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += broker.dequeue(count - len(got), wait=0.5)
    assert len(got) == count, f"{len(got)} of {count} messages arrived within {timeout} s"
    return got


class BrokerContract(MalformedEntriesContract):
    """The delivery contract of ``qframe/brokers/base.py``, as tests, honouring the broker's flags."""

    @pytest.fixture
    def broker_factory(self) -> BrokerFactory:
        """Return ``factory(queue, lease) -> Broker`` connected to a live server."""
        raise NotImplementedError("a BrokerContract subclass provides broker_factory")

    @pytest.fixture
    def dead_broker(self) -> Broker:
        """Return a Broker whose server is down (a closed port)."""
        raise NotImplementedError("a BrokerContract subclass provides dead_broker")

    @pytest.fixture
    def queue_name(self) -> str:
        """A queue name no other test uses."""
        return f"contract-{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def broker(self, broker_factory: BrokerFactory, queue_name: str) -> Iterator[Broker]:
        """A broker on a fresh queue with a 30 s lease."""
        broker = broker_factory(queue_name, 30.0)
        yield broker
        broker.purge()
        broker.close()

    @pytest.fixture
    def short_lease(self, broker: Broker, broker_factory: BrokerFactory, queue_name: str) -> Iterator[Broker]:
        """A broker on a fresh queue with a 0.5 s lease (or the broker's ``lease_resolution``)."""
        short = broker_factory(queue_name, short_time(broker))
        yield short
        short.close()

    def test_enqueue_dequeue_ack(self, broker: Broker) -> None:
        message_id = broker.enqueue(b"payload-1")
        assert isinstance(message_id, str) and message_id
        [message] = dequeue_all(broker, 1)
        assert message.payload == b"payload-1"
        assert message.attempts == 1
        assert message.message_id == message_id
        broker.ack(message.ack_id)
        assert broker.dequeue(1) == []
        assert_sizes(broker, 0, 0)

    def test_enqueue_many_returns_one_stable_id_per_payload(self, broker: Broker) -> None:
        payloads = [f"batch-{i}".encode() for i in range(7)]
        ids = broker.enqueue_many(payloads)
        assert len(ids) == len(payloads) and len(set(ids)) == len(payloads)
        assert all(isinstance(message_id, str) and message_id for message_id in ids)
        assert broker.enqueue_many([]) == []
        delivered = {m.message_id: m for m in dequeue_all(broker, len(payloads))}
        assert {i: delivered[i].payload for i in ids} == dict(zip(ids, payloads, strict=True))
        broker.nack(delivered[ids[3]].ack_id)
        [again] = wait_until(lambda: broker.dequeue(1))
        assert (again.message_id, again.payload) == (ids[3], payloads[3])

    def test_bulk_dequeue_gives_distinct_messages(self, broker: Broker) -> None:
        ids = broker.enqueue_many([f"m{i}".encode() for i in range(10)])
        assert len(ids) == 10 and len(set(ids)) == 10
        first = broker.dequeue(5)
        second = broker.dequeue(10)
        payloads = [m.payload for m in first + second]
        assert len(first) == 5
        assert sorted(payloads) == sorted(f"m{i}".encode() for i in range(10))

    def test_first_in_first_out(self, broker: Broker) -> None:
        require_flag(broker, "fifo")
        for i in range(5):
            broker.enqueue(f"m{i}".encode())
        got = [m.payload for m in broker.dequeue(5)]
        assert got == [f"m{i}".encode() for i in range(5)]

    def test_nack_returns_message_at_once(self, broker: Broker) -> None:
        broker.enqueue(b"again")
        [first] = dequeue_all(broker, 1)
        broker.nack(first.ack_id)
        [second] = broker.dequeue(1, wait=2.0)
        assert second.payload == b"again"
        assert second.attempts == 2
        assert second.message_id == first.message_id

    def test_release_returns_message_without_spending_an_attempt(self, broker: Broker) -> None:
        broker.enqueue(b"prefetched")
        [first] = dequeue_all(broker, 1)
        broker.release([first.ack_id])
        [second] = broker.dequeue(1, wait=2.0)
        assert second.payload == b"prefetched"
        if type(broker).can_release:
            assert second.attempts == 1
        else:  # release() may nack: the message comes back, the attempt may have counted
            assert second.attempts in (1, 2)
        if type(broker).conditional_claims:
            broker.release([first.ack_id])  # stale: the message is claimed again, nothing changes
            assert_size(broker.lock_size, 1, broker)

    def test_expired_lease_returns_message(self, short_lease: Broker) -> None:
        short_lease.enqueue(b"lost-worker")
        assert len(dequeue_all(short_lease, 1)) == 1
        assert short_lease.dequeue(1) == []
        [second] = wait_until(lambda: short_lease.dequeue(1), timeout=max(5.0, 10 * short_lease.lease))
        assert second.payload == b"lost-worker"
        assert second.attempts == 2

    def test_stale_ack_does_not_remove_a_new_claim(self, short_lease: Broker) -> None:
        require_flag(short_lease, "conditional_claims")
        short_lease.enqueue(b"claimed-twice")
        [first] = dequeue_all(short_lease, 1)
        [second] = wait_until(lambda: short_lease.dequeue(1), timeout=max(5.0, 10 * short_lease.lease))
        short_lease.ack(first.ack_id)
        short_lease.nack(first.ack_id)
        assert_size(short_lease.lock_size, 1, short_lease)
        short_lease.ack(second.ack_id)
        assert_sizes(short_lease, 0, 0)

    def test_touch_extends_the_lease(self, short_lease: Broker) -> None:
        short_lease.enqueue(b"long-task")
        [message] = dequeue_all(short_lease, 1)
        for _ in range(4):  # 2.4 leases in all, touched every 0.6 of a lease
            time.sleep(0.6 * short_lease.lease)
            short_lease.touch([message.ack_id])
        assert short_lease.dequeue(1) == []
        assert_size(short_lease.lock_size, 1, short_lease)

    def test_duplicate_ack_is_harmless(self, broker: Broker) -> None:
        broker.enqueue(b"a")
        broker.enqueue(b"b")
        [message] = dequeue_all(broker, 1)
        broker.ack(message.ack_id)
        broker.ack(message.ack_id)
        broker.ack_many([message.ack_id, message.ack_id])
        [other] = dequeue_all(broker, 1)
        assert other.payload == (b"b" if message.payload == b"a" else b"a")

    def test_sizes(self, broker: Broker) -> None:
        broker.enqueue_many([b"1", b"2", b"3"])
        assert_sizes(broker, 3, 0)
        taken = dequeue_all(broker, 2)
        assert_sizes(broker, 1, 2)
        broker.ack_many([m.ack_id for m in taken])
        assert_sizes(broker, 1, 0)

    def test_purge(self, broker: Broker) -> None:
        broker.enqueue_many([b"1", b"2", b"3"])
        dequeue_all(broker, 1)
        broker.purge()
        assert_sizes(broker, 0, 0)
        assert broker.dequeue(3) == []

    def test_delayed_message(self, broker: Broker) -> None:
        delay = short_time(broker, 0.6)
        max_delay = type(broker).max_delay
        if max_delay is not None and max_delay < delay:
            pytest.skip(f"broker declares max_delay={max_delay!r}, below the {delay} s this test needs")
        broker.enqueue(b"later", delay=delay)
        assert broker.dequeue(1) == []
        [message] = wait_until(lambda: broker.dequeue(1), timeout=max(5.0, 5 * delay))
        assert message.payload == b"later"

    def test_delay_up_to_max_delay_is_honoured(self, broker: Broker) -> None:
        max_delay = type(broker).max_delay
        if max_delay is not None and max_delay < short_time(broker):
            pytest.skip(f"broker declares max_delay={max_delay!r}: the core holds such delays itself")
        delay = 30 * 86400.0 if max_delay is None else max_delay  # unlimited: a month
        broker.enqueue(b"far", delay=delay)
        broker.enqueue(b"now")
        assert [m.payload for m in dequeue_all(broker, 1)] == [b"now"]
        assert broker.dequeue(1) == []
        assert_size(broker.queue_size, 1, broker)  # a delayed message counts as waiting
        if delay <= 5:
            [message] = wait_until(lambda: broker.dequeue(1), timeout=5 * delay)
            assert message.payload == b"far"

    def test_payload_of_max_payload_bytes_round_trips(self, broker: Broker) -> None:
        limit = type(broker).max_payload
        if limit is None:
            pytest.skip("broker declares max_payload=None (unlimited)")
        if limit > MAX_TESTED_PAYLOAD:
            pytest.skip(f"broker declares max_payload={limit}, above the {MAX_TESTED_PAYLOAD} bytes tested")
        payload = (bytes(range(256)) * (limit // 256 + 1))[:limit]
        broker.enqueue(payload)
        broker.enqueue_many([payload[::-1]])
        got = sorted(m.payload for m in dequeue_all(broker, 2))
        assert got == sorted([payload, payload[::-1]])

    def test_blocking_dequeue_wakes_for_new_message(self, broker: Broker) -> None:
        threading.Timer(0.2, broker_enqueue_later(broker), ()).start()
        start = time.monotonic()
        got = broker.dequeue(1, wait=5.0)
        assert [m.payload for m in got] == [b"wake"]
        assert time.monotonic() - start < 4.0

    def test_blocking_dequeue_gives_up_after_wait(self, broker: Broker) -> None:
        start = time.monotonic()
        assert broker.dequeue(1, wait=0.3) == []
        assert time.monotonic() - start >= 0.25

    def test_quarantine_takes_the_message_out_of_the_queue(self, broker: Broker) -> None:
        require_flag(broker, "has_dead_letters")
        broker.enqueue(b"tampered")
        [message] = dequeue_all(broker, 1)
        broker.quarantine(message.ack_id, "bad signature")
        assert_sizes(broker, 0, 0)
        assert broker.dequeue(1) == []

    def test_quarantine_keeps_the_message_as_a_dead_letter(self, broker: Broker) -> None:
        require_flag(broker, "has_dead_letters")
        message_id = broker.enqueue(b"tampered")
        [message] = dequeue_all(broker, 1)
        broker.quarantine(message.ack_id, "bad signature")
        assert (message_id, "bad signature", b"tampered") in [d[:3] for d in broker.dead_letters()]

    def test_a_dead_letter_keeps_its_attempts_last_error_and_when_it_died(self, broker: Broker) -> None:
        require_flag(broker, "has_dead_letters")
        message_id = broker.enqueue(b"task")
        [message] = dequeue_all(broker, 1)
        before = time.time()
        broker.quarantine(message.ack_id, "past max_attempts (3)", 3, "ValueError: no luck")
        [letter] = [d for d in broker.dead_letters() if d.message_id == message_id]
        assert letter == DeadLetter(
            message_id, "past max_attempts (3)", b"task", 3, "ValueError: no luck", letter.dead_at
        )
        assert before - 5 <= letter.dead_at <= time.time() + 5  # a server clock may differ a little

    def test_removed_dead_letters_are_gone_and_counted(self, broker: Broker) -> None:
        require_flag(broker, "has_dead_letters")
        first, second = broker.enqueue(b"one"), broker.enqueue(b"two")
        for message in dequeue_all(broker, 2):
            broker.quarantine(message.ack_id, "bad signature")
        assert broker.remove_dead_letters([first, "no-such-letter"]) == 1
        assert [d.message_id for d in broker.dead_letters()] == [second]
        assert broker.remove_dead_letters([first]) == 0
        assert broker.remove_dead_letters([second]) == 1
        assert broker.dead_letters() == []

    def test_queues_are_separate(self, broker: Broker, broker_factory: BrokerFactory) -> None:
        other = broker_factory(f"other-{uuid.uuid4().hex[:8]}", 30.0)
        try:
            other.enqueue(b"elsewhere")
            assert broker.dequeue(1) == []
            assert_size(broker.queue_size, 0, broker)
            assert [m.payload for m in dequeue_all(other, 1)] == [b"elsewhere"]
        finally:
            other.purge()
            other.close()

    def test_concurrent_consumers_never_share_a_message(
        self, broker: Broker, broker_factory: BrokerFactory
    ) -> None:
        broker.enqueue_many([str(i).encode() for i in range(300)])
        seen: list[bytes] = []
        lock = threading.Lock()

        def consume() -> None:
            mine = broker_factory(broker.queue, 30.0)
            try:
                while batch := mine.dequeue(7):
                    mine.ack_many([m.ack_id for m in batch])
                    with lock:
                        seen.extend(m.payload for m in batch)
            finally:
                mine.close()

        threads = [threading.Thread(target=consume) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        if type(broker).conditional_claims:  # else at least once: a message may reach two consumers
            assert len(seen) == 300
        assert sorted(set(seen)) == sorted(str(i).encode() for i in range(300))

    def test_ping(self, broker: Broker) -> None:
        assert broker.ping() is True

    def test_ping_fails_cleanly_when_server_is_down(self, dead_broker: Broker) -> None:
        start = time.monotonic()
        with pytest.raises(BrokerError):
            dead_broker.ping()
        assert time.monotonic() - start < 15


def broker_enqueue_later(broker: Broker) -> Callable[[], None]:
    """A callable that enqueues ``b"wake"`` through a second connection to the same queue."""
    clone = type(broker)(broker.url, broker.queue, lease=broker.lease, **broker.options)

    def enqueue() -> None:
        clone.enqueue(b"wake")
        clone.close()

    return enqueue


def make_meta(
    task_id: str | None = None,
    *,
    group: str | None = None,
    success: bool = True,
    stopped: float | None = None,
    name: str = "test-task",
    func: str = "math.floor",
    expires: float = 0.0,
) -> ResultMeta:
    """A :class:`ResultMeta` with plausible values, for store tests."""
    now = time.time() if stopped is None else stopped
    return ResultMeta(
        id=task_id or uuid.uuid4().hex,
        name=name,
        func=func,
        group=group,
        success=success,
        started=now - 0.5,
        stopped=now,
        attempts=1,
        cluster="default",
        expires=expires,
    )


class StoreContract:
    """The result store contract of ``qframe/stores/base.py``, as tests."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Return ``factory(save_limit=0, **options) -> Store`` on a live, empty server.

        ``options`` are the store's keyword options (``save_limit_per``), passed on.
        """
        raise NotImplementedError("a StoreContract subclass provides store_factory")

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> Iterator[Store]:
        """A store that keeps every result."""
        store = store_factory(save_limit=0)
        yield store
        store.purge()
        store.close()

    def test_save_and_get(self, store: Store) -> None:
        meta = make_meta()
        store.save(meta, b"blob")
        assert store.get(meta.id) == b"blob"
        assert store.get(uuid.uuid4().hex) is None

    def test_a_failure_is_replaced_by_a_later_success(self, store: Store) -> None:
        group = uuid.uuid4().hex
        meta = make_meta(group=group, success=False)
        store.save(meta, b"first")
        store.save_many([(make_meta(meta.id, group=group), b"second")])
        assert store.get(meta.id) == b"second"
        assert (store.count_group(group), store.count_group(group, failures=True)) == (1, 0)
        tally = store.tally()
        assert (tally.successes, tally.failures) == (1, 0), "the failure it replaced is still counted"

    def test_a_failure_is_replaced_by_a_later_failure(self, store: Store) -> None:
        meta = make_meta(success=False)
        store.save(meta, b"attempt 1")
        store.save(make_meta(meta.id, success=False), b"attempt 2")
        assert store.get(meta.id) == b"attempt 2"
        assert store.tally().failures == 1

    def test_a_saved_success_is_not_replaced_by_a_failure(self, store: Store) -> None:
        group = uuid.uuid4().hex
        meta = make_meta(group=group)
        store.save(meta, b"success")
        store.save(make_meta(meta.id, group=group, success=False), b"late failure")
        assert store.get(meta.id) == b"success"
        assert store.get_group(group) == [b"success"]
        assert (store.count_group(group), store.count_group(group, failures=True)) == (1, 0)
        tally = store.tally()
        assert (tally.successes, tally.failures) == (1, 0)

    def test_a_saved_success_is_not_replaced_by_a_later_success(self, store: Store) -> None:
        meta = make_meta()
        store.save(meta, b"first")
        store.save(make_meta(meta.id, group="elsewhere", stopped=meta.stopped + 5), b"second")
        assert store.get(meta.id) == b"first"
        assert store.count_group("elsewhere") == 0

    def test_the_first_success_wins_within_one_batch(self, store: Store) -> None:
        task_id = uuid.uuid4().hex
        store.save_many(
            [
                (make_meta(task_id, success=False), b"failure"),
                (make_meta(task_id), b"first success"),
                (make_meta(task_id, success=False), b"late failure"),
                (make_meta(task_id), b"second success"),
            ]
        )
        assert store.get(task_id) == b"first success"
        assert store.tally().successes == 1

    def test_a_success_that_is_not_kept_leaves_the_saved_failure(self, store_factory: StoreFactory) -> None:
        store = store_factory(save_limit=-1)
        try:
            meta = make_meta(success=False)
            store.save(meta, b"attempt 1 failed")
            store.save(make_meta(meta.id), b"attempt 2 succeeded")
            assert store.get(meta.id) == b"attempt 1 failed"
        finally:
            store.purge()
            store.close()

    def test_wait_returns_when_the_result_arrives(self, store: Store, store_factory: StoreFactory) -> None:
        meta = make_meta()
        writer = store_factory(save_limit=0)
        timer = threading.Timer(0.2, lambda: writer.save(meta, b"late"))
        timer.start()
        assert store.wait(meta.id, timeout=5.0) == b"late"
        timer.join()
        writer.close()

    def test_wait_gives_up(self, store: Store) -> None:
        start = time.monotonic()
        assert store.wait(uuid.uuid4().hex, timeout=0.3) is None
        assert time.monotonic() - start >= 0.25

    def test_groups(self, store: Store) -> None:
        group = uuid.uuid4().hex
        base = time.time()
        store.save_many(
            [(make_meta(group=group, stopped=base + i, success=i != 1), f"r{i}".encode()) for i in range(4)]
        )
        store.save(make_meta(group="another"), b"x")
        assert store.get_group(group) == [b"r0", b"r1", b"r2", b"r3"]
        assert store.get_group(group, failures=False) == [b"r0", b"r2", b"r3"]
        assert store.count_group(group) == 3
        assert store.count_group("another") == 1

    def test_count_group_with_failures_counts_only_failures(self, store: Store) -> None:
        group = uuid.uuid4().hex
        store.save_many([(make_meta(group=group, success=i < 3), b"x") for i in range(5)])
        assert store.count_group(group) == 3
        assert store.count_group(group, failures=True) == 2

    def test_delete_group_without_tasks_keeps_the_results_out_of_the_group(self, store: Store) -> None:
        group = uuid.uuid4().hex
        metas = [make_meta(group=group, success=i != 1) for i in range(3)]
        store.save_many([(m, f"r{i}".encode()) for i, m in enumerate(metas)])
        assert store.delete_group(group) == 3
        assert [store.get(m.id) for m in metas] == [b"r0", b"r1", b"r2"]
        assert store.get_group(group) == []
        assert (store.count_group(group), store.count_group(group, failures=True)) == (0, 0)
        assert store.delete_group(group, tasks=True) == 0
        assert [store.get(m.id) for m in metas] == [b"r0", b"r1", b"r2"]
        assert store.tally().successes == 2

    def test_delete_group_with_tasks_deletes_the_results(self, store: Store) -> None:
        group = uuid.uuid4().hex
        metas = [make_meta(group=group, success=i != 1) for i in range(3)]
        store.save_many([(m, b"x") for m in metas])
        store.save(make_meta(group="another"), b"y")
        assert store.delete_group(group, tasks=True) == 3
        assert [store.get(m.id) for m in metas] == [None, None, None]
        assert store.get_group(group) == []
        assert store.count_group("another") == 1

    def test_wait_group_returns_once_the_count_is_reached(
        self, store: Store, store_factory: StoreFactory
    ) -> None:
        group = uuid.uuid4().hex
        store.save(make_meta(group=group), b"r0")
        writer = store_factory(save_limit=0)
        later = [make_meta(group=group, success=False), make_meta(group=group)]
        timers = [threading.Timer(0.2 * (n + 1), writer.save, (m, b"later")) for n, m in enumerate(later)]
        for timer in timers:
            timer.start()
        try:
            assert store.wait_group(group, 3, timeout=10.0, failures=True) >= 3
            assert store.wait_group(group, 2, timeout=10.0) == 2  # successes only
        finally:
            for timer in timers:
                timer.join()
            writer.close()

    def test_wait_group_gives_up_with_the_count_it_saw(self, store: Store) -> None:
        group = uuid.uuid4().hex
        store.save_many([(make_meta(group=group), b"ok"), (make_meta(group=group, success=False), b"bad")])
        assert store.wait_group(group, 2, timeout=0.3) == 1
        assert store.wait_group(group, 2, timeout=0.3, failures=True) == 2

    def test_delete(self, store: Store) -> None:
        meta = make_meta()
        store.save(meta, b"x")
        assert store.delete(meta.id) is True
        assert store.delete(meta.id) is False
        assert store.get(meta.id) is None

    def test_save_limit_keeps_recent_successes_and_all_failures(self, store_factory: StoreFactory) -> None:
        store = store_factory(save_limit=20)
        try:
            base = time.time()
            failures = [make_meta(success=False, stopped=base + i) for i in range(3)]
            store.save_many([(m, b"f") for m in failures])
            last = None
            for i in range(100):
                last = make_meta(stopped=base + 10 + i)
                store.save(last, b"s")
            tally = store.tally()
            assert 20 <= tally.successes <= 22
            assert tally.failures == 3
            assert last is not None and store.get(last.id) == b"s"
        finally:
            store.purge()
            store.close()

    def test_negative_save_limit_keeps_only_failures(self, store_factory: StoreFactory) -> None:
        store = store_factory(save_limit=-1)
        try:
            ok, bad = make_meta(), make_meta(success=False)
            store.save_many([(ok, b"s"), (bad, b"f")])
            assert store.get(ok.id) is None
            assert store.get(bad.id) == b"f"
        finally:
            store.purge()
            store.close()

    def test_an_expired_result_is_never_returned(self, store: Store) -> None:
        group, now = uuid.uuid4().hex, time.time()
        gone = make_meta(group=group, name="cached", stopped=now - 2, expires=now - 1)
        lost = make_meta(group=group, name="cached", stopped=now - 1, success=False, expires=now - 0.5)
        kept = make_meta(group=group, name="cached", stopped=now - 3, expires=now + 60)
        store.save_many([(gone, b"gone"), (lost, b"lost"), (kept, b"kept")])
        assert (store.get(gone.id), store.get(lost.id), store.get(kept.id)) == (None, None, b"kept")
        assert store.wait(gone.id, timeout=0.2) is None
        assert store.get_group(group) == [b"kept"]
        assert (store.count_group(group), store.count_group(group, failures=True)) == (1, 0)
        assert store.get_by_name("cached") == b"kept"

    def test_a_cached_result_is_there_until_it_expires(self, store: Store) -> None:
        meta = make_meta(expires=time.time() + 1.0)
        store.save(meta, b"for a second")
        assert store.get(meta.id) == b"for a second"
        wait_until(lambda: store.get(meta.id) is None, timeout=30)
        store.save(make_meta(), b"a later save clears expired rows")  # must not bring it back
        assert store.get(meta.id) is None

    def test_get_by_name_returns_the_most_recently_stopped_result(self, store: Store) -> None:
        name, now = uuid.uuid4().hex, time.time()
        store.save_many(
            [
                (make_meta(name=name, stopped=now - 5), b"older"),
                (make_meta(name=name, stopped=now - 1, success=False), b"latest"),
                (make_meta(name=name, stopped=now - 3), b"middle"),
                (make_meta(name="another", stopped=now), b"other"),
            ]
        )
        assert store.get_by_name(name) == b"latest"
        assert store.get_by_name(uuid.uuid4().hex) is None

    @pytest.mark.parametrize("per", ["group", "name", "func"])
    def test_save_limit_per_keeps_recent_successes_of_each_value(
        self, store_factory: StoreFactory, per: str
    ) -> None:
        store = store_factory(save_limit=3, save_limit_per=per)
        try:
            base, values = time.time(), ["a-" + uuid.uuid4().hex, "b-" + uuid.uuid4().hex]
            saved: dict[str, list[ResultMeta]] = {value: [] for value in values}
            for i in range(8):
                for value in values:
                    change: dict[str, Any] = {per: value}
                    meta = make_meta(stopped=base + i)._replace(**change)
                    saved[value].append(meta)
                    store.save(meta, f"{value}-{i}".encode())
            first: dict[str, Any] = {per: values[0]}
            failure = make_meta(stopped=base - 10, success=False)._replace(**first)
            failures = [failure._replace(id=uuid.uuid4().hex) for _ in range(4)]
            store.save_many([(m, b"f") for m in failures])
            for value in values:
                kept = [m.id for m in saved[value] if store.get(m.id) is not None]
                assert kept == [m.id for m in saved[value][-3:]]
            assert all(store.get(m.id) == b"f" for m in failures)
        finally:
            store.purge()
            store.close()

    def test_a_cached_success_is_kept_for_its_time_even_when_successes_are_not(
        self, store_factory: StoreFactory
    ) -> None:
        store = store_factory(save_limit=-1)
        try:
            cached, plain = make_meta(expires=time.time() + 60), make_meta()
            store.save_many([(cached, b"cached"), (plain, b"plain")])
            assert (store.get(cached.id), store.get(plain.id)) == (b"cached", None)
        finally:
            store.purge()
            store.close()

    def test_save_limit_per_an_unknown_field_is_a_one_line_error(self, store_factory: StoreFactory) -> None:
        with pytest.raises(ConfigError, match=r"^save_limit_per must be one of group, name, func .*'queue'"):
            store_factory(save_limit=3, save_limit_per="queue")

    def test_tally(self, store: Store) -> None:
        now = time.time()
        store.save_many(
            [
                (make_meta(stopped=now - 7200), b"old"),
                (make_meta(stopped=now - 1), b"new"),
                (make_meta(stopped=now - 2, success=False), b"bad"),
            ]
        )
        recent = store.tally(since=now - 60)
        assert (recent.successes, recent.failures) == (1, 1)
        assert recent.busy == pytest.approx(1.0)
        assert store.tally().successes == 2

    def test_purge(self, store: Store) -> None:
        meta = make_meta()
        store.save(meta, b"x")
        store.purge()
        assert store.get(meta.id) is None
        assert store.tally().successes == 0


class StatusStoreContract:
    """The status role of ``qframe/stores/base.py`` (cluster heartbeats), as tests."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Return ``factory(save_limit=0)`` building the status store on a live server."""
        raise NotImplementedError("a StatusStoreContract subclass provides store_factory")

    @pytest.fixture
    def status_store(self, store_factory: StoreFactory) -> Iterator[StatusStore]:
        """A status store."""
        store = store_factory()
        assert isinstance(store, StatusStore), f"{type(store).__name__} does not fill the StatusStore role"
        yield store
        store.close()

    def test_status_is_listed_until_its_ttl_runs_out(self, status_store: StatusStore) -> None:
        key = uuid.uuid4().hex
        status_store.set_status(key, b"alive:" + key.encode(), ttl=1.0)
        assert b"alive:" + key.encode() in status_store.statuses()
        wait_until(lambda: b"alive:" + key.encode() not in status_store.statuses(), timeout=5)

    def test_every_live_status_is_listed_and_a_new_one_replaces_its_key(
        self, status_store: StatusStore, store_factory: StoreFactory
    ) -> None:
        other = store_factory()  # another process or host publishing beside this one
        assert isinstance(other, StatusStore)
        one, two = uuid.uuid4().hex, uuid.uuid4().hex
        try:
            status_store.set_status(one, f"{one}:1".encode(), ttl=30)
            other.set_status(two, f"{two}:1".encode(), ttl=30)
            status_store.set_status(one, f"{one}:2".encode(), ttl=30)
            mine = [s for s in other.statuses() if s.split(b":")[0] in (one.encode(), two.encode())]
            assert sorted(mine) == sorted([f"{one}:2".encode(), f"{two}:1".encode()])
        finally:
            other.close()


class DeadLetterStoreContract:
    """The dead-letter role of ``qframe/stores/base.py`` (the core's quarantine), as tests."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Return ``factory(save_limit=0)`` building the dead-letter store on a live server."""
        raise NotImplementedError("a DeadLetterStoreContract subclass provides store_factory")

    @pytest.fixture
    def dead_letter_store(self, store_factory: StoreFactory) -> Iterator[DeadLetterStore]:
        """A dead-letter store."""
        store = store_factory()
        assert isinstance(store, DeadLetterStore), f"{type(store).__name__} does not fill the role"
        yield store
        store.close()

    def test_quarantined_message_is_listed_with_its_reason_and_payload(
        self, dead_letter_store: DeadLetterStore
    ) -> None:
        queue = f"dead-{uuid.uuid4().hex[:10]}"
        assert dead_letter_store.dead_letters(queue) == []
        dead_letter_store.quarantine(queue, "m-1", "bad signature", b"tampered")
        dead_letter_store.quarantine(queue, "m-2", "undecodable payload", b"\x00\xff")
        assert sorted(letter[:3] for letter in dead_letter_store.dead_letters(queue)) == [
            ("m-1", "bad signature", b"tampered"),
            ("m-2", "undecodable payload", b"\x00\xff"),
        ]

    def test_a_dead_letter_keeps_its_attempts_last_error_and_when_it_died(
        self, dead_letter_store: DeadLetterStore
    ) -> None:
        queue = f"dead-{uuid.uuid4().hex[:10]}"
        before = time.time()
        dead_letter_store.quarantine(queue, "m-1", "past max_attempts (2)", b"p", 2, "KeyError: 'x'")
        [letter] = dead_letter_store.dead_letters(queue)
        assert letter == DeadLetter("m-1", "past max_attempts (2)", b"p", 2, "KeyError: 'x'", letter.dead_at)
        assert before - 5 <= letter.dead_at <= time.time() + 5  # a server clock may differ a little

    def test_the_same_message_again_is_kept_once(self, dead_letter_store: DeadLetterStore) -> None:
        queue = f"dead-{uuid.uuid4().hex[:10]}"
        dead_letter_store.quarantine(queue, "m-1", "first", b"p")
        dead_letter_store.quarantine(queue, "m-1", "again", b"p", 4, "boom")
        assert [letter[:5] for letter in dead_letter_store.dead_letters(queue)] == [
            ("m-1", "again", b"p", 4, "boom")
        ]

    def test_dead_letters_are_kept_per_queue(
        self, dead_letter_store: DeadLetterStore, store_factory: StoreFactory
    ) -> None:
        one, two = f"dead-{uuid.uuid4().hex[:10]}", f"dead-{uuid.uuid4().hex[:10]}"
        dead_letter_store.quarantine(one, "m-1", "r", b"one")
        reader = store_factory()
        assert isinstance(reader, DeadLetterStore)
        try:
            assert [letter[:3] for letter in reader.dead_letters(one)] == [("m-1", "r", b"one")]
            assert reader.dead_letters(two) == []
        finally:
            reader.close()

    def test_removed_dead_letters_are_gone_and_counted_in_their_queue_only(
        self, dead_letter_store: DeadLetterStore
    ) -> None:
        one, two = f"dead-{uuid.uuid4().hex[:10]}", f"dead-{uuid.uuid4().hex[:10]}"
        for queue in (one, two):
            dead_letter_store.quarantine(queue, "m-1", "r", b"p")
        dead_letter_store.quarantine(one, "m-2", "r", b"p")
        assert dead_letter_store.remove_dead_letters(one, ["m-1", "no-such-letter"]) == 1
        assert [letter.message_id for letter in dead_letter_store.dead_letters(one)] == ["m-2"]
        assert [letter.message_id for letter in dead_letter_store.dead_letters(two)] == ["m-1"]
        assert dead_letter_store.remove_dead_letters(one, ["m-1"]) == 0
        assert dead_letter_store.remove_dead_letters(one, []) == 0


class DelayStoreContract:
    """The held-delays role of ``qframe/stores/delays.py``, as tests (uses ``store_factory``)."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Return ``factory(save_limit=0) -> Store`` (a :class:`DelayStore`) on a live server."""
        raise NotImplementedError("a DelayStoreContract subclass provides store_factory")

    @pytest.fixture
    def held(self, store_factory: StoreFactory) -> Iterator[DelayStore]:
        """A store with the role."""
        store = store_factory(save_limit=0)
        assert isinstance(store, DelayStore), f"{type(store).__name__} does not subclass DelayStore"
        yield store
        store.close()

    @pytest.fixture
    def queue_name(self) -> str:
        """A queue name no other test uses."""
        return f"held-{uuid.uuid4().hex[:10]}"

    def test_only_tasks_due_by_until_are_claimed(self, held: DelayStore, queue_name: str) -> None:
        now = time.time()
        held.hold(queue_name, b"next-hour", now + 3600)
        first = held.hold(queue_name, b"\x00due\xff", now - 1)
        [task] = held.claim_held(queue_name, now, lease=30, limit=10)
        assert (task.id, task.payload) == (first, b"\x00due\xff")
        assert task.due == pytest.approx(now - 1)
        assert held.count_held(queue_name) == 2

    def test_claims_come_earliest_first_and_within_the_limit(self, held: DelayStore, queue_name: str) -> None:
        now = time.time()
        for offset in (30, 10, 20, 40):
            held.hold(queue_name, f"in-{offset}".encode(), now + offset)
        claimed = held.claim_held(queue_name, now + 35, lease=30, limit=2)
        assert [t.payload for t in claimed] == [b"in-10", b"in-20"]
        assert [t.payload for t in held.claim_held(queue_name, math.inf, lease=30, limit=10)] == [
            b"in-30",
            b"in-40",
        ]

    def test_a_claimed_task_is_claimed_again_only_after_its_lease(
        self, held: DelayStore, queue_name: str
    ) -> None:
        held.hold(queue_name, b"x", time.time() - 1)
        [first] = held.claim_held(queue_name, time.time(), lease=0.5, limit=10)
        assert held.claim_held(queue_name, time.time(), lease=0.5, limit=10) == []
        [second] = wait_until(lambda: held.claim_held(queue_name, time.time(), lease=30, limit=10))
        assert second.id == first.id and second.claim != first.claim
        held.drop_held(queue_name, [first])  # stale claim: the entry stays
        assert held.count_held(queue_name) == 1
        held.drop_held(queue_name, [second])
        assert held.count_held(queue_name) == 0
        assert held.claim_held(queue_name, math.inf, lease=30, limit=10) == []

    def test_queues_hold_their_own_tasks(self, held: DelayStore, queue_name: str) -> None:
        held.hold(queue_name, b"mine", time.time() - 1)
        other = queue_name + "-other"
        assert held.claim_held(other, math.inf, lease=30, limit=10) == []
        assert held.count_held(other) == 0
        [task] = held.claim_held(queue_name, math.inf, lease=30, limit=10)
        held.drop_held(other, [task])  # the wrong queue deletes nothing
        assert held.count_held(queue_name) == 1

    def test_concurrent_claimers_never_share_a_held_task(
        self, held: DelayStore, store_factory: StoreFactory, queue_name: str
    ) -> None:
        due = time.time() - 1
        for i in range(200):
            held.hold(queue_name, str(i).encode(), due)
        seen: list[bytes] = []
        lock = threading.Lock()

        def claim() -> None:
            mine = store_factory(save_limit=0)
            assert isinstance(mine, DelayStore)
            try:
                while batch := mine.claim_held(queue_name, time.time(), lease=60, limit=7):
                    with lock:
                        seen.extend(t.payload for t in batch)
                    mine.drop_held(queue_name, batch)
            finally:
                mine.close()

        threads = [threading.Thread(target=claim) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(seen) == sorted(str(i).encode() for i in range(200))
        assert held.count_held(queue_name) == 0
