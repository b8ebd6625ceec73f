"""One fault test's queue: the broker under test, real clusters on it, a producer and the ledger.

A broker plugin describes how to reach its broker as a :class:`FaultTarget` (the
``QFRAME_*`` settings and the server, if the broker has one). A :class:`FaultLab` adds a
queue name, a secret key and the runs ledger of its own, starts clusters
(:class:`~qframe.testing.cluster.ClusterProcess`) in its directory, enqueues through a
:class:`~qframe.client.Client` with the same settings, and judges the outcome with
:func:`qframe.testing.ledger.check`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from qframe.brokers.base import Broker
from qframe.client import Client
from qframe.cluster.deadletters import list_dead_letters
from qframe.config import Config
from qframe.config import load as load_config
from qframe.drivers import key_file, load, make_broker
from qframe.errors import SignatureError
from qframe.serialize import Codec, secret_keys
from qframe.stores.base import DeadLetter
from qframe.testing.cluster import ClusterProcess
from qframe.testing.contracts import wait_until
from qframe.testing.ledger import Ledger, Verdict, check
from qframe.testing.servers import ServerProcess

#: The hook plugin that writes the runs ledger in every cluster process.
LEDGER_PLUGIN = "qframe.testing.ledger"


@dataclass
class FaultTarget:
    """How to run clusters on one broker: its settings, and its server if it has one."""

    #: ``QFRAME_*`` variables naming the broker, its URL, store and options.
    env: Mapping[str, str]
    #: The server the broker (and its store) runs on; None for an embedded broker (SQLite).
    server: ServerProcess | None = None


#: ``make(own_server)``: a target; ``own_server=True`` for a server only this test uses (it may kill it).
TargetFactory = Callable[[bool], FaultTarget]


@dataclass
class FaultLab:
    """A queue of its own on a :class:`FaultTarget`, with clusters, a producer and the ledger."""

    target: FaultTarget
    directory: Path
    #: Seconds after which every cluster started here is killed.
    lifetime: float = 300.0
    name: str = field(default_factory=lambda: f"fault-{uuid.uuid4().hex[:10]}")
    clusters: list[ClusterProcess] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ledger_file = self.directory / f"{self.name}.ledger"
        self.env: dict[str, str] = {
            "QFRAME_NAME": self.name,
            "QFRAME_SECRET_KEY": f"secret-{uuid.uuid4().hex}",
            "QFRAME_PLUGINS": "",
            "QFRAME_PLUGIN_MODULES": LEDGER_PLUGIN,
            "QFRAME_WORKERS": "2",
            "QFRAME_GUARD_CYCLE": "0.2",
            "QFRAME_TEST_LOG": str(self.ledger_file),
            **self.target.env,
        }
        self._client: Client | None = None
        self._broker: Broker | None = None
        self._config: Config | None = None
        self._finished: set[str] = set()

    # -- settings and connections ------------------------------------------------------------
    def configure(self, **options: object) -> None:
        """Set options for clusters started later and for the producer."""
        self.env.update({f"QFRAME_{key.upper()}": str(value) for key, value in options.items()})
        self.close_connections()

    @property
    def config(self) -> Config:
        """The settings the clusters and the producer use."""
        if self._config is None:
            self._config = load_config(environ=dict(self.env), cwd=self.directory)
        return self._config

    @property
    def broker_class(self) -> type[Broker]:
        """The broker driver's class, for its capability flags."""
        cls: type[Broker] = load("broker", self.config.broker)
        return cls

    def lease(self, seconds: float) -> float:
        """A lease of ``seconds``, never finer than the broker's ``lease_resolution``."""
        return max(seconds, self.broker_class.lease_resolution)

    @property
    def client(self) -> Client:
        """A producer with the clusters' settings."""
        if self._client is None:
            self._client = Client(self.config)
        return self._client

    @property
    def broker(self) -> Broker:
        """A direct handle on the queue (raw payloads, sizes)."""
        if self._broker is None:
            self._broker = make_broker(self.config)
        return self._broker

    def codec(self) -> Codec:
        """The codec the queue's clusters sign and check payloads with."""
        config = self.config
        keys = secret_keys(config.secret_key, config.secret_key_fallbacks, key_file(config), config.broker)
        return Codec(keys, config.name, config.serializer, config.compress)

    # -- clusters and tasks ----------------------------------------------------------------
    def cluster(self, *args: str, wait: bool = True) -> ClusterProcess:
        """Start a cluster on the queue and, unless told not to, wait until it runs."""
        cluster = ClusterProcess(self.directory, self.env, *args, lifetime=self.lifetime)
        self.clusters.append(cluster)
        return cluster.wait_running(60) if wait else cluster

    def enqueue(self, func: str, *args: Any, **options: Any) -> str:
        """Enqueue one task (tracked for :meth:`verdict`, in group :attr:`name`) and return its id."""
        task_id = self.client.async_task(func, *args, **{"group": self.name, **options})
        self.task_ids.append(task_id)
        return task_id

    def enqueue_many(self, func: str, arguments: list[tuple[Any, ...]], **options: Any) -> list[str]:
        """Enqueue a batch (tracked for :meth:`verdict`, in group :attr:`name`) and return the ids."""
        task_ids = self.client.async_tasks(func, arguments, **{"group": self.name, **options})
        self.task_ids.extend(task_ids)
        return task_ids

    def ledger(self) -> Ledger:
        """The runs ledger so far."""
        return Ledger.read(self.ledger_file)

    def announced(self, task_ids: Sequence[str], timeout: float = 30.0) -> Ledger:
        """The ledger once each of ``task_ids`` has its final record announced.

        The monitor announces a saved result (``qframe_task_succeeded`` / ``_failed``) from its
        hook thread, after the save that :func:`~qframe.testing.faults.settle` waits for.
        """

        def complete() -> Ledger | None:
            ledger = self.ledger()
            return ledger if all(ledger.finals[task_id] for task_id in task_ids) else None

        return cast("Ledger", wait_until(complete, timeout=timeout))

    def finished(self) -> int:
        """How many tracked tasks have a final record now: a result in the store, or a dead letter."""
        pending = [task_id for task_id in self.task_ids if task_id not in self._finished]
        self._finished.update(task_id for task_id in pending if self.client.store.get(task_id) is not None)
        if len(self._finished) < len(self.task_ids):
            self._finished.update(set(self.dead_task_ids()) & set(pending))
        return len(self._finished)

    # -- judging -------------------------------------------------------------------------------
    def dead_letters(self) -> list[DeadLetter]:
        """The queue's dead letters, wherever they are kept."""
        return list_dead_letters(self.broker, self.client.store)

    def dead_task_ids(self) -> list[str]:
        """Task ids of dead letters whose payload carries a valid signature (others are never decoded)."""
        codec, ids = self.codec(), []
        for payload in (letter.payload for letter in self.dead_letters()):
            with contextlib.suppress(SignatureError):
                codec.verify(payload)
                with contextlib.suppress(Exception):  # signed but undecodable: it names no task
                    ids.append(str(codec.decode(payload)["id"]))
        return ids

    def verdict(self, task_ids: list[str] | None = None) -> Verdict:
        """What became of ``task_ids`` (default: every task enqueued through the lab)."""
        ids = self.task_ids if task_ids is None else task_ids
        results = {task_id: self.client.fetch(task_id) for task_id in ids}
        listed = [record.id for record in self.client.fetch_group(self.name, failures=True)]
        return check(ids, results, listed, self.dead_task_ids(), self.ledger())

    def assert_invariant(self, task_ids: list[str] | None = None) -> Verdict:
        """Every task has exactly one final record, none is lost, no success was overwritten."""
        verdict = self.verdict(task_ids)
        assert not verdict.violations, f"of {verdict.tasks} tasks: {verdict.explain()}"
        return verdict

    # -- cleaning up -------------------------------------------------------------------------
    def close_connections(self) -> None:
        """Close the producer's and the broker handle's connections (settings are read again)."""
        self._config = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None

    def close(self) -> None:
        """Kill every cluster started here and close connections."""
        for cluster in self.clusters:
            cluster.kill_all()
        self.close_connections()
