"""One reading of every cluster's heartbeat and of the configured queue, for info, monitor and memory.

The clusters come from the status store (every queue whose statuses verify under the
command's keys), so the commands show the same thing whatever the broker; the queue's
counts come from its broker and its result store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from qframe import drivers
from qframe.brokers.base import Broker
from qframe.cluster.deadletters import list_dead_letters
from qframe.cluster.stat import Stat, config_keys
from qframe.config import Config
from qframe.stores.base import Store


@dataclass
class QueueCounts:
    """The configured queue's broker and result counts."""

    queue: str
    broker: str
    queued: int
    leased: int
    dead_letters: int
    successes: int
    failures: int
    tasks_per_second: int
    tasks_per_minute: int
    tasks_per_hour: int
    average_seconds: float


class Snapshots:
    """Reads clusters and counts through one broker and one store connection, kept open between readings."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.keys = config_keys(config)
        self._broker: Broker | None = None
        self._store: Store | None = None

    @property
    def broker(self) -> Broker:
        """The configured queue's broker, opened on first use."""
        if self._broker is None:
            self._broker = drivers.make_broker(self.config)
        return self._broker

    @property
    def store(self) -> Store:
        """The result and status store, opened on first use."""
        if self._store is None:
            self._store = drivers.make_store(self.config)
        return self._store

    def clusters(self) -> list[Stat]:
        """Every live cluster status, sorted by queue, host and name."""
        stats = Stat.all(self.store, self.keys)
        return sorted(stats, key=lambda s: (s.name, s.host, s.label))

    def counts(self) -> QueueCounts:
        """The configured queue's counts now."""
        broker, store = self.broker, self.store
        now = time.time()
        hour, minute, second = store.tally(now - 3600), store.tally(now - 60), store.tally(now - 1)
        total = store.tally()
        done = total.successes + total.failures
        letters = list_dead_letters(broker, store)
        return QueueCounts(
            queue=self.config.name,
            broker=broker.info(),
            queued=broker.queue_size(),
            leased=broker.lock_size(),
            dead_letters=len(letters),
            successes=total.successes,
            failures=total.failures,
            tasks_per_second=second.successes + second.failures,
            tasks_per_minute=minute.successes + minute.failures,
            tasks_per_hour=hour.successes + hour.failures,
            average_seconds=total.busy / done if done else 0.0,
        )

    def close(self) -> None:
        """Close the connections opened so far."""
        for driver in (self._broker, self._store):
            if driver is not None:
                driver.close()
        self._broker = self._store = None
