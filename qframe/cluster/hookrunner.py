"""The monitor's hook runner: outcome hooks and tasks' own ``hook``, off the save path.

The monitor saves a batch of results and settles their deliveries, then hands each result
to this runner and goes back to saving: one thread of the monitor process calls the hooks,
one result after another in the order they were saved, so a slow hook delays the hooks
behind it but never the saving of other results. At most :data:`MAX_PENDING` results wait
for their hooks; when that many wait, the monitor waits for room (one WARNING line) rather
than drop a hook. At stop the monitor lets the waiting hooks run until 14 s after it was told
to stop (the sentinel kills it at 15 s), then logs how many it did not run: their results
are saved and acknowledged, only the hooks are skipped.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable

from qframe.cluster.outcome import Outcome

log = logging.getLogger("qframe")

#: Most results waiting for their hooks before the monitor waits for room.
MAX_PENDING = 10_000


class HookRunner:
    """A bounded queue of outcomes and the thread that calls ``call(outcome)`` for each."""

    def __init__(self, name: str, call: Callable[[Outcome], None]) -> None:
        self.name = name
        self.call = call
        self.pending: queue.Queue[Outcome | None] = queue.Queue(MAX_PENDING)
        self.full_warned = False
        self.thread = threading.Thread(target=self._run, name=f"{name}-hooks", daemon=True)
        self.thread.start()

    def submit(self, outcome: Outcome) -> None:
        """Queue ``outcome`` for its hooks; wait for room when :data:`MAX_PENDING` already wait."""
        try:
            self.pending.put_nowait(outcome)
        except queue.Full:
            if not self.full_warned:
                self.full_warned = True
                log.warning(
                    "%s: %d results wait for their hooks; saving waits for a slow hook to finish",
                    self.name,
                    MAX_PENDING,
                )
            self.pending.put(outcome)

    def _run(self) -> None:
        while (outcome := self.pending.get()) is not None:
            try:
                self.call(outcome)
            except Exception as exc:  # the runner must outlive any hook
                error = f"{type(exc).__name__}: {exc}"
                log.error("%s: the hooks of delivery %s failed: %s", self.name, outcome.ack_id, error)
            finally:
                self.pending.task_done()

    def close(self, grace: float) -> None:
        """Let the waiting hooks run for up to ``grace`` seconds, then stop the thread."""
        deadline = time.monotonic() + grace
        with contextlib.suppress(queue.Full):  # a hook still holds the thread: not all will run
            self.pending.put(None, timeout=grace)
        self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            log.error(
                "%s stopped with the hooks of about %d results not run (the results are saved)",
                self.name,
                self.pending.qsize(),
            )
