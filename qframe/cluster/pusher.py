"""The pusher: takes tasks from the broker, checks them, and hands them to idle workers.

It is the one place that knows which delivery each worker runs, so it also keeps those
leases alive, kills a worker that runs past its task's timeout, and hands a dead
worker's task back to the broker (or records it as failed once it ran out of attempts).
A background thread fetches from the broker so that a blocking fetch never delays the
results coming back from workers.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import pluggy

from qframe.brokers.base import Broker, Message
from qframe.cluster.channel import Hub, Outcome, connect
from qframe.cluster.context import Context, boot
from qframe.cluster.deadletters import quarantine
from qframe.cluster.worker import outcome
from qframe.drivers import make_broker, make_store
from qframe.errors import BrokerError, SignatureError, StoreError
from qframe.serialize import Header
from qframe.task import Task, TaskResult

log = logging.getLogger("qframe")

#: Most deliveries queued in a worker behind the one it runs.
MAX_QUEUED_PER_WORKER = 16


@dataclass
class Delivery:
    """A message taken from the broker and checked, waiting for or held by a worker."""

    message: Message
    header: Header
    started: float = 0.0


@dataclass
class Slot:
    """One connected worker and the deliveries it holds: the running one first, then one queued."""

    pid: int
    name: str
    assigned: collections.deque[Delivery] = field(default_factory=collections.deque)
    retiring: bool = False
    #: A send failed: the worker left; what it sent before leaving is still to be read.
    gone: bool = False
    killed_for_timeout: float | None = None

    @property
    def running(self) -> Delivery | None:
        """The delivery the worker runs now."""
        return self.assigned[0] if self.assigned else None


class RateMeter:
    """Turns a growing counter into a rate, measured over windows of a quarter second.

    Short windows let batch sizes follow a burst within a second of its start.
    """

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.count = 0
        self.rate = 0.0

    def per_second(self, count: int) -> float:
        """The counter's recent rate of growth."""
        now = time.monotonic()
        if now - self.since >= 0.25:
            self.rate = (count - self.count) / (now - self.since)
            self.since, self.count = now, count
        return self.rate


