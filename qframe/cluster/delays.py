"""Hand held delayed tasks over to the broker once their remaining delay fits its ``max_delay``."""

from __future__ import annotations

import logging
import math

from qframe.brokers.base import Broker
from qframe.errors import QFrameError
from qframe.stores.base import Store
from qframe.stores.delays import DelayStore, HeldTask

log = logging.getLogger("qframe")

#: Seconds a claim of held tasks lasts: enough to enqueue a batch, short enough that the
#: entries of a cluster that died while moving them are moved by another one soon after.
CLAIM_LEASE = 60.0
#: Held tasks claimed per round trip to the store.
BATCH = 100


def release_due(
    store: Store, broker: Broker, now: float, *, limit: int = 1000, lease: float = CLAIM_LEASE
) -> int:
    """Move up to ``limit`` held tasks of ``broker``'s queue that fit its delay into the broker.

    A held task fits once ``due - now <= broker.max_delay``; it is enqueued with the rest of
    its delay (none when due), then deleted from the store. Returns how many were moved.
    A store without the :class:`DelayStore` role holds nothing: 0. Errors of the store or
    the broker are logged and end the round; the unmoved tasks wait for the next one.
    """
    if not isinstance(store, DelayStore):
        return 0
    max_delay = type(broker).max_delay
    until = math.inf if max_delay is None else now + max_delay
    moved = 0
    try:
        while moved < limit:
            batch = store.claim_held(broker.queue, until, lease, min(BATCH, limit - moved))
            moved += _hand_over(store, broker, batch, now)
            if len(batch) < BATCH:
                break
    except QFrameError as exc:
        log.warning("could not move held delayed tasks of queue %s to the broker: %s", broker.queue, exc)
    return moved


def _hand_over(store: DelayStore, broker: Broker, batch: list[HeldTask], now: float) -> int:
    """Enqueue ``batch`` (the due ones in one call), then delete what was enqueued."""
    due = [task for task in batch if task.due <= now]
    later = [task for task in batch if task.due > now]
    done: list[HeldTask] = []
    try:
        if due:
            broker.enqueue_many([task.payload for task in due])
            done += due
        for task in later:
            broker.enqueue(task.payload, delay=task.due - now)
            done.append(task)
    finally:
        if done:
            store.drop_held(broker.queue, done)
    return len(done)
