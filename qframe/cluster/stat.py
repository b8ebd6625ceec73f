"""The cluster's published status (``Stat``), a heartbeat with a short TTL."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

from qframe.brokers.base import Broker


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
    workers: list[int] = field(default_factory=list)
    #: Starting, Idle, Working, Stopping or Stopped.
    status: str = "Starting"
    queued: int = 0
    leased: int = 0
    reincarnations: int = 0
    started: float = field(default_factory=time.time)
    timestamp: float = field(default_factory=time.time)
    #: Fields added by ``qframe_collect_status`` plugins.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uptime(self) -> float:
        """Seconds since the cluster started."""
        return self.timestamp - self.started

    def to_bytes(self) -> bytes:
        """JSON, so reading a status never unpickles anything."""
        return json.dumps(dataclasses.asdict(self), default=str).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Stat:
        """Parse :meth:`to_bytes` output."""
        return cls(**json.loads(data))

    @classmethod
    def all(cls, broker: Broker) -> list[Stat]:
        """Every live cluster status saved on ``broker``."""
        stats = []
        for data in broker.get_stats():
            try:
                stats.append(cls.from_bytes(data))
            except (ValueError, TypeError):
                continue
        return stats
