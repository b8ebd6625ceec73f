"""Outcomes the store could not save, kept in the monitor until it answers again.

Dropping them would send finished tasks round again: each redelivery spends an attempt,
and after ``max_attempts`` a task that ran to the end would be recorded as failed, for a
reason that is not true. So the monitor keeps them here, in memory and at most
:data:`MAX_KEPT` (past that the oldest go, and only their tasks run again), retries the
save every :data:`RETRY` seconds, and meanwhile renews their deliveries' leases every
third of a lease: the pusher stopped renewing a delivery when its worker said ``done``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from qframe.brokers.base import Broker
from qframe.cluster.outcome import Outcome
from qframe.errors import BrokerError

log = logging.getLogger("qframe")

#: Most outcomes kept while the store is unreachable.
MAX_KEPT = 10_000
#: Seconds between two attempts to save the kept outcomes.
RETRY = 1.0


class Unsaved:
    """The kept outcomes, their next save attempt and their lease renewals."""

    def __init__(self, broker: Broker, lease: float) -> None:
        self.broker = broker
        self.every = lease / 3
        self.kept: list[Outcome] = []
        self.retry_at = 0.0
        self.renewed = 0.0

    def keep(self, outcomes: Sequence[Outcome]) -> None:
        """Keep outcomes whose save failed, renew their leases now, and retry in :data:`RETRY` s."""
        self.add(outcomes)
        self.retry_at = time.monotonic() + RETRY
        self.renew(force=True)

    def add(self, outcomes: Sequence[Outcome]) -> None:
        """Keep more outcomes behind the ones already kept (without trying the store)."""
        self.kept.extend(outcomes)
        overflow = len(self.kept) - MAX_KEPT
        if overflow > 0:
            log.error(
                "dropped the %d oldest unsaved results, more than %d wait for the store "
                "(their tasks will run again)",
                overflow,
                MAX_KEPT,
            )
            del self.kept[:overflow]

    def take(self) -> list[Outcome]:
        """The kept outcomes, oldest first, for another save attempt; none are kept after this."""
        kept, self.kept = self.kept, []
        return kept

    def retry_due(self) -> bool:
        """Whether it is time to try the store again."""
        return bool(self.kept) and time.monotonic() >= self.retry_at

    def renew(self, force: bool = False) -> None:
        """Restart the leases of the kept outcomes' deliveries, every third of a lease."""
        now = time.monotonic()
        if not self.kept or (not force and now < self.renewed + self.every):
            return
        self.renewed = now
        try:
            self.broker.touch([outcome.ack_id for outcome in self.kept])
        except BrokerError as exc:
            log.warning("could not extend the leases of %d unsaved results: %s", len(self.kept), exc)

    def due(self) -> float:
        """The monotonic time of the next retry or renewal (infinity when nothing is kept)."""
        return min(self.retry_at, self.renewed + self.every) if self.kept else float("inf")
