"""Behaviour of the Mongo broker and store beyond the contracts, Mongo-wire-compatible (SecantusDB).

Also the interfaces agreed for the core that this branch's core does not have yet: dead
letters with attempts and last error, ``remove_dead_letters``, ``ResultMeta.expires``,
``save_limit_per`` and ``get_by_name``.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.collection import Collection

from qframe.errors import BrokerError, ConfigError, StoreError
from qframe.stores.base import ResultMeta
from qframe.testing import free_port, make_meta, wait_until
from qframe_mongo import MongoBroker, MongoStore
from qframe_mongo.connection import database_name, redacted

pytestmark = [pytest.mark.timeout(60), pytest.mark.secantusdb]


@pytest.fixture
def broker(mongo_url: str, prefix: str, cleanup: list[Any]) -> MongoBroker:
    broker = MongoBroker(mongo_url, "extra", lease=30, prefix=prefix)
    cleanup.append(broker)
    return broker


@pytest.fixture
def store(mongo_url: str, prefix: str, cleanup: list[Any]) -> Iterator[MongoStore]:
    store = MongoStore(mongo_url, prefix=prefix)
    cleanup.append(store)
    yield store
    store.purge()


def named(name: str, *, stopped: float, group: str | None = None, func: str = "math.floor") -> ResultMeta:
    return make_meta(group=group, stopped=stopped)._replace(name=name, func=func)


# -- broker -------------------------------------------------------------------------------


def test_documents_hold_integer_epoch_milliseconds_and_the_owner_token(broker: MongoBroker) -> None:
    before = time.time_ns() // 1_000_000
    message_id = broker.enqueue(b"x", delay=10)
    document = broker.collection.find_one({"_id": message_id})
    assert document is not None
    assert isinstance(document["visible_at"], int) and isinstance(document["enqueued"], int)
    assert before + 10_000 <= document["visible_at"] <= before + 12_000
    broker.collection.update_one({"_id": message_id}, {"$set": {"visible_at": before}})
    [message] = broker.dequeue(1)
    claimed = broker.collection.find_one({"_id": message_id})
    assert claimed is not None and claimed["owner"] == message.ack_id
    assert claimed["lease_until"] == claimed["visible_at"] >= before + 30_000


def test_a_stale_claim_cannot_ack_nack_touch_or_release(
    mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    broker = MongoBroker(mongo_url, "stale", lease=0.3, prefix=prefix)
    cleanup.append(broker)
    broker.enqueue(b"x")
    [first] = broker.dequeue(1)
    [second] = wait_until(lambda: broker.dequeue(1), timeout=10)
    assert second.attempts == 2 and second.ack_id != first.ack_id
    broker.touch([first.ack_id])
    broker.release([first.ack_id])
    broker.nack(first.ack_id)
    broker.ack(first.ack_id)
    document = broker.collection.find_one({"_id": second.message_id})
    assert document is not None and document["owner"] == second.ack_id and document["attempts"] == 2


def test_bulk_dequeue_claims_each_message_once_under_racing_consumers(
    mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    broker = MongoBroker(mongo_url, "race", lease=30, prefix=prefix)
    cleanup.append(broker)
    broker.enqueue_many([str(i).encode() for i in range(60)])
    got: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        mine = MongoBroker(mongo_url, "race", lease=30, prefix=prefix)
        try:
            while batch := mine.dequeue(5):
                with lock:
                    got.extend(m.message_id for m in batch)
        finally:
            mine.close()

    threads = [threading.Thread(target=take) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
    assert len(got) == 60 and len(set(got)) == 60
    assert broker.collection.count_documents({"attempts": 1}) == 60


def test_blocking_dequeue_waits_on_a_change_stream_instead_of_polling(broker: MongoBroker) -> None:
    broker.poll = 0.001  # polling would claim a thousand times a second
    claims = 0
    original = broker._claim

    def counted(count: int) -> Any:
        nonlocal claims
        claims += 1
        return original(count)

    broker._claim = counted  # type: ignore[method-assign]
    threading.Timer(
        1.0, lambda: MongoBroker(broker.url, broker.queue, prefix=broker.prefix).enqueue(b"wake")
    ).start()
    start = time.monotonic()
    [message] = broker.dequeue(1, wait=8.0)
    assert message.payload == b"wake" and time.monotonic() - start < 6.0
    assert broker.change_streams is True
    assert claims <= 3  # the first look, then one per change that woke it


def test_a_stream_left_unread_is_reopened_instead_of_replaying_every_change(
    broker: MongoBroker, mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    producer = MongoBroker(mongo_url, broker.queue, prefix=prefix)
    cleanup.append(producer)
    assert broker.dequeue(1, wait=0.01) == []  # opens the change stream
    producer.enqueue_many([b"m"] * 40)
    broker.ack_many([m.ack_id for m in broker.dequeue(40)])  # busy: the stream is not read
    broker._stream_read -= 10  # as if that took a while
    claims = 0
    original = broker._claim

    def counted(count: int) -> Any:
        nonlocal claims
        claims += 1
        return original(count)

    broker._claim = counted  # type: ignore[method-assign]
    assert broker.dequeue(1, wait=1.0) == []
    assert claims <= 2  # not one per insert the old stream had seen


def test_without_change_streams_dequeue_polls_every_poll_seconds(
    mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    broker = MongoBroker(mongo_url, "polling", lease=30, prefix=prefix, change_streams="false", poll=0.05)
    cleanup.append(broker)
    threading.Timer(0.3, lambda: MongoBroker(mongo_url, "polling", prefix=prefix).enqueue(b"late")).start()
    [message] = broker.dequeue(1, wait=5.0)
    assert message.payload == b"late" and broker._stream is None


def test_blocking_dequeue_notices_a_due_delayed_message(broker: MongoBroker) -> None:
    broker.enqueue(b"soon", delay=0.5)
    start = time.monotonic()
    assert [m.payload for m in broker.dequeue(1, wait=8.0)] == [b"soon"]
    assert time.monotonic() - start >= 0.4


def test_release_gives_the_attempt_back(broker: MongoBroker) -> None:
    broker.enqueue(b"x")
    [first] = broker.dequeue(1)
    broker.release([first.ack_id])
    [again] = broker.dequeue(1)
    assert (again.attempts, broker.collection.find_one({"_id": again.message_id})["attempts"]) == (1, 1)  # type: ignore[index]


def _claim_in_child(url: str, prefix: str, queue: str, out: Any) -> None:
    broker = MongoBroker(url, queue, prefix=prefix)
    out.put([m.payload for m in broker.dequeue(1, wait=5.0)])
    broker.close()


def test_a_forked_process_opens_its_own_client(broker: MongoBroker) -> None:
    broker.ping()  # the parent's client is open before the fork
    parent_client = broker._link.client
    broker.enqueue(b"for the child")
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_claim_in_child, args=(broker.url, broker.prefix, broker.queue, out))
    child.start()
    assert out.get(timeout=20) == [b"for the child"]
    child.join(20)
    assert child.exitcode == 0
    assert broker._link.client is parent_client and broker.ping() is True
    broker._link._pid = os.getpid() + 1  # as a forked child sees it
    assert broker._link.client is not parent_client


def test_an_unacknowledged_write_concern_is_warned_about(
    mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    careless = MongoBroker(mongo_url, "w0", prefix=prefix, w=0)
    careful = MongoBroker(mongo_url, "w1", prefix=prefix)
    cleanup += [careless, careful]
    [line] = careless.warnings()
    assert "write concern w=0" in line and "tasks can be lost" in line
    assert careful.warnings() == []


def test_an_unreachable_broker_raises_broker_error_in_one_line() -> None:
    broker = MongoBroker(f"mongodb://127.0.0.1:{free_port()}/q", "q", serverSelectionTimeoutMS=500)
    with pytest.raises(
        BrokerError, match=r"^mongo broker at mongodb://127\.0\.0\.1:\d+/q is unreachable: "
    ) as error:
        broker.enqueue(b"x")
    assert "\n" not in str(error.value)


def test_bad_urls_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="must start with mongodb://"):
        MongoBroker("redis://localhost/0", "q")
    with pytest.raises(ConfigError, match="malformed"):
        MongoBroker("mongodb://host:notaport/db", "q")
    with pytest.raises(ConfigError, match="change_streams"):
        MongoBroker("mongodb://localhost/db", "q", change_streams="sometimes")
    with pytest.raises(ConfigError, match="save_limit_per"):
        MongoStore("mongodb://localhost/db", save_limit_per="colour")
    with pytest.raises(ConfigError, match=r"^mongo broker at mongodb://localhost/db: Unknown option: colour"):
        MongoBroker("mongodb://localhost/db", "q", colour=1).ping()
    with pytest.raises(
        ConfigError, match=r"^mongo store at mongodb://localhost/db: serverSelectionTimeoutMS must be"
    ):
        MongoStore("mongodb://localhost/db", serverSelectionTimeoutMS="soon").ping()


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_secantusdb_fails_under_ci_and_skips_locally(
    secantus_lookup: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, ci: str, outcome: Any
) -> None:
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException) as raised:  # a skip must not escape the test as a skip
        secantus_lookup()
    assert raised.type is outcome and "SecantusDB is not installed" in str(raised.value)


def test_the_database_comes_from_the_url_path() -> None:
    assert database_name("mongodb://u:p@h1:1,h2:2/jobs?replicaSet=rs0") == "jobs"
    assert database_name("mongodb://localhost") == "qframe"
    assert database_name("mongodb+srv://cluster0.example.com/jobs?retryWrites=true") == "jobs"
    assert redacted("mongodb://user:secret@h/db") == "mongodb://user:***@h/db"


# -- store --------------------------------------------------------------------------------


def test_result_ttl_expires_results_through_a_ttl_index(
    mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    store = MongoStore(mongo_url, prefix=prefix, result_ttl=0.5)
    cleanup.append(store)
    group = uuid.uuid4().hex
    meta = make_meta(group=group)
    store.save(meta, b"cached")
    assert store.get(meta.id) == b"cached" and store.count_group(group) == 1
    time.sleep(0.7)
    assert store.get(meta.id) is None
    assert store.get_group(group) == [] and store.count_group(group) == 0
    assert store.tally().successes == 0
    ttl = [i for i in store.results.list_indexes() if i.get("expireAfterSeconds") == 0]
    assert [list(i["key"]) for i in ttl] == [["expire_at"]]
    assert store.results.find_one({"_id": meta.id}, {"expire_at": 1})["expire_at"] is not None  # type: ignore[index]


def test_result_meta_expires_is_honoured(store: MongoStore) -> None:
    gone = make_meta()._replace(expires=time.time() - 1)
    kept = make_meta()._replace(expires=time.time() + 3600)
    forever = make_meta()
    store.save_many([(gone, b"gone"), (kept, b"kept"), (forever, b"forever")])
    assert [store.get(m.id) for m in (gone, kept, forever)] == [None, b"kept", b"forever"]


def test_a_cached_success_is_kept_when_successes_are_not(
    mongo_url: str, prefix: str, cleanup: list[Any]
) -> None:
    store = MongoStore(mongo_url, prefix=prefix, save_limit=-1)
    cleanup.append(store)
    cached, plain = make_meta()._replace(expires=time.time() + 60), make_meta()
    store.save_many([(cached, b"cached"), (plain, b"plain")])
    assert (store.get(cached.id), store.get(plain.id)) == (b"cached", None)
    store.purge()


def test_get_by_name_returns_the_most_recently_stopped_live_result(store: MongoStore) -> None:
    base = time.time()
    store.save_many(
        [
            (named("report", stopped=base - 10), b"old"),
            (named("report", stopped=base - 1), b"new"),
            (named("other", stopped=base), b"other"),
        ]
    )
    assert store.get_by_name("report") == b"new"
    assert store.get_by_name("missing") is None


@pytest.mark.parametrize("field", ["group", "name", "func"])
def test_save_limit_per_keeps_the_most_recent_successes_of_each_value(
    mongo_url: str, prefix: str, cleanup: list[Any], field: str
) -> None:
    store = MongoStore(mongo_url, prefix=prefix, save_limit=2, save_limit_per=field)
    cleanup.append(store)
    base = time.time()
    saved: dict[str, list[ResultMeta]] = {"a": [], "b": []}
    for i in range(5):
        for value in ("a", "b"):
            meta = make_meta(stopped=base + i)._replace(**{field: value})
            saved[value].append(meta)
            store.save(meta, f"{value}{i}".encode())
    for value, metas in saved.items():
        assert [store.get(m.id) for m in metas] == [
            None,
            None,
            None,
            f"{value}3".encode(),
            f"{value}4".encode(),
        ]
    store.purge()


def test_save_limit_prunes_without_counting_on_every_save(
    mongo_url: str, prefix: str, cleanup: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MongoStore(mongo_url, prefix=prefix, save_limit=50)
    cleanup.append(store)
    looks = 0
    find = Collection.find

    def counted(self: Collection[Any], *args: Any, **kwargs: Any) -> Any:
        nonlocal looks
        looks += 1
        return find(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "find", counted)
    base = time.time()
    for i in range(20):
        store.save(make_meta(stopped=base + i), b"s")
    assert looks == 4  # one indexed look every save_limit // 10 = 5 successes, none per save
    monkeypatch.undo()
    store.purge()


def test_dead_letters_keep_attempts_last_error_and_dead_at_and_can_be_removed(store: MongoStore) -> None:
    before = time.time()
    store.quarantine("q", "m-1", "past max_attempts (3)", b"p1", attempts=3, last_error="ValueError: boom")
    store.quarantine("q", "m-2", "bad signature", b"p2")
    records = {r.message_id: r for r in store.dead_letters("q")}
    assert (records["m-1"].attempts, records["m-1"].last_error) == (3, "ValueError: boom")
    assert (records["m-2"].attempts, records["m-2"].last_error) == (0, "")
    assert before - 1 <= records["m-1"].dead_at <= time.time() + 1
    assert store.remove_dead_letters("q", ["m-1", "m-404"]) == 1
    assert store.remove_dead_letters("other", ["m-2"]) == 0
    assert [r.message_id for r in store.dead_letters("q")] == ["m-2"]


def test_a_concurrent_failure_never_replaces_a_saved_success(
    store: MongoStore, mongo_url: str, prefix: str
) -> None:
    meta = make_meta()
    others = [MongoStore(mongo_url, prefix=prefix) for _ in range(3)]
    try:
        threads = [
            threading.Thread(target=s.save, args=(meta._replace(success=False), b"fail")) for s in others
        ]
        store.save(meta, b"ok")
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
    finally:
        for other in others:
            other.close()
    assert store.get(meta.id) == b"ok"


def test_an_unreachable_store_raises_store_error_in_one_line() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/q", serverSelectionTimeoutMS=500)
    with pytest.raises(StoreError, match=r"^mongo store at mongodb://127\.0\.0\.1:\d+/q is unreachable: "):
        store.get("any")


def test_statuses_expire_through_a_ttl_index(store: MongoStore) -> None:
    store.set_status("a", b"A", ttl=30)
    status = store._collection("status")
    assert status.find_one({"_id": "a"})["expire_at"] is not None  # type: ignore[index]
    assert any(i.get("expireAfterSeconds") == 0 for i in status.list_indexes())
