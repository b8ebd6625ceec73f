"""Fair dispatch: no delivery keeps waiting behind a slow task (Celery's ``-O fair``).

A worker holds the delivery it runs and a few queued behind it (:meth:`Deliveries.depth`),
which saves a round trip per short task. Once the running task has run for :data:`SLOW`
seconds, the ones queued behind it would wait for it to end, however long it takes. So
the pusher asks the worker for them back (``("take", ack_ids)``); the worker's mailbox
answers at once, even mid-task, giving up only the deliveries it has not started
(``("given", ack_ids)``), and the pusher moves just those to the front of the waiting
line, for any worker with room. Nothing more is queued behind a slow task meanwhile.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence

from qframe.cluster.deliveries import Deliveries, Delivery, Slot
from qframe.processes import Channel

#: Seconds a task runs before the deliveries queued behind it are taken back.
SLOW = 0.05


class Rebalancer:
    """Takes queued deliveries back from workers whose running task is slow."""

    def __init__(self, deliveries: Deliveries, send: Callable[[Channel, tuple[object, ...]], None]) -> None:
        self.deliveries = deliveries
        self.send = send

    @staticmethod
    def slow(slot: Slot, now: float) -> bool:
        """Whether the task ``slot`` runs has run for :data:`SLOW` seconds."""
        running = slot.running
        return running is not None and running.started > 0 and now - running.started >= SLOW

    def full(self, slot: Slot, now: float) -> bool:
        """Whether nothing more may be queued at ``slot``: its task is slow, or a take is pending."""
        return bool(slot.assigned) and (slot.taking or self.slow(slot, now))

    def due(self) -> float:
        """The monotonic time the next running task with deliveries queued behind it turns slow."""
        starts = [slot.assigned[0].started for _, slot in self.askable() if slot.assigned[0].started]
        return min(starts, default=float("inf")) + SLOW

    def take_back(self) -> None:
        """Ask every worker whose running task is slow for the deliveries queued behind it."""
        now = time.monotonic()
        for conn, slot in self.askable():
            if self.slow(slot, now):
                slot.taking = True
                self.send(conn, ("take", [d.message.ack_id for d in list(slot.assigned)[1:]]))

    def askable(self) -> list[tuple[Channel, Slot]]:
        """Workers with deliveries queued behind the running one that may be asked for them now."""
        if self.deliveries.stopping:  # at a stop queued deliveries stay: each worker ends its own
            return []
        return [
            (conn, slot)
            for conn, slot in self.deliveries.slots.items()
            if len(slot.assigned) > 1 and not slot.taking and not slot.retiring and not slot.gone
        ]

    def given(self, slot: Slot, ack_ids: Sequence[str]) -> list[Delivery]:
        """The worker gave these up: remove them from its slot and return them, in order."""
        wanted = set(ack_ids)
        with self.deliveries.space:
            moved = [d for d in slot.assigned if d.message.ack_id in wanted]
            slot.assigned = collections.deque(d for d in slot.assigned if d.message.ack_id not in wanted)
            slot.taking = False
        return moved
