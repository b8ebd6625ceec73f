"""The qframe broker and store contracts against a single Redis server."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from redis.connection import AbstractConnection

from qframe.brokers.base import Broker
from qframe.errors import StoreError
from qframe.stores.base import DeadLetter, Store, Tally
from qframe.testing import (
    BrokerContract,
    DeadLetterStoreContract,
    DelayStoreContract,
    ScheduleStoreContract,
    StatusStoreContract,
    StoreContract,
    free_port,
    make_meta,
    wait_until,
)
from qframe.testing.schedule_contract import ScheduleStoreFactory
from qframe_redis import RedisBroker, RedisStore

pytestmark = pytest.mark.timeout(30)


class TestRedisBroker(BrokerContract):
    """BrokerContract on one server."""

    @pytest.fixture
    def broker_factory(self, redis_url: str, key_prefix: str) -> Any:
        return lambda queue, lease: RedisBroker(redis_url, queue, lease=lease, prefix=key_prefix)

    @pytest.fixture
    def write_malformed(self, redis_url: str, key_prefix: str, malformed_writer: Any) -> Any:
        return lambda queue: malformed_writer(redis_url, key_prefix, queue)

    @pytest.fixture
    def dead_broker(self) -> Broker:
        return RedisBroker(f"redis://127.0.0.1:{free_port()}/0", "q", lease=5)


class TestRedisStore(StoreContract, StatusStoreContract, DeadLetterStoreContract, DelayStoreContract):
    """The store's role contracts on one server."""

    @pytest.fixture
    def store_factory(self, redis_url: str, key_prefix: str) -> Any:
        return lambda save_limit=0, **options: RedisStore(
            redis_url, save_limit=save_limit, prefix=key_prefix, **options
        )


class TestRedisScheduleStore(ScheduleStoreContract):
    """ScheduleStoreContract on one server (the racing processes connect on their own)."""

    @pytest.fixture
    def schedule_store_factory(self, redis_url: str, key_prefix: str) -> ScheduleStoreFactory:
        return functools.partial(RedisStore, redis_url, prefix=key_prefix)


# -- behaviour beyond the contract ----------------------------------------------------------


@pytest.fixture
def broker(redis_url: str, key_prefix: str, cleanup: list[Any]) -> RedisBroker:
    broker = RedisBroker(redis_url, "extra", lease=30, prefix=key_prefix)
    cleanup.append(broker)
    return broker


