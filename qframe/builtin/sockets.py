"""Unix-socket channels between cluster processes, for the ``prefork`` process manager.

Each worker has its own connection to the pusher, and the pusher its own to the monitor:
a process killed mid-read only breaks its own connection, never a lock that the others
need (Django Q2's shared queue could wedge the whole cluster that way).
"""

from __future__ import annotations

import os
import queue
import select
import selectors
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from typing import Any


class SocketChannel(Connection):
    """A connection whose ``poll()`` without a timeout is one ``poll(2)`` call.

    ``Connection.poll`` builds a selector per call (2.3 µs against 0.3 µs); the pusher
    and the monitor ask it after every message they read, to drain what is waiting.
    """

    def __init__(self, connection: Connection) -> None:
        super().__init__(os.dup(connection.fileno()))
        connection.close()
        self._readable = select.poll()
        self._readable.register(self.fileno(), select.POLLIN)

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether a message (or the end of the connection) is waiting, within ``timeout`` s."""
        if timeout == 0.0 and not self.closed:
            return bool(self._readable.poll(0))
        return super().poll(timeout)


class SocketHub:
    """A Unix-socket listener whose connections, plus any watched pipes, share one selector."""

    def __init__(self, address: str, authkey: bytes) -> None:
        if os.path.exists(address):
            os.unlink(address)  # left behind by a predecessor that died
        self.listener = Listener(address, "AF_UNIX", authkey=authkey)
        self.connections: list[Any] = []
        self._selector = selectors.DefaultSelector()
        self._arrivals: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._closed = False
        threading.Thread(target=self._accept, name="accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                connection = SocketChannel(self.listener.accept())
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

    def wait(self, timeout: float | None) -> tuple[list[Any], list[Any]]:
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

    def drop(self, connection: Any) -> None:
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


def connect(
    address: str, authkey: bytes, give_up: Callable[[], bool], timeout: float = 60.0
) -> SocketChannel:
    """Connect to a :class:`SocketHub`, retrying while it starts (or restarts) for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            return SocketChannel(Client(address, "AF_UNIX", authkey=authkey))
        except (FileNotFoundError, ConnectionRefusedError):
            if give_up() or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
