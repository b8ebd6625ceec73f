"""qframe's broker and store contracts, Mongo-wire-compatible (SecantusDB), or a real MongoDB.

The classes run against the session's SecantusDB (or ``QFRAME_MONGO_URL``), each test under a
collection prefix of its own.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

import pytest
from bson import ObjectId

from qframe.brokers.base import Broker
from qframe.testing import (
    BrokerContract,
    DeadLetterStoreContract,
    DelayStoreContract,
    ScheduleStoreContract,
    StatusStoreContract,
    StoreContract,
    free_port,
)
from qframe.testing.schedule_contract import ScheduleStoreFactory
from qframe_mongo import MongoBroker, MongoStore
from qframe_mongo.broker import queue_collection
from qframe_mongo.connection import now_ms

pytestmark = [pytest.mark.timeout(60), pytest.mark.secantusdb]


def write_malformed_entries(url: str, prefix: str, queue: str) -> list[str]:
    """Insert documents ``enqueue`` never writes into ``queue``'s collection, due now.

    Returns, for each, a fragment its dead letter's reason must contain: a payload stored
    as text, a document without a payload, and an ``_id`` that is not a message id string.
    """
    broker = MongoBroker(url, queue, prefix=prefix)
    try:
        now = now_ms()
        base = {"visible_at": now, "lease_until": 0, "owner": None, "attempts": 0}
        broker.collection.insert_many(
            [
                {"_id": uuid.uuid4().hex, "payload": "text, not bytes", **base},
                {"_id": uuid.uuid4().hex, **base},
                {"_id": ObjectId(), "payload": b"x", **base},
            ]
        )
    finally:
        broker.close()
    return ["payload stored as str", "no payload", "_id is a ObjectId"]


class TestMongoWireCompatibleSecantusDBBroker(BrokerContract):
    """BrokerContract, Mongo-wire-compatible (SecantusDB)."""

    @pytest.fixture
    def broker_factory(self, mongo_url: str, prefix: str) -> Any:
        return lambda queue, lease: MongoBroker(mongo_url, queue, lease=lease, prefix=prefix)

    @pytest.fixture
    def write_malformed(self, mongo_url: str, prefix: str) -> Any:
        return lambda queue: write_malformed_entries(mongo_url, prefix, queue)

    @pytest.fixture
    def dead_broker(self) -> Broker:
        return MongoBroker(
            f"mongodb://127.0.0.1:{free_port()}/q", "q", lease=5, serverSelectionTimeoutMS=1000
        )


class TestMongoWireCompatibleSecantusDBStore(
    StoreContract, StatusStoreContract, DeadLetterStoreContract, DelayStoreContract
):
    """The store's role contracts, Mongo-wire-compatible (SecantusDB)."""

    @pytest.fixture
    def store_factory(self, mongo_url: str, prefix: str) -> Any:
        return lambda save_limit=0, **options: MongoStore(
            mongo_url, save_limit=save_limit, prefix=prefix, **options
        )


class TestMongoWireCompatibleSecantusDBScheduleStore(ScheduleStoreContract):
    """ScheduleStoreContract, Mongo-wire-compatible (SecantusDB); racing processes connect on their own."""

    @pytest.fixture
    def schedule_store_factory(self, mongo_url: str, prefix: str) -> ScheduleStoreFactory:
        return functools.partial(MongoStore, mongo_url, prefix=prefix)


def test_queue_collection_name_carries_the_prefix() -> None:
    assert queue_collection("app", "default") == "app.queue.default"
