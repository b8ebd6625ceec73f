"""RedisStore: task results by id on Redis, with group and time indexes kept by Lua scripts.

Every key of a store shares the hash tag ``{results}`` (one cluster slot), so one script
call saves a whole batch atomically: the result hashes ``{prefix}:{results}:r:<id>``
(blob plus metadata), the group indexes, the success/failure indexes by stopped time
that ``save_limit`` trims and ``tally`` counts, and, for results someone waits for
(``waiting:<id>``), the list ``{prefix}:{results}:done:<id>`` that :meth:`RedisStore.wait`
blocks on, and for groups someone waits for (``gwaiting:<group>``), the stream
``gevents:<group>`` that :meth:`RedisStore.wait_group` blocks on. A saved success is
final: the save script never replaces it. Held delayed tasks (the
:class:`~qframe.stores.delays.DelayStore` role) live beside them, per queue, under
``{prefix}:{results}:held*:<queue>`` (``lua/held.lua``). See
``qframe_redis/lua/store_common.lua`` for the full layout.

The store also fills the status and dead-letter roles, under the same hash tag:
``{prefix}:{results}:stat:<key>`` (a heartbeat, a string with a PX expiry) listed in the
registry ``{prefix}:{results}:stats`` (a sorted set of keys by expiry), and, per queue,
``{prefix}:{results}:dead:<queue>`` (id -> JSON of reason, attempts, last error and time; see
:mod:`qframe_redis.letters`) with ``dead-payload:<queue>`` (id -> payload).
It also fills the :class:`~qframe.schedulers.ScheduleStore` role, under the hash tag
``{schedules}``: the hash ``{prefix}:{schedules}:all`` (schedule id -> blob) and one string
``{prefix}:{schedules}:slot:<id>:<slot>`` per claimed slot, written with ``SET NX PX``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Sequence
from typing import Any, cast

from qframe.errors import StoreError
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
from qframe_redis.connection import (
    DEFAULT_PREFIX,
    Client,
    block_cap,
    redacted,
)
from qframe_redis.letters import letter_fields, read_letter
from qframe_redis.scripts import STORE_SCRIPTS, Link

#: Results per save script call.
CHUNK = 500
#: Longest single blocking call inside ``wait`` (seconds), well below the socket timeout.
BLOCK_CAP = 2.0
#: How long (ms) a heartbeat's registry entry outlives its expiry (clock skew margin).
STAT_GRACE_MS = 60_000


class RedisStore(Store, StatusStore, DeadLetterStore, ScheduleStore, DelayStore):
    """Results, statuses, dead letters, schedules and held delays on Redis (single server, Sentinel, Cluster).

    ``options`` are redis-py keyword options plus ``prefix`` (default ``qframe``),
    ``cluster`` (True to treat a ``redis://`` URL as a cluster node) and ``result_ttl``
    (seconds after which a saved result expires by itself; unset keeps results).
    """

    def __init__(
        self, url: str | None, *, save_limit: int = 0, save_limit_per: str | None = None, **options: Any
    ) -> None:
        """Describe the store; nothing connects until the first call."""
        super().__init__(url, save_limit=save_limit, save_limit_per=save_limit_per, **options)
        self.prefix = str(options.get("prefix") or DEFAULT_PREFIX)
        ttl = options.get("result_ttl")
        self.result_ttl: float | None = float(ttl) if ttl else None
        #: Prefix of every key of this store (includes the hash tag).
        self.base = f"{self.prefix}:{{results}}:"
        names = ("ok", "fail", "dur", "grp", "exp", "groups", "busy", "names", "per")
        self.index_keys = [self.base + name for name in names]
        #: Prefix of every schedule key (its own hash tag: schedules never meet results).
        self.schedule_base = f"{self.prefix}:{{schedules}}:"
        self._link = Link(url, self.options, "redis store", STORE_SCRIPTS, "store_common", StoreError)

    @property
    def client(self) -> Client:
        """The redis-py client, connected on first use."""
        return self._link.client

    def _run(self, name: str, *args: Any) -> Any:
        return self._link.run(name, self.index_keys, [self.base, *args])

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return self._link.errors()

    # -- writing -----------------------------------------------------------------------
    def save_many(self, results: Sequence[tuple[ResultMeta, bytes]]) -> None:
        """Save results by id (a saved success stays), one script call per 500, applying save_limit.

        A result's own ``expires`` (``cached=``) becomes its record's expiry, in place of ``result_ttl``.
        """
        ttl_ms = round(self.result_ttl * 1000) if self.result_ttl else 0
        field = SAVE_LIMIT_PER.get(self.save_limit_per or "")
        with self._errors():
            for start in range(0, len(results), CHUNK):
                args: list[Any] = [self.save_limit, ttl_ms, "1" if field else ""]
                now = time.time()
                for meta, blob in results[start : start + CHUNK]:
                    bucket = getattr(meta, field) if field else None
                    own_ttl_ms = round((meta.expires - now) * 1000) if meta.expires else 0
                    if meta.expires and own_ttl_ms <= 0:
                        own_ttl_ms = -1  # expired already: save.lua writes nothing
                    args += (
                        meta.id,
                        blob,
                        meta.name,
                        meta.func,
                        "" if meta.group is None else "=" + meta.group,
                        "1" if meta.success else "0",
                        repr(float(meta.started)),
                        repr(float(meta.stopped)),
                        meta.attempts,
                        meta.cluster,
                        repr(max(0.0, float(meta.stopped) - float(meta.started))),
                        own_ttl_ms,
                        "-" if bucket is None else f"={bucket}",
                    )
                self._run("save", *args)

    def delete(self, task_id: str) -> bool:
        """Delete one result; return whether it existed."""
        with self._errors():
            return bool(self._run("delete", task_id))

    def delete_group(self, group: str, tasks: bool = False) -> int:
        """Take a group's results out of the group (or delete them); return how many it had."""
        with self._errors():
            return int(self._run("group", "delete" if tasks else "ungroup", group, "all"))

    def purge(self) -> None:
        """Delete every result of this store (1000 per script call)."""
        with self._errors():
            while int(self._run("purge")) > 0:
                pass

    # -- reading -----------------------------------------------------------------------
    def get(self, task_id: str) -> bytes | None:
        """The blob of a result, or None."""
        with self._errors():
            blob = self._link.command("HGET", f"{self.base}r:{task_id}", "blob")
        return cast("bytes | None", blob)

    def get_by_name(self, name: str) -> bytes | None:
        """The blob of the most recently stopped result named ``name`` (the name index), or None."""
        with self._errors():
            blob = self._run("byname", name)
        return None if blob is None else bytes(blob)

    def wait(self, task_id: str, timeout: float) -> bytes | None:
        """The blob of a result, blocking up to ``timeout`` s.

        A waiter first marks ``waiting:<id>``; saving a result that someone waits for also
        pushes its blob onto ``done:<id>``; waiters block with
        ``BLMOVE done done RIGHT RIGHT``, a rotation that leaves the blob for every other
        waiter, so the blob arrives with the wake-up: no second round trip.
        """
        if timeout <= 0:
            return self.get(task_id)
        done = f"{self.base}done:{task_id}"
        deadline = time.monotonic() + timeout
        cap = block_cap(self.url, self.options, BLOCK_CAP)
        with self._errors():
            # Announce the wait, then look: a result saved after the look finds the
            # announcement and pushes its blob to ``done``. Two calls on the direct line
            # cost less than one pipeline through redis-py's pool.
            self._link.command(
                "SET", f"{self.base}waiting:{task_id}", b"1", "PX", round((timeout + 60) * 1000)
            )
            blob = cast("bytes | None", self._link.command("HGET", f"{self.base}r:{task_id}", "blob"))
            if blob is not None:
                return blob
            while (left := deadline - time.monotonic()) > 0:
                wait = cast("int", max(0.01, min(left, cap)))  # Redis takes fractions; the stub says int
                arrived = self._link.command("BLMOVE", done, done, "RIGHT", "RIGHT", wait)
                if arrived is not None:
                    return cast("bytes", arrived)
        return self.get(task_id)

    def get_group(self, group: str, failures: bool = True) -> list[bytes]:
        """Blobs of a group's results in the order they stopped."""
        with self._errors():
            blobs = self._run("group", "get", group, "all" if failures else "ok")
        return [bytes(b) for b in blobs]

    def count_group(self, group: str, failures: bool = False) -> int:
        """How many successes a group has; with ``failures=True``, how many failures."""
        with self._errors():
            return int(self._run("group", "count", group, "fail" if failures else "ok"))

    def wait_group(self, group: str, count: int, timeout: float, failures: bool = False) -> int:
        """Block up to ``timeout`` s until the group has ``count`` results; return the last count.

        A waiter marks ``gwaiting:<group>``; saving into a group someone waits for appends
        an entry to the stream ``gevents:<group>``, and waiters block on it with ``XREAD``
        from the last entry they saw, then count again: no polling, any number of waiters.
        """
        kind = "all" if failures else "ok"
        events = f"{self.base}gevents:{group}"
        deadline = time.monotonic() + timeout
        cap = block_cap(self.url, self.options, BLOCK_CAP)
        with self._errors():
            # Mark, then note the last event, then count: a save after the count finds the
            # mark and adds an event newer than the one noted.
            pipe = self.client.pipeline(transaction=False)
            pipe.set(f"{self.base}gwaiting:{group}", b"1", px=round((timeout + 60) * 1000))
            pipe.xrevrange(events, count=1)
            latest = pipe.execute()[1]
            seen_event = latest[0][0] if latest else b"0-0"
            seen = int(self._run("group", "count", group, kind))
            while seen < count and (left := deadline - time.monotonic()) > 0:
                block_ms = max(1, round(min(left, cap) * 1000))
                reply = cast("Any", self.client.xread({events: seen_event}, block=block_ms))
                if reply:
                    # RESP2 answers [[stream, entries]], RESP3 {stream: entries}; an entry is [id, fields].
                    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
                    seen_event = entries[-1][0]
                    seen = int(self._run("group", "count", group, kind))
        return seen

    def tally(self, since: float | None = None) -> Tally:
        """Successes, failures and busy seconds of results stopped since ``since``."""
        with self._errors():
            ok, failed, busy = self._run("tally", "-inf" if since is None else repr(float(since)))
        return Tally(successes=int(ok), failures=int(failed), busy=float(busy))

    # -- cluster statuses ----------------------------------------------------------------
    def set_status(self, key: str, value: bytes, ttl: float) -> None:
        """Save a heartbeat as ``stat:<key>`` expiring after ``ttl`` seconds, and register it."""
        ttl_ms = max(1, round(ttl * 1000))
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.set(f"{self.base}stat:{key}", value, px=ttl_ms)
            pipe.zadd(f"{self.base}stats", {key: time.time() * 1000 + ttl_ms})
            pipe.execute()

    def statuses(self) -> list[bytes]:
        """Every live heartbeat under this prefix (all queues).

        The registry names the heartbeat keys, so no SCAN is needed. Entries are pruned a
        minute after their expiry, a margin for clocks that differ between hosts; the
        keys' own PX expiry decides what is live.
        """
        registry = f"{self.base}stats"
        with self._errors():
            client = self.client
            client.zremrangebyscore(registry, "-inf", time.time() * 1000 - STAT_GRACE_MS)
            keys = cast("list[bytes]", client.zrange(registry, 0, -1))
            if not keys:
                return []
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.get(f"{self.base}stat:".encode() + key)
            values = pipe.execute()
        return [bytes(v) for v in values if v is not None]

    # -- dead letters ----------------------------------------------------------------------
    def quarantine(
        self,
        queue: str,
        message_id: str,
        reason: str,
        payload: bytes,
        attempts: int = 0,
        last_error: str = "",
    ) -> None:
        """Keep a message of ``queue`` aside (its fields and payload in one transaction)."""
        with self._errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(f"{self.base}dead:{queue}", message_id, letter_fields(reason, attempts, last_error))
            pipe.hset(f"{self.base}dead-payload:{queue}", message_id, payload)
            pipe.execute()

    def dead_letters(self, queue: str) -> list[DeadLetter]:
        """The messages kept aside for ``queue`` (hash order: no promised order)."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(f"{self.base}dead:{queue}")
            pipe.hgetall(f"{self.base}dead-payload:{queue}")
            values, payloads = pipe.execute()
        return [
            read_letter(message_id, value, payloads[message_id])
            for message_id, value in values.items()
            if message_id in payloads
        ]

    def remove_dead_letters(self, queue: str, message_ids: Sequence[str]) -> int:
        """Delete these messages kept aside for ``queue`` in one transaction."""
        if not message_ids:
            return 0
        with self._errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(f"{self.base}dead:{queue}", *message_ids)
            pipe.hdel(f"{self.base}dead-payload:{queue}", *message_ids)
            removed, _ = pipe.execute()
        return int(removed)

    # -- schedules -----------------------------------------------------------------------
    def claim_slot(self, schedule_id: str, slot: int, owner: str, keep: float = DEFAULT_KEEP) -> bool:
        """``SET slot-key owner NX PX keep``: Redis runs it atomically, so one caller wins."""
        key = f"{self.schedule_base}slot:{schedule_id}:{int(slot)}"
        with self._errors():
            return bool(self.client.set(key, owner, nx=True, px=max(1, round(keep * 1000))))

    def slot_owner(self, schedule_id: str, slot: int) -> str | None:
        """The winner of a kept claim."""
        with self._errors():
            owner = self.client.get(f"{self.schedule_base}slot:{schedule_id}:{int(slot)}")
        return owner.decode() if isinstance(owner, bytes) else owner

    def save_schedule(self, schedule_id: str, data: bytes) -> None:
        """Save or replace a schedule in the schedules hash."""
        with self._errors():
            self.client.hset(self.schedule_base + "all", schedule_id, data)

    def schedules(self) -> dict[str, bytes]:
        """Every schedule."""
        with self._errors():
            raw = cast("dict[bytes, bytes]", self.client.hgetall(self.schedule_base + "all"))
        return {bytes(key).decode(): bytes(value) for key, value in raw.items()}

    def delete_schedule(self, schedule_id: str) -> bool:
        """Delete a schedule."""
        with self._errors():
            return bool(self.client.hdel(self.schedule_base + "all", schedule_id))

    # -- held delays -------------------------------------------------------------------
    def hold(self, queue: str, payload: bytes, due: float) -> str:
        """Keep a held task in the queue's sorted set of due times."""
        entry_id = os.urandom(16).hex()
        with self._errors():
            self._run("held", "hold", queue, entry_id, payload, repr(float(due)))
        return entry_id

    def claim_held(self, queue: str, until: float, lease: float, limit: int) -> list[HeldTask]:
        """Lease due held tasks in one script call (one claimant per entry)."""
        token = os.urandom(8).hex()
        bound = "+inf" if until == math.inf else repr(float(until))
        with self._errors():
            reply = self._run("held", "claim", queue, bound, max(1, round(lease * 1000)), limit, token)
        return [
            HeldTask(bytes(reply[i]).decode(), token, bytes(reply[i + 1]), float(reply[i + 2]))
            for i in range(0, len(reply), 3)
        ]

    def drop_held(self, queue: str, tasks: Sequence[HeldTask]) -> None:
        """Delete held tasks whose claim still holds them, in one script call."""
        if tasks:
            args = [part for task in tasks for part in (task.id, task.claim)]
            with self._errors():
                self._run("held", "drop", queue, *args)

    def count_held(self, queue: str) -> int:
        """Held tasks of a queue, claimed or not."""
        with self._errors():
            return int(self._run("held", "count", queue))

    def info(self) -> str:
        """One line describing the store (password hidden)."""
        return f"RedisStore {redacted(self.url)} prefix={self.prefix} save_limit={self.save_limit}"

    def close(self) -> None:
        """Release the connections."""
        self._link.close()