class Pusher:
    """The pusher process."""

    def __init__(self, context: Context, pm: pluggy.PluginManager, name: str, control: Connection) -> None:
        self.context = context
        self.config = context.config
        self.pm = pm
        self.name = name
        self.control = control
        self.codec = context.codec()
        self.results = context.result_codec()
        self.waiting: collections.deque[Delivery] = collections.deque()
        self.slots: dict[Connection, Slot] = {}
        self.outbox: list[Outcome] = []
        self.space = threading.Condition()
        self.stopping = False
        self.finished = 0
        self.rate = RateMeter()
        self.recent_rate = 0.0
        self.monitor: Connection | None = None
        self.last_touch = time.monotonic()

    def run(self, ready: Connection) -> None:
        """Serve workers until the sentinel says exit."""
        boot(self.context, self.pm, "pusher", self.name)
        self.broker = make_broker(self.config)
        self.hub = Hub(self.context.pusher_address, self.context.authkey)
        fetcher = threading.Thread(target=self.fetch, args=(make_broker(self.config),), daemon=True)
        fetcher.start()
        log.info("%s pushing tasks at %s", self.name, os.getpid())
        ready.send(os.getpid())
        ready.close()
        self.hub.watch(self.control)
        parent = os.getppid()
        exiting = False
        while not (exiting and not self.slots) and os.getppid() == parent:
            arrived, ready_objects = self.hub.wait(self.next_wakeup())
            for conn in arrived:
                with self.space:
                    self.slots[conn] = Slot(0, "?")
            for obj in ready_objects:
                if obj is self.control:
                    exiting = self.on_control(fetcher)
                    if exiting:
                        self.hub.unwatch(self.control)
                else:
                    self.receive(obj)
            self.hand_out()
            self.enforce_timeouts()
            self.touch_leases()
            self.flush()
        self.flush()
        self.broker.close()

    # -- sentinel ------------------------------------------------------------------------
    def on_control(self, fetcher: threading.Thread) -> bool:
        """Handle ``stop`` (stop taking tasks) and ``exit`` (leave once workers are gone)."""
        try:
            command: str = self.control.recv()
        except EOFError:
            command = "exit"
        if not self.stopping:
            with self.space:
                self.stopping = True
                self.space.notify_all()
            fetcher.join(5)
            with self.space:
                waiting, self.waiting = list(self.waiting), collections.deque()
            self.release(self.broker, waiting)
            log.info("%s stopped pushing tasks", self.name)
            for conn, slot in list(self.slots.items()):
                if not slot.assigned:
                    self.send(conn, ("stop",))
        return command == "exit"

    def settle_quietly(self, ack_id: str) -> None:
        """Hand a delivery back to the broker, logging (not raising) if it is unreachable."""
        try:
            self.broker.nack(ack_id)
        except BrokerError as exc:
            log.warning("could not hand back %s (its lease will return it): %s", ack_id, exc)

    # -- broker --------------------------------------------------------------------------
    def fetch(self, broker: Broker) -> None:
        """Fetcher thread: keep workers busy and a few deliveries ready (see :meth:`capacity`)."""
        pause = 0.1
        outage = False
        while True:
            with self.space:
                while not self.stopping and self.occupied() >= self.capacity():
                    self.space.wait(0.5)
                if self.stopping:
                    break
                room = min(self.capacity() - self.occupied(), self.config.bulk)
            try:
                messages = broker.dequeue(room, wait=0.5)
                checked = [d for d in (self.check(broker, m) for m in messages) if d is not None]
            except Exception as exc:  # an outage, or a driver bug: never let the fetcher die
                if not outage:
                    log.error("%s cannot reach the broker, retrying: %s", self.name, exc)
                outage = True
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            if outage:
                log.info("%s reached the broker again", self.name)
                outage, pause = False, 0.1
            with self.space:
                if self.stopping:
                    self.release(broker, checked)
                    break
                self.waiting.extend(checked)
            if checked:
                self.hub.wake()
        broker.close()

    def release(self, broker: Broker, deliveries: list[Delivery]) -> None:
        """Hand back deliveries that never started, without spending an attempt."""
        if not deliveries:
            return
        try:
            broker.release([d.message.ack_id for d in deliveries])
        except Exception as exc:
            log.warning(
                "could not hand back %d tasks (their leases will return them): %s", len(deliveries), exc
            )

    def capacity(self) -> int:
        """Deliveries to hold: one running and one queued per worker, plus a quarter second of work.

        Holding more than the workers get through soon would keep tasks from other
        clusters on the same queue; ``prefetch`` caps it.
        """
        workers = self.config.workers
        ready = min(self.config.prefetch, max(workers, int(self.recent_rate / 4)))
        return workers * self.depth() + ready

    def depth(self) -> int:
        """Deliveries a worker holds: the running one plus about 10 ms of work (at least one)."""
        per_worker = self.recent_rate / self.config.workers
        return 1 + min(MAX_QUEUED_PER_WORKER, max(1, int(per_worker / 100)))

    def occupied(self) -> int:
        """Deliveries waiting or running (call with ``self.space`` held)."""
        return len(self.waiting) + sum(len(slot.assigned) for slot in self.slots.values())

    def check(self, broker: Broker, message: Message) -> Delivery | None:
        """Verify a message's signature; quarantine it if it fails."""
        try:
            return Delivery(message, self.codec.verify(message.payload))
        except SignatureError as exc:
            log.error(
                "rejected message %s from queue '%s': %s; moved to dead letters",
                message.message_id,
                self.config.name,
                exc,
            )
            try:
                quarantine(broker, functools.partial(make_store, self.config), message, str(exc))
            except (BrokerError, StoreError) as error:
                log.error(
                    "could not move message %s aside (it comes back after its lease): %s",
                    message.message_id,
                    error,
                )
            return None

    def touch_leases(self) -> None:
        """Restart the leases of waiting and running deliveries every third of a lease."""
        now = time.monotonic()
        if now - self.last_touch < self.config.lease / 3:
            return
        self.last_touch = now
        with self.space:
            ack_ids = [d.message.ack_id for d in self.waiting]
        ack_ids += [d.message.ack_id for s in self.slots.values() for d in s.assigned]
        if ack_ids:
            try:
                self.broker.touch(ack_ids)
            except BrokerError as exc:
                log.warning("could not extend %d leases: %s", len(ack_ids), exc)

    # -- workers -------------------------------------------------------------------------
    def receive(self, conn: Connection) -> None:
        """Read every message a worker has sent."""
        slot = self.slots[conn]
        try:
            while True:
                self.on_message(conn, slot, conn.recv())
                if conn not in self.slots or not conn.poll():
                    return
        except (EOFError, OSError):
            self.lost(conn)

    def on_message(self, conn: Connection, slot: Slot, message: tuple[Any, ...]) -> None:
        """Handle ``hello``, ``done`` (the running delivery finished) and ``bye`` (recycling)."""
        if message[0] == "hello":
            slot.pid, slot.name = message[1], message[2]
            if self.stopping:
                self.send(conn, ("stop",))
        elif message[0] == "done":
            with self.space:
                slot.assigned.popleft()
                self.finished += 1
                self.space.notify()
            if slot.assigned:
                slot.assigned[0].started = time.monotonic()
            elif self.stopping:
                self.send(conn, ("stop",))
        elif message[0] == "bye":
            slot.retiring = True

    def send(self, conn: Connection, message: tuple[object, ...]) -> None:
        """Send to a worker; if it is gone, mark it so, and settle it once its last words are read.

        A worker may have sent ``done`` and ``bye`` just before leaving: settling it at
        once would hand back a task that already finished, and it would run twice.
        """
        try:
            conn.send(message)
        except OSError:
            self.slots[conn].gone = True

    def hand_out(self) -> None:
        """Give waiting deliveries to workers, least loaded first, a batch per message.

        A worker holds the delivery it runs plus a few queued behind it: as many as it
        gets through in about 10 ms (at least one), which saves a round trip per task
        without parking work behind a slow task. A worker that dies gives its unstarted
        deliveries back to ``waiting`` without a new delivery.
        """
        if self.stopping:
            return
        self.recent_rate = self.rate.per_second(self.finished)
        depth = self.depth()
        for conn, slot in sorted(self.slots.items(), key=lambda item: len(item[1].assigned)):
            if slot.retiring or slot.gone or not slot.pid or len(slot.assigned) >= depth:
                continue
            batch: list[Delivery] = []
            with self.space:
                while self.waiting and len(slot.assigned) + len(batch) < depth:
                    batch.append(self.waiting.popleft())
            batch = [delivery for delivery in batch if not self.exhausted(delivery)]
            if not batch:
                continue
            if not slot.assigned:
                batch[0].started = time.monotonic()
            with self.space:
                slot.assigned.extend(batch)
            work = [(m.ack_id, m.attempts, m.payload, m.message_id) for m in (d.message for d in batch)]
            self.send(conn, ("tasks", work))

    def exhausted(self, delivery: Delivery) -> bool:
        """Record a delivery past its max_attempts as failed instead of running it again."""
        limit = self.max_attempts(delivery)
        if not limit or delivery.message.attempts <= limit:
            return False
        self.fail(
            delivery,
            f"gave up after {limit} attempts: the task never finished "
            "(its worker died or its lease ran out each time)",
        )
        return True

    def max_attempts(self, delivery: Delivery) -> int:
        """The delivery's own max_attempts, else the cluster's."""
        limit = delivery.header.max_attempts
        return self.config.max_attempts if limit is None else limit

    def enforce_timeouts(self) -> None:
        """Kill workers whose task ran past its timeout."""
        now = time.monotonic()
        for slot in self.slots.values():
            running = slot.running
            if running is None or slot.killed_for_timeout is not None:
                continue
            timeout = running.header.timeout or self.config.timeout
            if timeout and now - running.started >= timeout:
                log.error(
                    "%s ran message %s past its timeout of %g s; killing it",
                    slot.name,
                    running.message.message_id,
                    timeout,
                )
                slot.killed_for_timeout = timeout
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)

    def next_wakeup(self) -> float:
        """Seconds until the next timeout or lease touch is due."""
        now = time.monotonic()
        due = self.last_touch + self.config.lease / 3
        for slot in self.slots.values():
            timeout = slot.running and (slot.running.header.timeout or self.config.timeout)
            if slot.running and timeout and slot.killed_for_timeout is None:
                due = min(due, slot.running.started + timeout)
        return max(0.0, min(due - now, 1.0))

    def lost(self, conn: Connection) -> None:
        """A worker's connection ended: settle what it ran; take back what it had not started."""
        with self.space:
            slot = self.slots.pop(conn)
        self.hub.drop(conn)
        if not slot.assigned:
            return
        if slot.retiring:  # a recycled worker leaves after its last "done": nothing of its ran
            self.take_back(list(slot.assigned))
            return
        running, *unstarted = slot.assigned
        self.take_back(unstarted)
        attempts, limit = running.message.attempts, self.max_attempts(running)
        if slot.killed_for_timeout is not None:
            self.fail(running, f"timed out after {slot.killed_for_timeout:g} s", slot.killed_for_timeout)
        elif limit and attempts >= limit:
            self.fail(running, f"its worker died on each of {attempts} attempts (max_attempts={limit})")
        else:
            log.warning(
                "%s died while running message %s; handed back to the broker",
                slot.name,
                running.message.message_id,
            )
            self.settle_quietly(running.message.ack_id)

    def take_back(self, unstarted: list[Delivery]) -> None:
        """Deliveries a lost worker never started: wait for another worker, or go back at stop."""
        if self.stopping:
            self.release(self.broker, unstarted)
            return
        with self.space:
            self.waiting.extendleft(reversed(unstarted))
            self.space.notify()

    def fail(self, delivery: Delivery, reason: str, timed_out: float | None = None) -> None:
        """Queue a failure record for a delivery that will not run (again)."""
        message = delivery.message
        try:
            task = Task.from_dict(self.codec.decode(message.payload))
        except Exception as exc:
            self.outbox.append(
                Outcome(message.ack_id, "quarantine", reason=f"undecodable payload: {exc}", message=message)
            )
            return
        log.error("Failed '%s' (%s) - %s", task.func, task.label, reason)
        task.ack_failure = True
        started = time.time() - (time.monotonic() - delivery.started if delivery.started else 0.0)
        result = TaskResult.of(task, reason, False, started, message.attempts)
        self.outbox.append(outcome(self.results, self.config, task, result, message.ack_id, timed_out))

    # -- monitor -------------------------------------------------------------------------
    def flush(self) -> None:
        """Send collected outcomes to the monitor in one message."""
        if not self.outbox:
            return
        try:
            if self.monitor is None:
                self.monitor = connect(self.context.monitor_address, self.context.authkey, lambda: True, 0)
            self.monitor.send(self.outbox)
            self.outbox = []
        except OSError:
            self.monitor = None  # the monitor is down or restarting; keep the outbox for later


def run_pusher(
    context: Context, pm: pluggy.PluginManager, name: str, ready: Connection, control: Connection
) -> None:
    """The pusher process's main function."""
    Pusher(context, pm, name, control).run(ready)
