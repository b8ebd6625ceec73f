"""The pusher's pieces, unit-tested in one process on the memory broker (no fork, no server)."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from multiprocessing import Pipe
from typing import Any

import pytest

from qframe.brokers.base import Message
from qframe.builtin.memory import MemoryBroker, MemoryStore, reset
from qframe.cluster.deliveries import QUICK_COUNT, Deliveries, Delivery, RateMeter
from qframe.cluster.dispatcher import Dispatcher
from qframe.cluster.fetcher import Fetcher
from qframe.cluster.leases import LeaseKeeper
from qframe.cluster.mailbox import Mailbox
from qframe.cluster.outbox import Outbox
from qframe.cluster.outcome import Outcome
from qframe.cluster.screening import screen
from qframe.cluster.unsaved import Unsaved
from qframe.config import Config
from qframe.serialize import Codec
from qframe.stores.base import DeadLetter
from qframe.task import Task, TaskResult
from qframe.testing.malformed import wait_for

KEYS = ["unit-test-key"]


class FakeHub:
    """The one hub method the dispatcher calls."""

    def drop(self, connection: Any) -> None:
        connection.close()


class Monitor:
    """Stands in for the monitor's channel: keeps what the outbox sends."""

    def __init__(self) -> None:
        self.received: list[Outcome] = []

    def send(self, outcomes: list[tuple[Any, ...]]) -> None:
        self.received.extend(map(Outcome.unpack, outcomes))


class Rig:
    """A dispatcher with its deliveries, outbox and a memory broker on a fresh queue."""

    def __init__(self, url: str, **options: Any) -> None:
        self.config = Config(workers=2, secret_key=KEYS[0], **options)
        self.codec = Codec(KEYS, self.config.name, "pickle", False)
        self.broker = MemoryBroker(url, self.config.name, lease=self.config.lease)
        self.deliveries = Deliveries(self.config)
        self.monitor = Monitor()
        self.outbox = Outbox(self.config, self.codec, self.codec, lambda: self.monitor)  # type: ignore[arg-type,return-value]
        self.dispatcher = Dispatcher(self.deliveries, self.broker, FakeHub(), self.outbox)  # type: ignore[arg-type]

    def enqueue(self, func: str = "math.floor", **options: Any) -> Task:
        task = Task(func, (1.5,), **options)
        self.broker.enqueue(self.codec.encode(task.to_dict(), timeout=None, max_attempts=task.max_attempts))
        return task

    def fetch(self) -> None:
        for message in self.broker.dequeue(100):
            self.deliveries.waiting.append(Delivery(message, self.codec.verify(message.payload)))

    def worker(self, pid: int) -> Any:
        """Connect a worker; return its end of the channel."""
        mine, theirs = Pipe()
        self.dispatcher.arrived(theirs)
        self.dispatcher.on_message(theirs, self.deliveries.slots[theirs], ("hello", pid, f"w{pid}"))
        return mine

    def handed_to_one_worker(self, tasks: int) -> tuple[Any, Any]:
        """Queue ``tasks`` tasks, connect one worker, hand out; return its end and the pusher's."""
        for _ in range(tasks):
            self.enqueue()
        self.fetch()
        worker = self.worker(1)
        self.dispatcher.hand_out()
        [conn] = list(self.deliveries.slots)
        return worker, conn

    def failures(self) -> list[TaskResult]:
        self.outbox.flush()
        return [TaskResult.from_dict(self.codec.decode(o.blob)) for o in self.monitor.received if o.blob]


@pytest.fixture
def rig() -> Iterator[Rig]:
    url = f"memory://{uuid.uuid4().hex[:10]}"
    yield Rig(url)
    reset(url)


