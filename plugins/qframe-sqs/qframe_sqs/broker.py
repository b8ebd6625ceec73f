"""SqsBroker: qframe's delivery contract on an Amazon SQS queue (standard or FIFO).

A payload travels base64-encoded as the message body. The visibility timeout is the
lease (``ReceiveMessage`` sets it per call, ``ChangeMessageVisibilityBatch`` renews it),
``ApproximateReceiveCount`` is the attempt count, and the receipt handle is the ack id.
SQS keeps no results and no dead letters of qframe's kind: the configured store holds
both (``has_dead_letters = False``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from qframe.brokers.base import Broker, Message
from qframe.errors import BrokerError, ConfigError
from qframe_sqs.connection import (
    PERMANENT_CODES,
    QueueMissing,
    error_code,
    errors,
    make_client,
    parse,
    redacted,
)

#: SQS's limit on one message body, and on the bodies of one batch.
BODY_LIMIT = 256 * 1024
#: Entries per SendMessageBatch / DeleteMessageBatch / ChangeMessageVisibilityBatch call.
BATCH = 10
#: SQS's longest long poll, in seconds.
LONGEST_POLL = 20
#: Tries of a batch's failed entries before ``enqueue_many`` gives up.
BATCH_TRIES = 3


def _flag(value: Any) -> bool:
    return str(value).strip().lower() not in ("0", "false", "no", "off")


class SqsBroker(Broker):
    """A queue on Amazon SQS (or an SQS-compatible endpoint) through boto3.

    Options (from ``broker_options`` or the URL's query string): ``region``,
    ``endpoint_url``, ``create_queue`` (default true), ``wait_time_seconds`` (longest long
    poll, up to 20), ``message_group`` (FIFO queues: the ``MessageGroupId``, default
    ``qframe``, so one group keeps the enqueue order), ``dead_letter_queue`` and
    ``max_receive_count`` (a redrive policy set when the queue is created).
    """

    #: A standard queue does not keep order (FIFO queues are :class:`SqsFifoBroker`'s).
    fifo = False
    exact_sizes = False
    #: SQS cannot undo a receive count: ``release`` makes the message visible, counted.
    can_release = False
    #: 256 KiB of body, which base64 fills with 3 bytes of payload per 4 characters.
    max_payload = BODY_LIMIT // 4 * 3
    max_delay = 900.0
    lease_resolution = 1.0
    has_dead_letters = False
    blocking_dequeue = True
    #: SQS honours a stale receipt handle, and a standard queue may deliver a message twice.
    conditional_claims = False

    def __init__(self, url: str | None, queue: str, *, lease: float = 60.0, **options: Any) -> None:
        """Describe the queue; nothing is sent until the first call."""
        super().__init__(url, queue, lease=lease, **options)
        if lease <= 0 or lease > 43200:
            raise ConfigError(f"the sqs broker's lease must be between 1 and 43200 s, not {lease}")
        self.location, query = parse(url, queue, options)
        if self.location.fifo != type(self).fifo:
            if not type(self).fifo:
                raise ConfigError(
                    f'SQS queue {self.location.name} is a FIFO queue: set broker = "sqs-fifo" for it'
                )
            self.location = dataclasses.replace(self.location, name=self.location.name + ".fifo")
        settings = {**query, **options}
        self.create_queue = _flag(settings.get("create_queue", True))
        self.longest_poll = min(LONGEST_POLL, max(0, int(settings.get("wait_time_seconds", LONGEST_POLL))))
        self.message_group = str(settings.get("message_group") or "qframe")
        self.dead_letter_queue = str(settings.get("dead_letter_queue") or "") or None
        self.max_receive_count = int(settings.get("max_receive_count", 5))
        self._client: Any = None
        self._queue_url = self.location.queue_url

    # -- plumbing ----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The boto3 SQS client, built on first use."""
        if self._client is None:
            self._client = make_client(self.location, self.longest_poll)
        return self._client

    @property
    def _lease_s(self) -> int:
        return min(43200, max(1, math.ceil(self.lease)))

    def _where(self) -> str:
        return (
            f"sqs queue {self.location.name} at {self.location.endpoint_url or self.location.region or 'aws'}"
        )

    @contextlib.contextmanager
    def _call(self) -> Iterator[None]:
        try:
            with errors(self._where()):
                yield
        except QueueMissing:
            if self.location.queue_url is None:
                self._queue_url = None  # look it up (and create it) again on the next call
            raise

    @property
    def queue_url(self) -> str:
        """The queue's URL, looked up (or created, with ``create_queue``) on first use."""
        if self._queue_url is None:
            with self._call():
                self._queue_url = self._resolve()
        return self._queue_url

    def _resolve(self) -> str:
        try:
            with errors(self._where()):
                return str(self.client.get_queue_url(QueueName=self.location.name)["QueueUrl"])
        except QueueMissing:
            if not self.create_queue:
                raise
        attributes = {"VisibilityTimeout": str(self._lease_s)}
        if self.location.fifo:
            attributes["FifoQueue"] = "true"
        if self.dead_letter_queue:
            attributes["RedrivePolicy"] = self._redrive_policy()
        reply = self.client.create_queue(QueueName=self.location.name, Attributes=attributes)
        return str(reply["QueueUrl"])

    def _redrive_policy(self) -> str:
        name = str(self.dead_letter_queue)
        attributes = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        dlq_url = self.client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
        return (
            f'{{"deadLetterTargetArn": "{arn["Attributes"]["QueueArn"]}", '
            f'"maxReceiveCount": "{self.max_receive_count}"}}'
        )

    # -- producing -----------------------------------------------------------------------
    def _entry(self, payload: bytes, delay: float) -> dict[str, Any]:
        entry: dict[str, Any] = {"MessageBody": base64.b64encode(payload).decode("ascii")}
        if self.location.fifo:
            if delay > 0:  # max_delay = 0: the core holds every delayed task in the store
                raise ConfigError("SQS FIFO queues take no per-message delay")
            entry["MessageGroupId"] = self.message_group
            # The same signed payload again within SQS's 5 minutes is the same task sent twice.
            entry["MessageDeduplicationId"] = hashlib.sha256(payload).hexdigest()
        elif delay > 0:
            entry["DelaySeconds"] = min(900, math.ceil(delay))
        return entry

    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Send one message (visible after ``delay`` s, up to 900) and return its MessageId."""
        entry = self._entry(payload, delay)
        with self._call():
            reply = self.client.send_message(QueueUrl=self.queue_url, **entry)
        return str(reply["MessageId"])

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Send with SendMessageBatch (10 messages and 256 KiB a call); return the ids in order."""
        entries = [self._entry(payload, 0.0) for payload in payloads]
        ids: list[str] = []
        for chunk in _chunks(entries):
            ids.extend(self._send_batch(chunk))
        return ids

    def _send_batch(self, entries: list[dict[str, Any]]) -> list[str]:
        pending = {str(i): entry for i, entry in enumerate(entries)}
        ids: dict[str, str] = {}
        failed: list[dict[str, Any]] = []
        for _ in range(BATCH_TRIES):
            with self._call():
                reply = self.client.send_message_batch(
                    QueueUrl=self.queue_url, Entries=[{"Id": key, **e} for key, e in pending.items()]
                )
            for done in reply.get("Successful", []):
                ids[done["Id"]] = done["MessageId"]
                pending.pop(done["Id"], None)
            failed = reply.get("Failed", [])
            if not pending:
                return [ids[str(i)] for i in range(len(entries))]
            if any(f.get("SenderFault") for f in failed):
                break
            time.sleep(0.2)
        reason = failed[0].get("Message") or failed[0].get("Code") if failed else "no reply"
        raise BrokerError(f"{self._where()}: {len(pending)} of {len(entries)} messages not sent: {reason}")

    # -- consuming -----------------------------------------------------------------------
    def _receive(self, count: int, poll: int) -> list[Message]:
        with self._call():
            reply = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=count,
                WaitTimeSeconds=poll,
                VisibilityTimeout=self._lease_s,
                AttributeNames=["ApproximateReceiveCount"],
            )
        return [_message(raw) for raw in reply.get("Messages", [])]

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Receive up to ``count`` messages, long polling up to ``wait`` s for the first.

        SQS hands out at most 10 per call and may hand out fewer, so this calls again
        (without waiting) until ``count`` arrived or a call brings nothing.
        """
        deadline = time.monotonic() + max(0.0, wait)
        got: list[Message] = []
        while len(got) < count:
            left = deadline - time.monotonic()
            poll = 0 if got or left < 1 else min(self.longest_poll, int(left))
            batch = self._receive(min(BATCH, count - len(got)), poll)
            got += batch
            if batch:
                continue
            if got or deadline - time.monotonic() <= 0:
                break
            if poll == 0:
                time.sleep(min(self.poll, max(0.0, deadline - time.monotonic())))
        return got

    def ack(self, ack_id: str) -> None:
        """Delete the message of this receipt handle."""
        self.ack_many([ack_id])

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Delete with DeleteMessageBatch, 10 a call; unknown handles are ignored."""
        handles = list(dict.fromkeys(ack_ids))
        for start in range(0, len(handles), BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles[start : start + BATCH])
            ]
            with self._call():
                self.client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def nack(self, ack_id: str) -> None:
        """Make the message visible again at once (visibility timeout 0)."""
        self._visibility([ack_id], 0)

    def release(self, ack_ids: Sequence[str]) -> None:
        """Make these messages visible again; SQS counts the receive all the same."""
        self._visibility(ack_ids, 0)

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the lease of these deliveries with ChangeMessageVisibilityBatch."""
        self._visibility(ack_ids, self._lease_s)

    def _visibility(self, ack_ids: Iterable[str], seconds: int) -> None:
        handles = list(dict.fromkeys(ack_ids))
        for start in range(0, len(handles), BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": seconds}
                for i, h in enumerate(handles[start : start + BATCH])
            ]
            # Entries whose handle is stale or already deleted fail alone: nothing to undo.
            with self._call():
                self.client.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)

    # -- bookkeeping -----------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
        ]
        with self._call():
            reply = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
        return {name: int(reply["Attributes"].get(name, 0)) for name in names}

    def queue_size(self) -> int:
        """Messages waiting, delayed ones included (SQS's approximate counts)."""
        counts = self._counts()
        return counts["ApproximateNumberOfMessages"] + counts["ApproximateNumberOfMessagesDelayed"]

    def lock_size(self) -> int:
        """Messages in flight (SQS's approximate count)."""
        return self._counts()["ApproximateNumberOfMessagesNotVisible"]

    def purge(self) -> None:
        """PurgeQueue (SQS allows one a minute per queue; a purge in progress is enough)."""
        try:
            with self._call():
                self.client.purge_queue(QueueUrl=self.queue_url)
        except BrokerError as exc:
            if "PurgeQueueInProgress" not in str(exc):
                raise

    def ping(self) -> bool:
        """GetQueueAttributes; a permanent error (no such queue, access denied) is a ConfigError."""
        try:
            with self._call():
                self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        except BrokerError as exc:
            code = error_code(exc.__cause__) if exc.__cause__ else ""
            if code in PERMANENT_CODES and (code != "QueueDoesNotExist" or not self.create_queue):
                raise ConfigError(str(exc)) from exc
            raise
        return True

    def info(self) -> str:
        """One line describing the broker (no credentials, no query string)."""
        kind = "fifo" if self.location.fifo else "standard"
        return f"SqsBroker {redacted(self.url)} queue={self.location.name} ({kind})"

    def close(self) -> None:
        """Release the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


class SqsFifoBroker(SqsBroker):
    """A FIFO queue on SQS (``broker = "sqs-fifo"``; ``.fifo`` is added to the queue name if missing).

    Every message goes to the message group ``message_group`` (default ``qframe``), which
    SQS delivers in order, and carries the SHA-256 of its payload as deduplication id, so
    the same signed task sent again within SQS's 5 minutes is not a second task. While a
    message of a group is in flight SQS hands out no later one of that group.
    """

    fifo = True
    #: FIFO queues have no per-message delay: the core holds delayed tasks in the store.
    max_delay = 0.0


def _message(raw: dict[str, Any]) -> Message:
    body = str(raw.get("Body", ""))
    attempts = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1))
    malformed = ""
    try:
        payload = base64.b64decode(body.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        payload, malformed = body.encode("utf-8", "replace"), "message body is not base64"
    return Message(
        ack_id=str(raw["ReceiptHandle"]),
        payload=payload,
        attempts=attempts,
        message_id=str(raw["MessageId"]),
        malformed=malformed,
    )


def _chunks(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        length = len(entry["MessageBody"])
        if chunk and (len(chunk) == BATCH or size + length > BODY_LIMIT):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += length
    if chunk:
        yield chunk
