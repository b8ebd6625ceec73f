"""The "held delays" store role: tasks delayed longer than their broker can hold.

A broker declares how long it can keep a message invisible (``Broker.max_delay``). When a
producer asks for a longer delay, the client signs the task as usual and **holds** it in
the result store with its due time instead of enqueueing it. Every ``guard_cycle`` each
cluster's sentinel calls :func:`qframe.cluster.delays.release_due`, which claims the held
tasks that now fit into the broker's own delay, enqueues them and deletes them.

Claims are leases, so several clusters on one store can move held tasks at once: each
entry is claimed by one of them at a time, and a claim whose cluster died runs out and
the entry is claimed again. A held task is deleted only after it was enqueued, so a crash
in between enqueues it twice (at-least-once, like every delivery; the result store keeps
one result per task id).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeldTask:
    """One held task, as a claim handed it out."""

    #: The store's id of the held entry.
    id: str
    #: Identifies this claim; ``drop_held`` deletes the entry only while it holds it.
    claim: str
    #: The signed task payload, exactly as the client would have enqueued it.
    payload: bytes
    #: When the task becomes due, in seconds since the epoch (``time.time()``).
    due: float


class DelayStore(abc.ABC):
    """The role of a store that holds delayed tasks for brokers with a short ``max_delay``.

    A :class:`~qframe.stores.base.Store` fills the role by also subclassing this class;
    ``qframe.testing.DelayStoreContract`` checks it.
    """

    @abc.abstractmethod
    def hold(self, queue: str, payload: bytes, due: float) -> str:
        """Keep ``payload`` for ``queue`` until it is claimed near ``due``; return the entry's id."""

    @abc.abstractmethod
    def claim_held(self, queue: str, until: float, lease: float, limit: int) -> list[HeldTask]:
        """Lease up to ``limit`` unclaimed held tasks of ``queue`` due by ``until``, earliest first.

        A claimed entry is not handed out again for ``lease`` seconds; after that it can be
        claimed again unless :meth:`drop_held` deleted it.
        """

    @abc.abstractmethod
    def drop_held(self, queue: str, tasks: Sequence[HeldTask]) -> None:
        """Delete these held tasks of ``queue``, each only if its claim still holds it."""

    @abc.abstractmethod
    def count_held(self, queue: str) -> int:
        """Held tasks of ``queue``, claimed or not."""
