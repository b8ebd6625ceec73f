"""A worker's end of its channel to the pusher: read by the worker while idle, by a thread while a task runs.

The pusher sends ``("tasks", work)`` (deliveries to run in order), ``("take", ack_ids)``
(give back those you have not started) and ``("stop",)``. A take is answered at once,
even while a long task runs, with ``("given", ack_ids)``: exactly the deliveries removed
before the worker started them, so a delivery the pusher moves to another worker never
runs here. The worker's main thread takes deliveries one at a time with
:meth:`Mailbox.next` and sends ``hello``, ``done`` and ``bye`` through :meth:`Mailbox.send`.

Under a process manager whose lanes cannot be killed (threads, an event loop), the pusher
sends ``("timeout", ack_id)`` instead of killing the process: if that delivery still runs,
the mailbox closes the channel (the pusher then records the timeout) and calls
``on_timeout``; the lane drops the task's outcome when it returns.

Whoever holds :attr:`Mailbox.reading` is the one blocked in ``recv``. An idle worker
reads its channel itself, so a delivery to an idle worker costs no hand-over between
threads; the reading thread takes over only while a task runs (:attr:`Mailbox.busy`).
"""

from __future__ import annotations

import collections
import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from qframe.processes import Channel

#: One delivery to run: ``(ack_id, attempts, payload, message_id)``.
Work = tuple[str, int, bytes, str]


class Mailbox:
    """The deliveries the pusher handed this worker that it has not started."""

    def __init__(self, channel: Channel, on_timeout: Callable[[], None] = lambda: None) -> None:
        self.channel = channel
        self.on_timeout = on_timeout
        self.changed = threading.Condition()
        self.queued: collections.deque[Work] = collections.deque()
        self.stopped = False
        self.closed = False
        #: The process retires (recycle, max_rss): :meth:`next` hands out nothing more.
        self.retired = False
        #: The ack id of the delivery started last, until :meth:`finished`.
        self.running: str | None = None
        #: The pusher timed out the running delivery: the lane let go of it.
        self.timed_out = False
        #: Held by the thread that is receiving from the channel.
        self.reading = threading.Lock()
        #: Set while the worker runs a delivery: the reading thread receives meanwhile.
        self.busy = threading.Event()
        self._sending = threading.Lock()
        #: Written to by :meth:`retire`, so a worker waiting on its channel while idle wakes up.
        self._wake_r, self._wake_w = socket.socketpair()
        threading.Thread(target=self._read_while_busy, name="mailbox", daemon=True).start()

    def next(self) -> Work | None:
        """The next delivery to run (started from now on), or None after ``stop``.

        Raises EOFError when the pusher is gone; what it handed out and this worker did not
        start is dropped (the pusher that replaces it does not know those deliveries; their
        leases bring them back).
        """
        self.busy.clear()
        while True:
            with self.changed:
                if self.closed:
                    raise EOFError("the pusher closed the connection")
                if self.retired:
                    return None
                if self.queued:
                    work = self.queued.popleft()
                    self.running = work[0]
                    self.busy.set()
                    return work
                if self.stopped:
                    return None
                if self.reading.locked():  # the thread is receiving: wait for what it gets
                    self.changed.wait()
                    continue
            with self.reading:
                if not self.queued and not self.retired and self._readable():
                    self._receive()

    def finished(self) -> bool:
        """Claim the outcome of the delivery started last; False when it was timed out first."""
        with self.changed:
            self.running = None
            return not self.timed_out

    def retire(self) -> None:
        """Hand out nothing more: a pending or later :meth:`next` returns None."""
        with self.changed:
            self.retired = True
            self.changed.notify_all()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"!")

    def send(self, message: tuple[Any, ...]) -> None:
        """Send to the pusher (from either thread); OSError when it is gone."""
        with self._sending:
            self.channel.send(message)

    def _read_while_busy(self) -> None:
        while not self.closed and not self.stopped:
            self.busy.wait()
            with self.reading:
                if self.busy.is_set():
                    self._receive()
            with self.changed:
                self.changed.notify_all()  # the worker may be waiting for the channel itself

    def _readable(self) -> bool:
        """Wait until the channel has a message (True) or :meth:`retire` woke this worker (False)."""
        channel = self.channel.fileno()
        readable, _, _ = select.select([channel, self._wake_r.fileno()], [], [])
        return channel in readable

    def _receive(self) -> None:
        """Receive and apply one message (the caller holds :attr:`reading`)."""
        try:
            message = self.channel.recv()
        except (EOFError, OSError):
            with self.changed:
                self.closed = True
                self.queued.clear()
                self.changed.notify_all()
            return
        self._handle(message)

    def _handle(self, message: tuple[Any, ...]) -> None:
        """Apply one message from the pusher."""
        kind: str = message[0]
        given: list[str] = []
        if kind == "timeout":
            self._time_out(message[1])
            return
        with self.changed:
            if kind == "tasks":
                self.queued.extend(message[1])
            elif kind == "take":
                wanted = set(message[1])
                given = [work[0] for work in self.queued if work[0] in wanted]
                self.queued = collections.deque(work for work in self.queued if work[0] not in wanted)
            elif kind == "stop":
                self.stopped = True
            self.changed.notify_all()
        if kind == "take":
            with contextlib.suppress(OSError):  # the pusher is gone; the next receive says so
                self.send(("given", given))

    def _time_out(self, ack_id: str) -> None:
        """Let go of delivery ``ack_id`` if it still runs: close the channel, call ``on_timeout``."""
        with self.changed:
            if self.running != ack_id or self.timed_out:
                return  # it finished first: its "done" is on the way
            self.timed_out = True
            self.closed = True
            self.queued.clear()
            self.changed.notify_all()
        with self._sending:
            self.channel.close()
        self.on_timeout()