def test_hand_out_gives_each_worker_a_batch_least_loaded_first(rig: Rig) -> None:
    for _ in range(4):
        rig.enqueue()
    rig.fetch()
    one, two = rig.worker(1), rig.worker(2)
    rig.dispatcher.hand_out()
    batches = [one.recv(), two.recv()]
    assert [kind for kind, _ in batches] == ["tasks", "tasks"]
    assert sorted(len(work) for _, work in batches) == [2, 2]
    assert not rig.deliveries.waiting


def test_a_delivery_past_max_attempts_is_recorded_failed_not_handed_out(rig: Rig) -> None:
    rig.enqueue(max_attempts=1)
    [message] = rig.broker.dequeue(1)
    rig.broker.nack(message.ack_id)  # the first delivery's worker vanished
    rig.fetch()
    worker = rig.worker(1)
    rig.dispatcher.hand_out()
    assert not worker.poll(0.1)
    [failure] = rig.failures()
    assert failure.result.startswith("gave up after 1 attempts") and failure.attempts == 2


def test_a_delivery_past_max_attempts_is_settled_as_a_dead_letter_after_its_failure(rig: Rig) -> None:
    rig.enqueue(max_attempts=1)
    [message] = rig.broker.dequeue(1)
    rig.broker.nack(message.ack_id)
    rig.fetch()
    rig.worker(1)
    rig.dispatcher.hand_out()
    rig.outbox.flush()
    [dead] = rig.monitor.received
    assert (dead.settle, dead.reason, dead.save) == ("dead", "past max_attempts (1)", True)
    assert dead.message is not None and dead.message.message_id == message.message_id
    assert dead.last_error.startswith("gave up after 1 attempts: the task never finished")


def test_a_lost_workers_running_task_goes_back_and_its_queued_ones_wait(rig: Rig) -> None:
    for _ in range(2):
        rig.enqueue()
    rig.fetch()
    worker = rig.worker(1)
    rig.dispatcher.hand_out()
    assert len(worker.recv()[1]) == 2  # the one it runs and one queued behind it
    [conn] = list(rig.deliveries.slots)
    worker.close()
    rig.dispatcher.receive(conn)
    assert len(rig.deliveries.waiting) == 1  # the unstarted one, for another worker
    assert rig.broker.queue_size() == 1  # the running one, handed back to the broker
    assert rig.failures() == []


def test_a_worker_that_dies_on_its_last_attempt_is_a_failure(rig: Rig) -> None:
    rig.enqueue(max_attempts=1)
    rig.fetch()
    worker = rig.worker(1)
    rig.dispatcher.hand_out()
    worker.recv()
    [conn] = list(rig.deliveries.slots)
    worker.close()
    rig.dispatcher.receive(conn)
    [failure] = rig.failures()
    assert "died on each of 1 attempts" in failure.result
    assert rig.broker.queue_size() == 0
    [dead] = rig.monitor.received
    assert (dead.settle, dead.reason) == ("dead", "past max_attempts (1)")
    assert dead.last_error == "its worker died on each of 1 attempts (max_attempts=1)"


def test_done_frees_the_slot_and_counts(rig: Rig) -> None:
    rig.enqueue()
    rig.fetch()
    worker = rig.worker(1)
    rig.dispatcher.hand_out()
    worker.recv()
    worker.send(("done",))
    [conn] = list(rig.deliveries.slots)
    rig.dispatcher.receive(conn)
    assert rig.deliveries.finished == 1 and not rig.deliveries.slots[conn].assigned


def busy(deliveries: Deliveries, rate: float) -> None:
    """Make ``deliveries`` measure ``rate`` tasks/s (it sizes depth and capacity)."""
    deliveries.rate.rate, deliveries.rate.since = rate, time.monotonic() + 3600
    deliveries.measure()


