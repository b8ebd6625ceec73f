"""The timeout watch: finds workers whose task ran past its timeout; the process manager stops them."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from qframe.cluster.deliveries import Slot
from qframe.config import Config
from qframe.processes import Channel, ProcessManager

log = logging.getLogger("qframe")


class TimeoutWatch:
    """Applies each task's ``timeout`` (else the cluster's) to the delivery a worker runs."""

    def __init__(self, config: Config, processes: ProcessManager) -> None:
        self.config = config
        self.processes = processes

    def limit(self, slot: Slot) -> float | None:
        """The timeout of what ``slot`` runs now, unless it was already stopped for it."""
        running = slot.running
        if running is None or slot.killed_for_timeout is not None:
            return None
        return running.header.timeout or self.config.timeout

    def enforce(self, slots: Mapping[Channel, Slot]) -> None:
        """Stop every worker whose running task is past its timeout."""
        now = time.monotonic()
        for channel, slot in slots.items():
            timeout = self.limit(slot)
            if timeout and slot.running and now - slot.running.started >= timeout:
                log.error(
                    "%s ran message %s past its timeout of %g s; killing it",
                    slot.name,
                    slot.running.message.message_id,
                    timeout,
                )
                slot.killed_for_timeout = timeout
                self.processes.enforce_timeout(slot.pid, channel, slot.running.message.ack_id)

    def next_due(self, slots: Iterable[Slot]) -> float:
        """The monotonic time of the next timeout (infinity when none)."""
        due = float("inf")
        for slot in slots:
            timeout = self.limit(slot)
            if timeout and slot.running:
                due = min(due, slot.running.started + timeout)
        return due
