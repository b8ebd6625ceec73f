"""The Broker ABC: the delivery contract every broker driver keeps.

A broker moves opaque, already-signed payloads (``bytes``) for one queue. Delivery is
**at-least-once**: :meth:`Broker.dequeue` leases each message for ``lease`` seconds and
counts the delivery; :meth:`Broker.ack` removes it; :meth:`Broker.nack` returns it at
once; a lease that runs out returns it by itself. Acks, nacks and lease extensions are
conditional on the claim: after a message was re-delivered, the old ``ack_id`` no longer
touches it. ``qframe.testing.BrokerContract`` checks all of this against a real server.

What a broker can do beyond that contract it **declares** as class attributes (``fifo``,
``max_payload``, ``max_delay``, ...). The defaults promise nothing, so a new driver that
declares nothing is treated as the most limited broker; the core and the contract read
the flags instead of assuming what SQLite or Redis happen to do.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from qframe.stores.base import DeadLetter


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery of a queued payload."""

    #: Identifies this delivery (message and claim) for ack, nack and touch.
    ack_id: str
    #: The signed payload exactly as it was enqueued.
    payload: bytes
    #: Deliveries of this message so far, this one included (1 on the first delivery).
    attempts: int
    #: The broker's id of the message, stable across deliveries (for log lines).
    message_id: str
    #: Why this entry is not a message ``enqueue`` wrote (empty for a good one), e.g. "payload
    #: stored as text, not as a blob". The core moves such a delivery to the dead letters with
    #: this reason instead of running it; ``payload`` holds the raw entry as far as it was read.
    malformed: str = ""


class Broker(abc.ABC):
    """A queue of payloads with leases; one instance serves one queue in one thread."""

    # -- capabilities: class attributes a driver overrides with what it promises -----------
    #: Messages due at the same time are delivered in the order they were enqueued.
    fifo: ClassVar[bool] = False
    #: ``queue_size()`` and ``lock_size()`` are exact at the moment of the call, not estimates.
    exact_sizes: ClassVar[bool] = False
    #: ``release()`` undoes the delivery count, so a handed-back message keeps its attempts.
    can_release: ClassVar[bool] = False
    #: Largest payload in bytes ``enqueue`` accepts; None means unlimited. The default is
    #: SQS's 256 KiB, the smallest limit of the common brokers.
    max_payload: ClassVar[int | None] = 256 * 1024
    #: Longest ``delay`` in seconds the broker holds natively; None means unlimited. Longer
    #: delays are held by the core in the result store and handed over when they fit.
    max_delay: ClassVar[float | None] = 0.0
    #: Smallest lease (and delay) in seconds the broker honours; finer values are rounded up.
    lease_resolution: ClassVar[float] = 1.0
    #: ``quarantine()`` keeps the message and ``dead_letters()`` lists it.
    has_dead_letters: ClassVar[bool] = False
    #: ``dequeue(wait=...)`` blocks on the server until a message arrives, instead of polling.
    blocking_dequeue: ClassVar[bool] = False
    #: ``ack``/``nack``/``touch``/``release`` act only while this claim holds the message (a stale
    #: ``ack_id`` touches nothing), and two consumers never hold one message at once.
    conditional_claims: ClassVar[bool] = False

    def __init__(
        self, url: str | None, queue: str, *, lease: float = 60.0, poll: float = 0.05, **options: Any
    ) -> None:
        self.url = url
        self.queue = queue
        self.lease = lease
        #: Longest pause between two polls, for drivers that cannot block on the server.
        self.poll = poll
        self.options = options

    # -- producing -------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Store ``payload`` (visible after ``delay`` seconds) and return its message id."""

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Store several payloads and return exactly one message id per payload, in order.

        A driver that cannot store all of them raises :class:`~qframe.errors.BrokerError`;
        it never returns fewer ids (the client checks).
        """
        return [self.enqueue(payload) for payload in payloads]

    # -- consuming -------------------------------------------------------------------
    @abc.abstractmethod
    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Lease up to ``count`` visible messages, waiting up to ``wait`` s for the first.

        An entry in the broker's storage that ``enqueue`` never wrote (no id, no payload, a
        payload of the wrong type) is leased and returned like any other, with
        :attr:`Message.malformed` saying what is wrong; it must neither raise nor vanish.
        Raise :class:`~qframe.errors.BrokerError` only when the server cannot be reached.
        """

    @abc.abstractmethod
    def ack(self, ack_id: str) -> None:
        """Remove the message of this delivery; a stale or repeated ack does nothing."""

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Acknowledge several deliveries (drivers batch this into few round trips)."""
        for ack_id in ack_ids:
            self.ack(ack_id)

    @abc.abstractmethod
    def nack(self, ack_id: str) -> None:
        """Make the message of this delivery visible again at once."""

    def release(self, ack_ids: Sequence[str]) -> None:
        """Return deliveries that never started (prefetched, then the cluster stopped).

        Drivers should undo the delivery count so a restart does not spend attempts, and
        declare ``can_release = True``; this default nacks, which counts them.
        """
        for ack_id in ack_ids:
            self.nack(ack_id)

    @abc.abstractmethod
    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the lease of these deliveries (for tasks that wait or run long)."""

    def quarantine(self, ack_id: str, reason: str, attempts: int = 0, last_error: str = "") -> None:
        """Move the message aside as a dead letter (kept, listable), e.g. a bad signature.

        ``attempts`` and ``last_error`` are kept with it; the broker sets ``dead_at`` to
        now. Only brokers with :attr:`has_dead_letters` implement this; for the others the
        core keeps the message in the store and acknowledges it (:mod:`qframe.cluster.deadletters`).
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no dead letters")

    def dead_letters(self) -> list[DeadLetter]:
        """This queue's dead letters, in any order (with :attr:`has_dead_letters`)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dead letters")

    def remove_dead_letters(self, message_ids: Sequence[str]) -> int:
        """Forget these dead letters; return how many existed (with :attr:`has_dead_letters`)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dead letters")

    # -- bookkeeping ---------------------------------------------------------------
    @abc.abstractmethod
    def queue_size(self) -> int:
        """Messages waiting (not leased now), delayed ones included."""

    @abc.abstractmethod
    def lock_size(self) -> int:
        """Messages leased now."""

    @abc.abstractmethod
    def purge(self) -> None:
        """Delete every message of this queue, leased or not."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """Return True when the server answers; raise :class:`~qframe.errors.BrokerError` if not."""

    def warnings(self) -> list[str]:
        """Configuration problems of the server that may lose tasks, logged at cluster start."""
        return []

    def info(self) -> str:
        """One line describing the broker, for logs and ``qframe info``."""
        return f"{type(self).__name__} {self.url or ''} queue={self.queue}".strip()

    def close(self) -> None:  # noqa: B027 - optional for drivers without connections
        """Release connections; the instance is not used afterwards."""

    @classmethod
    def local_key_file(cls, url: str | None) -> Path | None:
        """For embedded brokers, the file where a generated secret key lives."""
        return None

    @classmethod
    def local_file(cls, url: str | None) -> Path | None:
        """For embedded brokers, the absolute path of the file that holds the queue."""
        return None
