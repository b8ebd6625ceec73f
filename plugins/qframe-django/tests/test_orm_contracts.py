"""The qframe broker and store contracts on the orm drivers, against SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper

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
from qframe_django.broker import OrmBroker
from qframe_django.store import OrmStore
from qframe_django.testing import OrmStoreFactory

pytestmark = [pytest.mark.timeout(60), pytest.mark.django_db(transaction=True, databases="__all__")]


def write_malformed_rows(alias: str, queue: str) -> list[str]:
    """Rows the broker never writes: a NULL payload, an empty one, and (SQLite) a text one."""
    import time

    from qframe_django.models import QueuedMessage

    now = time.time()
    QueuedMessage.objects.using(alias).create(queue=queue, payload=None, visible=now)
    QueuedMessage.objects.using(alias).create(queue=queue, payload=b"", visible=now)
    if alias != "default":
        return ["no payload", "empty payload"]
    from django.db import connections

    with connections[alias].cursor() as cursor:  # SQLite keeps a str as TEXT even in a blob column
        cursor.execute(
            "INSERT INTO qframe_django_queuedmessage (queue, payload, visible, attempts) "
            "VALUES (%s, %s, %s, 0)",
            [queue, "text, not bytes", now],
        )
    return ["no payload", "empty payload", "payload stored as text"]


@pytest.fixture
def dead_alias(alias: str, _django_db_helper: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An alias whose database cannot be reached (a closed port, or a file in no directory).

    Added after pytest-django set the test case up, so that it does not try to create it;
    Django's guard against aliases a test case did not declare is lifted for it.
    """
    guarded = BaseDatabaseWrapper.ensure_connection
    real = inspect.getclosurevars(guarded).nonlocals.get("real_ensure_connection", guarded)
    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", real)
    from django.conf import settings
    from django.db import connections

    dead = copy.deepcopy(settings.DATABASES[alias])
    if alias == "pg":
        dead["PORT"] = str(free_port())
    else:
        dead["NAME"] = "/nonexistent-dir/qframe/dead.sqlite3"
    settings.DATABASES["dead"] = dead
    yield "dead"
    connections["dead"].close()
    del settings.DATABASES["dead"]


class TestOrmBroker(BrokerContract):
    """BrokerContract on each alias."""

    @pytest.fixture
    def broker_factory(self, alias: str) -> Any:
        return lambda queue, lease: OrmBroker(alias, queue, lease=lease)

    @pytest.fixture
    def write_malformed(self, alias: str) -> Any:
        return lambda queue: write_malformed_rows(alias, queue)

    @pytest.fixture
    def dead_broker(self, dead_alias: str) -> Broker:
        return OrmBroker(dead_alias, "q", lease=5)


class TestOrmStore(StoreContract, StatusStoreContract, DeadLetterStoreContract, DelayStoreContract):
    """The store's role contracts on each alias."""

    @pytest.fixture
    def store_factory(self, alias: str) -> Any:
        return lambda save_limit=0, **options: OrmStore(alias, save_limit=save_limit, **options)


class TestOrmScheduleStore(ScheduleStoreContract):
    """ScheduleStoreContract on each alias (the racing processes configure Django themselves)."""

    @pytest.fixture
    def schedule_store_factory(self, alias: str) -> ScheduleStoreFactory:
        from django.conf import settings

        database = dict(settings.DATABASES[alias])
        return OrmStoreFactory(alias, {"default": database, alias: database})
