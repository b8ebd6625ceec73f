"""A worker's end of its channel to the pusher, read by a thread of its own while tasks run.

The pusher sends ``("tasks", work)`` (deliveries to run in order), ``("take", ack_ids)``
(give back those you have not started) and ``("stop",)``. The reading thread answers a
take at once, even while a long task runs, with ``("given", ack_ids)``: exactly the
deliveries it removed before the worker started them, so a delivery the pusher moves to
another worker never runs here. The worker's main thread takes deliveries one at a time
with :meth:`Mailbox.next` and sends ``hello``, ``done`` and ``bye`` through
:meth:`Mailbox.send`.

Under a process manager whose lanes cannot be killed (threads, an event loop), the pusher
sends ``("timeout", ack_id)`` instead of killing the process: if that delivery still runs,
the mailbox closes the channel (the pusher then records the timeout) and calls
``on_timeout``; the lane drops the task's outcome when it returns.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from qframe.processes import Channel, send_plain

#: One delivery to run: ``(ack_id, attempts, payload, message_id)``.
Work = tuple[str, int, bytes, str]


class Mailbox:
    """The deliveries the pusher handed this worker that it has not started, kept up to date by a thread."""

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
        self._sending = threading.Lock()
        threading.Thread(target=self._read, name="mailbox", daemon=True).start()

    def next(self) -> Work | None:
        """The next delivery to run (started from now on), or None after ``stop``.

        Raises EOFError when the pusher is gone; what it handed out and this worker did not
        start is dropped (the pusher that replaces it does not know those deliveries; their
        leases bring them back).
        """
        with self.changed:
            while not self.queued and not self.stopped and not self.closed and not self.retired:
                self.changed.wait()
            if self.closed:
                raise EOFError("the pusher closed the connection")
            if self.retired or not self.queued:
                return None
            work = self.queued.popleft()
            self.running = work[0]
            return work

    def finished(self) -> bool:
        """Claim the outcome of the delivery started last; False when it was timed out first."""
        with self.changed:
            self.running = None
            return not self.timed_out

    def retire(self) -> None:
        """Hand out nothing more: a pending or later :meth:`next` returns None."""
        with self.changed:
            self.retired = True
            self.changed.notify()

    def send(self, message: tuple[Any, ...]) -> None:
        """Send to the pusher (from either thread); OSError when it is gone."""
        with self._sending:
            send_plain(self.channel, message)

    def _read(self) -> None:
        try:
            while self._handle(self.channel.recv()):
                pass
        except (EOFError, OSError):
            with self.changed:
                self.closed = True
                self.queued.clear()
                self.changed.notify()

    def _handle(self, message: tuple[Any, ...]) -> bool:
        """Apply one message from the pusher; False after ``stop`` or a timeout taken."""
        kind: str = message[0]
        given: list[str] = []
        if kind == "timeout":
            return not self._time_out(message[1])
        with self.changed:
            if kind == "tasks":
                self.queued.extend(message[1])
            elif kind == "take":
                wanted = set(message[1])
                given = [work[0] for work in self.queued if work[0] in wanted]
                self.queued = collections.deque(work for work in self.queued if work[0] not in wanted)
            elif kind == "stop":
                self.stopped = True
            self.changed.notify()
        if kind == "take":
            self.send(("given", given))
        return kind != "stop"

    def _time_out(self, ack_id: str) -> bool:
        """Let go of delivery ``ack_id`` if it still runs: close the channel, call ``on_timeout``."""
        with self.changed:
            if self.running != ack_id or self.timed_out:
                return False  # it finished first: its "done" is on the way
            self.timed_out = True
            self.closed = True
            self.queued.clear()
            self.changed.notify()
        with self._sending:
            self.channel.close()
        self.on_timeout()
        return True
