"""An in-process broker and result store, for fast tests without servers or forking.

Like dramatiq's ``StubBroker``: everything lives in this process's memory. Every broker
and store built with the same URL (``memory://name``; ``memory://`` when unset) shares one
:class:`Space`, found in a module-level registry, so a test can build a producer and
several consumers on one queue, in threads. A forked child gets a copy of the state, not a
share of it, so a real multi-process cluster cannot run on it; use SQLite for that.
"""

from __future__ import annotations

import heapq
import itertools
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from qframe.brokers.base import Broker, Message
from qframe.errors import ConfigError
from qframe.schedulers.base import DEFAULT_KEEP, ScheduleStore
from qframe.stores.base import (
    SAVE_LIMIT_PER,
    DeadLetter,
    DeadLetterStore,
    ResultMeta,
    StatusStore,
    Store,
    Tally,
)
from qframe.stores.delays import DelayStore, HeldTask

DEFAULT_URL = "memory://"


@dataclass
class _Queued:
    """One message of a queue; ``token`` 0 means no delivery holds it."""

    id: int
    payload: bytes
    visible: float
    attempts: int = 0
    token: int = 0


@dataclass
class _Held:
    """One held delayed task; ``claimed_until`` is on the monotonic clock."""

    payload: bytes
    due: float
    claimed_until: float = 0.0
    token: str = ""


class Space:
    """The state behind one ``memory://`` URL; ``changed`` guards it and wakes waiters."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.ids = itertools.count(1)
        self.queues: defaultdict[str, dict[int, _Queued]] = defaultdict(dict)
        self.dead: defaultdict[str, dict[str, DeadLetter]] = defaultdict(dict)
        self.stats: dict[str, tuple[bytes, float]] = {}
        self.quarantined: defaultdict[str, dict[str, DeadLetter]] = defaultdict(dict)
        self.slots: dict[tuple[str, int], tuple[str, float]] = {}
        self.schedules: dict[str, bytes] = {}
        self.results: dict[str, tuple[ResultMeta, bytes]] = {}
        self.held: defaultdict[str, dict[str, _Held]] = defaultdict(dict)


_spaces: dict[str, Space] = {}
_spaces_lock = threading.Lock()


def normalize(url: str | None) -> str:
    """The registry key of ``url``: ``memory://`` or ``memory://<name>``."""
    if not url:
        return DEFAULT_URL
    if not url.startswith(DEFAULT_URL):
        raise ConfigError(f"the memory driver cannot use {url!r}: expected memory:// or memory://<name>")
    return url


def space(url: str | None) -> Space:
    """The shared state of ``url``, created on first use."""
    with _spaces_lock:
        return _spaces.setdefault(normalize(url), Space())


def reset(url: str | None = None) -> None:
    """Forget the state of ``url`` (every URL's when None); later instances start empty."""
    with _spaces_lock:
        if url is None:
            _spaces.clear()
        else:
            _spaces.pop(normalize(url), None)


def _split(ack_id: str) -> tuple[int, int]:
    row, _, token = ack_id.partition(":")
    try:
        return int(row), int(token)
    except ValueError:
        return 0, 0


def _checked(payload: object) -> tuple[bytes, str]:
    """A queued payload as bytes, and what is wrong with it (``enqueue`` always stores bytes)."""
    if isinstance(payload, bytes):
        return payload, ""
    if payload is None:
        return b"", "no payload"
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape"), "payload is a str, not bytes"
    return repr(payload).encode(), f"payload is a {type(payload).__name__}, not bytes"


