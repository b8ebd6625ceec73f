"""A worker's end of its channel to the pusher: read by the worker while idle, by a thread while a task runs.

The pusher sends ``("tasks", work)`` (deliveries to run in order), ``("take", ack_ids)``
(give back those you have not started) and ``("stop",)``. A take is answered at once,
even while a long task runs, with ``("given", ack_ids)``: exactly the deliveries removed
before the worker started them, so a delivery the pusher moves to another worker never
runs here. The worker's main thread takes deliveries one at a time with
:meth:`Mailbox.next` and sends ``hello``, ``done`` and ``bye`` through :meth:`Mailbox.send`.

Whoever holds :attr:`Mailbox.reading` is the one blocked in ``recv``. An idle worker
reads its channel itself, so a delivery to an idle worker costs no hand-over between
threads; the reading thread takes over only while a task runs (:attr:`Mailbox.busy`).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Any

from qframe.processes import Channel

#: One delivery to run: ``(ack_id, attempts, payload, message_id)``.
Work = tuple[str, int, bytes, str]


class Mailbox:
    """The deliveries the pusher handed this worker that it has not started."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.changed = threading.Condition()
        self.queued: collections.deque[Work] = collections.deque()
        self.stopped = False
        self.closed = False
        #: Held by the thread that is receiving from the channel.
        self.reading = threading.Lock()
        #: Set while the worker runs a delivery: the reading thread receives meanwhile.
        self.busy = threading.Event()
        self._sending = threading.Lock()
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
                if self.queued:
                    self.busy.set()
                    return self.queued.popleft()
                if self.stopped:
                    return None
                if self.reading.locked():  # the thread is receiving: wait for what it gets
                    self.changed.wait()
                    continue
            with self.reading:
                if not self.queued:  # the thread may have received one meanwhile
                    self._receive()

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
