"""The direct line (``qframe_redis.direct``): each case where it must give way to the client's path."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.connection import Connection

from qframe.testing import RedisServer
from qframe_redis import RedisBroker, RedisStore
from qframe_redis.direct import DirectLine, pack


def test_an_enqueue_after_the_server_restarted_goes_through_on_a_new_connection(
    own_redis_server: Callable[..., RedisServer], key_prefix: str, cleanup: list[Any]
) -> None:
    server = own_redis_server()
    broker = RedisBroker(server.url, "q", prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue(b"before")
    server.restart()  # the line's socket is dead now; the AOF keeps the first message
    broker.enqueue(b"after")
    assert sorted(m.payload for m in broker.dequeue(10)) == [b"after", b"before"]


def test_threads_enqueueing_at_once_through_one_broker_lose_nothing(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    broker = RedisBroker(redis_url, "q", prefix=key_prefix)
    cleanup.append(broker)
    ids: list[str] = []

    def produce(thread: int) -> None:
        ids.extend(broker.enqueue(f"{thread}-{i}".encode()) for i in range(200))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    waiter = threading.Thread(target=lambda: broker.dequeue(0, wait=0.5))  # blocks on the line
    for thread in [waiter, *threads]:
        thread.start()
    for thread in [waiter, *threads]:
        thread.join(timeout=30)
    payloads = [m.payload for m in broker.dequeue(2000)]
    assert len(set(ids)) == len(ids) == 1600
    assert sorted(payloads) == sorted(f"{t}-{i}".encode() for t in range(8) for i in range(200))


def test_a_forked_child_uses_a_connection_of_its_own_not_the_parents(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    broker = RedisBroker(redis_url, "q", prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue(b"parent-0")  # the parent's line is connected now
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: replies of another shape on a shared socket break it
        status = 1
        try:
            for i in range(100):
                broker.enqueue(f"child-{i}".encode())
                broker.ack_many([m.ack_id for m in broker.dequeue(1)])
            status = 0
        finally:
            os._exit(status)
    for i in range(1, 101):
        broker.enqueue(f"parent-{i}".encode())
    assert os.waitpid(pid, 0)[1] == 0
    assert len(broker.dequeue(500)) == 101


def test_a_consumer_blocked_on_the_line_does_not_hold_up_a_producer_of_the_same_broker(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    broker = RedisBroker(redis_url, "q", prefix=key_prefix)
    cleanup.append(broker)
    waiter = threading.Thread(target=lambda: broker.dequeue(1, wait=3.0) and None)
    broker._link.direct.call(lambda: None, "PING")  # the line is connected before the waiter takes it
    waiter.start()
    time.sleep(0.3)
    start = time.monotonic()
    message_id = broker.enqueue(b"now")  # the waiter wakes and takes it; the producer did not wait
    took = time.monotonic() - start
    waiter.join(timeout=10)
    assert took < 0.5, f"enqueue waited {took:.1f} s for the blocked consumer"
    assert message_id


def test_scripts_flushed_from_the_server_are_loaded_again(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    broker = RedisBroker(redis_url, "q", prefix=key_prefix)
    cleanup.append(broker)
    broker.enqueue(b"first")
    assert [m.payload for m in broker.dequeue(1)] == [b"first"]
    redis.Redis.from_url(redis_url).script_flush()
    broker.enqueue(b"second")
    assert [m.payload for m in broker.dequeue(1)] == [b"second"]


def test_an_error_reply_on_the_line_is_raised_as_redis_py_raises_it(
    redis_url: str, key_prefix: str, cleanup: list[Any]
) -> None:
    store = RedisStore(redis_url, prefix=key_prefix)
    cleanup.append(store)
    line = DirectLine(store.client)
    store.client.set(f"{key_prefix}:text", b"x")
    try:
        line.call(lambda: "fallback", "LPUSH", f"{key_prefix}:text", b"y")
    except redis.exceptions.ResponseError as exc:
        assert "WRONGTYPE" in str(exc)
    else:
        raise AssertionError("an error reply was swallowed")
    assert line.call(lambda: "fallback", "PING") in (b"PONG", "PONG", True)


def test_the_direct_packer_writes_what_redis_py_writes_or_leaves_the_command_to_it() -> None:
    command = ("EVALSHA", "a" * 40, 2, "k1", b"k2", b"\x00\xff blob", "naïve", 3.5, -7, 1796146181.76154, "")
    assert pack(*command) == b"".join(Connection().pack_command(*command))
    assert pack("SET", "flag", True) is None  # redis-py refuses a bool with its own DataError
    assert pack("CONFIG GET", "maxmemory") is None  # redis-py splits the name in two
    assert pack("SET", "k", bytearray(b"v")) is None
