"""MongoBroker: an at-least-once queue in one MongoDB collection per queue.

Queue ``default`` with the default prefix lives in the collection ``qframe.queue.default``;
each message is one document (all times are integer epoch milliseconds)::

    {_id, payload, visible_at, lease_until, owner, attempts, enqueued}

A message can be claimed while ``visible_at <= now``. A claim sets ``visible_at`` and
``lease_until`` to the end of the lease, ``$inc``s ``attempts`` and writes a new random
``owner`` token, which is the delivery's ack id. ``ack``, ``nack``, ``touch`` and
``release`` match ``{owner: token}``, so after a lease ran out and another consumer claimed
the message again, the first consumer's calls match no document.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import pymongo
import pymongo.errors
from bson import Binary, ObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.change_stream import CollectionChangeStream
from pymongo.collection import Collection

from qframe.brokers.base import Broker, Message
from qframe.errors import BrokerError, ConfigError
from qframe_mongo.connection import DEFAULT_PREFIX, Document, Link, now_ms, redacted

log = logging.getLogger("qframe.mongo")

#: Messages per insert in ``enqueue_many``.
CHUNK = 1000
#: Longest server-side wait of one change-stream ``getMore`` (ms): a dequeue gives up on time.
AWAIT_MS = 250
#: Seconds a change stream may go unread before a waiting dequeue opens a fresh one.
STREAM_STALE = 1.0
#: Error codes of a server that cannot open change streams (not a replica set, or a stage it lacks).
NO_CHANGE_STREAMS = frozenset({40573, 40324, 136, 303})
#: A change that can make a message claimable: an insert, or a nack/release (``lease_until`` 0).
WAKE_PIPELINE: list[dict[str, Any]] = [
    {
        "$match": {
            "$or": [
                {"operationType": "insert"},
                {"operationType": "update", "updateDescription.updatedFields.lease_until": 0},
            ]
        }
    }
]


def queue_collection(prefix: str, queue: str) -> str:
    """The name of ``queue``'s collection."""
    return f"{prefix}.queue.{queue}"


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _malformed(document: Document) -> str:
    """Why a claimed document is not a message ``enqueue`` wrote ("" for a good one)."""
    if not isinstance(document.get("_id"), str):
        return f"malformed entry: _id is a {type(document.get('_id')).__name__}, not a message id string"
    if "payload" not in document:
        return "malformed entry: the document has no payload"
    if not isinstance(document["payload"], bytes):
        return f"malformed entry: payload stored as {type(document['payload']).__name__}, not as binary"
    return ""


def _raw_payload(document: Document) -> bytes:
    payload = document.get("payload")
    if isinstance(payload, bytes):
        return bytes(payload)
    return b"" if payload is None else repr(payload).encode()


