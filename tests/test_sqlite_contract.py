"""The embedded SQLite broker and store pass the conformance suites."""

from __future__ import annotations

import functools
import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qframe.builtin.sqlite import SQLiteBroker, SQLiteStore, db_path
from qframe.errors import BrokerError
from qframe.testing import (
    BrokerContract,
    DeadLetterStoreContract,
    ScheduleStoreContract,
    StatusStoreContract,
    StoreContract,
)
from qframe.testing.contracts import BrokerFactory, StoreFactory
from qframe.testing.malformed import MalformedWriter
from qframe.testing.schedule_contract import ScheduleStoreFactory


class TestSQLiteBroker(BrokerContract):
    @pytest.fixture
    def broker_factory(self, tmp_path: Path) -> BrokerFactory:
        url = f"sqlite:///{tmp_path}/q.db"
        return lambda queue, lease: SQLiteBroker(url, queue, lease=lease)

    @pytest.fixture
    def write_malformed(self, tmp_path: Path) -> MalformedWriter:
        def write(queue: str) -> list[str]:
            """Payloads stored as TEXT, not BLOB: valid UTF-8, and bytes that are not UTF-8."""
            conn = sqlite3.connect(tmp_path / "q.db", isolation_level=None)
            try:
                sql = "INSERT INTO qframe_queue (queue, payload, visible) VALUES (?, CAST(? AS TEXT), ?)"
                conn.execute(sql, (queue, "a payload written as text", time.time()))
                conn.execute(sql, (queue, b"\xff\xfenot utf-8", time.time()))
            finally:
                conn.close()
            return ["stored as text", "stored as text"]

        return write

    @pytest.fixture
    def dead_broker(self, tmp_path: Path) -> SQLiteBroker:
        broker = SQLiteBroker(f"sqlite:///{tmp_path}/gone/q.db", "q")
        broker.close()
        return broker


class TestSQLiteStore(StoreContract, StatusStoreContract, DeadLetterStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        url = f"sqlite:///{tmp_path}/results.db"
        return lambda save_limit=0, **options: SQLiteStore(url, save_limit=save_limit, **options)


def test_url_forms() -> None:
    assert db_path(None) == Path("qframe.db")
    assert db_path("sqlite:///rel/q.db") == Path("rel/q.db")
    assert db_path("sqlite:////abs/q.db") == Path("/abs/q.db")
    with pytest.raises(BrokerError, match="expected sqlite:///"):
        db_path("redis://localhost")


def claim_all(url: str, out: str, go: Any) -> None:
    """In a child process: claim messages in small batches until none are left; write them to ``out``."""
    broker = SQLiteBroker(url, "q")
    go.wait(30)
    claimed = []
    while batch := broker.dequeue(3):
        claimed += [m.payload.decode() for m in batch]
        time.sleep(0.0005)  # a worker's pace: lets the other process take the lock in between
    Path(out).write_text("\n".join(claimed))


def test_two_processes_on_one_file_claim_each_message_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    SQLiteBroker(url, "q").enqueue_many([str(i).encode() for i in range(2000)])
    spawn = multiprocessing.get_context("spawn")
    outputs = [str(tmp_path / f"claimed-{n}") for n in range(2)]
    go = spawn.Event()
    children = [spawn.Process(target=claim_all, args=(url, out, go)) for out in outputs]
    for child in children:
        child.start()
    time.sleep(1.0)  # both children are connected and waiting: they claim at the same time
    go.set()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    claimed = [line for out in outputs for line in Path(out).read_text().splitlines()]
    assert len(claimed) == 2000 and set(claimed) == {str(i) for i in range(2000)}
    assert all(Path(out).read_text() for out in outputs)  # both really took part


def test_generated_key_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert SQLiteBroker.local_key_file(f"sqlite:///{tmp_path}/q.db") == tmp_path / "q.db.key"


class TestSQLiteScheduleStore(ScheduleStoreContract):
    @pytest.fixture
    def schedule_store_factory(self, tmp_path: Path) -> ScheduleStoreFactory:
        return functools.partial(SQLiteStore, f"sqlite:///{tmp_path}/schedules.db")


def test_stores_opening_a_new_file_at_once_all_open(tmp_path: Path) -> None:
    failures = []
    for attempt in range(30):
        url = f"sqlite:///{tmp_path}/new-{attempt}.db"
        barrier = threading.Barrier(4)

        def open_store(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(10)
            try:
                SQLiteStore(url).close()
            except BrokerError as exc:
                failures.append(str(exc))

        threads = [threading.Thread(target=open_store) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []


def test_a_waiting_dequeue_claims_a_message_as_soon_as_another_connection_commits_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/wake.db"
    consumer = SQLiteBroker(url, "q", poll=30.0)  # no poll-driven claim within the test
    producer = SQLiteBroker(url, "q")
    try:
        claimed: list[float] = []
        thread = threading.Thread(
            target=lambda: consumer.dequeue(1, wait=10) and claimed.append(time.monotonic())
        )
        thread.start()
        time.sleep(1.1)  # a backoff would now sleep about a second between claims
        producer.enqueue(b"payload")
        enqueued = time.monotonic()
        thread.join(15)
        assert claimed, "the message was not claimed within the wait"
        assert claimed[0] - enqueued < 0.5, f"claimed {claimed[0] - enqueued:.3f} s after the commit"
    finally:
        consumer.close()
        producer.close()
