"""The orm drivers beyond the contracts on this branch: the agreed interfaces, pruning, locks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.db import OperationalError

from qframe.errors import BrokerError
from qframe.stores.base import DeadLetter, ResultMeta
from qframe.testing import make_meta
from qframe_django.broker import OrmBroker
from qframe_django.store import OrmStore

pytestmark = [pytest.mark.timeout(60), pytest.mark.django_db(transaction=True, databases="__all__")]


def meta(
    *,
    name: str = "test-task",
    func: str = "math.floor",
    group: str | None = None,
    stopped: float | None = None,
    success: bool = True,
    expires: float = 0.0,
) -> Any:
    """A ResultMeta, with ``expires`` when the core's ResultMeta has it (else a stand-in)."""
    base = make_meta(group=group, stopped=stopped, success=success)._replace(name=name, func=func)
    if "expires" in ResultMeta._fields:
        return base._replace(expires=expires)
    return _WithExpiry(*base, expires=expires)


class _WithExpiry(tuple):  # type: ignore[type-arg]
    """A ResultMeta look-alike with the agreed ``expires`` field, for a core that lacks it."""

    def __new__(cls, *fields: Any, expires: float) -> _WithExpiry:
        item = super().__new__(cls, fields)
        item.expires = expires  # type: ignore[attr-defined]
        return item

    def __getattr__(self, name: str) -> Any:
        return self[ResultMeta._fields.index(name)]


@pytest.fixture
def store(alias: str, cleanup: list[Any]) -> OrmStore:
    store = OrmStore(alias)
    cleanup.append(store)
    return store


@pytest.fixture
def broker(alias: str, cleanup: list[Any]) -> OrmBroker:
    broker = OrmBroker(alias, f"q-{uuid.uuid4().hex[:8]}", lease=30)
    cleanup.append(broker)
    return broker


def test_store_dead_letters_keep_attempts_and_last_error_and_can_be_removed(store: OrmStore) -> None:
    store.quarantine("q", "m1", "past max_attempts (3)", b"p1", attempts=3, last_error="ValueError: x")
    store.quarantine("q", "m2", "bad signature", b"p2")
    [first, second] = store.dead_letters("q")
    assert first[:5] == ("m1", "past max_attempts (3)", b"p1", 3, "ValueError: x")
    assert first.dead_at == pytest.approx(time.time(), abs=30)
    assert second[:5] == ("m2", "bad signature", b"p2", 0, "")
    assert store.remove_dead_letters("q", ["m1", "unknown"]) == 1
    assert [r.message_id for r in store.dead_letters("q")] == ["m2"]


def test_broker_dead_letters_keep_attempts_and_can_be_removed(broker: OrmBroker) -> None:
    message_id = broker.enqueue(b"bad")
    [message] = broker.dequeue(1)
    broker.quarantine(message.ack_id, "past max_attempts (1)", attempts=1, last_error="KeyError: k")
    [record] = broker.dead_letters()
    assert isinstance(record, DeadLetter)
    assert record[:5] == (message_id, "past max_attempts (1)", b"bad", 1, "KeyError: k")
    assert broker.remove_dead_letters([message_id]) == 1
    assert broker.dead_letters() == []


def test_expired_results_are_never_returned_and_are_deleted_on_save(store: OrmStore) -> None:
    gone, kept = meta(group="g", expires=time.time() - 1), meta(group="g")
    store.save_many([(gone, b"gone"), (kept, b"kept")])
    assert store.get(gone.id) is None
    assert store.get_group("g") == [b"kept"] and store.count_group("g") == 1
    assert store.get_by_name("test-task") == b"kept"
    from qframe_django.models import Task

    assert not Task.objects.using(store.db.alias).filter(id=gone.id).exists()


def test_get_by_name_returns_the_most_recent_result_of_that_name(store: OrmStore) -> None:
    now = time.time()
    store.save_many(
        [
            (meta(name="report", stopped=now - 5), b"old"),
            (meta(name="report", stopped=now), b"new"),
            (meta(name="other", stopped=now + 1), b"other"),
        ]
    )
    assert store.get_by_name("report") == b"new"
    assert store.get_by_name("nothing") is None


