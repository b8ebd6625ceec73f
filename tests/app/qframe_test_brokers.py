"""Broker drivers that misbehave on purpose, loaded as ``module:Class``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from qframe.builtin.memory import MemoryBroker, MemoryStore
from qframe.builtin.sqlite import SQLiteBroker
from qframe.errors import BrokerError
from qframe.stores.base import ResultMeta, Store, Tally


class WarningsFail(SQLiteBroker):
    """A broker whose configuration check cannot reach the server."""

    def warnings(self) -> list[str]:
        raise BrokerError("CONFIG is not allowed here")


class ChildrenFail(SQLiteBroker):
    """A broker that works in the main process but not in the cluster's children."""

    main_pid = os.getpid()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if os.getpid() != ChildrenFail.main_pid:
            raise BrokerError("server went away")
        super().__init__(*args, **kwargs)


class NoDeadLetters(SQLiteBroker):
    """The embedded broker as a broker without dead letters: the core keeps them in the store."""

    has_dead_letters = False


class ShortDelays(SQLiteBroker):
    """SQLite declaring that it holds a delay of at most one second (longer ones: the core)."""

    max_delay = 1.0


class Limited(SQLiteBroker):
    """SQLite declaring no promises beyond the base contract, and SQS-like small limits."""

    fifo = False
    exact_sizes = False
    can_release = False
    max_payload = 4096
    max_delay = 1.0
    lease_resolution = 0.8
    has_dead_letters = False
    blocking_dequeue = False


class ShortMemory(MemoryBroker):
    """The memory broker with SQS-like limits: 2 KiB payloads, one second of native delay."""

    max_payload = 2048
    max_delay = 1.0


class FewerIds(MemoryBroker):
    """A memory broker whose ``enqueue_many`` breaks the contract: one id short."""

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        return super().enqueue_many(payloads)[:-1]


class Unreachable(ShortMemory):
    """A broker whose server is gone: every enqueue fails."""

    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        raise BrokerError("server went away")

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        raise BrokerError("server went away")


class ResultsOnly(Store):
    """A result store without the held-delays role (results kept by a memory store)."""

    def __init__(self, url: str | None, **options: Any) -> None:
        super().__init__(url, **options)
        self.inner = MemoryStore(url, **options)

    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        self.inner.save_many(results)

    def get(self, task_id: str) -> bytes | None:
        return self.inner.get(task_id)

    def get_by_name(self, name: str) -> bytes | None:
        return self.inner.get_by_name(name)

    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        return self.inner.get_group(group, failures)

    def count_group(self, group: str, failures: bool = False) -> int:
        return self.inner.count_group(group, failures)

    def delete_group(self, group: str, tasks: bool = False) -> int:
        return self.inner.delete_group(group, tasks)

    def delete(self, task_id: str) -> bool:
        return self.inner.delete(task_id)

    def tally(self, since: float | None = None) -> Tally:
        return self.inner.tally(since)

    def purge(self) -> None:
        self.inner.purge()


class PingFails(SQLiteBroker):
    """A broker whose server never answers: the cluster must not start."""

    def ping(self) -> bool:
        raise BrokerError("server went away")


class AnswersThirdPing(SQLiteBroker):
    """A broker whose server answers from the third ping of this process on (it was booting)."""

    pings = 0

    def ping(self) -> bool:
        AnswersThirdPing.pings += 1
        if AnswersThirdPing.pings < 3:
            raise BrokerError("server is starting")
        return super().ping()


class GoesAway(SQLiteBroker):
    """SQLite whose queue sizes fail while the file named by ``QFRAME_TEST_OUTAGE`` exists.

    Each failed call is recorded as an ``outage`` line in the tests' log, so a test can
    wait for a number of failed sentinel ticks instead of sleeping.
    """

    def _check(self) -> None:
        marker = os.environ.get("QFRAME_TEST_OUTAGE", "")
        if marker and os.path.exists(marker):
            with open(os.environ["QFRAME_TEST_LOG"], "a") as log:
                log.write(f"outage\t{os.getpid()}\n")
            raise BrokerError("server went away")

    def queue_size(self) -> int:
        self._check()
        return super().queue_size()

    def lock_size(self) -> int:
        self._check()
        return super().lock_size()
