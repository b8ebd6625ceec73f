"""The result Store ABC and the other roles a store driver can fill.

A store keeps a few indexed fields of each result (:class:`ResultMeta`) beside an opaque,
signed blob that only :mod:`qframe.serialize` decodes. Saving the same task id twice keeps
one record (the later one), so a redelivered task never leaves two results.

Roles are separate ABCs that one driver class may subclass together (the SQLite and Redis
stores fill all of them): :class:`Store` (results), :class:`StatusStore` (cluster
heartbeats) and :class:`DeadLetterStore` (the core's quarantine, for brokers that keep no
dead letters).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple


class ResultMeta(NamedTuple):
    """The indexed fields of a saved result (a tuple: it crosses process boundaries often)."""

    id: str
    name: str
    func: str
    group: str | None
    success: bool
    started: float
    stopped: float
    attempts: int
    cluster: str


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts of results that stopped since a moment, for ``qframe info``."""

    successes: int = 0
    failures: int = 0
    #: Sum of ``stopped - started`` over those results, in seconds.
    busy: float = 0.0


class Store(abc.ABC):
    """Where results live; one instance is used by one thread."""

    def __init__(self, url: str | None, *, save_limit: int = 0, **options: Any) -> None:
        self.url = url
        self.save_limit = save_limit
        self.options = options

    @abc.abstractmethod
    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Save results idempotently by id and apply ``save_limit`` to successes."""

    def save(self, meta: ResultMeta, blob: bytes) -> None:
        """Save one result."""
        self.save_many([(meta, blob)])

    @abc.abstractmethod
    def get(self, task_id: str) -> bytes | None:
        """The blob of a result, or None."""

    def wait(self, task_id: str, timeout: float) -> bytes | None:
        """The blob of a result, waiting up to ``timeout`` seconds for it to arrive.

        The default polls with a backoff from 1 ms to 50 ms; drivers with a
        notification channel (Redis) override it to block instead.
        """
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            blob = self.get(task_id)
            left = deadline - time.monotonic()
            if blob is not None or left <= 0:
                return blob
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    @abc.abstractmethod
    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        """Blobs of a group's results in the order they stopped."""

    @abc.abstractmethod
    def count_group(self, group: str, failures: bool = False) -> int:
        """How many results a group has (failures excluded unless asked for)."""

    @abc.abstractmethod
    def delete_group(self, group: str) -> int:
        """Delete a group's results; return how many were deleted."""

    @abc.abstractmethod
    def delete(self, task_id: str) -> bool:
        """Delete one result; return whether it existed."""

    @abc.abstractmethod
    def tally(self, since: float | None = None) -> Tally:
        """Successes, failures and busy seconds of results stopped since ``since``."""

    @abc.abstractmethod
    def purge(self) -> None:
        """Delete every result."""

    def ping(self) -> bool:
        """Return True when the store answers; raise :class:`~qframe.errors.StoreError` if not.

        The default reads a result that does not exist; override it with a cheaper call.
        """
        self.get("qframe-ping")
        return True

    def close(self) -> None:  # noqa: B027 - optional for drivers without connections
        """Release connections; the instance is not used afterwards."""


class StatusStore(abc.ABC):
    """The role that keeps cluster heartbeats: short-lived, signed blobs (``Stat``).

    A store driver fills it by subclassing it beside :class:`Store`; the result store is
    the status store. Heartbeats of every queue live side by side.
    """

    @abc.abstractmethod
    def set_status(self, key: str, value: bytes, ttl: float) -> None:
        """Save ``value`` under ``key`` (replacing it); it disappears after ``ttl`` seconds."""

    @abc.abstractmethod
    def statuses(self) -> list[bytes]:
        """Every live heartbeat, of every queue."""


class DeadLetterStore(abc.ABC):
    """The role that keeps messages moved aside, for brokers that keep no dead letters.

    The core quarantines a message here (then acknowledges it on the broker) when the
    broker's ``has_dead_letters`` is False; see :mod:`qframe.cluster.deadletters`.
    """

    @abc.abstractmethod
    def quarantine(self, queue: str, message_id: str, reason: str, payload: bytes) -> None:
        """Keep a message of ``queue`` aside with ``reason``; the same id again replaces it."""

    @abc.abstractmethod
    def dead_letters(self, queue: str) -> list[tuple[str, str, bytes]]:
        """The messages kept aside for ``queue`` as ``(message_id, reason, payload)``, in any order."""
