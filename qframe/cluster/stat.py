"""The cluster's published status (``Stat``): a signed heartbeat with a short TTL.

A status is JSON signed with the cluster's secret key (HMAC, as payloads are, under a salt
of its own shared by every queue). Readers see only statuses that verify under their keys:
a reader with another key sees none, and a forged or tampered status is ignored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qframe.config import Config
from qframe.drivers import key_file, make_store
from qframe.errors import SignatureError, StoreError
from qframe.names import humanize
from qframe.serialize import Codec, secret_keys
from qframe.stores.base import StatusStore, Store

log = logging.getLogger("qframe")

#: The signing salt of statuses: one for every queue, so ``qframe info`` lists them all.
STATUS_SALT = "qframe-status"


def status_codec(keys: Sequence[str]) -> Codec:
    """The codec that signs and checks statuses (JSON, never pickle)."""
    return Codec(keys, STATUS_SALT, serializer="json")


def config_keys(config: Config) -> list[str]:
    """The secret keys ``config`` signs with (the embedded broker's generated key by default)."""
    return secret_keys(config.secret_key, config.secret_key_fallbacks, key_file(config), config.broker)


@dataclass
class Stat:
    """A snapshot of one running cluster, as ``qframe info`` shows it."""

    cluster_id: str
    name: str
    host: str
    pid: int
    sentinel: int = 0
    pusher: int = 0
    monitor: int = 0
    #: Pids of the workers alive when the status was published.
    workers: list[int] = field(default_factory=list)
    #: Starting, Idle, Working, Stopping or Stopped.
    status: str = "Starting"
    queued: int = 0
    leased: int = 0
    #: Processes the sentinel replaced: after deaths, timeouts, recycles and ``max_rss``.
    reincarnations: int = 0
    #: Workers alive when the status was taken.
    workers_alive: int = 0
    #: Whether every worker, the pusher and the monitor were alive when the status was taken.
    children_alive: bool = True
    #: Whether the broker answered the sentinel's last call (its queue sizes).
    broker_reachable: bool = True
    started: float = field(default_factory=time.time)
    timestamp: float = field(default_factory=time.time)
    #: Fields added by ``qframe_collect_status`` plugins.
    extra: dict[str, Any] = field(default_factory=dict)
    #: The configured pool size (``workers``); ``len(workers)`` below it means a worker is missing.
    configured_workers: int = 0
    #: Tasks the pusher took from the broker that no worker has started yet.
    prefetched: int = 0
    #: Outcomes the monitor could not save yet: the store failed, they are kept and retried.
    results_pending: int = 0
    #: Tasks the cluster's workers finished since it started.
    processed: int = 0
    #: Tasks finished per second, over the last ten seconds or so.
    tasks_per_second: float = 0.0
    #: Bytes of memory available and in total on the cluster's host, and the lowest available seen.
    memory_available: int = 0
    memory_total: int = 0
    memory_lowest_available: int = 0
    #: Resident memory (RSS) in bytes of each of the cluster's processes, by pid (as a string).
    rss: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The cluster's four-word name, as in its log lines (``name`` is its queue)."""
        return humanize(self.cluster_id)

    @property
    def uptime(self) -> float:
        """Seconds since the cluster started."""
        return self.timestamp - self.started

    def to_bytes(self, codec: Codec) -> bytes:
        """Signed JSON, so reading a status never unpickles anything."""
        # plugins' extras may hold any value: str() what JSON cannot hold, as before signing
        fields = json.loads(json.dumps(dataclasses.asdict(self), default=str))
        return codec.encode(fields)

    @classmethod
    def from_bytes(cls, data: bytes, codec: Codec) -> Stat:
        """Verify and parse :meth:`to_bytes` output; raise SignatureError, ValueError or TypeError.

        Fields this version does not know (a newer cluster's) are left out, so readers and
        clusters of different versions still see each other.
        """
        fields = codec.decode(data, json_only=True)
        if not isinstance(fields, dict):
            raise TypeError(f"a status is a JSON object, not {type(fields).__name__}")
        return cls(**{key: value for key, value in fields.items() if key in _FIELD_NAMES})

    @classmethod
    def all(cls, store: Store, keys: Sequence[str]) -> list[Stat]:
        """Every live status in ``store`` that verifies under ``keys`` (the others are ignored)."""
        if not isinstance(store, StatusStore):
            return []
        codec = status_codec(keys)
        stats = []
        for data in store.statuses():
            try:
                stats.append(cls.from_bytes(data, codec))
            except (SignatureError, ValueError, TypeError) as exc:
                log.debug("ignored a cluster status that does not verify: %s", exc)
        return stats


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Stat))


def read_statuses(config: Config) -> list[Stat]:
    """Every verified status in ``config``'s store, read with ``config``'s keys."""
    keys = config_keys(config)
    store = make_store(config)
    try:
        return Stat.all(store, keys)
    finally:
        store.close()


class StatusWriter:
    """Publishes one cluster's signed status to its status store (the result store by default).

    The store opens on the first write; a store that fills no status role is reported
    once, and an outage is logged at DEBUG (the next heartbeat tries again).
    """

    def __init__(self, config: Config, keys: Sequence[str]) -> None:
        self.config = config
        self.codec = status_codec(keys)
        self._store: Store | None = None

    def write(self, stat: Stat, ttl: float) -> None:
        """Save ``stat`` so that it disappears after ``ttl`` seconds without a newer one."""
        try:
            if self._store is None:
                self._store = make_store(self.config)
                if not isinstance(self._store, StatusStore):
                    log.warning(
                        "store %s keeps no cluster statuses: qframe info will not list this cluster",
                        type(self._store).__name__,
                    )
            if isinstance(self._store, StatusStore):
                self._store.set_status(stat.cluster_id, stat.to_bytes(self.codec), ttl)
        except StoreError as exc:
            log.debug("could not publish status: %s", exc)

    def close(self) -> None:
        """Close the store, if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None
