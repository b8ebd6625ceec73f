"""The pusher's outbox: failure records it writes itself, sent to the monitor in batches.

The pusher records a task as failed when it will not run again: it timed out, its worker
died on its last attempt, or it was delivered more often than ``max_attempts``. The last
two are past ``max_attempts``: their failure is saved and their delivery moved to the dead
letters (``dead_limit``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from qframe.cluster.deliveries import Delivery
from qframe.cluster.outcome import Outcome, dead, outcome
from qframe.config import Config
from qframe.processes import Channel, send_plain
from qframe.serialize import Codec
from qframe.task import Task, TaskResult

log = logging.getLogger("qframe")


class Outbox:
    """Outcomes waiting to reach the monitor (kept while it is down or restarting)."""

    def __init__(self, config: Config, codec: Codec, results: Codec, connect: Callable[[], Channel]) -> None:
        self.config = config
        self.codec = codec
        self.results = results
        self.connect = connect
        self.pending: list[Outcome] = []
        self.monitor: Channel | None = None

    def fail(
        self, delivery: Delivery, reason: str, timed_out: float | None = None, dead_limit: int = 0
    ) -> None:
        """Queue a failure record for a delivery that will not run (again).

        With ``dead_limit`` (the task's max_attempts, when it is past them) the delivery
        goes to the dead letters after the failure is saved, instead of being acknowledged.
        """
        message = delivery.message
        try:
            task = Task.from_dict(self.codec.decode(message.payload))
        except Exception as exc:
            reason = f"undecodable payload: {exc}"
            self.pending.append(Outcome(message.ack_id, "quarantine", reason=reason, message=message))
            return
        log.error("Failed '%s' (%s) - %s", task.func, task.label, reason)
        task.ack_failure = True
        started = time.time() - (time.monotonic() - delivery.started if delivery.started else 0.0)
        result = TaskResult.of(task, reason, False, started, message.attempts)
        done = outcome(self.results, self.config, task, result, message.ack_id, timed_out)
        self.pending.append(dead(done, message, reason, dead_limit) if dead_limit else done)

    def flush(self) -> None:
        """Send the pending outcomes to the monitor in one message."""
        if not self.pending:
            return
        try:
            if self.monitor is None:
                self.monitor = self.connect()
            send_plain(self.monitor, [done.pack() for done in self.pending])
            self.pending = []
        except OSError:
            self.monitor = None  # the monitor is down or restarting; keep the outcomes for later
