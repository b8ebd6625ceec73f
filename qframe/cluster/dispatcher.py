"""The dispatcher: hands checked deliveries to workers and settles what a lost worker held."""

from __future__ import annotations

import logging
import time
from typing import Any

from qframe.brokers.base import Broker
from qframe.cluster.deliveries import Deliveries, Delivery, Slot
from qframe.cluster.fairness import Rebalancer
from qframe.cluster.fetcher import release
from qframe.cluster.outbox import Outbox
from qframe.cluster.outcome import attempt_limit, attempts_left
from qframe.errors import BrokerError
from qframe.processes import Channel, Hub, send_plain

log = logging.getLogger("qframe")


class Dispatcher:
    """Talks to the workers: hands out batches, tracks ``done``, takes back a dead worker's work."""

    def __init__(self, deliveries: Deliveries, broker: Broker, hub: Hub, outbox: Outbox) -> None:
        self.deliveries = deliveries
        self.config = deliveries.config
        self.broker = broker
        self.hub = hub
        self.outbox = outbox
        self.fairness = Rebalancer(deliveries, self.send)

    @property
    def slots(self) -> dict[Channel, Slot]:
        """The connected workers."""
        return self.deliveries.slots

    def arrived(self, conn: Channel) -> None:
        """A worker connected."""
        with self.deliveries.space:
            self.slots[conn] = Slot(0, "?")

    def receive(self, conn: Channel) -> None:
        """Read every message a worker has sent."""
        slot = self.slots[conn]
        try:
            while True:
                self.on_message(conn, slot, conn.recv())
                if conn not in self.slots or not conn.poll():
                    return
        except (EOFError, OSError):
            self.lost(conn)

    def on_message(self, conn: Channel, slot: Slot, message: tuple[Any, ...]) -> None:
        """Handle ``hello``, ``done`` (the running delivery finished), ``bye`` (recycling) and ``given``."""
        if message[0] == "hello":
            slot.pid, slot.name = message[1], message[2]
            if self.deliveries.stopping:
                self.send(conn, ("stop",))
        elif message[0] == "done":
            # it finished before the timeout took effect: what runs next is not the timed-out task
            slot.killed_for_timeout = None
            with self.deliveries.space:
                slot.assigned.popleft()
                self.deliveries.finish()
            if slot.assigned:
                slot.assigned[0].started = time.monotonic()
            elif self.deliveries.stopping:
                self.send(conn, ("stop",))
        elif message[0] == "bye":
            slot.retiring = True
        elif message[0] == "given":  # the queued deliveries it gave up, of those asked back
            self.take_back(self.fairness.given(slot, message[1]))

    def send(self, conn: Channel, message: tuple[object, ...]) -> None:
        """Send to a worker; if it is gone, mark it so, and settle it once its last words are read.

        A worker may have sent ``done`` and ``bye`` just before leaving: settling it at
        once would hand back a task that already finished, and it would run twice.
        """
        try:
            send_plain(conn, message)
        except OSError:
            self.slots[conn].gone = True

    def stop_idle(self) -> None:
        """At stop: tell every worker with nothing assigned to leave."""
        for conn, slot in list(self.slots.items()):
            if not slot.assigned:
                self.send(conn, ("stop",))

    def hand_out(self) -> None:
        """Give waiting deliveries to workers, least loaded first, a batch per message.

        A worker holds the delivery it runs plus a few queued behind it (see
        :meth:`Deliveries.depth`), which saves a round trip per task; nothing is queued
        behind a slow task, and what was is taken back (:mod:`qframe.cluster.fairness`).
        A worker is topped up once half its depth is left, not after every task, so a
        busy worker gets one message per several tasks; an idle one gets work at once.
        """
        if self.deliveries.stopping:
            return
        self.fairness.take_back()
        self.deliveries.measure()
        depth, now = self.deliveries.depth(), time.monotonic()
        for conn, slot in sorted(self.slots.items(), key=lambda item: len(item[1].assigned)):
            if slot.retiring or slot.gone or not slot.pid or len(slot.assigned) > depth // 2:
                continue
            if self.fairness.full(slot, now):
                continue
            batch: list[Delivery] = []
            with self.deliveries.space:
                while self.deliveries.waiting and len(slot.assigned) + len(batch) < depth:
                    batch.append(self.deliveries.waiting.popleft())
            batch = [delivery for delivery in batch if not self.exhausted(delivery)]
            if not batch:
                continue
            if not slot.assigned:
                batch[0].started = time.monotonic()
            with self.deliveries.space:
                slot.assigned.extend(batch)
            work = [(m.ack_id, m.attempts, m.payload, m.message_id) for m in (d.message for d in batch)]
            self.send(conn, ("tasks", work))

    def exhausted(self, delivery: Delivery) -> bool:
        """Record a delivery past its max_attempts as failed, and dead, instead of running it again."""
        attempts = delivery.message.attempts
        if attempts_left(attempts - 1, delivery.header.max_attempts, self.config):
            return False
        limit = attempt_limit(delivery.header.max_attempts, self.config)
        self.outbox.fail(
            delivery,
            f"gave up after {limit} attempts: the task never finished "
            "(its worker died or its lease ran out each time)",
            dead_limit=limit,
        )
        return True

    def lost(self, conn: Channel) -> None:
        """A worker's connection ended: settle what it ran; take back what it had not started."""
        with self.deliveries.space:
            slot = self.slots.pop(conn)
        self.hub.drop(conn)
        if not slot.assigned:
            return
        if slot.retiring:  # a recycled worker leaves after its last "done": nothing of its ran
            self.take_back(list(slot.assigned))
            return
        running, *unstarted = slot.assigned
        self.take_back(unstarted)
        attempts = running.message.attempts
        if slot.killed_for_timeout is not None:
            self.outbox.fail(
                running, f"timed out after {slot.killed_for_timeout:g} s", slot.killed_for_timeout
            )
        elif not attempts_left(attempts, running.header.max_attempts, self.config):
            limit = attempt_limit(running.header.max_attempts, self.config)
            reason = f"its worker died on each of {attempts} attempts (max_attempts={limit})"
            self.outbox.fail(running, reason, dead_limit=limit)
        else:
            log.warning(
                "%s died while running message %s; handed back to the broker",
                slot.name,
                running.message.message_id,
            )
            self.hand_back(running.message.ack_id)

    def take_back(self, unstarted: list[Delivery]) -> None:
        """Deliveries a lost worker never started: wait for another worker, or go back at stop."""
        if self.deliveries.stopping:
            release(self.broker, unstarted)
            return
        with self.deliveries.space:
            self.deliveries.waiting.extendleft(reversed(unstarted))
            self.deliveries.space.notify()

    def hand_back(self, ack_id: str) -> None:
        """Return a delivery to the broker, logging (not raising) if it is unreachable."""
        try:
            self.broker.nack(ack_id)
        except BrokerError as exc:
            log.warning("could not hand back %s (its lease will return it): %s", ack_id, exc)
