"""One directory of prometheus_client multi-process files per running cluster.

Workers, the pusher and the monitor are separate processes: each writes its own values to
memory-mapped files in the cluster's directory (``<dir>/<cluster id>``), and the
sentinel's :class:`prometheus_client.multiprocess.MultiProcessCollector` adds them up at
every scrape. A process that exits (a recycled worker, a replaced monitor) leaves its
files behind, so counters never go backwards while the cluster runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import values as prometheus_values

from qframe.errors import PluginError
from qframe_prometheus import metrics

#: The variable prometheus_client reads to find the multi-process directory.
ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare(directory: Path) -> None:
    """Create the cluster's directory empty (the sentinel, before it starts any other process)."""
    try:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
    except OSError as exc:
        raise PluginError(f"cannot create the prometheus metrics directory {directory}: {exc}") from exc


def join(directory: Path) -> None:
    """Make this process record its metrics into ``directory``.

    Metric objects choose where their values live when they are created, from
    ``prometheus_client.values.ValueClass``, which prometheus_client sets once, at import,
    from the environment. A forked child of a process that had imported it without the
    variable would keep in-memory values, so the class is switched here as well, and this
    process's metrics are created anew.
    """
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)
    if not getattr(prometheus_values.ValueClass, "_multiprocess", False):
        prometheus_values.ValueClass = prometheus_values.MultiProcessValue()  # type: ignore[no-untyped-call]
    metrics.reset()


def remove(directory: Path) -> None:
    """Delete the cluster's directory (after the cluster stopped)."""
    shutil.rmtree(directory, ignore_errors=True)