def test_attempts_count_every_delivery(redis_url: str, key_prefix: str, cleanup: list[Any]) -> None:
    broker = RedisBroker(redis_url, "attempts", lease=0.2, prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue(b"x")
    seen = []
    for _ in range(3):
        [message] = broker.dequeue(1, wait=3.0)
        seen.append((message.attempts, message.ack_id))
    assert [a for a, _ in seen] == [1, 2, 3]
    assert len({ack for _, ack in seen}) == 3
    broker.touch([seen[0][1], seen[1][1]])  # stale claims: no effect on the live one
    broker.ack(seen[-1][1])
    assert (broker.queue_size(), broker.lock_size()) == (0, 0)


def test_blocking_dequeue_notices_a_due_delayed_message(broker: RedisBroker) -> None:
    broker.enqueue(b"soon", delay=0.4)
    start = time.monotonic()
    got = broker.dequeue(1, wait=5.0)
    elapsed = time.monotonic() - start
    assert [m.payload for m in got] == [b"soon"]
    assert 0.3 <= elapsed < 1.5


def test_blocking_dequeue_notices_an_expired_lease(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    broker = RedisBroker(redis_url, "expiry", lease=0.4, prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue(b"orphan")
    [first] = broker.dequeue(1)
    start = time.monotonic()
    [second] = broker.dequeue(1, wait=5.0)
    assert second.message_id == first.message_id and second.attempts == 2
    assert time.monotonic() - start < 1.5


#: What a new connection sends before its first command (not counted by :func:`sent_commands`).
HANDSHAKE = frozenset({"HELLO", "CLIENT", "AUTH", "SELECT"})


@contextlib.contextmanager
def sent_commands() -> Iterator[list[str]]:
    """Record the name of every command this thread sends (one entry per round trip).

    Commands are counted where every connection writes them, so the pool's path and the
    direct line (:mod:`qframe_redis.direct`) are both seen; a pipeline counts once, by
    its first command.
    """
    sent: list[str] = []
    original = AbstractConnection.send_packed_command
    thread = threading.get_ident()

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        if threading.get_ident() == thread:
            packed = command if isinstance(command, bytes) else b"".join(command)
            name = packed.split(b"\r\n")[2].decode().upper()  # *<count>, $<length>, <name>
            if name not in HANDSHAKE:
                sent.append(name)
        original(self, command, check_health)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def test_blocking_dequeue_does_not_busy_poll(broker: RedisBroker) -> None:
    with sent_commands() as sent:
        start = time.monotonic()
        assert broker.dequeue(1, wait=1.5) == []
        assert time.monotonic() - start >= 1.4
    # A 1 ms busy poll would send hundreds of commands; blocking (<= 1 s per BLMOVE) a few.
    assert sent.count("BLMOVE") == 2
    assert len(sent) <= 5


def test_bulk_dequeue_and_ack_many_are_one_round_trip_each(broker: RedisBroker) -> None:
    broker.enqueue_many([f"m{i}".encode() for i in range(50)])
    broker.dequeue(1)  # loads the scripts
    with sent_commands() as sent:
        batch = broker.dequeue(40)
        broker.ack_many([m.ack_id for m in batch])
    assert len(batch) == 40
    assert sent == ["EVALSHA", "EVALSHA"]
    assert (broker.queue_size(), broker.lock_size()) == (9, 1)


def test_wait_blocks_instead_of_polling(redis_url: str, key_prefix: str, cleanup: list[Any]) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    writer = RedisStore(redis_url, prefix=key_prefix)
    cleanup += [store, writer]
    meta = make_meta()
    threading.Timer(1.0, lambda: writer.save(meta, b"late")).start()
    with sent_commands() as sent:
        start = time.monotonic()
        assert store.wait(meta.id, timeout=5.0) == b"late"
        assert 0.9 <= time.monotonic() - start < 2.5
    assert sent == ["SET", "HGET", "BLMOVE"]  # announce, look, block once: the blob comes with the wake-up


def test_results_nobody_waits_for_leave_no_wake_up_key(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    cleanup.append(store)
    unwatched, watched = make_meta(), make_meta()
    store.save(unwatched, b"nobody waits")
    threading.Timer(0.2, lambda: store_factory_save(redis_url, key_prefix, watched)).start()
    assert store.wait(watched.id, timeout=5.0) == b"watched"
    assert store.client.exists(f"{store.base}done:{unwatched.id}") == 0
    assert store.client.exists(f"{store.base}done:{watched.id}") == 1


def store_factory_save(redis_url: str, key_prefix: str, meta: Any) -> None:
    writer = RedisStore(redis_url, prefix=key_prefix)
    writer.save(meta, b"watched")
    writer.close()


def test_every_waiter_of_one_task_wakes(redis_url: str, key_prefix: str, cleanup: list[Any]) -> None:
    stores = [RedisStore(redis_url, prefix=key_prefix) for _ in range(4)]
    cleanup.extend(stores)
    meta = make_meta()
    results: list[tuple[bytes | None, float]] = []

    def wait(store: Store) -> None:
        start = time.monotonic()
        results.append((store.wait(meta.id, timeout=8.0), time.monotonic() - start))

    threads = [threading.Thread(target=wait, args=(s,)) for s in stores[1:]]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    stores[0].save(meta, b"ready")
    for thread in threads:
        thread.join(10)
    assert [blob for blob, _ in results] == [b"ready"] * 3
    assert max(elapsed for _, elapsed in results) < 3.0


def test_result_ttl_expires_results_and_their_indexes(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_url, prefix=key_prefix, result_ttl=0.5)
    cleanup.append(store)
    group = uuid.uuid4().hex
    meta = make_meta(group=group)
    store.save(meta, b"cached")
    assert store.get(meta.id) == b"cached"
    assert store.count_group(group) == 1
    time.sleep(0.7)
    assert store.get(meta.id) is None
    assert store.count_group(group, failures=True) == 0
    assert store.tally().successes == 0
    store.purge()


def test_a_result_saved_again_after_its_record_expired_leaves_nothing_in_its_old_indexes(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    # A save prunes at most 500 expired results first, the earliest expired first: saved
    # again in reverse order, the last 100 still have index entries but no record when
    # their new save comes, and it must drop those too, not take them for new ids.
    store = RedisStore(redis_url, prefix=key_prefix, result_ttl=1.0)
    cleanup.append(store)
    metas = [make_meta(group="old", success=False) for _ in range(600)]
    store.save_many([(meta, b"failed") for meta in metas])
    last_record = f"{key_prefix}:{{results}}:r:{metas[-1].id}"
    wait_until(lambda: not store.client.exists(last_record), timeout=10)
    store.save_many([(make_meta(meta.id, group="new"), b"again") for meta in reversed(metas)])
    assert store.count_group("old", failures=True) == 0
    assert store.count_group("new") == 600
    store.purge()


def test_save_limit_deletes_trimmed_records(redis_url: str, key_prefix: str, cleanup: list[Any]) -> None:
    store = RedisStore(redis_url, prefix=key_prefix, save_limit=3)
    cleanup.append(store)
    base = time.time()
    metas = [make_meta(stopped=base + i, group="g") for i in range(6)]
    store.save_many([(m, f"r{i}".encode()) for i, m in enumerate(metas)])
    assert [store.get(m.id) for m in metas] == [None, None, None, b"r3", b"r4", b"r5"]
    assert store.get_group("g") == [b"r3", b"r4", b"r5"]
    store.purge()
    assert list(store.client.scan_iter(match=f"{key_prefix}:*")) == []


def test_resaving_moves_a_result_between_indexes(redis_url: str, key_prefix: str, cleanup: list[Any]) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    cleanup.append(store)
    meta = make_meta(group="a", success=False)
    store.save(meta, b"failed")
    store.save(make_meta(meta.id, group="b"), b"fixed")
    assert store.count_group("a", failures=True) == 0
    assert store.get_group("b", failures=False) == [b"fixed"]
    tally = store.tally()
    assert (tally.successes, tally.failures) == (1, 0)
    raw = store.client.hgetall(f"{key_prefix}:{{results}}:r:{meta.id}")
    assert raw[b"group"] == b"=b" and raw[b"success"] == b"1" and raw[b"func"] == b"math.floor"
    store.purge()


def test_purge_removes_every_key_of_a_queue(broker: RedisBroker) -> None:
    broker.enqueue_many([b"1", b"2"])
    broker.enqueue(b"3", delay=60)
    [message] = broker.dequeue(1)
    broker.quarantine(message.ack_id, "bad")
    broker.purge()
    assert list(broker.client.scan_iter(match=f"{broker.prefix}:{{extra}}:*")) == []
    assert broker.dead_letters() == []


def test_statuses_live_under_the_store_hash_tag_and_expire_by_themselves(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    one, two = RedisStore(redis_url, prefix=key_prefix), RedisStore(redis_url, prefix=key_prefix)
    cleanup += [one, two]
    one.set_status("a", b"A", ttl=5)
    two.set_status("b", b"B", ttl=5)
    one.set_status("a", b"A2", ttl=5)
    assert sorted(one.statuses()) == [b"A2", b"B"]
    assert two.client.pttl(f"{key_prefix}:{{results}}:stat:a") > 0


def test_dead_letters_live_under_the_store_hash_tag(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    cleanup.append(store)
    store.quarantine("q", "m1", "bad signature", b"payload")
    assert sorted(store.client.keys(f"{key_prefix}:*")) == [
        f"{key_prefix}:{{results}}:dead-payload:q".encode(),
        f"{key_prefix}:{{results}}:dead:q".encode(),
    ]


def test_a_dead_letter_written_by_an_older_version_is_read_as_its_reason(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    cleanup.append(store)
    store.client.hset(f"{key_prefix}:{{results}}:dead:q", "m1", "bad signature")
    store.client.hset(f"{key_prefix}:{{results}}:dead-payload:q", "m1", b"payload")
    assert store.dead_letters("q") == [DeadLetter("m1", "bad signature", b"payload")]


def test_an_unreachable_store_raises_store_error_in_one_line() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(
        StoreError, match=r"^redis store at redis://127\.0\.0\.1:\d+/0 is unreachable: "
    ) as error:
        store.get("any")
    assert "\n" not in str(error.value)


def test_tally_busy_follows_saves_resaves_and_deletes(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    cleanup.append(store)
    metas = [make_meta(group="g") for _ in range(3)]  # 0.5 s each
    store.save_many([(m, b"x") for m in metas])
    assert store.tally().busy == pytest.approx(1.5)
    store.save(metas[0], b"again")  # a saved success stays: still three results
    assert store.tally() == Tally(successes=3, failures=0, busy=pytest.approx(1.5))
    assert store.delete(metas[1].id) is True
    assert store.tally().busy == pytest.approx(1.0)
    assert store.delete_group("g", tasks=True) == 2
    assert store.tally() == Tally()
