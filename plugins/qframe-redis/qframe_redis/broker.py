"""RedisBroker: an at-least-once queue on Redis lists, a lease sorted set and Lua scripts.

Layout of queue ``default`` with the default prefix (one hash tag, so one cluster slot)::

    qframe:{default}:ready         list  entries waiting; enqueue LPUSHes id+payload, dequeue RPOPs
    qframe:{default}:msg           hash  id -> payload (from the first delivery on)
    qframe:{default}:attempts      hash  id -> deliveries so far (the claim token)
    qframe:{default}:released      hash  id -> deliveries handed back unstarted (not attempts)
    qframe:{default}:leased        zset  id -> lease deadline in ms (server clock)
    qframe:{default}:delayed       zset  id -> due time in ms (server clock)
    qframe:{default}:dead          hash  id -> JSON of reason, attempts, last error, time
    qframe:{default}:dead:payload  hash  id -> payload of a quarantined message

Cluster heartbeats are the store's (:class:`qframe_redis.store.RedisStore`), not the broker's.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import redis.exceptions
from redis.cluster import RedisCluster

from qframe.brokers.base import Broker, Message
from qframe.errors import ConfigError
from qframe.stores.base import DeadLetter
from qframe_redis.connection import (
    DEFAULT_PREFIX,
    Client,
    block_cap,
    redacted,
)
from qframe_redis.letters import letter_fields, read_letter
from qframe_redis.scripts import BROKER_SCRIPTS, Link

#: Longest single blocking call inside ``dequeue`` (seconds), so that due delayed
#: messages and expired leases are noticed while waiting.
BLOCK_CAP = 1.0
#: Messages per enqueue script call in ``enqueue_many``.
CHUNK = 1000


def queue_keys(prefix: str, queue: str) -> dict[str, str]:
    """The Redis keys of ``queue``, by role; all share the hash tag ``{queue}``."""
    tag = f"{prefix}:{{{queue}}}"
    roles = ("ready", "msg", "attempts", "released", "leased", "delayed", "dead", "dead:payload")
    return {role: f"{tag}:{role}" for role in roles}


def _split_ack_id(ack_id: str) -> tuple[str, str] | None:
    message_id, sep, token = ack_id.rpartition(":")
    return (message_id, token) if sep and message_id and token else None


def _pairs(ack_ids: Iterable[str]) -> list[str]:
    args: list[str] = []
    for ack_id in ack_ids:
        parts = _split_ack_id(ack_id)
        if parts is not None:
            args.extend(parts)
    return args


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBroker(Broker):
    """A queue on Redis (single server, Sentinel or Cluster) with leases and dead letters.

    ``options`` are redis-py keyword options plus ``prefix`` (key prefix, default
    ``qframe``) and ``cluster`` (True to treat a ``redis://`` URL as a cluster node).
    """

    fifo = True
    exact_sizes = True
    can_release = True
    #: Redis's default ``proto-max-bulk-len`` (512 MiB) less the 32-character id in front.
    max_payload = 512 * 1024 * 1024 - 32
    max_delay = None
    #: Leases and delays are kept in milliseconds of the server clock.
    lease_resolution = 0.001
    has_dead_letters = True
    blocking_dequeue = True
    conditional_claims = True

    def __init__(self, url: str | None, queue: str, *, lease: float = 60.0, **options: Any) -> None:
        """Describe the queue; nothing connects until the first call."""
        super().__init__(url, queue, lease=lease, **options)
        if not queue:
            raise ConfigError("the redis broker needs a non-empty queue name")
        if lease <= 0:
            raise ConfigError(f"lease must be positive, not {lease}")
        self.prefix = str(options.get("prefix") or DEFAULT_PREFIX)
        self.keys = queue_keys(self.prefix, queue)
        self._link = Link(url, self.options, "redis broker", BROKER_SCRIPTS, "broker_common")

    # -- plumbing ----------------------------------------------------------------------
    @property
    def client(self) -> Client:
        """The redis-py client, connected on first use."""
        return self._link.client

    def _run(self, name: str, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        return self._link.run(name, [self.keys[k] for k in keys], list(args))

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return self._link.errors()

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self.lease * 1000))

    # -- producing -----------------------------------------------------------------------
    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Store ``payload`` (visible after ``delay`` seconds) and return its message id.

        A message due now is one LPUSH of its id and payload: the cheapest write Redis has.
        """
        message_id = os.urandom(16).hex()
        with self._errors():
            if delay > 0:
                self._run("enqueue", ("delayed", "msg"), (round(delay * 1000), message_id, payload))
            else:
                self._link.command("LPUSH", self.keys["ready"], message_id.encode() + payload)
        return message_id

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Store several payloads with one LPUSH per 1000; return their ids in order."""
        ids = [os.urandom(16).hex() for _ in payloads]
        entries = [message_id.encode() + payload for message_id, payload in zip(ids, payloads, strict=True)]
        with self._errors():
            for start in range(0, len(entries), CHUNK):
                self.client.lpush(self.keys["ready"], *entries[start : start + CHUNK])
        return ids

    # -- consuming -----------------------------------------------------------------------
    def _claim(self, count: int) -> tuple[list[Message], int]:
        reply = self._run(
            "dequeue", ("ready", "leased", "delayed", "msg", "attempts", "released"), (count, self._lease_ms)
        )
        messages = []
        for i in range(1, len(reply), 5):
            message_id = _text(reply[i])  # the script hands out hex ids only, malformed entries too
            messages.append(
                Message(
                    ack_id=f"{message_id}:{int(reply[i + 1])}",
                    payload=bytes(reply[i + 3]),
                    attempts=int(reply[i + 2]),
                    message_id=message_id,
                    malformed=_text(reply[i + 4]),
                )
            )
        return messages, int(reply[0])

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Lease up to ``count`` messages in one script call, blocking up to ``wait`` s.

        While waiting it blocks on the ready list itself with ``BLMOVE ready ready RIGHT
        RIGHT`` (a rotation that changes nothing, so an arriving message wakes every
        waiting consumer without being taken), for at most a second at a time and never
        past the moment a delayed message is due or a lease runs out; then it claims again.
        """
        if count <= 0:
            return []
        deadline = time.monotonic() + max(0.0, wait)
        cap = block_cap(self.url, self.options, BLOCK_CAP)
        with self._errors():
            while True:
                messages, next_ms = self._claim(count)
                left = deadline - time.monotonic()
                if messages or left <= 0:
                    return messages
                block = min(left, cap)
                if next_ms >= 0:
                    block = min(block, next_ms / 1000)
                ready = self.keys["ready"]
                timeout = cast("int", max(block, 0.01))  # Redis takes fractions; the stub says int
                self._link.command("BLMOVE", ready, ready, "RIGHT", "RIGHT", timeout)

    def ack(self, ack_id: str) -> None:
        """Remove the message of this delivery; a stale or repeated ack does nothing."""
        self.ack_many([ack_id])

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Acknowledge several deliveries in one script call."""
        args = _pairs(ack_ids)
        if args:
            with self._errors():
                self._run("ack", ("leased", "msg", "attempts", "released"), args)

    def nack(self, ack_id: str) -> None:
        """Put the message of this delivery back at the front of the queue at once."""
        self._hand_back([ack_id], counted=True)

    def release(self, ack_ids: Sequence[str]) -> None:
        """Hand back deliveries that never started, without counting them as attempts."""
        self._hand_back(ack_ids, counted=False)

    def _hand_back(self, ack_ids: Iterable[str], counted: bool) -> None:
        args = _pairs(ack_ids)
        if args:
            with self._errors():
                self._run(
                    "nack", ("leased", "attempts", "ready", "released"), ["0" if counted else "1", *args]
                )

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the lease of these deliveries (those still holding it) in one call."""
        args = _pairs(ack_ids)
        if args:
            with self._errors():
                self._run("touch", ("leased", "attempts"), [self._lease_ms, *args])

    def quarantine(self, ack_id: str, reason: str, attempts: int = 0, last_error: str = "") -> None:
        """Move the message of this delivery to the queue's dead letters with ``reason``."""
        parts = _split_ack_id(ack_id)
        if parts is not None:
            with self._errors():
                keys = ("leased", "msg", "attempts", "dead", "dead:payload", "released")
                self._run("quarantine", keys, (*parts, letter_fields(reason, attempts, last_error)))

    def dead_letters(self) -> list[DeadLetter]:
        """The quarantined messages of this queue (hash order: no promised order)."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys["dead"])
            pipe.hgetall(self.keys["dead:payload"])
            values, payloads = pipe.execute()
        return [
            read_letter(message_id, value, payloads[message_id])
            for message_id, value in values.items()
            if message_id in payloads
        ]

    def remove_dead_letters(self, message_ids: Sequence[str]) -> int:
        """Delete these dead letters (fields and payloads) in one transaction."""
        if not message_ids:
            return 0
        with self._errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(self.keys["dead"], *message_ids)
            pipe.hdel(self.keys["dead:payload"], *message_ids)
            removed, _ = pipe.execute()
        return int(removed)

    # -- bookkeeping -----------------------------------------------------------------------
    def _sizes(self) -> tuple[int, int]:
        with self._errors():
            waiting, leased = self._run("sizes", ("ready", "leased", "delayed"))
        return int(waiting), int(leased)

    def queue_size(self) -> int:
        """Messages waiting: ready, delayed, and leased ones whose lease ran out."""
        return self._sizes()[0]

    def lock_size(self) -> int:
        """Messages whose lease is running now."""
        return self._sizes()[1]

    def purge(self) -> None:
        """Delete every message of this queue, leased, delayed or dead."""
        with self._errors():
            self.client.delete(*self.keys.values())

    def ping(self) -> bool:
        """Return True when the server answers; raise BrokerError (within seconds) if not."""
        with self._errors():
            return bool(self.client.ping())

    def warnings(self) -> list[str]:
        """A line per server whose ``maxmemory-policy`` may evict queued messages."""
        lines = []
        with self._errors():
            client = self.client
            nodes: list[tuple[str, Any]]
            if isinstance(client, RedisCluster):
                primaries = client.get_primaries()  # type: ignore[no-untyped-call]
                nodes = [(n.name, client.get_redis_connection(n)) for n in primaries]
            else:
                nodes = [(redacted(self.url), client)]
            for name, node in nodes:
                try:
                    reply = node.config_get("maxmemory-policy")
                except redis.exceptions.ResponseError:
                    continue  # CONFIG disabled or renamed (managed Redis): cannot tell
                policy = _text(next(iter(reply.values()), b"")) if reply else ""
                if policy and policy != "noeviction":
                    lines.append(
                        f"redis at {name} has maxmemory-policy {policy}: when memory runs out it "
                        "evicts keys and queued tasks are lost; set maxmemory-policy noeviction"
                    )
        return lines

    def info(self) -> str:
        """One line describing the broker (password hidden)."""
        return f"RedisBroker {redacted(self.url)} queue={self.queue} prefix={self.prefix}"

    def close(self) -> None:
        """Release the connections."""
        self._link.close()