class MemoryBroker(Broker):
    """A queue in this process's memory with leases, delays and dead letters."""

    fifo = True
    exact_sizes = True
    can_release = True
    max_payload = None
    max_delay = None
    lease_resolution = 0.001
    has_dead_letters = True
    blocking_dequeue = True
    conditional_claims = True

    def __init__(
        self, url: str | None, queue: str, *, lease: float = 60.0, poll: float = 0.05, **options: Any
    ) -> None:
        super().__init__(normalize(url), queue, lease=lease, poll=poll, **options)
        self.space = space(url)

    @property
    def _messages(self) -> dict[int, _Queued]:
        return self.space.queues[self.queue]

    def _holding(self, ack_id: str) -> _Queued | None:
        """The message of this delivery, if the delivery still holds it (lock held)."""
        row, token = _split(ack_id)
        message = self._messages.get(row)
        return message if message is not None and token and message.token == token else None

    # -- producing -----------------------------------------------------------------------
    def enqueue(self, payload: bytes, delay: float = 0.0) -> str:
        """Add one message, visible after ``delay`` seconds."""
        with self.space.changed:
            message = _Queued(next(self.space.ids), bytes(payload), time.monotonic() + max(0.0, delay))
            self._messages[message.id] = message
            self.space.changed.notify_all()
        return str(message.id)

    def enqueue_many(self, payloads: Sequence[bytes]) -> list[str]:
        """Add several messages at once."""
        with self.space.changed:
            now = time.monotonic()
            added = [_Queued(next(self.space.ids), bytes(payload), now) for payload in payloads]
            self._messages.update((message.id, message) for message in added)
            self.space.changed.notify_all()
        return [str(message.id) for message in added]

    # -- consuming -----------------------------------------------------------------------
    def _claim(self, count: int, now: float) -> list[Message]:
        visible = (m for m in self._messages.values() if m.visible <= now)
        taken = heapq.nsmallest(count, visible, key=lambda m: (m.visible, m.id))
        for message in taken:
            message.attempts += 1
            message.token = next(self.space.ids)
            message.visible = now + self.lease
        messages = []
        for m in taken:
            payload, malformed = _checked(m.payload)
            messages.append(Message(f"{m.id}:{m.token}", payload, m.attempts, str(m.id), malformed))
        return messages

    def dequeue(self, count: int = 1, wait: float = 0.0) -> list[Message]:
        """Lease up to ``count`` messages, sleeping on the condition up to ``wait`` s."""
        if count <= 0:
            return []
        deadline = time.monotonic() + max(0.0, wait)
        with self.space.changed:
            while True:
                now = time.monotonic()
                messages = self._claim(count, now)
                if messages or now >= deadline:
                    return messages
                # A delayed message or a running lease may come due before anyone notifies.
                soonest = min((m.visible for m in self._messages.values()), default=math.inf)
                self.space.changed.wait(max(0.0, min(deadline, soonest) - now))

    def ack(self, ack_id: str) -> None:
        """Remove the message if this delivery still holds it."""
        self.ack_many([ack_id])

    def ack_many(self, ack_ids: Iterable[str]) -> None:
        """Remove several messages."""
        with self.space.changed:
            for ack_id in ack_ids:
                if (message := self._holding(ack_id)) is not None:
                    del self._messages[message.id]

    def _hand_back(self, ack_ids: Iterable[str], counted: bool) -> None:
        with self.space.changed:
            now = time.monotonic()
            for ack_id in ack_ids:
                if (message := self._holding(ack_id)) is not None:
                    message.visible, message.token = now, 0
                    if not counted:
                        message.attempts -= 1
            self.space.changed.notify_all()

    def nack(self, ack_id: str) -> None:
        """Make the message visible now."""
        self._hand_back([ack_id], counted=True)

    def release(self, ack_ids: Sequence[str]) -> None:
        """Make these messages visible now and take back their delivery count."""
        self._hand_back(ack_ids, counted=False)

    def touch(self, ack_ids: Sequence[str]) -> None:
        """Restart the leases of these deliveries."""
        with self.space.changed:
            until = time.monotonic() + self.lease
            for ack_id in ack_ids:
                if (message := self._holding(ack_id)) is not None:
                    message.visible = until

    def quarantine(self, ack_id: str, reason: str, attempts: int = 0, last_error: str = "") -> None:
        """Move the message to this queue's dead letters."""
        with self.space.changed:
            if (message := self._holding(ack_id)) is not None:
                del self._messages[message.id]
                payload = _checked(message.payload)[0]
                letter = DeadLetter(str(message.id), reason, payload, attempts, last_error, time.time())
                self.space.dead[self.queue][letter.message_id] = letter

    def dead_letters(self) -> list[DeadLetter]:
        """The quarantined messages of this queue, oldest first."""
        with self.space.changed:
            return list(self.space.dead[self.queue].values())

    def remove_dead_letters(self, message_ids: Sequence[str]) -> int:
        """Forget these dead letters of this queue."""
        with self.space.changed:
            kept = self.space.dead[self.queue]
            return sum(kept.pop(message_id, None) is not None for message_id in message_ids)

    # -- bookkeeping ---------------------------------------------------------------------
    def queue_size(self) -> int:
        """Messages not leased now."""
        with self.space.changed:
            now = time.monotonic()
            return sum(1 for m in self._messages.values() if not m.token or m.visible <= now)

    def lock_size(self) -> int:
        """Messages leased now."""
        with self.space.changed:
            now = time.monotonic()
            return sum(1 for m in self._messages.values() if m.token and m.visible > now)

    def purge(self) -> None:
        """Delete this queue's messages (its dead letters stay)."""
        with self.space.changed:
            self._messages.clear()

    def ping(self) -> bool:
        """Always answers: the state is in this process."""
        return True

    def info(self) -> str:
        """The URL and queue."""
        return f"memory {self.url} queue={self.queue}"


