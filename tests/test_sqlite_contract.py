"""The embedded SQLite broker and store pass the conformance suites."""

from __future__ import annotations

from pathlib import Path

import pytest
from qframe_test_brokers import Limited

from qframe.builtin.sqlite import SQLiteBroker, SQLiteStore, db_path
from qframe.errors import BrokerError
from qframe.testing import BrokerContract, DelayStoreContract, StoreContract
from qframe.testing.contracts import BrokerFactory, StoreFactory


class TestSQLiteBroker(BrokerContract):
    @pytest.fixture
    def broker_factory(self, tmp_path: Path) -> BrokerFactory:
        url = f"sqlite:///{tmp_path}/q.db"
        return lambda queue, lease: SQLiteBroker(url, queue, lease=lease)

    @pytest.fixture
    def dead_broker(self, tmp_path: Path) -> SQLiteBroker:
        broker = SQLiteBroker(f"sqlite:///{tmp_path}/gone/q.db", "q")
        broker.close()
        return broker


class TestBrokerDeclaringLittle(BrokerContract):
    """The suite adapts to a broker that promises only the base contract (SQS-like limits)."""

    @pytest.fixture
    def broker_factory(self, tmp_path: Path) -> BrokerFactory:
        url = f"sqlite:///{tmp_path}/q.db"
        return lambda queue, lease: Limited(url, queue, lease=lease)

    @pytest.fixture
    def dead_broker(self, tmp_path: Path) -> SQLiteBroker:
        broker = Limited(f"sqlite:///{tmp_path}/gone/q.db", "q")
        broker.close()
        return broker


class TestSQLiteStore(StoreContract, DelayStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        url = f"sqlite:///{tmp_path}/results.db"
        return lambda save_limit=0: SQLiteStore(url, save_limit=save_limit)


def test_url_forms() -> None:
    assert db_path(None) == Path("qframe.db")
    assert db_path("sqlite:///rel/q.db") == Path("rel/q.db")
    assert db_path("sqlite:////abs/q.db") == Path("/abs/q.db")
    with pytest.raises(BrokerError, match="expected sqlite:///"):
        db_path("redis://localhost")


def test_two_brokers_on_one_file_claim_each_message_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    one, two = SQLiteBroker(url, "q"), SQLiteBroker(url, "q")
    one.enqueue_many([str(i).encode() for i in range(50)])
    got = []
    while batch := one.dequeue(3) + two.dequeue(4):
        got += [m.payload for m in batch]
    assert sorted(got) == sorted(str(i).encode() for i in range(50))


def test_generated_key_file_sits_beside_the_database(tmp_path: Path) -> None:
    assert SQLiteBroker.local_key_file(f"sqlite:///{tmp_path}/q.db") == tmp_path / "q.db.key"
