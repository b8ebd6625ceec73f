"""Per-process channels between workers, the pusher and the monitor.

Each worker has its own Unix-socket connection to the pusher, and the pusher its own to
the monitor: a process killed mid-read only breaks its own connection, never a lock that
the others need (Django Q2's shared queue could wedge the whole cluster that way).
"""

from __future__ import annotations

import os
import queue
import selectors
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, NamedTuple

from qframe.brokers.base import Message
from qframe.stores.base import ResultMeta


class Outcome(NamedTuple):
    """What the monitor must do with one delivery: save its result, then settle it."""

    ack_id: str
    #: ``ack``, ``nack`` (another attempt) or ``quarantine`` (undecodable payload).
    settle: str
    meta: ResultMeta | None = None
    #: The signed, encoded :class:`~qframe.task.TaskResult`.
    blob: bytes | None = None
    #: Whether the result goes to the store (the task's ``save`` option).
    save: bool = True
    #: Dotted path of the task's own hook, called with the result after saving.
    hook: str | None = None
    #: The timeout in seconds when the task was killed for running past it.
    timed_out: float | None = None
    #: Why the payload was quarantined.
    reason: str = ""
    #: The delivery itself, on a quarantine (its payload may have to be kept in the store).
    message: Message | None = None


class Hub:
    """A Unix-socket listener whose connections, plus any watched pipes, share one selector."""

    def __init__(self, address: str, authkey: bytes) -> None:
        if os.path.exists(address):
            os.unlink(address)  # left behind by a predecessor that died
        self.listener = Listener(address, "AF_UNIX", authkey=authkey)
        self.connections: list[Connection] = []
        self._selector = selectors.DefaultSelector()
        self._arrivals: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        threading.Thread(target=self._accept, name="accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection = self.listener.accept()
            except Exception:  # a client that fails the handshake, or the listener closing
                continue
            self._arrivals.put(connection)
            self.wake()

    def wake(self) -> None:
        """Make a pending :meth:`wait` return (safe from any thread)."""
        os.write(self._wake_w, b"!")

    def watch(self, obj: Any) -> None:
        """Also wait for ``obj`` (anything with ``fileno()``) to become readable."""
        self._selector.register(obj, selectors.EVENT_READ)

    def unwatch(self, obj: Any) -> None:
        """Stop waiting for ``obj``."""
        self._selector.unregister(obj)

    def wait(self, timeout: float | None) -> tuple[list[Connection], list[Any]]:
        """Wait for input; return ``(new connections, readable objects)``."""
        ready = []
        for key, _ in self._selector.select(timeout):
            if key.fileobj == self._wake_r:
                os.read(self._wake_r, 4096)
            else:
                ready.append(key.fileobj)
        arrived = []
        while not self._arrivals.empty():
            connection = self._arrivals.get()
            self._selector.register(connection, selectors.EVENT_READ)
            arrived.append(connection)
        self.connections.extend(arrived)
        return arrived, ready

    def drop(self, connection: Connection) -> None:
        """Forget a connection that reached its end."""
        if connection in self.connections:
            self.connections.remove(connection)
            self._selector.unregister(connection)
        connection.close()

    def close(self) -> None:
        """Stop listening."""
        self._closed = True
        self.listener.close()
        self._selector.close()


def connect(address: str, authkey: bytes, give_up: Callable[[], bool], timeout: float = 60.0) -> Connection:
    """Connect to a :class:`Hub`, retrying while it starts (or restarts) for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            return Client(address, "AF_UNIX", authkey=authkey)
        except (FileNotFoundError, ConnectionRefusedError):
            if give_up() or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