@pytest.mark.parametrize("per", ["group", "name", "func"])
def test_save_limit_per_keeps_the_most_recent_successes_of_each_value(alias: str, per: str) -> None:
    store = OrmStore(alias, save_limit=2, save_limit_per=per)
    try:
        now = time.time()
        batch = []
        for value in ("a", "b"):
            for i in range(4):
                fields = {"group": None, "name": "n", "func": "f", per: value}
                batch.append((meta(stopped=now + i, **fields), f"{value}{i}".encode()))
        store.save_many(batch)
        kept = sorted(bytes(b) for b in store.tasks.values_list("blob", flat=True))
        assert kept == [b"a2", b"a3", b"b2", b"b3"]
    finally:
        store.purge()
        store.close()


def test_save_limit_prunes_in_batches_beyond_one_statement(
    alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qframe_django.store as module

    monkeypatch.setattr(module, "PRUNE_BATCH", 3)
    store = OrmStore(alias, save_limit=2)
    try:
        now = time.time()
        store.save_many([(meta(stopped=now + i), str(i).encode()) for i in range(10)])
        assert sorted(bytes(b) for b in store.tasks.values_list("blob", flat=True)) == [b"8", b"9"]
    finally:
        store.purge()
        store.close()


def test_a_locked_sqlite_database_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = OrmBroker("default", f"locked-{uuid.uuid4().hex[:6]}")
    broker.enqueue(b"x")
    real, calls = broker._claim, []

    def locked_twice(count: int) -> Any:
        calls.append(count)
        if len(calls) <= 2:
            raise OperationalError("database is locked")
        return real(count)

    monkeypatch.setattr(broker, "_claim", locked_twice)
    assert [m.payload for m in broker.dequeue(1)] == [b"x"]
    assert len(calls) == 3

    def always_locked(count: int) -> Any:
        raise OperationalError("database is locked")

    monkeypatch.setattr(broker, "_claim", always_locked)
    with pytest.raises(
        BrokerError, match=r"^dequeue on database 'default' failed: OperationalError: database is locked$"
    ):
        broker.dequeue(1)
    broker.close()


def test_an_unknown_alias_is_a_clear_error() -> None:
    from qframe.errors import ConfigError

    with pytest.raises(ConfigError, match=r"database alias 'nope' is not in settings\.DATABASES"):
        OrmBroker("nope", "q")


def test_claims_use_skip_locked_on_postgresql_and_compare_and_set_on_sqlite(broker: OrmBroker) -> None:
    assert broker.db.skip_locked is (broker.db.vendor == "postgresql")


def test_a_claim_on_postgresql_skips_rows_another_transaction_holds(
    postgres: Any, cleanup: list[Any]
) -> None:
    if postgres is None:
        pytest.skip("PostgreSQL is not installed")
    alias = "pg"
    import threading

    import psycopg
    from django.conf import settings

    broker = OrmBroker(alias, f"skip-{uuid.uuid4().hex[:8]}", lease=30)
    cleanup.append(broker)
    first, second = broker.enqueue(b"held"), broker.enqueue(b"free")
    db = settings.DATABASES[alias]
    with psycopg.connect(host=db["HOST"], port=int(db["PORT"]), user=db["USER"], dbname=db["NAME"]) as other:
        other.execute("SELECT id FROM qframe_django_queuedmessage WHERE id = %s FOR UPDATE", (int(first),))
        got: list[Any] = []
        claimer = threading.Thread(target=lambda: got.extend(broker.dequeue(2)))
        claimer.start()
        claimer.join(10)
        blocked = claimer.is_alive()
        other.rollback()
        claimer.join(10)
    assert not blocked, "the claim waited for the row another transaction holds"
    assert [m.message_id for m in got] == [second]
