"""The pieces that let a worker process run several lanes: mailbox timeouts and retiring,
the pusher's view of lanes, the timeout watch's message, and :class:`ThreadLanes`."""

from __future__ import annotations

import threading
from multiprocessing import Pipe
from typing import Any

from test_dispatcher import Rig, rig  # noqa: F401 (the fixture)

from qframe.builtin.prefork import PreforkManager
from qframe.cluster.deliveries import Deliveries, Slot
from qframe.cluster.mailbox import Mailbox
from qframe.cluster.timeouts import TimeoutWatch
from qframe.config import Config
from qframe.processes import Channel
from qframe.testing.malformed import wait_for
from qframe.threadlanes import ThreadLanes

WORK = [(f"ack-{i}", 1, b"payload", f"m{i}") for i in range(2)]


def test_mailbox_lets_go_of_the_running_delivery_on_timeout_and_closes_its_channel() -> None:
    pusher, theirs = Pipe()
    timed_out = threading.Event()
    mailbox = Mailbox(theirs, timed_out.set)
    pusher.send(("tasks", WORK))
    assert mailbox.next() == WORK[0]
    pusher.send(("timeout", "ack-0"))
    assert timed_out.wait(5)
    assert mailbox.timed_out and not mailbox.finished()  # its outcome is not reported
    assert pusher.poll(5)
    try:
        pusher.recv()
        raise AssertionError("the channel should have ended")
    except EOFError:
        pass


def test_mailbox_ignores_a_timeout_for_a_delivery_that_already_finished() -> None:
    pusher, theirs = Pipe()
    timed_out = threading.Event()
    mailbox = Mailbox(theirs, timed_out.set)
    pusher.send(("tasks", WORK))
    assert mailbox.next() == WORK[0]
    assert mailbox.finished()
    assert mailbox.next() == WORK[1]
    pusher.send(("timeout", "ack-0"))  # late: ack-1 runs now
    pusher.send(("take", ["nothing"]))
    assert pusher.poll(5) and pusher.recv() == ("given", [])  # the reader handled both
    assert not timed_out.is_set() and not mailbox.timed_out


def test_retired_mailbox_hands_out_nothing_more() -> None:
    pusher, theirs = Pipe()
    mailbox = Mailbox(theirs)
    pusher.send(("tasks", WORK))
    assert mailbox.next() == WORK[0]
    mailbox.retire()
    assert mailbox.next() is None  # WORK[1] stays unstarted: the pusher takes it back on "bye"


def test_capacity_counts_every_lane_connected_not_only_worker_processes() -> None:
    deliveries = Deliveries(Config(workers=2))
    before = deliveries.capacity()
    for pid in range(10):
        deliveries.slots[Pipe()[0]] = Slot(pid, f"lane-{pid}")
    assert deliveries.lanes() == 10
    assert deliveries.capacity() > before


class Recorder(PreforkManager):
    """Keeps the timeouts it is asked to enforce."""

    def __init__(self) -> None:
        super().__init__(Config())
        self.enforced: list[tuple[int, Channel, str]] = []

    def enforce_timeout(self, pid: int, channel: Channel, ack_id: str) -> None:
        self.enforced.append((pid, channel, ack_id))


def test_timeout_watch_names_the_lane_channel_and_the_delivery(rig: Rig) -> None:  # noqa: F811
    rig.enqueue()
    rig.fetch()
    worker = rig.worker(7)
    rig.dispatcher.hand_out()
    worker.recv()
    [(conn, slot)] = rig.deliveries.slots.items()
    slot.running.started -= 100  # type: ignore[union-attr]
    manager = Recorder()
    TimeoutWatch(Config(timeout=1), manager).enforce(rig.deliveries.slots)
    assert manager.enforced == [(7, conn, slot.running.message.ack_id)]  # type: ignore[union-attr]


def test_done_after_a_timeout_was_enforced_clears_it_for_the_next_delivery(rig: Rig) -> None:  # noqa: F811
    for _ in range(2):
        rig.enqueue()
    rig.fetch()
    worker = rig.worker(1)
    rig.dispatcher.hand_out()
    worker.recv()
    [(conn, slot)] = rig.deliveries.slots.items()
    slot.killed_for_timeout = 1.0
    worker.send(("done",))  # it finished after all, before the timeout reached it
    rig.dispatcher.receive(conn)
    assert slot.killed_for_timeout is None
    worker.close()
    rig.dispatcher.receive(conn)
    assert rig.failures() == []  # the next delivery is not recorded as timed out
    assert rig.broker.queue_size() == 1  # it goes back like any task of a dead worker


def test_thread_lanes_run_every_lane_and_return_when_all_left() -> None:
    ran: list[int] = []
    ThreadLanes(3, grace=1).run(ran.append)
    assert sorted(ran) == [0, 1, 2]


def test_thread_lanes_replace_an_abandoned_lane_and_give_up_on_it_after_grace() -> None:
    stuck = threading.Event()
    release = threading.Event()
    starts: list[int] = []
    lanes = ThreadLanes(1, grace=0.2, on_stuck=stuck.set)

    def lane(index: int) -> None:
        starts.append(index)
        if len(starts) == 1:
            release.wait(10)  # the first run ignores its timeout

    runner = threading.Thread(target=lanes.run, args=(lane,), daemon=True)
    runner.start()
    assert wait_for(lambda: starts == [0], 5)
    lanes.abandon(0)
    assert wait_for(lambda: len(starts) == 2, 5)  # a new lane 0 took its place at once
    assert stuck.wait(5)  # the old one did not return within grace
    release.set()
    runner.join(5)
    assert not runner.is_alive()


def test_thread_lanes_keep_the_process_when_the_abandoned_lane_returns_within_grace() -> None:
    stuck = threading.Event()
    calls: list[Any] = []
    lanes = ThreadLanes(1, grace=0.5, on_stuck=stuck.set)
    release = threading.Event()

    def lane(index: int) -> None:
        calls.append(index)
        if len(calls) == 1:
            release.wait(10)

    runner = threading.Thread(target=lanes.run, args=(lane,), daemon=True)
    runner.start()
    assert wait_for(lambda: calls == [0], 5)
    lanes.abandon(0)
    release.set()
    runner.join(5)
    assert not stuck.wait(1.5)  # past the grace: the watcher saw the thread return
