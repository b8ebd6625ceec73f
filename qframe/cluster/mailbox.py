"""A worker's end of its channel to the pusher, read by a thread of its own while tasks run.

The pusher sends ``("tasks", work)`` (deliveries to run in order), ``("take", ack_ids)``
(give back those you have not started) and ``("stop",)``. The reading thread answers a
take at once, even while a long task runs, with ``("given", ack_ids)``: exactly the
deliveries it removed before the worker started them, so a delivery the pusher moves to
another worker never runs here. The worker's main thread takes deliveries one at a time
with :meth:`Mailbox.next` and sends ``hello``, ``done`` and ``bye`` through
:meth:`Mailbox.send`.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

from qframe.processes import Channel

#: One delivery to run: ``(ack_id, attempts, payload, message_id)``.
Work = tuple[str, int, bytes, str]


class Mailbox:
    """The deliveries the pusher handed this worker that it has not started, kept up to date by a thread."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.changed = threading.Condition()
        self.queued: collections.deque[Work] = collections.deque()
        self.stopped = False
        self.closed = False
        self._sending = threading.Lock()
        threading.Thread(target=self._read, name="mailbox", daemon=True).start()

    def next(self) -> Work | None:
        """The next delivery to run (started from now on), or None after ``stop``.

        Raises EOFError when the pusher is gone; what it handed out and this worker did not
        start is dropped (the pusher that replaces it does not know those deliveries; their
        leases bring them back).
        """
        with self.changed:
            while not self.queued and not self.stopped and not self.closed:
                self.changed.wait()
            if self.closed:
                raise EOFError("the pusher closed the connection")
            return self.queued.popleft() if self.queued else None

    def send(self, message: tuple[Any, ...]) -> None:
        """Send to the pusher (from either thread); OSError when it is gone."""
        with self._sending:
            self.channel.send(message)

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
        """Apply one message from the pusher; False after ``stop``."""
        kind: str = message[0]
        given: list[str] = []
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
