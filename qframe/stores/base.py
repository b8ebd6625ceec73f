"""The result Store ABC and the other roles a store driver can fill.

A store keeps a few indexed fields of each result (:class:`ResultMeta`) beside an opaque,
signed blob that only :mod:`qframe.serialize` decodes. A store keeps one record per task
id, and **the first success is final**: a saved success is never replaced, neither by a
failure nor by a later success (a redelivered task, or a stale worker that resumed after
its lease ran out, ran again); a saved failure is replaced by a later result. So a
redelivered task never leaves two results, and never loses its success.

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

from qframe.errors import ConfigError


class DeadLetter(NamedTuple):
    """A message moved aside, with why."""

    message_id: str
    #: Why it was moved aside, e.g. "bad signature", "past max_attempts (3)".
    reason: str
    #: The message as it was on the broker (signed bytes).
    payload: bytes
    #: Deliveries or runs it had.
    attempts: int = 0
    #: The last failure's one-line error, "" if none.
    last_error: str = ""
    #: Epoch seconds when it was moved aside.
    dead_at: float = 0.0


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
    #: Epoch seconds after which the result is gone (``cached=``); 0.0 keeps it.
    expires: float = 0.0

    def expired(self, now: float | None = None) -> bool:
        """Whether the result's ``expires`` has passed (never for a kept result)."""
        return bool(self.expires) and self.expires <= (time.time() if now is None else now)


#: The fields ``save_limit_per`` may name, with the :class:`ResultMeta` attribute of each.
SAVE_LIMIT_PER = {"group": "group", "name": "name", "func": "func"}


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts of results that stopped since a moment, for ``qframe info``."""

    successes: int = 0
    failures: int = 0
    #: Sum of ``stopped - started`` over those results, in seconds.
    busy: float = 0.0


class Store(abc.ABC):
    """Where results live; one instance is used by one thread.

    ``save_limit`` (0 keeps all, -1 keeps no success, N keeps the N most recent successes)
    applies to all successes together, or with ``save_limit_per`` (``"group"``, ``"name"``
    or ``"func"``) to each distinct value of that field separately. A result whose
    ``ResultMeta.expires`` has passed is never returned and the store removes it by itself.
    """

    def __init__(
        self, url: str | None, *, save_limit: int = 0, save_limit_per: str | None = None, **options: Any
    ) -> None:
        if save_limit_per is not None and save_limit_per not in SAVE_LIMIT_PER:
            raise ConfigError(
                f"save_limit_per must be one of {', '.join(SAVE_LIMIT_PER)} (or unset), "
                f"got {save_limit_per!r}"
            )
        self.url = url
        self.save_limit = save_limit
        self.save_limit_per = save_limit_per
        self.options = options

    @abc.abstractmethod
    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Save results by id, in order, and apply ``save_limit`` to successes.

        A result whose id has a saved success is dropped (the first success is final);
        otherwise it replaces the saved failure, if any. With ``save_limit < 0`` a success
        is not kept and leaves the store as it was, unless it expires (``cached``).
        """

    def keeps(self, meta: ResultMeta) -> bool:
        """Whether :meth:`save_many` keeps this result at all: not a success under ``save_limit < 0``,
        unless it is cached (it expires)."""
        return not (meta.success and self.save_limit < 0 and not meta.expires)

    def save(self, meta: ResultMeta, blob: bytes) -> None:
        """Save one result."""
        self.save_many([(meta, blob)])

    @abc.abstractmethod
    def get(self, task_id: str) -> bytes | None:
        """The blob of a result, or None."""

    @abc.abstractmethod
    def get_by_name(self, name: str) -> bytes | None:
        """The blob of the most recently stopped result whose ``ResultMeta.name`` is ``name``, or None."""

    def wait(self, task_id: str, timeout: float) -> bytes | None:
        """The blob of a result, waiting up to ``timeout`` seconds (finite) for it to arrive.

        A client that waits without limit calls it again, a minute at a time. The default
        polls with a backoff from 1 ms to 50 ms; drivers with a notification channel
        (Redis) override it to block instead.
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
        """How many successes a group has; with ``failures=True``, how many failures."""

    def wait_group(self, group: str, count: int, timeout: float, failures: bool = False) -> int:
        """Wait up to ``timeout`` seconds (finite) until a group has ``count`` results.

        The results counted are those :meth:`get_group` returns with the same ``failures``:
        successes, or with ``failures=True`` successes and failures. Returns the last count
        seen (``count`` or more when it returned early). The default polls with a backoff
        from 1 ms to 50 ms; drivers with a way to block (memory, Redis) override it.
        """
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            seen = self.count_group(group) + (self.count_group(group, failures=True) if failures else 0)
            left = deadline - time.monotonic()
            if seen >= count or left <= 0:
                return seen
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)

    @abc.abstractmethod
    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Take a group's results out of the group; with ``tasks=True`` delete them instead.

        As in Django Q2, ``tasks=False`` removes only the group label: the results stay
        (readable by task id), but the group no longer lists or counts them. Returns how
        many results the group had.
        """

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
    def quarantine(
        self,
        queue: str,
        message_id: str,
        reason: str,
        payload: bytes,
        attempts: int = 0,
        last_error: str = "",
    ) -> None:
        """Keep a message of ``queue`` aside with ``reason``; the same id again replaces it.

        The store sets the letter's ``dead_at`` to now.
        """

    @abc.abstractmethod
    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The messages kept aside for ``queue``, in any order."""

    @abc.abstractmethod
    def remove_dead_letters(self, queue: str, message_ids: Sequence[str]) -> int:
        """Forget these dead letters of ``queue``; return how many of them existed."""
