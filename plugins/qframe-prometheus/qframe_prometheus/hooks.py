"""The hook plugin ``prometheus``: which process records what, and when the sentinel exposes it.

- producers: ``qframe_tasks_enqueued_total`` (``qframe_post_enqueue``), in their own process;
- every cluster process joins the cluster's multi-process directory at boot;
- the monitor: the outcome counters and both histograms (outcome hooks);
- the pusher or monitor: ``qframe_tasks_dead_lettered_total``;
- the sentinel: the gauges and the exposition (HTTP and/or textfile);
- the cluster's main process: checks the settings at start, removes the directory at the end.
"""

from __future__ import annotations

from qframe import PluginOption, hookimpl
from qframe.cluster.cluster import Cluster
from qframe.cluster.stat import Stat
from qframe.config import Config
from qframe.stores.base import DeadLetter
from qframe.task import Task, TaskResult
from qframe_prometheus import multiprocess
from qframe_prometheus.exposition import ClusterGauges, Exposition
from qframe_prometheus.metrics import recorder
from qframe_prometheus.settings import OPTIONS, Settings

#: The ``task`` label of a dead letter: its payload is never decoded, so its function is unknown.
UNKNOWN_TASK = ""

_exposition: Exposition | None = None


@hookimpl
def qframe_add_options() -> list[PluginOption]:
    """Declare ``prometheus_port``, ``prometheus_address``, ``prometheus_textfile``, ``prometheus_dir``."""
    return OPTIONS


@hookimpl
def qframe_cluster_starting(config: Config) -> None:
    """Refuse settings that cannot work, before any cluster process starts."""
    Settings.of(config).check()


@hookimpl
def qframe_process_boot(role: str, config: Config, cluster_id: str) -> None:
    """Join the cluster's metrics directory; in the sentinel, create it and start exposing it."""
    global _exposition
    settings = Settings.of(config)
    directory = settings.cluster_dir(cluster_id)
    if role == "sentinel":
        multiprocess.prepare(directory)
    multiprocess.join(directory)
    if role == "sentinel":
        _exposition = Exposition(directory, ClusterGauges(config.name, config.workers), settings.textfile)
        if settings.port is not None:
            _exposition.serve(settings.port, settings.address)


@hookimpl
def qframe_collect_status(stat: Stat) -> None:
    """Refresh the gauges (and the textfile) each time the sentinel publishes the status."""
    if _exposition is not None:
        _exposition.published(stat)


@hookimpl
def qframe_cluster_stopped(cluster: Cluster) -> None:
    """Remove the cluster's metrics directory (the textfile, if any, keeps the last values)."""
    multiprocess.remove(Settings.of(cluster.config).cluster_dir(cluster.cluster_id))


@hookimpl
def qframe_post_enqueue(task: Task) -> None:
    """Count a task the broker stored."""
    recorder().count("enqueued", task.cluster, task.func)


@hookimpl
def qframe_task_succeeded(result: TaskResult) -> None:
    """Count a success and its timings."""
    _finished("succeeded", result)


@hookimpl
def qframe_task_failed(result: TaskResult) -> None:
    """Count a failure for good and its timings."""
    _finished("failed", result)


@hookimpl
def qframe_task_retrying(result: TaskResult) -> None:
    """Count a run that goes back for another attempt, and its timings."""
    _finished("retried", result)


@hookimpl
def qframe_task_timed_out(result: TaskResult) -> None:
    """Count a run killed at its timeout (its failure is counted by ``qframe_task_failed``)."""
    recorder().count("timed_out", result.cluster, result.func)


@hookimpl
def qframe_task_dead_lettered(queue: str, letter: DeadLetter) -> None:
    """Count a message moved to the dead letters."""
    recorder().count("dead_lettered", queue, UNKNOWN_TASK)


def _finished(outcome: str, result: TaskResult) -> None:
    metrics = recorder()
    metrics.observe_run(result)  # first: a scrape that sees the count sees the run's timings too
    metrics.count(outcome, result.cluster, result.func)
