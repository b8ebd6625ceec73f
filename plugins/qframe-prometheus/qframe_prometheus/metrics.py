"""The task metrics one process records: outcome counters and the two histograms.

:func:`recorder` builds them once per process, on first use. In a cluster process
:func:`qframe_prometheus.multiprocess.join` has switched prometheus_client to multi-process
mode first, so the values land in the cluster's directory and the sentinel serves their
sum; in a producer they live in prometheus_client's default registry, next to the
application's own metrics.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client import values as prometheus_values

from qframe.task import TaskResult

#: The outcomes counted as ``qframe_tasks_<outcome>_total``.
OUTCOMES = ("enqueued", "succeeded", "failed", "retried", "timed_out", "dead_lettered")

LABELS = ("queue", "task")

#: Seconds; from a few milliseconds to an hour, for both run time and queue wait.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True)
class Recorder:
    """The metric objects of one process."""

    counters: dict[str, Counter]
    run_seconds: Histogram
    queue_wait_seconds: Histogram
    pid: int

    def count(self, outcome: str, queue: str, task: str) -> None:
        """Add one to ``qframe_tasks_<outcome>_total{queue, task}``."""
        self.counters[outcome].labels(queue, task).inc()

    def observe_run(self, result: TaskResult) -> None:
        """Record one run's time, and how long it waited since it was enqueued."""
        self.run_seconds.labels(result.cluster, result.func).observe(max(0.0, result.time_taken))
        if result.enqueued is not None:
            waited = max(0.0, result.started - result.enqueued)
            self.queue_wait_seconds.labels(result.cluster, result.func).observe(waited)


def build(registry: CollectorRegistry | None) -> Recorder:
    """Create the metrics, registered in ``registry`` (None: unregistered, multi-process files only)."""
    counters = {
        outcome: Counter(
            f"qframe_tasks_{outcome}",
            f"Tasks {outcome.replace('_', ' ')}, by queue and task function.",
            LABELS,
            registry=registry,
        )
        for outcome in OUTCOMES
    }
    run = Histogram(
        "qframe_task_run_seconds",
        "Seconds one run of a task took (started to stopped).",
        LABELS,
        registry=registry,
        buckets=BUCKETS,
    )
    wait = Histogram(
        "qframe_task_queue_wait_seconds",
        "Seconds from enqueueing a task to the start of its run (retries: to the start of that run).",
        LABELS,
        registry=registry,
        buckets=BUCKETS,
    )
    return Recorder(counters, run, wait, os.getpid())


_current: Recorder | None = None


def recorder() -> Recorder:
    """This process's metrics, built on first use (again after a fork)."""
    global _current
    if _current is None or _current.pid != os.getpid():
        multiprocess = getattr(prometheus_values.ValueClass, "_multiprocess", False)
        registry = None if multiprocess else REGISTRY
        if _current is not None and registry is REGISTRY:
            _unregister(_current)  # a forked child of a producer re-creates the same names
        _current = build(registry)
    return _current


def reset() -> None:
    """Forget this process's metrics (after switching it to multi-process mode)."""
    global _current
    if _current is not None and _current.pid == os.getpid():
        _unregister(_current)
    _current = None


def _unregister(old: Recorder) -> None:
    for metric in (*old.counters.values(), old.run_seconds, old.queue_wait_seconds):
        with contextlib.suppress(KeyError):  # it was built unregistered
            REGISTRY.unregister(metric)