class MemoryStore(Store, StatusStore, DeadLetterStore, ScheduleStore, DelayStore):
    """Results, statuses, dead letters, schedules and held delays in this process's memory."""

    def __init__(
        self, url: str | None, *, save_limit: int = 0, save_limit_per: str | None = None, **options: Any
    ) -> None:
        super().__init__(normalize(url), save_limit=save_limit, save_limit_per=save_limit_per, **options)
        self.space = space(url)

    @property
    def _results(self) -> dict[str, tuple[ResultMeta, bytes]]:
        """The saved results, expired ones removed first (call with the lock held)."""
        results = self.space.results
        now = time.time()
        for task_id in [i for i, (meta, _) in results.items() if meta.expired(now)]:
            del results[task_id]
        return results

    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Save results (a saved success stays), then keep the ``save_limit`` most recent successes."""
        with self.space.changed:
            kept = self._results
            for meta, blob in results:
                saved = kept.get(meta.id)
                if (saved is not None and saved[0].success) or not self.keeps(meta):
                    continue
                kept[meta.id] = (meta, bytes(blob))
            if self.save_limit > 0:
                self._trim()
            self.space.changed.notify_all()

    def _trim(self) -> None:
        """Keep the ``save_limit`` most recent successes (of each ``save_limit_per`` value)."""
        field = SAVE_LIMIT_PER.get(self.save_limit_per or "")
        buckets: defaultdict[object, list[tuple[float, str]]] = defaultdict(list)
        for meta, _ in self._results.values():
            if meta.success:
                buckets[getattr(meta, field) if field else None].append((meta.stopped, meta.id))
        for successes in buckets.values():
            for _, task_id in heapq.nsmallest(len(successes) - self.save_limit, successes):
                del self.space.results[task_id]

    def get(self, task_id: str) -> bytes | None:
        """The blob of a result."""
        with self.space.changed:
            record = self._results.get(task_id)
        return None if record is None else record[1]

    def get_by_name(self, name: str) -> bytes | None:
        """The blob of the most recently stopped result named ``name``."""
        with self.space.changed:
            named = [record for record in self._results.values() if record[0].name == name]
        return max(named, key=lambda record: record[0].stopped)[1] if named else None

    def wait(self, task_id: str, timeout: float) -> bytes | None:
        """The blob of a result, sleeping on the condition until it is saved."""
        deadline = time.monotonic() + timeout
        with self.space.changed:
            while (record := self._results.get(task_id)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.space.changed.wait(left)
            return record[1]

    def _group(self, group: str, failures: bool) -> list[tuple[ResultMeta, bytes]]:
        records = [r for r in self._results.values() if r[0].group == group and (failures or r[0].success)]
        return sorted(records, key=lambda r: r[0].stopped)

    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        """Blobs of a group, oldest first."""
        with self.space.changed:
            return [blob for _, blob in self._group(group, failures)]

    def count_group(self, group: str, failures: bool = False) -> int:
        """Successes of a group, or its failures."""
        with self.space.changed:
            return sum(1 for meta, _ in self._group(group, True) if meta.success != failures)

    def wait_group(self, group: str, count: int, timeout: float, failures: bool = False) -> int:
        """Sleep on the condition until the group has ``count`` results or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self.space.changed:
            while (seen := len(self._group(group, failures))) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.space.changed.wait(left)
        return seen

    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Ungroup a group's results, or delete them."""
        with self.space.changed:
            members = [meta for meta, _ in self._group(group, failures=True)]
            results = self.space.results
            for meta in members:
                if tasks:
                    del results[meta.id]
                else:
                    results[meta.id] = (meta._replace(group=None), results[meta.id][1])
        return len(members)

    def delete(self, task_id: str) -> bool:
        """Delete one result."""
        with self.space.changed:
            return self._results.pop(task_id, None) is not None

    def tally(self, since: float | None = None) -> Tally:
        """Counts of results stopped since ``since``."""
        with self.space.changed:
            metas = [m for m, _ in self._results.values() if since is None or m.stopped >= since]
        successes = sum(1 for m in metas if m.success)
        return Tally(successes, len(metas) - successes, sum(m.stopped - m.started for m in metas))

    def purge(self) -> None:
        """Delete every result (held tasks stay)."""
        with self.space.changed:
            self._results.clear()

    # -- held delays -------------------------------------------------------------------
    def hold(self, queue: str, payload: bytes, due: float) -> str:
        """Keep one held task."""
        with self.space.changed:
            entry_id = str(next(self.space.ids))
            self.space.held[queue][entry_id] = _Held(bytes(payload), due)
        return entry_id

    def claim_held(self, queue: str, until: float, lease: float, limit: int) -> list[HeldTask]:
        """Lease the earliest unclaimed held tasks due by ``until``."""
        with self.space.changed:
            now, token = time.monotonic(), str(next(self.space.ids))
            free = [(h.due, int(i), i) for i, h in self.space.held[queue].items() if h.claimed_until <= now]
            claimed = heapq.nsmallest(limit, (f for f in free if f[0] <= until))
            tasks = []
            for _, _, entry_id in claimed:
                held = self.space.held[queue][entry_id]
                held.claimed_until, held.token = now + lease, token
                tasks.append(HeldTask(entry_id, token, held.payload, held.due))
        return tasks

    def drop_held(self, queue: str, tasks: Sequence[HeldTask]) -> None:
        """Delete held tasks whose claim still holds them."""
        with self.space.changed:
            entries = self.space.held[queue]
            for task in tasks:
                held = entries.get(task.id)
                if held is not None and held.token == task.claim:
                    del entries[task.id]

    def count_held(self, queue: str) -> int:
        """Held tasks of a queue."""
        with self.space.changed:
            return len(self.space.held[queue])

    # -- statuses ------------------------------------------------------------------------
    def set_status(self, key: str, value: bytes, ttl: float) -> None:
        """Save a heartbeat that expires after ``ttl`` seconds."""
        with self.space.changed:
            self.space.stats[key] = (bytes(value), time.monotonic() + ttl)

    def statuses(self) -> list[bytes]:
        """Live heartbeats, by key."""
        with self.space.changed:
            now = time.monotonic()
            return [value for _, (value, expires) in sorted(self.space.stats.items()) if expires > now]

    # -- dead letters --------------------------------------------------------------------
    def quarantine(
        self,
        queue: str,
        message_id: str,
        reason: str,
        payload: bytes,
        attempts: int = 0,
        last_error: str = "",
    ) -> None:
        """Keep a message aside (the same id again replaces it)."""
        letter = DeadLetter(message_id, reason, bytes(payload), attempts, last_error, time.time())
        with self.space.changed:
            self.space.quarantined[queue][message_id] = letter

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The messages kept aside for ``queue``, in the order they came."""
        with self.space.changed:
            return list(self.space.quarantined.get(queue, {}).values())

    def remove_dead_letters(self, queue: str, message_ids: Sequence[str]) -> int:
        """Forget these messages kept aside for ``queue``."""
        with self.space.changed:
            kept = self.space.quarantined.get(queue, {})
            return sum(kept.pop(message_id, None) is not None for message_id in message_ids)

    # -- schedules -----------------------------------------------------------------------
    def claim_slot(self, schedule_id: str, slot: int, owner: str, keep: float = DEFAULT_KEEP) -> bool:
        """Mark the slot under the lock unless a live marker exists: one winner."""
        with self.space.changed:
            now = time.monotonic()
            held = self.space.slots.get((schedule_id, slot))
            if held is not None and held[1] > now:
                return False
            self.space.slots[(schedule_id, slot)] = (owner, now + keep)
            return True

    def slot_owner(self, schedule_id: str, slot: int) -> str | None:
        """The winner of a kept claim."""
        with self.space.changed:
            held = self.space.slots.get((schedule_id, slot))
            return held[0] if held is not None and held[1] > time.monotonic() else None

    def save_schedule(self, schedule_id: str, data: bytes) -> None:
        """Save or replace a schedule."""
        with self.space.changed:
            self.space.schedules[schedule_id] = bytes(data)

    def schedules(self) -> dict[str, bytes]:
        """Every schedule."""
        with self.space.changed:
            return dict(self.space.schedules)

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule."""
        with self.space.changed:
            return self.space.schedules.pop(schedule_id, None) is not None
