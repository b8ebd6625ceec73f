"""What the pusher holds: checked deliveries, waiting or assigned to a worker.

The fetcher thread adds to it and the pusher's main loop hands out of it, so every
access goes through :attr:`Deliveries.space`, a condition the fetcher waits on for room.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field

from qframe.brokers.base import Message
from qframe.config import Config
from qframe.processes import Channel
from qframe.serialize import Header

#: Most deliveries queued in a worker behind the one it runs.
MAX_QUEUED_PER_WORKER = 16
#: Finished tasks that end a rate window early (see :class:`RateMeter`).
QUICK_COUNT = 50


@dataclass
class Delivery:
    """A message taken from the broker and checked, waiting for or held by a worker."""

    message: Message
    header: Header
    started: float = 0.0


@dataclass
class Slot:
    """One connected worker and the deliveries it holds: the running one first."""

    pid: int
    name: str
    assigned: collections.deque[Delivery] = field(default_factory=collections.deque)
    retiring: bool = False
    #: A send failed: the worker left; what it sent before leaving is still to be read.
    gone: bool = False
    killed_for_timeout: float | None = None
    #: The deliveries queued behind a slow task were asked back; the worker has not answered yet.
    taking: bool = False

    @property
    def running(self) -> Delivery | None:
        """The delivery the worker runs now."""
        return self.assigned[0] if self.assigned else None


class RateMeter:
    """Turns a growing counter into a rate, measured over windows of a quarter second.

    Short windows let batch sizes follow a burst within a second of its start; a window
    that counted :data:`QUICK_COUNT` already ends after 20 ms, so a cluster that starts on
    a full queue batches from its first tens of milliseconds, not after a quarter second.
    """

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.count = 0
        self.rate = 0.0

    def per_second(self, count: int) -> float:
        """The counter's recent rate of growth."""
        now = time.monotonic()
        elapsed = now - self.since
        if elapsed >= 0.25 or (elapsed >= 0.02 and count - self.count >= QUICK_COUNT):
            self.rate = (count - self.count) / (now - self.since)
            self.since, self.count = now, count
        return self.rate


class Deliveries:
    """Every delivery the pusher holds, and how many it should hold (adaptive prefetch)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.waiting: collections.deque[Delivery] = collections.deque()
        self.slots: dict[Channel, Slot] = {}
        self.space = threading.Condition()
        self.stopping = False
        self.finished = 0
        self.rate = RateMeter()
        self.recent_rate = 0.0

    def measure(self) -> None:
        """Update the recent task rate that sizes prefetch and batches."""
        self.recent_rate = self.rate.per_second(self.finished)

    def capacity(self) -> int:
        """Deliveries to hold: those at workers plus a quarter second of work ready.

        Holding more than the workers get through soon would keep tasks from other
        clusters on the same queue; ``prefetch`` caps it.
        """
        workers = self.lanes()
        ready = min(self.config.prefetch, max(workers, int(self.recent_rate / 4)))
        return workers * self.depth() + ready

    def depth(self) -> int:
        """Deliveries a worker holds: the running one plus about 10 ms of work (at least one)."""
        per_worker = self.recent_rate / self.lanes()
        return 1 + min(MAX_QUEUED_PER_WORKER, max(1, int(per_worker / 100)))

    def lanes(self) -> int:
        """Workers that take tasks: one per process, or each lane of a process that runs several."""
        return max(self.config.workers, len(self.slots))

    def occupied(self) -> int:
        """Deliveries waiting or at workers (call with :attr:`space` held)."""
        return len(self.waiting) + sum(len(slot.assigned) for slot in self.slots.values())

    def refillable(self) -> bool:
        """Whether a quarter of the capacity (at least one) is free (call with :attr:`space` held).

        The fetcher waits for that much room, so a busy cluster claims in batches instead
        of one message per finished task, and an idle one still fetches the moment one
        delivery leaves.
        """
        capacity = self.capacity()
        return capacity - self.occupied() >= max(1, capacity // 4)

    def finish(self) -> None:
        """A worker finished its running delivery (call with :attr:`space` held, it is popped)."""
        self.finished += 1
        if self.refillable():
            self.space.notify()

    def room(self, bulk: int) -> int:
        """Wait until there is room for a batch (or a stop); return how many to fetch, 0 at stop."""
        with self.space:
            while not self.stopping and not self.refillable():
                self.space.wait(0.5)
            return 0 if self.stopping else min(self.capacity() - self.occupied(), bulk)

    def ack_ids(self) -> list[str]:
        """The ack ids of every delivery held."""
        with self.space:
            waiting = [d.message.ack_id for d in self.waiting]
            assigned = [d.message.ack_id for s in self.slots.values() for d in s.assigned]
        return waiting + assigned
