"""A stand-in for systemd's notification socket, for tests of ``NOTIFY_SOCKET`` senders.

Bind a :class:`NotifyListener`, pass its :attr:`~NotifyListener.address` to a cluster in
``NOTIFY_SOCKET``, and wait for what it sends (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``,
``STOPPING=1``), as systemd receives it for a ``Type=notify`` service.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

from qframe.notify_socket import socket_address


class NotifyListener:
    """A bound ``AF_UNIX`` datagram socket that records every notification it receives.

    ``address`` is a file system path, or ``@name`` for an abstract address. Call
    :meth:`close` at the end (it also removes the socket file).
    """

    def __init__(self, address: str) -> None:
        bound = socket_address(address)
        if bound is None:
            raise ValueError(f"not a NOTIFY_SOCKET address: {address!r}")
        self.address = address
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(bound)
        self.socket.settimeout(0.2)
        self.messages: list[dict[str, str]] = []
        self._changed = threading.Condition()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            with self._changed:
                self.messages.append(fields)
                self._changed.notify_all()

    def values(self, key: str, since: int = 0) -> list[str]:
        """Every value of ``key`` received, from message number ``since`` on."""
        with self._changed:
            return [m[key] for m in self.messages[since:] if key in m]

    def wait_for(self, key: str, value: str | None = None, since: int = 0, timeout: float = 40.0) -> int:
        """Wait for a message with ``key`` (containing ``value``); return its position."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for position in range(since, len(self.messages)):
                    found = self.messages[position].get(key)
                    if found is not None and (value is None or value in found):
                        return position
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {key}={value or ''}... in {self.messages}")
                self._changed.wait(min(left, 0.2))

    def flush(self, timeout: float = 40.0) -> int:
        """Wait until every datagram sent before this call was read; return the count before it.

        It sends a marker to the socket and waits for it: datagrams on one Unix socket
        arrive in order, so what a test finds missing afterwards was never sent.
        """
        marker = uuid.uuid4().hex
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(f"FLUSH={marker}".encode(), self.socket.getsockname())
        position = self.wait_for("FLUSH", marker, timeout=timeout)
        with self._changed:
            del self.messages[position]
        return position

    def count(self) -> int:
        """Messages received so far."""
        with self._changed:
            return len(self.messages)

    def close(self) -> None:
        """Stop reading and close the socket (and its file)."""
        self._closed = True
        self._reader.join(5)
        self.socket.close()
        if not self.address.startswith("@"):
            Path(self.address).unlink(missing_ok=True)