def test_a_busy_worker_is_topped_up_once_half_its_depth_is_left_not_after_each_task(rig: Rig) -> None:
    busy(rig.deliveries, 4000.0)  # 2,000 tasks/s a worker: it holds the running task and 16 more
    worker, conn = rig.handed_to_one_worker(40)
    assert len(worker.recv()[1]) == 17
    for _ in range(8):  # 16 .. 9 left: no message
        worker.send(("done",))
        rig.dispatcher.receive(conn)
        rig.dispatcher.hand_out()
    assert not worker.poll(0.05), "topped up before half its depth was left"
    worker.send(("done",))  # 8 left: one batch back to 17
    rig.dispatcher.receive(conn)
    rig.dispatcher.hand_out()
    assert len(worker.recv()[1]) == 9


def test_the_fetcher_waits_for_a_quarter_of_its_capacity_before_fetching_again(rig: Rig) -> None:
    deliveries = rig.deliveries
    busy(deliveries, 4000.0)
    capacity = deliveries.capacity()
    assert capacity == 2 * 17 + 100  # each worker's depth, and prefetch ready
    for _ in range(capacity):
        rig.enqueue()
    rig.fetch()
    rig.fetch()
    assert len(deliveries.waiting) == capacity
    fetched: list[int] = []
    thread = threading.Thread(target=lambda: fetched.append(deliveries.room(1000)), daemon=True)
    thread.start()
    for _ in range(capacity // 4 - 1):  # one short of a quarter
        with deliveries.space:
            deliveries.waiting.popleft()
            deliveries.finish()
    thread.join(0.7)  # past room()'s own 0.5 s recheck
    assert thread.is_alive(), "fetched before a quarter of the capacity was free"
    with deliveries.space:
        deliveries.waiting.popleft()
        deliveries.finish()
    thread.join(5)
    assert fetched == [capacity // 4]


def test_lease_keeper_renews_every_held_delivery(rig: Rig) -> None:
    rig.broker.lease = 0.3
    rig.enqueue()
    rig.fetch()
    keeper = LeaseKeeper(rig.broker, rig.deliveries, 0.3)
    keeper.last = 0.0  # due now
    keeper.renew()
    assert rig.broker.lock_size() == 1


def test_fetcher_quarantines_a_tampered_payload_and_keeps_the_rest(rig: Rig) -> None:
    rig.enqueue()
    rig.broker.enqueue(b"\x00" * 80)
    fetcher = Fetcher("p", rig.config, rig.deliveries, rig.codec, lambda: rig.broker, lambda: None)
    checked = [fetcher.check(rig.broker, m) for m in rig.broker.dequeue(10)]
    assert sum(d is not None for d in checked) == 1
    [(_, reason, payload, *_)] = rig.broker.dead_letters()
    assert payload == b"\x00" * 80 and "signature" in reason


class BuggyDequeue(MemoryBroker):
    """A memory broker whose first dequeue fails the way a driver bug does (not a BrokerError)."""

    failed = False

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        if not self.failed:
            self.failed = True
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return super().dequeue(count, wait)


def test_a_driver_bug_in_dequeue_is_logged_as_one_not_as_an_outage(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.enqueue()
    buggy = BuggyDequeue(rig.broker.url, rig.broker.queue, lease=rig.config.lease)
    fetcher = Fetcher("p", rig.config, rig.deliveries, rig.codec, lambda: buggy, lambda: None)
    with caplog.at_level(logging.INFO, logger="qframe"):
        fetcher.start()
        try:
            assert wait_for(lambda: len(rig.deliveries.waiting) == 1, 10)
        finally:
            with rig.deliveries.space:
                rig.deliveries.stopping = True
                rig.deliveries.space.notify_all()
            fetcher.join(10)
    assert "p: BuggyDequeue.dequeue failed (a bug in the broker driver, not an outage)" in caplog.text
    assert "UnicodeDecodeError" in caplog.text
    assert "cannot reach the broker" not in caplog.text
    assert "reached the broker again" not in caplog.text


class NoDeadLetters(MemoryBroker):
    """The memory broker as one without dead letters: the core keeps them in the store."""

    has_dead_letters = False


def test_a_malformed_entry_of_a_broker_without_dead_letters_goes_to_the_store(rig: Rig) -> None:
    broker = NoDeadLetters(rig.broker.url, rig.broker.queue, lease=30)
    store = MemoryStore(rig.broker.url)
    broker.enqueue(b"entry")
    [message] = broker.dequeue(1)
    marked = dataclasses.replace(message, payload="entry", malformed="payload is a str, not bytes")
    assert screen(broker, store, rig.codec, marked) is None  # type: ignore[arg-type]
    assert [letter[:3] for letter in store.dead_letters(broker.queue)] == [
        (message.message_id, "malformed entry: payload is a str, not bytes", b"entry")
    ]
    assert (broker.queue_size(), broker.lock_size()) == (0, 0)  # acknowledged once kept in the store


def slow_down(rig: Rig, conn: Any) -> None:
    """Make the task a worker runs look as if it had run for a second."""
    rig.deliveries.slots[conn].assigned[0].started = time.monotonic() - 1.0


def test_a_delivery_queued_behind_a_slow_task_moves_to_an_idle_worker(rig: Rig) -> None:
    for _ in range(2):
        rig.enqueue()
    rig.fetch()
    busy = rig.worker(1)
    rig.dispatcher.hand_out()
    [(running, *_), (queued, *_)] = busy.recv()[1]
    idle = rig.worker(2)
    [busy_conn, idle_conn] = list(rig.deliveries.slots)
    slow_down(rig, busy_conn)
    rig.dispatcher.hand_out()
    assert busy.recv() == ("take", [queued])
    busy.send(("given", [queued]))
    rig.dispatcher.receive(busy_conn)
    rig.dispatcher.hand_out()
    assert [work[0] for work in idle.recv()[1]] == [queued]
    assert [d.message.ack_id for d in rig.deliveries.slots[busy_conn].assigned] == [running]
    assert [d.message.ack_id for d in rig.deliveries.slots[idle_conn].assigned] == [queued]


def test_a_delivery_the_worker_already_started_stays_with_it(rig: Rig) -> None:
    for _ in range(2):
        rig.enqueue()
    rig.fetch()
    busy = rig.worker(1)
    rig.dispatcher.hand_out()
    busy.recv()
    idle = rig.worker(2)
    [busy_conn, _] = list(rig.deliveries.slots)
    slow_down(rig, busy_conn)
    rig.dispatcher.hand_out()
    assert busy.recv()[0] == "take"
    busy.send(("given", []))  # it had finished the slow one and started the queued one
    busy.send(("done",))
    rig.dispatcher.receive(busy_conn)
    rig.dispatcher.hand_out()
    assert not idle.poll(0.1)
    assert len(rig.deliveries.slots[busy_conn].assigned) == 1 and not rig.deliveries.waiting


def test_nothing_is_queued_behind_a_slow_task(rig: Rig) -> None:
    worker, conn = rig.handed_to_one_worker(1)
    assert len(worker.recv()[1]) == 1
    slow_down(rig, conn)
    rig.enqueue()
    rig.fetch()
    rig.dispatcher.hand_out()
    assert not worker.poll(0.1) and len(rig.deliveries.waiting) == 1
    worker.send(("done",))
    rig.dispatcher.receive(conn)
    rig.dispatcher.hand_out()
    assert len(worker.recv()[1]) == 1 and not rig.deliveries.waiting


def test_the_mailbox_gives_back_only_what_the_worker_has_not_started() -> None:
    pusher, theirs = Pipe()
    mailbox = Mailbox(theirs)
    work = [(f"ack-{i}", 1, b"payload", f"m{i}") for i in range(3)]
    pusher.send(("tasks", work))
    assert mailbox.next() == work[0]  # started: the worker runs it now
    pusher.send(("take", ["ack-0", "ack-1"]))
    assert pusher.poll(5) and pusher.recv() == ("given", ["ack-1"])
    assert mailbox.next() == work[2]
    pusher.send(("stop",))
    assert mailbox.next() is None


def test_the_mailbox_drops_unstarted_work_when_the_pusher_is_gone() -> None:
    pusher, theirs = Pipe()
    mailbox = Mailbox(theirs)
    pusher.send(("tasks", [("ack-0", 1, b"payload", "m0")]))
    assert mailbox.next() == ("ack-0", 1, b"payload", "m0")  # running: the mailbox thread reads
    pusher.send(("tasks", [("ack-1", 1, b"payload", "m1")]))
    pusher.close()
    wait_for(lambda: mailbox.closed, 5)
    with pytest.raises(EOFError):
        mailbox.next()


def test_kept_unsaved_outcomes_keep_their_leases_until_saved(rig: Rig) -> None:
    broker = MemoryBroker(rig.broker.url, rig.broker.queue, lease=0.3)
    broker.enqueue(b"finished")
    [message] = broker.dequeue(1)
    unsaved = Unsaved(broker, lease=0.3)
    unsaved.keep([Outcome(message.ack_id, "ack")])
    deadline = time.monotonic() + 1.0  # more than three leases
    while time.monotonic() < deadline:
        unsaved.renew()
        assert broker.dequeue(1) == []  # never handed out again while its outcome is kept
        time.sleep(0.02)
    [kept] = unsaved.take()
    broker.ack(kept.ack_id)  # the save worked at last: the original delivery still holds it
    assert (broker.queue_size(), broker.lock_size()) == (0, 0)


def test_unsaved_outcomes_past_the_bound_drop_the_oldest(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("qframe.cluster.unsaved.MAX_KEPT", 3)
    unsaved = Unsaved(rig.broker, lease=30)
    unsaved.keep([Outcome(f"{i}:0", "ack") for i in range(2)])
    unsaved.add([Outcome(f"{i}:0", "ack") for i in range(2, 5)])
    assert [o.ack_id for o in unsaved.kept] == ["2:0", "3:0", "4:0"]
    assert "dropped the 2 oldest unsaved results" in caplog.text


def test_a_payload_that_is_not_bytes_is_malformed_even_unmarked(rig: Rig) -> None:
    rig.broker.enqueue(b"entry")
    [message] = rig.broker.dequeue(1)
    unmarked = dataclasses.replace(message, payload="entry")  # a driver that does not mark it
    assert screen(rig.broker, MemoryStore(rig.broker.url), rig.codec, unmarked) is None
    [(_, reason, *_)] = rig.broker.dead_letters()
    assert reason == "malformed entry: the broker returned a str payload, not bytes"


class RecordingHooks:
    """Stands in for :class:`qframe.hooks.Hooks`: keeps the dead letters it is told of."""

    def __init__(self) -> None:
        self.letters: list[tuple[str, DeadLetter]] = []

    def task_dead_lettered(self, queue: str, letter: DeadLetter) -> None:
        self.letters.append((queue, letter))


def test_a_rejected_payload_fires_the_dead_lettered_hook_once_it_is_kept(rig: Rig) -> None:
    rig.broker.enqueue(b"tampered")
    [message] = rig.broker.dequeue(1)
    hooks = RecordingHooks()
    assert screen(rig.broker, MemoryStore(rig.broker.url), rig.codec, message, hooks) is None  # type: ignore[arg-type]
    [(queue, letter)] = hooks.letters
    assert queue == rig.broker.queue and letter.reason == "payload too short to carry a signature"
    assert [kept.message_id for kept in rig.broker.dead_letters()] == [letter.message_id]


def test_the_rate_meter_measures_a_busy_start_within_tens_of_milliseconds() -> None:
    busy, quiet = RateMeter(), RateMeter()
    busy.since = quiet.since = time.monotonic() - 0.03  # 30 ms into the first window
    assert busy.per_second(QUICK_COUNT) > 1000  # 50 tasks in 30 ms: about 1,700/s
    assert quiet.per_second(QUICK_COUNT - 1) == 0.0  # too few to tell yet: the quarter second runs on