class MongoBroker(Broker):
    """A queue in a MongoDB collection, claimed atomically with ``find_one_and_update``.

    ``options`` are pymongo keyword options plus ``prefix`` (collection prefix, default
    ``qframe``) and ``change_streams`` (``auto``: block on a change stream where the
    server supports one, else poll every ``poll`` s; ``false``: always poll).
    """

    fifo = True
    exact_sizes = True
    can_release = True
    #: MongoDB's 16 MiB document limit less room for the other fields.
    max_payload = 16 * 1024 * 1024 - 16 * 1024
    max_delay = None
    #: Times are integer milliseconds.
    lease_resolution = 0.001
    #: The core keeps dead letters in the result store (the Mongo store fills that role).
    has_dead_letters = False
    blocking_dequeue = True
    conditional_claims = True

    def __init__(self, url: str | None, queue: str, *, lease: float = 60.0, **options: Any) -> None:
        """Describe the queue; nothing connects until the first call."""
        super().__init__(url, queue, lease=lease, **options)
        if not queue:
            raise ConfigError("the mongo broker needs a non-empty queue name")
        if lease <= 0:
            raise ConfigError(f"lease must be positive, not {lease}")
        self.prefix = str(options.get("prefix") or DEFAULT_PREFIX)
        mode = str(options.get("change_streams", "auto")).strip().lower()
        if mode not in ("auto", "true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ConfigError(f"mongo broker option change_streams must be auto, true or false, not {mode!r}")
        #: Whether to try change streams (``None`` until the server said whether it has them).
        self.change_streams: bool | None = None if mode == "auto" else _truthy(mode)
        self._link = Link(url, self.options, "mongo broker", BrokerError)
        self._indexed = False
        self._stream: CollectionChangeStream[Document] | None = None
        self._stream_pid = 0
        #: When the stream was last read to the present (``time.monotonic()``).
        self._stream_read = 0.0

    # -- plumbing ----------------------------------------------------------------------
    @property
    def collection(self) -> Collection[Document]:
        """The queue's collection; its indexes are created on first use."""
        collection = self._link.collection(queue_collection(self.prefix, self.queue))
        if not self._indexed:
            with self._link.errors():
                collection.create_index([("visible_at", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)])
                collection.create_index("owner")
                collection.create_index("lease_until")
            self._indexed = True
        return collection

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self.lease * 1000))

    @staticmethod
    def _token() -> str:
        return os.urandom(16).hex()

    def _claim_update(self, token: str, now: int) -> dict[str, Any]:
        until = now + self._lease_ms
        return {"$set": {"visible_at": until, "lease_until": until, "owner": token}, "$inc": {"attempts": 1}}

    @staticmethod
    def _message(document: Document) -> Message:
        message_id = document["_id"]
        return Message(
            ack_id=str(document["owner"]),
            payload=_raw_payload(document),
            attempts=int(document.get("attempts") or 0),
            message_id=message_id if isinstance(message_id, str) else str(message_id),
            malformed=_malformed(document),
        )

    # -- producing -----------------------------------------------------------------------
    def _document(self, payload: bytes, now: int, delay: float = 0.0) -> Document:
        return {
            "_id": str(ObjectId()),  # time-ordered within a process: FIFO ties break on it
            "payload": Binary(payload),
            "visible_at": now + max(0, round(delay * 1000)),
            "lease_until": 0,
            "owner": None,
            "attempts": 0,
            "enqueued": now,
        }

    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Insert ``payload`` (claimable after ``delay`` seconds) and return its message id."""
        document = self._document(payload, now_ms(), delay)
        with self._link.errors():
            self.collection.insert_one(document)
        return str(document["_id"])

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Insert several payloads, 1000 per round trip; return their ids in order."""
        now = now_ms()
        documents = [self._document(payload, now) for payload in payloads]
        with self._link.errors():
            for start in range(0, len(documents), CHUNK):
                self.collection.insert_many(documents[start : start + CHUNK], ordered=True)
        return [str(d["_id"]) for d in documents]

    # -- consuming -----------------------------------------------------------------------
    def _claim(self, count: int) -> list[Message]:
        now = now_ms()
        order = [("visible_at", pymongo.ASCENDING), ("_id", pymongo.ASCENDING)]
        due = {"visible_at": {"$lte": now}}
        with self._link.errors():
            if count == 1:
                token = self._token()
                document = self.collection.find_one_and_update(
                    due, self._claim_update(token, now), sort=order, return_document=ReturnDocument.AFTER
                )
                return [] if document is None else [self._message(document)]
            candidates = [d["_id"] for d in self.collection.find(due, {"_id": 1}).sort(order).limit(count)]
            if not candidates:
                return []
            tokens = [self._token() for _ in candidates]
            # One conditional update per candidate: each stays atomic, and a candidate another
            # consumer claimed in between no longer matches ``visible_at <= now``.
            self.collection.bulk_write(
                [
                    UpdateOne({"_id": _id, **due}, self._claim_update(token, now))
                    for _id, token in zip(candidates, tokens, strict=True)
                ],
                ordered=False,
            )
            claimed = {d["owner"]: d for d in self.collection.find({"owner": {"$in": tokens}})}
        return [self._message(claimed[token]) for token in tokens if token in claimed]

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Lease up to ``count`` messages, waiting up to ``wait`` s for the first.

        While waiting it blocks on a change stream of the collection (inserts and returned
        messages wake it) where the server has change streams, else it polls every ``poll``
        seconds; either way it claims again when a delayed message becomes due or a lease
        runs out.
        """
        if count <= 0:
            return []
        deadline = time.monotonic() + max(0.0, wait)
        if wait > 0:
            self._open_stream()  # before the claim: a message inserted after it wakes the wait
        while True:
            messages = self._claim(count)
            left = deadline - time.monotonic()
            if messages or left <= 0:
                return messages
            self._await_change(min(left, self._until_next_due()))

    def _until_next_due(self) -> float:
        """Seconds until the earliest message not claimable now becomes claimable (inf if none)."""
        with self._link.errors():
            first = self.collection.find_one({}, {"visible_at": 1}, sort=[("visible_at", pymongo.ASCENDING)])
        if first is None or not isinstance(first.get("visible_at"), int):
            return float("inf")
        return max(0.001, (int(first["visible_at"]) - now_ms()) / 1000)

    def _open_stream(self) -> None:
        """Open the change stream, or reopen one left unread for a while.

        A stream left unread while the queue was busy holds a change per message enqueued
        since; each would cost a claim when the queue goes idle. Reopening it starts at now.
        """
        if self.change_streams is False:
            return
        if self._stream is not None and self._stream_pid == os.getpid():
            if time.monotonic() - self._stream_read <= STREAM_STALE:
                return
            self._close_stream()
        try:
            self._stream = self.collection.watch(WAKE_PIPELINE, max_await_time_ms=AWAIT_MS)
            self._stream_pid = os.getpid()
            self._stream_read = time.monotonic()
            if self.change_streams is None:
                self.change_streams = True
                log.debug("mongo broker %s: dequeue blocks on a change stream", self.queue)
        except pymongo.errors.OperationFailure as exc:
            if exc.code not in NO_CHANGE_STREAMS:
                raise BrokerError(f"mongo broker at {redacted(self.url)} failed: {exc}") from exc
            self.change_streams = False
            log.info(
                "mongo server at %s has no change streams: dequeue polls every %g s",
                redacted(self.url),
                self.poll,
            )
        except pymongo.errors.PyMongoError:
            self._stream = None  # the claim that follows reports the outage

    def _await_change(self, timeout: float) -> None:
        """Block until a change may have made a message claimable, or ``timeout`` s passed."""
        deadline = time.monotonic() + timeout
        if self._stream is None or self._stream_pid != os.getpid():
            time.sleep(max(0.0, min(timeout, self.poll)))
            return
        try:
            while time.monotonic() < deadline:
                change = self._stream.try_next()
                self._stream_read = time.monotonic()
                if change is not None:
                    return
        except pymongo.errors.PyMongoError:
            self._close_stream()  # reopened by the next dequeue; the claim reports an outage

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and self._stream_pid == os.getpid():
            with contextlib.suppress(pymongo.errors.PyMongoError):
                stream.close()

    def ack(self, ack_id: str) -> None:
        """Delete the message of this delivery; a stale or repeated ack matches nothing."""
        self.ack_many([ack_id])

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Delete the messages of several deliveries in one round trip."""
        tokens = list(dict.fromkeys(ack_ids))
        if tokens:
            with self._link.errors():
                self.collection.delete_many({"owner": {"$in": tokens}})

    def nack(self, ack_id: str) -> None:
        """Make the message of this delivery claimable at once."""
        self._hand_back([ack_id], counted=True)

    def release(self, ack_ids: Sequence[str]) -> None:
        """Hand back deliveries that never started, undoing their delivery count."""
        self._hand_back(ack_ids, counted=False)

    def _hand_back(self, ack_ids: Iterable[str], counted: bool) -> None:
        tokens = list(dict.fromkeys(ack_ids))
        if not tokens:
            return
        update: dict[str, Any] = {"$set": {"visible_at": now_ms(), "lease_until": 0, "owner": None}}
        if not counted:
            update["$inc"] = {"attempts": -1}
        with self._link.errors():
            self.collection.update_many({"owner": {"$in": tokens}}, update)

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the lease of these deliveries (those whose claim still holds) in one round trip."""
        tokens = list(dict.fromkeys(ack_ids))
        if tokens:
            until = now_ms() + self._lease_ms
            with self._link.errors():
                self.collection.update_many(
                    {"owner": {"$in": tokens}}, {"$set": {"visible_at": until, "lease_until": until}}
                )

    # -- bookkeeping -----------------------------------------------------------------------
    def queue_size(self) -> int:
        """Messages waiting: due, delayed, and leased ones whose lease ran out."""
        with self._link.errors():
            return self.collection.count_documents({"lease_until": {"$not": {"$gt": now_ms()}}})

    def lock_size(self) -> int:
        """Messages whose lease is running now."""
        with self._link.errors():
            return self.collection.count_documents({"lease_until": {"$gt": now_ms()}})

    def purge(self) -> None:
        """Delete every message of this queue, leased or not."""
        with self._link.errors():
            self.collection.delete_many({})

    def ping(self) -> bool:
        """Run the server's ``ping`` command; raise BrokerError (within seconds) if it does not answer."""
        return self._link.ping()

    def warnings(self) -> list[str]:
        """A line when the client's write concern is unacknowledged (``w=0``): tasks can be lost."""
        if self._link.client.write_concern.acknowledged:
            return []
        return [
            f"mongo broker at {redacted(self.url)} uses write concern w=0: enqueues and acks are "
            "not acknowledged, so tasks can be lost or run twice; use w=1 or w='majority'"
        ]

    def info(self) -> str:
        """One line describing the broker (password hidden)."""
        return f"MongoBroker {redacted(self.url)} queue={self.queue} prefix={self.prefix}"

    def close(self) -> None:
        """Close the change stream and the client."""
        self._close_stream()
        self._link.close()
