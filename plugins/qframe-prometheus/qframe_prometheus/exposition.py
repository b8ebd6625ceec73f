"""What the sentinel exposes: the sum of every process's files plus the cluster's gauges."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from qframe.cluster.stat import Stat
from qframe.errors import PluginError


class ClusterGauges(Collector):
    """Gauges read from the status the sentinel published last (none before the first)."""

    def __init__(self, queue: str, workers: int) -> None:
        self.queue = queue
        self.workers = workers
        self.stat: Stat | None = None

    def collect(self) -> Iterator[Metric]:
        """The gauges of the last published status."""
        stat = self.stat
        if stat is None:
            return
        for name, help_text, value in (
            (
                "qframe_queue_depth",
                "Messages waiting in the queue (not leased), delayed ones included.",
                stat.queued,
            ),
            (
                "qframe_tasks_leased",
                "Messages of the queue leased now (prefetched or running), by any cluster.",
                stat.leased,
            ),
            ("qframe_workers_alive", "Worker processes of this cluster that are alive.", alive(stat.workers)),
            (
                "qframe_workers_configured",
                "Worker processes this cluster is configured to keep.",
                self.workers,
            ),
            (
                "qframe_cluster_reincarnations",
                "Processes this cluster replaced since it started (deaths, timeouts, recycles, max_rss).",
                stat.reincarnations,
            ),
        ):
            gauge = GaugeMetricFamily(name, help_text, labels=["queue"])
            gauge.add_metric([self.queue], float(value))
            yield gauge


def alive(pids: list[int]) -> int:
    """How many of ``pids`` are running processes."""
    count = 0
    for pid in pids:
        if pid <= 0:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass  # it exists, owned by someone else
        count += 1
    return count


class ClusterFiles(Collector):
    """The sum of every process's metric files in one directory, as ``MultiProcessCollector``.

    Files still at 0 bytes are skipped: prometheus_client creates a process's file before
    it sizes it, and reading it in between fails the whole scrape (prometheus/client_python
    issue #1199). Such a file holds nothing yet.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        """The merged metrics of the directory's non-empty files."""
        files = [str(path) for path in sorted(self.directory.glob("*.db")) if path.stat().st_size > 0]
        merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
        return merged


class Exposition:
    """The sentinel's registry of the whole cluster, served over HTTP and/or written to a textfile."""

    def __init__(self, directory: Path, gauges: ClusterGauges, textfile: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ClusterFiles(directory))
        self.registry.register(gauges)
        self.gauges = gauges
        self.textfile = textfile

    def serve(self, port: int, address: str) -> None:
        """Serve ``/metrics`` on ``address:port`` from a daemon thread of this process."""
        try:
            start_http_server(port, address, self.registry)
        except OSError as exc:
            raise PluginError(f"cannot serve prometheus metrics on {address}:{port}: {exc}") from exc

    def published(self, stat: Stat) -> None:
        """Take the status just published; rewrite the textfile if one is configured."""
        self.gauges.stat = stat
        if self.textfile:
            write_to_textfile(self.textfile, self.registry)
