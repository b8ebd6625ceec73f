"""The ``orm`` broker: a table of messages in a Django database, with leases.

A claim writes a fresh token, a new visibility time and ``attempts + 1`` on the rows it
takes; ack, nack, touch and release match on the token, so a stale claim touches
nothing. On PostgreSQL (and MySQL 8 / MariaDB 10.6, where Django reports the feature)
the rows are picked with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent clusters
never wait for one another. Elsewhere (SQLite) the claim is a compare-and-set: an
``UPDATE`` that only takes rows still visible, then a read of the rows carrying the token.
``broker_url`` is the database alias (default ``default``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from qframe.brokers.base import Broker, Message
from qframe.errors import BrokerError
from qframe.stores.base import DeadLetter
from qframe_django.db import Database
from qframe_django.deadletters import from_row


def _split(ack_id: str) -> tuple[int, str]:
    row, _, token = ack_id.partition(":")
    return int(row), token


def malformed(payload: Any) -> str:
    """Why a queued row's payload is not one the broker wrote ("" for a good one)."""
    if payload is None:
        return "no payload (NULL)"
    if isinstance(payload, str):
        return "payload stored as text, not as bytes"
    if len(payload) == 0:
        return "empty payload"
    return ""


class OrmBroker(Broker):
    """Messages in the ``QueuedMessage`` table of one database alias."""

    fifo = True
    exact_sizes = True
    can_release = True
    max_payload = 64 * 1024 * 1024
    max_delay = None
    lease_resolution = 0.001
    has_dead_letters = True
    blocking_dequeue = False
    conditional_claims = True

    def __init__(
        self, url: str | None, queue: str, *, lease: float = 60.0, poll: float = 0.05, **options: Any
    ) -> None:
        super().__init__(url, queue, lease=lease, poll=poll, **options)
        self.db = Database(url, BrokerError)
        from qframe_django import models

        self.models = models
        self.rows = models.QueuedMessage.objects.using(self.db.alias)

    def info(self) -> str:
        """The database alias, its vendor and the queue."""
        return f"orm database={self.db.alias} ({self.db.vendor}) queue={self.queue}"

    # -- producing -------------------------------------------------------------------
    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Insert one message."""
        row = self.db.run(
            "enqueue",
            lambda: self.rows.create(queue=self.queue, payload=payload, visible=time.time() + delay),
        )
        return str(row.pk)

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Insert several messages in one statement (ids returned by the database)."""
        from django.db import transaction

        def insert() -> list[str]:
            now = time.time()
            rows = [self.models.QueuedMessage(queue=self.queue, payload=p, visible=now) for p in payloads]
            with transaction.atomic(using=self.db.alias):
                made = self.rows.bulk_create(rows)
                if any(row.pk is None for row in made):  # a backend that returns no ids
                    made = [self.rows.create(queue=self.queue, payload=p, visible=now) for p in payloads]
                    self.rows.filter(pk__in=[r.pk for r in rows if r.pk]).delete()
            return [str(row.pk) for row in made]

        return self.db.run("enqueue", insert)

    # -- consuming -------------------------------------------------------------------
    def _claim(self, count: int) -> list[Message]:
        from django.db import transaction
        from django.db.models import F

        now, token = time.time(), secrets.token_hex(8)
        ready = self.rows.filter(queue=self.queue, visible__lte=now).order_by("visible", "id")
        claimed = {"visible": now + self.lease, "attempts": F("attempts") + 1, "token": token}
        if self.db.skip_locked:
            with transaction.atomic(using=self.db.alias):
                picked = list(
                    ready.select_for_update(skip_locked=True).values_list("id", "payload", "attempts")[:count]
                )
                if picked:
                    self.rows.filter(id__in=[row for row, _, _ in picked]).update(**claimed)
            rows = [(row, payload, attempts + 1) for row, payload, attempts in picked]
        else:
            candidates = list(ready.values_list("id", flat=True)[:count])
            if not candidates:
                return []
            # compare-and-set: a row another claimer took since has moved past ``now``
            self.rows.filter(id__in=candidates, visible__lte=now).update(**claimed)
            rows = list(self.rows.filter(token=token).values_list("id", "payload", "attempts"))
        rows.sort()
        return [
            Message(f"{row}:{token}", _bytes(payload), attempts, str(row), malformed(payload))
            for row, payload, attempts in rows
        ]

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Claim up to ``count`` messages, polling with a short backoff for up to ``wait`` s."""
        deadline = time.monotonic() + wait
        pause = 0.001
        while True:
            messages = self.db.run("dequeue", lambda: self._claim(count))
            left = deadline - time.monotonic()
            if messages or left <= 0:
                return messages
            time.sleep(min(pause, left))
            pause = min(pause * 2, self.poll)

    def ack(self, ack_id: str) -> None:
        """Delete the message if this delivery still holds it."""
        self.ack_many([ack_id])

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Delete several messages, each only while its claim holds it."""
        from django.db.models import Q

        condition = Q(pk__in=[])
        for row, token in map(_split, ack_ids):
            condition |= Q(pk=row, token=token)
        self.db.run("ack", lambda: self.rows.filter(condition).delete())

    def nack(self, ack_id: str) -> None:
        """Make the message visible now."""
        row, token = _split(ack_id)
        self.db.run(
            "nack", lambda: self.rows.filter(pk=row, token=token).update(visible=time.time(), token=None)
        )

    def release(self, ack_ids: Sequence[str]) -> None:
        """Make these messages visible now and take back their delivery count."""
        from django.db.models import F

        def give_back() -> None:
            now = time.time()
            for row, token in map(_split, ack_ids):
                self.rows.filter(pk=row, token=token).update(
                    visible=now, token=None, attempts=F("attempts") - 1
                )

        self.db.run("release", give_back)

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the leases of these deliveries."""
        from django.db.models import Q

        condition = Q(pk__in=[])
        for row, token in map(_split, ack_ids):
            condition |= Q(pk=row, token=token)
        self.db.run("touch", lambda: self.rows.filter(condition).update(visible=time.time() + self.lease))

    # -- dead letters ----------------------------------------------------------------
    def quarantine(self, ack_id: str, reason: str, attempts: int = 0, last_error: str = "") -> None:
        """Move the message of this delivery to the dead letters (same id again replaces it)."""
        from django.db import transaction

        row, token = _split(ack_id)

        def move() -> None:
            with transaction.atomic(using=self.db.alias):
                found = self.rows.filter(pk=row, token=token).values_list("payload", "attempts").first()
                if found is None:
                    return
                payload, delivered = found
                self.models.DeadLetter.objects.using(self.db.alias).update_or_create(
                    queue=self.queue,
                    message_id=str(row),
                    defaults={
                        "reason": reason,
                        "payload": _bytes(payload),
                        "attempts": attempts or delivered,
                        "last_error": last_error,
                        "dead_at": time.time(),
                    },
                )
                self.rows.filter(pk=row, token=token).delete()

        self.db.run("quarantine", move)

    def dead_letters(self) -> list[DeadLetter]:
        """This queue's dead letters with every field, oldest first."""
        letters = self.models.DeadLetter.objects.using(self.db.alias).filter(queue=self.queue)
        return self.db.run("dead_letters", lambda: [from_row(r) for r in letters.order_by("dead_at", "id")])

    def remove_dead_letters(self, message_ids: Sequence[str]) -> int:
        """Delete these dead letters of this queue; return how many existed."""
        letters = self.models.DeadLetter.objects.using(self.db.alias)
        deleted = self.db.run(
            "remove_dead_letters",
            lambda: letters.filter(queue=self.queue, message_id__in=list(message_ids)).delete(),
        )
        return int(deleted[0])

    # -- bookkeeping ---------------------------------------------------------------
    def queue_size(self) -> int:
        """Messages not leased now, delayed ones included."""
        from django.db.models import Q

        waiting = self.rows.filter(Q(token__isnull=True) | Q(visible__lte=time.time()), queue=self.queue)
        return self.db.run("queue_size", waiting.count)

    def lock_size(self) -> int:
        """Messages leased now."""
        leased = self.rows.filter(queue=self.queue, token__isnull=False, visible__gt=time.time())
        return self.db.run("lock_size", leased.count)

    def purge(self) -> None:
        """Delete this queue's messages and dead letters."""

        def delete() -> None:
            self.rows.filter(queue=self.queue).delete()
            self.models.DeadLetter.objects.using(self.db.alias).filter(queue=self.queue).delete()

        self.db.run("purge", delete)

    def ping(self) -> bool:
        """Check that the database answers a query."""
        from django.db import connections

        def query() -> None:
            with connections[self.db.alias].cursor() as cursor:
                cursor.execute("SELECT 1")

        self.db.run("ping", query)
        return True

    def close(self) -> None:
        """Close this thread's connection."""
        self.db.close()


def _bytes(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return bytes(payload)
