"""Dead letters from the producer's side: list them, requeue their tasks, purge them.

:class:`DeadLetterQueue` works on one queue's dead letters wherever they are kept (the
broker's own, or the store's for brokers without them; see :mod:`qframe.cluster.deadletters`).
A requeue enqueues the task again first and removes its dead letter second, so a crash
between the two leaves a duplicate (the letter is still listed), never a loss.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

from qframe.brokers.base import Broker
from qframe.cluster.deadletters import list_dead_letters, remove_dead_letters
from qframe.errors import InvalidArgument, SignatureError
from qframe.serialize import Codec
from qframe.stores.base import DeadLetter, Store
from qframe.task import Task

log = logging.getLogger("qframe")

#: Dead letters removed per call to the broker or store by :meth:`DeadLetterQueue.purge`.
PURGE_CHUNK = 500
#: Called once per dead letter handled, for a progress bar.
Progress = Callable[[DeadLetter], None]


class NotRequeueable(InvalidArgument):
    """A dead letter whose payload does not verify or decode: there is no task to enqueue."""


class Requeued(NamedTuple):
    """What a requeue did: dead letters enqueued again, and those skipped (undecodable)."""

    requeued: int
    skipped: int


def task_of(letter: DeadLetter, codec: Codec) -> Task:
    """The task a dead letter carries; :class:`NotRequeueable` in one line if there is none."""
    try:
        return Task.from_dict(codec.decode(letter.payload))
    except SignatureError as exc:
        why = f"its payload fails the signature check ({exc})"
    except Exception as exc:
        why = f"its payload does not decode ({type(exc).__name__}: {exc})"
    raise NotRequeueable(f"dead letter {letter.message_id} cannot be requeued: {why}")


def describe(letter: DeadLetter, codec: Codec) -> Task | None:
    """The task a dead letter carries, or None when its payload does not verify or decode."""
    try:
        return task_of(letter, codec)
    except NotRequeueable:
        return None


class DeadLetterQueue:
    """One queue's dead letters, for producers and the ``qframe dlq`` commands."""

    def __init__(self, broker: Broker, store: Store, codec: Codec, enqueue: Callable[[Task], str]) -> None:
        self.broker = broker
        self.store = store
        self.codec = codec
        #: Enqueues a task on its queue (the client's, so enqueue hooks run).
        self.enqueue = enqueue

    @property
    def queue(self) -> str:
        """The queue's name."""
        return self.broker.queue

    def letters(self) -> list[DeadLetter]:
        """Every dead letter of the queue, oldest first."""
        return sorted(list_dead_letters(self.broker, self.store), key=lambda letter: letter.dead_at)

    def get(self, message_id: str) -> DeadLetter:
        """One dead letter by message id; :class:`InvalidArgument` if the queue has none by that id."""
        return self.choose([message_id])[0]

    def choose(
        self, ids: Sequence[str] | None = None, name: str | None = None, every: bool = False
    ) -> list[DeadLetter]:
        """The dead letters given by ``ids``, by task ``name`` (or function path), or ``every`` one.

        Exactly one of the three; an id that is not a dead letter of the queue is an
        :class:`InvalidArgument` naming it.
        """
        if sum((bool(ids), name is not None, every)) != 1:
            raise InvalidArgument("give dead letter ids, a task name, or all (exactly one of them)")
        letters = self.letters()
        if every:
            return letters
        if name is not None:
            return [
                letter
                for letter in letters
                if (task := describe(letter, self.codec)) is not None and name in (task.label, task.func)
            ]
        by_id = {letter.message_id: letter for letter in letters}
        missing = [message_id for message_id in ids or () if message_id not in by_id]
        if missing:
            raise InvalidArgument(f"no dead letter {', '.join(missing)} in queue '{self.queue}'")
        return [by_id[message_id] for message_id in dict.fromkeys(ids or ())]

    def requeue(
        self, letters: Sequence[DeadLetter], skip_undecodable: bool = False, progress: Progress | None = None
    ) -> Requeued:
        """Enqueue the tasks of ``letters`` again with fresh attempts, then remove each letter.

        The task keeps its id (``result()`` then gives the new run's result) and its
        options; its retry count starts again at 0 and the broker counts deliveries of the
        new message from 0. A letter without a task (bad signature, undecodable) is a
        :class:`NotRequeueable` before anything is enqueued, or, with ``skip_undecodable``,
        left in place and counted as skipped.
        """
        tasks: list[tuple[DeadLetter, Task | None]] = []
        for letter in letters:
            if skip_undecodable:
                tasks.append((letter, describe(letter, self.codec)))
            else:
                tasks.append((letter, task_of(letter, self.codec)))
        requeued = skipped = 0
        for letter, task in tasks:
            if task is None:
                skipped += 1
            else:
                self.enqueue(dataclasses.replace(task, retries=0, cluster=self.queue))
                remove_dead_letters(self.broker, self.store, [letter.message_id])  # after the enqueue
                requeued += 1
            if progress is not None:
                progress(letter)
        if skipped:
            log.warning(
                "skipped %d dead letters of queue '%s' whose payload does not verify or decode "
                "(purge them, or requeue them with the key that signed them)",
                skipped,
                self.queue,
            )
        return Requeued(requeued, skipped)

    def purge(self, letters: Sequence[DeadLetter], progress: Progress | None = None) -> int:
        """Remove ``letters`` for good; return how many were still there."""
        removed = 0
        for start in range(0, len(letters), PURGE_CHUNK):
            chunk = letters[start : start + PURGE_CHUNK]
            removed += remove_dead_letters(self.broker, self.store, [letter.message_id for letter in chunk])
            if progress is not None:
                for letter in chunk:
                    progress(letter)
        return removed
