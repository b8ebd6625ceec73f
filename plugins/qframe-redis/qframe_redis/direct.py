"""A connection of one's own beside redis-py's pool, for the calls on every task's path.

redis-py 8 wraps each command in a pool checkout and release, a retry frame, event
dispatch and metrics recording; on loopback that costs more than the round trip itself
(a bare ``LPUSH`` loop measured 100 to 117 µs per call through ``Redis.lpush`` and 31 to
40 µs on one connection, see ``docs/performance.md``). :class:`DirectLine` keeps one
connection per broker or store object (a new one after a fork) and sends commands on it
straight away. It is used only when it is free and the client is a plain single-server
one: another thread that finds it busy, a server that went away, or a script the server
does not know yet all take the client's own path, with its pool and retries, so
behaviour on errors is the client's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions

from qframe_redis.connection import Client

T = TypeVar("T")

#: Errors after which the connection is dropped and the call goes the client's way.
LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class DirectLine:
    """One connection of ``client``'s kind, used by one thread at a time, else the fallback."""

    def __init__(self, client: Client) -> None:
        """Describe the line; it connects on first use, and only for a plain ``redis.Redis``."""
        pool = getattr(client, "connection_pool", None)
        # Sentinel pools re-resolve the master and clusters route by slot: those keep the pool.
        self.usable = isinstance(client, redis.Redis) and type(pool) is redis.ConnectionPool
        self._pool = pool
        options = getattr(pool, "connection_kwargs", {})
        #: The client encodes text as :func:`pack` does (redis-py's default), so :func:`pack` may pack for it.
        self._utf8 = (
            options.get("encoding", "utf-8") == "utf-8"
            and options.get("encoding_errors", "strict") == "strict"
        )
        self._lock = threading.Lock()
        self._connection: Any = None  # an AbstractConnection; redis-py leaves its methods untyped
        self._pid = os.getpid()

    def call(self, fallback: Callable[[], T], *command: Any) -> T | Any:
        """The raw reply to ``command`` sent on the line, or ``fallback()`` when it cannot be.

        A reply that is an error (``ResponseError``) is raised as redis-py raises it, except
        ``NOSCRIPT``, which the fallback's script call handles by loading the script.
        """
        if not self.usable or not self._lock.acquire(blocking=False):
            return fallback()
        try:
            connection = self._connect()
            try:
                packed = pack(*command) if self._utf8 else None
                chunks = [packed] if packed is not None else connection.pack_command(*command)
                connection.send_packed_command(chunks, check_health=False)
                return connection.read_response()
            except (*LOST, redis.exceptions.NoScriptError) as exc:
                if not isinstance(exc, redis.exceptions.NoScriptError):
                    connection.disconnect()
                return fallback()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the connection (a new one is made on the next call)."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.disconnect()
            self._connection = None

    def _connect(self) -> Any:
        if self._pid != os.getpid():  # forked: the parent's socket is not ours to use or close
            self._connection, self._pid = None, os.getpid()
        if self._connection is None:
            assert isinstance(self._pool, redis.ConnectionPool)
            self._connection = self._pool.connection_class(**self._pool.connection_kwargs)
        return self._connection


def pack(*command: Any) -> bytes | None:
    """``command`` in RESP, as redis-py's encoder writes it with UTF-8; None if it cannot tell.

    redis-py's packer checks and converts each argument through several calls: 84 µs for
    the 146 arguments of saving ten results, against 26 µs here. Arguments of exactly
    ``bytes``, ``str``, ``int`` or ``float`` are packed (numbers as their ``repr``, as
    redis-py does); anything else (a bool, a subclass, a command name with a space that
    redis-py would split) returns None, and redis-py packs it or raises its own error.
    """
    if not command or " " in str(command[0]):
        return None
    parts = [b"*%d\r\n" % len(command)]
    for argument in command:
        kind = type(argument)
        if kind is bytes:
            data = argument
        elif kind is str:
            data = argument.encode()
        elif kind is int or kind is float:
            data = repr(argument).encode()
        else:
            return None
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)
