"""The client side of systemd's notification protocol (``sd_notify``), with the stdlib socket.

A service manager that wants to hear from its service passes the address of an
``AF_UNIX`` datagram socket in ``NOTIFY_SOCKET``: a file system path, or an abstract
address written with a leading ``@``. Each notification is one datagram of
newline-separated ``KEY=VALUE`` assignments (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``,
``STOPPING=1``).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("qframe")

#: The environment variable that carries the service manager's socket address.
NOTIFY_SOCKET = "NOTIFY_SOCKET"


def socket_address(value: str) -> str | None:
    """The ``AF_UNIX`` address for a ``NOTIFY_SOCKET`` value; None when it is not one.

    ``@name`` is the abstract address ``\\0name``; an absolute path is used as it is.
    Other forms (``vsock:...``, relative paths) are not supported here.
    """
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


class NotifySocket:
    """Sends notifications to the service manager named by ``NOTIFY_SOCKET``.

    Built from the environment; :attr:`enabled` is false when the variable is unset or
    names no supported address. A notification that cannot be delivered at once (nobody
    listens, or the listener's queue is full) is dropped, with one WARNING line until one
    is delivered again: the service manager never stops or stalls the cluster.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        value = (os.environ if environ is None else environ).get(NOTIFY_SOCKET, "")
        self.address = socket_address(value) if value else None
        if value and self.address is None:
            log.warning(
                "%s=%r is not a supported address (an absolute path or @abstract); "
                "not notifying the service manager",
                NOTIFY_SOCKET,
                value,
            )
        self._socket: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """Whether there is a service manager to notify."""
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send ``fields`` as one datagram (``send(READY="1")``); return whether it was delivered."""
        if self.address is None or not fields:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            if self._socket is None:
                # non-blocking: a service manager that stops reading must never stall the sentinel
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                self._socket = socket.socket(socket.AF_UNIX, kind)
            self._socket.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify the service manager at %s: %s", self.address.lstrip("\0"), exc)
            return False
        self._warned = False
        return True

    def close(self) -> None:
        """Close the socket, if it was opened."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
