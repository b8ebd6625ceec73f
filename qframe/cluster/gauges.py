"""Counts the pusher and the monitor hand to the sentinel for the cluster's heartbeat.

Only the pusher knows how many tasks it holds and the monitor how many results wait to
be saved, but only the sentinel publishes the status. Each of the two writes its counts to
a small JSON file in the cluster's private run directory (atomically, at most once per
``guard_cycle``); the sentinel reads them when it publishes. A file gives every process manager
the same meeting point the sockets already use, and a count that is one interval old is
fine for a status that is refreshed as often.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time


def gauge_path(rundir: str, role: str) -> str:
    """Where ``role`` (``pusher``, ``monitor``) keeps its counts."""
    return os.path.join(rundir, f"{role}.gauges")


class GaugeWriter:
    """Writes one process's counts for the sentinel, at most once every ``every`` seconds."""

    def __init__(self, rundir: str, role: str, every: float) -> None:
        self.path = gauge_path(rundir, role)
        self.every = every
        self.next_write = 0.0

    def due(self) -> bool:
        """Whether :meth:`write` would write now (so callers count only when it does)."""
        return time.monotonic() >= self.next_write

    def write(self, **counts: int) -> None:
        """Replace the counts (a reader never sees a half-written file)."""
        self.next_write = time.monotonic() + self.every
        partial = f"{self.path}.{os.getpid()}"
        try:
            with open(partial, "w") as file:
                json.dump(counts, file)
            os.replace(partial, self.path)
        except OSError:
            pass  # the run directory is gone: the cluster is stopping


def read_gauges(rundir: str, role: str) -> dict[str, int]:
    """The counts ``role`` wrote last; empty before its first write."""
    with contextlib.suppress(OSError, ValueError), open(gauge_path(rundir, role)) as file:
        counts = json.load(file)
        if isinstance(counts, dict):
            return {str(key): int(value) for key, value in counts.items()}
    return {}


class Throughput:
    """Turns the pusher's count of finished tasks into a total and a rate over a sliding window.

    A replaced pusher counts from zero again; the total carries on from where it was.
    """

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self.samples: collections.deque[tuple[float, int]] = collections.deque()
        self.offset = 0
        self.last = 0

    @property
    def total(self) -> int:
        """Tasks finished since the first count."""
        return self.offset + self.last

    def add(self, count: int, now: float | None = None) -> float:
        """Record the pusher's count now; return tasks per second over the window."""
        now = time.monotonic() if now is None else now
        if count < self.last:
            self.offset += self.last
        self.last = count
        self.samples.append((now, self.total))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        first_time, first_total = self.samples[0]
        elapsed = now - first_time
        return (self.total - first_total) / elapsed if elapsed > 0 else 0.0
