"""The lease keeper: restarts the leases of every delivery the pusher holds."""

from __future__ import annotations

import logging
import time

from qframe.brokers.base import Broker
from qframe.cluster.deliveries import Deliveries
from qframe.errors import BrokerError

log = logging.getLogger("qframe")


class LeaseKeeper:
    """Touches held deliveries every third of a lease, so long tasks are never handed out twice."""

    def __init__(self, broker: Broker, deliveries: Deliveries, lease: float) -> None:
        self.broker = broker
        self.deliveries = deliveries
        self.every = lease / 3
        self.last = time.monotonic()

    @property
    def due(self) -> float:
        """The monotonic time of the next renewal."""
        return self.last + self.every

    def renew(self) -> None:
        """Restart the leases if a renewal is due."""
        now = time.monotonic()
        if now < self.due:
            return
        self.last = now
        ack_ids = self.deliveries.ack_ids()
        if ack_ids:
            try:
                self.broker.touch(ack_ids)
            except BrokerError as exc:
                log.warning("could not extend %d leases: %s", len(ack_ids), exc)
